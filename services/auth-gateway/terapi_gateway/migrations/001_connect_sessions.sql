-- Connect sessions: short-lived grants an app's backend opens for one end user.
-- Only a keyed digest of the session token is stored, never the token.
CREATE TABLE gateway.connect_sessions (
    id uuid PRIMARY KEY,
    environment_id integer NOT NULL,
    environment_name text NOT NULL,
    token_digest text NOT NULL UNIQUE,
    end_user jsonb NOT NULL,
    allowed_integrations text[],
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
