//! The hub's state and the operations shared by its HTTP face and its admin commands.

use std::path::Path;
use std::sync::Arc;

use crate::error::{HubError, Result};
use crate::in_flight::InFlight;
use crate::link::LocalRouter;
use crate::password::Passwords;
use crate::rate_limit::{Limiters, RateLimits};
use crate::relay::ConnectorRouter;
use crate::revocation::{LocalAnnouncer, RevocationAnnouncer};
use crate::secret::{Secret, public_id};
use crate::store::prelude::*;
use crate::store::{App, AuditEvent, Connector, DataSource, SqliteStore, User};
use crate::token::Keyring;

/// How a hub behaves. `issuer` is the public origin, e.g. `https://hub.example.com`.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The issuer identifier (RFC 8414): the public `https` origin, without a trailing slash.
    pub issuer: String,
    /// Access-token lifetime in seconds (default 600).
    pub access_token_ttl: i64,
    /// Authorization-code lifetime in seconds (default 600; RFC 6749 recommends at most 10 min).
    pub code_ttl: i64,
    /// Refresh-token lifetime in seconds (default 30 days; each use rotates it).
    pub refresh_token_ttl: i64,
    /// How long a consent transaction stays open (default 600).
    pub authorization_request_ttl: i64,
    /// Browser session lifetime in seconds (default 12 h).
    pub session_ttl: i64,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// How long a relayed query may go without its first chunk, and between two chunks,
    /// before the app gets 504 and the query is cancelled (default 30 s).
    pub query_timeout: std::time::Duration,
    /// The operator's limit on one relayed answer in bytes (default none: answers stream
    /// whatever their size).
    pub max_answer_bytes: Option<u64>,
    /// The most connections the connector link serves at once, counting those still opening
    /// (default [`DEFAULT_MAX_CONNECTORS`]). A connector beyond it is refused with 503 and
    /// `Retry-After` and retries later; links already up are unaffected.
    pub max_connectors: usize,
    /// How long a connector link may stay open without a successful `Register` before the
    /// hub closes it (default [`DEFAULT_REGISTER_TIMEOUT`]): a link that authenticated but
    /// never registers would otherwise hold one of the [`Self::max_connectors`] slots for as
    /// long as its token is renewed.
    pub register_timeout: std::time::Duration,
    /// The most live-value streams one sign-in (access-token family) may have open at once,
    /// on the event-stream route and the app hub together (default
    /// [`DEFAULT_MAX_LIVE_STREAMS_PER_SIGN_IN`]); one more is refused with 429
    /// `too_many_subscriptions`.
    pub max_live_streams_per_sign_in: usize,
    /// The most live-value streams open at once on one connector's data sources, all apps
    /// together (default [`DEFAULT_MAX_LIVE_STREAMS_PER_CONNECTOR`]).
    pub max_live_streams_per_connector: usize,
    /// What one HTTPS connection may hold: the connection cap, header size and count, and
    /// the header and send timeouts (`docs/hardening.md`).
    pub serving: uplink_tls::ServeLimits,
    /// Request body size per kind of route, and how long a body may take to arrive.
    pub bodies: crate::body_limit::BodyLimits,
    /// The file the access-token keys are kept in (0600, never in the store). [`Hub::open`]
    /// uses `<data dir>/token-keys.json` when this is None; [`Hub::new`] then keeps its keys
    /// in memory only, so tokens die with the process.
    pub key_file: Option<std::path::PathBuf>,
    /// The file the ID-token signing keys are kept in (0600). [`Hub::open`] uses
    /// `<data dir>/id-token-keys.json` when this is None; [`Hub::new`] then keeps them in
    /// memory only.
    pub id_key_file: Option<std::path::PathBuf>,
    /// ID-token lifetime in seconds (default 600); a retired signing key stays published
    /// this long after it stopped signing.
    pub id_token_ttl: i64,
    /// Billing: the hub's currency, the default spending limit, the refund window.
    pub billing: crate::billing::BillingConfig,
}

/// The default cap on connector links: about 320 MiB of idle links at ≤ 32 KiB each. Every
/// link holds a file descriptor, so the hub's open-file limit must be above the cap.
pub const DEFAULT_MAX_CONNECTORS: usize = 10_000;

/// The default time a connector link has to register: a connector registers right after its
/// handshake, and even a large registration on a busy hub is stored within seconds.
pub const DEFAULT_REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The default cap on one sign-in's live-value streams: a dashboard's tabs and widgets with
/// room to spare; an app that needs more tags puts them in one stream (up to 1 000 each).
pub const DEFAULT_MAX_LIVE_STREAMS_PER_SIGN_IN: usize = 100;

/// The default cap on live-value streams on one connector's data sources: each holds at most
/// one value per tag on the hub, and the connector shares its work between streams of one app
/// on the same tags.
pub const DEFAULT_MAX_LIVE_STREAMS_PER_CONNECTOR: usize = 10_000;

