//! The tray: a pure view of the control status (icon, tooltip and menu, tested without a
//! display) and the thin code that turns it into a real tray icon and keeps it current.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use uplink_connector::LinkState;
use uplink_control::{Control, ControlStatus};

/// The tray icon's id.
const TRAY_ID: &str = "uplink";

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
        action: TrayAction,
        label: &'static str,
        enabled: bool,
    },
    /// An item with a check mark.
    Toggle {
        action: TrayAction,
        label: &'static str,
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
    fn png(self) -> &'static [u8] {
        match self {
            TrayIconKind::Connected => include_bytes!("../../icons/tray-connected.png"),
            TrayIconKind::Connecting => include_bytes!("../../icons/tray-connecting.png"),
            TrayIconKind::Offline => include_bytes!("../../icons/tray-offline.png"),
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

/// The last view drawn, so a status change that the tray does not show redraws nothing.
#[derive(Debug, Default)]
struct Drawn(std::sync::Mutex<Option<TrayView>>);

/// Whether the app starts at login, as the system says.
fn starts_at_login<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.autolaunch().is_enabled().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot tell whether Uplink starts at login");
        false
    })
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[TrayEntry]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for entry in entries {
        match entry {
            TrayEntry::Status(text) => menu.append(&MenuItem::with_id(
                app,
                "status",
                text,
                false,
                None::<&str>,
            )?)?,
            TrayEntry::Action {
                action,
                label,
                enabled,
            } => menu.append(&MenuItem::with_id(
                app,
                action.id(),
                label,
                *enabled,
                None::<&str>,
            )?)?,
            TrayEntry::Toggle {
                action,
                label,
                checked,
            } => menu.append(&CheckMenuItem::with_id(
                app,
                action.id(),
                label,
                true,
                *checked,
                None::<&str>,
            )?)?,
            TrayEntry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

/// Creates the tray icon showing `status`. Fails where the desktop has no tray host.
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>, status: &ControlStatus) -> tauri::Result<()> {
    let view = tray_view(status, starts_at_login(app));
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(view.icon.png())?)
        .tooltip(&view.tooltip)
        .menu(&build_menu(app, &view.menu)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            if let Some(action) = TrayAction::from_id(event.id().as_ref()) {
                act(app, action);
            }
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                crate::show_main_window(tray.app_handle());
            }
        })
        .build(app)?;
    app.manage(Drawn(std::sync::Mutex::new(Some(view))));
    Ok(())
}

/// Redraws what changed in the tray for a new status. Does nothing without a tray.
pub(crate) fn show_status<R: Runtime>(app: &AppHandle<R>, status: &ControlStatus) {
    let (Some(tray), Some(drawn)) = (app.tray_by_id(TRAY_ID), app.try_state::<Drawn>()) else {
        return;
    };
    let view = tray_view(status, starts_at_login(app));
    let mut drawn = drawn
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if drawn.as_ref() == Some(&view) {
        return;
    }
    if let Err(error) = redraw(app, &tray, drawn.as_ref(), &view) {
        tracing::warn!(%error, "the tray could not be updated");
        return;
    }
    *drawn = Some(view);
}

fn redraw<R: Runtime>(
    app: &AppHandle<R>,
    tray: &TrayIcon<R>,
    before: Option<&TrayView>,
    view: &TrayView,
) -> tauri::Result<()> {
    if before.map(|b| b.icon) != Some(view.icon) {
        tray.set_icon(Some(Image::from_bytes(view.icon.png())?))?;
    }
    if before.map(|b| &b.tooltip) != Some(&view.tooltip) {
        tray.set_tooltip(Some(&view.tooltip))?;
    }
    if before.map(|b| &b.menu) != Some(&view.menu) {
        tray.set_menu(Some(build_menu(app, &view.menu)?))?;
    }
    tracing::debug!(tooltip = %view.tooltip, "tray updated");
    Ok(())
}

/// Runs a control command in the background; the tray has no one to show an error to but the log
/// (the status change it causes, or not, reaches the tray and the window anyway).
fn forward<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, uplink_control::ControlError>> + Send + 'static,
) {
    tauri::async_runtime::spawn(async move {
        if let Err(error) = call.await {
            tracing::warn!(code = %error.code, %error, "tray: {what} failed");
        }
    });
}

/// Carries out a menu item: each one forwards to the control surface or the window.
fn act<R: Runtime>(app: &AppHandle<R>, action: TrayAction) {
    let control = app.state::<Control>().inner().clone();
    match action {
        TrayAction::Open => crate::show_main_window(app),
        TrayAction::Reconnect => forward("reconnect", async move { control.reconnect().await }),
        TrayAction::Pause => forward("pause", async move { control.set_paused(true).await }),
        TrayAction::Resume => forward("resume", async move { control.set_paused(false).await }),
        // Signing in happens in the system browser, started from the window's Account page.
        TrayAction::SignIn => crate::show_main_window(app),
        TrayAction::StartAtLogin => {
            let autolaunch = app.autolaunch();
            let result = if starts_at_login(app) {
                autolaunch.disable()
            } else {
                autolaunch.enable()
            };
            if let Err(error) = result {
                tracing::warn!(%error, "could not change whether Uplink starts at login");
            }
            // The menu toggled its check mark by itself: redraw it from what the system says.
            if let Some(drawn) = app.try_state::<Drawn>() {
                *drawn
                    .0
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
            }
            show_status(app, &control.status());
        }
        TrayAction::Quit => {
            tracing::info!("quit from the tray");
            app.exit(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkState::*;
    use uplink_control::HostKind;

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
            let image = Image::from_bytes(icon.png()).expect("a PNG");
            assert!(image.width() >= 32 && image.width() == image.height());
        }
        assert_ne!(icons[0].png(), icons[1].png());
        assert_ne!(icons[1].png(), icons[2].png());
        assert_ne!(icons[0].png(), icons[2].png());
    }
}
