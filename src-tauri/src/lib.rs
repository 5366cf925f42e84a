//! Uplink desktop app: a thin shell over Uplink's headless crates.
//!
//! On Linux this is the window process: the tray process (`uplink-desktop`, built from
//! `uplink-tray`, which owns the connector runtime) starts it when the owner opens the window,
//! and it forwards each IPC command and status event over the tray process's loopback bridge;
//! closing the window ends it. Elsewhere one process holds the runtime, the tray and the window
//! ([`run`]). Either way each IPC command maps to the control surface in `uplink-control`, and
//! the shell holds no business logic of its own.

mod backend;
mod commands;
mod live;
mod navigation;
mod tray;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime};
use tauri_plugin_window_state::StateFlags;
use uplink_control::{Control, HostKind};

pub use backend::{Backend, BridgeClient};
pub use navigation::is_bundled_ui;
pub use uplink_tray::Options;

/// The label of the one window the UI lives in.
pub const MAIN_WINDOW: &str = "main";

/// How long Quit waits for the connector to close its link before the process ends anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Command-line options of the window process.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "uplink-window",
    version,
    about = "The window of the Uplink desktop app, opened from the tray of uplink-desktop"
)]
pub struct WindowOptions {
    /// The data folder of the running uplink-desktop whose connector the window shows
    /// [default: the platform's app data folder].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Registers the IPC commands. Shared by the real app and the IPC tests, which run it on
/// Tauri's mock runtime and manage a [`Control`] of their own.
pub fn configure<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(commands::handler())
}

/// Brings the main window to the front, creating it first if it is closed.
///
/// The window (and with it WebKit's processes) exists only while the owner looks at it: an app
/// that lives in the tray holds no web view, which keeps its idle memory small.
pub fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => bring_forward(&window),
        None => {
            if let Err(error) = create_main_window(app) {
                tracing::error!(%error, "the window could not be opened");
            }
        }
    }
}

fn bring_forward<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}

/// How long a new window waits for its page before it appears anyway (a page that never
/// loads must not leave the owner with no window at all).
const SHOW_UNLOADED_AFTER: Duration = Duration::from_secs(3);

/// Creates the main window, hidden, from its entry in `tauri.conf.json` (which has
/// `create: false`); the window-state plugin restores its size and place as it appears.
///
/// It appears once its page has loaded, so its first frame is the UI and never an empty
/// window; a later load (a reload) leaves it where it is.
fn create_main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<tauri::WebviewWindow<R>> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|window| window.label == MAIN_WINDOW)
        .ok_or(tauri::Error::WindowNotFound)?
        .clone();
    let window = tauri::WebviewWindowBuilder::from_config(app, &config)?
        .on_page_load(|window, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Finished
                && !window.is_visible().unwrap_or(true)
            {
                tracing::info!("the window's page has loaded: showing the window");
                bring_forward(&window);
            }
        })
        .build()?;
    let late = window.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SHOW_UNLOADED_AFTER).await;
        if !late.is_visible().unwrap_or(true) {
            tracing::warn!("the window's page has not loaded yet: showing the window anyway");
            bring_forward(&late);
        }
    });
    Ok(window)
}

/// Starts the connector's control surface in `data_dir` and hands it to the app.
fn start_control<R: Runtime>(app: &AppHandle<R>, options: &Options) -> anyhow::Result<Control> {
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => app.path().app_data_dir()?,
    };
    tracing::info!(data_dir = %data_dir.display(), "starting the connector");
    // Control::start spawns the runtime on the current tokio runtime: Tauri's own.
    let control =
        tauri::async_runtime::block_on(async { Control::start(HostKind::Desktop, data_dir) });
    app.manage(control.clone());
    app.manage(Backend::InProcess(control.clone()));
    if options.local_hub {
        tauri::async_runtime::spawn(uplink_tray::link_local_hub(control.clone()));
    }
    Ok(control)
}

