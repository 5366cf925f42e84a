//! Authorization requests (consent transactions) and authorization codes.

use async_trait::async_trait;

use crate::error::Result;

/// A validated `/oauth/authorize` request waiting for sign-in and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// Transaction id (random, in the consent URL).
    pub id: String,
    /// The requesting app.
    pub app_id: String,
    /// The redirect URI it asked for (already checked against its registration).
    pub redirect_uri: String,
    /// The scopes it asked for.
    pub scopes: Vec<String>,
    /// The app's `state`, returned unchanged.
    pub state: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The OpenID Connect `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// The monthly spending limit the app suggests for `account.debit` (minor units); the
    /// consent page starts from it, the user decides.
    pub suggested_limit: Option<i64>,
    /// The user it was bound to when first shown, if any.
    pub user_id: Option<String>,
    /// Created.
    pub created_at: i64,
    /// After this the transaction is void.
    pub expires_at: i64,
    /// Set once approved or denied; a transaction ends once.
    pub finished_at: Option<i64>,
}

/// What an authorization code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    /// The app it was issued to.
    pub app_id: String,
    /// The consenting user.
    pub user_id: String,
    /// The redirect URI of the authorization request (must be repeated at the token endpoint).
    pub redirect_uri: String,
    /// Consented scopes.
    pub scopes: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The OpenID Connect `nonce` of the authorization request, echoed in the ID token.
    pub nonce: Option<String>,
    /// When the user signed in (Unix seconds): the ID token's `auth_time`.
    pub auth_time: i64,
    /// Issued.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// Outcome of presenting an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code is now spent and a token family was opened for it.
    Fresh {
        /// What the code stands for.
        grant: CodeGrant,
        /// The family opened for what this redemption issues.
        family_id: String,
    },
    /// The code was already used: the family its first use opened is now revoked.
    Replayed,
    /// No such code.
    Unknown,
}

/// The authorization room: consent transactions and the codes they end in.
#[async_trait]
pub trait AuthorizationStore: Send + Sync {
    /// Stores a consent transaction.
    async fn create_authorization_request(&self, request: &AuthorizationRequest) -> Result<()>;
    /// A consent transaction.
    async fn authorization_request(&self, id: &str) -> Result<Option<AuthorizationRequest>>;
    /// Binds a transaction to the user who first saw it; false if bound to someone else.
    async fn bind_authorization_request(&self, id: &str, user_id: &str) -> Result<bool>;
    /// Ends a transaction; false if it had already ended (approve and deny race for it).
    async fn finish_authorization_request(&self, id: &str, now: i64) -> Result<bool>;
    /// Stores an authorization code by its digest.
    async fn create_code(&self, digest: &[u8], code: &CodeGrant) -> Result<()>;
    /// Spends a code, atomically: exactly one caller gets `Fresh`.
    async fn redeem_code(&self, digest: &[u8], now: i64) -> Result<CodeRedemption>;
}
