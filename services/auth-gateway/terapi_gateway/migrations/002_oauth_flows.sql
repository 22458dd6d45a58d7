-- OAuth flows between the redirect to the provider and its callback. The state (OAuth 2)
-- or request token (OAuth 1) is kept only as a keyed digest; the PKCE verifier or request
-- token secret only encrypted, bound to the row.
CREATE TABLE gateway.oauth_flows (
    id uuid PRIMARY KEY,
    environment_id integer NOT NULL,
    environment_name text NOT NULL,
    lookup_digest text NOT NULL UNIQUE,
    integration_id text NOT NULL,
    connection_id text NOT NULL,
    provider text NOT NULL,
    auth_mode text NOT NULL,
    end_user jsonb,
    connection_config jsonb NOT NULL,
    requested_scopes text[] NOT NULL,
    redirect_uri text NOT NULL,
    origin text,
    return_url text,
    flow_id uuid,
    operation_id text NOT NULL,
    secret_encrypted bytea,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX oauth_flows_expires_at ON gateway.oauth_flows (expires_at);

-- What the SDK reads at GET /oauth/result/{flow_id}. environment_id is 0 when the attempt
-- failed before its caller was known (no valid token).
CREATE TABLE gateway.oauth_results (
    flow_id uuid PRIMARY KEY,
    environment_id integer NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    integration_id text,
    connection_id text,
    error jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_results_expires_at ON gateway.oauth_results (expires_at);
