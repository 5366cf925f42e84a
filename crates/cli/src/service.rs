//! Running under a service manager: systemd's `Type=notify` readiness (`READY=1` only once the
//! hub listens or the connector's link is up), its watchdog (`WATCHDOG=1` at half the interval
//! the unit asks for, from the same runtime that serves, so a wedged process is restarted),
//! status lines, and stopping on SIGTERM as on Ctrl-C. Without `NOTIFY_SOCKET` every call is a
//! no-op, so the same binary runs by hand.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells the service manager the program is ready, with a status line for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Tells the service manager the program is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify the service manager");
    }
}

/// Pings the watchdog while the returned task lives, when the unit set `WatchdogSec=`.
pub fn watchdog() -> Option<WatchdogTask> {
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(Duration::from_millis(100));
    tracing::info!(
        every_ms = every.as_millis() as u64,
        "pinging the service manager's watchdog"
    );
    Some(WatchdogTask(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    })))
}

/// The watchdog pings; they stop when this is dropped.
pub struct WatchdogTask(tokio::task::JoinHandle<()>);

impl Drop for WatchdogTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on Ctrl-C, or SIGTERM from a service manager.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--metrics-listen`: an address, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct MetricsListen(Option<std::net::SocketAddr>);

impl std::str::FromStr for MetricsListen {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "off" {
            return Ok(Self(None));
        }
        value
            .parse()
            .map(|addr| Self(Some(addr)))
            .map_err(|_| format!("'{value}' is neither an address (127.0.0.1:9464) nor 'off'"))
    }
}

/// Serves `GET /metrics` (plain HTTP) on `listen` with what `scrape` gives (media type, text)
/// while the returned task lives. Metrics are not worth refusing to serve for: an address in
/// use is a warning, and the program runs without them.
pub async fn serve_metrics(
    listen: MetricsListen,
    scrape: impl Fn() -> (&'static str, String) + Clone + Send + Sync + 'static,
) -> Option<MetricsTask> {
    use axum::http::header;
    let addr = listen.0?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%addr, %error, "cannot serve metrics (pass --metrics-listen ADDR or off)");
            return None;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(%bound, "serving Prometheus metrics at /metrics");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let scrape = scrape.clone();
            async move {
                let (media_type, text) = scrape();
                ([(header::CONTENT_TYPE, media_type)], text)
            }
        }),
    );
    Some(MetricsTask(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    })))
}

/// The metrics listener; it stops when this is dropped.
pub struct MetricsTask(tokio::task::JoinHandle<()>);

impl Drop for MetricsTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The arguments this process started with, before `--config` was expanded: a reload reads
/// them again against the file as it is now, so flags and environment keep winning over it.
static ARGUMENTS: std::sync::OnceLock<Vec<std::ffi::OsString>> = std::sync::OnceLock::new();

/// Changes the log level while running; set once logging is installed.
static LOG_LEVEL: std::sync::OnceLock<uplink_logs::LevelHandle> = std::sync::OnceLock::new();

/// Remembers how the process was started and how to change its log level, for reloads.
pub fn remember(arguments: Vec<std::ffi::OsString>, level: Option<uplink_logs::LevelHandle>) {
    let _ = ARGUMENTS.set(arguments);
    if let Some(level) = level {
        let _ = LOG_LEVEL.set(level);
    }
}

/// The command line as it reads now: the start's arguments with the configuration file's
/// current keys.
///
/// # Errors
/// The file has problems (each named by key and line) or the arguments no longer parse.
pub fn reread() -> anyhow::Result<crate::Cli> {
    use clap::{CommandFactory as _, Parser as _};
    let arguments = ARGUMENTS.get().cloned().unwrap_or_default();
    let expanded = crate::config_file::expand(arguments, &crate::Cli::command())?;
    Ok(crate::Cli::try_parse_from(expanded)?)
}

/// Applies `level` (`--log-level` or the file's `log-level`), saying in the log what changed.
pub fn apply_log_level(level: &str) {
    let Some(handle) = LOG_LEVEL.get() else {
        return;
    };
    match handle.set(level) {
        Ok(true) => tracing::warn!(level, "reloaded: logging at this level now"),
        Ok(false) => {
            tracing::info!("reloaded: RUST_LOG decides the log level; --log-level is ignored")
        }
        Err(problem) => tracing::warn!(%problem, "reload: kept the log level in force"),
    }
}

/// What asks for a reload: SIGHUP, and the configuration file changing.
pub struct ReloadRequests {
    receiver: tokio::sync::mpsc::Receiver<&'static str>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl ReloadRequests {
    /// Listens for SIGHUP and, when `config` is given, for changes to that file (its folder is
    /// watched: editors and configuration tools replace files by renaming). Call it before the
    /// program says it is ready.
    pub fn listen(config: Option<&std::path::Path>) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        #[cfg(unix)]
        {
            // Installed before this returns: a SIGHUP from then on reloads, never kills.
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(mut hangups) => {
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        while hangups.recv().await.is_some() {
                            if sender.send("SIGHUP").await.is_err() {
                                return;
                            }
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP: settings reload only on restart");
                }
            }
        }
        let watcher = config.and_then(|file| watch_file(file, sender));
        Self {
            receiver,
            _watcher: watcher,
        }
    }

    /// The settings as they read after the next request (and what caused it), with the log
    /// level already applied. A request whose settings do not read (a broken file) is refused
    /// in the log, and the settings in service stay.
    pub async fn next_settings(&mut self) -> Option<(&'static str, crate::Cli)> {
        loop {
            let cause = self.next().await?;
            match reread() {
                Ok(cli) => {
                    apply_log_level(&cli.log_level);
                    return Some((cause, cli));
                }
                Err(error) => {
                    tracing::warn!(cause, error = %format!("{error:#}"), "reload refused: the settings in service stay");
                }
            }
        }
    }

    /// The next request (what caused it), after a short quiet period so that one save that
    /// writes several times reloads once.
    async fn next(&mut self) -> Option<&'static str> {
        let cause = self.receiver.recv().await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        while self.receiver.try_recv().is_ok() {}
        Some(cause)
    }
}

fn watch_file(
    file: &std::path::Path,
    sender: tokio::sync::mpsc::Sender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let name = file.file_name()?.to_owned();
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| {
            !e.kind.is_access()
                && e.paths
                    .iter()
                    .any(|p| p.file_name() == Some(name.as_os_str()))
        }) {
            let _ = sender.try_send("the configuration file changed");
        }
    })
    .and_then(|mut watcher| {
        watcher
            .watch(&folder, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    match watcher {
        Ok(watcher) => {
            tracing::info!(file = %file.display(), "watching the configuration file: a change reloads it, as SIGHUP does");
            Some(watcher)
        }
        Err(error) => {
            tracing::warn!(%error, file = %file.display(), "cannot watch the configuration file: reload with SIGHUP");
            None
        }
    }
}
