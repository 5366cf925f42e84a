//! The apps room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::error::{HubError, Result};
use crate::store::{App, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct AppRow {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) confidential: bool,
    pub(crate) secret_digest: Option<Vec<u8>>,
    /// JSON array.
    pub(crate) redirect_uris: String,
    /// Space-separated.
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
}

impl TryFrom<AppRow> for App {
    type Error = HubError;

    fn try_from(row: AppRow) -> Result<Self> {
        let redirect_uris: Vec<String> = serde_json::from_str(&row.redirect_uris).map_err(|e| {
            HubError::Invalid(format!(
                "stored redirect URIs of app '{}': {e}",
                row.client_id
            ))
        })?;
        Ok(App {
            client_id: row.client_id,
            name: row.name,
            confidential: row.confidential,
            secret_digest: row.secret_digest,
            redirect_uris,
            scopes: split_scopes(&row.scopes),
            created_at: row.created_at,
        })
    }
}
