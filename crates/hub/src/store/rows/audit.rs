//! The audit room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub(crate) at: i64,
    pub(crate) event: String,
    pub(crate) user_id: Option<String>,
    pub(crate) app_id: Option<String>,
    pub(crate) source_id: Option<String>,
    pub(crate) detail: String,
}
