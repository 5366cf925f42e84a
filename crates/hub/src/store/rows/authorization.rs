//! The authorization room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{AuthorizationRequest, CodeGrant, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub(crate) id: String,
    pub(crate) app_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: String,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) suggested_limit: Option<i64>,
    pub(crate) user_id: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) finished_at: Option<i64>,
}

impl From<RequestRow> for AuthorizationRequest {
    fn from(row: RequestRow) -> Self {
        AuthorizationRequest {
            id: row.id,
            app_id: row.app_id,
            redirect_uri: row.redirect_uri,
            scopes: split_scopes(&row.scopes),
            state: row.state,
            code_challenge: row.code_challenge,
            nonce: row.nonce,
            suggested_limit: row.suggested_limit,
            user_id: row.user_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            finished_at: row.finished_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    pub(crate) app_id: String,
    pub(crate) user_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: String,
    pub(crate) code_challenge: String,
    pub(crate) nonce: Option<String>,
    pub(crate) auth_time: i64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

impl From<CodeRow> for CodeGrant {
    fn from(row: CodeRow) -> Self {
        CodeGrant {
            app_id: row.app_id,
            user_id: row.user_id,
            redirect_uri: row.redirect_uri,
            scopes: split_scopes(&row.scopes),
            code_challenge: row.code_challenge,
            nonce: row.nonce,
            auth_time: row.auth_time,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}
