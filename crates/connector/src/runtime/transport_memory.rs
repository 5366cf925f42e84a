//! The link's memory of which transport worked, per route (hub URL and proxy), kept in
//! [`TRANSPORT_MEMORY_FILE`] in the data dir so a restarted connector starts on it at once:
//! behind a proxy that holds WebSocket upgrades, neither a restart nor a reconnect pays for
//! probing WebSockets again (the link re-probes them in the background).

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uplink_signalr::Transport;
use uplink_signalr::client::{Remembered, SkippedTransport, TransportMemory};

use crate::config::write_atomically;

/// The file in the data dir.
pub const TRANSPORT_MEMORY_FILE: &str = "transports.json";

/// Routes kept; the least recently learnt go first.
const MAX_ROUTES: usize = 16;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    routes: Vec<Route>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Route {
    /// The hub URL, `direct` or `proxy host:port`, and the transports allowed.
    route: String,
    transport: Transport,
    failed: Vec<Failed>,
    learnt_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Failed {
    transport: Transport,
    reason: String,
}

/// A [`TransportMemory`] in a file, written atomically.
#[derive(Debug)]
pub(crate) struct FileTransportMemory {
    path: PathBuf,
    /// Serialises read-modify-write cycles within the process.
    writing: Mutex<()>,
}

impl FileTransportMemory {
    pub(crate) fn new(data_dir: &std::path::Path) -> Self {
        Self {
            path: data_dir.join(TRANSPORT_MEMORY_FILE),
            writing: Mutex::new(()),
        }
    }

    /// What the file holds; nothing when it is missing or unreadable (it is only a hint).
    fn load(&self) -> Stored {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %self.path.display(), %error, "the transport memory is unreadable; probing afresh");
                Stored::default()
            }),
            Err(_) => Stored::default(),
        }
    }
}

impl TransportMemory for FileTransportMemory {
    fn recall(&self, route: &str) -> Option<Remembered> {
        let stored = self.load();
        let found = stored.routes.into_iter().find(|r| r.route == route)?;
        Some(Remembered {
            transport: found.transport,
            failed: found
                .failed
                .into_iter()
                .map(|f| SkippedTransport {
                    transport: f.transport,
                    reason: f.reason,
                })
                .collect(),
        })
    }

    fn remember(&self, route: &str, remembered: &Remembered) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut stored = self.load();
        stored.routes.retain(|r| r.route != route);
        stored.routes.push(Route {
            route: route.to_owned(),
            transport: remembered.transport,
            failed: remembered
                .failed
                .iter()
                .map(|s| Failed {
                    transport: s.transport,
                    reason: s.reason.clone(),
                })
                .collect(),
            learnt_at: Utc::now(),
        });
        let excess = stored.routes.len().saturating_sub(MAX_ROUTES);
        stored.routes.drain(..excess);
        let json = serde_json::to_vec_pretty(&stored).expect("the transport memory serialises");
        match write_atomically(&self.path, &json, false) {
            Ok(()) => {
                tracing::info!(%route, transport = %remembered.transport, failed = remembered.failed.len(), "remembered the transport that works on this route");
            }
            Err(error) => tracing::warn!(%error, "cannot save the transport memory"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_remembered_apart_and_survive_a_new_instance() {
        let dir = tempfile::tempdir().unwrap();
        let memory = FileTransportMemory::new(dir.path());
        assert_eq!(memory.recall("https://hub/hubs/connector direct"), None);
        let behind_proxy = Remembered {
            transport: Transport::ServerSentEvents,
            failed: vec![SkippedTransport {
                transport: Transport::WebSockets,
                reason: "HTTP 403 on WebSocket upgrade".into(),
            }],
        };
        memory.remember("https://hub/hubs/connector proxy p:3128", &behind_proxy);
        memory.remember(
            "https://hub/hubs/connector direct",
            &Remembered {
                transport: Transport::WebSockets,
                failed: Vec::new(),
            },
        );
        let again = FileTransportMemory::new(dir.path());
        assert_eq!(
            again.recall("https://hub/hubs/connector proxy p:3128"),
            Some(behind_proxy)
        );
        assert_eq!(
            again
                .recall("https://hub/hubs/connector direct")
                .map(|r| r.transport),
            Some(Transport::WebSockets)
        );
        for n in 0..(MAX_ROUTES + 4) {
            again.remember(
                &format!("https://hub{n}/hubs/connector direct"),
                &Remembered {
                    transport: Transport::LongPolling,
                    failed: Vec::new(),
                },
            );
        }
        assert_eq!(again.load().routes.len(), MAX_ROUTES, "bounded");
        // A damaged file is only a lost hint.
        std::fs::write(dir.path().join(TRANSPORT_MEMORY_FILE), b"{not json").unwrap();
        assert_eq!(again.recall("https://hub0/hubs/connector direct"), None);
    }
}
