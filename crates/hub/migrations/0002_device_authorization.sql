-- Device authorization grant (RFC 8628): a device without a browser (a headless connector)
-- shows a short user code; its owner approves it on the hub's device page.
CREATE TABLE device_authorizations (
    device_digest    BLOB PRIMARY KEY,
    user_code_digest BLOB NOT NULL UNIQUE,
    app_id           TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_secs    INTEGER NOT NULL,
    last_polled_at   INTEGER,
    user_id          TEXT,
    approved_at      INTEGER,
    denied_at        INTEGER,
    redeemed_at      INTEGER
);
