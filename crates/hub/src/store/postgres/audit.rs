//! The audit room on PostgreSQL: an append-only table, read newest first.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::store::rows::audit::AuditRow;
use crate::store::{AuditEvent, AuditStore};

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, user_id, app_id, source_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(&e.user_id)
        .bind(&e.app_id)
        .bind(&e.source_id)
        .bind(&e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, event, user_id, app_id, source_id, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                at: r.at,
                event: r.event,
                user_id: r.user_id,
                app_id: r.app_id,
                source_id: r.source_id,
                detail: r.detail,
            })
            .collect())
    }
}
