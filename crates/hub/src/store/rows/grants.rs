//! The grants room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{GrantView, RevokedApp, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct ActiveGrantRow {
    pub(crate) id: i64,
    pub(crate) scopes: String,
    pub(crate) last_used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantViewRow {
    pub(crate) app_id: String,
    pub(crate) app_name: String,
    pub(crate) source_id: String,
    pub(crate) source_name: String,
    pub(crate) connector_name: String,
    pub(crate) scopes: String,
    pub(crate) granted_at: i64,
    pub(crate) last_used_at: Option<i64>,
}

impl From<GrantViewRow> for GrantView {
    fn from(row: GrantViewRow) -> Self {
        GrantView {
            app_id: row.app_id,
            app_name: row.app_name,
            source_id: row.source_id,
            source_name: row.source_name,
            connector_name: row.connector_name,
            scopes: split_scopes(&row.scopes),
            granted_at: row.granted_at,
            last_used_at: row.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RevokedAppRow {
    pub(crate) app_id: String,
    pub(crate) app_name: String,
    pub(crate) revoked_at: i64,
}

impl From<RevokedAppRow> for RevokedApp {
    fn from(row: RevokedAppRow) -> Self {
        RevokedApp {
            app_id: row.app_id,
            app_name: row.app_name,
            revoked_at: row.revoked_at,
        }
    }
}
