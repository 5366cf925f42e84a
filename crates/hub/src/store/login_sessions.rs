//! Login sessions: signed-in browsers.

use async_trait::async_trait;

use crate::error::Result;

/// A signed-in browser session (the login session; the connector link's session is
/// `crate::link::session::LinkSession`, private to the link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// Who is signed in.
    pub user_id: String,
    /// Expiry.
    pub expires_at: i64,
    /// When the user signed in (Unix seconds); set by the store from `now` at creation.
    pub signed_in_at: i64,
}

/// The login-sessions room.
#[async_trait]
pub trait LoginSessionStore: Send + Sync {
    /// Stores a browser session by its digest.
    async fn create_session(&self, digest: &[u8], session: &LoginSession, now: i64) -> Result<()>;
    /// A live session.
    async fn session(&self, digest: &[u8], now: i64) -> Result<Option<LoginSession>>;
    /// Ends a session.
    async fn delete_session(&self, digest: &[u8]) -> Result<()>;
}
