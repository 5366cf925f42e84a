//! The connector runtime: the long-running task that owns the data sources, the local policy,
//! the activity trail and the link to the hub, and shows its host (the CLI, the desktop app)
//! a live [`ConnectorStatus`].
//!
//! ```no_run
//! # async fn run() -> Result<(), uplink_connector::LinkError> {
//! use uplink_connector::runtime::{ConnectorRuntime, RuntimeOptions};
//!
//! let runtime = ConnectorRuntime::start(RuntimeOptions::new("/var/lib/uplink")).await?;
//! let mut status = runtime.status();
//! tokio::spawn(async move {
//!     while status.changed().await.is_ok() {
//!         let now = status.borrow_and_update().clone();
//!         tracing::info!(link = %now.link, transport = ?now.transport, "connector");
//!     }
//! });
//! runtime.revoke("app_dashboard", Some("line-1")).await?; // the desktop's revoke button
//! runtime.stop().await;
//! # Ok(()) }
//! ```

mod error;
mod event_subscription;
mod link;
pub mod metrics;
mod query;
mod status;
mod subscription;
mod transport_memory;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use uplink_link::{Grant, QueryFailure, RevokeRequest, to_hub};
use uplink_model::DataSourceDescriptor;
use uplink_signalr::Transport;
use uplink_signalr::client::{Backoff, HubConnection};

pub use self::error::LinkError;
pub use self::status::{
    ConnectorStatus, ConsentedApp, LinkState, RevokedApp, SkippedTransport, SourceStatus,
};
pub use self::transport_memory::TRANSPORT_MEMORY_FILE;
use crate::activity::ActivityLog;
use crate::config::{ConfigError, ConnectorConfig, write_atomically};
use crate::credentials::{CredentialStore, LinkCredentials};
use crate::policy::{LocalPolicy, PolicyStore};
use crate::{ConfigStore, DataSource, Health, HealthIssue, SourceConfig, SourceContext, kinds};

/// The file the running connector keeps its status in, for `uplink connector status`.
pub const STATUS_FILE: &str = "status.json";

/// The default [`RuntimeOptions::max_subscriptions`]: each costs a task and one value per tag.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 10_000;

/// How the runtime runs; [`RuntimeOptions::new`] gives the production defaults.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where the configuration, policy, credentials, trail and status live.
    pub data_dir: PathBuf,
    /// Queries served at once; more are answered `busy`.
    pub max_concurrent_queries: usize,
    /// Live-value subscriptions served at once (each shared by every app stream of one app on
    /// the same source and tags); more are ended `busy` at once.
    pub max_subscriptions: usize,
    /// The transports to try, in order.
    pub transports: Vec<Transport>,
    /// Reconnect delays (capped exponential with full jitter).
    pub backoff: Backoff,
    /// How often the round trip to the hub is measured.
    pub heartbeat_interval: Duration,
    /// How long one transport may take to connect and complete the SignalR handshake before
    /// the next is tried.
    pub handshake_timeout: Duration,
    /// After falling back to a slower transport, how often the faster ones are tried again in
    /// the background (`None`: never).
    pub reprobe_interval: Option<Duration>,
    /// A ping is sent when the link sent nothing else for this long.
    pub keep_alive_interval: Duration,
    /// The link counts as lost when nothing arrived from the hub for this long (a half-open
    /// connection is noticed within it).
    pub server_timeout: Duration,
    /// How often the clocks are compared to notice sleep and wall-clock jumps.
    pub clock_check_interval: Duration,
    /// A gap between the monotonic and the wall clock larger than this forces a reconnect.
    pub clock_jump_tolerance: Duration,
    /// Whether to keep [`STATUS_FILE`] up to date (for `uplink connector status`).
    pub write_status_file: bool,
    /// Start with the link paused (the host remembered a pause); see
    /// [`ConnectorRuntime::resume`].
    pub start_paused: bool,
}

impl RuntimeOptions {
    /// Production defaults for the data dir `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_concurrent_queries: 32,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            transports: Transport::ALL.to_vec(),
            backoff: Backoff::default(),
            heartbeat_interval: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(15),
            reprobe_interval: Some(Duration::from_secs(300)),
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            clock_check_interval: Duration::from_secs(2),
            clock_jump_tolerance: Duration::from_secs(5),
            write_status_file: true,
            start_paused: false,
        }
    }
}

/// One configured source and whether it opened.
struct OpenSource {
    config: SourceConfig,
    /// Its stable key (`ConnectorConfig::source_key`): what the site's block follows.
    key: String,
    opened: Result<Arc<dyn DataSource>, String>,
    /// How many tags it has, counted when it opened (for display).
    tag_count: Option<u32>,
}

