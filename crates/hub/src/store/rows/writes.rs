//! The writes room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow {
    pub(crate) body_digest: String,
    pub(crate) status: Option<i64>,
    pub(crate) answer: Option<String>,
}
