-- Housekeeping drops finished webhooks past the retention period; pending ones stay.
CREATE INDEX deliveries_finished_by_age ON webhooks.deliveries (created_at)
    WHERE status <> 'pending';
