-- Writes an app made with an Idempotency-Key: the first request's body digest and, once it
-- was applied, the answer it got, so a retry with the same key (per app and user) gets that
-- answer again and nothing is applied twice. `answer` is NULL while the write is under way.
CREATE TABLE idempotent_writes (
    app_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    body_digest      TEXT NOT NULL,
    status           INTEGER,
    answer           TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, idempotency_key)
);
CREATE INDEX idempotent_writes_by_age ON idempotent_writes (created_at);
