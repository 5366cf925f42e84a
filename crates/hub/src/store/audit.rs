//! The audit trail.

use async_trait::async_trait;

use crate::error::Result;

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: i64,
    /// What (`sign_in`, `sign_in_failed`, `grant`, `revoke`, …).
    pub event: String,
    /// Who.
    pub user_id: Option<String>,
    /// Which app.
    pub app_id: Option<String>,
    /// Which data source.
    pub source_id: Option<String>,
    /// Free text, never a secret.
    pub detail: String,
}

/// The audit room.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends to the audit trail.
    async fn audit(&self, event: &AuditEvent) -> Result<()>;
    /// The newest audit events first.
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>>;
}
