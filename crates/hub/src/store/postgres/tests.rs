//! Tests of what only the PostgreSQL store does. The two-handle tests open two stores (two
//! pools) on one database: two hub replicas, as far as the database can tell.

use std::time::Duration;

use super::*;
use crate::store::prelude::*;
use crate::store::{
    App, CodeGrant, CodeRedemption, DebitOutcome, DebitRequest, DeviceAuthorization, DevicePoll,
    Rotation, TxKind, User,
};

async fn two_replicas() -> (PostgresStore, PostgresStore) {
    let url: DatabaseUrl = uplink_testkit::postgres::shared()
        .fresh_database()
        .parse()
        .unwrap();
    let a = PostgresStore::open_with(&url, 8).await.unwrap();
    let b = PostgresStore::open_with(&url, 8).await.unwrap();
    (a, b)
}

async fn ada_with_app(store: &PostgresStore) -> User {
    let ada = store.create_user("ada", "h").await.unwrap();
    store
        .create_app(&App {
            client_id: "app1".into(),
            name: "Dashboard".into(),
            confidential: false,
            secret_digest: None,
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: vec!["data.read".into()],
            created_at: 1,
        })
        .await
        .unwrap();
    ada
}

fn code_for(user: &User) -> CodeGrant {
    CodeGrant {
        app_id: "app1".into(),
        user_id: user.id.clone(),
        redirect_uri: "https://app.example/cb".into(),
        scopes: vec!["data.read".into()],
        code_challenge: "c".into(),
        nonce: None,
        auth_time: 1,
        created_at: 1,
        expires_at: 100,
    }
}

#[tokio::test]
async fn two_replicas_racing_to_redeem_one_code_yield_exactly_one_family() {
    let (a, b) = two_replicas().await;
    let ada = ada_with_app(&a).await;
    for round in 0..10_u8 {
        let digest = [round; 32];
        a.create_code(&digest, &code_for(&ada)).await.unwrap();
        let (x, y) = tokio::join!(a.redeem_code(&digest, 5), b.redeem_code(&digest, 5));
        let outcomes = [x.unwrap(), y.unwrap()];
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, CodeRedemption::Fresh { .. }))
            .count();
        assert_eq!(fresh, 1, "round {round}: exactly one wins: {outcomes:?}");
        assert!(
            outcomes.contains(&CodeRedemption::Replayed),
            "round {round}: the other is a replay: {outcomes:?}"
        );
    }
}

#[tokio::test]
async fn two_replicas_racing_to_rotate_one_refresh_token_rotate_it_once() {
    let (a, b) = two_replicas().await;
    let ada = ada_with_app(&a).await;
    a.create_code(b"code", &code_for(&ada)).await.unwrap();
    let CodeRedemption::Fresh { family_id, .. } = a.redeem_code(b"code", 5).await.unwrap() else {
        panic!("a fresh code redeems");
    };
    a.create_refresh_token(b"r0", &family_id, 5, 1_000)
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        a.rotate_refresh_token(b"r0", b"ra", 6, 1_000),
        b.rotate_refresh_token(b"r0", b"rb", 6, 1_000)
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, Rotation::Rotated(_)))
        .count();
    assert_eq!(rotated, 1, "one rotation wins: {outcomes:?}");
    assert!(outcomes.contains(&Rotation::Reused), "{outcomes:?}");
    assert!(
        b.family(&family_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some(),
        "a token presented twice stops its family"
    );
}

#[tokio::test]
async fn two_replicas_polling_one_approved_device_code_redeem_it_once() {
    let (a, b) = two_replicas().await;
    let ada = ada_with_app(&a).await;
    let request = DeviceAuthorization {
        app_id: "app1".into(),
        scopes: vec!["connector".into()],
        created_at: 10,
        expires_at: 1_000,
        interval_secs: 5,
        requested_from: "198.51.100.7".into(),
    };
    a.create_device_authorization(b"dev", b"user", &request)
        .await
        .unwrap();
    assert!(
        b.decide_device_authorization(b"user", Some(&ada.id), 20)
            .await
            .unwrap()
    );
    let (x, y) = tokio::join!(
        a.poll_device_authorization(b"dev", "app1", 30),
        b.poll_device_authorization(b"dev", "app1", 30)
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    let approved = outcomes
        .iter()
        .filter(|o| matches!(o, DevicePoll::Approved(_)))
        .count();
    assert_eq!(approved, 1, "one family per approval: {outcomes:?}");
    assert!(outcomes.contains(&DevicePoll::Invalid), "{outcomes:?}");
}

#[tokio::test]
async fn debits_racing_on_two_replicas_keep_the_limit_and_the_balance() {
    let (a, b) = two_replicas().await;
    let ada = ada_with_app(&a).await;
    a.create_code(b"code", &code_for(&ada)).await.unwrap();
    let CodeRedemption::Fresh { family_id, .. } = a.redeem_code(b"code", 5).await.unwrap() else {
        panic!("a fresh code redeems");
    };
    a.operator_entry(&ada.id, TxKind::Credit, 1_000, "top-up", 5)
        .await
        .unwrap();
    a.grant_billing(&ada.id, "app1", Some(700), 100)
        .await
        .unwrap();
    let requests: Vec<DebitRequest> = (0..40)
        .map(|i| DebitRequest {
            user_id: ada.id.clone(),
            app_id: "app1".into(),
            family_id: family_id.clone(),
            amount: 100,
            description: "a report".into(),
            // Every key twice, on each replica once: each debits at most once.
            idempotency_key: Some(format!("k{}", i / 2)),
            now: 110,
            period_start: 100,
        })
        .collect();
    let outcomes = futures::future::join_all(requests.iter().enumerate().map(|(i, r)| {
        let store = if i % 2 == 0 { &a } else { &b };
        store.debit(r)
    }))
    .await;
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(DebitOutcome::Done(_))))
        .count();
    assert_eq!(done, 7, "the limit holds across replicas");
    assert_eq!(b.balance(&ada.id).await.unwrap(), 300);
    assert_eq!(
        a.transactions(&ada.id, Some("app1")).await.unwrap().len(),
        7,
        "one ledger row per debit done"
    );
}

