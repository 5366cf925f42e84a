//! The writes room on SQLite: one row per (app, user, key), claimed on the single writer
//! connection, so racing claims of a key see each other. Claims and answers are group
//! committed (`group_commit.rs`, where the statements are): each is answered once durable.

use async_trait::async_trait;

use super::SqliteStore;
use super::group_commit::Job;
use crate::error::Result;
use crate::store::{AuditEvent, WriteClaim, WriteKey, WriteStore};

#[async_trait]
impl WriteStore for SqliteStore {
    async fn claim_write(
        &self,
        key: &WriteKey,
        body_digest: &str,
        now: i64,
        expired_before: i64,
    ) -> Result<WriteClaim> {
        self.commits
            .run(|reply| Job::Claim {
                key: key.clone(),
                body_digest: body_digest.to_owned(),
                now,
                expired_before,
                reply,
            })
            .await
    }

    async fn answer_write(
        &self,
        key: &WriteKey,
        status: u16,
        answer: &str,
        audit: &[AuditEvent],
    ) -> Result<()> {
        self.commits
            .run(|reply| Job::Answer {
                key: key.clone(),
                status,
                answer: answer.to_owned(),
                audit: audit.to_vec(),
                reply,
            })
            .await
    }

    async fn release_write(&self, key: &WriteKey) -> Result<()> {
        self.commits
            .run(|reply| Job::Release {
                key: key.clone(),
                reply,
            })
            .await
    }
}
