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