#[tokio::test]
async fn a_follower_reading_while_two_replicas_write_misses_no_change() {
    let (a, b) = two_replicas().await;
    let ada = ada_with_app(&a).await;
    let follower = a.clone();
    let start = follower.change_cursor().await.unwrap();
    let write = |store: PostgresStore, tag: &'static str| {
        let user = ada.id.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                let source = format!("src_{tag}_{i}");
                store
                    .grant(&user, "app1", &[source], &["data.read".into()], 7)
                    .await
                    .unwrap();
            }
        })
    };
    let writers = [write(a.clone(), "a"), write(b.clone(), "b")];
    let mut cursor = start;
    let mut seen = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let batch = follower.changes_after(cursor).await.unwrap();
        seen += batch.changes.len();
        cursor = batch.cursor;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let rest = follower.changes_after(cursor).await.unwrap();
    seen += rest.changes.len();
    assert_eq!(
        seen, 50,
        "a cursor that moves past a change committed late would have skipped it"
    );
}

#[tokio::test]
async fn another_replica_sees_a_committed_change_by_polling() {
    let (a, b) = two_replicas().await;
    let ada = a.create_user("ada", "h").await.unwrap();
    let start = b.change_cursor().await.unwrap();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.wait_for_changes(start).await }
    });
    a.revoke(&ada.id, "app1", None, 5).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the other replica notices within a generous bound")
        .unwrap()
        .unwrap();
    assert_eq!(b.changes_after(start).await.unwrap().changes.len(), 1);
}

/// The backend process ids of connections LISTENing for the change feed.
async fn listening_backends(store: &PostgresStore) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_follower_listens_for_commits_and_polls_while_its_listening_connection_is_cut() {
    let (a, b) = two_replicas().await;
    let ada = a.create_user("ada", "h").await.unwrap();
    let start = b.change_cursor().await.unwrap();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.wait_for_changes(start).await }
    });
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let pids = listening_backends(&a).await;
            if !pids.is_empty() {
                break pids;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the follower LISTENs on a connection of its own");
    // The listening connection is cut: the follower must still see the next commit.
    for pid in listening {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&a.pool)
            .await
            .unwrap();
    }
    a.revoke(&ada.id, "app1", None, 5).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the follower notices without its listening connection")
        .unwrap()
        .unwrap();
    assert_eq!(b.changes_after(start).await.unwrap().changes.len(), 1);
    // And it listens again for the next one.
    let cursor = b.change_cursor().await.unwrap();
    let again = tokio::spawn({
        let b = b.clone();
        async move { b.wait_for_changes(cursor).await }
    });
    a.append_change(&Revocation::TokenKeysRotated {
        key_id: "k4.lid.next".into(),
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(30), again)
        .await
        .expect("the follower notices the next commit")
        .unwrap()
        .unwrap();
    // A follower makes its listening connection while it waits for the feed: keep one waiting
    // (nothing more is committed) until the new connection shows.
    let cursor = b.change_cursor().await.unwrap();
    let following = tokio::spawn({
        let b = b.clone();
        async move { b.wait_for_changes(cursor).await }
    });
    tokio::time::timeout(Duration::from_secs(30), async {
        while listening_backends(&a).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a new listening connection is made");
    following.abort();
}

#[tokio::test]
async fn every_migration_is_applied_once_and_a_reopened_store_keeps_its_rows() {
    let url: DatabaseUrl = uplink_testkit::postgres::shared()
        .fresh_database()
        .parse()
        .unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    let ada = store.create_user("ada", "h").await.unwrap();
    store.close().await;
    let store = PostgresStore::open(&url).await.unwrap();
    assert_eq!(store.user(&ada.id).await.unwrap(), Some(ada));
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let shipped = sqlx::migrate!("./migrations-postgres").iter().count();
    assert_eq!(usize::try_from(applied).unwrap(), shipped);
    let sqlite = sqlx::migrate!("./migrations");
    let names = |m: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    };
    assert_eq!(
        names(&sqlx::migrate!("./migrations-postgres")),
        names(&sqlite),
        "the PostgreSQL migrations keep step with SQLite's: same numbers, same names"
    );
}

#[tokio::test]
async fn the_ledger_refuses_changes_and_removals() {
    let ((), store) = open_for_test().await;
    let ada = store.create_user("ada", "h").await.unwrap();
    store
        .operator_entry(&ada.id, TxKind::Credit, 5, "top-up", 1)
        .await
        .unwrap();
    for sql in [
        "UPDATE ledger SET amount = 1000",
        "DELETE FROM ledger",
        "TRUNCATE ledger",
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let err = sqlx::query("UPDATE accounts SET balance = -1")
        .execute(&store.pool)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("check constraint"),
        "a balance never goes below zero: {err}"
    );
    assert_eq!(store.balance(&ada.id).await.unwrap(), 5);
}

#[tokio::test]
async fn a_refused_connection_names_the_database_but_never_the_password() {
    let server = uplink_testkit::postgres::shared();
    let url = format!(
        "postgres://uplink:not-the-pw-Zq81@127.0.0.1:{}/postgres?sslmode=disable",
        server.port()
    );
    let err = PostgresStore::open(&url.parse().unwrap())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(err.code(), "store_error");
    assert!(!message.contains("not-the-pw-Zq81"), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
}
