-- The address a device authorization was asked from, shown on the approval page so the owner
-- can tell their own device's request from someone else's.
ALTER TABLE device_authorizations ADD COLUMN requested_from TEXT NOT NULL DEFAULT '';
