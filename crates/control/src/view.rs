//! What a user interface shows: the connector's status plus what only the control surface
//! knows (pause, transport preference, the local hub, a pending sign-in, the link's history).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_connector::browser_sign_in::PendingSignIn;
use uplink_connector::runtime::{ConnectorStatus, LinkState};
use uplink_signalr::Transport;

/// Which transports the link may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum TransportPreference {
    /// WebSockets, else Server-Sent Events, else long polling.
    #[default]
    Automatic,
    /// WebSockets only.
    WebSockets,
    /// Server-Sent Events only.
    ServerSentEvents,
    /// Long polling only.
    LongPolling,
}

impl TransportPreference {
    /// The transports to try, in order.
    pub fn transports(self) -> Vec<Transport> {
        match self {
            TransportPreference::Automatic => Transport::ALL.to_vec(),
            TransportPreference::WebSockets => vec![Transport::WebSockets],
            TransportPreference::ServerSentEvents => vec![Transport::ServerSentEvents],
            TransportPreference::LongPolling => vec![Transport::LongPolling],
        }
    }
}

/// One change of the link: up, down, or a different transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LinkEvent {
    /// When it changed.
    pub time: DateTime<Utc>,
    /// The new state.
    pub state: LinkState,
    /// The transport, when connected.
    pub transport: Option<String>,
    /// Why, when it went down.
    pub detail: Option<String>,
}

/// The hub running inside this app on loopback (the embedded default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalHub {
    /// Its address.
    pub url: String,
    /// Where it keeps its state.
    pub data_dir: String,
    /// The demo app that holds a grant on this connector's sources.
    pub demo_app: String,
}

/// A one-time link to the local hub's consent page for the demo app, signed in as its owner.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DemoConsent {
    /// The link: spent on first use, valid for a minute.
    pub url: String,
    /// Whether it was opened in the system browser (when asked to).
    pub browser_opened: bool,
}

impl std::fmt::Debug for DemoConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The link signs its holder in until spent: never in a log.
        f.debug_struct("DemoConsent")
            .field("url", &"<redacted>")
            .field("browser_opened", &self.browser_opened)
            .finish()
    }
}

/// Everything a user interface shows, replaced whole on every change.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ControlStatus {
    /// The connector runtime's own status.
    pub connector: ConnectorStatus,
    /// Whether a hub and credentials are set up.
    pub configured: bool,
    /// Whether the owner paused the link.
    pub paused: bool,
    /// The transports the link may use.
    pub transport_preference: TransportPreference,
    /// The embedded hub, when this app runs one.
    pub local_hub: Option<LocalHub>,
    /// Link changes, newest first.
    pub link_history: Vec<LinkEvent>,
    /// A browser sign-in in progress.
    pub sign_in: Option<PendingSignIn>,
    /// Why the last browser sign-in failed (cleared by the next one).
    pub sign_in_error: Option<String>,
    /// Where this connector keeps its state.
    pub data_dir: String,
}

/// How many link changes are kept.
pub const LINK_HISTORY_LEN: usize = 200;

/// Turns a stream of statuses into the link's up/down history.
#[derive(Debug, Default)]
pub struct LinkHistory {
    events: VecDeque<LinkEvent>,
}

impl LinkHistory {
    /// Records `status` if its link state or transport differs from the last event.
    pub fn observe(&mut self, status: &ConnectorStatus) {
        let changed = self
            .events
            .front()
            .is_none_or(|last| last.state != status.link || last.transport != status.transport);
        if !changed {
            return;
        }
        let detail = match status.link {
            LinkState::Connected => None,
            _ => status.last_error.clone(),
        };
        self.events.push_front(LinkEvent {
            time: status.updated_at,
            state: status.link,
            transport: status.transport.clone(),
            detail,
        });
        self.events.truncate(LINK_HISTORY_LEN);
    }

    /// The events, newest first.
    pub fn events(&self) -> Vec<LinkEvent> {
        self.events.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(link: LinkState, transport: Option<&str>, error: Option<&str>) -> ConnectorStatus {
        ConnectorStatus {
            link,
            transport: transport.map(str::to_owned),
            last_error: error.map(str::to_owned),
            ..ConnectorStatus::default()
        }
    }

    #[test]
    fn history_records_changes_only_newest_first() {
        let mut history = LinkHistory::default();
        history.observe(&status(LinkState::Connecting, None, None));
        history.observe(&status(LinkState::Connected, Some("WebSockets"), None));
        // A heartbeat or an activity update changes nothing the history shows.
        history.observe(&status(LinkState::Connected, Some("WebSockets"), None));
        history.observe(&status(
            LinkState::Reconnecting,
            None,
            Some("hub closed the link"),
        ));
        history.observe(&status(LinkState::Connected, Some("LongPolling"), None));
        let events = history.events();
        let states: Vec<LinkState> = events.iter().map(|e| e.state).collect();
        assert_eq!(
            states,
            [
                LinkState::Connected,
                LinkState::Reconnecting,
                LinkState::Connected,
                LinkState::Connecting
            ]
        );
        assert_eq!(events[0].transport.as_deref(), Some("LongPolling"));
        assert_eq!(events[1].detail.as_deref(), Some("hub closed the link"));
    }

    #[test]
    fn history_is_bounded() {
        let mut history = LinkHistory::default();
        for i in 0..(LINK_HISTORY_LEN + 50) {
            let link = if i % 2 == 0 {
                LinkState::Connected
            } else {
                LinkState::Reconnecting
            };
            history.observe(&status(link, None, None));
        }
        assert_eq!(history.events().len(), LINK_HISTORY_LEN);
    }

    #[test]
    fn each_preference_names_its_transports() {
        assert_eq!(TransportPreference::Automatic.transports(), Transport::ALL);
        assert_eq!(
            TransportPreference::LongPolling.transports(),
            [Transport::LongPolling]
        );
        let json = serde_json::to_string(&TransportPreference::ServerSentEvents).unwrap();
        assert_eq!(json, "\"serverSentEvents\"");
    }
}
