//! What the runtime shows its host (CLI, desktop app): one serializable value, replaced whole
//! on every change and watched through a `tokio::sync::watch`. It never holds a secret.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_link::Grant;

use crate::Health;
use crate::activity::ActivityRecord;
use crate::policy::LocalPolicy;

/// The link to the hub, in words a person understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum LinkState {
    /// Opening the first link.
    Connecting,
    /// Linked and registered: queries are served.
    Connected,
    /// The link dropped or an attempt failed; retrying with backoff.
    Reconnecting,
    /// The runtime is not running (stopped, or not started yet).
    Offline,
    /// No credentials, or the hub refused them: sign in again.
    SignedOut,
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Reconnecting => "reconnecting",
            LinkState::Offline => "offline",
            LinkState::SignedOut => "signed out",
        })
    }
}

/// A transport that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTransport {
    /// `WebSockets`, `ServerSentEvents` or `LongPolling`.
    pub transport: String,
    /// Why it was skipped.
    pub reason: String,
}

/// An app the owner consented to on one data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConsentedApp {
    /// The app's client id (what [`revoke`](super::ConnectorRuntime::revoke) takes).
    pub app_id: String,
    /// Its display name.
    pub app_name: String,
    /// Who consented.
    pub user_id: String,
    /// Their name for people, when the hub sends it.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When.
    pub granted_at: DateTime<Utc>,
    /// Last use, if any.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether the local policy blocks the app anyway.
    pub blocked_on_site: bool,
}

/// An app whose every grant on this connector was revoked on the hub: still listed, so the
/// owner can block it on this site whatever the hub says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RevokedApp {
    /// The app's client id (what the site's Block takes).
    pub app_id: String,
    /// Its display name.
    pub app_name: String,
    /// When its last grant here was revoked.
    pub revoked_at: DateTime<Utc>,
    /// Whether the local policy blocks it.
    pub blocked_on_site: bool,
}

/// One configured data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// Its name (what grants and the policy refer to).
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its description.
    pub description: String,
    /// Whether it works.
    pub health: Health,
    /// Its id on the hub, once registered.
    pub hub_id: Option<String>,
    /// How many tags it has, when it could list them.
    pub tag_count: Option<u32>,
    /// Whether the local policy blocks it.
    pub blocked_on_site: bool,
    /// Apps with a live grant on it.
    pub apps: Vec<ConsentedApp>,
    /// What it records to the edge historian, when recording is on.
    #[serde(default)]
    pub recording: Option<uplink_source::recording::RecordingStatus>,
}

/// Everything the host shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// The link.
    pub link: LinkState,
    /// The hub's base URL.
    pub hub_url: Option<String>,
    /// This connector's id.
    pub connector_id: Option<String>,
    /// The site's name, as the hub shows it (the owner's choice, else this machine's name).
    #[serde(default)]
    pub site_name: String,
    /// The transport in use.
    pub transport: Option<String>,
    /// Faster transports that were not used, with reasons.
    pub skipped_transports: Vec<SkippedTransport>,
    /// When the current link came up.
    pub connected_since: Option<DateTime<Utc>>,
    /// The last `Heartbeat` round trip, in milliseconds.
    pub round_trip_ms: Option<f64>,
    /// How many times the link came back after a loss.
    #[ts(type = "number")]
    pub reconnects: u64,
    /// The last thing that went wrong (never a secret).
    pub last_error: Option<String>,
    /// The data sources.
    pub sources: Vec<SourceStatus>,
    /// The apps whose every grant here was revoked, most recently revoked first.
    #[serde(default)]
    pub revoked_apps: Vec<RevokedApp>,
    /// The site-side veto in force.
    pub policy: LocalPolicy,
    /// The most recent relayed queries, newest first.
    pub recent_activity: Vec<ActivityRecord>,
    /// Queries running now.
    pub active_queries: usize,
    /// The process serving this status (for `uplink connector status`).
    pub pid: u32,
    /// When this status was produced.
    pub updated_at: DateTime<Utc>,
}

impl Default for ConnectorStatus {
    fn default() -> Self {
        Self {
            link: LinkState::Offline,
            hub_url: None,
            connector_id: None,
            site_name: String::new(),
            transport: None,
            skipped_transports: Vec::new(),
            connected_since: None,
            round_trip_ms: None,
            reconnects: 0,
            last_error: None,
            sources: Vec::new(),
            revoked_apps: Vec::new(),
            policy: LocalPolicy::default(),
            recent_activity: Vec::new(),
            active_queries: 0,
            pid: std::process::id(),
            updated_at: Utc::now(),
        }
    }
}

/// Groups grants per data source for the status view.
pub(crate) fn apps_for(source: &str, grants: &[Grant], policy: &LocalPolicy) -> Vec<ConsentedApp> {
    grants
        .iter()
        .filter(|grant| grant.source == source)
        .map(|grant| ConsentedApp {
            app_id: grant.app_id.clone(),
            app_name: grant.app_name.clone(),
            user_id: grant.user_id.clone(),
            user_name: grant.user_name.clone(),
            scopes: grant.scopes.clone(),
            granted_at: grant.granted_at,
            last_used_at: grant.last_used_at,
            blocked_on_site: policy.blocked_apps.contains(&grant.app_id),
        })
        .collect()
}

/// The revoked apps for the status view, each with whether the site blocks it.
pub(crate) fn revoked_apps(
    revoked: &[uplink_link::RevokedApp],
    policy: &LocalPolicy,
) -> Vec<RevokedApp> {
    revoked
        .iter()
        .map(|app| RevokedApp {
            app_id: app.app_id.clone(),
            app_name: app.app_name.clone(),
            revoked_at: app.revoked_at,
            blocked_on_site: policy.blocked_apps.contains(&app.app_id),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names a TypeScript declaration lists, in order.
    fn ts_fields(decl: &str) -> Vec<String> {
        decl.lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("/**") && !line.starts_with('*'))
            .filter_map(|line| line.split_once(": ").map(|(name, _)| name))
            .filter(|name| !name.starts_with("type "))
            .map(|name| name.trim_end_matches('?').to_owned())
            .collect()
    }

    #[test]
    fn the_typescript_bindings_describe_the_json_the_host_receives() {
        let status = ConnectorStatus::default();
        let json = serde_json::to_value(&status).unwrap();
        let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        let mut declared = ts_fields(&ConnectorStatus::decl());
        let mut sorted_keys = keys.clone();
        declared.sort();
        sorted_keys.sort();
        assert_eq!(declared, sorted_keys);
        for decl in [
            ConnectorStatus::decl(),
            SourceStatus::decl(),
            ActivityRecord::decl(),
            Health::decl(),
        ] {
            // JSON numbers, never bigint: JSON.parse gives numbers.
            assert!(!decl.contains("bigint"), "{decl}");
        }
    }
}
