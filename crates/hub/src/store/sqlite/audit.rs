//! The audit room on SQLite: an append-only table, read newest first.

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::Result;
use crate::store::{AuditEvent, AuditStore};

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: i64,
    event: String,
    user_id: Option<String>,
    app_id: Option<String>,
    source_id: Option<String>,
    detail: String,
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, user_id, app_id, source_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(&e.user_id)
        .bind(&e.app_id)
        .bind(&e.source_id)
        .bind(&e.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, event, user_id, app_id, source_id, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
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
