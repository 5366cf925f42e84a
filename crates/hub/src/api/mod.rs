//! The app data API under `/api/v1/`: what apps call with their access tokens to list the data
//! sources they may read and to query them through the connector that serves each one.
//!
//! Every request goes through the same gate before anything reaches a connector: the bearer
//! token is verified, the grant (user, app, data source) is read from the store — on every
//! request, so a revoke stops the very next one — and the query is validated, with relative
//! times resolved by the hub's clock. Only then is it relayed ([`ConnectorRouter::relay`]) and
//! the connector's answer streamed to the app as it arrives. `docs/api.md` is the guide for app
//! developers; [`openapi`] serves the same contract as an OpenAPI 3.1 document.
//!
//! Mount with `Router::merge`: the paths are absolute.
//!
//! ```no_run
//! # fn mount(hub: std::sync::Arc<uplink_hub::Hub>, relay: std::sync::Arc<dyn uplink_hub::relay::ConnectorRouter>) {
//! let app: axum::Router = axum::Router::new()
//!     .merge(uplink_hub::api::routes(relay))
//!     .with_state(hub);
//! # }
//! ```

mod answer;
mod code;
mod error;
pub mod event_stream;
pub mod openapi;
mod params;
mod parse;
mod resolve;
pub mod sources;
pub mod subscribe;
pub mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, RawPathParams, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures::StreamExt as _;
use uplink_link::{QueryOperation, RelayedQuery};
use uplink_model::Query;

pub use code::ApiErrorCode;

pub use self::error::ApiError;
use self::params::{FORMAT, Params};
use crate::access::{Access, Denied, bearer_token};
use crate::hub::Hub;
use crate::in_flight::Holder;
use crate::relay::{ConnectorRouter, RelayStream};
use crate::scopes;
use crate::secret::public_id;
use crate::store::DataSource;

/// The query a `POST …/query` body asks for, checked and with every time absolute as of `now`:
/// exactly what the data API relays for that body (before the data source's capabilities are
/// compared). Public (with the `testing` feature) so that the query fuzz target drives the same
/// code as the route.
///
/// # Errors
/// The same field-naming [`ApiError`] the route answers with.
#[cfg(any(test, feature = "testing"))]
pub fn checked_query(body: &[u8], now: chrono::DateTime<chrono::Utc>) -> Result<Query, ApiError> {
    resolve::resolve(parse::from_body(body)?, now)
}

/// Every route of the data API, as (method, path); the OpenAPI document lists exactly these
/// (checked by the tests).
#[cfg(any(test, feature = "testing"))]
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/sources"),
    ("get", "/api/v1/sources/{source}"),
    ("get", "/api/v1/sources/{source}/tags"),
    ("get", "/api/v1/sources/{source}/snapshot"),
    ("get", "/api/v1/sources/{source}/raw"),
    ("get", "/api/v1/sources/{source}/plot"),
    ("get", "/api/v1/sources/{source}/values-at"),
    ("get", "/api/v1/sources/{source}/processed"),
    ("post", "/api/v1/sources/{source}/query"),
    ("get", "/api/v1/sources/{source}/subscribe"),
    ("put", "/api/v1/sources/{source}/values"),
    ("get", "/api/v1/sources/{source}/events"),
    ("get", "/api/v1/sources/{source}/events/subscribe"),
    ("get", "/api/v1/openapi.json"),
];

