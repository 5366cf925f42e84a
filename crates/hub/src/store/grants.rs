//! Grants: a user's consent to an app, per data source.

use async_trait::async_trait;

use crate::error::Result;

/// One active grant as the settings page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// The app's client id.
    pub app_id: String,
    /// The app's name.
    pub app_name: String,
    /// The data source's id.
    pub source_id: String,
    /// The data source's name.
    pub source_name: String,
    /// The connector serving it.
    pub connector_name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub granted_at: i64,
    /// When the app last used it, if ever.
    pub last_used_at: Option<i64>,
}

/// An app that once held grants of a user and holds none now: listed as revoked, so its owner
/// still sees it (and can block it on a site).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedApp {
    /// The app's client id.
    pub app_id: String,
    /// The app's name.
    pub app_name: String,
    /// When its last grant was revoked.
    pub revoked_at: i64,
}

/// The answer of the per-request grant lookup when access is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    /// Row id, to record use.
    pub id: i64,
    /// Scopes granted for this data source.
    pub scopes: Vec<String>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
}

/// The grants room.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Records consent: one grant per data source, replacing the scopes of an active one.
    async fn grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        scopes: &[String],
        now: i64,
    ) -> Result<()>;
    /// The per-request check: the active grant for (user, app, source), provided the token's
    /// family is still live. Reads the store every time.
    async fn active_grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: &str,
        family_id: &str,
    ) -> Result<Option<ActiveGrant>>;
    /// Records that a grant was used (callers throttle this).
    async fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()>;
    /// A user's active grants, for the settings page.
    async fn grants_of(&self, user_id: &str) -> Result<Vec<GrantView>>;
    /// The apps that held grants of a user and hold none now, most recently revoked first.
    async fn revoked_apps_of(&self, user_id: &str) -> Result<Vec<RevokedApp>>;
    /// Revokes one data source's grant (or, with `source_id` None, all of an app's grants) for a
    /// user. When the app has no active grant left for that user, its token families are revoked
    /// too. Returns how many grants were revoked and the families revoked. Committed before it
    /// returns.
    async fn revoke(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, Vec<String>)>;
}
