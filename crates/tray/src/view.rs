//! What the tray shows: a pure function of the control status (icon, tooltip and menu), tested
//! without a display or a bus, and drawn by whichever tray the platform has.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uplink_connector::LinkState;
use uplink_control::ControlStatus;

/// What a tray menu item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the main window.
    Open,
    /// Open the hub's web pages in the system browser.
    OpenHub,
    /// Put this connector's id on the clipboard (the hub's operator asks for it).
    CopyConnectorId,
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

const ACTIONS: [TrayAction; 9] = [
    TrayAction::Open,
    TrayAction::OpenHub,
    TrayAction::CopyConnectorId,
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
            TrayAction::OpenHub => "open-hub",
            TrayAction::CopyConnectorId => "copy-connector-id",
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

/// Everything the tray shows for one status: a pure function of the status (and of the time,
/// for "2 min ago"), so it is tested without a display and the real tray is redrawn only when
/// it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    /// The picture.
    pub icon: TrayIconKind,
    /// The tooltip, e.g. "Uplink — connected via WebSockets — 3 data sources".
    pub tooltip: String,
    /// The menu, top to bottom.
    pub menu: Vec<TrayEntry>,
    /// Whether the menu says how long ago something happened, so that it is drawn again as
    /// time passes (every [`AGE_REFRESH`]) even when the status does not change.
    pub shows_age: bool,
}

/// How often a view that [shows an age](TrayView::shows_age) is worked out again.
pub const AGE_REFRESH: Duration = Duration::from_secs(30);

/// The transport the icon treats as the healthy one; any other means the link fell back.
const PREFERRED_TRANSPORT: &str = "WebSockets";

/// The longest informative line in the menu, in characters; longer texts end in "…" (the
/// window shows them whole).
const LINE_CHARS: usize = 72;

/// The tray for `status` at time `now`, with `start_at_login` telling whether the app starts
/// at login.
pub fn tray_view(status: &ControlStatus, start_at_login: bool, now: DateTime<Utc>) -> TrayView {
    let connector = &status.connector;
    let link = connector.link;
    let (icon, state) = link_state(status);
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
        TrayEntry::Action {
            action: TrayAction::OpenHub,
            label: "Open the hub",
            enabled: hub_page(status).is_some(),
        },
        TrayEntry::Separator,
        TrayEntry::Status(tooltip.clone()),
    ];
    if let Some(error) = &connector.last_error {
        menu.push(TrayEntry::Status(one_line(&format!("Last error: {error}"))));
    }
    let last_request = last_request(status, now);
    let shows_age = last_request.is_some();
    menu.extend(last_request.map(TrayEntry::Status));
    menu.extend([
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
    ]);
    if link == LinkState::SignedOut {
        menu.push(TrayEntry::Action {
            action: TrayAction::SignIn,
            label: "Sign in again",
            enabled: true,
        });
    }
    menu.extend([
        TrayEntry::Separator,
        TrayEntry::Action {
            action: TrayAction::CopyConnectorId,
            label: "Copy connector id",
            enabled: connector_id(status).is_some(),
        },
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
        shows_age,
    }
}

/// The picture and the words for the link's state.
fn link_state(status: &ControlStatus) -> (TrayIconKind, String) {
    let connector = &status.connector;
    let link = connector.link;
    if status.paused {
        return (TrayIconKind::Offline, "paused".to_owned());
    }
    if !status.configured && link != LinkState::Connected {
        return (TrayIconKind::Offline, "not linked to a hub".to_owned());
    }
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
}

