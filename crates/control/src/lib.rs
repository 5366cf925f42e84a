//! The control surface a connector shows its user interfaces: typed commands and the view
//! models they return, over a connector runtime this crate owns.
//!
//! The commands are one table (`command_table.rs`) and all reach [`Control::dispatch`]: the
//! desktop app's Tauri IPC commands directly, or on Linux through the tray process's loopback
//! bridge ([`http::commands_router`]); and [`http::router`] serves the web UI and the same
//! commands over loopback HTTP, so a machine without a desktop can be managed from a browser.
//! State changes are pushed (a [`watch`] of [`ControlStatus`]), never polled.
//! Every type that crosses either boundary derives [`ts_rs::TS`]; the UI's TypeScript
//! bindings are generated from them and a test fails when they drift.
//!
//! ```no_run
//! # async fn run() -> Result<(), uplink_control::ControlError> {
//! use uplink_control::{Control, HostKind};
//!
//! let control = Control::start(HostKind::Browser, "/var/lib/uplink".into());
//! control.use_local_hub().await?; // the embedded default: a hub on loopback
//! let mut status = control.watch();
//! while status.changed().await.is_ok() {
//!     tracing::info!(link = %status.borrow().connector.link, "status");
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod alerts;
mod command_table;
pub mod commands;
mod diagnostics;
mod error;
mod events;
mod folders;
pub mod http;
mod info;
mod local_hub;
mod local_query;
mod runs;
mod settings;
mod sign_in;
mod sources;
mod tags;
mod view;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, ConnectorStatus, RuntimeOptions};

pub use alerts::{Alert, Alerts};
pub use diagnostics::DIAGNOSTICS_DIR;
pub use error::{ControlError, ControlErrorCode};
pub use events::{
    DEFAULT_EVENTS_LIMIT, DEFAULT_EVENTS_SINCE, MAX_EVENTS_LIMIT, RecentEvents, SourceEvent,
};
pub use folders::{FolderEntry, FolderListing, MAX_FOLDER_ENTRIES};
pub use info::{AppInfo, HostKind};
pub use local_hub::DEMO_APP;
pub use local_query::{LocalQuery, QueryKind, QueryTable};
pub use settings::{Settings, SettingsStore};
pub use sources::{SampleValue, SourceTest};
pub use tags::{
    LiveValue, MAX_WATCHED_TAGS, MAX_WATCHES, SourceAbilities, TagRow, TagWatch, TagsPage,
    WATCH_LEASE, WatchedValues,
};
pub use uplink_connector::browser_sign_in::PendingSignIn;
pub use view::{ControlStatus, DemoConsent, LinkEvent, LinkHistory, LocalHub, TransportPreference};

pub use commands::COMMANDS;
use local_hub::RunningHub;

