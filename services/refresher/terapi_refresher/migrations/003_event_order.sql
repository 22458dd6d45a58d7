-- Connection events can arrive out of order (redelivery, requeue, two consumers). Each
-- row remembers when the event that last set it happened, so a late older event cannot
-- undo a newer one. A connection that is gone or never expires keeps its row as a
-- tombstone (next_refresh_at NULL) until the prune job removes it.
ALTER TABLE refresher.schedules
    ADD COLUMN source_occurred_at timestamptz,
    ALTER COLUMN expires_at DROP NOT NULL,
    ALTER COLUMN next_refresh_at DROP NOT NULL;
