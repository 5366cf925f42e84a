//! The hub's store: users, apps, connectors, data sources, grants, OAuth2 artefacts, sessions,
//! token keys and the audit log, behind one trait so that another engine (PostgreSQL) can
//! take SQLite's place without touching the HTTP side.
//!
//! Every method that answers a security question reads the store afresh: nothing here caches,
//! so a revoke committed by one call is seen by the next check.

mod sqlite;

pub use sqlite::{CHANGE_POLL, SqliteStore};

use async_trait::async_trait;

use crate::error::Result;

/// A person who signs in to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (`usr_…`).
    pub id: String,
    /// Sign-in name, unique regardless of case.
    pub username: String,
    /// When the account was created.
    pub created_at: i64,
}

/// A registered app (OAuth2 client).
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The OAuth2 client id.
    pub client_id: String,
    /// The name shown on the consent page.
    pub name: String,
    /// Confidential apps authenticate with a secret; public (native, browser) apps only with PKCE.
    pub confidential: bool,
    /// SHA-256 digest of the client secret, for confidential apps.
    pub secret_digest: Option<Vec<u8>>,
    /// Registered redirect URIs, matched exactly (a loopback URI's port may vary).
    pub redirect_uris: Vec<String>,
    /// The scopes this app may ask for.
    pub scopes: Vec<String>,
    /// When it was registered.
    pub created_at: i64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("confidential", &self.confidential)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// A site connector and the user who owns it (and so owns its data sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// Stable id (`con_…`).
    pub id: String,
    /// The owning user's id.
    pub owner_id: String,
    /// The owning user's name.
    pub owner_name: String,
    /// Display name.
    pub name: String,
    /// When it was registered.
    pub created_at: i64,
}

/// A data source offered by a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// Stable id (`src_…`), used in API paths.
    pub id: String,
    /// The connector that serves it.
    pub connector_id: String,
    /// That connector's display name.
    pub connector_name: String,
    /// Name, unique per connector.
    pub name: String,
    /// What it holds, in words.
    pub description: String,
    /// The adapter behind it (`simulated`, `csv`…), as its connector announced; empty until then.
    pub kind: String,
    /// The queries it answers, as its connector last announced; None until announced.
    pub capabilities: Option<uplink_model::Capabilities>,
    /// False once its connector stopped announcing it (kept, since grants refer to it).
    pub available: bool,
}

/// Outcome of a connector's registration on its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorClaim {
    /// First registration: the connector was created for the signed-in owner.
    Created(Connector),
    /// The connector exists and belongs to this owner; its name and software were updated.
    Updated(Connector),
    /// The id belongs to another user's connector.
    OwnedByAnother,
    /// No such connector, and creating one was not allowed.
    Missing,
    /// The id was removed from the hub; it is never registered again.
    Removed,
    /// An administrator provisioned this connector with its own credential: only a link
    /// authenticated with that credential may register as it.
    NeedsCredential,
    /// Another sign-in, still valid, created (or last took over) this connector.
    OtherSignIn,
}

/// The authority a link registers with: the connector's own credential, or an owner's
/// sign-in (a token family with scope `connector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAuthority<'a> {
    /// Client credentials of the connector itself.
    Credential,
    /// A sign-in: it may create a connector, and register only connectors its own family
    /// created — or one whose creating sign-in is no longer valid (revoked or expired), which
    /// it then takes over (signing a connector in again).
    SignIn {
        /// The sign-in's token family.
        family_id: &'a str,
    },
}

/// One valid sign-in of a user (a token family with a usable refresh token), as the settings
/// page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInView {
    /// The token family.
    pub family_id: String,
    /// The client it signed in with.
    pub app_id: String,
    /// That client's name, if it is still registered.
    pub app_name: Option<String>,
    /// The connector it created or took over, if any.
    pub connector_name: Option<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it signed in.
    pub signed_in_at: i64,
    /// When it last obtained tokens.
    pub last_used_at: i64,
    /// The client address it last obtained tokens from, if known.
    pub last_address: Option<String>,
}

/// Changes read from the feed: what changed, in commit order, and the sequence number to
/// wait after next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// The last sequence number read.
    pub cursor: i64,
    /// What changed.
    pub changes: Vec<crate::revocation::Revocation>,
}

/// One live grant on a connector's data source, as the connector is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorGrant {
    /// The app's client id.
    pub app_id: String,
    /// The app's name.
    pub app_name: String,
    /// The user who consented.
    pub user_id: String,
    /// The data source's id.
    pub source_id: String,
    /// The data source's name on the connector.
    pub source_name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub granted_at: i64,
    /// When the app last used it, if ever.
    pub last_used_at: Option<i64>,
}

