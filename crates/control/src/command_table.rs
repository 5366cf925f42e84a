// The control contract's commands, declared once.
//
// This file is the one place a command is added. Each row names the command, its argument
// type with its fields (`SetPausedArgs { paused: bool }`, or nothing), its result type, and
// the [`Control`] call that answers it (an expression over the fields, `.await` allowed,
// giving `Result<result, ControlError>`). From it come:
// - the argument types themselves (`uplink_control::commands::SetPausedArgs`, camelCase in
//   JSON, unknown fields refused),
// - `uplink_control::COMMANDS` and `Control::dispatch` (crates/control/src/commands.rs),
// - the Tauri command shims and their handler (src-tauri/src/commands.rs),
// - the list src-tauri/build.rs gives tauri_build, and with it the `control-contract`
//   permission set the main window's capability grants,
// - the typed wrappers in ui/src/lib/commands.ts (and the argument types in
//   ui/src/lib/bindings/), written by the bindings test (crates/control/src/bindings.rs).
//
// src-tauri/build.rs `include!`s this file, so it holds only the macro: no `use`, no items.

/// Calls the macro `$then` with every row of the command table (see the top of
/// crates/control/src/command_table.rs for the grammar of a row).
#[macro_export]
macro_rules! control_commands {
    ($then:ident) => {
        $then! {
            /// Which product, version and host the UI is talking to (the About page).
            app_info() -> AppInfo = |control| Ok(control.app_info());
            /// Everything the UI shows, as it is now; the status events follow its changes.
            status() -> ControlStatus = |control| Ok(control.status());
            /// Drops the link to the hub and opens it again at once.
            reconnect() -> () = |control| control.reconnect().await;
            /// Pauses the link (no queries are served) or resumes it; remembered across restarts.
            set_paused(SetPausedArgs {
                /// `true` to pause, `false` to resume.
                paused: bool,
            }) -> () =
                |control| control.set_paused(paused).await;
            /// Which transport the link should use; remembered, and the link reopens with it.
            set_transport_preference(SetTransportPreferenceArgs {
                /// The transport to use, or automatic fallback.
                preference: TransportPreference,
            }) -> () =
                |control| control.set_transport_preference(preference).await;
            /// The data source kinds this connector knows, each with its form.
            source_kinds() -> Vec<FormSchema> = |control| Ok(control.source_kinds());
            /// A data source's configuration for the Edit form; secret settings come back empty.
            source_settings(SourceSettingsArgs {
                /// The data source's name.
                name: String,
            }) -> SourceConfig =
                |control| control.source_settings(&name);
            /// Adds a data source; rejects with `invalid_form` (and `fields`).
            add_source(AddSourceArgs {
                /// The new data source's configuration.
                source: SourceConfig,
            }) -> () =
                |control| control.add_source(source).await;
            /// Replaces the data source `name` (which may be renamed); an empty secret keeps the
            /// stored one.
            edit_source(EditSourceArgs {
                /// The name of the data source to replace.
                name: String,
                /// Its new configuration (its name may differ).
                source: SourceConfig,
            }) -> () =
                |control| control.edit_source(&name, source).await;
            /// Removes a data source; apps lose access to it at once.
            remove_source(RemoveSourceArgs {
                /// The data source's name.
                name: String,
            }) -> () =
                |control| control.remove_source(&name).await;
            /// Opens a data source without saving it and reads a few values.
            test_source(TestSourceArgs {
                /// The configuration to try.
                source: SourceConfig,
            }) -> SourceTest =
                |control| control.test_source(source).await;
            /// Revokes an app's grant on one data source, or on all of them when `source` is
            /// absent or null.
            revoke(RevokeArgs {
                /// The app whose grant ends.
                app_id: String,
                /// The data source; absent or null for all of them.
                #[serde(default)]
                #[ts(optional = nullable)]
                source: Option<String>,
            }) -> () =
                |control| control.revoke(&app_id, source.as_deref()).await;
            /// Blocks an app on this site whatever the hub says (the local veto), or lifts the
            /// block.
            set_app_blocked(SetAppBlockedArgs {
                /// The app.
                app_id: String,
                /// `true` to block it, `false` to lift the block.
                blocked: bool,
            }) -> () =
                |control| control.set_app_blocked(&app_id, blocked).await;
            /// The recent relayed requests, newest first.
            activity() -> Vec<ActivityRecord> = |control| control.activity().await;
            /// Tests each step of reaching the hub: DNS, TCP, TLS, negotiate, each transport.
            run_diagnostics() -> DiagnosticsReport = |control| control.run_diagnostics().await;
            /// Writes a zip of recent logs, status and configuration, secrets removed.
            export_diagnostics() -> DiagnosticsExport =
                |control| control.export_diagnostics().await;
            /// Starts a hub inside Uplink on this machine, with a simulated data source and a
            /// demo app.
            use_local_hub() -> () = |control| control.use_local_hub().await;
            /// Starts signing in to the hub at `hubUrl` in the system browser; `caPem` trusts a
            /// hub whose certificate comes from a private certificate authority. The status
            /// shows the wait.
            sign_in(SignInArgs {
                /// The hub's address (`https://…`).
                hub_url: String,
                /// PEM text of a private certificate authority to trust for this hub.
                #[serde(default)]
                #[ts(optional)]
                ca_pem: Option<String>,
            }) -> PendingSignIn =
                |control| control.sign_in(&hub_url, ca_pem).await;
            /// Gives up the sign-in waiting in the browser.
            cancel_sign_in() -> () = |control| {
                control.cancel_sign_in();
                Ok(())
            };
            /// Forgets the hub's credentials; the link closes.
            sign_out() -> () = |control| control.sign_out().await;
        }
    };
}
