-- The hub's store: who exists, which apps are registered, which data sources exist, who granted
-- what to whom, the short-lived OAuth2 artefacts, and an audit trail.
-- Times are Unix seconds (UTC). Secrets are kept only as SHA-256 digests (BLOB).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE apps (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    confidential  INTEGER NOT NULL,
    secret_digest BLOB,
    redirect_uris TEXT NOT NULL, -- JSON array of exact URIs
    scopes        TEXT NOT NULL, -- space-separated scopes the app may ask for
    created_at    INTEGER NOT NULL
);

CREATE TABLE connectors (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL REFERENCES users(id),
    name              TEXT NOT NULL,
    credential_digest BLOB NOT NULL,
    created_at        INTEGER NOT NULL
);

CREATE TABLE data_sources (
    id           TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (connector_id, name)
);

-- One row per consent of a user to an app for one data source. Revoked rows stay for the record.
CREATE TABLE grants (
    id           INTEGER PRIMARY KEY,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    granted_at   INTEGER NOT NULL,
    granted_by   TEXT NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
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
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX token_families_by_user_app ON token_families (user_id, app_id);

CREATE TABLE refresh_tokens (
    digest     BLOB PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE authorization_codes (
    digest         BLOB PRIMARY KEY,
    app_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
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
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    finished_at    INTEGER
);

CREATE TABLE sessions (
    digest      BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE token_keys (
    id         TEXT PRIMARY KEY, -- PASERK key id (k4.lid.…)
    key_bytes  BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    user_id   TEXT,
    app_id    TEXT,
    source_id TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);
