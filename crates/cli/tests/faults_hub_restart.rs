//! A real `uplink hub serve` process killed with SIGKILL under load and started again: its
//! SQLite store (WAL) keeps every user, app, connector, data source and grant, passes
//! `PRAGMA integrity_check`, and keeps every connector added by an administrator right up to
//! the kill; the connector (a real `uplink connector` process) links again and the app's next
//! requests, with the token it already held, are answered.

mod common;
#[path = "../src/demo/consent.rs"]
#[allow(dead_code)]
mod consent;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{
    add_connector, add_user, connector_status, field, free_port, hub_ca, register_connector,
    run_ok, serve_hub, start_connector, uplink, wait_until,
};
use uplink_hub::store::{SqliteStore, prelude::*};

const PASSWORD: &str = "correct horse battery staple";
const APP: &str = "kill-test-app";
const REDIRECT: &str = "http://127.0.0.1/callback";

/// Everything the store must keep, with what changes by use alone (last use, availability)
/// left out.
async fn records(db: &Path) -> String {
    let store = SqliteStore::open(db).await.expect("the store opens");
    let users = store.users().await.unwrap();
    let apps: Vec<_> = store
        .apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.client_id,
                a.name,
                a.secret_digest,
                a.redirect_uris,
                a.scopes,
            )
        })
        .collect();
    let connectors = store.connectors(None).await.unwrap();
    let sources: Vec<_> = store
        .sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.connector_id, s.name, s.kind))
        .collect();
    let mut grants = Vec::new();
    for user in &users {
        for g in store.grants_of(&user.id).await.unwrap() {
            grants.push((g.app_id, g.source_id, g.scopes, g.granted_at));
        }
    }
    store.close().await;
    format!("{users:?}\n{apps:?}\n{connectors:?}\n{sources:?}\n{grants:?}")
}

async fn integrity(db: &Path) -> String {
    use sqlx::ConnectOptions as _;
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_under_load_keeps_every_record_and_serves_again() {
    uplink_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());
    let db = hub_dir.join("hub.db");

    // The administrator's records.
    add_user(hub, "ada", PASSWORD);
    let (connector_id, credential) = add_connector(hub, "ada", "Plant A");
    let app = run_ok(&[
        "hub",
        "app",
        "add",
        "--data-dir",
        hub,
        "--name",
        "Kill test app",
        "--client-id",
        APP,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "data.read",
    ]);
    let client_secret = field(&app, "client_secret:");

    let listen = format!("127.0.0.1:{}", free_port());
    let issuer = format!("https://{listen}");
    let mut hub_process = serve_hub(hub, &listen);
    let ca_pem = std::fs::read_to_string(hub_ca(hub)).unwrap();

    // A real connector process, registered by the administrator.
    register_connector(
        data,
        &issuer,
        &connector_id,
        &credential,
        &dir.path().join("credential"),
        &hub_ca(hub),
    );
    let _connector = start_connector(data);
    wait_until("the connector linked", Duration::from_secs(60), || {
        connector_status(data)["link"] == "connected"
    });
    let source_id = connector_status(data)["sources"][0]["hubId"]
        .as_str()
        .expect("the hub knows the source")
        .to_owned();

    // The owner consents; the app gets its token.
    let client = uplink_testkit::client_builder(&ca_pem)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tokens = consent::ConsentFlow {
        client: &client,
        issuer: &issuer,
        username: "ada",
        password: PASSWORD,
        client_id: APP,
        client_secret: &client_secret,
        redirect_uri: REDIRECT,
        scope: "data.read",
        source_ids: std::slice::from_ref(&source_id),
    }
    .run()
    .await
    .unwrap();
    let token: Arc<str> = tokens.access_token.into();
    let url: Arc<str> = format!("{issuer}/api/v1/sources/{source_id}/raw?tag=sim.ramp.1&start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z").into();
    let first = client.get(&*url).bearer_auth(&*token).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let expected = first.bytes().await.unwrap();

    // Load: four app callers and an administrator adding connectors, one after another.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (client, token, url, stop, answered) = (
            client.clone(),
            token.clone(),
            url.clone(),
            stop.clone(),
            answered.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(response) = client.get(&*url).bearer_auth(&*token).send().await
                    && response.status() == 200
                {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let admin = {
        let (hub, stop) = (hub.to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut added = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let output = uplink()
                    .args([
                        "hub",
                        "connector",
                        "add",
                        "--data-dir",
                        &hub,
                        "--owner",
                        "ada",
                        "--name",
                        &format!("Plant {n}"),
                    ])
                    .output()
                    .unwrap();
                if output.status.success() {
                    added.push(field(&output, "connector_id:"));
                }
            }
            added
        })
    };
    wait_until("load on the hub", Duration::from_secs(30), || {
        answered.load(Ordering::SeqCst) >= 50
    });
    // The records as they were before the kill (the administrator's additions are checked
    // one by one below).
    let before = records(&db).await;

    let reconnects = connector_status(data)["reconnects"].as_u64().unwrap_or(0);
    hub_process.0.kill().expect("SIGKILL the hub");
    let killed = hub_process.0.wait().unwrap();
    assert!(!killed.success(), "{killed:?}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let added = admin.join().unwrap();
    for caller in callers {
        tokio::time::timeout(Duration::from_secs(60), caller)
            .await
            .expect("every caller stops")
            .unwrap();
    }

    // The store as the kill left it.
    assert_eq!(integrity(&db).await, "ok");
    let after = records(&db).await;
    let kept_before: Vec<&str> = before.lines().collect();
    let kept_after: Vec<&str> = after.lines().collect();
    for (i, what) in ["users", "apps", "connectors", "sources", "grants"]
        .iter()
        .enumerate()
    {
        if *what == "connectors" {
            continue; // grew with the administrator's additions: checked below
        }
        assert_eq!(kept_before[i], kept_after[i], "the {what} changed");
    }
    let store = SqliteStore::open(&db).await.unwrap();
    for id in &added {
        assert!(
            store.connector(id).await.unwrap().is_some(),
            "connector {id}, added before the kill, was lost"
        );
    }
    assert!(
        store.connector(&connector_id).await.unwrap().is_some(),
        "the linked connector was kept"
    );
    store.close().await;

    // Started again: the connector links again and the app's token still works.
    let _hub_again = serve_hub(hub, &listen);
    let relinked = wait_until(
        "the connector linked again",
        Duration::from_secs(60),
        || {
            // Linked on a new link: the status file may still show the one the kill ended.
            let status = connector_status(data);
            status["link"] == "connected" && status["reconnects"].as_u64() > Some(reconnects)
        },
    );
    let again = client.get(&*url).bearer_auth(&*token).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), expected, "the same answer");
    assert_eq!(integrity(&db).await, "ok");
    eprintln!(
        "hub killed after {} answered requests while {} connectors were added; every record kept; connector linked again {relinked:?} after the restart",
        answered.load(Ordering::SeqCst),
        added.len()
    );
}
