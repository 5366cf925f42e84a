//! The device_flow room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{DeviceAuthorization, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct PendingRow {
    pub(crate) app_id: String,
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) interval_secs: i64,
    pub(crate) requested_from: String,
}

impl From<PendingRow> for DeviceAuthorization {
    fn from(row: PendingRow) -> Self {
        DeviceAuthorization {
            app_id: row.app_id,
            scopes: split_scopes(&row.scopes),
            created_at: row.created_at,
            expires_at: row.expires_at,
            interval_secs: row.interval_secs,
            requested_from: row.requested_from,
        }
    }
}

/// What a poll needs to decide.
#[derive(sqlx::FromRow)]
pub(crate) struct PollRow {
    pub(crate) last_polled_at: Option<i64>,
    pub(crate) expires_at: i64,
    pub(crate) interval_secs: i64,
    pub(crate) user_id: Option<String>,
    pub(crate) scopes: String,
    pub(crate) approved_at: Option<i64>,
    pub(crate) denied_at: Option<i64>,
    pub(crate) redeemed_at: Option<i64>,
}
