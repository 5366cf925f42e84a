//! Uplink desktop app: a thin shell over Uplink's headless crates.
//!
//! It owns the tray icon and the window, and maps each IPC command to the control surface in
//! `uplink-control`; it holds no business logic of its own. The app starts to the tray, keeps
//! running when its window closes, and exits only through the tray's Quit.

mod commands;
mod tray;

use tauri::{Builder, Manager, RunEvent, Runtime, WindowEvent};
use uplink_control::{Control, HostKind};

pub use tray::{TrayAction, TrayEntry, tray_menu};

/// The label of the one window the UI lives in.
pub const MAIN_WINDOW: &str = "main";

/// Command-line options of the desktop app.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "uplink-desktop",
    version,
    about = "Uplink desktop app: the site connector in your tray"
)]
pub struct Options {
    /// Show the window at start instead of starting to the tray (for tests and screenshots).
    #[arg(long)]
    pub show_window: bool,
}

/// Registers the state and IPC commands. Shared by the real app and the IPC tests, which run it
/// on Tauri's mock runtime.
pub fn configure<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        .manage(Control::new(HostKind::Desktop))
        .invoke_handler(tauri::generate_handler![commands::app_info])
}

/// Brings the main window to the front, creating nothing new.
pub fn show_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
        None => tracing::warn!("the main window is missing"),
    }
}

/// Runs the desktop app until the user quits from the tray.
pub fn run(options: Options) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = configure(tauri::Builder::default())
        .setup(move |app| {
            if let Err(error) = tray::install(app.handle()) {
                // No tray host (a stock GNOME, a CI machine): the app still runs; a second
                // launch or --show-window opens the window.
                tracing::warn!(%error, "no tray icon: the desktop has no tray host");
            }
            if options.show_window {
                show_main_window(app.handle());
            }
            tracing::info!("Uplink desktop app started");
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window only hides it: the connector keeps running in the tray.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())
        .expect("the desktop app's context is valid");

    app.run(|_app, event| {
        // Closing the last window must not end the app; only Quit (which sets a code) does.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
}

#[cfg(test)]
mod ipc_tests {
    use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;

    fn request(cmd: &str) -> InvokeRequest {
        request_from(cmd, "tauri://localhost")
    }

    fn request_from(cmd: &str, origin: &str) -> InvokeRequest {
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: origin.parse().unwrap(),
            body: tauri::ipc::InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        }
    }

    fn app() -> tauri::App<tauri::test::MockRuntime> {
        super::configure(mock_builder())
            .build(tauri::generate_context!())
            .expect("the app builds on the mock runtime")
    }

    #[test]
    fn app_info_answers_over_ipc_as_the_desktop_host() {
        let app = app();
        let window = tauri::WebviewWindowBuilder::new(&app, super::MAIN_WINDOW, Default::default())
            .build()
            .unwrap();
        let info = get_ipc_response(&window, request("app_info"))
            .expect("app_info is allowed for the main window")
            .deserialize::<serde_json::Value>()
            .unwrap();
        assert_eq!(info["name"], "Uplink");
        assert_eq!(info["host"], "desktop");
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn commands_outside_the_capability_are_refused() {
        let app = app();
        let window = tauri::WebviewWindowBuilder::new(&app, super::MAIN_WINDOW, Default::default())
            .build()
            .unwrap();
        assert!(get_ipc_response(&window, request("plugin:shell|execute")).is_err());
        assert!(get_ipc_response(&window, request("no_such_command")).is_err());
        // Remote content never reaches the commands, even in the main window.
        assert!(
            get_ipc_response(&window, request_from("app_info", "https://evil.example")).is_err()
        );
    }
}