/// The commands a user interface may call, independent of how they arrive. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    host: HostKind,
    data_dir: PathBuf,
    settings: SettingsStore,
    chosen: Mutex<Settings>,
    /// Set once the runtime has started (or failed to).
    runtime: watch::Sender<Option<Result<Arc<ConnectorRuntime>, ControlError>>>,
    status: watch::Sender<ControlStatus>,
    history: Mutex<LinkHistory>,
    local_hub: tokio::sync::Mutex<Option<RunningHub>>,
    local_hub_view: Mutex<Option<LocalHub>>,
    browser: Mutex<uplink_connector::browser_sign_in::BrowserSignIn>,
    sign_in: Mutex<Option<sign_in::Waiting>>,
    sign_in_error: Mutex<Option<String>>,
    /// The tag watches of the pages showing live values.
    watches: tags::Watches,
    /// The slow steps a window may stop.
    runs: runs::Runs,
    /// The source the last Test opened, with its validated configuration, for an Add of the
    /// same settings (a large file is read once).
    tested: Mutex<
        Option<(
            uplink_connector::SourceConfig,
            Arc<dyn uplink_connector::DataSource>,
        )>,
    >,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Control {
    /// Starts the control surface over the connector in `data_dir`. Returns at once; the
    /// runtime (and the local hub, if the owner chose it) start in the background and the
    /// status follows. Must be called within a tokio runtime.
    pub fn start(host: HostKind, data_dir: PathBuf) -> Self {
        let settings = SettingsStore::new(&data_dir);
        let chosen = settings.load();
        let initial = ControlStatus {
            connector: ConnectorStatus::default(),
            configured: false,
            paused: chosen.paused,
            transport_preference: chosen.transport_preference,
            local_hub: None,
            link_history: Vec::new(),
            sign_in: None,
            sign_in_error: None,
            data_dir: data_dir.display().to_string(),
        };
        let control = Self {
            inner: Arc::new(Inner {
                host,
                data_dir,
                settings,
                chosen: Mutex::new(chosen),
                runtime: watch::channel(None).0,
                status: watch::channel(initial).0,
                history: Mutex::default(),
                local_hub: tokio::sync::Mutex::new(None),
                local_hub_view: Mutex::new(None),
                browser: Mutex::default(),
                sign_in: Mutex::new(None),
                sign_in_error: Mutex::new(None),
                watches: tags::Watches::default(),
                runs: runs::Runs::default(),
                tested: Mutex::new(None),
            }),
        };
        tokio::spawn(control.clone().launch());
        control
    }

    async fn launch(self) {
        let chosen = lock(&self.inner.chosen).clone();
        if chosen.local_hub
            && let Err(error) = self.start_local_hub().await
        {
            tracing::warn!(%error, "the local hub did not start");
        }
        let mut options = RuntimeOptions::new(&self.inner.data_dir);
        options.transports = chosen.transport_preference.transports();
        options.start_paused = chosen.paused;
        let started = ConnectorRuntime::start(options)
            .await
            .map(Arc::new)
            .map_err(ControlError::from);
        match &started {
            Ok(runtime) => {
                tokio::spawn(follow(Arc::downgrade(&self.inner), runtime.status()));
            }
            Err(error) => tracing::error!(%error, "the connector runtime did not start"),
        }
        self.inner.runtime.send_replace(Some(started));
        if chosen.local_hub
            && let Err(error) = self.link_to_local_hub().await
        {
            tracing::warn!(%error, "could not link to the local hub");
        }
        self.inner.publish();
    }

    /// The runtime, once started.
    async fn runtime(&self) -> Result<Arc<ConnectorRuntime>, ControlError> {
        let mut ready = self.inner.runtime.subscribe();
        let started = ready.wait_for(Option::is_some).await.map_err(|_| {
            ControlError::new(ControlErrorCode::Stopped, "the connector has stopped")
        })?;
        started.clone().expect("waited for it")
    }

    /// The live status: `borrow()` for now, `changed()` to follow it.
    pub fn watch(&self) -> watch::Receiver<ControlStatus> {
        self.inner.status.subscribe()
    }

    /// Which product, version and host the UI is talking to (the About page).
    pub fn app_info(&self) -> AppInfo {
        AppInfo::current(self.inner.host)
    }

    /// The owner's remembered choices.
    pub fn settings(&self) -> Settings {
        lock(&self.inner.chosen).clone()
    }

    /// The data dir this control surface manages.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Everything the UI shows, now.
    pub fn status(&self) -> ControlStatus {
        self.inner.status.borrow().clone()
    }

    /// Drops the link and opens a new one at once.
    pub async fn reconnect(&self) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        if runtime.is_paused() {
            return Err(ControlError::new(
                ControlErrorCode::Paused,
                "the link is paused: resume it to reconnect",
            ));
        }
        runtime.reconnect().await?;
        Ok(())
    }

    /// Pauses the link (no queries are served) or resumes it; remembered across restarts.
    pub async fn set_paused(&self, paused: bool) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        self.remember(|s| s.paused = paused)?;
        if paused {
            runtime.pause().await;
        } else {
            runtime.resume().await?;
        }
        self.inner.publish();
        Ok(())
    }

    /// Which transports the link may use; remembered, and applied at once.
    pub async fn set_transport_preference(
        &self,
        preference: TransportPreference,
    ) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        self.remember(|s| s.transport_preference = preference)?;
        runtime.set_transports(preference.transports()).await?;
        self.inner.publish();
        Ok(())
    }

    fn remember(&self, change: impl FnOnce(&mut Settings)) -> Result<(), ControlError> {
        let mut chosen = lock(&self.inner.chosen);
        let mut next = chosen.clone();
        change(&mut next);
        self.inner.settings.save(&next)?;
        *chosen = next;
        Ok(())
    }

    /// Takes back `app_id`'s access to `source`, or to every source when `None`. The hub
    /// confirms by pushing the new grants, which the status shows.
    pub async fn revoke(&self, app_id: &str, source: Option<&str>) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        runtime.revoke(app_id, source).await.map_err(|e| match e {
            uplink_connector::LinkError::Refused { message, .. } => {
                ControlError::new(ControlErrorCode::RevokeRefused, message)
            }
            other => other.into(),
        })
    }

    /// Blocks (or unblocks) an app on this site, whatever the hub granted.
    pub async fn set_app_blocked(&self, app_id: &str, blocked: bool) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        let mut policy = runtime.policy()?;
        if blocked {
            policy.block_app(app_id);
        } else {
            policy.unblock_app(app_id);
        }
        runtime.set_policy(&policy)?;
        Ok(())
    }

    /// Blocks (or unblocks) every app on a data source on this site, whatever the hub
    /// granted; the block stays when the source is renamed.
    pub async fn set_source_blocked(
        &self,
        source: &str,
        blocked: bool,
    ) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        runtime.set_source_blocked(source, blocked).await?;
        Ok(())
    }

    /// Renames the site: saved, then shown by the hub once the connector registers again.
    pub async fn set_site_name(&self, name: &str) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        runtime.set_site_name(name).await?;
        Ok(())
    }

    /// The recent requests, newest first.
    pub async fn activity(
        &self,
    ) -> Result<Vec<uplink_connector::activity::ActivityRecord>, ControlError> {
        Ok(self.status().connector.recent_activity)
    }

    /// Signs out of the hub: the link closes and the credentials are forgotten.
    pub async fn sign_out(&self) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        runtime.sign_out().await?;
        self.leave_local_hub().await?;
        self.inner.publish();
        Ok(())
    }

    /// Stops the local hub, if it runs, and forgets the choice.
    async fn leave_local_hub(&self) -> Result<(), ControlError> {
        self.remember(|s| s.local_hub = false)?;
        if let Some(hub) = self.inner.local_hub.lock().await.take() {
            hub.stop().await;
        }
        *lock(&self.inner.local_hub_view) = None;
        Ok(())
    }

    /// The embedded default: starts a hub on loopback inside this process, links this
    /// connector to it, and grants a demo app on its data sources. Remembered across restarts.
    pub async fn use_local_hub(&self) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        let linked_elsewhere = runtime.status().borrow().hub_url.is_some()
            && self.inner.local_hub.lock().await.is_none();
        if linked_elsewhere {
            return Err(ControlError::new(
                ControlErrorCode::AlreadyConfigured,
                "this connector is signed in to a hub: sign out first to use a local hub",
            ));
        }
        self.start_local_hub().await?;
        self.remember(|s| s.local_hub = true)?;
        self.link_to_local_hub().await?;
        self.inner.publish();
        Ok(())
    }

    /// In local-hub mode: a one-time link that opens the local hub's consent page for the demo
    /// app, signed in as its owner, so the owner can let it read another data source. With
    /// `open_browser`, the link is opened in the system browser here (the desktop window);
    /// otherwise the page that asked opens it (the browser UI, in a new tab).
    pub async fn open_demo_consent(&self, open_browser: bool) -> Result<DemoConsent, ControlError> {
        let url = match self.inner.local_hub.lock().await.as_ref() {
            Some(hub) => hub.demo_consent_link().await?,
            None => {
                return Err(ControlError::new(
                    ControlErrorCode::LocalHub,
                    "the demo app lives on the local hub, which is not running: choose Use a local hub on Account first",
                ));
            }
        };
        let browser_opened = open_browser
            && {
                let link = url.clone();
                match tokio::task::spawn_blocking(move || {
                    uplink_connector::browser_sign_in::open_system_browser(&link)
                })
                .await
                {
                    Ok(Ok(())) => true,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "no browser could be opened for the local hub's consent page");
                        false
                    }
                    Err(error) => {
                        tracing::warn!(%error, "opening the browser failed");
                        false
                    }
                }
            };
        Ok(DemoConsent {
            url,
            browser_opened,
        })
    }

    async fn start_local_hub(&self) -> Result<(), ControlError> {
        let mut slot = self.inner.local_hub.lock().await;
        if slot.is_some() {
            return Ok(());
        }
        let dir = self.inner.data_dir.join(local_hub::LOCAL_HUB_DIR);
        let (hub, enrolment) = RunningHub::start(&dir).await?;
        if let Some(enrolment) = enrolment {
            // A fresh local hub: its connector credential replaces any earlier sign-in.
            let credentials = LinkCredentials {
                hub_url: hub.url.clone(),
                connector_id: enrolment.connector_id.clone(),
                ca_pem: Some(hub.ca_pem.clone()),
                secret: LinkSecret::ClientCredential {
                    credential: enrolment.credential.clone(),
                },
            };
            CredentialStore::new(&self.inner.data_dir)
                .save(&credentials)
                .map_err(|e| ControlError::new(ControlErrorCode::Io, e.to_string()))?;
        }
        *lock(&self.inner.local_hub_view) = Some(LocalHub {
            url: hub.url.clone(),
            data_dir: dir.display().to_string(),
            demo_app: DEMO_APP.to_owned(),
        });
        *slot = Some(hub);
        Ok(())
    }

    /// Points the runtime at the running local hub (its port may have changed since the
    /// credentials were saved), then grants the demo app once the sources are announced.
    async fn link_to_local_hub(&self) -> Result<(), ControlError> {
        let runtime = self.runtime().await?;
        let mut slot = self.inner.local_hub.lock().await;
        let Some(hub) = slot.as_mut() else {
            return Ok(());
        };
        let stored = CredentialStore::new(&self.inner.data_dir)
            .load()
            .map_err(|e| ControlError::new(ControlErrorCode::Io, e.to_string()))?;
        let Some(mut credentials) = stored.filter(|c| c.connector_id == hub.connector_id()) else {
            return Err(ControlError::new(
                ControlErrorCode::LocalHub,
                "this connector is linked to another hub: sign out first to use a local hub",
            ));
        };
        let linked = runtime.status().borrow().hub_url.clone();
        if linked.as_deref() != Some(hub.url.as_str()) || credentials.hub_url != hub.url {
            credentials.hub_url = hub.url.clone();
            credentials.ca_pem = Some(hub.ca_pem.clone());
            runtime.sign_in(credentials).await?;
            self.remember(|s| s.paused = false)?;
        }
        hub.grant_demo_app().await
    }

    /// Stops the runtime and the local hub.
    pub async fn shutdown(&self) {
        if let Some(Ok(runtime)) = self.inner.runtime.borrow().clone() {
            runtime.stop().await;
        }
        if let Some(hub) = self.inner.local_hub.lock().await.take() {
            hub.stop().await;
        }
    }
}

