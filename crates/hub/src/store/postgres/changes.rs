//! The change-feed room on PostgreSQL: read in `seq` order, which writers make the commit
//! order (`record_changes`). Every writing transaction also sends a NOTIFY on
//! [`CHANGES_CHANNEL`], which PostgreSQL delivers only when it commits: a follower LISTENs on a
//! connection of its own and reads the feed as soon as one arrives. While that connection is
//! down (the database restarted, a proxy cut it) the follower polls every [`PG_CHANGE_POLL`]
//! and makes a new one; notifications lost meanwhile cost nothing, since every wake-up reads
//! the feed from its cursor.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::PgListener;

use super::{PG_CHANGE_POLL, PostgresStore};
use crate::error::Result;
use crate::store::rows::changes::ChangeRow;
use crate::store::{ChangeBatch, ChangeFeedStore};

/// The NOTIFY channel of the change feed.
pub(super) const CHANGES_CHANNEL: &str = "uplink_changes";

/// A follower reads the feed at least this often even while listening, in case a notification
/// went astray without the connection dropping.
const LISTEN_BACKSTOP: Duration = Duration::from_secs(1);

/// How often a follower without a listening connection tries to make one, and how long it
/// waits for it (meanwhile it polls).
const RELISTEN_EVERY: Duration = Duration::from_secs(1);

/// The follower's listening connection, once made.
#[derive(Debug, Default)]
pub(super) struct ChangeListener {
    listener: Option<PgListener>,
    tried_at: Option<Instant>,
}

impl PostgresStore {
    /// A listening connection, made now if there is none and the last try was long enough ago.
    async fn listening<'a>(&self, state: &'a mut ChangeListener) -> Option<&'a mut PgListener> {
        if state.listener.is_none()
            && state
                .tried_at
                .is_none_or(|at| at.elapsed() >= RELISTEN_EVERY)
        {
            state.tried_at = Some(Instant::now());
            let made = tokio::time::timeout(RELISTEN_EVERY, async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                // A lost connection is reported at once (`Ok(None)`), so the follower polls
                // while a new one is made.
                listener.eager_reconnect(false);
                listener.listen(CHANGES_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            })
            .await;
            match made {
                Ok(Ok(listener)) => {
                    tracing::debug!("listening for the change feed's notifications");
                    state.listener = Some(listener);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot LISTEN for the change feed; polling it")
                }
                Err(_) => tracing::warn!("LISTEN for the change feed timed out; polling it"),
            }
        }
        state.listener.as_mut()
    }
}

#[async_trait]
impl ChangeFeedStore for PostgresStore {
    async fn change_cursor(&self) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn changes_after(&self, after: i64) -> Result<ChangeBatch> {
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "SELECT seq, change FROM changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        let cursor = rows.last().map_or(after, |row| row.seq);
        let changes = rows
            .into_iter()
            .filter_map(|row| {
                serde_json::from_str(&row.change)
                    .inspect_err(|e| {
                        // Written by a newer hub: skipped; requests still check the store.
                        tracing::warn!(seq = row.seq, error = %e, "a change in the feed was not understood");
                    })
                    .ok()
            })
            .collect();
        Ok(ChangeBatch { cursor, changes })
    }

    async fn wait_for_changes(&self, after: i64) -> Result<()> {
        let mut state = self.listener.lock().await;
        loop {
            // Listening first, then reading: a commit after the read notifies the listener.
            let listening = self.listening(&mut state).await.is_some();
            if self.change_cursor().await? > after {
                return Ok(());
            }
            let Some(listener) = state.listener.as_mut().filter(|_| listening) else {
                tokio::time::sleep(PG_CHANGE_POLL).await;
                continue;
            };
            match tokio::time::timeout(LISTEN_BACKSTOP, listener.try_recv()).await {
                // A commit (or the backstop's time): read the feed again.
                Ok(Ok(Some(_))) | Err(_) => {}
                Ok(Ok(None)) => {
                    tracing::warn!(
                        "the change feed's listening connection dropped; polling until it is back"
                    );
                    state.listener = None;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the change feed's listening connection failed; polling until it is back");
                    state.listener = None;
                }
            }
        }
    }

    async fn append_change(&self, change: &crate::revocation::Revocation) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        super::record_changes(&mut tx, std::slice::from_ref(change), crate::clock::now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_changes(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
