//! The tray: a pure menu model (tested without a display) and the thin code that turns it into
//! a real tray icon.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Runtime};

/// What a tray menu item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the main window.
    Open,
    /// Stop the app (and with it the connector's link).
    Quit,
}

impl TrayAction {
    /// The menu item id; stable, because tests click items by it over D-Bus.
    pub fn id(self) -> &'static str {
        match self {
            TrayAction::Open => "open",
            TrayAction::Quit => "quit",
        }
    }

    /// The action behind a menu item id, if it is one of ours.
    pub fn from_id(id: &str) -> Option<Self> {
        [TrayAction::Open, TrayAction::Quit]
            .into_iter()
            .find(|a| a.id() == id)
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
    },
    /// A divider.
    Separator,
}

const STATUS_ID: &str = "status";

/// The tray's words while no hub is configured.
const NOT_LINKED: &str = "Uplink — not linked to a hub";

/// The menu, top to bottom. "Open" comes first: on Linux a click on the icon itself is not
/// delivered by every tray host, so the first menu item is how people open the window.
pub fn tray_menu() -> Vec<TrayEntry> {
    vec![
        TrayEntry::Action {
            action: TrayAction::Open,
            label: "Open Uplink",
        },
        TrayEntry::Separator,
        TrayEntry::Status(NOT_LINKED.to_owned()),
        TrayEntry::Separator,
        TrayEntry::Action {
            action: TrayAction::Quit,
            label: "Quit Uplink",
        },
    ]
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[TrayEntry]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for entry in entries {
        match entry {
            TrayEntry::Status(text) => menu.append(&MenuItem::with_id(
                app,
                STATUS_ID,
                text,
                false,
                None::<&str>,
            )?)?,
            TrayEntry::Action { action, label } => menu.append(&MenuItem::with_id(
                app,
                action.id(),
                label,
                true,
                None::<&str>,
            )?)?,
            TrayEntry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

/// Creates the tray icon with its menu.
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = build_menu(app, &tray_menu())?;
    TrayIconBuilder::with_id("uplink")
        .icon(Image::from_bytes(include_bytes!(
            "../../icons/tray-offline.png"
        ))?)
        .tooltip(NOT_LINKED)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(
            |app, event| match TrayAction::from_id(event.id().as_ref()) {
                Some(TrayAction::Open) => crate::show_main_window(app),
                Some(TrayAction::Quit) => {
                    tracing::info!("quit from the tray");
                    app.exit(0);
                }
                None => {}
            },
        )
        .on_tray_icon_event(|tray, event| {
            if let tauri::tray::TrayIconEvent::Click {
                button: tauri::tray::MouseButton::Left,
                button_state: tauri::tray::MouseButtonState::Up,
                ..
            } = event
            {
                crate::show_main_window(tray.app_handle());
            }
        })
        .build(app)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_comes_first_and_quit_last() {
        let menu = tray_menu();
        assert_eq!(
            menu.first(),
            Some(&TrayEntry::Action {
                action: TrayAction::Open,
                label: "Open Uplink"
            })
        );
        assert!(matches!(
            menu.last(),
            Some(TrayEntry::Action {
                action: TrayAction::Quit,
                ..
            })
        ));
        assert!(
            menu.iter()
                .any(|e| matches!(e, TrayEntry::Status(s) if s.contains("not linked")))
        );
    }

    #[test]
    fn every_action_id_round_trips_and_others_are_ignored() {
        for action in [TrayAction::Open, TrayAction::Quit] {
            assert_eq!(TrayAction::from_id(action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id(STATUS_ID), None);
        assert_eq!(TrayAction::from_id(""), None);
    }
}
