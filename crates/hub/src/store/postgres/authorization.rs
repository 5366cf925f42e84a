//! The authorization room on PostgreSQL: consent transactions and single-use codes. A replayed
//! code revokes the family its first use opened, in the same transaction. The conditional
//! `UPDATE … RETURNING` decides a race between replicas: a second redemption waits for the
//! first's row lock, then finds `used_at` set.

use async_trait::async_trait;

use super::{PostgresStore, family_changes, record_changes, revoke_family_on};
use crate::error::Result;
use crate::secret::public_id;
use crate::store::rows::authorization::{CodeRow, RequestRow};
use crate::store::{AuthorizationRequest, AuthorizationStore, CodeGrant, CodeRedemption};

#[async_trait]
impl AuthorizationStore for PostgresStore {
    async fn create_authorization_request(&self, r: &AuthorizationRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_requests (id, app_id, redirect_uri, scopes, state, code_challenge, \
             nonce, suggested_limit, user_id, created_at, expires_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&r.id)
        .bind(&r.app_id)
        .bind(&r.redirect_uri)
        .bind(r.scopes.join(" "))
        .bind(&r.state)
        .bind(&r.code_challenge)
        .bind(&r.nonce)
        .bind(r.suggested_limit)
        .bind(&r.user_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.finished_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn authorization_request(&self, id: &str) -> Result<Option<AuthorizationRequest>> {
        let row: Option<RequestRow> = sqlx::query_as(
            "SELECT id, app_id, redirect_uri, scopes, state, code_challenge, nonce, suggested_limit, user_id, \
             created_at, expires_at, finished_at FROM authorization_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(AuthorizationRequest::from))
    }

    async fn bind_authorization_request(&self, id: &str, user_id: &str) -> Result<bool> {
        let bound: Option<String> = sqlx::query_scalar(
            "UPDATE authorization_requests SET user_id = COALESCE(user_id, $1) WHERE id = $2 RETURNING user_id",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(bound.as_deref() == Some(user_id))
    }

    async fn finish_authorization_request(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE authorization_requests SET finished_at = $1 WHERE id = $2 AND finished_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn create_code(&self, digest: &[u8], code: &CodeGrant) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (digest, app_id, user_id, redirect_uri, scopes, code_challenge, \
             nonce, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(digest)
        .bind(&code.app_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(code.scopes.join(" "))
        .bind(&code.code_challenge)
        .bind(&code.nonce)
        .bind(code.auth_time)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redeem_code(&self, digest: &[u8], now: i64) -> Result<CodeRedemption> {
        let family_id = public_id("fam");
        let mut tx = self.pool.begin().await?;
        // The UPDATE is the race's referee: only one redemption finds `used_at` empty.
        let row: Option<CodeRow> = sqlx::query_as(
            "UPDATE authorization_codes SET used_at = $1, family_id = $2 \
             WHERE digest = $3 AND used_at IS NULL \
             RETURNING app_id, user_id, redirect_uri, scopes, code_challenge, nonce, auth_time, created_at, expires_at",
        )
        .bind(now)
        .bind(&family_id)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            Some(row) => {
                sqlx::query(
                    "INSERT INTO token_families (id, user_id, app_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&family_id)
                .bind(&row.user_id)
                .bind(&row.app_id)
                .bind(&row.scopes)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                CodeRedemption::Fresh {
                    grant: row.into(),
                    family_id,
                }
            }
            None => {
                let used: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT family_id FROM authorization_codes WHERE digest = $1",
                )
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
                match used {
                    Some(first) => {
                        // RFC 6749 §4.1.2: a replayed code revokes what its first use issued.
                        if let Some(first) = first
                            && revoke_family_on(&mut tx, &first, "code replayed", now).await?
                        {
                            let changes: Vec<_> = family_changes(&[first]).collect();
                            record_changes(&mut tx, &changes, now).await?;
                        }
                        CodeRedemption::Replayed
                    }
                    None => CodeRedemption::Unknown,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
