//! What the tray shows: a pure function of the control status (icon, tooltip and menu), tested
//! without a display or a bus, and drawn by whichever tray the platform has.

use uplink_connector::LinkState;
use uplink_control::ControlStatus;

/// What a tray menu item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the main window.
    Open,
    /// Drop the link and open it again now.
    Reconnect,
    /// Close the link until resumed (no queries served).
    Pause,
    /// Open the paused link again.
    Resume,
    /// Show the window, where the owner signs in to the hub again.
    SignIn,
    /// Turn starting at login on or off.
    StartAtLogin,
    /// Stop the app (and with it the connector's link).
    Quit,
}

const ACTIONS: [TrayAction; 7] = [
    TrayAction::Open,
    TrayAction::Reconnect,
    TrayAction::Pause,
    TrayAction::Resume,
    TrayAction::SignIn,
    TrayAction::StartAtLogin,
    TrayAction::Quit,
];

impl TrayAction {
    /// The menu item id; stable, because tests click items by it over D-Bus.
    pub fn id(self) -> &'static str {
        match self {
            TrayAction::Open => "open",
            TrayAction::Reconnect => "reconnect",
            TrayAction::Pause => "pause",
            TrayAction::Resume => "resume",
            TrayAction::SignIn => "sign-in",
            TrayAction::StartAtLogin => "start-at-login",
            TrayAction::Quit => "quit",
        }
    }

    /// The action behind a menu item id, if it is one of ours.
    pub fn from_id(id: &str) -> Option<Self> {
        ACTIONS.into_iter().find(|a| a.id() == id)
    }
}

/// One line of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEntry {
    /// A disabled line that tells the state.
    Status(String),
    /// A clickable item.
    Action {
        /// What a click does.
        action: TrayAction,
        /// The words shown.
        label: &'static str,
        /// Whether it can be clicked now.
        enabled: bool,
    },
    /// An item with a check mark.
    Toggle {
        /// What a click does.
        action: TrayAction,
        /// The words shown.
        label: &'static str,
        /// Whether its check mark shows.
        checked: bool,
    },
    /// A divider.
    Separator,
}

/// Which of the three tray pictures shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIconKind {
    /// Linked over WebSockets: all is well.
    Connected,
    /// On the way to a link, or linked over a slower transport than WebSockets.
    Connecting,
    /// No link: offline, paused, signed out or not set up.
    Offline,
}

impl TrayIconKind {
    /// The picture as a PNG file.
    pub fn png(self) -> &'static [u8] {
        match self {
            TrayIconKind::Connected => include_bytes!("../../../icons/tray-connected.png"),
            TrayIconKind::Connecting => include_bytes!("../../../icons/tray-connecting.png"),
            TrayIconKind::Offline => include_bytes!("../../../icons/tray-offline.png"),
        }
    }
}

/// Everything the tray shows for one status: a pure function of the status, so it is tested
/// without a display and the real tray is redrawn only when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    /// The picture.
    pub icon: TrayIconKind,
    /// The tooltip, e.g. "Uplink — connected via WebSockets — 3 data sources".
    pub tooltip: String,
    /// The menu, top to bottom.
    pub menu: Vec<TrayEntry>,
}

/// The transport the icon treats as the healthy one; any other means the link fell back.
const PREFERRED_TRANSPORT: &str = "WebSockets";

