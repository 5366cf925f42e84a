//! The live-stream leases room on PostgreSQL: a lease is taken in a transaction holding an
//! advisory lock on its sign-in and one on its connector (always in that order), so racing
//! admissions on any replica take turns and a cap is never exceeded.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::store::{LeaseCaps, LeaseOutcome, StreamLease, StreamLeaseStore};

/// The first keys of the advisory locks an admission holds (the second is the id's hash);
/// connector claims use 1.
const SIGN_IN_LOCK: i32 = 2;
const CONNECTOR_LOCK: i32 = 3;

fn cap(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl StreamLeaseStore for PostgresStore {
    async fn lease_stream(
        &self,
        lease: StreamLease<'_>,
        caps: LeaseCaps,
        now: i64,
        expires_at: i64,
    ) -> Result<LeaseOutcome> {
        let mut tx = self.pool.begin().await?;
        for (class, key) in [
            (SIGN_IN_LOCK, lease.family_id),
            (CONNECTOR_LOCK, lease.connector_id),
        ] {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(class)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let (of_sign_in, of_connector): (i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM live_stream_leases WHERE family_id = $1 AND expires_at > $3), \
             (SELECT COUNT(*) FROM live_stream_leases WHERE connector_id = $2 AND expires_at > $3)",
        )
        .bind(lease.family_id)
        .bind(lease.connector_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let outcome = if of_sign_in >= cap(caps.per_sign_in) {
            LeaseOutcome::SignInFull
        } else if of_connector >= cap(caps.per_connector) {
            LeaseOutcome::ConnectorFull
        } else {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO live_stream_leases (replica, family_id, connector_id, expires_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(lease.replica)
            .bind(lease.family_id)
            .bind(lease.connector_id)
            .bind(expires_at)
            .fetch_one(&mut *tx)
            .await?;
            LeaseOutcome::Leased(id)
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn renew_stream_leases(&self, replica: &str, now: i64, expires_at: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM live_stream_leases WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let renewed =
            sqlx::query("UPDATE live_stream_leases SET expires_at = $1 WHERE replica = $2")
                .bind(expires_at)
                .bind(replica)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(renewed)
    }

    async fn release_stream_leases(&self, ids: &[i64]) -> Result<()> {
        sqlx::query("DELETE FROM live_stream_leases WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
