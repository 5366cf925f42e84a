//! The grants room on PostgreSQL. Revoking an app's last grant for a user revokes the app's
//! token families for that user in the same transaction.

use async_trait::async_trait;

use super::{PostgresStore, family_changes, record_changes};
use crate::error::Result;
use crate::revocation::Revocation;
use crate::store::rows::grants::{ActiveGrantRow, GrantViewRow, RevokedAppRow};
use crate::store::{ActiveGrant, GrantStore, GrantView, RevokedApp, split_scopes};

#[async_trait]
impl GrantStore for PostgresStore {
    async fn grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        scopes: &[String],
        now: i64,
    ) -> Result<()> {
        let scopes = scopes.join(" ");
        let mut tx = self.pool.begin().await?;
        for source_id in source_ids {
            sqlx::query(
                "INSERT INTO grants (user_id, app_id, source_id, scopes, granted_at, granted_by) \
                 VALUES ($1, $2, $3, $4, $5, $1) \
                 ON CONFLICT (user_id, app_id, source_id) WHERE revoked_at IS NULL \
                 DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
            )
            .bind(user_id)
            .bind(app_id)
            .bind(source_id)
            .bind(&scopes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let granted = Revocation::Granted {
            user_id: user_id.to_owned(),
            app_id: app_id.to_owned(),
            source_ids: source_ids.to_vec(),
        };
        record_changes(&mut tx, &[granted], now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn active_grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: &str,
        family_id: &str,
    ) -> Result<Option<ActiveGrant>> {
        let row: Option<ActiveGrantRow> = sqlx::query_as(
            "SELECT g.id, g.scopes, g.last_used_at FROM grants g \
             WHERE g.user_id = $1 AND g.app_id = $2 AND g.source_id = $3 AND g.revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = $4 AND f.revoked_at IS NULL)",
        )
        .bind(user_id)
        .bind(app_id)
        .bind(source_id)
        .bind(family_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ActiveGrant {
            id: r.id,
            scopes: split_scopes(&r.scopes),
            last_used_at: r.last_used_at,
        }))
    }

    async fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn grants_of(&self, user_id: &str) -> Result<Vec<GrantView>> {
        let rows: Vec<GrantViewRow> = sqlx::query_as(
            "SELECT g.app_id, a.name AS app_name, g.source_id, s.name AS source_name, \
             c.name AS connector_name, g.scopes, g.granted_at, g.last_used_at \
             FROM grants g JOIN apps a ON a.client_id = g.app_id \
             JOIN data_sources s ON s.id = g.source_id JOIN connectors c ON c.id = s.connector_id \
             WHERE g.user_id = $1 AND g.revoked_at IS NULL ORDER BY a.name, c.name, s.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(GrantView::from).collect())
    }

    async fn revoked_apps_of(&self, user_id: &str) -> Result<Vec<RevokedApp>> {
        let rows: Vec<RevokedAppRow> = sqlx::query_as(
            "SELECT g.app_id, a.name AS app_name, MAX(g.revoked_at) AS revoked_at \
             FROM grants g JOIN apps a ON a.client_id = g.app_id \
             WHERE g.user_id = $1 AND g.revoked_at IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM grants l WHERE l.user_id = $1 AND l.app_id = g.app_id AND l.revoked_at IS NULL) \
             GROUP BY g.app_id, a.name ORDER BY MAX(g.revoked_at) DESC, a.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RevokedApp::from).collect())
    }

    async fn revoke(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, Vec<String>)> {
        let mut tx = self.pool.begin().await?;
        let revoked = sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_by = $2 \
             WHERE user_id = $2 AND app_id = $3 AND ($4 IS NULL OR source_id = $4) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(app_id)
        .bind(source_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM grants WHERE user_id = $1 AND app_id = $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(app_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut families = Vec::new();
        if left == 0 {
            // Without a grant the app must not be able to mint new access tokens quietly.
            families = sqlx::query_scalar(
                "UPDATE token_families SET revoked_at = $1, revoked_reason = 'all grants revoked' \
                 WHERE user_id = $2 AND app_id = $3 AND revoked_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(user_id)
            .bind(app_id)
            .fetch_all(&mut *tx)
            .await?;
        }
        let mut changes = vec![Revocation::Grant {
            user_id: user_id.to_owned(),
            app_id: app_id.to_owned(),
            source_id: source_id.map(str::to_owned),
        }];
        changes.extend(family_changes(&families));
        record_changes(&mut tx, &changes, now).await?;
        tx.commit().await?;
        Ok((revoked, families))
    }
}
