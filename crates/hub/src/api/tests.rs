//! The data API end to end inside the hub: a real store on a SQLite file, real tokens, real
//! grants and revokes; only the connector side is a stand-in (`FakeRelay`), scripted per test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt as _;
use uplink_link::{RelayedQuery, ResultFormat};
use uplink_model::{Capabilities, DataSourceDescriptor, Function, Query, TimeExpr};

use super::*;
use crate::HubConfig;
use crate::password::Passwords;
use crate::relay::{RelayError, RelayStream};
use crate::secret::Secret;
use crate::store::{CodeGrant, CodeRedemption, User};
use crate::token::TokenSubject;

const APP: &str = "dashboard";

/// What the stand-in connector does with the next query.
enum Script {
    /// Answers with these items, in order.
    Items(Vec<Result<Bytes, RelayError>>),
    /// Answers with whatever the test sends on the channel, as it sends it.
    Channel(mpsc::Receiver<Result<Bytes, RelayError>>),
    /// Refuses before answering.
    Refuse(RelayError),
}

#[derive(Debug)]
struct FakeRelay {
    online: AtomicBool,
    script: Mutex<Option<Script>>,
    received: Mutex<Vec<(String, RelayedQuery)>>,
    /// The last subscription asked for, to push values into.
    live: Mutex<Option<Arc<crate::live::Live>>>,
    /// Every write relayed, in order (each applied: every value `ok`).
    writes: Mutex<Vec<uplink_link::WriteRequest>>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script")
    }
}

impl FakeRelay {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            online: AtomicBool::new(true),
            script: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            live: Mutex::new(None),
            writes: Mutex::new(Vec::new()),
        })
    }

    fn next(&self, script: Script) {
        *self.script.lock().unwrap() = Some(script);
    }

    fn received(&self) -> Vec<(String, RelayedQuery)> {
        self.received.lock().unwrap().clone()
    }
}

#[async_trait]
impl ConnectorRouter for FakeRelay {
    async fn relay(
        &self,
        connector_id: &str,
        query: RelayedQuery,
    ) -> Result<RelayStream, RelayError> {
        self.received
            .lock()
            .unwrap()
            .push((connector_id.to_owned(), query));
        let script = self.script.lock().unwrap().take();
        match script.unwrap_or(Script::Items(vec![Ok(Bytes::from_static(b"{}"))])) {
            Script::Items(items) => Ok(RelayStream::new(futures::stream::iter(items).boxed())),
            Script::Channel(rx) => Ok(RelayStream::new(tokio_stream_from(rx).boxed())),
            Script::Refuse(error) => Err(error),
        }
    }

    fn is_online(&self, _connector_id: &str) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    /// Applies every value: its old value is 1.0.
    async fn write(
        &self,
        _connector_id: &str,
        request: uplink_link::WriteRequest,
    ) -> Result<uplink_link::WriteAnswer, RelayError> {
        let results = request
            .values
            .iter()
            .map(|item| uplink_link::WriteItemResult {
                tag: item.tag.clone(),
                result: uplink_link::WriteResult::Ok,
                code: None,
                message: None,
                old_value: Some(uplink_model::TagValue::number(chrono::Utc::now(), 1.0)),
            })
            .collect();
        self.writes.lock().unwrap().push(request);
        Ok(uplink_link::WriteAnswer {
            error: None,
            results,
        })
    }

    /// A subscription whose snapshot is one value per tag.
    async fn subscribe(
        &self,
        _connector_id: &str,
        request: uplink_link::SubscribeRequest,
    ) -> Result<crate::live::LiveHandle, RelayError> {
        let live = crate::live::Live::new(request.tags.clone());
        live.apply(update(&request.tags, 1.0));
        let handle = live.join();
        *self.live.lock().unwrap() = Some(live);
        Ok(handle)
    }
}

fn update(tags: &[String], value: f64) -> uplink_link::SubscriptionUpdate {
    uplink_link::SubscriptionUpdate {
        seq: 0,
        values: tags
            .iter()
            .map(|tag| uplink_link::TagUpdate {
                tag: tag.clone(),
                value: uplink_model::TagValue::number(chrono::Utc::now(), value),
            })
            .collect(),
        events: Vec::new(),
        dropped: 0,
    }
}

/// The next frame of an event stream (within 5 s), as text; `None` once it ended.
async fn frame(body: &mut axum::body::BodyDataStream) -> Option<String> {
    tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("a frame within 5 s")
        .map(|bytes| String::from_utf8(bytes.unwrap().to_vec()).unwrap())
}

