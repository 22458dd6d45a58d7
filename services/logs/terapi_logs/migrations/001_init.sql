-- Every authorization attempt (and webhook delivery), as the Logs view shows it.
CREATE TABLE logs.operations (
    environment_id integer NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    operation text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    integration_id text,
    connection_id text,
    provider text,
    auth_mode text,
    end_user jsonb,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    error jsonb,
    messages jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, id)
);

-- Keyset pagination, newest first, alone and under each filter.
CREATE INDEX operations_recent
    ON logs.operations (environment_id, started_at DESC, id DESC);
CREATE INDEX operations_by_integration
    ON logs.operations (environment_id, integration_id, started_at DESC, id DESC);
CREATE INDEX operations_by_connection
    ON logs.operations (environment_id, connection_id, started_at DESC, id DESC);
CREATE INDEX operations_by_status
    ON logs.operations (environment_id, status, started_at DESC, id DESC);
CREATE INDEX operations_by_kind
    ON logs.operations (environment_id, kind, started_at DESC, id DESC);
