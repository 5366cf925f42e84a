//! The changes room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    pub(crate) seq: i64,
    /// JSON of a [`crate::revocation::Revocation`].
    pub(crate) change: String,
}