/// Tag counting stops here: the number is for display.
const MAX_COUNTED_TAGS: u32 = 100_000;

/// Counts a source's tags a page at a time, up to [`MAX_COUNTED_TAGS`]; `None` if it did not
/// open or cannot list its tags.
async fn count_tags(opened: &Result<Arc<dyn DataSource>, String>) -> Option<u32> {
    let source = opened.as_ref().ok()?;
    let mut count = 0u32;
    let mut offset = 0;
    loop {
        let page = source
            .search(&uplink_model::TagSearch {
                pattern: "*".into(),
                offset,
                limit: 1_000,
            })
            .await
            .ok()?;
        count = count.saturating_add(u32::try_from(page.tags.len()).unwrap_or(u32::MAX));
        match page.next_offset {
            Some(next) if count < MAX_COUNTED_TAGS => offset = next,
            _ => return Some(count),
        }
    }
}

/// The link's part of the status, kept by the link task.
#[derive(Debug, Clone, Default)]
struct LinkView {
    state: Option<LinkState>,
    hub_url: Option<String>,
    connector_id: Option<String>,
    transport: Option<String>,
    skipped: Vec<SkippedTransport>,
    connected_since: Option<chrono::DateTime<Utc>>,
    round_trip_ms: Option<f64>,
    reconnects: u64,
    last_error: Option<String>,
}

/// A running link: its connection, its task and the switch that stops it.
struct LinkHandle {
    connection: HubConnection,
    /// The link's token source, also used by the connectivity test.
    tokens: Arc<link::TokenSource>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Shared by the handle, the link task and the query tasks.
pub(crate) struct Inner {
    options: RuntimeOptions,
    config: ConfigStore,
    config_edit: tokio::sync::Mutex<()>,
    policy: PolicyStore,
    activity: ActivityLog,
    metrics: metrics::ConnectorMetrics,
    credentials: CredentialStore,
    sources: std::sync::RwLock<Vec<OpenSource>>,
    grants: Mutex<Vec<Grant>>,
    /// The apps whose every grant here was revoked, as the hub last said.
    revoked_apps: Mutex<Vec<uplink_link::RevokedApp>>,
    hub_ids: Mutex<HashMap<String, String>>,
    /// The site name the owner chose (`settings.displayName`), as last saved or read.
    site_name: Mutex<Option<String>>,
    view: Mutex<LinkView>,
    status: watch::Sender<ConnectorStatus>,
    queries: Mutex<HashMap<String, query::Running>>,
    /// Live-value subscriptions being served, by the hub's subscription id.
    subscriptions: Mutex<HashMap<String, subscription::Running>>,
    /// One source subscription per (source, tags), shared by the subscriptions on it.
    #[allow(clippy::type_complexity)]
    feeds: Mutex<HashMap<(String, Vec<String>), std::sync::Weak<subscription::Feed>>>,
    /// One source events subscription per source, shared by the events subscriptions on it.
    event_feeds: Mutex<HashMap<String, std::sync::Weak<event_subscription::EventFeed>>>,
    /// Signalled when a query starts (the policy follower wakes for it).
    query_started: Arc<Notify>,
    permits: Arc<Semaphore>,
    reregister: Notify,
    link: tokio::sync::Mutex<Option<LinkHandle>>,
    current: Mutex<Option<HubConnection>>,
    /// The transports the next link tries, in order; starts as the options' list.
    transports: Mutex<Vec<Transport>>,
    /// Whether the host paused the link (kept until resumed; the credentials stay).
    paused: std::sync::atomic::AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// The stable key of the source named `name` (as a source of that name configured before
    /// keys existed would have it, when there is none).
    fn source_key(&self, name: &str) -> String {
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        sources
            .iter()
            .find(|s| s.config.name == name)
            .map_or_else(|| format!("name:{name}"), |s| s.key.clone())
    }

    /// The site's veto on `app_id` reading the source named `source`: the block follows
    /// the source's stable key, so it survives a rename.
    fn veto(&self, app_id: &str, source: &str) -> Result<(), QueryFailure> {
        self.policy.check(app_id, source, &self.source_key(source))
    }

    /// The open data source named `name`.
    fn source(&self, name: &str) -> Option<Arc<dyn DataSource>> {
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        sources
            .iter()
            .find(|s| s.config.name == name)
            .and_then(|s| s.opened.as_ref().ok().cloned())
    }

