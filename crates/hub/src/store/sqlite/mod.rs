//! [`Store`](super::Store) on one SQLite file: WAL journal, one writer connection (SQLite
//! serialises writers anyway; one connection makes that explicit and avoids busy errors),
//! several readers. Writes' idempotency keys and answers and the audit trail share commits
//! (`group_commit.rs`): what arrives together is one transaction and one fsync.
//!
//! One file per room (`users.rs`, `apps.rs`, …) implements that room's trait; this file keeps
//! the pools, the migrations, the change polling's interval and the helpers several rooms share
//! (recording changes, revoking a family inside the caller's transaction). Rows are read into
//! `#[derive(sqlx::FromRow)]` structs by column name, never by position.

mod accounts;
mod apps;
mod audit;
mod authorization;
mod changes;
mod connectors;
mod device_flow;
mod families;
mod grants;
mod group_commit;
mod login_sessions;
mod stream_leases;
mod token_keys;
mod users;
mod writes;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{HubError, Result};
use crate::revocation::Revocation;

/// The SQLite store of one hub node.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Writes' keys and answers and the audit trail, committed in groups.
    commits: group_commit::GroupCommit,
}

/// How often a SQLite store looks for changes committed by other processes.
pub const CHANGE_POLL: Duration = Duration::from_millis(100);

