-- Billing: each user's account balance in integer minor units of the hub's one currency, the
-- append-only ledger it is derived from (kept in the same transaction), and the user's consent
-- to an app debiting it, with the monthly limit the user chose (NULL: no limit, chosen so).
CREATE TABLE accounts (
    user_id  TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    balance  BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

CREATE TABLE billing_grants (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id         TEXT NOT NULL,
    monthly_limit  BIGINT CHECK (monthly_limit IS NULL OR monthly_limit >= 0),
    granted_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE UNIQUE INDEX billing_grants_live ON billing_grants (user_id, app_id) WHERE revoked_at IS NULL;

CREATE TABLE ledger (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL,
    app_id           TEXT,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    kind             TEXT NOT NULL CHECK (kind IN ('debit', 'refund', 'credit')),
    description      TEXT NOT NULL,
    idempotency_key  TEXT,
    refund_of        TEXT,
    grant_id         TEXT,
    at               BIGINT NOT NULL
);
CREATE UNIQUE INDEX ledger_idempotency ON ledger (user_id, app_id, kind, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX ledger_by_user_app ON ledger (user_id, app_id, at);
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END;
$$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
-- TRUNCATE skips row triggers; refuse it too.
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- The limit an app suggests in its authorization request (`spending_limit`, minor units).
ALTER TABLE authorization_requests ADD COLUMN suggested_limit BIGINT;