    /// The open data source named `name` with the tags its site lets apps write.
    fn writable_source(
        &self,
        name: &str,
    ) -> Option<(Arc<dyn DataSource>, uplink_source::writing::WritableTags)> {
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        let open = sources.iter().find(|s| s.config.name == name)?;
        let source = open.opened.as_ref().ok()?.clone();
        // Opening checked the patterns; one that no longer reads writes nothing.
        let writable = uplink_source::writing::WritableTags::from_settings(&open.config.settings)
            .unwrap_or_default();
        Some((source, writable))
    }

    /// What the hub is told: every source that opened, offering writes only when its kind can
    /// write and its site turned writing on.
    fn descriptors(&self) -> Vec<DataSourceDescriptor> {
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        sources
            .iter()
            .filter_map(|s| Some((s.opened.as_ref().ok()?, &s.config)))
            .map(|(source, config)| {
                let mut descriptor = source.descriptor();
                descriptor.capabilities.write &=
                    uplink_source::writing::WritableTags::from_settings(&config.settings)
                        .is_ok_and(|tags| !tags.is_off());
                descriptor
            })
            .collect()
    }

    fn update_view(&self, change: impl FnOnce(&mut LinkView)) {
        change(&mut lock(&self.view));
        self.publish();
    }

    fn set_grants(&self, grants: Vec<Grant>, revoked_apps: Vec<uplink_link::RevokedApp>) {
        let before = std::mem::replace(&mut *lock(&self.grants), grants.clone());
        *lock(&self.revoked_apps) = revoked_apps;
        subscription::apply_grants(self, &before, &grants);
        self.publish();
    }