/// Appends `change` to the change feed, inside the caller's transaction.
async fn record_change(
    conn: &mut sqlx::SqliteConnection,
    change: &Revocation,
    now: i64,
) -> Result<()> {
    let json = serde_json::to_string(change)
        .map_err(|e| HubError::Invalid(format!("change not recorded: {e}")))?;
    sqlx::query("INSERT INTO changes (at, change) VALUES (?, ?)")
        .bind(now)
        .bind(json)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a revoked family in the change feed, inside the caller's transaction.
async fn record_families(
    conn: &mut sqlx::SqliteConnection,
    families: &[String],
    now: i64,
) -> Result<()> {
    for family_id in families {
        record_change(
            &mut *conn,
            &Revocation::TokenFamily {
                family_id: family_id.clone(),
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// Revokes one token family; a family already revoked keeps its first reason and time.
/// Returns whether this call revoked it (and then records the change).
async fn revoke_family_on(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE token_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 1 {
        record_families(conn, &[id.to_owned()], now).await?;
    }
    Ok(n == 1)
}

/// Whether a family can still obtain tokens: not revoked, with an unspent, unexpired refresh
/// token.
async fn family_is_valid(conn: &mut sqlx::SqliteConnection, id: &str, now: i64) -> Result<bool> {
    let valid: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM token_families f WHERE f.id = ?1 AND f.revoked_at IS NULL \
         AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id AND r.used_at IS NULL AND r.expires_at > ?2))",
    )
    .bind(id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(valid)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let base = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No ping before each use: a local file connection does not go stale, and the ping
        // would double the cost of every grant check.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;
        let commits = group_commit::GroupCommit::new(writer.clone());
        Ok(Self {
            writer,
            reader,
            commits,
        })
    }

    /// The file's pools are closed; pending writes are flushed.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// What only the SQLite store does: its file, its migrations, and finding other processes'
/// changes by polling. What every store does is in `store/conformance.rs`, which runs
/// against this one too.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::hub::open_store(&dir.path().join("hub"))
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_change_the_hub_cannot_read_is_skipped_and_the_cursor_moves_past_it() {
        let (_dir, store) = store().await;
        let start = store.change_cursor().await.unwrap();
        // A change written by a newer hub that this one cannot read.
        sqlx::query("INSERT INTO changes (at, change) VALUES (6, '{\"kind\":\"fromTheFuture\"}')")
            .execute(&store.writer)
            .await
            .unwrap();
        let user = store.create_user("ada", "h").await.unwrap();
        store
            .revoke_family("fam_x", "test", 7)
            .await
            .expect("revoking an unknown family is not an error");
        store.revoke(&user.id, "app1", None, 7).await.unwrap();
        let batch = store.changes_after(start).await.unwrap();
        assert_eq!(
            batch.changes,
            vec![Revocation::Grant {
                user_id: user.id.clone(),
                app_id: "app1".into(),
                source_id: None,
            }]
        );
        assert_eq!(batch.cursor, store.change_cursor().await.unwrap());
        assert_eq!(batch.cursor, start + 2, "past the unreadable one too");
    }

    #[tokio::test]
    async fn another_process_sees_a_committed_change_by_polling_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("hub");
        let writer = crate::hub::open_store(&data_dir).await.unwrap();
        // A second store on the same file stands for another hub process.
        let follower = SqliteStore::open(&data_dir.join(crate::data_dir::STORE_FILE))
            .await
            .unwrap();
        let start = follower.change_cursor().await.unwrap();
        let waiting = tokio::spawn({
            let follower = follower.clone();
            async move { follower.wait_for_changes(start).await }
        });
        let user = writer.create_user("ada", "h").await.unwrap();
        writer.revoke(&user.id, "app1", None, 5).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .expect("the follower notices within a generous bound")
            .unwrap()
            .unwrap();
        assert_eq!(
            follower.changes_after(start).await.unwrap().changes.len(),
            1
        );
    }

    #[tokio::test]
    async fn a_reopened_store_keeps_its_rows_and_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("hub");
        let store = crate::hub::open_store(&data_dir).await.unwrap();
        let ada = store.create_user("ada", "h").await.unwrap();
        store.close().await;
        let store = crate::hub::open_store(&data_dir).await.unwrap();
        assert_eq!(store.user(&ada.id).await.unwrap(), Some(ada));
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        let shipped = sqlx::migrate!("./migrations").iter().count();
        assert_eq!(
            usize::try_from(applied).unwrap(),
            shipped,
            "every migration, once"
        );
    }

    #[tokio::test]
    async fn the_ledger_refuses_changes_and_removals() {
        let (_dir, store) = store().await;
        let ada = store.create_user("ada", "h").await.unwrap();
        store
            .operator_entry(&ada.id, crate::store::TxKind::Credit, 5, "top-up", 1)
            .await
            .unwrap();
        for sql in ["UPDATE ledger SET amount = 1000", "DELETE FROM ledger"] {
            let err = sqlx::query(sql).execute(&store.writer).await.unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        let err = sqlx::query("UPDATE accounts SET balance = -1")
            .execute(&store.writer)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("CHECK"),
            "a balance never goes below zero: {err}"
        );
    }

    #[tokio::test]
    async fn the_reader_pool_cannot_write() {
        let (_dir, store) = store().await;
        let err = sqlx::query("DELETE FROM users")
            .execute(&store.reader)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("readonly"),
            "a read connection refuses writes: {err}"
        );
    }

    /// Writes that share one commit are each kept once committed, and one that fails costs
    /// the others nothing: the group is rolled back and each runs alone.
    #[tokio::test]
    async fn writes_committed_together_survive_a_reopen_and_one_failure_spares_the_rest() {
        use crate::store::{AuditEvent, WriteClaim, WriteKey};
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("hub");
        let store = crate::hub::open_store(&data_dir).await.unwrap();
        // The file refuses one audit row, as a full disk or a broken row would.
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON audit_log WHEN NEW.detail = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        let key = |i: usize| WriteKey {
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
            key: format!("k{i}"),
        };
        let event = |detail: &str| AuditEvent {
            at: 1,
            event: "write".into(),
            user_id: None,
            app_id: None,
            source_id: None,
            detail: detail.into(),
        };
        let claims = futures::future::join_all((0..20).map(|i| {
            let key = key(i);
            let store = &store;
            async move { store.claim_write(&key, "d", 1, 0).await.unwrap() }
        }))
        .await;
        assert!(claims.iter().all(|c| *c == WriteClaim::Claimed));
        let answers = futures::future::join_all((0..20).map(|i| {
            let key = key(i);
            let store = &store;
            async move {
                let detail = if i == 7 {
                    "bad".to_owned()
                } else {
                    format!("ok {i}")
                };
                store.answer_write(&key, 200, "{}", &[event(&detail)]).await
            }
        }))
        .await;
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(answer.is_err(), i == 7, "write {i}: {answer:?}");
        }
        store.close().await;
        let store = crate::hub::open_store(&data_dir).await.unwrap();
        for i in 0..20 {
            let claim = store.claim_write(&key(i), "d", 2, 0).await.unwrap();
            if i == 7 {
                assert_eq!(claim, WriteClaim::InProgress, "its answer was not kept");
            } else {
                assert_eq!(
                    claim,
                    WriteClaim::Answered {
                        status: 200,
                        answer: "{}".into()
                    },
                    "write {i}"
                );
            }
        }
        assert_eq!(store.audit_events(100).await.unwrap().len(), 19);
    }
}