/// One active grant as the settings page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// The app's client id.
    pub app_id: String,
    /// The app's name.
    pub app_name: String,
    /// The data source's id.
    pub source_id: String,
    /// The data source's name.
    pub source_name: String,
    /// The connector serving it.
    pub connector_name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub granted_at: i64,
    /// When the app last used it, if ever.
    pub last_used_at: Option<i64>,
}

/// The answer of the per-request grant lookup when access is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    /// Row id, to record use.
    pub id: i64,
    /// Scopes granted for this data source.
    pub scopes: Vec<String>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
}

/// A validated `/oauth/authorize` request waiting for sign-in and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// Transaction id (random, in the consent URL).
    pub id: String,
    /// The requesting app.
    pub app_id: String,
    /// The redirect URI it asked for (already checked against its registration).
    pub redirect_uri: String,
    /// The scopes it asked for.
    pub scopes: Vec<String>,
    /// The app's `state`, returned unchanged.
    pub state: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The user it was bound to when first shown, if any.
    pub user_id: Option<String>,
    /// Created.
    pub created_at: i64,
    /// After this the transaction is void.
    pub expires_at: i64,
    /// Set once approved or denied; a transaction ends once.
    pub finished_at: Option<i64>,
}

/// What an authorization code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    /// The app it was issued to.
    pub app_id: String,
    /// The consenting user.
    pub user_id: String,
    /// The redirect URI of the authorization request (must be repeated at the token endpoint).
    pub redirect_uri: String,
    /// Consented scopes.
    pub scopes: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Issued.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// Outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent and a token family was opened for it.
    Fresh {
        /// What the code stands for.
        grant: CodeGrant,
        /// The family opened for what this redemption issues.
        family_id: String,
    },
    /// The code was already used: the family its first use opened is now revoked.
    Replayed,
    /// No such code.
    Unknown,
}

/// A refresh-token family: everything issued from one authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFamily {
    /// Family id (`fam_…`), also carried by access tokens.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The app.
    pub app_id: String,
    /// Scopes consented at the start; refreshes may narrow, never widen.
    pub scopes: Vec<String>,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now spent and its successor stored.
    Rotated(TokenFamily),
    /// The token had already been used: the whole family is now revoked.
    Reused,
    /// Unknown, expired, or its family revoked.
    Invalid,
}

/// A pending device authorization (RFC 8628), as the approving user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// The requesting app.
    pub app_id: String,
    /// The scopes it asked for.
    pub scopes: Vec<String>,
    /// Created.
    pub created_at: i64,
    /// After this the user code is void.
    pub expires_at: i64,
    /// Minimum seconds between polls.
    pub interval_secs: i64,
    /// The client address the device asked from (as the hub saw it), shown to the approver.
    pub requested_from: String,
}

/// Outcome of a device polling the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// The user has not decided yet; `too_fast` if the device polled before its interval.
    Pending {
        /// Polled sooner than allowed.
        too_fast: bool,
    },
    /// The user approved: this is the one redemption, with a newly opened token family.
    Approved(TokenFamily),
    /// The user denied.
    Denied,
    /// Expired, unknown, or already redeemed.
    Invalid,
}

/// A signed-in browser session (the login session; the connector link's session is
/// [`crate::link::session::LinkSession`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// Who is signed in.
    pub user_id: String,
    /// Expiry.
    pub expires_at: i64,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: i64,
    /// What (`sign_in`, `sign_in_failed`, `grant`, `revoke`, …).
    pub event: String,
    /// Who.
    pub user_id: Option<String>,
    /// Which app.
    pub app_id: Option<String>,
    /// Which data source.
    pub source_id: Option<String>,
    /// Free text, never a secret.
    pub detail: String,
}

/// An access-token encryption key as stored.
#[derive(Clone)]
pub struct TokenKeyRecord {
    /// PASERK id (`k4.lid.…`), also in every token's footer.
    pub id: String,
    /// The 32 key bytes.
    pub key_bytes: Vec<u8>,
    /// When it was made; the newest key encrypts, all verify.
    pub created_at: i64,
}

