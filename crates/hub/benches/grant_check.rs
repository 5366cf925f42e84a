//! Benchmarks of the hub's hot paths, each beside a baseline measured in the same process:
//! - access-token verification vs a bare PASETO v4.local decrypt;
//! - the full grant check (token + store lookup) with 100 000 grants in the store vs the
//!   store lookup alone;
//! - `/oauth/token` refresh-grant throughput over real HTTPS on loopback (Argon2 excluded:
//!   no password is involved).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::keys::{Generate as _, SymmetricKey};
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{Local, local};
use uplink_hub::NewApp;
use uplink_hub::secret::Secret;
use uplink_hub::store::{CodeGrant, CodeRedemption, Store};
use uplink_hub::token::TokenSubject;
use uplink_measure::{Runs, Timing, compare, describe};
use uplink_testkit::TestHub;

const GRANTS_PER_APP: usize = 1_000;
const APPS: usize = 100;

fn main() {
    uplink_tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn open_family(store: &dyn Store, user: &str, app: &str) -> String {
    let code = Secret::generate();
    let now = uplink_hub::clock::now();
    store
        .create_code(
            &code.digest(),
            &CodeGrant {
                app_id: app.into(),
                user_id: user.into(),
                redirect_uri: "https://app.example/cb".into(),
                scopes: vec!["data.read".into()],
                code_challenge: "x".into(),
                nonce: None,
                auth_time: now,
                created_at: now,
                expires_at: now + 600,
            },
        )
        .await
        .unwrap();
    match store.redeem_code(&code.digest(), now).await.unwrap() {
        CodeRedemption::Fresh { family_id, .. } => family_id,
        other => panic!("fresh code expected, got {other:?}"),
    }
}

async fn run() {
    // The test kit's hub on a runtime of two threads, as the server process would run it.
    let plenty = std::num::NonZeroU32::new(1_000_000).unwrap();
    let kit = TestHub::start_on(2, |config| {
        config.rate_limits.token_per_address = plenty;
        config.rate_limits.token_per_app = plenty;
    })
    .await;
    let (hub, store) = (kit.hub.clone(), kit.hub.store.clone());

    // 100 000 grants: 100 apps × 1 000 data sources for one user.
    let seeding = Instant::now();
    let user = kit.user.clone();
    let sources: Vec<String> = (0..GRANTS_PER_APP)
        .map(|i| format!("src_{i:020}"))
        .collect();
    for a in 0..APPS {
        store
            .grant(
                &user.id,
                &format!("app{a}"),
                &sources,
                &["data.read".into()],
                1,
            )
            .await
            .unwrap();
    }
    println!(
        "seeded {} grants in {:.1} s",
        APPS * GRANTS_PER_APP,
        seeding.elapsed().as_secs_f64()
    );
    let family = open_family(store.as_ref(), &user.id, "app42").await;
    let subject = TokenSubject {
        user_id: user.id.clone(),
        app_id: "app42".into(),
        scopes: vec!["data.read".into()],
        family_id: family.clone(),
    };
    let token = hub.keys.issue(&subject, 600).unwrap();

    // 1. Token verification vs a bare decrypt of a token of the same size.
    let runs = Runs::new(200, 5_000);
    let ours = runs.time(|| hub.keys.verify(token.expose()).unwrap());
    let bare_key = SymmetricKey::<V4>::generate().unwrap();
    let mut claims = Claims::new().unwrap();
    claims.subject(&subject.user_id).unwrap();
    claims.add_additional("client_id", "app42").unwrap();
    claims.add_additional("scope", "data.read").unwrap();
    claims.add_additional("fam", family.as_str()).unwrap();
    let bare_token = local::encrypt(&bare_key, &claims, None, None).unwrap();
    let rules = ClaimsValidationRules::new();
    let bare = runs.time(|| {
        let untrusted = UntrustedToken::<Local, V4>::try_from(bare_token.as_str()).unwrap();
        local::decrypt(&bare_key, &untrusted, &rules, None, None).unwrap()
    });
    println!(
        "{}",
        compare(
            "token verification",
            &ours,
            "bare pasetors v4.local decrypt",
            &bare
        )
    );

    // 2. The full grant check vs the store lookup alone, over sources spread through the table.
    let source_of = |round: usize| &sources[(round * 7919) % GRANTS_PER_APP];
    // Warm-up: the first use of each grant records "last used" (a write); later uses within a
    // minute only read, which is the steady state measured here.
    for round in 0..GRANTS_PER_APP {
        hub.check_access(token.expose(), source_of(round), "data.read")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut full = Vec::new();
    for round in 0..4_000usize {
        let start = Instant::now();
        hub.check_access(token.expose(), source_of(round), "data.read")
            .await
            .unwrap();
        full.push(start.elapsed());
    }
    let mut lookup = Vec::new();
    for round in 0..4_000usize {
        let start = Instant::now();
        store
            .active_grant(&user.id, "app42", source_of(round), &family)
            .await
            .unwrap()
            .unwrap();
        lookup.push(start.elapsed());
    }
    let (full, lookup) = (Timing::from_samples(full), Timing::from_samples(lookup));
    println!(
        "{}",
        compare(
            "full grant check, 100k grants",
            &full,
            "store lookup alone",
            &lookup
        )
    );
    // The floor: one trivial statement through a sqlx SQLite pool on the same file.
    let raw = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(kit.data_dir().join("hub.db"))
                .read_only(true),
        )
        .await
        .unwrap();
    let mut floor = Vec::new();
    for _ in 0..4_000 {
        let start = Instant::now();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(one, 1);
        floor.push(start.elapsed());
    }
    let floor = Timing::from_samples(floor);
    let mut same_query = Vec::new();
    for round in 0..4_000usize {
        let start = Instant::now();
        let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT g.id, g.scopes, g.last_used_at FROM grants g \
             WHERE g.user_id = ? AND g.app_id = ? AND g.source_id = ? AND g.revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = ? AND f.revoked_at IS NULL)",
        )
        .bind(&user.id)
        .bind("app42")
        .bind(source_of(round))
        .bind(&family)
        .fetch_optional(&raw)
        .await
        .unwrap();
        assert!(row.is_some());
        same_query.push(start.elapsed());
    }
    let same_query = Timing::from_samples(same_query);
    println!(
        "{}",
        compare(
            "store lookup alone",
            &lookup,
            "the same query on a bare sqlx pool",
            &same_query
        )
    );
    println!(
        "{}",
        compare(
            "store lookup alone",
            &lookup,
            "sqlx round trip of SELECT 1",
            &floor
        )
    );

    // 3. /oauth/token refresh-grant throughput over HTTPS.
    hub.add_app(NewApp {
        name: "Bench".into(),
        client_id: Some("bench-app".into()),
        confidential: false,
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        scopes: vec!["data.read".into()],
    })
    .await
    .unwrap();
    let client = kit.client.clone();
    let token_url = kit.url("/oauth/token");
    let chain_of = |refresh: String| {
        let (client, url) = (client.clone(), token_url.clone());
        async move {
            let mut refresh = refresh;
            let mut samples = Vec::new();
            for _ in 0..300 {
                let start = Instant::now();
                let r = client
                    .post(&url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", "bench-app"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let body: serde_json::Value = r.json().await.unwrap();
                refresh = body["refresh_token"].as_str().unwrap().to_owned();
                samples.push(start.elapsed());
            }
            samples
        }
    };
    let mut first_tokens = Vec::new();
    for _ in 0..8 {
        let family = open_family(store.as_ref(), &user.id, "bench-app").await;
        let refresh = Secret::generate();
        let now = uplink_hub::clock::now();
        store
            .create_refresh_token(&refresh.digest(), &family, now, now + 3600)
            .await
            .unwrap();
        first_tokens.push(refresh.expose().to_owned());
    }
    let sequential = Timing::from_samples(chain_of(first_tokens.pop().unwrap()).await);
    println!(
        "{}",
        describe(
            "/oauth/token refresh, one client in sequence",
            &sequential,
            Some(1)
        )
    );
    let start = Instant::now();
    let chains: Vec<_> = first_tokens
        .into_iter()
        .map(|t| tokio::spawn(chain_of(t)))
        .collect();
    let mut total = 0u64;
    for c in chains {
        total += c.await.unwrap().len() as u64;
    }
    let elapsed = start.elapsed();
    let concurrent = Timing::from_samples(vec![elapsed]);
    println!(
        "{}",
        describe(
            &format!("/oauth/token refresh, 7 clients at once ({total} rotations)"),
            &concurrent,
            Some(total)
        )
    );
    drop(kit);
}
