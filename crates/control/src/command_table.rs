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
            /// What a data source answers: its queries, whether it pushes values, whether
            /// its site lets apps write.
            source_abilities(SourceAbilitiesArgs {
                /// The data source's name.
                source: String,
            }) -> SourceAbilities =
                |control| control.source_abilities(&source).await;
            /// Tags of a data source whose names match a pattern (`*` any run of characters,
            /// `?` one), a page at a time.
            search_tags(SearchTagsArgs {
                /// The data source's name.
                source: String,
                /// The name pattern; empty for every tag.
                pattern: String,
                /// Matches to skip (the previous page's `nextOffset`).
                #[serde(default)]
                #[ts(optional, type = "number")]
                offset: Option<u64>,
                /// The most tags in the page (1 to 1 000).
                limit: u32,
            }) -> TagsPage =
                |control| control.search_tags(&source, &pattern, offset.unwrap_or(0), limit).await;
            /// Starts following the current values of `tags`, or renews the watch `watchId`
            /// (with new tags when they differ). Values come on the `tag-values` event; the
            /// watch ends after its lease unless renewed.
            watch_tags(WatchTagsArgs {
                /// The data source's name.
                source: String,
                /// The tags to follow (at most 200).
                tags: Vec<String>,
                /// The watch to renew; absent to start one.
                #[serde(default)]
                #[ts(optional = nullable)]
                watch_id: Option<String>,
            }) -> TagWatch =
                |control| control.watch_tags(&source, tags, watch_id).await;
            /// Ends a watch (its page closed).
            stop_watch(StopWatchArgs {
                /// The watch.
                watch_id: String,
            }) -> () = |control| {
                control.stop_watch(&watch_id);
                Ok(())
            };
            /// Runs a raw, plot, processed or values-at-times query against a data source on
            /// this machine, with the app API's fields, and answers with a table.
            run_query(RunQueryArgs {
                /// The data source's name.
                source: String,
                /// The query.
                query: LocalQuery,
            }) -> QueryTable =
                |control| control.run_query(&source, query).await;
            /// A data source's recent alarms and events, newest first (for sources whose
            /// abilities include `events`).
            source_events(SourceEventsArgs {
                /// The data source's name.
                source: String,
                /// How far back to look, as a time expression; `*-1h` when absent.
                #[serde(default)]
                #[ts(optional)]
                since: Option<String>,
                /// The most events (1 to 1 000); 200 when absent.
                #[serde(default)]
                #[ts(optional)]
                limit: Option<u32>,
            }) -> RecentEvents =
                |control| control.source_events(&source, since.as_deref(), limit).await;
            /// The folders and files in a folder of this machine, for a form's path picker
            /// (names only; hidden entries and Uplink's data folder left out).
            list_folder(ListFolderArgs {
                /// A full path; absent for the user's home folder.
                #[serde(default)]
                #[ts(optional)]
                path: Option<String>,
            }) -> FolderListing =
                |control| control.list_folder(path.as_deref());
            /// Opens a data source without saving it and reads a few values.
            test_source(TestSourceArgs {
                /// The configuration to try.
                source: SourceConfig,
                /// The name the edited source is saved under, when the form edits a saved one
                /// (the form may have renamed it): its Test opens beside the running source.
                #[serde(default)]
                #[ts(optional)]
                saved: Option<String>,
                /// An id of the window's choosing, for `cancel_run`.
                #[serde(default)]
                #[ts(optional)]
                run_id: Option<String>,
            }) -> SourceTest =
                |control| control.test_source(source, saved, run_id).await;
            /// Stops a slow step started with this `runId` (a test of a data source, the
            /// connectivity test): its work stops, and it answers `cancelled`.
            cancel_run(CancelRunArgs {
                /// The id the step was started with.
                run_id: String,
            }) -> () = |control| {
                control.cancel_run(&run_id);
                Ok(())
            };
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
            /// Blocks every app on a data source on this site whatever the hub says (the
            /// local veto), or lifts the block; it follows the source across a rename.
            set_source_blocked(SetSourceBlockedArgs {
                /// The data source's name.
                source: String,
                /// `true` to block it, `false` to lift the block.
                blocked: bool,
            }) -> () =
                |control| control.set_source_blocked(&source, blocked).await;
            /// Renames this site (1 to 64 characters); the hub shows the new name once the
            /// connector registers again. Rejects with `invalid_form` (field `name`).
            set_site_name(SetSiteNameArgs {
                /// The new name.
                name: String,
            }) -> () =
                |control| control.set_site_name(&name).await;
            /// The recent relayed requests, newest first.
            activity() -> Vec<ActivityRecord> = |control| control.activity().await;
            /// Tests each step of reaching the hub: DNS, TCP, TLS, negotiate, each transport.
            run_diagnostics(RunDiagnosticsArgs {
                /// An id of the window's choosing, for `cancel_run`.
                #[serde(default)]
                #[ts(optional)]
                run_id: Option<String>,
            }) -> DiagnosticsReport = |control| control.run_diagnostics(run_id).await;
            /// Writes a zip of recent logs, status and configuration, secrets removed.
            export_diagnostics() -> DiagnosticsExport =
                |control| control.export_diagnostics().await;
            /// Starts a hub inside Uplink on this machine, with a simulated data source and a
            /// demo app.
            use_local_hub() -> () = |control| control.use_local_hub().await;
            /// In local-hub mode, a one-time link (valid for a minute) to the local hub's
            /// consent page for the demo app, signed in; `openBrowser` opens it in the system
            /// browser too (the desktop window), else the page opens it itself.
            open_demo_consent(OpenDemoConsentArgs {
                /// Open it in the system browser.
                open_browser: bool,
            }) -> DemoConsent =
                |control| control.open_demo_consent(open_browser).await;
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
