//! The connector's Prometheus metrics: the link (state, transport, reconnects, round trip), the
//! relayed queries it served by data source, operation and outcome with their time and bytes,
//! and each data source's health. Served by `uplink connector run` on a loopback listener of
//! its own (`--metrics-listen`).
//!
//! Labels carry data source names and kinds, operations, states and failure codes: never an
//! app, user, token or hub id.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::status::{ConnectorStatus, LinkState};

/// A served query's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    source: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceHealthLabels {
    source: String,
    kind: String,
    state: String,
}

fn query_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of one connector runtime.
#[derive(Debug)]
pub struct ConnectorMetrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    query_seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    answer_bytes: Family<SourceLabel, Counter>,
    link_state: Family<StateLabel, Gauge>,
    link_transport: Family<TransportLabel, Gauge>,
    reconnects: Counter,
    reconnects_seen: Mutex<u64>,
    round_trip_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    active_queries: Gauge,
    source_health: Family<SourceHealthLabels, Gauge>,
    source_subscribes: Family<SourceLabel, Counter>,
    subscriptions: Family<SourceLabel, Counter>,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix("uplink_connector"),
            queries: Family::default(),
            query_seconds: Family::new_with_constructor(query_histogram),
            answer_bytes: Family::default(),
            link_state: Family::default(),
            link_transport: Family::default(),
            reconnects: Counter::default(),
            reconnects_seen: Mutex::new(0),
            round_trip_seconds: Gauge::default(),
            active_queries: Gauge::default(),
            source_health: Family::default(),
            source_subscribes: Family::default(),
            subscriptions: Family::default(),
        };
        let mut metrics = metrics;
        let registry = &mut metrics.registry;
        registry.register(
            "queries",
            "Relayed queries served, by data source, operation and outcome",
            metrics.queries.clone(),
        );
        registry.register(
            "query_seconds",
            "Time from a relayed query's arrival to its answer's end",
            metrics.query_seconds.clone(),
        );
        registry.register(
            "answer_bytes",
            "Answer bytes sent to the hub, by data source",
            metrics.answer_bytes.clone(),
        );
        registry.register(
            "link_state",
            "The link's state (1 for the current one)",
            metrics.link_state.clone(),
        );
        registry.register(
            "link_transport",
            "The transport the link uses (1 while linked)",
            metrics.link_transport.clone(),
        );
        registry.register(
            "link_reconnects",
            "Times the link was opened again",
            metrics.reconnects.clone(),
        );
        registry.register(
            "link_round_trip_seconds",
            "The link's last measured round trip",
            metrics.round_trip_seconds.clone(),
        );
        registry.register(
            "active_queries",
            "Relayed queries being served now",
            metrics.active_queries.clone(),
        );
        registry.register(
            "source_health",
            "Each data source's health (1 for its current state)",
            metrics.source_health.clone(),
        );
        registry.register(
            "source_subscribes",
            "Subscriptions opened on a data source (one per tag set, shared by every app on it)",
            metrics.source_subscribes.clone(),
        );
        registry.register(
            "subscriptions",
            "Subscriptions the hub asked for (one per app, data source and tag set), by data source",
            metrics.subscriptions.clone(),
        );
        metrics
    }
}

impl ConnectorMetrics {
    /// Counts a subscription the hub asked for on `source`.
    pub(crate) fn subscription(&self, source: &str) {
        self.subscriptions
            .get_or_create(&SourceLabel {
                source: source.to_owned(),
            })
            .inc();
    }

    /// Counts a `DataSource::subscribe` on `source`.
    pub(crate) fn source_subscribed(&self, source: &str) {
        self.source_subscribes
            .get_or_create(&SourceLabel {
                source: source.to_owned(),
            })
            .inc();
    }

    /// Counts a served query.
    pub(crate) fn query(
        &self,
        source: &str,
        operation: &str,
        outcome: &str,
        took: Duration,
        bytes: u64,
    ) {
        self.queries
            .get_or_create(&QueryLabels {
                source: source.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.query_seconds
            .get_or_create(&OperationLabel {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.answer_bytes
            .get_or_create(&SourceLabel {
                source: source.to_owned(),
            })
            .inc_by(bytes);
    }

    /// The Prometheus text exposition, with the link and the sources as `status` has them.
    pub fn scrape(&self, status: &ConnectorStatus) -> String {
        self.link_state.clear();
        for state in [
            LinkState::Connecting,
            LinkState::Connected,
            LinkState::Reconnecting,
            LinkState::Offline,
            LinkState::SignedOut,
        ] {
            self.link_state
                .get_or_create(&StateLabel {
                    state: state.to_string().replace(' ', "_"),
                })
                .set(i64::from(status.link == state));
        }
        self.link_transport.clear();
        if let (LinkState::Connected, Some(transport)) = (status.link, &status.transport) {
            self.link_transport
                .get_or_create(&TransportLabel {
                    transport: transport_label(transport),
                })
                .set(1);
        }
        {
            let mut seen = self
                .reconnects_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if status.reconnects > *seen {
                self.reconnects.inc_by(status.reconnects - *seen);
                *seen = status.reconnects;
            }
        }
        self.round_trip_seconds
            .set(status.round_trip_ms.unwrap_or(0.0) / 1000.0);
        self.active_queries
            .set(i64::try_from(status.active_queries).unwrap_or(i64::MAX));
        self.source_health.clear();
        for source in &status.sources {
            self.source_health
                .get_or_create(&SourceHealthLabels {
                    source: source.name.clone(),
                    kind: source.kind.clone(),
                    state: source.health.state.to_string(),
                })
                .set(1);
        }
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(%error, "cannot encode the metrics");
        }
        text
    }
}

/// `WebSockets` → `websockets`, as the hub's metrics name transports.
fn transport_label(transport: &str) -> String {
    match transport {
        "WebSockets" => "websockets".to_owned(),
        "ServerSentEvents" => "server_sent_events".to_owned(),
        "LongPolling" => "long_polling".to_owned(),
        _ => "other".to_owned(),
    }
}

/// The media type of [`ConnectorMetrics::scrape`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_queries_and_the_link_read_as_prometheus_lines() {
        let metrics = ConnectorMetrics::default();
        metrics.query("line-1", "raw", "ok", Duration::from_millis(12), 4096);
        metrics.query("line-1", "raw", "vetoed", Duration::from_millis(1), 0);
        let status = ConnectorStatus {
            link: LinkState::Connected,
            transport: Some("LongPolling".into()),
            reconnects: 3,
            round_trip_ms: Some(25.0),
            ..ConnectorStatus::default()
        };
        let text = metrics.scrape(&status);
        for line in [
            r#"uplink_connector_queries_total{source="line-1",operation="raw",outcome="ok"} 1"#,
            r#"uplink_connector_queries_total{source="line-1",operation="raw",outcome="vetoed"} 1"#,
            r#"uplink_connector_answer_bytes_total{source="line-1"} 4096"#,
            r#"uplink_connector_query_seconds_count{operation="raw"} 2"#,
            r#"uplink_connector_link_transport{transport="long_polling"} 1"#,
            "uplink_connector_link_reconnects_total 3",
            "uplink_connector_link_round_trip_seconds 0.025",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // The counter follows the status without counting twice.
        let again = metrics.scrape(&ConnectorStatus {
            reconnects: 4,
            ..status
        });
        assert!(
            again.contains("uplink_connector_link_reconnects_total 4"),
            "{again}"
        );
    }
}