fn tokio_stream_from(
    rx: mpsc::Receiver<Result<Bytes, RelayError>>,
) -> impl futures::Stream<Item = Result<Bytes, RelayError>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

struct Fixture {
    hub: Arc<Hub>,
    relay: Arc<FakeRelay>,
    user: User,
    granted: DataSource,
    other: DataSource,
    token: String,
    _dir: tempfile::TempDir,
}

async fn open_family(hub: &Hub, user: &str, scopes: &[&str]) -> String {
    let code = Secret::generate();
    let now = crate::clock::now();
    hub.store
        .create_code(
            &code.digest(),
            &CodeGrant {
                app_id: APP.into(),
                user_id: user.into(),
                redirect_uri: "https://app.example/cb".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                code_challenge: "x".into(),
                nonce: None,
                auth_time: now,
                created_at: now,
                expires_at: now + 600,
            },
        )
        .await
        .unwrap();
    match hub.store.redeem_code(&code.digest(), now).await.unwrap() {
        CodeRedemption::Fresh { family_id, .. } => family_id,
        other => panic!("fresh code expected, got {other:?}"),
    }
}

impl Fixture {
    /// A hub with one user, one app granted `data.read` and `tags.read` on one of two data
    /// sources of one connector, and a token for that app.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::hub::open_store(&dir.path().join("hub"))
            .await
            .unwrap();
        let hub = Arc::new(
            Hub::new(
                Arc::new(store),
                HubConfig::new("https://hub.test"),
                Passwords::with_cost(1, 64, 1),
            )
            .await
            .unwrap(),
        );
        let user = hub
            .add_user("ada", "a long enough password".into())
            .await
            .unwrap();
        hub.add_app(crate::NewApp {
            name: "Energy dashboard".into(),
            client_id: Some(APP.into()),
            confidential: false,
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: vec![scopes::DATA_READ.into(), scopes::TAGS_READ.into()],
        })
        .await
        .unwrap();
        let connector = hub.add_connector("ada", "Press shop").await.unwrap();
        let granted = hub
            .add_source(&connector.connector.id, "line-1", "Press line 1")
            .await
            .unwrap();
        let other = hub
            .add_source(&connector.connector.id, "line-2", "Press line 2")
            .await
            .unwrap();
        hub.store
            .grant(
                &user.id,
                APP,
                std::slice::from_ref(&granted.id),
                &[scopes::DATA_READ.into(), scopes::TAGS_READ.into()],
                crate::clock::now(),
            )
            .await
            .unwrap();
        let token = Self::token_for(&hub, &user, &[scopes::DATA_READ, scopes::TAGS_READ]).await;
        Self {
            hub,
            relay: FakeRelay::new(),
            user,
            granted,
            other,
            token,
            _dir: dir,
        }
    }

    async fn token_for(hub: &Hub, user: &User, scopes: &[&str]) -> String {
        let family = open_family(hub, &user.id, scopes).await;
        hub.keys
            .issue(
                &TokenSubject {
                    user_id: user.id.clone(),
                    app_id: APP.into(),
                    scopes: scopes.iter().map(|s| s.to_string()).collect(),
                    family_id: family,
                },
                600,
            )
            .unwrap()
            .expose()
            .to_owned()
    }

    fn router(&self) -> axum::Router {
        routes(self.relay.clone()).with_state(self.hub.clone())
    }

    async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.router().oneshot(request).await.unwrap()
    }

    async fn get_with(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        json_of(self.send(request.body(Body::empty()).unwrap()).await).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.get_with(uri, Some(&self.token)).await
    }

    async fn post(&self, source: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(format!("/api/v1/sources/{source}/query"))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        json_of(self.send(request).await).await
    }

    fn path(&self, route: &str) -> String {
        format!("/api/v1/sources/{}/{route}", self.granted.id)
    }

    /// Announces `line-1` with these capabilities, as its connector's link would.
    async fn announce(&self, capabilities: Capabilities) {
        self.hub
            .store
            .announce_sources(
                &self.granted.connector_id,
                &[DataSourceDescriptor {
                    name: "line-1".into(),
                    kind: "simulated".into(),
                    description: "Press line 1".into(),
                    capabilities,
                }],
                &Default::default(),
                crate::clock::now(),
            )
            .await
            .unwrap();
    }
}