impl Inner {
    /// Rebuilds the status from the runtime's and this surface's parts.
    fn publish(&self) {
        let connector = match &*self.runtime.borrow() {
            Some(Ok(runtime)) => runtime.status().borrow().clone(),
            Some(Err(error)) => ConnectorStatus {
                last_error: Some(error.message.clone()),
                ..ConnectorStatus::default()
            },
            None => ConnectorStatus::default(),
        };
        lock(&self.history).observe(&connector);
        let chosen = lock(&self.chosen).clone();
        let status = ControlStatus {
            configured: connector.hub_url.is_some(),
            paused: chosen.paused,
            transport_preference: chosen.transport_preference,
            local_hub: lock(&self.local_hub_view).clone(),
            link_history: lock(&self.history).events(),
            sign_in: lock(&self.sign_in).as_ref().map(|w| w.pending.clone()),
            sign_in_error: lock(&self.sign_in_error).clone(),
            data_dir: self.data_dir.display().to_string(),
            connector,
        };
        self.status.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }
}

/// Republishes on every runtime status change, until the control surface is dropped.
async fn follow(inner: std::sync::Weak<Inner>, mut status: watch::Receiver<ConnectorStatus>) {
    loop {
        match inner.upgrade() {
            Some(inner) => inner.publish(),
            None => return,
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod bindings;
