//! [`Store`](super::Store) on PostgreSQL: one pool shared by every replica's requests, the
//! schema brought up to date by `migrations-postgres/` (kept in step with SQLite's) when the
//! store opens.
//!
//! SQLite serialises every write on its single writer connection; several hub processes on one
//! PostgreSQL do not share a connection, so each guarantee that rested on that is kept by the
//! database itself:
//! - single use (codes, refresh tokens, device approvals, authorization requests): a conditional
//!   `UPDATE … WHERE used_at IS NULL RETURNING` — under READ COMMITTED a racing `UPDATE` waits
//!   for the row, re-reads it after the winner commits and matches nothing;
//! - read-then-write decisions (a device poll, a connector claim, a debit, a refund, an operator
//!   entry): the row they decide on is locked first (`SELECT … FOR UPDATE`, or the user's
//!   `accounts` row for every movement of money), so a second decision waits for the first;
//! - one live grant or billing grant per (user, app, source): the partial unique indexes, with
//!   `INSERT … ON CONFLICT` as the one statement that creates or updates;
//! - the change feed in commit order: every transaction that appends to it takes one
//!   transaction-scoped advisory lock (`record_changes`) as its last step, so sequence numbers
//!   are handed out in commit order and a follower reading `seq > cursor` never misses one
//!   that commits late. It is taken last so that no transaction holding it waits for a row.
//!   The same transaction sends a NOTIFY, which PostgreSQL delivers on commit only: followers
//!   LISTEN and read the feed at once, and poll while their listening connection is down.
//!
//! One file per room implements that room's trait, as on SQLite. Rows are read by column name.

mod accounts;
mod apps;
mod audit;
mod authorization;
mod changes;
mod connectors;
mod database_url;
mod device_flow;
mod families;
mod grants;
mod login_sessions;
mod stream_leases;
mod token_keys;
mod users;
mod writes;

use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use database_url::DatabaseUrl;

use crate::error::{HubError, Result};
use crate::revocation::Revocation;

/// The PostgreSQL store: a pool of connections to one database, which any number of hub
/// processes may share.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The connection LISTENing for the change feed's NOTIFY (`changes.rs`), made on first
    /// wait and again after it drops.
    listener: std::sync::Arc<tokio::sync::Mutex<changes::ChangeListener>>,
}

/// How often a PostgreSQL store looks for changes committed by other processes while it has
/// no LISTEN connection (it is woken by NOTIFY otherwise; `changes.rs`).
pub const PG_CHANGE_POLL: Duration = Duration::from_millis(100);

/// The advisory lock every change-feed writer takes (an arbitrary constant: "uplink" in ASCII).
const CHANGE_FEED_LOCK: i64 = 0x75_70_6c_69_6e_6b;

/// Appends `changes` to the change feed, inside the caller's transaction, as its last step:
/// the advisory lock held until commit makes the feed's order the commit order.
async fn record_changes(
    conn: &mut sqlx::PgConnection,
    changes: &[Revocation],
    now: i64,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHANGE_FEED_LOCK)
        .execute(&mut *conn)
        .await?;
    for change in changes {
        let json = serde_json::to_string(change)
            .map_err(|e| HubError::Invalid(format!("change not recorded: {e}")))?;
        sqlx::query("INSERT INTO changes (at, change) VALUES ($1, $2)")
            .bind(now)
            .bind(json)
            .execute(&mut *conn)
            .await?;
    }
    // Delivered to the listening replicas when (and only if) the transaction commits.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(changes::CHANGES_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The change announcing each revoked family.
fn family_changes(families: &[String]) -> impl Iterator<Item = Revocation> + '_ {
    families.iter().map(|family_id| Revocation::TokenFamily {
        family_id: family_id.clone(),
    })
}

/// Revokes one token family; a family already revoked keeps its first reason and time.
/// Returns whether this call revoked it; the caller records the change (`record_changes`).
async fn revoke_family_on(
    conn: &mut sqlx::PgConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Whether a family can still obtain tokens: not revoked, with an unspent, unexpired refresh
/// token.
async fn family_is_valid(conn: &mut sqlx::PgConnection, id: &str, now: i64) -> Result<bool> {
    let valid: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM token_families f WHERE f.id = $1 AND f.revoked_at IS NULL \
         AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id AND r.used_at IS NULL AND r.expires_at > $2))",
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

impl PostgresStore {
    /// Connects to the database `url` names and brings its schema up to date (every replica
    /// may do so at start: sqlx's migrator takes an advisory lock, so they take turns).
    ///
    /// # Errors
    /// The database cannot be reached or refuses the role ([`HubError::StoreOpen`], its
    /// message free of the URL's password), or a migration fails.
    pub async fn open(url: &DatabaseUrl) -> Result<Self> {
        Self::open_with(url, 16).await
    }

    /// As [`PostgresStore::open`], with at most `max_connections` connections.
    ///
    /// # Errors
    /// As [`PostgresStore::open`].
    pub async fn open_with(url: &DatabaseUrl, max_connections: u32) -> Result<Self> {
        let options: PgConnectOptions = url
            .expose()
            .parse()
            .map_err(|e: sqlx::Error| url.opening_error(&e))?;
        let options = options.application_name("uplink-hub");
        // One connection first, so that a refusal is reported as itself (the pool would retry
        // until its timeout and report only that).
        sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|e| url.opening_error(&e))?
            .close()
            .await
            .map_err(|e| url.opening_error(&e))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Short: a request waiting for a connection while the database is away must be answered
            // 503 soon, not hang (a pool this size is rarely exhausted by requests of milliseconds).
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await
            .map_err(|e| url.opening_error(&e))?;
        sqlx::migrate!("./migrations-postgres").run(&pool).await?;
        Ok(Self {
            pool,
            listener: std::sync::Arc::default(),
        })
    }

    /// The pool is closed.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A fresh database on the test run's own PostgreSQL server (started once per test binary by
/// `uplink_testkit::postgres`), for the conformance suite and the tests below; the server's
/// folder goes with it when the test binary exits.
#[cfg(test)]
pub(crate) async fn open_for_test() -> ((), PostgresStore) {
    let url = uplink_testkit::postgres::shared().fresh_database();
    let url: DatabaseUrl = url.parse().expect("the test server's URL");
    ((), PostgresStore::open_with(&url, 8).await.unwrap())
}

/// What only the PostgreSQL store does: its migrations, its ledger guards, seeing other
/// processes' commits, and races between two processes (two pools on one database).
#[cfg(test)]
mod tests;