/// The tray for `status`, with `start_at_login` telling whether the app starts at login.
pub fn tray_view(status: &ControlStatus, start_at_login: bool) -> TrayView {
    let connector = &status.connector;
    let link = connector.link;
    let (icon, state) = if status.paused {
        (TrayIconKind::Offline, "paused".to_owned())
    } else if !status.configured && link != LinkState::Connected {
        (TrayIconKind::Offline, "not linked to a hub".to_owned())
    } else {
        match link {
            LinkState::Connected => {
                let transport = connector
                    .transport
                    .as_deref()
                    .unwrap_or("an unknown transport");
                let icon = if transport == PREFERRED_TRANSPORT {
                    TrayIconKind::Connected
                } else {
                    TrayIconKind::Connecting
                };
                (icon, format!("connected via {transport}"))
            }
            LinkState::Connecting => (TrayIconKind::Connecting, "connecting".to_owned()),
            LinkState::Reconnecting => (TrayIconKind::Connecting, "reconnecting".to_owned()),
            LinkState::Offline => (TrayIconKind::Offline, "offline".to_owned()),
            LinkState::SignedOut => (TrayIconKind::Offline, "signed out".to_owned()),
        }
    };
    let sources = match connector.sources.len() {
        1 => "1 data source".to_owned(),
        n => format!("{n} data sources"),
    };
    let tooltip = format!("Uplink — {state} — {sources}");

    let linkable = status.configured && link != LinkState::SignedOut;
    let mut menu = vec![
        // "Open" comes first: on Linux a click on the icon itself is not delivered by every
        // tray host, so the first menu item is how people open the window.
        TrayEntry::Action {
            action: TrayAction::Open,
            label: "Open Uplink",
            enabled: true,
        },
        TrayEntry::Separator,
        TrayEntry::Status(tooltip.clone()),
        TrayEntry::Action {
            action: TrayAction::Reconnect,
            label: "Reconnect",
            enabled: linkable && !status.paused,
        },
        if status.paused {
            TrayEntry::Action {
                action: TrayAction::Resume,
                label: "Resume link",
                enabled: true,
            }
        } else {
            TrayEntry::Action {
                action: TrayAction::Pause,
                label: "Pause link",
                enabled: linkable,
            }
        },
    ];
    if link == LinkState::SignedOut {
        menu.push(TrayEntry::Action {
            action: TrayAction::SignIn,
            label: "Sign in again",
            enabled: true,
        });
    }
    menu.extend([
        TrayEntry::Separator,
        TrayEntry::Toggle {
            action: TrayAction::StartAtLogin,
            label: "Start at login",
            checked: start_at_login,
        },
        TrayEntry::Separator,
        TrayEntry::Action {
            action: TrayAction::Quit,
            label: "Quit Uplink",
            enabled: true,
        },
    ]);
    TrayView {
        icon,
        tooltip,
        menu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;
    use uplink_control::{Control, HostKind};

    /// A fresh control surface's first status (its runtime never runs: the test's tokio
    /// runtime ends before the launch task is polled), with `configured` as given.
    fn blank(configured: bool) -> ControlStatus {
        static BLANK: std::sync::OnceLock<ControlStatus> = std::sync::OnceLock::new();
        let mut status = BLANK
            .get_or_init(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let dir = std::env::temp_dir().join("uplink-tray-test-never-written");
                runtime.block_on(async { Control::start(HostKind::Desktop, dir).status() })
            })
            .clone();
        status.configured = configured;
        status
    }

    fn status(link: LinkState, transport: Option<&str>, sources: usize) -> ControlStatus {
        let mut status = blank(true);
        status.connector.link = link;
        status.connector.hub_url = Some("https://hub.example".to_owned());
        status.connector.transport = transport.map(str::to_owned);
        // A data source as the runtime reports it (read from JSON, so fields the tray does not
        // show may come and go).
        status.connector.sources = (0..sources)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "name": format!("source-{i}"),
                    "kind": "simulated",
                    "description": "",
                    "health": { "state": "ok" },
                    "hubId": null,
                    "tagCount": 3,
                    "blockedOnSite": false,
                    "apps": [],
                }))
                .expect("a data source status")
            })
            .collect();
        status
    }

    /// The labels of the menu, with `(off)` after disabled items and `[x]`/`[ ]` for toggles.
    fn labels(view: &TrayView) -> Vec<String> {
        view.menu
            .iter()
            .map(|entry| match entry {
                TrayEntry::Status(text) => format!("{text} (off)"),
                TrayEntry::Action { label, enabled, .. } => {
                    format!("{label}{}", if *enabled { "" } else { " (off)" })
                }
                TrayEntry::Toggle { label, checked, .. } => {
                    format!("{label} {}", if *checked { "[x]" } else { "[ ]" })
                }
                TrayEntry::Separator => "---".to_owned(),
            })
            .collect()
    }

    #[test]
    fn linked_over_websockets_shows_the_connected_icon_and_says_so() {
        let view = tray_view(&status(Connected, Some("WebSockets"), 3), false);
        assert_eq!(view.icon, TrayIconKind::Connected);
        assert_eq!(
            view.tooltip,
            "Uplink — connected via WebSockets — 3 data sources"
        );
        assert_eq!(
            labels(&view),
            [
                "Open Uplink",
                "---",
                "Uplink — connected via WebSockets — 3 data sources (off)",
                "Reconnect",
                "Pause link",
                "---",
                "Start at login [ ]",
                "---",
                "Quit Uplink",
            ]
        );
    }

    #[test]
    fn a_slower_transport_or_a_retry_shows_the_connecting_icon() {
        let fell_back = tray_view(&status(Connected, Some("LongPolling"), 1), false);
        assert_eq!(fell_back.icon, TrayIconKind::Connecting);
        assert_eq!(
            fell_back.tooltip,
            "Uplink — connected via LongPolling — 1 data source"
        );
        for link in [Connecting, Reconnecting] {
            let view = tray_view(&status(link, None, 0), false);
            assert_eq!(view.icon, TrayIconKind::Connecting, "{link}");
            assert!(view.tooltip.contains("connecting"), "{}", view.tooltip);
            assert!(labels(&view).contains(&"Reconnect".to_owned()));
        }
    }

    #[test]
    fn offline_and_unconfigured_show_the_offline_icon() {
        let offline = tray_view(&status(Offline, None, 2), false);
        assert_eq!(offline.icon, TrayIconKind::Offline);
        assert_eq!(offline.tooltip, "Uplink — offline — 2 data sources");

        let view = tray_view(&blank(false), false);
        assert_eq!(view.icon, TrayIconKind::Offline);
        assert_eq!(
            view.tooltip,
            "Uplink — not linked to a hub — 0 data sources"
        );
        let labels = labels(&view);
        assert!(labels.contains(&"Reconnect (off)".to_owned()), "{labels:?}");
        assert!(
            labels.contains(&"Pause link (off)".to_owned()),
            "{labels:?}"
        );
    }

    #[test]
    fn a_paused_link_offers_resume_and_no_reconnect() {
        let mut paused = status(Offline, None, 1);
        paused.paused = true;
        let view = tray_view(&paused, true);
        assert_eq!(view.icon, TrayIconKind::Offline);
        assert_eq!(view.tooltip, "Uplink — paused — 1 data source");
        let labels = labels(&view);
        assert!(labels.contains(&"Resume link".to_owned()), "{labels:?}");
        assert!(labels.contains(&"Reconnect (off)".to_owned()), "{labels:?}");
        assert!(!labels.iter().any(|l| l.starts_with("Pause")), "{labels:?}");
        assert!(
            labels.contains(&"Start at login [x]".to_owned()),
            "{labels:?}"
        );
    }

    #[test]
    fn sign_in_again_shows_only_when_signed_out() {
        let signed_out = tray_view(&status(SignedOut, None, 1), false);
        assert_eq!(signed_out.icon, TrayIconKind::Offline);
        assert_eq!(signed_out.tooltip, "Uplink — signed out — 1 data source");
        let labels_out = labels(&signed_out);
        assert!(
            labels_out.contains(&"Sign in again".to_owned()),
            "{labels_out:?}"
        );
        assert!(
            labels_out.contains(&"Reconnect (off)".to_owned()),
            "{labels_out:?}"
        );

        for link in [Connected, Connecting, Reconnecting, Offline] {
            let view = tray_view(&status(link, Some("WebSockets"), 1), false);
            assert!(
                !view.menu.iter().any(|e| matches!(
                    e,
                    TrayEntry::Action {
                        action: TrayAction::SignIn,
                        ..
                    }
                )),
                "{link}"
            );
        }
    }

    #[test]
    fn the_view_ignores_what_the_tray_does_not_show() {
        let a = status(Connected, Some("WebSockets"), 1);
        let mut b = a.clone();
        b.connector.round_trip_ms = Some(12.5);
        b.connector.active_queries = 4;
        b.connector.updated_at = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(tray_view(&a, false), tray_view(&b, false));
        assert_ne!(tray_view(&a, false), tray_view(&a, true));
    }

    #[test]
    fn open_comes_first_and_quit_last_in_every_state() {
        for link in [Connected, Connecting, Reconnecting, Offline, SignedOut] {
            let view = tray_view(&status(link, Some("WebSockets"), 1), false);
            assert!(matches!(
                view.menu.first(),
                Some(TrayEntry::Action {
                    action: TrayAction::Open,
                    ..
                })
            ));
            assert!(matches!(
                view.menu.last(),
                Some(TrayEntry::Action {
                    action: TrayAction::Quit,
                    ..
                })
            ));
        }
    }

    #[test]
    fn every_action_id_round_trips_and_others_are_ignored() {
        for action in ACTIONS {
            assert_eq!(TrayAction::from_id(action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id("status"), None);
        assert_eq!(TrayAction::from_id(""), None);
    }

    #[test]
    fn the_three_icons_are_distinct_pngs() {
        let icons = [
            TrayIconKind::Connected,
            TrayIconKind::Connecting,
            TrayIconKind::Offline,
        ];
        for icon in icons {
            let png = icon.png();
            assert!(
                png.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{icon:?} is not a PNG"
            );
            // The header's width and height, big-endian, right after the IHDR tag.
            let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
            let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
            assert!(
                width >= 32 && width == height,
                "{icon:?} is {width}×{height}"
            );
        }
        assert_ne!(icons[0].png(), icons[1].png());
        assert_ne!(icons[1].png(), icons[2].png());
        assert_ne!(icons[0].png(), icons[2].png());
    }
}
