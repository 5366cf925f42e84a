-- OpenID Connect: a user's display name and email (shown to apps granted `profile` / `email`),
-- the nonce an app sent with its authorization request (echoed in the ID token) and when the
-- user signed in (the ID token's auth_time).
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE authorization_requests ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
