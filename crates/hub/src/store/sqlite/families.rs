//! The refresh-token room on SQLite: token families and their rotating refresh tokens. A
//! reused refresh token revokes its family in the same transaction.

use async_trait::async_trait;

use super::{SqliteStore, revoke_family_on};
use crate::error::Result;
use crate::store::rows::families::{FamilyRow, SignInRow, SpentRow};
use crate::store::{Rotation, SignInView, TokenFamily, TokenFamilyStore};

#[async_trait]
impl TokenFamilyStore for SqliteStore {
    async fn create_refresh_token(
        &self,
        digest: &[u8],
        family_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (digest, family_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(family_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn refresh_token_family(&self, digest: &[u8]) -> Result<Option<TokenFamily>> {
        let row: Option<FamilyRow> = sqlx::query_as(
            "SELECT f.id, f.user_id, f.app_id, f.scopes, f.revoked_at FROM refresh_tokens r \
             JOIN token_families f ON f.id = r.family_id WHERE r.digest = ?",
        )
        .bind(digest)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(TokenFamily::from))
    }

    async fn live_refresh_token(&self, digest: &[u8], now: i64) -> Result<Option<TokenFamily>> {
        let row: Option<FamilyRow> = sqlx::query_as(
            "SELECT f.id, f.user_id, f.app_id, f.scopes, f.revoked_at FROM refresh_tokens r \
             JOIN token_families f ON f.id = r.family_id \
             WHERE r.digest = ? AND r.used_at IS NULL AND r.expires_at > ? AND f.revoked_at IS NULL",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(TokenFamily::from))
    }

    async fn rotate_refresh_token(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        new_expires_at: i64,
    ) -> Result<Rotation> {
        let mut tx = self.writer.begin().await?;
        let spent: Option<SpentRow> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = ?1 WHERE digest = ?2 AND used_at IS NULL \
             RETURNING family_id, expires_at",
        )
        .bind(now)
        .bind(old_digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match spent {
            Some(spent) => {
                let family: Option<FamilyRow> = sqlx::query_as(
                    "SELECT id, user_id, app_id, scopes, revoked_at FROM token_families WHERE id = ?",
                )
                .bind(&spent.family_id)
                .fetch_optional(&mut *tx)
                .await?;
                match family.map(TokenFamily::from) {
                    Some(family) if family.revoked_at.is_none() && spent.expires_at > now => {
                        sqlx::query(
                            "INSERT INTO refresh_tokens (digest, family_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                        )
                        .bind(new_digest)
                        .bind(&family.id)
                        .bind(now)
                        .bind(new_expires_at)
                        .execute(&mut *tx)
                        .await?;
                        Rotation::Rotated(family)
                    }
                    _ => Rotation::Invalid,
                }
            }
            None => {
                let family_id: Option<String> =
                    sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE digest = ?")
                        .bind(old_digest)
                        .fetch_optional(&mut *tx)
                        .await?;
                match family_id {
                    Some(family_id) => {
                        // A spent refresh token presented again means two parties hold it: stop both.
                        revoke_family_on(&mut tx, &family_id, "refresh token reused", now).await?;
                        Rotation::Reused
                    }
                    None => Rotation::Invalid,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn family(&self, id: &str) -> Result<Option<TokenFamily>> {
        let row: Option<FamilyRow> = sqlx::query_as(
            "SELECT id, user_id, app_id, scopes, revoked_at FROM token_families WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(TokenFamily::from))
    }

    async fn revoke_family(&self, id: &str, reason: &str, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let done = revoke_family_on(&mut tx, id, reason, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn note_refresh_address(&self, digest: &[u8], address: &str) -> Result<()> {
        sqlx::query("UPDATE refresh_tokens SET client_address = ? WHERE digest = ?")
            .bind(address)
            .bind(digest)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn sign_ins_of(&self, user_id: &str, now: i64) -> Result<Vec<SignInView>> {
        let rows: Vec<SignInRow> = sqlx::query_as(
            "SELECT f.id AS family_id, f.app_id, a.name AS app_name, \
             (SELECT c.name FROM connectors c WHERE c.signed_in_family = f.id ORDER BY c.name LIMIT 1) \
             AS connector_name, \
             f.scopes, f.created_at AS signed_in_at, \
             (SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.family_id = f.id) AS last_used_at, \
             (SELECT r.client_address FROM refresh_tokens r WHERE r.family_id = f.id \
              ORDER BY r.created_at DESC, r.rowid DESC LIMIT 1) AS last_address \
             FROM token_families f LEFT JOIN apps a ON a.client_id = f.app_id \
             WHERE f.user_id = ?1 AND f.revoked_at IS NULL AND EXISTS (SELECT 1 FROM refresh_tokens r \
             WHERE r.family_id = f.id AND r.used_at IS NULL AND r.expires_at > ?2) \
             ORDER BY f.created_at DESC, f.id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(SignInView::from).collect())
    }
}
