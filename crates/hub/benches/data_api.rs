//! What the app data API adds to each request before it is relayed, beside the grant check it
//! cannot avoid, measured in one process:
//! - a raw-query request through the hub's full router (token, grant, data source, parameters,
//!   time resolution, validation, relay lookup) for a connector that is not linked, so it ends
//!   at the relay with 503 — everything the hub does for a query except the connector's work;
//! - the grant check alone (token verification + store lookup).
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;
use uplink_hub::password::Passwords;
use uplink_hub::secret::Secret;
use uplink_hub::store::{CodeGrant, CodeRedemption, SqliteStore, prelude::*};
use uplink_hub::token::TokenSubject;
use uplink_hub::{Hub, HubConfig, NewApp};
use uplink_measure::{Timing, compare, describe};

const ROUNDS: usize = 4_000;

fn main() {
    uplink_tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let hub = Arc::new(
        Hub::new(
            store.clone(),
            HubConfig::new("https://127.0.0.1:8443"),
            Passwords::with_cost(1, 64, 1),
        )
        .await
        .unwrap(),
    );
    let user = hub.add_user("bench", "long enough".into()).await.unwrap();
    hub.add_app(NewApp {
        name: "Bench".into(),
        client_id: Some("bench-app".into()),
        confidential: false,
        redirect_uris: vec!["https://app.example/cb".into()],
        scopes: vec!["data.read".into()],
    })
    .await
    .unwrap();
    let connector = hub.add_connector("bench", "Site").await.unwrap();
    let source = hub
        .add_source(&connector.connector.id, "line-1", "")
        .await
        .unwrap();
    store
        .grant(
            &user.id,
            "bench-app",
            std::slice::from_ref(&source.id),
            &["data.read".into()],
            uplink_hub::clock::now(),
        )
        .await
        .unwrap();
    let code = Secret::generate();
    let now = uplink_hub::clock::now();
    store
        .create_code(
            &code.digest(),
            &CodeGrant {
                app_id: "bench-app".into(),
                user_id: user.id.clone(),
                redirect_uri: "https://app.example/cb".into(),
                scopes: vec!["data.read".into()],
                code_challenge: "x".into(),
                created_at: now,
                expires_at: now + 600,
            },
        )
        .await
        .unwrap();
    let CodeRedemption::Fresh { family_id, .. } =
        store.redeem_code(&code.digest(), now).await.unwrap()
    else {
        panic!("fresh code expected")
    };
    let token = hub
        .keys
        .issue(
            &TokenSubject {
                user_id: user.id.clone(),
                app_id: "bench-app".into(),
                scopes: vec!["data.read".into()],
                family_id,
            },
            600,
        )
        .unwrap();
    let router = uplink_hub::router(hub.clone());
    let uri = format!(
        "/api/v1/sources/{}/raw?tag=FIC101.PV&start=*-8h&end=*&maxCount=1000",
        source.id
    );
    let request = || {
        Request::get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .body(Body::empty())
            .unwrap()
    };

    // Warm-up, which also records the grant's first use (a write) so the rounds only read.
    for _ in 0..500 {
        let response = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut api = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let response = router.clone().oneshot(request()).await.unwrap();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        api.push(start.elapsed());
        assert!(body.starts_with(b"{\"code\":\"connector_offline\""));
    }
    let mut gate = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        hub.check_access(token.expose(), &source.id, "data.read")
            .await
            .unwrap();
        gate.push(start.elapsed());
    }
    let mut lookup = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        store.source(&source.id).await.unwrap().unwrap();
        lookup.push(start.elapsed());
    }
    let (api, gate) = (Timing::from_samples(api), Timing::from_samples(gate));
    let lookup = Timing::from_samples(lookup);
    println!(
        "{}",
        describe("data API request up to the relay", &api, Some(1))
    );
    // The request reads the store three times: the grant, the data source, and (offline only)
    // the connector's name for the 503 message. One read, for scale:
    println!(
        "{}",
        describe("one data source read from the store", &lookup, None)
    );
    println!(
        "{}",
        compare(
            "data API request up to the relay",
            &api,
            "grant check alone",
            &gate
        )
    );
}
