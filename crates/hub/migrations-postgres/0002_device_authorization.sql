-- Device authorization grant (RFC 8628): a device without a browser (a headless connector)
-- shows a short user code; its owner approves it on the hub's device page.
CREATE TABLE device_authorizations (
    device_digest    BYTEA PRIMARY KEY,
    user_code_digest BYTEA NOT NULL UNIQUE,
    app_id           TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    user_id          TEXT,
    approved_at      BIGINT,
    denied_at        BIGINT,
    redeemed_at      BIGINT
);
