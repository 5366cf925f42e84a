//! The connectivity test's result, as the desktop UI shows it: one line per check, in the order
//! they ran, each saying in plain words what was found or what failed and why.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The whole connectivity test, for one hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsReport {
    /// The hub tested (`None` when no hub is configured yet).
    pub hub_url: Option<String>,
    /// When the test started.
    pub started_at: DateTime<Utc>,
    /// The checks, in the order they ran.
    pub checks: Vec<DiagnosticCheck>,
}

impl DiagnosticsReport {
    /// The report for a connector with no hub yet: every check skipped, saying why.
    pub fn not_configured() -> Self {
        let mut report = Self {
            hub_url: None,
            started_at: Utc::now(),
            checks: Vec::new(),
        };
        for id in CheckId::ALL {
            report.skip(
                id,
                "no hub is configured yet: sign in to a hub (or use a local hub) first",
            );
        }
        report
    }

    /// The check `id`, if it ran or was skipped.
    pub fn check(&self, id: CheckId) -> Option<&DiagnosticCheck> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Whether every check passed.
    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.outcome == Outcome::Passed)
    }

    pub(crate) fn push(
        &mut self,
        id: CheckId,
        outcome: Outcome,
        detail: impl Into<String>,
        took: Option<Duration>,
    ) {
        self.checks.push(DiagnosticCheck {
            id,
            label: id.label().to_owned(),
            outcome,
            detail: detail.into(),
            duration_ms: took.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
        });
    }

    pub(crate) fn skip(&mut self, id: CheckId, reason: impl Into<String>) {
        self.push(id, Outcome::Skipped, reason, None);
    }
}

/// One check of the connectivity test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticCheck {
    /// Which check.
    #[ts(inline)]
    pub id: CheckId,
    /// Its name, for people ("TLS handshake").
    pub label: String,
    /// Passed, failed, or skipped because an earlier check failed.
    #[ts(inline)]
    pub outcome: Outcome,
    /// What was found, or what failed and why, in words a site's IT staff can act on. Never a
    /// secret.
    pub detail: String,
    /// How long the check took, in milliseconds (`None` when skipped).
    pub duration_ms: Option<f64>,
}

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum CheckId {
    /// The hub's name resolves to addresses.
    Dns,
    /// A TCP connection opens (to the hub, or to the proxy and through it).
    Tcp,
    /// The TLS handshake completes and the certificate is trusted.
    Tls,
    /// The SignalR negotiate request at `/hubs/connector` is answered.
    Negotiate,
    /// A WebSocket link opens and completes the SignalR handshake.
    WebSockets,
    /// A Server-Sent Events link opens and completes the SignalR handshake.
    ServerSentEvents,
    /// A long-polling link opens and completes the SignalR handshake.
    LongPolling,
}

impl CheckId {
    /// Every check, in order.
    pub const ALL: [CheckId; 7] = [
        CheckId::Dns,
        CheckId::Tcp,
        CheckId::Tls,
        CheckId::Negotiate,
        CheckId::WebSockets,
        CheckId::ServerSentEvents,
        CheckId::LongPolling,
    ];

    /// Its name, for people.
    pub fn label(self) -> &'static str {
        match self {
            CheckId::Dns => "DNS lookup",
            CheckId::Tcp => "TCP connection",
            CheckId::Tls => "TLS handshake",
            CheckId::Negotiate => "SignalR negotiate",
            CheckId::WebSockets => "WebSockets",
            CheckId::ServerSentEvents => "Server-Sent Events",
            CheckId::LongPolling => "Long polling",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It worked.
    Passed,
    /// It did not; the detail says why.
    Failed,
    /// It was not tried, because an earlier check failed (the detail says which).
    Skipped,
}

/// The diagnostics archive written by [`export_diagnostics`](super::export_diagnostics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsExport {
    /// The zip file's full path.
    pub path: String,
    /// Its size in bytes.
    #[ts(type = "number")]
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_report_has_the_contract_shape() {
        let mut report = DiagnosticsReport::not_configured();
        report.checks.truncate(1);
        report.push(
            CheckId::ServerSentEvents,
            Outcome::Passed,
            "ok",
            Some(Duration::from_micros(1234)),
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["hubUrl"], serde_json::Value::Null);
        assert!(json["startedAt"].is_string());
        assert_eq!(json["checks"][0]["id"], "dns");
        assert_eq!(json["checks"][0]["outcome"], "skipped");
        assert_eq!(json["checks"][0]["durationMs"], serde_json::Value::Null);
        assert_eq!(json["checks"][1]["id"], "serverSentEvents");
        assert_eq!(json["checks"][1]["label"], "Server-Sent Events");
        assert_eq!(json["checks"][1]["durationMs"], 1.2);
        let ts = DiagnosticCheck::decl();
        assert!(ts.contains("durationMs: number | null"), "{ts}");
        // The unions are spelled out where they are used, as the control contract has them.
        assert!(
            ts.contains(r#"id: "dns" | "tcp" | "tls" | "negotiate" | "webSockets" | "serverSentEvents" | "longPolling""#),
            "{ts}"
        );
        assert!(
            ts.contains(r#"outcome: "passed" | "failed" | "skipped""#),
            "{ts}"
        );
        let report = DiagnosticsReport::decl();
        assert!(report.contains("hubUrl: string | null"), "{report}");
        assert!(report.contains("startedAt: string"), "{report}");
        assert!(DiagnosticsExport::decl().contains("bytes: number"));
    }
}