/// The app data API's routes; queries go to connectors through `relay`.
pub fn routes(relay: Arc<dyn ConnectorRouter>) -> Router<Arc<Hub>> {
    Router::new()
        .route("/api/v1/sources", get(list_sources))
        .route("/api/v1/sources/{source}", get(describe_source))
        .route("/api/v1/sources/{source}/tags", get(search))
        .route("/api/v1/sources/{source}/snapshot", get(snapshot))
        .route("/api/v1/sources/{source}/raw", get(raw))
        .route("/api/v1/sources/{source}/plot", get(plot))
        .route("/api/v1/sources/{source}/values-at", get(values_at))
        .route("/api/v1/sources/{source}/processed", get(processed))
        .route("/api/v1/sources/{source}/query", post(query))
        .route("/api/v1/sources/{source}/subscribe", get(live_values))
        .route("/api/v1/sources/{source}/values", put(write_values))
        .route("/api/v1/sources/{source}/events", get(events))
        .route("/api/v1/sources/{source}/events/subscribe", get(events_stream))
        .layer(Extension(relay))
        .route("/api/v1/openapi.json", get(openapi::serve))
}

/// The scope a kind of query needs: finding tags is `tags.read`, reading values `data.read`.
fn scope_for(operation: QueryOperation) -> &'static str {
    match operation {
        QueryOperation::Search => scopes::TAGS_READ,
        QueryOperation::Events => scopes::EVENTS_READ,
        _ => scopes::DATA_READ,
    }
}

