//! The audit room on SQLite: an append-only table, read newest first.

use async_trait::async_trait;

use super::SqliteStore;
use super::group_commit::Job;
use crate::error::Result;
use crate::store::rows::audit::AuditRow;
use crate::store::{AuditEvent, AuditStore};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit(&self, e: &AuditEvent) -> Result<()> {
        // Group committed with writes' keys and answers: an unkeyed write's audit rows share
        // the commits of the writes around it.
        self.commits
            .run(|reply| Job::Audit {
                event: e.clone(),
                reply,
            })
            .await
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