impl HubConfig {
    /// Defaults for a hub at `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            access_token_ttl: 600,
            code_ttl: 600,
            refresh_token_ttl: 30 * 24 * 3600,
            authorization_request_ttl: 600,
            session_ttl: 12 * 3600,
            rate_limits: RateLimits::default(),
            query_timeout: std::time::Duration::from_secs(30),
            max_answer_bytes: None,
            max_connectors: DEFAULT_MAX_CONNECTORS,
            register_timeout: DEFAULT_REGISTER_TIMEOUT,
            max_live_streams_per_sign_in: DEFAULT_MAX_LIVE_STREAMS_PER_SIGN_IN,
            max_live_streams_per_connector: DEFAULT_MAX_LIVE_STREAMS_PER_CONNECTOR,
            serving: uplink_tls::ServeLimits::default(),
            bodies: crate::body_limit::BodyLimits::default(),
            key_file: None,
            id_key_file: None,
            id_token_ttl: crate::id_token::DEFAULT_TTL,
            billing: crate::billing::BillingConfig::default(),
        }
    }

    /// The audience of access tokens: the hub's app data API.
    pub fn audience(&self) -> String {
        format!("{}/api", self.issuer)
    }
}

/// A running hub's state, shared by every request.
#[derive(Debug)]
pub struct Hub {
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// Access-token keys.
    pub keys: Keyring,
    /// ID-token signing keys (OpenID Connect).
    pub id_keys: crate::id_token::IdTokenKeys,
    /// Password hashing.
    pub passwords: Passwords,
    /// Behaviour.
    pub config: HubConfig,
    /// Where revocations and consents are announced.
    pub announcer: Arc<dyn RevocationAnnouncer>,
    /// This node's live connector links; the app data API relays through it
    /// ([`Hub::relay`]).
    pub links: Arc<LocalRouter>,
    /// The answers relayed right now, each cut when the access it serves ends.
    pub answers: Arc<InFlight>,
    /// The live-value streams open now, counted per sign-in and per connector for their caps.
    pub live_streams: Arc<crate::live_streams::LiveStreams>,
    /// What Prometheus scrapes.
    pub metrics: Arc<crate::metrics::HubMetrics>,
    /// The limits in force, seeded from [`Hub::config`] and replaceable while serving.
    pub limits: Arc<crate::live_limits::LiveLimits>,
    pub(crate) limiters: Limiters,
    /// Debits being handled now and the most at once (the race tests read it).
    pub debits_in_flight: crate::billing::DebitsInFlight,
    /// The last change of the store's feed this hub announced.
    change_cursor: tokio::sync::Mutex<i64>,
    /// The cluster this hub is a replica of, once joined ([`Hub::join_backplane`]).
    backplane: std::sync::OnceLock<Arc<crate::backplane::Backplane>>,
    /// The router over this replica's links and the cluster's, once joined.
    cluster_router: std::sync::OnceLock<Arc<dyn ConnectorRouter>>,
    /// Grants whose use was recorded recently (grant id → when), so a burst of requests on one
    /// grant writes "last used" once, not once per request. Never consulted to allow access.
    pub(crate) recently_touched: std::sync::Mutex<std::collections::HashMap<i64, i64>>,
    /// One-time sign-in links minted in this process and not yet spent.
    pub(crate) sign_in_links: crate::sign_in_links::SignInLinks,
}

/// A newly registered app and, for confidential apps, its secret (shown once).
#[derive(Debug)]
pub struct RegisteredApp {
    /// The app as stored.
    pub app: App,
    /// The client secret, for confidential apps; only its digest is kept.
    pub secret: Option<Secret>,
}

/// A newly registered connector and its credential (shown once).
#[derive(Debug)]
pub struct RegisteredConnector {
    /// The connector as stored.
    pub connector: Connector,
    /// The credential the connector presents on its link; only its digest is kept.
    pub credential: Secret,
}

/// What an administrator asks for when registering an app.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// Name shown to users on the consent page.
    pub name: String,
    /// Client id; generated when None.
    pub client_id: Option<String>,
    /// Confidential (server-side, holds a secret) or public (native/browser, PKCE only).
    pub confidential: bool,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
}

