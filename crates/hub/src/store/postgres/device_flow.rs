//! The device-flow room on PostgreSQL (RFC 8628). An approval is redeemed once: the poll that
//! redeems it opens the token family in the same transaction, holding the authorization's row
//! (`FOR UPDATE`) so that polls from several replicas take turns.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::secret::public_id;
use crate::store::rows::device_flow::{PendingRow, PollRow};
use crate::store::{DeviceAuthorization, DeviceFlowStore, DevicePoll, TokenFamily, split_scopes};

#[async_trait]
impl DeviceFlowStore for PostgresStore {
    async fn create_device_authorization(
        &self,
        device_digest: &[u8],
        user_code_digest: &[u8],
        r: &DeviceAuthorization,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_authorizations (device_digest, user_code_digest, app_id, scopes, \
             created_at, expires_at, interval_secs, requested_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(device_digest)
        .bind(user_code_digest)
        .bind(&r.app_id)
        .bind(r.scopes.join(" "))
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.interval_secs)
        .bind(&r.requested_from)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pending_device_authorization(
        &self,
        user_code_digest: &[u8],
        now: i64,
    ) -> Result<Option<DeviceAuthorization>> {
        let row: Option<PendingRow> = sqlx::query_as(
            "SELECT app_id, scopes, created_at, expires_at, interval_secs, requested_from FROM device_authorizations \
             WHERE user_code_digest = $1 AND expires_at > $2 AND approved_at IS NULL AND denied_at IS NULL",
        )
        .bind(user_code_digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(DeviceAuthorization::from))
    }

    async fn decide_device_authorization(
        &self,
        user_code_digest: &[u8],
        user_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE device_authorizations SET user_id = $1, \
             approved_at = CASE WHEN $1 IS NULL THEN NULL ELSE $2 END, \
             denied_at = CASE WHEN $1 IS NULL THEN $2 ELSE NULL END \
             WHERE user_code_digest = $3 AND expires_at > $2 AND approved_at IS NULL AND denied_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(user_code_digest)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn poll_device_authorization(
        &self,
        device_digest: &[u8],
        app_id: &str,
        now: i64,
    ) -> Result<DevicePoll> {
        let mut tx = self.pool.begin().await?;
        // The row stays locked until commit: a poll of the same code on any replica waits,
        // then reads what this one decided.
        let row: Option<PollRow> = sqlx::query_as(
            "SELECT last_polled_at, expires_at, interval_secs, user_id, scopes, approved_at, denied_at, \
             redeemed_at FROM device_authorizations WHERE device_digest = $1 AND app_id = $2 FOR UPDATE",
        )
        .bind(device_digest)
        .bind(app_id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE device_authorizations SET last_polled_at = $1 WHERE device_digest = $2",
        )
        .bind(now)
        .bind(device_digest)
        .execute(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(DevicePoll::Invalid);
        };
        let outcome = if row.redeemed_at.is_some() || row.expires_at <= now {
            DevicePoll::Invalid
        } else if row.denied_at.is_some() {
            DevicePoll::Denied
        } else if let (Some(_), Some(user_id)) = (row.approved_at, row.user_id) {
            let family_id = public_id("fam");
            sqlx::query(
                "UPDATE device_authorizations SET redeemed_at = $1 WHERE device_digest = $2",
            )
            .bind(now)
            .bind(device_digest)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO token_families (id, user_id, app_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&family_id)
            .bind(&user_id)
            .bind(app_id)
            .bind(&row.scopes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            DevicePoll::Approved(TokenFamily {
                id: family_id,
                user_id,
                app_id: app_id.to_owned(),
                scopes: split_scopes(&row.scopes),
                revoked_at: None,
            })
        } else {
            DevicePoll::Pending {
                too_fast: row
                    .last_polled_at
                    .is_some_and(|t| now - t < row.interval_secs),
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
