//! The apps room on PostgreSQL. Removing an app cuts its grants, token families and codes in
//! the same transaction.

use async_trait::async_trait;

use super::{PostgresStore, family_changes, is_unique_violation, record_changes};
use crate::error::{HubError, Result};
use crate::revocation::Revocation;
use crate::store::rows::apps::AppRow;
use crate::store::{App, AppStore};

/// `SELECT` of a whole app row, then `$rest` (a literal: the SQL stays static text).
macro_rules! select_apps {
    ($rest:literal) => {
        concat!(
            "SELECT client_id, name, confidential, secret_digest, redirect_uris, scopes, \
             created_at FROM apps ",
            $rest
        )
    };
}

#[async_trait]
impl AppStore for PostgresStore {
    async fn create_app(&self, app: &App) -> Result<()> {
        let uris = serde_json::to_string(&app.redirect_uris)
            .map_err(|e| HubError::Invalid(format!("redirect URIs: {e}")))?;
        sqlx::query(
            "INSERT INTO apps (client_id, name, confidential, secret_digest, redirect_uris, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&app.client_id)
        .bind(&app.name)
        .bind(app.confidential)
        .bind(&app.secret_digest)
        .bind(uris)
        .bind(app.scopes.join(" "))
        .bind(app.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                HubError::Conflict(format!("an app with client id '{}' already exists", app.client_id))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn app(&self, client_id: &str) -> Result<Option<App>> {
        let row: Option<AppRow> = sqlx::query_as(select_apps!("WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(App::try_from).transpose()
    }

    async fn apps(&self) -> Result<Vec<App>> {
        let rows: Vec<AppRow> = sqlx::query_as(select_apps!("ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(App::try_from).collect()
    }

    async fn set_app_redirect_uris(
        &self,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<bool> {
        let uris = serde_json::to_string(redirect_uris)
            .map_err(|e| HubError::Invalid(format!("redirect URIs: {e}")))?;
        let updated = sqlx::query("UPDATE apps SET redirect_uris = $1 WHERE client_id = $2")
            .bind(uris)
            .bind(client_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn remove_app(&self, client_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query("DELETE FROM apps WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE grants SET revoked_at = $1, revoked_by = 'app removed' WHERE app_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        let families: Vec<String> = sqlx::query_scalar(
            "UPDATE token_families SET revoked_at = $1, revoked_reason = 'app removed' WHERE app_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM authorization_codes WHERE app_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        let mut changes = vec![Revocation::AppRemoved {
            app_id: client_id.to_owned(),
        }];
        changes.extend(family_changes(&families));
        record_changes(&mut tx, &changes, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