impl Hub {
    /// A hub over `store`, loading (or creating) its token keys.
    pub async fn new(
        store: Arc<dyn Store>,
        config: HubConfig,
        passwords: Passwords,
    ) -> Result<Self> {
        let keys = match &config.key_file {
            Some(path) => {
                let file = crate::data_dir::KeyFile::new(path);
                Keyring::open(file, store.as_ref(), &config.issuer, &config.audience()).await?
            }
            None => Keyring::generate(&config.issuer, &config.audience())?,
        }
        .retire_after(config.access_token_ttl + crate::token::RETIREMENT_MARGIN);
        let id_keys = match &config.id_key_file {
            Some(path) => crate::id_token::IdTokenKeys::open(
                path.clone(),
                &config.issuer,
                config.id_token_ttl,
            )?,
            None => crate::id_token::IdTokenKeys::generate(&config.issuer, config.id_token_ttl)?,
        };
        ensure_connector_client(store.as_ref()).await?;
        let change_cursor = tokio::sync::Mutex::new(store.change_cursor().await?);
        let metrics = Arc::new(crate::metrics::HubMetrics::default());
        Ok(Self {
            change_cursor,
            backplane: std::sync::OnceLock::new(),
            cluster_router: std::sync::OnceLock::new(),
            limiters: Limiters::counted_in(config.rate_limits, metrics.clone()),
            debits_in_flight: Default::default(),
            recently_touched: Default::default(),
            sign_in_links: Default::default(),
            limits: Arc::new(crate::live_limits::LiveLimits::new(
                crate::live_limits::Limits::of(&config),
            )),
            links: Arc::new(LocalRouter::new(
                store.clone(),
                config.query_timeout,
                config.max_answer_bytes,
            )),
            store,
            keys,
            id_keys,
            passwords,
            config,
            announcer: Arc::new(LocalAnnouncer::default()),
            answers: Arc::default(),
            live_streams: Arc::default(),
            metrics,
        })
    }

    /// The connector router the app data API relays through: this node's live links, and
    /// once it joined a backplane ([`Hub::join_backplane`]) the other replicas' too.
    ///
    /// ```no_run
    /// # async fn run(hub: std::sync::Arc<uplink_hub::Hub>) {
    /// let app = uplink_hub::router(hub.clone()); // serves /hubs/connector and /api/v1/
    /// let online = hub.relay().is_online("con_0123456789abcdef0123");
    /// # drop(app); let _ = online; }
    /// ```
    pub fn relay(&self) -> Arc<dyn ConnectorRouter> {
        match self.cluster_router.get() {
            Some(router) => router.clone(),
            None => self.links.clone(),
        }
    }

    /// Makes this hub a replica of the cluster whose NATS server is at `url` (docs/cluster.md):
    /// queries for links held by other replicas are relayed to them, committed changes are
    /// announced to them at once, and a newer link of a connector evicts the older one
    /// wherever it is. Call before serving (the data API takes its router when it is built).
    pub async fn join_backplane(
        self: &Arc<Self>,
        url: &str,
    ) -> std::result::Result<(), crate::backplane::BackplaneError> {
        let backplane = crate::backplane::Backplane::join(url, self).await?;
        // The caps on live-value streams hold for the cluster: counted in the shared store.
        self.live_streams.share(self.store.clone());
        let router: Arc<dyn ConnectorRouter> = Arc::new(backplane.router(self.links.clone()));
        self.backplane
            .set(backplane)
            .map_err(|_| crate::backplane::BackplaneError::AlreadyJoined)?;
        let _ = self.cluster_router.set(router);
        Ok(())
    }

    /// Makes a new access-token key current (the old one retired: it verifies the tokens it
    /// made for one token lifetime more) and tells every process on the store, through the
    /// change feed, to re-read the key file. Returns the new key's id.
    ///
    /// # Errors
    /// The key file cannot be written.
    pub async fn rotate_token_key(&self) -> Result<String> {
        let key_id = self.keys.rotate().await?;
        let change = crate::revocation::Revocation::TokenKeysRotated {
            key_id: key_id.clone(),
        };
        if let Err(e) = self.store.append_change(&change).await {
            // Other replicas still find the key when a token names it (they re-read the file).
            tracing::warn!(error = %e, "the key rotation was not recorded in the change feed");
        }
        self.publish_changes().await;
        Ok(key_id)
    }

    /// Makes a new ID-token signing key current (the old one stays in the JWKS for one ID-token
    /// lifetime more) and tells every process on the store, through the change feed, to
    /// re-read the ID-token key file. Returns the new key's id.
    ///
    /// # Errors
    /// The key file cannot be read or written.
    pub async fn rotate_id_token_key(&self) -> Result<String> {
        let key_id = self.id_keys.rotate()?;
        let change = crate::revocation::Revocation::IdTokenKeysRotated {
            key_id: key_id.clone(),
        };
        if let Err(e) = self.store.append_change(&change).await {
            // Other replicas still see the file change (within 10 s, at once for the JWKS).
            tracing::warn!(error = %e, "the ID-token key rotation was not recorded in the change feed");
        }
        self.publish_changes().await;
        Ok(key_id)
    }

    /// Whether this replica is connected to its backplane's NATS server: `None` for a hub that
    /// joined none (a single process), which needs none.
    pub fn backplane_connected(&self) -> Option<bool> {
        self.backplane.get().map(|b| b.connected())
    }

