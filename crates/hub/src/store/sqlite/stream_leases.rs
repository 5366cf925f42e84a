//! The live-stream leases room on SQLite: a lease is taken by one `INSERT … SELECT` whose
//! counts are read under the write lock it holds, so racing admissions (of this process, or of
//! other processes sharing the file) take turns.

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::Result;
use crate::store::{LeaseCaps, LeaseOutcome, StreamLease, StreamLeaseStore};

fn cap(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl StreamLeaseStore for SqliteStore {
    async fn lease_stream(
        &self,
        lease: StreamLease<'_>,
        caps: LeaseCaps,
        now: i64,
        expires_at: i64,
    ) -> Result<LeaseOutcome> {
        // A place freed between the insert and the counts that explain its refusal: try
        // again, so the refusal names a cap that is really met.
        loop {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO live_stream_leases (replica, family_id, connector_id, expires_at) \
                 SELECT ?, ?, ?, ? \
                 WHERE (SELECT COUNT(*) FROM live_stream_leases WHERE family_id = ? AND expires_at > ?) < ? \
                 AND (SELECT COUNT(*) FROM live_stream_leases WHERE connector_id = ? AND expires_at > ?) < ? \
                 RETURNING id",
            )
            .bind(lease.replica)
            .bind(lease.family_id)
            .bind(lease.connector_id)
            .bind(expires_at)
            .bind(lease.family_id)
            .bind(now)
            .bind(cap(caps.per_sign_in))
            .bind(lease.connector_id)
            .bind(now)
            .bind(cap(caps.per_connector))
            .fetch_optional(&self.writer)
            .await?;
            if let Some(id) = id {
                return Ok(LeaseOutcome::Leased(id));
            }
            let (of_sign_in, of_connector): (i64, i64) = sqlx::query_as(
                "SELECT \
                 (SELECT COUNT(*) FROM live_stream_leases WHERE family_id = ? AND expires_at > ?), \
                 (SELECT COUNT(*) FROM live_stream_leases WHERE connector_id = ? AND expires_at > ?)",
            )
            .bind(lease.family_id)
            .bind(now)
            .bind(lease.connector_id)
            .bind(now)
            .fetch_one(&self.writer)
            .await?;
            if of_sign_in >= cap(caps.per_sign_in) {
                return Ok(LeaseOutcome::SignInFull);
            }
            if of_connector >= cap(caps.per_connector) {
                return Ok(LeaseOutcome::ConnectorFull);
            }
        }
    }

    async fn renew_stream_leases(&self, replica: &str, now: i64, expires_at: i64) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM live_stream_leases WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let renewed = sqlx::query("UPDATE live_stream_leases SET expires_at = ? WHERE replica = ?")
            .bind(expires_at)
            .bind(replica)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(renewed)
    }

    async fn release_stream_leases(&self, ids: &[i64]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM live_stream_leases WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
