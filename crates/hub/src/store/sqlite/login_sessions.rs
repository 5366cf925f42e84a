//! The login-sessions room on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::Result;
use crate::store::rows::login_sessions::SessionRow;
use crate::store::{LoginSession, LoginSessionStore};

#[async_trait]
impl LoginSessionStore for SqliteStore {
    async fn create_session(&self, digest: &[u8], session: &LoginSession, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(&session.user_id)
        .bind(now)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn session(&self, digest: &[u8], now: i64) -> Result<Option<LoginSession>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT user_id, expires_at, created_at FROM sessions WHERE digest = ? AND expires_at > ?",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| LoginSession {
            user_id: r.user_id,
            expires_at: r.expires_at,
            signed_in_at: r.created_at,
        }))
    }

    async fn delete_session(&self, digest: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE digest = ?")
            .bind(digest)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
