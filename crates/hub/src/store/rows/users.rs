//! The users room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::User;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) created_at: i64,
    pub(crate) display_name: Option<String>,
    pub(crate) email: Option<String>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
            created_at: row.created_at,
            display_name: row.display_name,
            email: row.email,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialRow {
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
    pub(crate) password_hash: String,
}
