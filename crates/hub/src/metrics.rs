//! The hub's Prometheus metrics: links by transport, link connects, relayed queries by
//! operation and outcome with their latency and bytes, grant checks with their latency,
//! revocations and the answers they cut, OAuth grants by type and outcome, rate-limit
//! refusals, and the store's time on the request path. `uplink hub serve` serves [`HubMetrics::scrape`] on a listener of its own
//! (`--metrics-listen`, loopback by default), never on the public port.
//!
//! Labels carry only bounded, non-identifying values (an operation, a transport, an outcome
//! code): never a user, app, connector or token.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use uplink_signalr::Transport;

use crate::hub::Hub;

/// Latency buckets from 0.5 ms to about 16 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// A transport label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// `websockets`, `server_sent_events`, `long_polling` or `unknown`.
    pub transport: String,
}

/// An operation and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// `search`, `snapshot`, `raw`, `plot`, `at_times`, `processed`.
    pub operation: String,
    /// `ok` or the stable error code the app saw (`offline`, `timeout`, `no_grant`…).
    pub outcome: String,
}

/// An operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    /// As in [`QueryLabels::operation`].
    pub operation: String,
}

/// An outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok` or a stable code.
    pub outcome: String,
}

/// A kind of revocation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `grant`, `app_removed`, `token_family`, `connector_removed`, …
    pub kind: String,
}

/// An OAuth grant type and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// `authorization_code`, `refresh_token`, `device_code`, `client_credentials`, `other`.
    pub grant_type: String,
    /// `ok` or the OAuth error code.
    pub outcome: String,
}

/// A rate limit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// Which limit refused: `sign_in_address`, `sign_in_account`, `token_address`, `token_client`.
    pub limit: String,
}

/// Every metric of one hub.
#[derive(Debug)]
pub struct HubMetrics {
    registry: Registry,
    links: Family<TransportLabel, Gauge>,
    answers_in_flight: Gauge,
    live_subscriptions: Gauge,
    /// 1 while connected to the backplane's NATS server, 0 while not, -1 without a backplane.
    backplane_connected: Gauge,
    /// 0 when the store failed the last readiness check, else 1.
    store_ready: Gauge,
    /// Connector links opened, by transport.
    pub link_connects: Family<TransportLabel, Counter>,
    /// Relayed queries by operation and outcome.
    pub queries: Family<QueryLabels, Counter>,
    /// Time from the app's request to the answer's first bytes, by operation (answered ones).
    pub relay_seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    /// Answer bytes relayed to apps.
    pub relayed_bytes: Counter,
    /// Answers that broke off after their status was sent, by code.
    pub broken_answers: Family<OutcomeLabel, Counter>,
    /// Grant checks by outcome.
    pub grant_checks: Family<OutcomeLabel, Counter>,
    /// How long a grant check took (token verification and the store read).
    pub grant_check_seconds: Histogram,
    /// Store reads on the request path, by operation.
    pub store_seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    /// Revocations this hub was told of, by kind.
    pub revocations: Family<KindLabel, Counter>,
    /// Answers in flight cut because their access ended.
    pub answers_cut: Counter,
    /// Token endpoint requests by grant type and outcome.
    pub oauth_grants: Family<GrantLabels, Counter>,
    /// Requests refused by a rate limit.
    pub rate_limited: Family<LimitLabel, Counter>,
}

