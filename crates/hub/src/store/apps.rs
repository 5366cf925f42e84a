//! Apps: the registered OAuth2 clients.

use async_trait::async_trait;

use crate::error::Result;

/// A registered app (OAuth2 client).
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The OAuth2 client id.
    pub client_id: String,
    /// The name shown on the consent page.
    pub name: String,
    /// Confidential apps authenticate with a secret; public (native, browser) apps only with PKCE.
    pub confidential: bool,
    /// SHA-256 digest of the client secret, for confidential apps.
    pub secret_digest: Option<Vec<u8>>,
    /// Registered redirect URIs, matched exactly (a loopback URI's port may vary).
    pub redirect_uris: Vec<String>,
    /// The scopes this app may ask for.
    pub scopes: Vec<String>,
    /// When it was registered.
    pub created_at: i64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("confidential", &self.confidential)
            .field("redirect_uris", &self.redirect_uris)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The apps room.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Registers an app; fails with `Conflict` if the client id exists.
    async fn create_app(&self, app: &App) -> Result<()>;
    /// A registered app.
    async fn app(&self, client_id: &str) -> Result<Option<App>>;
    /// All registered apps.
    async fn apps(&self) -> Result<Vec<App>>;
    /// Replaces an app's redirect URIs; false if no such app.
    async fn set_app_redirect_uris(
        &self,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<bool>;
    /// Removes an app, revoking every grant and token family it holds, in one transaction.
    async fn remove_app(&self, client_id: &str, now: i64) -> Result<bool>;
}
