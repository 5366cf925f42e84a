//! Users: the people who sign in to the hub.

use async_trait::async_trait;

use crate::error::Result;

/// A person who signs in to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (`usr_…`).
    pub id: String,
    /// Sign-in name, unique regardless of case.
    pub username: String,
    /// When the account was created.
    pub created_at: i64,
    /// The name shown to people and to apps granted `profile`, if set.
    pub display_name: Option<String>,
    /// The email address apps granted `email` see, if set.
    pub email: Option<String>,
}

/// The users room.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; fails with `Conflict` if the name is taken.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User>;
    /// The user and their password hash, by name.
    async fn user_credentials(&self, username: &str) -> Result<Option<(User, String)>>;
    /// A user by id.
    async fn user(&self, id: &str) -> Result<Option<User>>;
    /// All users.
    async fn users(&self) -> Result<Vec<User>>;
    /// Sets a user's display name and email; `None` leaves a field as it is, an empty string
    /// clears it. None if no such user, else the user as now stored.
    async fn set_profile(
        &self,
        username: &str,
        display_name: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<User>>;
    /// Replaces a user's password hash, ends their sessions and revokes every token family
    /// of theirs, in one transaction. None if no such user, else the families revoked.
    async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>>;
}
