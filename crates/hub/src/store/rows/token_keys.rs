//! The token_keys room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub(crate) id: String,
    pub(crate) key_bytes: Vec<u8>,
    pub(crate) created_at: i64,
}
