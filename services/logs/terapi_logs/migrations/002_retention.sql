-- Housekeeping drops operations past the retention period, oldest first, across environments.
CREATE INDEX operations_by_age ON logs.operations (started_at);
