//! Health for load balancers and service managers: `GET /healthz` says the process serves
//! requests; `GET /readyz` says this replica can do its work — its store answers and its
//! access-token keys are loaded — so a balancer sends it traffic only then.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::hub::Hub;

/// How long the store may take to answer the readiness read before the replica is reported
/// not ready: well under a balancer's usual check interval.
pub const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The body of both endpoints.
#[derive(Debug, Serialize)]
struct HealthBody {
    /// `alive`, `ready` or `not_ready`.
    status: &'static str,
    /// Each check by name, `ok` or what is wrong (never a secret).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// Whether a failure of this check makes the replica not ready (the backplane's does not).
    required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// `GET /healthz`: 200 while the process serves HTTP at all.
pub async fn healthz() -> Response {
    Json(HealthBody {
        status: "alive",
        checks: Vec::new(),
    })
    .into_response()
}

/// `GET /readyz`: 200 when the store answers within [`STORE_CHECK_TIMEOUT`] and the token keys
/// are loaded, else 503 naming the failed check.
pub async fn readyz(State(hub): State<Arc<Hub>>) -> Response {
    let store = match tokio::time::timeout(STORE_CHECK_TIMEOUT, hub.store.token_keys()).await {
        // The keys may live in a key file rather than the store: the read only proves the
        // store answers.
        Ok(Ok(_)) => None,
        Ok(Err(err)) => {
            tracing::warn!(code = err.code(), "readiness: the store did not answer");
            Some(format!("the store failed: {}", err.code()))
        }
        Err(_) => Some(format!(
            "the store did not answer within {} s",
            STORE_CHECK_TIMEOUT.as_secs()
        )),
    };
    let keys = if hub.keys.current_key_id().is_empty() {
        Some("no access-token key is loaded".to_owned())
    } else {
        None
    };
    hub.metrics.store_ready(store.is_none());
    let mut checks = vec![
        Check {
            name: "store",
            ok: store.is_none(),
            required: true,
            problem: store,
        },
        Check {
            name: "token_keys",
            ok: keys.is_none(),
            required: true,
            problem: keys,
        },
    ];
    if let Some(connected) = hub.backplane_connected() {
        checks.push(Check {
            name: "backplane",
            ok: connected,
            required: false,
            problem: (!connected).then(|| {
                "not connected to NATS (reconnecting): queries for links held by other replicas \
                 answer 503 connector_offline"
                    .to_owned()
            }),
        });
    }
    let ready = checks.iter().all(|c| c.ok || !c.required);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthBody {
        status: if ready { "ready" } else { "not_ready" },
        checks,
    };
    (status, Json(body)).into_response()
}
