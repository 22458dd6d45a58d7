-- Environments, integrations and connections: the vault's encrypted storage.
-- Secrets are stored only as AES-GCM ciphertexts bound to their row by associated data,
-- plus the SHA-256 digest of each secret key so requests can be matched without it.

CREATE TABLE vault.environments (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    public_key text NOT NULL UNIQUE,
    secret_key_digest text NOT NULL UNIQUE,
    secret_key_encrypted bytea NOT NULL,
    webhook_secret_encrypted bytea NOT NULL,
    webhook_url text,
    webhook_secondary_url text,
    callback_url text,
    send_new_connection_webhooks boolean NOT NULL DEFAULT true,
    send_auth_failure_webhooks boolean NOT NULL DEFAULT false,
    require_connect_sessions boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vault.integrations (
    environment_id integer NOT NULL REFERENCES vault.environments (id),
    integration_id text NOT NULL,
    provider text NOT NULL,
    auth_mode text NOT NULL,
    client_id text,
    client_secret_encrypted bytea,
    scopes text[] NOT NULL DEFAULT '{}',
    provider_config jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (environment_id, integration_id)
);

-- No ON DELETE CASCADE: deleting an integration deletes its connections itself, so it
-- can emit connection.deleted for each; the foreign key stops a connection being stored
-- for an integration deleted at the same moment.
CREATE TABLE vault.connections (
    environment_id integer NOT NULL,
    integration_id text NOT NULL,
    connection_id text NOT NULL,
    provider text NOT NULL,
    auth_mode text NOT NULL,
    credentials_encrypted bytea NOT NULL,
    connection_config jsonb NOT NULL DEFAULT '{}',
    end_user jsonb,
    expires_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (environment_id, integration_id, connection_id),
    FOREIGN KEY (environment_id, integration_id)
        REFERENCES vault.integrations (environment_id, integration_id)
);

-- The hot read names a connection without its integration most of the time.
CREATE INDEX connections_by_connection_id ON vault.connections (environment_id, connection_id);
CREATE INDEX connections_by_recency
    ON vault.connections (environment_id, created_at DESC, integration_id DESC, connection_id DESC);
CREATE INDEX connections_by_end_user ON vault.connections (environment_id, (end_user ->> 'id'));
