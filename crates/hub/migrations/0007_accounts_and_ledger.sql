-- Billing: each user's account balance in integer minor units of the hub's one currency, the
-- append-only ledger it is derived from (kept in the same transaction), and the user's consent
-- to an app debiting it, with the monthly limit the user chose (NULL: no limit, chosen so).
CREATE TABLE accounts (
    user_id  TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    balance  INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

CREATE TABLE billing_grants (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id         TEXT NOT NULL,
    monthly_limit  INTEGER CHECK (monthly_limit IS NULL OR monthly_limit >= 0),
    granted_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
CREATE UNIQUE INDEX billing_grants_live ON billing_grants (user_id, app_id) WHERE revoked_at IS NULL;

CREATE TABLE ledger (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    app_id           TEXT,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    kind             TEXT NOT NULL CHECK (kind IN ('debit', 'refund', 'credit')),
    description      TEXT NOT NULL,
    idempotency_key  TEXT,
    refund_of        TEXT,
    grant_id         TEXT,
    at               INTEGER NOT NULL
);
CREATE UNIQUE INDEX ledger_idempotency ON ledger (user_id, app_id, kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX ledger_by_user_app ON ledger (user_id, app_id, at);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The limit an app suggests in its authorization request (`spending_limit`, minor units).
ALTER TABLE authorization_requests ADD COLUMN suggested_limit INTEGER;
