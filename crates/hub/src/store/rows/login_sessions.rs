//! The login_sessions room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) user_id: String,
    pub(crate) expires_at: i64,
    pub(crate) created_at: i64,
}
