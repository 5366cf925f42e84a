//! The families room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{SignInView, TokenFamily, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct FamilyRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) app_id: String,
    pub(crate) scopes: String,
    pub(crate) revoked_at: Option<i64>,
}

impl From<FamilyRow> for TokenFamily {
    fn from(row: FamilyRow) -> Self {
        TokenFamily {
            id: row.id,
            user_id: row.user_id,
            app_id: row.app_id,
            scopes: split_scopes(&row.scopes),
            revoked_at: row.revoked_at,
        }
    }
}

/// A refresh token just spent by a rotation.
#[derive(sqlx::FromRow)]
pub(crate) struct SpentRow {
    pub(crate) family_id: String,
    pub(crate) expires_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SignInRow {
    pub(crate) family_id: String,
    pub(crate) app_id: String,
    pub(crate) app_name: Option<String>,
    pub(crate) connector_name: Option<String>,
    pub(crate) scopes: String,
    pub(crate) signed_in_at: i64,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) last_address: Option<String>,
}

impl From<SignInRow> for SignInView {
    fn from(row: SignInRow) -> Self {
        SignInView {
            family_id: row.family_id,
            app_id: row.app_id,
            app_name: row.app_name,
            connector_name: row.connector_name,
            scopes: split_scopes(&row.scopes),
            signed_in_at: row.signed_in_at,
            last_used_at: row.last_used_at.unwrap_or(row.signed_in_at),
            last_address: row.last_address,
        }
    }
}
