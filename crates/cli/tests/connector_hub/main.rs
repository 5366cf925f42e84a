//! The connector runtime against the real hub, end to end: the test kit's hub (`uplink_hub`
//! over real TLS on loopback) and the real connector runtime, linked over each transport.
//! These tests live here, beside the `uplink` binary that ships both, so that the connector
//! crate itself never depends on the hub (ARCHITECTURE.md, "must not depend on").
//!
//! - `runtime`: registration, relayed answers in chunks, cancellation, the site's veto,
//!   sources added at run time, relinking after the hub restarts, device-flow sign-in, token
//!   renewal, the query limit, replaced links;
//! - `browser_sign_in`: the RFC 8252 browser sign-in through the hub's pages;
//! - `answers_in_flight`: revoke means stop, for an answer flowing from site to app;
//! - `diagnostics`: the connectivity test against a live hub;
//! - `computed_by`: the `Uplink-Computed-By` header, from a data source's answer to the app.
//! - `events`: alarms and events from the simulated source, read by time range in pages and
//!   streamed to an app, refused without `events.read` on that source, cut by a revoke.
//! - `live_values`: live values (subscriptions) from the simulated source to an app's event
//!   stream: order, coalescing, resume, sharing, and the stream's end when access ends;
//! - `live_channels`: the same on one SignalR connection (`/hubs/app`), 1 000 streams at
//!   once, and the caps on streams per sign-in, per connector and on the connector.
//! - `opcua_events`: an OPC UA server's alarm (Python asyncua) through the connector and the
//!   hub to an app's events stream, with its priority, and read back by time range in pages.
//! - `writes`: an app's writes to the simulated source: the site's checks, idempotency, both
//!   audit trails, and revoke.

mod answers_in_flight;
mod browser_sign_in;
mod computed_by;
mod diagnostics;
mod events;
mod live_channels;
mod live_values;
mod opcua_events;
mod runtime;
mod writes;

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;
use uplink_connector::runtime::{ConnectorStatus, RuntimeOptions};
use uplink_signalr::Transport;
use uplink_signalr::client::Backoff;

/// Runtime options for tests: `transports`, and quick reconnects and heartbeats.
fn options(data_dir: &Path, transports: &[Transport]) -> RuntimeOptions {
    let mut options = RuntimeOptions::new(data_dir);
    options.transports = transports.to_vec();
    options.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
    };
    options.heartbeat_interval = Duration::from_millis(250);
    options
}

/// Waits (generously) until the connector's status satisfies `done`; that status.
async fn wait_for(
    status: &mut watch::Receiver<ConnectorStatus>,
    what: &str,
    done: impl Fn(&ConnectorStatus) -> bool,
) -> ConnectorStatus {
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            {
                let now = status.borrow_and_update();
                if done(&now) {
                    return now.clone();
                }
            }
            status.changed().await.unwrap();
        }
    })
    .await;
    match waited {
        Ok(status) => status,
        Err(_) => panic!("{what}: not reached; status now {:#?}", *status.borrow()),
    }
}
