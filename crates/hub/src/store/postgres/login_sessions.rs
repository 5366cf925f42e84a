//! The login-sessions room on PostgreSQL.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::store::rows::login_sessions::SessionRow;
use crate::store::{LoginSession, LoginSessionStore};

#[async_trait]
impl LoginSessionStore for PostgresStore {
    async fn create_session(&self, digest: &[u8], session: &LoginSession, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(digest)
        .bind(&session.user_id)
        .bind(now)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, digest: &[u8], now: i64) -> Result<Option<LoginSession>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT user_id, expires_at, created_at FROM sessions WHERE digest = $1 AND expires_at > $2",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| LoginSession {
            user_id: r.user_id,
            expires_at: r.expires_at,
            signed_in_at: r.created_at,
        }))
    }

    async fn delete_session(&self, digest: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
