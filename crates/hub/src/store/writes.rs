//! The writes room: what makes a write with an `Idempotency-Key` apply once. The first request
//! with a key claims it (with a digest of its body); its answer is kept once applied, and a
//! retry with the same key and body gets that answer again.

use async_trait::async_trait;

use crate::error::Result;
use crate::store::AuditEvent;

/// A write's idempotency key, per app and user (two apps never share keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteKey {
    /// The app's client id.
    pub app_id: String,
    /// The user whose grant the app writes on.
    pub user_id: String,
    /// The app's `Idempotency-Key`.
    pub key: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteClaim {
    /// The key was free (or its record had expired): this request applies the write.
    Claimed,
    /// A request with this key and body was answered: its HTTP status and JSON body.
    Answered {
        /// The status the first request got.
        status: u16,
        /// Its JSON body.
        answer: String,
    },
    /// A request with this key and body is being applied right now.
    InProgress,
    /// The key was used with a different body.
    KeyReused,
}

/// The writes room.
#[async_trait]
pub trait WriteStore: Send + Sync {
    /// Claims `key` for a write whose body digests to `body_digest`, atomically: of racing
    /// claims exactly one gets [`WriteClaim::Claimed`]. A record created before
    /// `expired_before` is forgotten first.
    async fn claim_write(
        &self,
        key: &WriteKey,
        body_digest: &str,
        now: i64,
        expired_before: i64,
    ) -> Result<WriteClaim>;

    /// Keeps the answer of the write that claimed `key`, with the write's `audit` rows in the
    /// same transaction (one commit for both, and never an answer kept without its audit).
    async fn answer_write(
        &self,
        key: &WriteKey,
        status: u16,
        answer: &str,
        audit: &[AuditEvent],
    ) -> Result<()>;

    /// Frees a claimed key whose write was not applied at all (the connector was offline, the
    /// grant was revoked), so a retry may apply it.
    async fn release_write(&self, key: &WriteKey) -> Result<()>;
}
