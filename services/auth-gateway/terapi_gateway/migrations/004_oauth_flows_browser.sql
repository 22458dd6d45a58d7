-- The keyed digest of the cookie set in the browser that started the flow; the callback
-- must bring the same cookie. Flows recorded before this column fail their callback.
ALTER TABLE gateway.oauth_flows ADD COLUMN browser_digest text;
