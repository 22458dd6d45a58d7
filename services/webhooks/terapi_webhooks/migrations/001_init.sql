-- One row per (source event, target URL): the webhook and its delivery state.
CREATE TABLE webhooks.deliveries (
    webhook_id text PRIMARY KEY,
    environment_id integer NOT NULL,
    source_event_id uuid NOT NULL,
    url text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'abandoned')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_status_code integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    -- A redelivered event must not make a second webhook for the same URL.
    UNIQUE (source_event_id, url)
);

-- The dispatcher's claim: due pending rows, oldest first.
CREATE INDEX deliveries_due ON webhooks.deliveries (next_attempt_at)
    WHERE status = 'pending';

CREATE INDEX deliveries_by_environment ON webhooks.deliveries (environment_id, created_at DESC);
