-- The hub's store on PostgreSQL, in step with migrations/ (SQLite): same numbering, same meaning.
-- Times are Unix seconds (UTC, BIGINT). Secrets are kept only as SHA-256 digests (BYTEA).
-- Where SQLite has an implicit rowid that a query orders by, a `seq` identity column stands in.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
-- SQLite's COLLATE NOCASE: one user per name whatever its case.
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE apps (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    confidential  BOOLEAN NOT NULL,
    secret_digest BYTEA,
    redirect_uris TEXT NOT NULL, -- JSON array of exact URIs
    scopes        TEXT NOT NULL, -- space-separated scopes the app may ask for
    created_at    BIGINT NOT NULL
);

CREATE TABLE connectors (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL REFERENCES users(id),
    name              TEXT NOT NULL,
    credential_digest BYTEA NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE data_sources (
    id           TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    UNIQUE (connector_id, name)
);

-- One row per consent of a user to an app for one data source. Revoked rows stay for the record.
CREATE TABLE grants (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    granted_by   TEXT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    revoked_by   TEXT
);
CREATE UNIQUE INDEX grants_active ON grants (user_id, app_id, source_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_by_user ON grants (user_id);

-- Everything issued from one authorization code: its refresh tokens rotate within the family,
-- and access tokens name the family, so revoking the family stops them all.
CREATE TABLE token_families (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX token_families_by_user_app ON token_families (user_id, app_id);

CREATE TABLE refresh_tokens (
    digest     BYTEA PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE authorization_codes (
    digest         BYTEA PRIMARY KEY,
    app_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    family_id      TEXT
);

-- A consent transaction: a validated /oauth/authorize request waiting for the user.
CREATE TABLE authorization_requests (
    id             TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    state          TEXT,
    code_challenge TEXT NOT NULL,
    user_id        TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    finished_at    BIGINT
);

CREATE TABLE sessions (
    digest      BYTEA PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE token_keys (
    id         TEXT PRIMARY KEY, -- PASERK key id (k4.lid.…)
    key_bytes  BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    app_id    TEXT,
    source_id TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);