/// Shows the window of the running tray process of `options.data_dir` until it is closed or
/// the tray process stops.
pub fn run_window(options: WindowOptions) -> anyhow::Result<()> {
    let data_dir = match options.data_dir {
        Some(dir) => dir,
        None => uplink_tray::default_data_dir().context("no home folder holds Uplink's data")?,
    };
    uplink_tray::init_logging(uplink_tray::WINDOW_PROGRAM, Some(&data_dir));
    let bridge = BridgeClient::new(uplink_tray::bridge::read(&data_dir)?)?;
    // A second window process hands over to the first, which comes forward.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            show_main_window(app);
        }))
        .plugin(remembered_place())
        .plugin(navigation::guard());
    let app = configure(builder)
        .manage(Backend::Bridge(bridge.clone()))
        .setup(move |app| {
            bridge.forward_status(app.handle().clone());
            bridge.forward_tag_values(app.handle().clone());
            show_main_window(app.handle());
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("the window could not start")?;
    // Closing the window ends this process, and WebKit's with it; the tray process stays.
    app.run(|_, _| {});
    Ok(())
}

/// The window's size and place are remembered; its visibility is not, so the app still starts
/// to the tray after a session that ended with the window open.
fn remembered_place<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_window_state::Builder::default()
        .with_state_flags(StateFlags::all() - StateFlags::VISIBLE)
        .build()
}

