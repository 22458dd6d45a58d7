-- Expired connect sessions are purged; this keeps the purge from scanning the table.
CREATE INDEX connect_sessions_expires_at ON gateway.connect_sessions (expires_at);