    /// A one-time link that signs `user_id` in to this hub's pages and continues to `next`
    /// (a path on this hub, such as an `/oauth/authorize?…` request): what the embedded local
    /// hub opens in its owner's browser. Spent on first use, valid for one minute; see
    /// `crates/hub/src/sign_in_links.rs` for why it is safe in a URL.
    ///
    /// # Errors
    /// [`HubError::Invalid`] when `next` is not a path on this hub, or when this hub is a
    /// replica of a cluster (links live in one process's memory).
    pub fn mint_sign_in_link(&self, user_id: &str, next: &str) -> Result<String> {
        if !next.starts_with('/') || next.starts_with("//") || next.contains('\\') {
            return Err(HubError::Invalid(format!(
                "a sign-in link continues to a path on this hub, not '{next}'"
            )));
        }
        if self.backplane.get().is_some() {
            return Err(HubError::Invalid(
                "a hub in a cluster mints no sign-in links: they live in one process".into(),
            ));
        }
        let secret = self.sign_in_links.mint(crate::sign_in_links::SignInLink {
            user_id: user_id.to_owned(),
            next: next.to_owned(),
        });
        Ok(format!(
            "{}{}?token={}",
            self.config.issuer,
            crate::sign_in_links::SIGN_IN_LINK_PATH,
            secret.expose()
        ))
    }