/// Runs the desktop app until the user quits from the tray. `started` is when the process
/// began, for the start-up time in the log.
pub fn run(options: Options, started: Instant) {
    // The same folder the path resolver names (see `uplink_tray::default_data_dir`).
    let data_dir = options
        .data_dir
        .clone()
        .or_else(uplink_tray::default_data_dir);
    uplink_tray::init_logging(uplink_tray::TRAY_PROGRAM, data_dir.as_deref());
    let show_window = options.show_window;
    // The single-instance plugin goes first: a second launch must stop before anything else
    // starts, and bring the running app's window forward instead.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tracing::info!("Uplink was launched again: showing the window");
            show_main_window(app);
        }))
        .plugin(remembered_place())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(navigation::guard());
    let app = configure(builder)
        .setup(move |app| {
            let control = start_control(app.handle(), &options)?;
            tray::start(app.handle(), &control, started);
            live::forward_status(app.handle().clone(), &control);
            live::forward_tag_values(app.handle().clone(), &control);
            if show_window {
                show_main_window(app.handle());
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the desktop app's context is valid");

    app.run(|app, event| match event {
        // Closing the window destroys it (and its web view) but must not end the app: the
        // connector keeps running in the tray. Only Quit, which sets a code, exits.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => {
            if let Some(control) = app.try_state::<Control>() {
                let control = control.inner().clone();
                let stopped = tauri::async_runtime::block_on(async {
                    tokio::time::timeout(SHUTDOWN_GRACE, control.shutdown()).await
                });
                if stopped.is_err() {
                    tracing::warn!("the connector did not stop in time; exiting anyway");
                }
            }
        }
        _ => {}
    });
}

#[cfg(test)]
mod ipc_tests {
    use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
    use tauri::webview::InvokeRequest;
    use tauri::{App, Manager, WebviewWindow};
    use uplink_control::{Control, HostKind};

    fn request(cmd: &str, body: serde_json::Value) -> InvokeRequest {
        request_from(cmd, body, "tauri://localhost")
    }

    fn request_from(cmd: &str, body: serde_json::Value, origin: &str) -> InvokeRequest {
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: origin.parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(body),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        }
    }

    fn app() -> App<MockRuntime> {
        super::configure(mock_builder())
            .build(tauri::generate_context!())
            .expect("the app builds on the mock runtime")
    }

    fn main_window(app: &App<MockRuntime>) -> WebviewWindow<MockRuntime> {
        tauri::WebviewWindowBuilder::new(app, super::MAIN_WINDOW, Default::default())
            .build()
            .unwrap()
    }

    /// The error text of a refused or failed call.
    fn refusal(window: &WebviewWindow<MockRuntime>, cmd: &str) -> String {
        match get_ipc_response(window, request(cmd, serde_json::json!({}))) {
            Ok(_) => panic!("{cmd} answered without a control surface"),
            Err(error) => error.to_string(),
        }
    }

    /// An app with a real control surface on a fresh data dir.
    fn app_with_control(data_dir: &std::path::Path) -> App<MockRuntime> {
        let app = app();
        let control = tauri::async_runtime::block_on(async {
            Control::start(HostKind::Desktop, data_dir.to_owned())
        });
        app.manage(crate::Backend::InProcess(control));
        app
    }

    #[test]
    fn app_info_answers_over_ipc_as_the_desktop_host() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_with_control(dir.path());
        let window = main_window(&app);
        let info = get_ipc_response(&window, request("app_info", serde_json::json!({})))
            .expect("app_info is allowed for the main window")
            .deserialize::<serde_json::Value>()
            .unwrap();
        assert_eq!(info["name"], "Uplink");
        assert_eq!(info["host"], "desktop");
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn status_answers_with_the_runtime_state_of_this_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_with_control(dir.path());
        let window = main_window(&app);
        let status = get_ipc_response(&window, request("status", serde_json::json!({})))
            .expect("status is allowed for the main window")
            .deserialize::<serde_json::Value>()
            .unwrap();
        assert_eq!(status["configured"], false, "{status}");
        assert_eq!(status["paused"], false, "{status}");
        assert_eq!(
            status["dataDir"],
            dir.path().display().to_string(),
            "{status}"
        );
        assert!(status["connector"]["link"].is_string(), "{status}");
        // Bad arguments are named, and the app keeps answering.
        let error = get_ipc_response(
            &window,
            request("set_paused", serde_json::json!({ "paused": "yes" })),
        )
        .expect_err("a string is not a boolean");
        assert!(error.to_string().contains("paused"), "{error}");
        assert!(get_ipc_response(&window, request("status", serde_json::json!({}))).is_ok());
    }

    #[test]
    fn every_contract_command_is_allowed_for_the_main_window() {
        // No control surface is managed here, so an allowed command gets as far as asking for
        // it and fails there, without running anything; a refused one never gets that far.
        let app = app();
        let window = main_window(&app);
        for cmd in uplink_control::COMMANDS {
            let error = refusal(&window, cmd);
            assert!(
                error.contains("state not managed"),
                "{cmd} did not reach its handler: {error}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let app = app();
        let window = main_window(&app);
        for cmd in [
            "plugin:shell|execute",
            "plugin:notification|notify",
            "plugin:autostart|enable",
            "plugin:window-state|save_window_state",
            "plugin:window|close",
            "plugin:webview|create_webview_window",
            "plugin:event|emit",
            "no_such_command",
        ] {
            let error = refusal(&window, cmd);
            assert!(
                !error.contains("state not managed"),
                "{cmd} was let through: {error}"
            );
        }
        // Remote content never reaches the commands, even in the main window.
        for cmd in ["app_info", "status", "use_local_hub"] {
            let error = get_ipc_response(
                &window,
                request_from(cmd, serde_json::json!({}), "https://evil.example"),
            )
            .expect_err("a remote origin is refused");
            assert!(!error.to_string().contains("state not managed"), "{error}");
        }
        // Another window gets nothing.
        let other = tauri::WebviewWindowBuilder::new(&app, "other", Default::default())
            .build()
            .unwrap();
        let error = get_ipc_response(&other, request("status", serde_json::json!({})))
            .expect_err("only the main window may call commands");
        assert!(!error.to_string().contains("state not managed"), "{error}");
    }

    #[test]
    fn the_capability_grants_exactly_the_contract_commands_and_event_listening() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main-window.json")).unwrap();
        let mut granted: Vec<&str> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        granted.sort();
        assert_eq!(
            granted,
            [
                "control-contract",
                "core:event:allow-listen",
                "core:event:allow-unlisten"
            ]
        );
        assert_eq!(capability["windows"], serde_json::json!(["main"]));
        assert!(
            capability.get("remote").is_none(),
            "no remote URL may call commands"
        );
        // The set, written by build.rs from the command table, allows each command and no more.
        let set = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/permissions/autogenerated/control-contract.toml"
        ))
        .unwrap();
        let mut allowed: Vec<String> = set
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .map(|l| l.trim_end_matches(',').trim_end_matches('"').to_owned())
            .collect();
        let mut expected: Vec<String> = uplink_control::COMMANDS
            .iter()
            .map(|c| format!("allow-{}", c.replace('_', "-")))
            .collect();
        allowed.sort();
        expected.sort();
        assert_eq!(allowed, expected);
    }
}