    /// An app's request on `source` is being served: its grant's "last used" moves to now, as
    /// the hub records it, so the window need not wait for the hub's next grant list. As on
    /// the hub, once a minute at most.
    fn note_use(&self, app_id: &str, user_id: &str, source: &str) {
        let now = Utc::now();
        let changed = {
            let mut grants = lock(&self.grants);
            let mut changed = false;
            for grant in grants
                .iter_mut()
                .filter(|g| g.app_id == app_id && g.user_id == user_id && g.source == source)
            {
                if grant.last_used_at.is_none_or(|t| {
                    now - t >= chrono::TimeDelta::seconds(LAST_USED_RESOLUTION_SECS)
                }) {
                    grant.last_used_at = Some(now);
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.publish();
        }
    }

    /// Rebuilds the status from its parts and shows it.
    fn publish(&self) {
        let view = lock(&self.view).clone();
        let grants = lock(&self.grants).clone();
        let hub_ids = lock(&self.hub_ids).clone();
        let policy = self.policy.current().unwrap_or_default();
        let sources = {
            let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
            sources
                .iter()
                .map(|s| {
                    let health = match &s.opened {
                        Ok(source) => source.health(),
                        Err(message) => {
                            let mut health = Health::ok();
                            health.fail(HealthIssue {
                                message: message.clone(),
                                file: None,
                                line: None,
                            });
                            health
                        }
                    };
                    SourceStatus {
                        name: s.config.name.clone(),
                        kind: s.config.kind.clone(),
                        description: s.config.description.clone(),
                        health,
                        hub_id: hub_ids.get(&s.config.name).cloned(),
                        tag_count: s.tag_count,
                        blocked_on_site: policy.source_blocked(&s.key),
                        apps: status::apps_for(&s.config.name, &grants, &policy),
                        recording: s.opened.as_ref().ok().and_then(|source| source.recording()),
                    }
                })
                .collect()
        };
        let status = ConnectorStatus {
            link: view.state.unwrap_or(LinkState::Offline),
            hub_url: view.hub_url,
            connector_id: view.connector_id,
            site_name: link::site_name(lock(&self.site_name).as_deref()),
            transport: view.transport,
            skipped_transports: view.skipped,
            connected_since: view.connected_since,
            round_trip_ms: view.round_trip_ms,
            reconnects: view.reconnects,
            last_error: view.last_error,
            revoked_apps: status::revoked_apps(&lock(&self.revoked_apps), &policy),
            sources,
            policy,
            recent_activity: self.activity.recent(),
            active_queries: lock(&self.queries).len(),
            pid: std::process::id(),
            updated_at: Utc::now(),
        };
        self.status.send_replace(status);
    }
}

/// How often at most a grant's "last used" moves, in seconds (the hub's resolution too).
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The running connector. Dropping it without [`stop`](Self::stop) leaves the link running
/// until the tokio runtime ends.
pub struct ConnectorRuntime {
    inner: Arc<Inner>,
    /// Background tasks ended by [`stop`](Self::stop): the status file writer (when enabled)
    /// and the configuration follower.
    background: Mutex<Vec<JoinHandle<()>>>,
    status_file: bool,
}

impl std::fmt::Debug for ConnectorRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorRuntime")
            .field("data_dir", &self.inner.options.data_dir)
            .finish_non_exhaustive()
    }
}

impl ConnectorRuntime {
    /// Opens the data dir's sources, policy and trail, and links to the hub when the data dir
    /// holds credentials (else the status says signed out).
    ///
    /// # Errors
    /// [`LinkError::Store`] when the data dir cannot be used; [`LinkError::Config`] for an
    /// unusable hub URL or CA certificate.
    pub async fn start(options: RuntimeOptions) -> Result<Self, LinkError> {
        uplink_tls::install_crypto_provider();
        let dir = options.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| ConfigError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let config = ConfigStore::new(&dir);
        let (loaded, problem) = config.load_or_recover()?;
        let mut sources = Vec::with_capacity(loaded.sources.len());
        for source in loaded.sources.clone() {
            let opened = kinds::open_in(&source, &SourceContext::in_dir(&dir).retrying())
                .await
                .map_err(|e| e.to_string());
            if let Err(error) = &opened {
                tracing::warn!(source = %source.name, %error, "data source did not open");
            }
            let tag_count = count_tags(&opened).await;
            sources.push(OpenSource {
                key: loaded.source_key(&source.name),
                config: source,
                opened,
                tag_count,
            });
        }
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(options.max_concurrent_queries.max(1))),
            config,
            config_edit: tokio::sync::Mutex::new(()),
            policy: PolicyStore::new(&dir),
            activity: ActivityLog::open(&dir)?,
            metrics: metrics::ConnectorMetrics::default(),
            credentials: CredentialStore::new(&dir),
            sources: std::sync::RwLock::new(sources),
            grants: Mutex::default(),
            revoked_apps: Mutex::default(),
            site_name: Mutex::new(loaded.settings.display_name.clone()),
            hub_ids: Mutex::default(),
            view: Mutex::default(),
            status: watch::channel(ConnectorStatus::default()).0,
            queries: Mutex::default(),
            subscriptions: Mutex::default(),
            feeds: Mutex::default(),
            event_feeds: Mutex::default(),
            query_started: Arc::new(Notify::new()),
            reregister: Notify::new(),
            link: tokio::sync::Mutex::new(None),
            current: Mutex::new(None),
            transports: Mutex::new(options.transports.clone()),
            paused: std::sync::atomic::AtomicBool::new(options.start_paused),
            options,
        });
        if let Some(problem) = problem {
            lock(&inner.view).last_error = Some(problem.to_string());
        }
        let status_writer = inner
            .options
            .write_status_file
            .then(|| tokio::spawn(write_status_file(inner.clone())));
        let config_follower = tokio::spawn(follow_config_file(Arc::downgrade(&inner)));
        let policy_follower = tokio::spawn(query::follow_policy(
            Arc::downgrade(&inner),
            inner.options.data_dir.clone(),
            inner.query_started.clone(),
        ));
        let status_file = status_writer.is_some();
        let runtime = Self {
            inner,
            background: Mutex::new(
                status_writer
                    .into_iter()
                    .chain([config_follower, policy_follower])
                    .collect(),
            ),
            status_file,
        };
        match runtime.inner.credentials.load() {
            Ok(Some(credentials)) if runtime.is_paused() => runtime.inner.update_view(|v| {
                v.state = Some(LinkState::Offline);
                v.hub_url = Some(credentials.hub_url.clone());
                v.connector_id = Some(credentials.connector_id.clone());
            }),
            Ok(Some(credentials)) => runtime.link_with(credentials).await?,
            // Unreadable credentials leave the connector running, signed out, saying why:
            // its sources and policy stay manageable and a new sign-in replaces the file.
            loaded => {
                let problem = loaded.err().map(|e| e.to_string());
                if let Some(problem) = &problem {
                    tracing::warn!(error = %problem, "the connector's credentials cannot be used");
                }
                runtime.inner.update_view(|v| {
                    *v = LinkView {
                        state: Some(LinkState::SignedOut),
                        last_error: problem.or(v.last_error.take()),
                        ..LinkView::default()
                    }
                });
            }
        }
        Ok(runtime)
    }

    async fn link_with(&self, credentials: LinkCredentials) -> Result<(), LinkError> {
        let mut slot = self.inner.link.lock().await;
        if let Some(old) = slot.take() {
            stop_link(old).await;
        }
        let handle = link::start(&self.inner, credentials)?;
        *lock(&self.inner.current) = Some(handle.connection.clone());
        *slot = Some(handle);
        Ok(())
    }

    /// Signs in with new credentials (after `uplink connector login` or the desktop's sign-in):
    /// stores them and replaces the link.
    ///
    /// # Errors
    /// [`LinkError::Store`] when they cannot be saved; [`LinkError::Config`].
    pub async fn sign_in(&self, credentials: LinkCredentials) -> Result<(), LinkError> {
        // Signing in again to the same hub: the sign-in it replaces is ended there first, or
        // the hub keeps the connector with that one (a sign-in registers only the connectors
        // it created while it is valid).
        if let Ok(Some(previous)) = self.inner.credentials.load() {
            crate::credentials::end_replaced_sign_in(&previous, &credentials).await;
        }
        self.inner.credentials.save(&credentials)?;
        self.inner
            .paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.link_with(credentials).await
    }

    /// Drops the link and forgets the credentials.
    ///
    /// # Errors
    /// [`LinkError::Store`].
    pub async fn sign_out(&self) -> Result<(), LinkError> {
        if let Some(old) = self.inner.link.lock().await.take() {
            stop_link(old).await;
        }
        *lock(&self.inner.current) = None;
        self.inner.credentials.remove()?;
        lock(&self.inner.grants).clear();
        self.inner.update_view(|v| {
            *v = LinkView {
                state: Some(LinkState::SignedOut),
                ..LinkView::default()
            }
        });
        Ok(())
    }

    /// The live status: `borrow()` for now, `changed()` to follow it.
    pub fn status(&self) -> watch::Receiver<ConnectorStatus> {
        self.inner.status.subscribe()
    }

    /// The Prometheus text exposition of this runtime's metrics ([`metrics::CONTENT_TYPE`]).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.scrape(&self.inner.status.borrow())
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.inner.options.data_dir
    }

    /// The open data source named `name`, as relayed queries read it (`None` when no source
    /// of that name is configured or it did not open): what the control surface's tag browser,
    /// live values and local queries read.
    pub fn source(&self, name: &str) -> Option<Arc<dyn DataSource>> {
        self.inner.source(name)
    }

    /// What a data source opened by this connector is given: its data dir.
    pub fn source_context(&self) -> SourceContext {
        SourceContext::in_dir(&self.inner.options.data_dir)
    }

    /// Adds a data source: validated against its kind's form, opened, saved atomically, then
    /// announced to the hub.
    ///
    /// # Errors
    /// [`LinkError::Source`] naming the bad fields or why it did not open; nothing is saved.
    pub async fn add_source(&self, source: SourceConfig) -> Result<(), LinkError> {
        self.add_source_opened(source, None).await
    }

    /// Adds a data source as [`add_source`](Self::add_source) does; `tested` is the same
    /// configuration already opened without recording (by a form's Test), used instead of
    /// opening it again — a large file is read once.
    ///
    /// # Errors
    /// As [`add_source`](Self::add_source).
    pub async fn add_source_opened(
        &self,
        source: SourceConfig,
        tested: Option<Arc<dyn crate::DataSource>>,
    ) -> Result<(), LinkError> {
        let _edit = self.inner.config_edit.lock().await;
        let mut config = self.inner.config.load()?;
        let added = config.add_source(source)?.clone();
        let context = self.source_context();
        let opened = Ok(match tested {
            Some(tested) => kinds::record_as_asked(&added, &context, tested).await?,
            None => kinds::open_in(&added, &context).await?,
        });
        let tag_count = count_tags(&opened).await;
        self.inner.config.save(&config)?;
        self.inner
            .sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(OpenSource {
                key: config.source_key(&added.name),
                config: added,
                opened,
                tag_count,
            });
        self.sources_changed();
        Ok(())
    }

    /// Replaces the source named `name` (its name may change: it keeps its stable key, so on
    /// the hub its id and its grants).
    ///
    /// # Errors
    /// As [`add_source`](Self::add_source), or [`LinkError::Source`] for an unknown name.
    pub async fn edit_source(&self, name: &str, source: SourceConfig) -> Result<(), LinkError> {
        let _edit = self.inner.config_edit.lock().await;
        let mut config = self.inner.config.load()?;
        // Same place in the list, same stable key: to the hub a rename is the same source.
        let (old, added) = config.replace_source(name, source)?;
        let added = added.clone();
        let opened = kinds::open_in(&added, &self.source_context()).await?;
        let tag_count = count_tags(&Ok(opened.clone())).await;
        self.inner.config.save(&config)?;
        {
            let mut sources = self
                .inner
                .sources
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let entry = OpenSource {
                key: config.source_key(&added.name),
                config: added,
                opened: Ok(opened),
                tag_count,
            };
            match sources.iter().position(|s| s.config.name == old.name) {
                Some(at) => sources[at] = entry,
                None => sources.push(entry),
            }
        }
        self.sources_changed();
        Ok(())
    }

    /// Removes the source named `name`; the hub is told at once.
    ///
    /// # Errors
    /// [`LinkError::Source`] for an unknown name; [`LinkError::Store`].
    pub async fn remove_source(&self, name: &str) -> Result<(), LinkError> {
        let _edit = self.inner.config_edit.lock().await;
        let mut config = self.inner.config.load()?;
        config.remove_source(name)?;
        self.inner.config.save(&config)?;
        self.inner
            .sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.config.name != name);
        self.sources_changed();
        Ok(())
    }

    fn sources_changed(&self) {
        // A query on a source that is gone stops now.
        query::reapply(&self.inner);
        self.inner.reregister.notify_one();
        self.inner.publish();
    }

    /// Drops the current link and opens a new one at once, skipping any backoff wait: the
    /// host's Reconnect button. A link the hub ended for good (replaced by a newer link of the
    /// same connector) is opened again from the stored credentials. Does
    /// nothing while signed out or paused.
    ///
    /// # Errors
    /// As [`resume`](Self::resume), when the link has to be opened again.
    pub async fn reconnect(&self) -> Result<(), LinkError> {
        let current = lock(&self.inner.current).clone();
        match current {
            Some(connection) => connection.reconnect_now(),
            None if !self.is_paused() && self.inner.link.lock().await.is_some() => {
                self.relink().await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Closes the link and keeps it closed (no queries are served) until
    /// [`resume`](Self::resume); the credentials, sources and policy stay.
    pub async fn pause(&self) {
        self.inner
            .paused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(old) = self.inner.link.lock().await.take() {
            stop_link(old).await;
        }
        *lock(&self.inner.current) = None;
        self.inner.update_view(|v| {
            v.state = Some(LinkState::Offline);
            v.transport = None;
            v.connected_since = None;
            v.round_trip_ms = None;
        });
    }

    /// Whether the link is paused.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Opens the link again after [`pause`](Self::pause), with the stored credentials.
    ///
    /// # Errors
    /// [`LinkError::Store`] when the credentials cannot be read; [`LinkError::Config`].
    pub async fn resume(&self) -> Result<(), LinkError> {
        self.inner
            .paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.relink().await
    }

    /// The transports the link tries, in order (the host's transport preference); an open
    /// link is replaced so the choice applies at once.
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    pub async fn set_transports(&self, transports: Vec<Transport>) -> Result<(), LinkError> {
        let transports = if transports.is_empty() {
            Transport::ALL.to_vec()
        } else {
            transports
        };
        *lock(&self.inner.transports) = transports;
        if self.is_paused() || lock(&self.inner.current).is_none() {
            return Ok(());
        }
        self.relink().await
    }

    /// Links with the stored credentials, if there are any.
    async fn relink(&self) -> Result<(), LinkError> {
        match self.inner.credentials.load()? {
            Some(credentials) => self.link_with(credentials).await,
            None => {
                self.inner
                    .update_view(|v| v.state = Some(LinkState::SignedOut));
                Ok(())
            }
        }
    }

    /// Tests the way to the signed-in hub step by step (DNS, TCP, TLS, negotiate, each
    /// transport) with the link's own trust, proxy and a fresh access token.
    ///
    /// # Errors
    /// [`LinkError::SignedOut`] without credentials; [`LinkError::Config`] for an unusable
    /// hub URL or CA certificate.
    pub async fn check_connectivity(
        &self,
    ) -> Result<crate::diagnostics::DiagnosticsReport, LinkError> {
        let credentials = self.inner.credentials.load()?.ok_or(LinkError::SignedOut)?;
        let hub = url::Url::parse(&credentials.hub_url)
            .map_err(|e| LinkError::Config(format!("the hub URL is not usable: {e}")))?;
        let tls = crate::diagnostics::link_tls(&credentials)?;
        let tokens = self
            .inner
            .link
            .lock()
            .await
            .as_ref()
            .map(|h| h.tokens.clone());
        // Paused or not yet linked: no token, so the report stops at negotiate and says why.
        let token = match tokens {
            Some(tokens) => tokens.fetch().await.ok(),
            None => None,
        };
        Ok(crate::diagnostics::check_connectivity(
            &hub,
            tls,
            uplink_signalr::client::ProxySetting::default(),
            token,
        )
        .await)
    }

    /// Applies a write as one arriving from the hub is applied (the site's checks, the source,
    /// the activity trail): what a host or a benchmark uses in process.
    pub async fn write(&self, request: &uplink_link::WriteRequest) -> uplink_link::WriteAnswer {
        write::serve(&self.inner, request).await
    }

    /// The local policy in force.
    ///
    /// # Errors
    /// [`LinkError::Store`] when the policy file cannot be read.
    pub fn policy(&self) -> Result<LocalPolicy, LinkError> {
        Ok(self.inner.policy.current()?)
    }

    /// Replaces the local policy (saved atomically): it applies to the next query, and the
    /// running queries it no longer allows stop at once.
    ///
    /// # Errors
    /// [`LinkError::Store`].
    pub fn set_policy(&self, policy: &LocalPolicy) -> Result<(), LinkError> {
        self.inner.policy.save(policy)?;
        query::reapply(&self.inner);
        self.inner.publish();
        Ok(())
    }

    /// Renames the site (what the hub's consent and settings pages show): checked, saved
    /// atomically, then sent to the hub by registering again.
    ///
    /// # Errors
    /// [`LinkError::Source`] with a `name` field error when the name is not acceptable;
    /// [`LinkError::Store`]. Nothing changes on error.
    pub async fn set_site_name(&self, name: &str) -> Result<(), LinkError> {
        let name = link::check_site_name(name)
            .map_err(|message| {
                crate::SourceError::InvalidSettings(vec![crate::form::FieldError::new(
                    "name", message,
                )])
            })?
            .to_owned();
        let _edit = self.inner.config_edit.lock().await;
        let mut config = self.inner.config.load()?;
        config.settings.display_name = Some(name.clone());
        self.inner.config.save(&config)?;
        *lock(&self.inner.site_name) = Some(name);
        self.inner.reregister.notify_one();
        self.inner.publish();
        Ok(())
    }

    /// Blocks (or unblocks) every app on the data source named `name`, whatever the hub
    /// granted. The block follows the source's stable key, so it survives a rename.
    ///
    /// # Errors
    /// [`LinkError::Source`] for an unknown name; [`LinkError::Store`].
    pub async fn set_source_blocked(&self, name: &str, blocked: bool) -> Result<(), LinkError> {
        // Under the edit lock, so a rename cannot slip between finding the key and saving.
        let _edit = self.inner.config_edit.lock().await;
        let key = {
            let sources = self.inner.sources.read().unwrap_or_else(|p| p.into_inner());
            sources
                .iter()
                .find(|s| s.config.name == name)
                .map(|s| s.key.clone())
                .ok_or_else(|| crate::SourceError::UnknownSource(name.to_owned()))?
        };
        let mut policy = self.inner.policy.current()?;
        if blocked {
            policy.block_source(&key);
        } else {
            policy.unblock_source(&key);
        }
        self.set_policy(&policy)
    }

    /// Asks the hub to revoke `app_id`'s grant on `source` (every source of this connector
    /// when `None`): the desktop's revoke button. The hub then pushes the new grants.
    ///
    /// # Errors
    /// [`LinkError::NotLinked`] when not linked; [`LinkError::Refused`] when the hub refused.
    pub async fn revoke(&self, app_id: &str, source: Option<&str>) -> Result<(), LinkError> {
        let connection = lock(&self.inner.current)
            .clone()
            .ok_or(LinkError::SignedOut)?;
        let request = RevokeRequest {
            app_id: app_id.to_owned(),
            source: source.map(str::to_owned),
        };
        connection
            .invoke::<serde_json::Value>(to_hub::REVOKE_GRANT, (request,))
            .await
            .map_err(|e| match e {
                uplink_signalr::Error::Invocation(message) => LinkError::Refused {
                    code: "revoke_refused".into(),
                    message,
                },
                other => LinkError::NotLinked(other.to_string()),
            })?;
        Ok(())
    }

    /// Stops cleanly: running queries are cancelled, the link closed, and the status file
    /// says the connector is offline. Safe to call more than once (a host holding the runtime
    /// in an `Arc` stops it through a shared reference).
    pub async fn stop(&self) {
        let background: Vec<JoinHandle<()>> = lock(&self.background).drain(..).collect();
        for task in background {
            task.abort();
            let _ = task.await;
        }
        if let Some(old) = self.inner.link.lock().await.take() {
            stop_link(old).await;
        }
        *lock(&self.inner.current) = None;
        for (_, running) in lock(&self.inner.queries).drain() {
            running.stop(query::Stop::Cancelled);
        }
        for (_, running) in lock(&self.inner.subscriptions).drain() {
            running.stop(query::Stop::Cancelled);
        }
        self.inner.update_view(|v| {
            v.state = Some(LinkState::Offline);
            v.transport = None;
            v.connected_since = None;
        });
        if self.status_file {
            save_status(&self.inner);
        }
    }
}

/// How often the configuration file is checked for edits made by another process.
const CONFIG_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Applies edits another process (`uplink sources add|remove`) made to the configuration
/// file while the connector runs: changed sources are reopened, removed ones dropped, and the
/// hub told.
async fn follow_config_file(inner: std::sync::Weak<Inner>) {
    let stamp = |inner: &Inner| {
        let path = inner.config.path();
        std::fs::metadata(&path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = match inner.upgrade() {
        Some(inner) => stamp(&inner),
        None => return,
    };
    loop {
        tokio::time::sleep(CONFIG_CHECK_INTERVAL).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = stamp(&inner);
        if now == seen {
            continue;
        }
        seen = now;
        let _edit = inner.config_edit.lock().await;
        match inner.config.load() {
            Ok(config) => apply_config(&inner, &config).await,
            Err(error) => {
                tracing::warn!(%error, "the edited configuration cannot be read; keeping the sources as they are");
            }
        }
    }
}

/// Brings the open sources in line with `wanted`, reopening only what changed.
async fn apply_config(inner: &Inner, edited: &ConnectorConfig) {
    let site_name = edited.settings.display_name.clone();
    if *lock(&inner.site_name) != site_name {
        *lock(&inner.site_name) = site_name;
        inner.reregister.notify_one();
        inner.publish();
    }
    let wanted: Vec<(SourceConfig, String)> = edited
        .sources
        .iter()
        .map(|s| (s.clone(), edited.source_key(&s.name)))
        .collect();
    let current: Vec<(SourceConfig, String)> = inner
        .sources
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|s| (s.config.clone(), s.key.clone()))
        .collect();
    if current == wanted {
        return;
    }
    let mut next = Vec::with_capacity(wanted.len());
    for (config, key) in wanted {
        let unchanged = {
            let sources = inner.sources.read().unwrap_or_else(|p| p.into_inner());
            sources
                .iter()
                .find(|s| s.config == config)
                .map(|s| (s.opened.clone(), s.tag_count))
        };
        let (opened, tag_count) = match unchanged {
            Some(kept) => kept,
            None => {
                tracing::info!(source = %config.name, "data source added or changed in the configuration");
                let context = SourceContext::in_dir(&inner.options.data_dir).retrying();
                let opened = kinds::open_in(&config, &context)
                    .await
                    .map_err(|e| e.to_string());
                let tag_count = count_tags(&opened).await;
                (opened, tag_count)
            }
        };
        next.push(OpenSource {
            config,
            key,
            opened,
            tag_count,
        });
    }
    *inner.sources.write().unwrap_or_else(|p| p.into_inner()) = next;
    query::reapply(inner);
    inner.reregister.notify_one();
    inner.publish();
}

async fn stop_link(handle: LinkHandle) {
    handle.stop.send_replace(true);
    handle.connection.stop().await;
    let _ = handle.task.await;
}

/// Keeps [`STATUS_FILE`] current, at most about once a second.
async fn write_status_file(inner: Arc<Inner>) {
    let mut status = inner.status.subscribe();
    loop {
        save_status(&inner);
        if status.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        status.borrow_and_update();
    }
}

fn save_status(inner: &Inner) {
    let status = inner.status.borrow().clone();
    let json = serde_json::to_vec_pretty(&status).expect("the status serialises");
    let path = inner.options.data_dir.join(STATUS_FILE);
    if let Err(error) = write_atomically(&path, &json, false) {
        tracing::warn!(%error, "cannot write the connector status file");
    }
}

/// Reads the status a running connector keeps in `data_dir`: `None` when no connector runs
/// there (no file, or its process is gone).
///
/// # Errors
/// [`LinkError::Store`] when the file exists but cannot be read.
pub fn read_status_file(data_dir: &Path) -> Result<Option<ConnectorStatus>, LinkError> {
    let path = data_dir.join(STATUS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Io {
                action: "read",
                path,
                source,
            }
            .into());
        }
    };
    let status: ConnectorStatus = serde_json::from_slice(&bytes).map_err(|e| ConfigError::Io {
        action: "read the connector status in",
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    let alive = status.link != LinkState::Offline && uplink_files::process_is_running(status.pid);
    Ok(alive.then_some(status))
}