    /// Records a user's consent: one grant per data source, audited, and announced so the
    /// connectors serving them learn at once.
    pub async fn grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        scopes: &[String],
    ) -> Result<()> {
        self.store
            .grant(user_id, app_id, source_ids, scopes, crate::clock::now())
            .await?;
        for source in source_ids {
            self.audit(
                "grant",
                Some(user_id),
                Some(app_id),
                Some(source),
                scopes.join(" "),
            )
            .await;
        }
        self.publish_changes().await;
        Ok(())
    }

    /// Records a user's consent to `app_id` debiting their account up to `monthly_limit`
    /// (None: no limit, the user's explicit choice), audited.
    pub async fn grant_billing(
        &self,
        user_id: &str,
        app_id: &str,
        monthly_limit: Option<i64>,
    ) -> Result<()> {
        self.store
            .grant_billing(user_id, app_id, monthly_limit, crate::clock::now())
            .await?;
        self.audit(
            "billing_granted",
            Some(user_id),
            Some(app_id),
            None,
            monthly_limit.map_or("no limit".to_owned(), |l| format!("limit {l}")),
        )
        .await;
        Ok(())
    }

    /// Revokes a user's consent to `app_id` debiting them: when this returns, no debit that
    /// starts afterwards succeeds. Whether there was one.
    pub async fn revoke_billing(&self, user_id: &str, app_id: &str) -> Result<bool> {
        let done = self
            .store
            .revoke_billing(user_id, app_id, crate::clock::now())
            .await?;
        if done {
            self.audit("billing_revoked", Some(user_id), Some(app_id), None, "")
                .await;
        }
        Ok(done)
    }

    /// The operator's credit or debit of a user's account (by sign-in name), audited.
    pub async fn operator_entry(
        &self,
        username: &str,
        kind: crate::store::TxKind,
        amount: i64,
        note: &str,
    ) -> Result<crate::store::LedgerEntry> {
        if !(1..=crate::billing::MAX_AMOUNT).contains(&amount) {
            return Err(HubError::Invalid(format!(
                "the amount is a whole number of minor units, 1 to {}",
                crate::billing::MAX_AMOUNT
            )));
        }
        let user = self.user_named(username).await?;
        let Some(entry) = self
            .store
            .operator_entry(&user.id, kind, amount, note, crate::clock::now())
            .await?
        else {
            return Err(HubError::Invalid(format!(
                "{username}'s balance is lower than {}",
                self.config.billing.format(amount)
            )));
        };
        self.audit(
            match kind {
                crate::store::TxKind::Credit => "account_credited",
                _ => "account_debited",
            },
            Some(&user.id),
            None,
            None,
            format!("{} {}", entry.id, amount),
        )
        .await;
        Ok(entry)
    }

    /// The user with this sign-in name.
    pub async fn user_named(&self, username: &str) -> Result<User> {
        self.store
            .user_credentials(username)
            .await?
            .map(|(user, _)| user)
            .ok_or_else(|| HubError::NotFound(format!("no user named '{username}'")))
    }

    /// Opens the SQLite store in `data_dir` (creating the directory, 0700) and builds a hub on
    /// it, with its token keys in `data_dir`'s key file unless `config` names another. Refuses
    /// a folder or file other local users could read ([`crate::data_dir::prepare`]).
    pub async fn open(data_dir: &Path, config: HubConfig) -> Result<Self> {
        Self::open_on(data_dir, None, config).await
    }

    /// As [`Hub::open`], with the store in the PostgreSQL database `database` when given
    /// (its schema brought up to date); the key files stay in `data_dir` either way.
    pub async fn open_on(
        data_dir: &Path,
        database: Option<&crate::store::DatabaseUrl>,
        mut config: HubConfig,
    ) -> Result<Self> {
        let store = open_store_at(data_dir, database).await?;
        config
            .key_file
            .get_or_insert_with(|| data_dir.join(crate::data_dir::KEY_FILE));
        config
            .id_key_file
            .get_or_insert_with(|| data_dir.join(crate::id_token::ID_KEY_FILE));
        Self::new(store, config, Passwords::new(2)).await
    }

    /// Records an audit event; a failure to record is logged, never fatal to the request.
    pub async fn audit(
        &self,
        event: &str,
        user_id: Option<&str>,
        app_id: Option<&str>,
        source_id: Option<&str>,
        detail: impl Into<String>,
    ) {
        let event = AuditEvent {
            at: crate::clock::now(),
            event: event.to_owned(),
            user_id: user_id.map(str::to_owned),
            app_id: app_id.map(str::to_owned),
            source_id: source_id.map(str::to_owned),
            detail: detail.into(),
        };
        if let Err(e) = self.store.audit(&event).await {
            tracing::error!(error = %e, event = %event.event, "audit event not recorded");
        }
    }

    /// Revokes a user's grant to an app for one data source (or all, with None). When this
    /// returns, the next grant check refuses. Returns how many grants were revoked.
    pub async fn revoke(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: Option<&str>,
    ) -> Result<u64> {
        let (n, _families) = self
            .store
            .revoke(user_id, app_id, source_id, crate::clock::now())
            .await?;
        self.audit(
            "revoke",
            Some(user_id),
            Some(app_id),
            source_id,
            format!("{n} grant(s)"),
        )
        .await;
        // The grant, and (its last grant gone) the app's sign-ins with the links they opened.
        self.publish_changes().await;
        Ok(n)
    }

    /// Revokes one token family (everything issued from one authorization code).
    pub async fn revoke_family(&self, family_id: &str, reason: &str) -> Result<bool> {
        let done = self
            .store
            .revoke_family(family_id, reason, crate::clock::now())
            .await?;
        self.publish_changes().await;
        Ok(done)
    }

    /// Creates a user after checking the name and hashing the password.
    pub async fn add_user(&self, username: &str, password: String) -> Result<User> {
        validate_username(username)?;
        let hash = self.passwords.hash(password).await?;
        let user = self.store.create_user(username, &hash).await?;
        self.audit("user_added", Some(&user.id), None, None, "")
            .await;
        Ok(user)
    }

    /// Sets a user's display name and email (`None` leaves one as it is, an empty string
    /// clears it), after checking them.
    pub async fn set_profile(
        &self,
        username: &str,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<User> {
        if let Some(name) = display_name
            && (name.chars().count() > 100 || name.chars().any(char::is_control))
        {
            return Err(HubError::Invalid(
                "a display name is at most 100 characters, with no control characters".into(),
            ));
        }
        if let Some(email) = email
            && !email.is_empty()
            && !is_plausible_email(email)
        {
            return Err(HubError::Invalid(format!(
                "'{email}' is not an email address (name@domain, at most 254 characters)"
            )));
        }
        let display_name = display_name.map(str::trim);
        let Some(user) = self
            .store
            .set_profile(username, display_name, email)
            .await?
        else {
            return Err(HubError::NotFound(format!("no user named '{username}'")));
        };
        self.audit("profile_changed", Some(&user.id), None, None, "")
            .await;
        Ok(user)
    }

    /// Sets a user's password, ending their browser sessions and revoking every sign-in
    /// (token family) they made: links those opened close.
    pub async fn set_password(&self, username: &str, password: String) -> Result<()> {
        let hash = self.passwords.hash(password).await?;
        let Some(families) = self
            .store
            .set_password_hash(username, &hash, crate::clock::now())
            .await?
        else {
            return Err(HubError::NotFound(format!("no user named '{username}'")));
        };
        self.audit(
            "password_changed",
            None,
            None,
            None,
            format!("{username}: {} sign-in(s) revoked", families.len()),
        )
        .await;
        self.publish_changes().await;
        Ok(())
    }

    /// Registers an app; for a confidential app the returned secret is the only copy. Scope
    /// `connector` is refused here: an app holding it could link as the owner's connector and
    /// answer other apps' queries. A connector's own client is registered with
    /// [`Hub::add_app_allowing_connector_scope`].
    pub async fn add_app(&self, new: NewApp) -> Result<RegisteredApp> {
        if new.scopes.iter().any(|s| s == crate::scopes::CONNECTOR) {
            return Err(HubError::Invalid(format!(
                "scope '{}' lets an app link as its user's site connector; give it only to a connector's own client, on purpose (uplink hub app add --allow-connector-scope)",
                crate::scopes::CONNECTOR
            )));
        }
        self.register_app(new).await
    }

    /// Registers an app that may ask for scope `connector` (a connector built on another
    /// SignalR client, say), besides any other scopes. The operator's explicit choice: `uplink
    /// hub app add --allow-connector-scope`. Its users still consent to `connector` on its own,
    /// never beside data scopes.
    pub async fn add_app_allowing_connector_scope(&self, new: NewApp) -> Result<RegisteredApp> {
        self.register_app(new).await
    }

    async fn register_app(&self, new: NewApp) -> Result<RegisteredApp> {
        if new.name.trim().is_empty() {
            return Err(HubError::Invalid("the app needs a name".into()));
        }
        if new.redirect_uris.is_empty() {
            return Err(HubError::Invalid(
                "the app needs at least one redirect URI".into(),
            ));
        }
        for uri in &new.redirect_uris {
            crate::oauth::redirect::validate_registration(uri)?;
        }
        if new.scopes.is_empty() {
            return Err(HubError::Invalid("the app needs at least one scope".into()));
        }
        for scope in &new.scopes {
            if !crate::scopes::is_known(scope) {
                return Err(HubError::Invalid(format!(
                    "unknown scope '{scope}' (known: {})",
                    crate::scopes::ALL
                        .iter()
                        .map(|(s, _)| *s)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let client_id = match new.client_id {
            Some(id) => {
                // `con_` names connectors, whose tokens the link tells apart by it.
                if id.starts_with("con_") || id == uplink_link::CONNECTOR_CLIENT_ID {
                    return Err(HubError::Invalid(format!(
                        "client id '{id}' is reserved for connectors"
                    )));
                }
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(HubError::Invalid(format!(
                        "client id '{id}' must be 1–64 letters, digits, '-', '_' or '.'"
                    )));
                }
                id
            }
            None => public_id("app"),
        };
        let secret = new.confidential.then(Secret::generate);
        let app = App {
            client_id,
            name: new.name.trim().to_owned(),
            confidential: new.confidential,
            secret_digest: secret.as_ref().map(Secret::digest),
            redirect_uris: new.redirect_uris,
            scopes: new.scopes,
            created_at: crate::clock::now(),
        };
        self.store.create_app(&app).await?;
        self.audit("app_added", None, Some(&app.client_id), None, "")
            .await;
        Ok(RegisteredApp { app, secret })
    }

    /// Removes an app and everything it was granted.
    pub async fn remove_app(&self, client_id: &str) -> Result<()> {
        if !self
            .store
            .remove_app(client_id, crate::clock::now())
            .await?
        {
            return Err(HubError::NotFound(format!(
                "no app with client id '{client_id}'"
            )));
        }
        self.audit("app_removed", None, Some(client_id), None, "")
            .await;
        self.publish_changes().await;
        Ok(())
    }

    /// Registers a connector owned by the user named `owner`.
    pub async fn add_connector(&self, owner: &str, name: &str) -> Result<RegisteredConnector> {
        if name.trim().is_empty() {
            return Err(HubError::Invalid("the connector needs a name".into()));
        }
        let (user, _) = self
            .store
            .user_credentials(owner)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("no user named '{owner}'")))?;
        let credential = Secret::generate();
        let connector = self
            .store
            .create_connector(
                &public_id("con"),
                &user.id,
                name.trim(),
                &credential.digest(),
                crate::clock::now(),
            )
            .await?;
        self.audit(
            "connector_added",
            Some(&user.id),
            None,
            None,
            connector.id.clone(),
        )
        .await;
        Ok(RegisteredConnector {
            connector,
            credential,
        })
    }

    /// Removes a connector: grants on its data sources and the sign-in that created it are
    /// revoked, its link closes, and its id is never registered again.
    pub async fn remove_connector(&self, id: &str) -> Result<()> {
        let Some(_families) = self.store.remove_connector(id, crate::clock::now()).await? else {
            return Err(HubError::NotFound(format!("no connector with id '{id}'")));
        };
        self.audit("connector_removed", None, None, None, id.to_owned())
            .await;
        // The removal, and the sign-in that created it.
        self.publish_changes().await;
        Ok(())
    }

    /// Announces the changes this hub just committed (and any other news of the feed), then
    /// tells the other replicas of its cluster, if any, to read the feed now. Called after each
    /// of this hub's own revokes, removals and consents, so they are announced here before the
    /// call returns.
    pub async fn publish_changes(&self) {
        self.announce_changes().await;
        if let Some(backplane) = self.backplane.get() {
            backplane.changes_committed().await;
        }
    }

    /// Announces every change committed to the store since the last one announced — by this
    /// process or another sharing the store — once each, in commit order ([`Hub::follow_changes`]
    /// and the backplane's news call it for everyone else's).
    pub async fn announce_changes(&self) {
        let mut cursor = self.change_cursor.lock().await;
        loop {
            match self.store.changes_after(*cursor).await {
                Ok(batch) => {
                    let done = batch.cursor == *cursor;
                    *cursor = batch.cursor;
                    for change in batch.changes {
                        if let crate::revocation::Revocation::TokenKeysRotated { key_id } = &change
                        {
                            // Only this keyring cares: links and answers are not affected.
                            match self.keys.reload() {
                                Ok(_) => {
                                    tracing::info!(%key_id, "access-token keys re-read after a rotation")
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the rotated access-token keys cannot be re-read")
                                }
                            }
                            continue;
                        }
                        if let crate::revocation::Revocation::IdTokenKeysRotated { key_id } =
                            &change
                        {
                            match self.id_keys.reload() {
                                Ok(_) => {
                                    tracing::info!(%key_id, "ID-token keys re-read after a rotation")
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "the rotated ID-token keys cannot be re-read")
                                }
                            }
                            continue;
                        }
                        if let Some(kind) = change.kind() {
                            self.metrics
                                .revocations
                                .get_or_create(&crate::metrics::KindLabel {
                                    kind: kind.to_owned(),
                                })
                                .inc();
                        }
                        self.announcer.announce(change);
                    }
                    if done {
                        break;
                    }
                }
                Err(e) => {
                    // Announced on the next call; the store already refuses what was revoked.
                    tracing::error!(error = %e, "the change feed cannot be read");
                    break;
                }
            }
        }
    }

    /// Follows the store's change feed for as long as the hub serves, so that a revoke made
    /// by an admin command run beside the hub (or by another node) reaches live links at once.
    pub async fn follow_changes(self: Arc<Self>) {
        /// How often the key file is checked for a change made behind the hub's back.
        const KEY_FILE_CHECK_SECONDS: i64 = 10;
        const KEEP_CHANGES: i64 = 24 * 3600;
        let mut pruned_at = 0;
        let mut keys_checked_at = 0;
        loop {
            self.announce_changes().await;
            let now = crate::clock::now();
            if now - keys_checked_at >= KEY_FILE_CHECK_SECONDS {
                keys_checked_at = now;
                // A key file copied in by an operator, not announced on the feed.
                match self.keys.reload_if_changed() {
                    Ok(true) => tracing::info!("access-token key file changed; re-read"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the access-token key file cannot be re-read")
                    }
                }
                match self.id_keys.reload_if_changed() {
                    Ok(true) => tracing::info!("ID-token key file changed; re-read"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the ID-token key file cannot be re-read")
                    }
                }
            }
            let after = *self.change_cursor.lock().await;
            if let Err(e) = self.store.wait_for_changes(after).await {
                tracing::error!(error = %e, "the change feed cannot be read; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            let now = crate::clock::now();
            if now - pruned_at > 600 {
                pruned_at = now;
                if let Err(e) = self.store.prune_changes(now - KEEP_CHANGES).await {
                    tracing::warn!(error = %e, "old changes not pruned");
                }
            }
        }
    }

    /// Adds a data source to a connector. Until the connector link reports its sources, this is
    /// how they are registered (admin command `uplink hub source add`, and tests).
    pub async fn add_source(
        &self,
        connector_id: &str,
        name: &str,
        description: &str,
    ) -> Result<DataSource> {
        if name.trim().is_empty() {
            return Err(HubError::Invalid("the data source needs a name".into()));
        }
        self.store
            .add_source(
                connector_id,
                name.trim(),
                description.trim(),
                crate::clock::now(),
            )
            .await
    }

    /// Forgets idle rate-limit keys; call periodically.
    pub fn forget_idle_rate_limits(&self) {
        self.limiters.forget_idle();
        let now = crate::clock::now();
        self.recently_touched
            .lock()
            .expect("touch record lock poisoned")
            .retain(|_, at| now - *at < crate::access::LAST_USED_RESOLUTION);
    }
}

/// The redirect URI of the built-in connector client: a loopback listener on any port
/// (RFC 8252 §7.3), where the connector's browser sign-in receives its code.
pub const CONNECTOR_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// Registers the built-in public client connectors sign in with, or brings an existing one up
/// to date. It may ask for scope `connector` only, through the device flow (`uplink connector
/// login`) or the authorization-code flow with PKCE and a loopback redirect (the desktop app's
/// browser sign-in). Hubs whose row predates the browser sign-in get the redirect URI here.
async fn ensure_connector_client(store: &dyn Store) -> Result<()> {
    let redirect_uris = vec![CONNECTOR_REDIRECT_URI.to_owned()];
    if let Some(existing) = store.app(uplink_link::CONNECTOR_CLIENT_ID).await? {
        if existing.redirect_uris != redirect_uris {
            store
                .set_app_redirect_uris(uplink_link::CONNECTOR_CLIENT_ID, &redirect_uris)
                .await?;
            tracing::info!(
                client_id = uplink_link::CONNECTOR_CLIENT_ID,
                redirect_uri = CONNECTOR_REDIRECT_URI,
                "the built-in connector client may now sign in through the browser"
            );
        }
        return Ok(());
    }
    let app = App {
        client_id: uplink_link::CONNECTOR_CLIENT_ID.to_owned(),
        name: "Uplink connector".to_owned(),
        confidential: false,
        secret_digest: None,
        redirect_uris,
        scopes: vec![crate::scopes::CONNECTOR.to_owned()],
        created_at: crate::clock::now(),
    };
    match store.create_app(&app).await {
        // Another node registered it first.
        Ok(()) | Err(HubError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens (creating) the SQLite store file `hub.db` in `data_dir`, after checking that the
/// folder (0700) and the hub's files (0600) are the owner's alone.
pub async fn open_store(data_dir: &Path) -> Result<SqliteStore> {
    crate::data_dir::prepare(data_dir)?;
    SqliteStore::open(&data_dir.join(crate::data_dir::STORE_FILE)).await
}

/// The hub's store: the PostgreSQL database `database` when given (the data folder is still
/// prepared, for the key files beside it), else SQLite in `data_dir` ([`open_store`]).
pub async fn open_store_at(
    data_dir: &Path,
    database: Option<&crate::store::DatabaseUrl>,
) -> Result<Arc<dyn Store>> {
    Ok(match database {
        Some(url) => {
            crate::data_dir::prepare_folder(data_dir)?;
            Arc::new(crate::store::PostgresStore::open(url).await?)
        }
        None => Arc::new(open_store(data_dir).await?),
    })
}

fn validate_username(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(HubError::Invalid(format!(
            "username '{name}' must be 2–64 letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

/// An email address as far as the hub checks one: `local@domain`, with a dot in the domain,
/// no spaces, at most 254 characters. Whether it is reachable is the user's business.
fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh() -> (tempfile::TempDir, Hub) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("hub")).await.unwrap();
        let hub = Hub::new(
            Arc::new(store),
            HubConfig::new("https://hub.test/"),
            Passwords::with_cost(1, 64, 1),
        )
        .await
        .unwrap();
        (dir, hub)
    }

    #[tokio::test]
    async fn a_fresh_hub_has_no_account_no_app_and_no_default_password() {
        let (_dir, hub) = fresh().await;
        assert_eq!(hub.config.issuer, "https://hub.test");
        assert!(hub.store.users().await.unwrap().is_empty());
        let apps = hub.store.apps().await.unwrap();
        assert_eq!(apps.len(), 1, "only the built-in connector client");
        assert_eq!(apps[0].client_id, uplink_link::CONNECTOR_CLIENT_ID);
        assert_eq!(apps[0].scopes, vec![crate::scopes::CONNECTOR]);
        assert!(!apps[0].confidential);
        assert_eq!(apps[0].redirect_uris, vec![CONNECTOR_REDIRECT_URI]);
        assert!(hub.store.connectors(None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_hub_whose_connector_client_predates_the_browser_sign_in_gains_its_redirect_uri() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("hub")).await.unwrap();
        // The row as hubs before the browser sign-in wrote it: no redirect URI.
        store
            .create_app(&App {
                client_id: uplink_link::CONNECTOR_CLIENT_ID.to_owned(),
                name: "Uplink connector".to_owned(),
                confidential: false,
                secret_digest: None,
                redirect_uris: Vec::new(),
                scopes: vec![crate::scopes::CONNECTOR.to_owned()],
                created_at: 0,
            })
            .await
            .unwrap();
        let hub = Hub::new(
            Arc::new(store),
            HubConfig::new("https://hub.test"),
            Passwords::with_cost(1, 64, 1),
        )
        .await
        .unwrap();
        let client = hub
            .store
            .app(uplink_link::CONNECTOR_CLIENT_ID)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(client.redirect_uris, vec![CONNECTOR_REDIRECT_URI]);
        assert_eq!(client.scopes, vec![crate::scopes::CONNECTOR]);
        assert_eq!(client.created_at, 0, "the row was updated, not replaced");
    }

    #[tokio::test]
    async fn bad_registrations_are_refused_with_reasons() {
        let (_dir, hub) = fresh().await;
        let err = hub
            .add_user("a b", "long enough password".into())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("username 'a b'"));
        let app = |uri: &str, scope: &str, id: Option<&str>| NewApp {
            name: "X".into(),
            client_id: id.map(str::to_owned),
            confidential: true,
            redirect_uris: vec![uri.into()],
            scopes: vec![scope.into()],
        };
        let err = hub
            .add_app(app("http://app.example/cb", "data.read", None))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("https"));
        let err = hub
            .add_app(app("https://app.example/cb", "admin", None))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown scope 'admin'"));
        let err = hub
            .add_app(app("https://app.example/cb", "data.read", Some("a/b")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("client id 'a/b'"));
        let ok = hub
            .add_app(app("https://app.example/cb", "data.read", None))
            .await
            .unwrap();
        assert!(ok.secret.is_some(), "a confidential app gets a secret");
        let err = hub
            .add_app(app("https://app.example/cb", "connector", None))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--allow-connector-scope"), "{err}");
        let connector_app = hub
            .add_app_allowing_connector_scope(app("https://app.example/cb", "connector", None))
            .await
            .unwrap();
        assert_eq!(connector_app.app.scopes, vec!["connector"]);
        let err = hub.add_connector("nobody", "Plant").await.unwrap_err();
        assert_eq!(err.code(), "not_found");
    }
}
