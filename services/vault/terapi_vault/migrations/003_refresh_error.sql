-- The refresher's last word on a connection it gave up refreshing; cleared by new
-- credentials (a re-authorization or a successful refresh).
ALTER TABLE vault.connections ADD COLUMN refresh_error jsonb;