impl std::fmt::Debug for TokenKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeyRecord")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Where the hub keeps its state. SQLite ([`SqliteStore`]) now; PostgreSQL can follow.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // Users
    /// Creates a user; fails with `Conflict` if the name is taken.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User>;
    /// The user and their password hash, by name.
    async fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>>;
    /// A user by id.
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// All users.
    async fn users(&self) -> Result<Vec<User>>;
    /// Replaces a user's password hash, ends their sessions and revokes every token family
    /// of theirs, in one transaction. None if no such user, else the families revoked.
    async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>>;

    // Apps
    /// Registers an app; fails with `Conflict` if the client id exists.
    async fn create_app(&self, app: &App) -> Result<()>;
    /// A registered app.
    async fn app(&self, client_id: &str) -> Result<Option<App>>;
    /// All registered apps.
    async fn apps(&self) -> Result<Vec<App>>;
    /// Replaces an app's redirect URIs; false if no such app.
    async fn set_app_redirect_uris(
        &self,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<bool>;
    /// Removes an app, revoking every grant and token family it holds, in one transaction.
    async fn remove_app(&self, client_id: &str, now: i64) -> Result<bool>;

    // Connectors and data sources
    /// Registers a connector owned by `owner_id`.
    async fn create_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        credential_digest: &[u8],
        now: i64,
    ) -> Result<Connector>;
    /// Connectors, all or one owner's.
    async fn connectors(&self, owner_id: Option<&str>) -> Result<Vec<Connector>>;
    /// Removes a connector and its data sources, revoking every grant on them and the
    /// sign-in that created it; its id is never registered again. None if no such connector,
    /// else the token families revoked. One transaction.
    async fn remove_connector(&self, id: &str, now: i64) -> Result<Option<Vec<String>>>;
    /// A connector by id.
    async fn connector(&self, id: &str) -> Result<Option<Connector>>;
    /// A connector and the digest of its credential (empty for connectors that registered
    /// themselves and have none).
    async fn connector_credential(&self, id: &str) -> Result<Option<(Connector, Vec<u8>)>>;
    /// A connector registers on its link as `owner_id` with `authority`: updates its name and
    /// software if it is that owner's and the authority is the connector's (its credential,
    /// or the sign-in that created it), creates it (without a credential) for a sign-in if
    /// missing and never removed, and never touches another owner's connector. One
    /// transaction.
    async fn claim_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        software: &str,
        authority: LinkAuthority<'_>,
        now: i64,
    ) -> Result<ConnectorClaim>;
    /// Replaces the data sources a connector announces: each is created or updated (kind,
    /// description, capabilities, available again); sources not in the list become
    /// unavailable. Returns every announced source with its id, in the order given.
    async fn announce_sources(
        &self,
        connector_id: &str,
        sources: &[uplink_model::DataSourceDescriptor],
        now: i64,
    ) -> Result<Vec<DataSource>>;
    /// Every live grant on a connector's data sources, ordered by source then app.
    async fn connector_grants(&self, connector_id: &str) -> Result<Vec<ConnectorGrant>>;
    /// Adds a data source to a connector (until the link reports them).
    async fn add_source(
        &self,
        connector_id: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<DataSource>;
    /// The data sources of connectors a user owns, ordered by connector then name.
    async fn sources_owned_by(&self, user_id: &str) -> Result<Vec<DataSource>>;
    /// Every data source.
    async fn sources(&self) -> Result<Vec<DataSource>>;
    /// One data source by id (the app data API's path parameter).
    async fn source(&self, id: &str) -> Result<Option<DataSource>>;

    // Grants
    /// Records consent: one grant per data source, replacing the scopes of an active one.
    async fn grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        scopes: &[String],
        now: i64,
    ) -> Result<()>;
    /// The per-request check: the active grant for (user, app, source), provided the token's
    /// family is still live. Reads the store every time.
    async fn active_grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: &str,
        family_id: &str,
    ) -> Result<Option<ActiveGrant>>;
    /// Records that a grant was used (callers throttle this).
    async fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()>;
    /// A user's active grants, for the settings page.
    async fn grants_of(&self, user_id: &str) -> Result<Vec<GrantView>>;
    /// Revokes one data source's grant (or, with `source_id` None, all of an app's grants) for a
    /// user. When the app has no active grant left for that user, its token families are revoked
    /// too. Returns how many grants were revoked and the families revoked. Committed before it
    /// returns.
    async fn revoke(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, Vec<String>)>;

    // Authorization requests and codes
    /// Stores a consent transaction.
    async fn create_authorization_request(&self, request: &AuthorizationRequest) -> Result<()>;
    /// A consent transaction.
    async fn authorization_request(&self, id: &str) -> Result<Option<AuthorizationRequest>>;
    /// Binds a transaction to the user who first saw it; false if bound to someone else.
    async fn bind_authorization_request(&self, id: &str, user_id: &str) -> Result<bool>;
    /// Ends a transaction; false if it had already ended (approve and deny race for it).
    async fn finish_authorization_request(&self, id: &str, now: i64) -> Result<bool>;
    /// Stores an authorization code by its digest.
    async fn create_code(&self, digest: &[u8], code: &CodeGrant) -> Result<()>;
    /// Spends a code, atomically: exactly one caller gets `Fresh`.
    async fn redeem_code(&self, digest: &[u8], now: i64) -> Result<CodeRedemption>;

    // Refresh tokens and families
    /// Stores a refresh token in a family.
    async fn create_refresh_token(
        &self,
        digest: &[u8],
        family_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// The family of a refresh token, without spending it.
    async fn refresh_token_family(&self, digest: &[u8]) -> Result<Option<TokenFamily>>;
    /// The family of a refresh token that is unspent, unexpired and in a live family.
    async fn live_refresh_token(&self, digest: &[u8], now: i64) -> Result<Option<TokenFamily>>;
    /// Spends a refresh token and stores its successor, atomically; reuse revokes the family.
    async fn rotate_refresh_token(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        new_expires_at: i64,
    ) -> Result<Rotation>;
    /// A token family.
    async fn family(&self, id: &str) -> Result<Option<TokenFamily>>;
    /// Revokes a token family; false if it was already revoked or unknown.
    async fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool>;
    /// Records the client address a refresh token was issued to (shown to the owner).
    async fn note_refresh_address(&self, digest: &[u8], address: &str) -> Result<()>;
    /// A user's valid sign-ins (live families with a usable refresh token), newest first.
    async fn sign_ins_of(&self, user_id: &str, now: i64) -> Result<Vec<SignInView>>;

    // Device authorization (RFC 8628)
    /// Stores a new device authorization by the digests of its device and user codes.
    async fn create_device_authorization(
        &self,
        device_digest: &[u8],
        user_code_digest: &[u8],
        request: &DeviceAuthorization,
    ) -> Result<()>;
    /// An undecided, unexpired device authorization by its user code.
    async fn pending_device_authorization(
        &self,
        user_code_digest: &[u8],
        now: i64,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Records the user's decision (approve for `user_id`, or deny with None); false if it was
    /// already decided or expired.
    async fn decide_device_authorization(
        &self,
        user_code_digest: &[u8],
        user_id: Option<&str>,
        now: i64,
    ) -> Result<bool>;
    /// A device polls with its device code, as app `app_id`; approval is redeemed once.
    async fn poll_device_authorization(
        &self,
        device_digest: &[u8],
        app_id: &str,
        now: i64,
    ) -> Result<DevicePoll>;

    // Sessions
    /// Stores a browser session by its digest.
    async fn create_session(&self, digest: &[u8], session: &LoginSession, now: i64) -> Result<()>;
    /// A live session.
    async fn session(&self, digest: &[u8], now: i64) -> Result<Option<LoginSession>>;
    /// Ends a session.
    async fn delete_session(&self, digest: &[u8]) -> Result<()>;

    // Token keys: they live in their own file (`data_dir::KeyFile`). Hubs before it kept them
    // here; these methods exist to move such keys out, once.
    /// Every access-token key an older hub kept in the store, newest first.
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>>;
    /// Stores an access-token key the way older hubs did. The hub never calls it; tests of
    /// the move to the key file do.
    async fn add_token_key(&self, key: &TokenKeyRecord) -> Result<()>;
    /// Removes every access-token key from the store so that no trace of one stays readable
    /// in its files (the key bytes are overwritten, not only unlinked).
    async fn forget_token_keys(&self) -> Result<()>;

    // Change feed
    /// The newest change's sequence number (0 when there is none): where a follower starts.
    async fn change_cursor(&self) -> Result<i64>;
    /// The changes committed after `after` — by this process or any other using the same
    /// store — in commit order (at most a thousand at a time). Every method that revokes or
    /// grants appends its change in its own transaction.
    async fn changes_after(&self, after: i64) -> Result<ChangeBatch>;
    /// Returns once a change after `after` may have been committed by any process. SQLite
    /// polls (every [`CHANGE_POLL`]); PostgreSQL can LISTEN for a NOTIFY that the same
    /// transactions send.
    async fn wait_for_changes(&self, after: i64) -> Result<()>;
    /// Forgets changes committed before `before` (Unix seconds); returns how many.
    async fn prune_changes(&self, before: i64) -> Result<u64>;

    // Audit
    /// Appends to the audit trail.
    async fn audit(&self, event: &AuditEvent) -> Result<()>;
    /// The newest audit events first.
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>>;
}

/// Splits a space-separated scope string.
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