async fn json_of(response: axum::response::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_401_and_nothing_is_relayed() {
    let f = Fixture::new().await;
    let raw = f.path("raw?tag=T&start=*-1h");
    let (status, body) = f.get_with(&raw, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let (status, body) = f.get_with(&raw, Some("v4.local.forged")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (status, _) = f.get_with("/api/v1/sources", Some("nonsense")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = f
        .send(Request::get(&raw).body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer",
        "a 401 tells the app how to authenticate"
    );
    assert!(f.relay.received().is_empty());
}

#[tokio::test]
async fn an_ungranted_source_is_403_and_an_unknown_one_404() {
    let f = Fixture::new().await;
    let (status, body) = f
        .get(&format!("/api/v1/sources/{}/snapshot?tags=T", f.other.id))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_grant"))
    );
    let (status, body) = f.get("/api/v1/sources/src_nothing/snapshot?tags=T").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_source"))
    );
    let (status, _) = f.get(&format!("/api/v1/sources/{}", f.other.id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f.get("/api/v1/sources/src_nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(f.relay.received().is_empty());
}

#[tokio::test]
async fn a_revoke_refuses_the_very_next_request() {
    let f = Fixture::new().await;
    let snapshot = f.path("snapshot?tags=FIC101.PV");
    assert_eq!(f.get(&snapshot).await.0, StatusCode::OK);
    let (_, list) = f.get("/api/v1/sources").await;
    assert_eq!(list["sources"].as_array().unwrap().len(), 1);

    f.hub
        .revoke(&f.user.id, APP, Some(&f.granted.id))
        .await
        .unwrap();

    let (status, body) = f.get(&snapshot).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_grant"))
    );
    let (status, list) = f.get("/api/v1/sources").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["sources"], json!([]));
    assert_eq!(
        f.relay.received().len(),
        1,
        "only the request before the revoke"
    );
}

#[tokio::test]
async fn searching_tags_needs_the_tags_scope() {
    let f = Fixture::new().await;
    let values_only = Fixture::token_for(&f.hub, &f.user, &[scopes::DATA_READ]).await;
    let (status, body) = f
        .get_with(&f.path("tags?pattern=FIC*"), Some(&values_only))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    assert_eq!(
        f.get_with(&f.path("snapshot?tags=A"), Some(&values_only))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(f.get(&f.path("tags?pattern=FIC*")).await.0, StatusCode::OK);
    let Query::Search(search) = &f.relay.received()[1].1.query else {
        panic!("search expected")
    };
    assert_eq!(search.pattern, "FIC*");
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_field_before_anything_is_relayed() {
    let f = Fixture::new().await;
    let cases = [
        ("raw?tag=T&start=yesterday", "start: "),
        ("raw?tag=T&start=*-1h&end=*-8x", "end: "),
        ("raw?tag=T&start=*&end=*-1h", "start: the start time"),
        ("plot?tag=T&start=*-1h&intervals=0", "intervals: "),
        ("plot?tag=T&start=*-1h&intervals=lots", "intervals: "),
        (
            "processed?tag=T&start=*-1d&interval=1h&functions=AVG,MEDIAN",
            "functions: ",
        ),
        (
            "processed?tag=T&start=*-1d&interval=0h&functions=AVG",
            "interval: ",
        ),
        ("values-at?tag=T&time=*&time=later", "time: "),
        ("raw?tag=T&strat=*-1h", "strat: unknown parameter"),
        ("raw?tag=T&start=*-1h&format=xml", "format: "),
    ];
    for (route, expected) in cases {
        let (status, body) = f.get(&f.path(route)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(body["code"], "invalid_query", "{route}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{route} → {message}");
    }
    let source = f.granted.id.clone();
    for (body, expected) in [
        ("{\"type\":", "body: not valid JSON"),
        (
            r#"{"type":"median","tag":"T"}"#,
            "type: unknown query type 'median'",
        ),
        (
            r#"{"type":"raw","tag":"T","start":"*-1h"}"#,
            "end: required",
        ),
        (
            r#"{"type":"raw","tag":"T","start":"*-1h","end":"*","maxcount":3}"#,
            "maxcount: unknown field",
        ),
        (
            r#"{"type":"atTimes","tag":"T","times":["*","never"]}"#,
            "times[1]: ",
        ),
    ] {
        let (status, answer) = f.post(&source, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{body} → {message}");
    }
    assert!(
        f.relay.received().is_empty(),
        "nothing invalid reaches a connector"
    );
}

/// The `values-at` route takes `time=`; a time that parses but resolves out of range, or too
/// many of them, is reported under that name (it was `times[1]: …`, a field the app never
/// wrote). A `POST …/query` body keeps its own field name, `times[1]`.
#[tokio::test]
async fn values_at_range_errors_name_the_time_parameter() {
    let f = Fixture::new().await;
    let (status, body) = f
        .get(&f.path("values-at?tag=T&time=*&time=*%2B8000y"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_query");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("time: "), "{message}");
    assert!(message.contains("'*+8000y'"), "{message}");
    assert!(message.ends_with("(time= number 2)"), "{message}");

    // An error about the list as a whole (more than 100 000 times do not fit in a URL, so
    // only the mapping is checked here) is about `time` too.
    let whole = parse::in_param_terms(
        QueryOperation::AtTimes,
        ApiError::invalid("times", "the number of times must be between 1 and 100000"),
    );
    assert_eq!(
        whole.to_string(),
        "time: the number of times must be between 1 and 100000"
    );

    let (status, body) = f
        .post(
            &f.granted.id.clone(),
            r#"{"type":"atTimes","tag":"T","times":["*","*+8000y"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("times[1]: "),
        "{body}"
    );
    assert!(f.relay.received().is_empty());
}

/// A path under `/api/v1/` that no route serves answers the same `{code, message}` JSON as
/// every other API error (it was an empty 404).
#[tokio::test]
async fn unknown_api_routes_answer_json_404() {
    let f = Fixture::new().await;
    let router = crate::router::router(f.hub.clone());
    for path in [
        "/api/v1/nothing".to_owned(),
        "/api/v1/".to_owned(),
        "/api/v2/sources".to_owned(),
        format!("/api/v1/sources/{}/rawdata", f.granted.id),
    ] {
        let response = router
            .clone()
            .oneshot(Request::get(&path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{path}"
        );
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&format!("GET {path}")), "{message}");
        assert!(message.contains("/api/v1/openapi.json"), "{message}");
    }
    // Elsewhere a miss stays a plain 404, and real routes are untouched.
    let response = router
        .clone()
        .oneshot(Request::get("/nowhere").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = router
        .oneshot(Request::get("/api/v1/sources").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// The App Store Connect forms reach the API as apps write them in a URL (spaces as `%20` or
/// `+`) and are relayed resolved.
#[tokio::test]
async fn compound_relative_times_are_accepted_in_a_query_string() {
    let f = Fixture::new().await;
    for (start, end) in [
        ("WEEK%20-%2012H%2030M%2057S", "WEEK"),
        ("*+-+1+h", "*"),
        ("HOUR-1h30m", "HOUR"),
    ] {
        f.relay.next(Script::Items(vec![Ok(Bytes::from_static(
            b"{\"tag\":\"T\",\"values\":[]}",
        ))]));
        let (status, body) = f
            .get(&f.path(&format!("raw?tag=T&start={start}&end={end}")))
            .await;
        assert_eq!(status, StatusCode::OK, "{start}: {body}");
    }
    let received = f.relay.received();
    let spans: Vec<chrono::TimeDelta> = received
        .iter()
        .map(|(_, relayed)| {
            let Query::Raw(raw) = &relayed.query else {
                panic!("raw expected")
            };
            let (TimeExpr::Absolute(start), TimeExpr::Absolute(end)) = (&raw.start, &raw.end)
            else {
                panic!("times must be absolute: {raw:?}")
            };
            *end - *start
        })
        .collect();
    assert_eq!(
        spans,
        [
            chrono::TimeDelta::seconds(12 * 3600 + 30 * 60 + 57),
            chrono::TimeDelta::hours(1),
            chrono::TimeDelta::minutes(90),
        ]
    );
}

#[tokio::test]
async fn the_relayed_query_is_absolute_and_names_the_source_on_its_connector() {
    let f = Fixture::new().await;
    let before = chrono::Utc::now();
    let request = Request::get(f.path("raw?tag=FIC101.PV&start=*-8h&maxCount=5"))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header(header::ACCEPT, "application/x-ndjson")
        .body(Body::empty())
        .unwrap();
    f.relay.next(Script::Items(vec![Ok(Bytes::from_static(
        b"{\"time\":\"2026-11-25T08:00:00Z\",\"value\":1.5,\"status\":\"good\"}\n",
    ))]));
    let response = f.send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let after = chrono::Utc::now();

    let received = f.relay.received();
    let (connector, relayed) = &received[0];
    assert_eq!(connector, &f.granted.connector_id);
    assert_eq!(relayed.source, "line-1");
    assert_eq!(relayed.app_id, APP);
    assert_eq!(relayed.user_id, f.user.id);
    assert_eq!(relayed.format, ResultFormat::Ndjson);
    assert!(relayed.query_id.starts_with("q_"));
    let Query::Raw(raw) = &relayed.query else {
        panic!("raw expected")
    };
    let (TimeExpr::Absolute(start), TimeExpr::Absolute(end)) = (&raw.start, &raw.end) else {
        panic!("times must be absolute: {raw:?}")
    };
    assert!(*end >= before && *end <= after, "end is the hub's now");
    assert_eq!(*end - *start, chrono::TimeDelta::hours(8));
    assert_eq!(raw.max_count, Some(5));

    // A second query gets its own id.
    f.get(&f.path("snapshot?tags=A&format=json")).await;
    let received = f.relay.received();
    assert_ne!(received[0].1.query_id, received[1].1.query_id);
    assert_eq!(received[1].1.format, ResultFormat::Json);
}

#[tokio::test]
async fn a_post_query_of_any_type_is_relayed_as_given() {
    let f = Fixture::new().await;
    let (status, _) = f
        .post(
            &f.granted.id,
            r#"{"type":"processed","tag":"T","start":"2026-11-24T00:00:00Z","end":"2026-11-25T00:00:00Z","interval":"1h","functions":["avg","MAX","AVG"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let Query::Processed(processed) = &f.relay.received()[0].1.query else {
        panic!("processed expected")
    };
    assert_eq!(processed.functions, [Function::Avg, Function::Max]);
    assert_eq!(processed.start.to_string(), "2026-11-24T00:00:00Z");
}

#[tokio::test]
async fn connector_failures_before_the_body_keep_their_status() {
    let f = Fixture::new().await;
    let snapshot = f.path("snapshot?tags=A");
    for (error, status, code) in [
        (
            RelayError::Offline {
                connector: "Press shop".into(),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "connector_offline",
        ),
        (
            RelayError::Timeout { seconds: 30 },
            StatusCode::GATEWAY_TIMEOUT,
            "connector_timeout",
        ),
        (
            RelayError::Connector {
                code: "vetoed".into(),
                message: "blocked on site".into(),
            },
            StatusCode::FORBIDDEN,
            "vetoed",
        ),
        (
            RelayError::TooLarge { limit: 1000 },
            StatusCode::PAYLOAD_TOO_LARGE,
            "answer_too_large",
        ),
    ] {
        let message = error.to_string();
        f.relay.next(Script::Refuse(error));
        let (got, body) = f.get(&snapshot).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)));
        assert_eq!(body["message"], message);
    }
    // A failure as the first item of the answer is still a status, not a broken body.
    f.relay.next(Script::Items(vec![Err(RelayError::Connector {
        code: "unknown_tag".into(),
        message: "no tag named 'A'".into(),
    })]));
    let (status, body) = f.get(&snapshot).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_tag"))
    );
}

#[tokio::test]
async fn functions_the_source_does_not_offer_are_refused_before_relaying() {
    let f = Fixture::new().await;
    let mut capabilities = Capabilities::all_from_raw();
    capabilities.processed = vec![Function::Avg.descriptor(), Function::Min.descriptor()];
    capabilities.plot = false;
    f.announce(capabilities).await;

    let (status, body) = f
        .get(&f.path("processed?tag=T&start=*-1d&interval=1h&functions=AVG,MAX"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported"))
    );
    assert_eq!(
        body["message"],
        "functions: the data source 'line-1' does not offer MAX (it offers AVG, MIN)"
    );
    let (status, _) = f.get(&f.path("plot?tag=T&start=*-1h&intervals=10")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(f.relay.received().is_empty());
    let (status, _) = f
        .get(&f.path("processed?tag=T&start=*-1d&interval=1h&functions=AVG,MIN"))
        .await;
    assert_eq!(status, StatusCode::OK);

    // The listing shows what the source offers.
    let (_, source) = f.get(&format!("/api/v1/sources/{}", f.granted.id)).await;
    assert_eq!(source["kind"], "simulated");
    assert_eq!(source["capabilities"]["plot"], false);
    assert_eq!(source["functions"][1]["name"], "MIN");
}

#[tokio::test]
async fn the_listing_shows_only_granted_sources_with_their_connector_state() {
    let f = Fixture::new().await;
    let (status, list) = f.get("/api/v1/sources").await;
    assert_eq!(status, StatusCode::OK);
    let sources = list["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    let source = &sources[0];
    assert_eq!(source["id"], f.granted.id.as_str());
    assert_eq!(source["name"], "line-1");
    assert_eq!(source["description"], "Press line 1");
    assert_eq!(
        source["connector"],
        json!({"name": "Press shop", "online": true})
    );
    assert_eq!(source["scopes"], json!(["data.read", "tags.read"]));
    assert_eq!(source["capabilities"], Value::Null, "not announced yet");

    f.relay.online.store(false, Ordering::SeqCst);
    let (_, one) = f.get(&format!("/api/v1/sources/{}", f.granted.id)).await;
    assert_eq!(one["connector"]["online"], false);

    let narrow = Fixture::token_for(&f.hub, &f.user, &[scopes::TAGS_READ]).await;
    let (_, list) = f.get_with("/api/v1/sources", Some(&narrow)).await;
    assert_eq!(
        list["sources"][0]["scopes"],
        json!(["tags.read"]),
        "the token's scopes only"
    );
}

/// The router served over real TLS on loopback, for what only a real connection shows.
struct Served {
    base: String,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn serve(f: &Fixture) -> Served {
    uplink_tls::install_crypto_provider();
    let ca = uplink_tls::LoopbackCa::generate(&["127.0.0.1"]).unwrap();
    let config = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = f.router();
    tokio::spawn(async move {
        uplink_tls::serve(listener, config, app, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let tls =
        uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned())).unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .build()
        .unwrap();
    Served {
        base,
        client,
        _shutdown: tx,
    }
}

#[tokio::test]
async fn the_answer_streams_in_order_and_an_app_that_leaves_cancels_it() {
    let f = Fixture::new().await;
    let served = serve(&f).await;
    let (tx, rx) = mpsc::channel(1);
    f.relay.next(Script::Channel(rx));
    tx.send(Ok(Bytes::from_static(b"{\"tag\":\"T\",\"values\":[")))
        .await
        .unwrap();
    // Were the answer collected before sending, this would wait for an end that never comes.
    let mut response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        served
            .client
            .get(format!("{}{}", served.base, f.path("raw?tag=T&start=*-1h")))
            .bearer_auth(&f.token)
            .send(),
    )
    .await
    .expect("the response begins before the answer ends")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    // Each chunk reaches the app before the next exists: nothing is collected on the way.
    let mut seen = Vec::new();
    for piece in [
        "{\"time\":\"2026-11-25T08:00:00Z\",\"value\":1,\"status\":\"good\"}",
        ",",
    ] {
        seen.extend_from_slice(&response.chunk().await.unwrap().unwrap());
        tx.send(Ok(Bytes::from_static(piece.as_bytes())))
            .await
            .unwrap();
    }
    while !seen.ends_with(b",") {
        seen.extend_from_slice(&response.chunk().await.unwrap().unwrap());
    }
    assert_eq!(
        String::from_utf8(seen).unwrap(),
        "{\"tag\":\"T\",\"values\":[{\"time\":\"2026-11-25T08:00:00Z\",\"value\":1,\"status\":\"good\"},"
    );
    // The app hangs up mid-answer: the hub drops the answer stream, which is what tells the
    // relay to cancel the query on the connector.
    drop(response);
    tokio::time::timeout(std::time::Duration::from_secs(10), tx.closed())
        .await
        .expect("the answer stream is dropped when the app disconnects");
}

#[tokio::test]
async fn an_answer_that_breaks_off_cuts_the_body() {
    let f = Fixture::new().await;
    let served = serve(&f).await;
    let (tx, rx) = mpsc::channel(1);
    f.relay.next(Script::Channel(rx));
    tx.send(Ok(Bytes::from_static(b"{\"tag\":\"T\",\"values\":[")))
        .await
        .unwrap();
    let mut response = served
        .client
        .get(format!("{}{}", served.base, f.path("raw?tag=T&start=*-1h")))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the answer had begun");
    let first = response.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"{\"tag\":\"T\",\"values\":[");
    tx.send(Err(RelayError::LinkLost)).await.unwrap();
    let rest = loop {
        match response.chunk().await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(
        rest.is_err(),
        "the app must see a failed transfer, not a complete document: {rest:?}"
    );

    // Through the service directly, an answer that fails right behind its first chunk, before
    // the status went out, gets an error status instead of a cut body.
    f.relay.next(Script::Items(vec![
        Ok(Bytes::from_static(b"[")),
        Err(RelayError::LinkLost),
    ]));
    let response = f
        .send(
            Request::get(f.path("raw?tag=T&start=*-1h"))
                .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["code"], "link_lost");
}

#[tokio::test]
async fn openapi_lists_every_route_and_every_route_is_served() {
    let f = Fixture::new().await;
    let (status, doc) = f.get_with("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "served without a token");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "https://hub.test");
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["tokenUrl"],
        "https://hub.test/oauth/token"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes);

    // Every $ref points at something that exists.
    for reference in openapi::DOCUMENT.split("\"$ref\": \"#/").skip(1) {
        let pointer = &reference[..reference.find('"').unwrap()];
        assert!(
            doc.pointer(&format!("/{pointer}")).is_some(),
            "dangling $ref #/{pointer}"
        );
    }
    // Every documented route answers (401 without a token, not a routing miss).
    for (method, path) in ROUTES {
        if *path == "/api/v1/openapi.json" {
            continue;
        }
        let uri = path.replace("{source}", &f.granted.id);
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, body) = json_of(f.send(request).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("missing_token")),
            "{method} {path}"
        );
    }
}

/// Every `curl` example in docs/api.md that calls the data API is a valid request: it reaches
/// the connector (the stand-in answers) with no 400.
#[tokio::test]
async fn the_guides_curl_examples_are_valid_requests() {
    let f = Fixture::new().await;
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
        .expect("docs/api.md is readable");
    let mut tried = 0;
    for command in guide.split("curl ").skip(1) {
        // A command runs to the first line that does not end in a backslash.
        let mut text = String::new();
        for line in command.lines() {
            text.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                break;
            }
        }
        let Some(at) = text.find("\"$HUB/api/v1/") else {
            continue;
        };
        // Billing's examples run against a real hub in tests/billing.rs, the write example
        // against a real hub and connector in the `uplink` crate's connector_hub/writes.rs,
        // those of alarms and events against a real connector in connector_hub/events.rs.
        if text.contains("/api/v1/account/") || text.contains("-X PUT") || text.contains("/events") {
            continue;
        }
        let url = &text[at + "\"$HUB".len()..];
        let url = url[..url.find('"').unwrap()].replace("$SRC", &f.granted.id);
        let mut request = Request::get(&url);
        let mut body = Body::empty();
        if let Some(at) = text.find("-d '") {
            let json = &text[at + 4..];
            request = Request::post(&url).header(header::CONTENT_TYPE, "application/json");
            body = Body::from(json[..json.find('\'').unwrap()].to_owned());
        }
        if text.contains("application/x-ndjson") {
            request = request.header(header::ACCEPT, "application/x-ndjson");
        }
        let request = request
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .body(body)
            .unwrap();
        let response = f.send(request).await;
        assert_eq!(response.status(), StatusCode::OK, "curl {text}");
        tried += 1;
    }
    assert!(tried >= 10, "only {tried} examples found");
    let relayed = f.relay.received();
    assert!(
        relayed
            .iter()
            .any(|(_, q)| q.format == ResultFormat::Ndjson)
    );
}

#[tokio::test]
async fn queries_are_counted_by_operation_and_outcome_with_their_bytes() {
    let f = Fixture::new().await;
    let raw = f.path("raw?tag=T&start=*-1h");
    let get = |path: &str| {
        Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
            .body(Body::empty())
            .unwrap()
    };
    f.relay
        .next(Script::Items(vec![Ok(Bytes::from_static(b"0123456789"))]));
    let answered = f.send(get(&raw)).await;
    assert_eq!(answered.status(), StatusCode::OK);
    axum::body::to_bytes(answered.into_body(), 1 << 20)
        .await
        .unwrap();
    f.relay.next(Script::Refuse(RelayError::Offline {
        connector: "Press shop".into(),
    }));
    f.send(get(&f.path("snapshot?tags=A"))).await;
    // A code only the connector knows is not a label value of its own.
    f.relay.next(Script::Refuse(RelayError::Connector {
        code: "made_up_by_the_connector".into(),
        message: "?".into(),
    }));
    f.send(get(&f.path("snapshot?tags=A"))).await;
    // Broken after its status went out: an answered query, and a broken answer.
    f.relay.next(Script::Items(vec![
        Ok(Bytes::from(vec![b' '; 70 * 1024])),
        Err(RelayError::LinkLost),
    ]));
    let broken = f.send(get(&raw)).await;
    assert_eq!(broken.status(), StatusCode::OK);
    assert!(
        axum::body::to_bytes(broken.into_body(), 1 << 20)
            .await
            .is_err()
    );
    // Refused at the grant check, so never relayed.
    f.send(
        Request::get(raw.as_str())
            .header(header::AUTHORIZATION, "Bearer v4.local.not-a-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let scrape = f.hub.metrics.scrape(&f.hub);
    for line in [
        r#"uplink_hub_queries_total{operation="raw",outcome="ok"} 2"#,
        r#"uplink_hub_queries_total{operation="snapshot",outcome="connector_offline"} 1"#,
        r#"uplink_hub_queries_total{operation="snapshot",outcome="connector_error"} 1"#,
        r#"uplink_hub_broken_answers_total{outcome="link_lost"} 1"#,
        r#"uplink_hub_relay_seconds_count{operation="raw"} 2"#,
        r#"uplink_hub_grant_checks_total{outcome="invalid_token"} 1"#,
        r#"uplink_hub_store_seconds_count{operation="active_grant"}"#,
        &format!("uplink_hub_relayed_bytes_total {}", 10 + 70 * 1024),
    ] {
        assert!(scrape.contains(line), "{line} missing from\n{scrape}");
    }
    // Every query's grant was checked (some twice, when a revoke could have raced it).
    let checked_ok: u64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix(r#"uplink_hub_grant_checks_total{outcome="ok"} "#))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(checked_ok >= 4, "{scrape}");
    assert!(!scrape.contains("made_up"), "{scrape}");
    for id in [&f.user.id, &f.granted.id, &f.granted.connector_id] {
        assert!(!scrape.contains(id.as_str()), "no ids in labels: {scrape}");
    }
}

fn subscribe_request(f: &Fixture, query: &str) -> Request<Body> {
    Request::get(f.path(&format!("subscribe?{query}")))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn live_values_stream_a_snapshot_then_changes_then_a_final_event() {
    let f = Fixture::new().await;
    let response = f
        .send(subscribe_request(&f, "tags=B,A,B&interval=0s"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let mut body = response.into_body().into_data_stream();
    let snapshot = frame(&mut body).await.unwrap();
    assert!(snapshot.starts_with("event: snapshot\nid: "), "{snapshot}");
    assert!(snapshot.contains("\"tag\":\"A\"") && snapshot.contains("\"tag\":\"B\""));
    let live = f.relay.live.lock().unwrap().clone().unwrap();
    assert_eq!(live.tags(), ["A", "B"], "sorted, without repeats");
    live.apply(update(&["A".to_owned()], 2.0));
    let values = frame(&mut body).await.unwrap();
    assert!(values.starts_with("event: values\nid: "), "{values}");
    assert!(values.contains("\"value\":2.0") && !values.contains("\"B\""));
    live.end(crate::live::LiveEnd::Blocked("blocked on site".into()));
    let last = frame(&mut body).await.unwrap();
    assert!(last.starts_with("event: blocked\n"), "{last}");
    assert!(last.contains("\"code\":\"vetoed\""));
    assert!(frame(&mut body).await.is_none(), "the stream ends after it");
}

#[tokio::test]
async fn a_revoke_ends_a_live_stream_with_a_revoked_event() {
    let f = Fixture::new().await;
    let response = f.send(subscribe_request(&f, "tags=A")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    assert!(frame(&mut body).await.unwrap().starts_with("event: snapshot"));
    f.hub
        .revoke(&f.user.id, APP, Some(&f.granted.id))
        .await
        .unwrap();
    let last = frame(&mut body).await.unwrap();
    assert!(last.starts_with("event: revoked\n"), "{last}");
    assert!(last.contains("\"code\":\"no_grant\""));
    assert!(frame(&mut body).await.is_none());
    // The stream's share of the subscription was let go.
    let live = f.relay.live.lock().unwrap().clone().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while live.subscribers() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn subscribe_checks_its_parameters() {
    let f = Fixture::new().await;
    for (query, field) in [
        ("interval=1s", "tags"),
        ("tags=A&interval=2h", "interval"),
        ("tags=A&interval=soon", "interval"),
        ("tags=A&intervl=1s", "intervl"),
    ] {
        let response = f.send(subscribe_request(&f, query)).await;
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["code"], "invalid_query", "{query}");
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{query}: {body}"
        );
    }
    let (status, _) = f
        .get_with(&f.path("subscribe?tags=A"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[path = "write_tests.rs"]
mod writes;
