-- Which sign-in stands behind a connector, what the owner sees of each sign-in, connectors
-- removed for good, and the change feed every hub process follows.

-- The token family of the sign-in that created (or last took over) a connector; NULL for a
-- connector an administrator provisioned with its own credential. A link authenticated by a
-- sign-in registers only connectors whose family this is.
ALTER TABLE connectors ADD COLUMN signed_in_family TEXT;

-- From where a refresh token was obtained (the client's address), for the owner's list of
-- sign-ins; a family's newest refresh token says when and from where it was last used.
ALTER TABLE refresh_tokens ADD COLUMN client_address TEXT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- A removed connector's id is never registered again.
CREATE TABLE removed_connectors (
    id         TEXT PRIMARY KEY,
    removed_at BIGINT NOT NULL
);

-- Revocations and consents, appended in the same transaction as the change itself, so every
-- hub process using this store (and an admin command run beside it) learns of them. `change`
-- is the announcement as JSON. Writers take one transaction-scoped advisory lock before
-- appending (store/postgres/mod.rs), so `seq` order is commit order.
CREATE TABLE changes (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    change TEXT NOT NULL
);