impl Default for HubMetrics {
    fn default() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("uplink_hub"),
            links: Family::default(),
            answers_in_flight: Gauge::default(),
            live_subscriptions: Gauge::default(),
            backplane_connected: Gauge::default(),
            store_ready: Gauge::default(),
            link_connects: Family::default(),
            queries: Family::default(),
            relay_seconds: Family::new_with_constructor(latency_histogram),
            relayed_bytes: Counter::default(),
            broken_answers: Family::default(),
            grant_checks: Family::default(),
            grant_check_seconds: latency_histogram(),
            store_seconds: Family::new_with_constructor(latency_histogram),
            revocations: Family::default(),
            answers_cut: Counter::default(),
            oauth_grants: Family::default(),
            rate_limited: Family::default(),
        };
        // The store was opened before the hub was built; a readiness check says otherwise.
        metrics.store_ready.set(1);
        let registry = &mut metrics.registry;
        registry.register("links", "Connector links open now", metrics.links.clone());
        registry.register(
            "live_subscriptions",
            "Connector subscriptions (live values and events) open on this hub's links now, each shared by every app stream on it, on any replica",
            metrics.live_subscriptions.clone(),
        );
        registry.register(
            "backplane_connected",
            "1 while this replica is connected to the backplane (NATS), 0 while it reconnects, -1 for a hub without one",
            metrics.backplane_connected.clone(),
        );
        registry.register(
            "store_ready",
            "0 when the store failed the last readiness check (/readyz), else 1",
            metrics.store_ready.clone(),
        );
        registry.register(
            "answers_in_flight",
            "Answers being relayed to apps now",
            metrics.answers_in_flight.clone(),
        );
        registry.register(
            "link_connects",
            "Connector links opened",
            metrics.link_connects.clone(),
        );
        registry.register(
            "queries",
            "Queries from apps, by operation and outcome",
            metrics.queries.clone(),
        );
        registry.register(
            "relay_seconds",
            "Time from an app's request to the first bytes of its answer",
            metrics.relay_seconds.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Answer bytes relayed to apps",
            metrics.relayed_bytes.clone(),
        );
        registry.register(
            "broken_answers",
            "Answers that broke off after their status was sent (the app's body is cut), by code",
            metrics.broken_answers.clone(),
        );
        registry.register(
            "grant_checks",
            "Checks of an app's token and grant, by outcome",
            metrics.grant_checks.clone(),
        );
        registry.register(
            "grant_check_seconds",
            "Time a grant check took",
            metrics.grant_check_seconds.clone(),
        );
        registry.register(
            "store_seconds",
            "Time the store took to answer a read on the request path, by operation",
            metrics.store_seconds.clone(),
        );
        registry.register(
            "revocations",
            "Revocations announced to this hub, by kind",
            metrics.revocations.clone(),
        );
        registry.register(
            "answers_cut",
            "Answers in flight cut because their access ended",
            metrics.answers_cut.clone(),
        );
        registry.register(
            "oauth_grants",
            "Token endpoint requests, by grant type and outcome",
            metrics.oauth_grants.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            metrics.rate_limited.clone(),
        );
        metrics
    }
}

impl HubMetrics {
    /// Counts a finished query.
    pub fn query(&self, operation: &str, outcome: &str) {
        self.queries
            .get_or_create(&QueryLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts an answer that broke off after its status.
    pub fn broken_answer(&self, code: &str) {
        self.broken_answers
            .get_or_create(&OutcomeLabel {
                outcome: code.to_owned(),
            })
            .inc();
    }

    /// Records a grant check.
    pub fn grant_check(&self, outcome: &str, took: Duration) {
        self.grant_checks
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.grant_check_seconds.observe(took.as_secs_f64());
    }

    /// Records how long a store read took.
    pub fn store_read(&self, operation: &str, took: Duration) {
        self.store_seconds
            .get_or_create(&OperationLabel {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a rate-limit refusal.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&LimitLabel {
                limit: limit.to_owned(),
            })
            .inc();
    }

    /// Records the outcome of a readiness check's store read.
    pub fn store_ready(&self, answered: bool) {
        self.store_ready.set(i64::from(answered));
    }

    /// The Prometheus text exposition of `hub`'s metrics, gauges read now.
    pub fn scrape(&self, hub: &Hub) -> String {
        self.backplane_connected
            .set(hub.backplane_connected().map_or(-1, i64::from));
        self.links.clear();
        for link in hub.links.links() {
            let transport = link.transport.map_or("unknown", transport_label).to_owned();
            self.links
                .get_or_create(&TransportLabel { transport })
                .inc();
        }
        self.answers_in_flight
            .set(i64::try_from(hub.answers.running()).unwrap_or(i64::MAX));
        let (subscriptions, _) = hub.links.live_subscriptions();
        self.live_subscriptions
            .set(i64::try_from(subscriptions).unwrap_or(i64::MAX));
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(%error, "cannot encode the metrics");
        }
        text
    }
}

/// The label of a transport.
pub fn transport_label(transport: Transport) -> &'static str {
    match transport {
        Transport::WebSockets => "websockets",
        Transport::ServerSentEvents => "server_sent_events",
        Transport::LongPolling => "long_polling",
    }
}

/// The media type of [`HubMetrics::scrape`]'s text: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_words_and_the_scrape_has_every_family() {
        let metrics = HubMetrics::default();
        metrics.query("snapshot", "ok");
        metrics.grant_check("no_grant", Duration::from_millis(2));
        metrics.rate_limited("token_address");
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics.registry).unwrap();
        assert!(
            text.contains("uplink_hub_queries_total{operation=\"snapshot\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("uplink_hub_grant_check_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("uplink_hub_rate_limited_total{limit=\"token_address\"} 1"));
        assert_eq!(
            transport_label(Transport::ServerSentEvents),
            "server_sent_events"
        );
    }
}