/// The page "Open the hub" opens: the hub this connector links to (its pages start at the
/// owner's settings), else the embedded local hub. Only a web address, never a file or another
/// scheme, goes to the browser.
pub fn hub_page(status: &ControlStatus) -> Option<&str> {
    let url = status
        .connector
        .hub_url
        .as_deref()
        .or(status.local_hub.as_ref().map(|hub| hub.url.as_str()))?;
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

/// What "Copy connector id" copies: the id the hub knows this connector by, once it has one.
pub fn connector_id(status: &ControlStatus) -> Option<&str> {
    status
        .connector
        .connector_id
        .as_deref()
        .filter(|id| !id.trim().is_empty())
}

/// The latest request an app made here: which app, which data source, how long ago, and
/// whether it was not served.
fn last_request(status: &ControlStatus, now: DateTime<Utc>) -> Option<String> {
    let record = status.connector.recent_activity.first()?;
    let app = app_name(status, &record.app_id);
    let outcome = match record.outcome.as_str() {
        "ok" => "",
        "cancelled" => " · cancelled",
        _ => " · not served",
    };
    Some(one_line(&format!(
        "Last request: {app} · {} · {}{outcome}",
        record.source,
        ago(now - record.time)
    )))
}

/// An app's name for people, from the grants (or the revoked apps) the hub sent; its client
/// id when the hub named it nowhere.
fn app_name<'a>(status: &'a ControlStatus, app_id: &'a str) -> &'a str {
    let connector = &status.connector;
    connector
        .sources
        .iter()
        .flat_map(|source| &source.apps)
        .find(|app| app.app_id == app_id)
        .map(|app| app.app_name.as_str())
        .or_else(|| {
            connector
                .revoked_apps
                .iter()
                .find(|app| app.app_id == app_id)
                .map(|app| app.app_name.as_str())
        })
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(app_id)
}

/// How long ago, in the words of a menu: "just now", "5 min ago", "3 h ago", "2 d ago". A time
/// ahead of the clock (a clock set back) is "just now".
pub fn ago(elapsed: chrono::TimeDelta) -> String {
    match elapsed.num_seconds().max(0) {
        0..60 => "just now".to_owned(),
        seconds @ 60..3_600 => format!("{} min ago", seconds / 60),
        seconds @ 3_600..86_400 => format!("{} h ago", seconds / 3_600),
        seconds => format!("{} d ago", seconds / 86_400),
    }
}

/// `text` on one line (line breaks and runs of spaces become one space), cut to
/// [`LINE_CHARS`] characters with "…".
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= LINE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(LINE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;
    use uplink_connector::activity::ActivityRecord;
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
        status.connector.connector_id = Some("con_7f3a".to_owned());
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

    /// A fixed "now", so that ages in the menu are exact.
    fn now() -> DateTime<Utc> {
        "2026-03-02T10:00:00Z".parse().unwrap()
    }

    fn tray_view_now(status: &ControlStatus, start_at_login: bool) -> TrayView {
        tray_view(status, start_at_login, now())
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
        let view = tray_view_now(&status(Connected, Some("WebSockets"), 3), false);
        assert_eq!(view.icon, TrayIconKind::Connected);
        assert_eq!(
            view.tooltip,
            "Uplink — connected via WebSockets — 3 data sources"
        );
        assert_eq!(
            labels(&view),
            [
                "Open Uplink",
                "Open the hub",
                "---",
                "Uplink — connected via WebSockets — 3 data sources (off)",
                "Reconnect",
                "Pause link",
                "---",
                "Copy connector id",
                "Start at login [ ]",
                "---",
                "Quit Uplink",
            ]
        );
        assert!(!view.shows_age, "nothing in the menu changes with time");
    }

    #[test]
    fn a_slower_transport_or_a_retry_shows_the_connecting_icon() {
        let fell_back = tray_view_now(&status(Connected, Some("LongPolling"), 1), false);
        assert_eq!(fell_back.icon, TrayIconKind::Connecting);
        assert_eq!(
            fell_back.tooltip,
            "Uplink — connected via LongPolling — 1 data source"
        );
        for link in [Connecting, Reconnecting] {
            let view = tray_view_now(&status(link, None, 0), false);
            assert_eq!(view.icon, TrayIconKind::Connecting, "{link}");
            assert!(view.tooltip.contains("connecting"), "{}", view.tooltip);
            assert!(labels(&view).contains(&"Reconnect".to_owned()));
        }
    }

    #[test]
    fn offline_and_unconfigured_show_the_offline_icon() {
        let offline = tray_view_now(&status(Offline, None, 2), false);
        assert_eq!(offline.icon, TrayIconKind::Offline);
        assert_eq!(offline.tooltip, "Uplink — offline — 2 data sources");

        let view = tray_view_now(&blank(false), false);
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
        let view = tray_view_now(&paused, true);
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
        let signed_out = tray_view_now(&status(SignedOut, None, 1), false);
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
            let view = tray_view_now(&status(link, Some("WebSockets"), 1), false);
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
        assert_eq!(tray_view_now(&a, false), tray_view_now(&b, false));
        assert_ne!(tray_view_now(&a, false), tray_view_now(&a, true));
    }

    #[test]
    fn open_comes_first_and_quit_last_in_every_state() {
        for link in [Connected, Connecting, Reconnecting, Offline, SignedOut] {
            let view = tray_view_now(&status(link, Some("WebSockets"), 1), false);
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

    /// A request an app made `seconds_ago` before [`now`], with `outcome`.
    fn request(app_id: &str, source: &str, outcome: &str, seconds_ago: i64) -> ActivityRecord {
        serde_json::from_value(serde_json::json!({
            "time": now() - chrono::TimeDelta::seconds(seconds_ago),
            "appId": app_id,
            "userId": "usr_1",
            "source": source,
            "operation": "snapshot",
            "outcome": outcome,
            "durationMs": 3.5,
            "bytes": 120,
        }))
        .expect("an activity record")
    }

    /// `status` with the app `app_id`, named `name`, granted on its first data source.
    fn granted(mut status: ControlStatus, app_id: &str, name: &str) -> ControlStatus {
        status.connector.sources[0].apps = vec![
            serde_json::from_value(serde_json::json!({
                "appId": app_id,
                "appName": name,
                "userId": "usr_1",
                "scopes": ["data.read"],
                "grantedAt": now() - chrono::TimeDelta::days(3),
                "lastUsedAt": null,
                "blockedOnSite": false,
            }))
            .expect("a consented app"),
        ];
        status
    }

    fn informative(view: &TrayView) -> Vec<&str> {
        view.menu
            .iter()
            .filter_map(|entry| match entry {
                TrayEntry::Status(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn open_the_hub_and_copy_connector_id_are_offered_once_there_is_something_to_open_and_copy() {
        let linked = status(Connected, Some("WebSockets"), 1);
        let view = tray_view_now(&linked, false);
        let shown = labels(&view);
        assert_eq!(shown[1], "Open the hub", "{shown:?}");
        assert!(shown.contains(&"Copy connector id".to_owned()), "{shown:?}");
        assert_eq!(hub_page(&linked), Some("https://hub.example"));
        assert_eq!(connector_id(&linked), Some("con_7f3a"));

        // Not linked anywhere yet: nothing to open, no id to copy.
        let fresh = blank(false);
        let shown = labels_of(&fresh);
        assert!(
            shown.contains(&"Open the hub (off)".to_owned()),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"Copy connector id (off)".to_owned()),
            "{shown:?}"
        );
        assert_eq!(hub_page(&fresh), None);
        assert_eq!(connector_id(&fresh), None);

        // Only a web address goes to the browser.
        for url in ["file:///etc/passwd", "javascript:alert(1)", "hub.example"] {
            let mut odd = linked.clone();
            odd.connector.hub_url = Some(url.to_owned());
            assert_eq!(hub_page(&odd), None, "{url}");
            assert!(
                labels_of(&odd).contains(&"Open the hub (off)".to_owned()),
                "{url}"
            );
        }
        let mut empty_id = linked.clone();
        empty_id.connector.connector_id = Some(" ".to_owned());
        assert_eq!(connector_id(&empty_id), None);
    }

    fn labels_of(status: &ControlStatus) -> Vec<String> {
        labels(&tray_view_now(status, false))
    }

    #[test]
    fn the_embedded_hub_is_the_one_opened_before_the_link_names_one() {
        let mut local = blank(true);
        local.local_hub = Some(
            serde_json::from_value(serde_json::json!({
                "url": "https://127.0.0.1:8443",
                "dataDir": "/tmp/hub",
                "demoApp": "demo-app",
            }))
            .expect("a local hub"),
        );
        assert_eq!(hub_page(&local), Some("https://127.0.0.1:8443"));
        local.connector.hub_url = Some("https://127.0.0.1:8443/".to_owned());
        assert_eq!(hub_page(&local), Some("https://127.0.0.1:8443/"));
    }

    #[test]
    fn the_last_error_is_a_disabled_line_on_one_line_and_only_when_there_is_one() {
        let mut failing = status(Reconnecting, None, 1);
        assert_eq!(
            informative(&tray_view_now(&failing, false)),
            ["Uplink — reconnecting — 1 data source"]
        );
        failing.connector.last_error = Some("connection refused".to_owned());
        let view = tray_view_now(&failing, false);
        assert_eq!(
            informative(&view),
            [
                "Uplink — reconnecting — 1 data source",
                "Last error: connection refused"
            ]
        );
        // Right under the state line, before the actions.
        assert_eq!(labels(&view)[4], "Last error: connection refused (off)");

        failing.connector.last_error = Some(format!(
            "tls handshake failed:\n  invalid peer certificate: {}",
            "UnknownIssuer ".repeat(10)
        ));
        let line = informative(&tray_view_now(&failing, false))[1].to_owned();
        assert!(
            line.starts_with("Last error: tls handshake failed: invalid peer certificate: Unknown"),
            "{line}"
        );
        assert!(line.ends_with('…'), "{line}");
        assert_eq!(line.chars().count(), LINE_CHARS);
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn the_latest_request_names_the_app_the_source_and_how_long_ago() {
        let mut served = granted(
            status(Connected, Some("WebSockets"), 2),
            "dashboard",
            "Energy dashboard",
        );
        // Newest first: only the latest shows.
        served.connector.recent_activity = vec![
            request("dashboard", "source-0", "ok", 150),
            request("dashboard", "source-1", "ok", 4_000),
        ];
        let view = tray_view_now(&served, false);
        assert_eq!(
            informative(&view)[1],
            "Last request: Energy dashboard · source-0 · 2 min ago"
        );
        assert!(view.shows_age, "the age is drawn again as time passes");
        assert_eq!(
            informative(&tray_view(
                &served,
                false,
                now() + chrono::TimeDelta::hours(2)
            ))[1],
            "Last request: Energy dashboard · source-0 · 2 h ago"
        );

        // An app the hub never named shows by its client id; a refusal says so.
        served.connector.recent_activity = vec![request("other-app", "source-1", "vetoed", 5)];
        assert_eq!(
            informative(&tray_view_now(&served, false))[1],
            "Last request: other-app · source-1 · just now · not served"
        );
        served.connector.recent_activity = vec![request("dashboard", "source-1", "cancelled", 5)];
        assert_eq!(
            informative(&tray_view_now(&served, false))[1],
            "Last request: Energy dashboard · source-1 · just now · cancelled"
        );

        // A revoked app keeps its name.
        let mut revoked = status(Connected, Some("WebSockets"), 1);
        revoked.connector.revoked_apps = vec![
            serde_json::from_value(serde_json::json!({
                "appId": "dashboard",
                "appName": "Energy dashboard",
                "revokedAt": now(),
                "blockedOnSite": false,
            }))
            .expect("a revoked app"),
        ];
        revoked.connector.recent_activity = vec![request("dashboard", "source-0", "ok", 90_000)];
        assert_eq!(
            informative(&tray_view_now(&revoked, false))[1],
            "Last request: Energy dashboard · source-0 · 1 d ago"
        );

        // With both, the error comes first.
        served.connector.last_error = Some("connection reset".to_owned());
        let view = tray_view_now(&served, false);
        let both = informative(&view);
        assert_eq!(both.len(), 3, "{both:?}");
        assert!(both[1].starts_with("Last error: "), "{both:?}");
        assert!(both[2].starts_with("Last request: "), "{both:?}");
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let cases = [
            (-30, "just now"),
            (0, "just now"),
            (59, "just now"),
            (60, "1 min ago"),
            (3_599, "59 min ago"),
            (3_600, "1 h ago"),
            (86_399, "23 h ago"),
            (86_400, "1 d ago"),
            (10 * 86_400, "10 d ago"),
        ];
        for (seconds, words) in cases {
            assert_eq!(
                ago(chrono::TimeDelta::seconds(seconds)),
                words,
                "{seconds} s"
            );
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
