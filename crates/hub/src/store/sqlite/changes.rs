//! The change-feed room on SQLite: read in `seq` order; other processes' commits are found by
//! polling every [`CHANGE_POLL`]. Entries are written by the other rooms through
//! `record_change`, inside their own transactions.

use async_trait::async_trait;

use super::{CHANGE_POLL, SqliteStore};
use crate::error::Result;
use crate::store::rows::changes::ChangeRow;
use crate::store::{ChangeBatch, ChangeFeedStore};

#[async_trait]
impl ChangeFeedStore for SqliteStore {
    async fn change_cursor(&self) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.reader)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn changes_after(&self, after: i64) -> Result<ChangeBatch> {
        let rows: Vec<ChangeRow> =
            sqlx::query_as("SELECT seq, change FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000")
                .bind(after)
                .fetch_all(&self.reader)
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
        while self.change_cursor().await? <= after {
            tokio::time::sleep(CHANGE_POLL).await;
        }
        Ok(())
    }

    async fn append_change(&self, change: &crate::revocation::Revocation) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        super::record_change(&mut conn, change, crate::clock::now()).await
    }

    async fn prune_changes(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM changes WHERE at < ?")
            .bind(before)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}
