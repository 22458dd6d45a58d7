CREATE TABLE refresher.schedules (
    environment_id integer NOT NULL,
    integration_id text NOT NULL,
    connection_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    next_refresh_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, integration_id, connection_id)
);
CREATE INDEX schedules_due ON refresher.schedules (next_refresh_at);
