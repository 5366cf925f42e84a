//! Refresh tokens and their families: everything issued from one sign-in.

use async_trait::async_trait;

use crate::error::Result;

/// A refresh-token family: everything issued from one authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFamily {
    /// Family id (`fam_…`), also carried by access tokens.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The app.
    pub app_id: String,
    /// Scopes consented at the start; refreshes may narrow, never widen.
    pub scopes: Vec<String>,
    /// Set when revoked.
    pub revoked_at: Option<i64>,
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now spent and its successor stored.
    Rotated(TokenFamily),
    /// The token had already been used: the whole family is now revoked.
    Reused,
    /// Unknown, expired, or its family revoked.
    Invalid,
}

/// One valid sign-in of a user (a token family with a usable refresh token), as the settings
/// page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInView {
    /// The token family.
    pub family_id: String,
    /// The client it signed in with.
    pub app_id: String,
    /// That client's name, if it is still registered.
    pub app_name: Option<String>,
    /// The connector it created or took over, if any.
    pub connector_name: Option<String>,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it signed in.
    pub signed_in_at: i64,
    /// When it last obtained tokens.
    pub last_used_at: i64,
    /// The client address it last obtained tokens from, if known.
    pub last_address: Option<String>,
}

/// The refresh-token room: token families and the rotating refresh tokens in them.
#[async_trait]
pub trait TokenFamilyStore: Send + Sync {
    /// Stores a refresh token in a family.
    async fn create_refresh_token(
        &self,
        digest: &[u8],
        family_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()>;
    /// The family of a refresh token, without spending it.
    async fn refresh_token_family(&self, digest: &[u8]) -> Result<Option<TokenFamily>>;
    /// The family of a refresh token that is unspent, unexpired and in a live family.
    async fn live_refresh_token(&self, digest: &[u8], now: i64) -> Result<Option<TokenFamily>>;
    /// Spends a refresh token and stores its successor, atomically; reuse revokes the family.
    async fn rotate_refresh_token(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        new_expires_at: i64,
    ) -> Result<Rotation>;
    /// A token family.
    async fn family(&self, id: &str) -> Result<Option<TokenFamily>>;
    /// Revokes a token family; false if it was already revoked or unknown.
    async fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool>;
    /// Records the client address a refresh token was issued to (shown to the owner).
    async fn note_refresh_address(&self, digest: &[u8], address: &str) -> Result<()>;
    /// A user's valid sign-ins (live families with a usable refresh token), newest first.
    async fn sign_ins_of(&self, user_id: &str, now: i64) -> Result<Vec<SignInView>>;
}
