//! The users room on PostgreSQL. Names are unique and found regardless of case
//! (`lower(username)`, as SQLite's `COLLATE NOCASE`).

use async_trait::async_trait;

use super::{PostgresStore, family_changes, is_unique_violation, record_changes};
use crate::error::{HubError, Result};
use crate::secret::public_id;
use crate::store::rows::users::{CredentialRow, UserRow};
use crate::store::{User, UserStore};

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User> {
        let user = User {
            id: public_id("usr"),
            username: username.to_owned(),
            created_at: crate::clock::now(),
            display_name: None,
            email: None,
        };
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                HubError::Conflict(format!("a user named '{username}' already exists"))
            } else {
                e.into()
            }
        })?;
        Ok(user)
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let row: Option<CredentialRow> = sqlx::query_as(
            "SELECT id, username, created_at, display_name, email, password_hash FROM users \
             WHERE lower(username) = lower($1)",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.user.into(), r.password_hash)))
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, created_at, display_name, email FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(User::from))
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, created_at, display_name, email FROM users ORDER BY lower(username)",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn set_profile(
        &self,
        username: &str,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "UPDATE users SET display_name = CASE WHEN $1::TEXT IS NULL THEN display_name ELSE NULLIF($1, '') END, \
             email = CASE WHEN $2::TEXT IS NULL THEN email ELSE NULLIF($2, '') END \
             WHERE lower(username) = lower($3) RETURNING id, username, created_at, display_name, email",
        )
        .bind(display_name)
        .bind(email)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(User::from))
    }

    async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>> {
        let mut tx = self.pool.begin().await?;
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1 WHERE lower(username) = lower($2) RETURNING id",
        )
        .bind(password_hash)
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        // A new password signs out every browser that knew the old one, and every sign-in
        // (connectors, devices, apps) made with it.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let families: Vec<String> = sqlx::query_scalar(
            "UPDATE token_families SET revoked_at = $1, revoked_reason = 'password changed' \
             WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        let changes: Vec<_> = family_changes(&families).collect();
        record_changes(&mut tx, &changes, now).await?;
        tx.commit().await?;
        Ok(Some(families))
    }
}
