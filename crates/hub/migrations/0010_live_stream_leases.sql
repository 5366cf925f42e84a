-- The places open live-value streams hold under their caps (per sign-in, per connector),
-- counted across every hub process on the store. A replica renews its own leases every few
-- seconds; the leases of one that died lapse at `expires_at` (Unix seconds).
CREATE TABLE live_stream_leases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    replica      TEXT NOT NULL,
    family_id    TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX live_stream_leases_by_family ON live_stream_leases (family_id, expires_at);
CREATE INDEX live_stream_leases_by_connector ON live_stream_leases (connector_id, expires_at);
CREATE INDEX live_stream_leases_by_replica ON live_stream_leases (replica);
CREATE INDEX live_stream_leases_by_expiry ON live_stream_leases (expires_at);
