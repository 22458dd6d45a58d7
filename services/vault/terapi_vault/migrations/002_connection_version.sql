-- Every credential write bumps the version, so a refresh computed from old credentials
-- cannot overwrite newer ones (compare-and-set on StoreRefreshedCredentials).
ALTER TABLE vault.connections ADD COLUMN version integer NOT NULL DEFAULT 1;
