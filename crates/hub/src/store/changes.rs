//! The change feed: revokes and consents, in commit order, for every process on the store.

use async_trait::async_trait;

use crate::error::Result;

/// Changes read from the feed: what changed, in commit order, and the sequence number to
/// wait after next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// The last sequence number read.
    pub cursor: i64,
    /// What changed.
    pub changes: Vec<crate::revocation::Revocation>,
}

/// The change-feed room. Its entries are written by the other rooms, each in the transaction
/// of the change it records.
#[async_trait]
pub trait ChangeFeedStore: Send + Sync {
    /// The newest change's sequence number (0 when there is none): where a follower starts.
    async fn change_cursor(&self) -> Result<i64>;
    /// The changes committed after `after` — by this process or any other using the same
    /// store — in commit order (at most a thousand at a time). Every method that revokes or
    /// grants appends its change in its own transaction.
    async fn changes_after(&self, after: i64) -> Result<ChangeBatch>;
    /// Returns once a change after `after` may have been committed by any process. SQLite
    /// polls (every [`super::CHANGE_POLL`]); PostgreSQL can LISTEN for a NOTIFY that the same
    /// transactions send.
    async fn wait_for_changes(&self, after: i64) -> Result<()>;
    /// Appends a change that is not part of another write (a key rotation, whose keys live in
    /// their file), in a transaction of its own.
    async fn append_change(&self, change: &crate::revocation::Revocation) -> Result<()>;
    /// Forgets changes committed before `before` (Unix seconds); returns how many.
    async fn prune_changes(&self, before: i64) -> Result<u64>;
}
