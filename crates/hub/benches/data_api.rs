//! What the app data API adds to each request before it is relayed, beside the grant check it
//! cannot avoid, measured in one process:
//! - a raw-query request through the hub's full router (token, grant, data source, parameters,
//!   time resolution, validation, relay lookup) for a connector that is not linked, so it ends
//!   at the relay with 503 — everything the hub does for a query except the connector's work;
//! - the grant check alone (token verification + store lookup).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;
use uplink_measure::{Timing, compare, describe};
use uplink_testkit::{APP, TestHub};

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
    // The test kit's hub (its store and keys; the router is driven in-process here), Ada's
    // connector with one data source, and the dashboard app's token for it.
    let kit = TestHub::start_on(2, |_| {}).await;
    let (hub, store) = (kit.hub.clone(), kit.hub.store.clone());
    let source = hub.add_source(kit.plant_id(), "line-1", "").await.unwrap();
    let token = kit
        .mint_app_token(&kit.user.id, APP, std::slice::from_ref(&source.id), 600)
        .await;
    let router = uplink_hub::router(hub.clone());
    let uri = format!(
        "/api/v1/sources/{}/raw?tag=FIC101.PV&start=*-8h&end=*&maxCount=1000",
        source.id
    );
    let request = || {
        Request::get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
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
        hub.check_access(&token, &source.id, "data.read")
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