async fn list_sources(call: Call) -> Response {
    let result = async {
        let token = call.token()?;
        let sources = sources::readable(&call.hub, call.relay.as_ref(), token, None).await?;
        Ok::<_, ApiError>(Json(sources::SourceList { sources }).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn describe_source(call: Call) -> Response {
    let result = async {
        let token = call.token()?;
        let id = call.source_id();
        let found = sources::readable(&call.hub, call.relay.as_ref(), token, Some(id)).await?;
        match found.into_iter().next() {
            Some(source) => Ok(Json(source).into_response()),
            None => Err(refusal_for(&call.hub, id).await),
        }
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn search(call: Call) -> Response {
    call.get(QueryOperation::Search).await
}

async fn snapshot(call: Call) -> Response {
    call.get(QueryOperation::Snapshot).await
}

async fn raw(call: Call) -> Response {
    call.get(QueryOperation::Raw).await
}

async fn plot(call: Call) -> Response {
    call.get(QueryOperation::Plot).await
}

async fn values_at(call: Call) -> Response {
    call.get(QueryOperation::AtTimes).await
}

async fn processed(call: Call) -> Response {
    call.get(QueryOperation::Processed).await
}

async fn events(call: Call) -> Response {
    call.get(QueryOperation::Events).await
}

async fn events_stream(call: Call) -> Response {
    call.subscribe_events()
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn query(call: Call, body: Bytes) -> Response {
    // Parsed once: the scope checked is the scope of the query that runs.
    let parsed = parse::from_body(&body);
    let scope = parsed.as_ref().map_or(scopes::DATA_READ, |query| {
        scope_for(uplink_link::operation_of(query))
    });
    call.run(scope, &[], move |_| parsed)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn live_values(call: Call) -> Response {
    call.subscribe()
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn write_values(call: Call, body: Bytes) -> Response {
    call.write(&body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What every data API request starts from.
struct Call {
    hub: Arc<Hub>,
    relay: Arc<dyn ConnectorRouter>,
    headers: HeaderMap,
    query: Option<String>,
    source: Option<String>,
}

impl FromRequestParts<Arc<Hub>> for Call {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        let Extension(relay) =
            Extension::<Arc<dyn ConnectorRouter>>::from_request_parts(parts, hub)
                .await
                .map_err(IntoResponse::into_response)?;
        let RawQuery(query) = RawQuery::from_request_parts(parts, hub)
            .await
            .map_err(IntoResponse::into_response)?;
        let source = RawPathParams::from_request_parts(parts, hub)
            .await
            .ok()
            .and_then(|params| {
                params
                    .iter()
                    .find(|(name, _)| *name == "source")
                    .map(|(_, value)| value.to_owned())
            });
        Ok(Self {
            hub: State::<Arc<Hub>>::from_request_parts(parts, hub)
                .await
                .map_err(IntoResponse::into_response)?
                .0,
            relay,
            headers: parts.headers.clone(),
            query,
            source,
        })
    }
}

impl Call {
    fn token(&self) -> Result<&str, ApiError> {
        Ok(bearer_token(&self.headers).ok_or(Denied::MissingToken)?)
    }

    fn source_id(&self) -> &str {
        self.source.as_deref().unwrap_or_default()
    }

    /// The token may use `scope` on the path's data source, which exists and is offered.
    async fn authorize(&self, scope: &'static str) -> Result<(Access, DataSource), ApiError> {
        authorize(&self.hub, self.token()?, self.source_id(), scope).await
    }

    async fn get(self, operation: QueryOperation) -> Response {
        self.run(
            scope_for(operation),
            parse::known_params(operation),
            |params| parse::from_params(operation, params),
        )
        .await
        .map_err(|error| parse::in_param_terms(operation, error))
        .unwrap_or_else(IntoResponse::into_response)
    }

    /// Live values as `text/event-stream` ([`open_live`]).
    async fn subscribe(self) -> Result<Response, ApiError> {
        let token = self.token()?;
        let params = Params::parse(self.query.as_deref(), &["tags", "tag", "interval"])?;
        let wanted = LiveRequest {
            tags: subscribe::tags(params.list("tags").chain(params.all("tag")))?,
            interval: subscribe::interval(params.one("interval")?)?,
            last_event_id: self
                .headers
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let stream = open_live(
            &self.hub,
            self.relay.as_ref(),
            token,
            self.source_id(),
            wanted,
            subscribe::Encoding::EventStream,
        )
        .await?;
        Ok(event_stream_response(stream))
    }

    /// A write: token and grant (`data.write` on this very source), the body, the
    /// idempotency key, then the relay; each value's result goes into the audit trail. A
    /// write the connector never tried frees its key, so a retry may apply it.
    async fn write(self, body: &[u8]) -> Result<Response, Response> {
        let (access, source) = self
            .authorize(scopes::DATA_WRITE)
            .await
            .map_err(IntoResponse::into_response)?;
        let items = write::parse(body).map_err(IntoResponse::into_response)?;
        let (app_id, user_id) = (access.claims.app_id.clone(), access.claims.user_id.clone());
        let key = write::claim(
            &self.hub,
            &self.headers,
            &app_id,
            &user_id,
            &write::digest(&source.id, &items),
        )
        .await?;
        let request = uplink_link::WriteRequest {
            write_id: String::new(),
            app_id: app_id.clone(),
            user_id: user_id.clone(),
            source: source.name.clone(),
            values: items.clone(),
        };
        let relayed = self.relay.write(&source.connector_id, request).await;
        let refusal = match relayed {
            Ok(uplink_link::WriteAnswer {
                error: Some(failure),
                ..
            }) => crate::relay::RelayError::Connector {
                code: failure.code,
                message: failure.message,
            },
            Ok(answer) => {
                let audit = write::audit_events(&user_id, &app_id, &source.id, &items, &answer);
                let body = write::answer_body(&answer);
                // With a key, the answer and its audit rows are one commit.
                if let Some(key) = &key {
                    self.hub
                        .store
                        .answer_write(key, 200, &body, &audit)
                        .await
                        .map_err(|e| ApiError::Store(e).into_response())?;
                } else {
                    for event in &audit {
                        if let Err(e) = self.hub.store.audit(event).await {
                            tracing::error!(error = %e, event = %event.event, "audit event not recorded");
                        }
                    }
                }
                return Ok(write::json_response(axum::http::StatusCode::OK, body));
            }
            Err(error) => error,
        };
        tracing::info!(app = %app_id, source = %source.id, code = refusal.code(), %refusal, "write refused");
        self.hub
            .audit(
                "write_refused",
                Some(&user_id),
                Some(&app_id),
                Some(&source.id),
                format!("values={} code={}", items.len(), refusal.code()),
            )
            .await;
        if let Some(key) = &key {
            // Only a write whose fate is unknown (sent, then no answer) keeps its key, answered
            // with that error: a retry must not apply it a second time.
            let unknown = matches!(
                refusal,
                crate::relay::RelayError::Timeout { .. } | crate::relay::RelayError::LinkLost
            );
            let stored = if unknown {
                let response_body = serde_json::json!({
                    "code": refusal.code(),
                    "message": format!("{refusal}; whether the values were applied is unknown, so this key keeps this answer"),
                })
                .to_string();
                self.hub
                    .store
                    .answer_write(key, refusal.http_status(), &response_body, &[])
                    .await
            } else {
                self.hub.store.release_write(key).await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "idempotency key not settled after a refused write");
            }
        }
        Err(ApiError::Relay(refusal).into_response())
    }

    /// Alarms and events: token and grant (`events.read`, ticked for this very source), then
    /// one connector events subscription shared per (app, source), streamed like live values
    /// under a ticket of [`crate::in_flight`], so a revoke ends it at once with
    /// `event: revoked`.
    async fn subscribe_events(self) -> Result<Response, ApiError> {
        let epoch = self.hub.answers.epoch();
        let (access, source) = self.authorize(scopes::EVENTS_READ).await?;
        Params::parse(self.query.as_deref(), &[])?;
        if source.capabilities.as_ref().is_some_and(|c| !c.events) {
            return Err(ApiError::Unsupported(format!(
                "the data source '{}' has no alarms and events",
                source.name
            )));
        }
        let mut ticket = self.hub.answers.admit(
            &self.hub,
            Holder {
                user_id: access.claims.user_id.clone(),
                app_id: access.claims.app_id.clone(),
                source_id: source.id.clone(),
                connector_id: source.connector_id.clone(),
                family_id: access.claims.family_id.clone(),
                expires_at: access.claims.expires_at,
            },
        );
        if ticket.admitted_in() != epoch {
            self.authorize(scopes::EVENTS_READ).await?;
        }
        let request = uplink_link::SubscribeRequest {
            subscription_id: String::new(),
            app_id: access.claims.app_id.clone(),
            user_id: access.claims.user_id,
            source: source.name.clone(),
            kind: uplink_link::SubscriptionKind::Events,
            tags: Vec::new(),
        };
        let handle = ticket
            .until_cut(self.relay.subscribe(&source.connector_id, request))
            .await
            .and_then(|subscribed| subscribed)
            .inspect_err(|error| {
                tracing::info!(app = %access.claims.app_id, source = %source.id, code = error.code(), %error, "events subscription refused");
            })?;
        let last_event_id = self
            .headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        tracing::debug!(app = %access.claims.app_id, source = %source.id, resume = last_event_id.is_some(), "events streaming");
        let guarded = ticket.guard(event_stream::stream(handle, last_event_id));
        Ok(event_stream_response(guarded))
    }


    /// Token, grant, validation, then relay: the order every query goes through. The answer
    /// is relayed under a ticket of [`crate::in_flight`], so it stops the moment its access
    /// is revoked or its token expires.
    async fn run(
        self,
        scope: &'static str,
        known_params: &[&str],
        build: impl FnOnce(&Params) -> Result<Query, ApiError>,
    ) -> Result<Response, ApiError> {
        let started = std::time::Instant::now();
        // Read before the grant check: a revoke announced between the check and the
        // answer's admission moves it, and the grant is then read again.
        let epoch = self.hub.answers.epoch();
        let (access, source) = self.authorize(scope).await?;
        let params = Params::parse(self.query.as_deref(), known_params)?;
        let format = answer::format(params.one(FORMAT)?, &self.headers)?;
        let query = resolve::resolve(build(&params)?, chrono::Utc::now())?;
        if let Some(capabilities) = &source.capabilities {
            resolve::check_supported(&query, capabilities, &source.name)?;
        }
        let ticket = self.hub.answers.admit(
            &self.hub,
            Holder {
                user_id: access.claims.user_id.clone(),
                app_id: access.claims.app_id.clone(),
                source_id: source.id.clone(),
                connector_id: source.connector_id.clone(),
                family_id: access.claims.family_id.clone(),
                expires_at: access.claims.expires_at,
            },
        );
        if ticket.admitted_in() != epoch {
            self.authorize(scope).await?;
        }
        let relayed = RelayedQuery {
            query_id: public_id("q"),
            app_id: access.claims.app_id,
            user_id: access.claims.user_id,
            source: source.name,
            format,
            query,
        };
        let query_id = relayed.query_id.clone();
        tracing::debug!(
            %query_id,
            app = %relayed.app_id,
            source = %source.id,
            connector = %source.connector_id,
            operation = %relayed.operation(),
            "relaying query"
        );
        let operation = relayed.operation().as_str();
        let metrics = self.hub.metrics.clone();
        let answer = ticket
            .relay(self.relay.as_ref(), &source.connector_id, relayed)
            .await
            .inspect_err(|error| {
                metrics.query(operation, error.metric_code());
                tracing::info!(%query_id, code = error.code(), %error, "query refused");
            })?;
        // A failure before the status is the query's outcome; one after it breaks an answer
        // already counted as answered.
        let status_sent = Arc::new(AtomicBool::new(false));
        let computed_by = answer.computed();
        let counted = {
            let (metrics, status_sent) = (metrics.clone(), status_sent.clone());
            RelayStream::new(
                answer
                    .inspect(move |chunk| match chunk {
                        Ok(bytes) => {
                            metrics.relayed_bytes.inc_by(bytes.len() as u64);
                        }
                        Err(error) if status_sent.load(Ordering::Relaxed) => {
                            metrics.broken_answer(error.metric_code());
                        }
                        Err(error) => metrics.query(operation, error.metric_code()),
                    })
                    .boxed(),
            )
            .computed_by(computed_by)
        };
        let response = answer::respond(format, query_id, counted).await;
        if response.is_ok() {
            status_sent.store(true, Ordering::Relaxed);
            metrics.query(operation, "ok");
            metrics
                .relay_seconds
                .get_or_create(&crate::metrics::OperationLabel {
                    operation: operation.to_owned(),
                })
                .observe(started.elapsed().as_secs_f64());
        }
        response
    }
}

/// A guarded event stream as a `text/event-stream` response; a cut becomes the final event
/// saying why.
fn event_stream_response(guarded: RelayStream) -> Response {
    let body = guarded.map(|frame| {
        Ok::<_, std::convert::Infallible>(match frame {
            Ok(bytes) => bytes,
            Err(cut) => subscribe::cut_event(&cut),
        })
    });
    let mut response = Response::new(axum::body::Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    // Proxies that buffer responses must pass events on as they come.
    headers.insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// Why a token with no readable grant on `id` is refused: the source does not exist (404)
/// or it is not granted (403).
async fn refusal_for(hub: &Hub, id: &str) -> ApiError {
    match hub.store.source(id).await {
        Ok(None) => ApiError::UnknownSource(id.to_owned()),
        Ok(Some(_)) => Denied::NoGrant.into(),
        Err(e) => e.into(),
    }
}

/// `token` may use `scope` on the data source `id`, which exists and is offered: the token,
/// then the live grant in the store, read now.
pub(crate) async fn authorize(
    hub: &Hub,
    token: &str,
    id: &str,
    scope: &'static str,
) -> Result<(Access, DataSource), ApiError> {
    // The data source is read beside the grant, not after it: one store round trip of wait.
    let (checked, source) = hub
        .check_access_beside(token, id, scope, hub.store.source(id))
        .await;
    let access = match checked {
        Ok(access) => access,
        Err(Denied::NoGrant) => return Err(refusal_for(hub, id).await),
        Err(denied) => return Err(denied.into()),
    };
    let source = source
        .ok_or_else(|| ApiError::UnknownSource(id.to_owned()))??
        .ok_or_else(|| ApiError::UnknownSource(id.to_owned()))?;
    if !source.available {
        return Err(ApiError::SourceUnavailable {
            source_name: source.name,
            connector: source.connector_name,
        });
    }
    Ok((access, source))
}

/// What an app asks of a live-values stream, its parameters checked.
#[derive(Debug, Clone)]
pub(crate) struct LiveRequest {
    /// Sorted, without repeats ([`subscribe::tags`]).
    pub tags: Vec<String>,
    /// [`subscribe::interval`].
    pub interval: std::time::Duration,
    /// The last event id the app saw, to resume after.
    pub last_event_id: Option<String>,
}

/// Opens one live-values stream for `token` on the data source `source_id`, for the event
/// stream route and the app hub alike: the token and the live grant (read now), the caps on
/// streams per sign-in and per connector, then one connector subscription shared per (app,
/// source, tags), streamed under a ticket of [`crate::in_flight`] so that a revoke, a removal
/// or the token's expiry ends it at once (the stream then yields the cut's reason).
pub(crate) async fn open_live(
    hub: &Arc<Hub>,
    relay: &dyn ConnectorRouter,
    token: &str,
    source_id: &str,
    wanted: LiveRequest,
    encoding: subscribe::Encoding,
) -> Result<RelayStream, ApiError> {
    let epoch = hub.answers.epoch();
    let (access, source) = authorize(hub, token, source_id, scopes::DATA_READ).await?;
    if source.capabilities.as_ref().is_some_and(|c| !c.subscribe) {
        return Err(ApiError::Unsupported(format!(
            "the data source '{}' does not push live values",
            source.name
        )));
    }
    let permit = hub
        .live_streams
        .admit(
            &access.claims.family_id,
            &source.connector_id,
            hub.limits.live_streams(),
        )
        .await
        .map_err(|refused| match refused {
            crate::live_streams::Refused::Cap(cap) => {
                tracing::info!(app = %access.claims.app_id, source = %source.id, %cap, "live-value stream refused");
                ApiError::TooManySubscriptions(cap.to_string())
            }
            crate::live_streams::Refused::Store(e) => ApiError::Store(e),
        })?;
    let mut ticket = hub.answers.admit(
        hub,
        Holder {
            user_id: access.claims.user_id.clone(),
            app_id: access.claims.app_id.clone(),
            source_id: source.id.clone(),
            connector_id: source.connector_id.clone(),
            family_id: access.claims.family_id.clone(),
            expires_at: access.claims.expires_at,
        },
    );
    if ticket.admitted_in() != epoch {
        authorize(hub, token, source_id, scopes::DATA_READ).await?;
    }
    let request = uplink_link::SubscribeRequest {
        subscription_id: String::new(),
        app_id: access.claims.app_id.clone(),
        user_id: access.claims.user_id,
        source: source.name.clone(),
        kind: uplink_link::SubscriptionKind::Values,
        tags: wanted.tags,
    };
    let handle = ticket
        .until_cut(relay.subscribe(&source.connector_id, request))
        .await
        .and_then(|subscribed| subscribed)
        .inspect_err(|error| {
            tracing::info!(app = %access.claims.app_id, source = %source.id, code = error.code(), %error, "subscription refused");
        })?;
    tracing::debug!(app = %access.claims.app_id, source = %source.id, resume = wanted.last_event_id.is_some(), ?encoding, "live values streaming");
    let guarded = ticket.guard(subscribe::stream(
        handle,
        wanted.interval,
        wanted.last_event_id,
        encoding,
    ));
    // The stream's place under the caps is held as long as the stream.
    Ok(RelayStream::new(
        guarded
            .map(move |frame| {
                let _held = &permit;
                frame
            })
            .boxed(),
    ))
}

#[cfg(test)]
mod tests;
