//! The writes room on PostgreSQL: one row per (app, user, key). A claim inserts with
//! `ON CONFLICT DO NOTHING`, which waits for a racing claim of the same key on any replica to
//! commit, so exactly one claim inserts and the others read its row.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::store::rows::writes::ClaimRow;
use crate::store::{AuditEvent, WriteClaim, WriteKey, WriteStore};

#[async_trait]
impl WriteStore for PostgresStore {
    async fn claim_write(
        &self,
        key: &WriteKey,
        body_digest: &str,
        now: i64,
        expired_before: i64,
    ) -> Result<WriteClaim> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM idempotent_writes WHERE app_id = $1 AND user_id = $2 AND idempotency_key = $3 AND created_at < $4",
        )
        .bind(&key.app_id)
        .bind(&key.user_id)
        .bind(&key.key)
        .bind(expired_before)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotent_writes (app_id, user_id, idempotency_key, body_digest, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&key.app_id)
        .bind(&key.user_id)
        .bind(&key.key)
        .bind(body_digest)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let claim = if inserted == 1 {
            WriteClaim::Claimed
        } else {
            let row: ClaimRow = sqlx::query_as(
                "SELECT body_digest, status, answer FROM idempotent_writes WHERE app_id = $1 AND user_id = $2 AND idempotency_key = $3",
            )
            .bind(&key.app_id)
            .bind(&key.user_id)
            .bind(&key.key)
            .fetch_one(&mut *tx)
            .await?;
            match row {
                row if row.body_digest != body_digest => WriteClaim::KeyReused,
                ClaimRow {
                    status: Some(status),
                    answer: Some(answer),
                    ..
                } => WriteClaim::Answered {
                    status: u16::try_from(status).unwrap_or(500),
                    answer,
                },
                _ => WriteClaim::InProgress,
            }
        };
        tx.commit().await?;
        Ok(claim)
    }

    async fn answer_write(
        &self,
        key: &WriteKey,
        status: u16,
        answer: &str,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for e in audit {
            sqlx::query(
                "INSERT INTO audit_log (at, event, user_id, app_id, source_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.at)
            .bind(&e.event)
            .bind(&e.user_id)
            .bind(&e.app_id)
            .bind(&e.source_id)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE idempotent_writes SET status = $1, answer = $2 WHERE app_id = $3 AND user_id = $4 AND idempotency_key = $5",
        )
        .bind(i64::from(status))
        .bind(answer)
        .bind(&key.app_id)
        .bind(&key.user_id)
        .bind(&key.key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_write(&self, key: &WriteKey) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotent_writes WHERE app_id = $1 AND user_id = $2 AND idempotency_key = $3 AND answer IS NULL",
        )
        .bind(&key.app_id)
        .bind(&key.user_id)
        .bind(&key.key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
