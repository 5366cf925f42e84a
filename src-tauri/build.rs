//! Builds the desktop app's Tauri context: the UI from ui/dist and the window capabilities.

/// The IPC commands of the control contract (`uplink_control::COMMANDS`, forwarded by
/// src-tauri/src/commands.rs); each gets an `allow-…` permission that the main window's
/// capability grants. A test keeps the three in step.
const COMMANDS: [&str; 20] = [
    "app_info",
    "status",
    "reconnect",
    "set_paused",
    "set_transport_preference",
    "source_kinds",
    "source_settings",
    "add_source",
    "edit_source",
    "remove_source",
    "test_source",
    "revoke",
    "set_app_blocked",
    "activity",
    "run_diagnostics",
    "export_diagnostics",
    "sign_in",
    "cancel_sign_in",
    "sign_out",
    "use_local_hub",
];

fn main() {
    // generate_context! embeds the built UI, so a missing build must stop here with a clear word.
    if !std::path::Path::new("ui/dist/index.html").exists() {
        panic!(
            "ui/dist is missing: build the UI first (`npm --prefix ui ci && npm --prefix ui run build`)"
        );
    }
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    println!("cargo:rerun-if-changed=ui/dist");
    println!("cargo:rerun-if-changed=tauri.conf.json");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(&COMMANDS));
    tauri_build::try_build(attributes).expect("the Tauri context builds");
}
