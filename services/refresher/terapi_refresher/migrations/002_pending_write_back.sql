-- Renewed credentials the vault has not confirmed yet. The provider may already have
-- rotated the refresh token, so these are the only working copy until the vault stores
-- them. Sealed with the transit key (connection_aad), never plaintext.
ALTER TABLE refresher.schedules
    ADD COLUMN pending_sealed text,
    ADD COLUMN pending_version integer,
    ADD COLUMN pending_expires_at timestamptz,
    -- A connection event that happened after this replaces them (the write landed, the
    -- connection was re-authorized, deleted or re-created); an earlier one does not.
    ADD COLUMN pending_held_at timestamptz,
    -- The app has been told about the current run of failures (connection.refresh_failed).
    ADD COLUMN notified boolean NOT NULL DEFAULT false;
