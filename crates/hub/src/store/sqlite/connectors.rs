//! The connectors room on SQLite: connectors, their registration on the link, and the data
//! sources they announce. Removing a connector cuts the grants on its sources and the sign-in
//! that created it in the same transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{SqliteStore, family_is_valid, is_unique_violation, record_change, revoke_family_on};
use crate::error::{HubError, Result};
use crate::revocation::Revocation;
use crate::secret::public_id;
use crate::store::connectors::{KnownSource, plan_announcement};
use crate::store::rows::connectors::{
    ClaimRow, ConnectorGrantRow, ConnectorRow, CredentialRow, SourceRow,
};
use crate::store::rows::grants::RevokedAppRow;
use crate::store::{
    Connector, ConnectorClaim, ConnectorGrant, ConnectorStore, DataSource, LinkAuthority,
    UserStore as _,
};

const CONNECTOR_SELECT: &str = "SELECT c.id, c.owner_id, u.username AS owner_name, c.name, \
     c.created_at FROM connectors c JOIN users u ON u.id = c.owner_id";

const SOURCE_SELECT: &str = "SELECT s.id, s.connector_id, c.name AS connector_name, s.name, \
     s.description, s.kind, s.capabilities, s.available \
     FROM data_sources s JOIN connectors c ON c.id = s.connector_id";

#[async_trait]
impl ConnectorStore for SqliteStore {
    async fn create_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        credential_digest: &[u8],
        now: i64,
    ) -> Result<Connector> {
        let owner = self
            .user(owner_id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("no user with id '{owner_id}'")))?;
        sqlx::query(
            "INSERT INTO connectors (id, owner_id, name, credential_digest, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(owner_id)
        .bind(name)
        .bind(credential_digest)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(Connector {
            id: id.to_owned(),
            owner_id: owner_id.to_owned(),
            owner_name: owner.username,
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn connectors(&self, owner_id: Option<&str>) -> Result<Vec<Connector>> {
        let sql = format!("{CONNECTOR_SELECT} WHERE ?1 IS NULL OR c.owner_id = ?1 ORDER BY c.name");
        let rows: Vec<ConnectorRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(Connector::from).collect())
    }

    async fn remove_connector(&self, id: &str, now: i64) -> Result<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let signed_in: Option<Option<String>> =
            sqlx::query_scalar("SELECT signed_in_family FROM connectors WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(signed_in) = signed_in else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoked_by = 'connector removed' \
             WHERE revoked_at IS NULL AND source_id IN (SELECT id FROM data_sources WHERE connector_id = ?)",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // Its data sources go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM connectors WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT OR IGNORE INTO removed_connectors (id, removed_at) VALUES (?, ?)")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        record_change(
            &mut tx,
            &Revocation::ConnectorRemoved {
                connector_id: id.to_owned(),
            },
            now,
        )
        .await?;
        let mut families = Vec::new();
        if let Some(family) = signed_in
            && revoke_family_on(&mut tx, &family, "connector removed", now).await?
        {
            families.push(family);
        }
        tx.commit().await?;
        Ok(Some(families))
    }

    async fn connector(&self, id: &str) -> Result<Option<Connector>> {
        let sql = format!("{CONNECTOR_SELECT} WHERE c.id = ?");
        let row: Option<ConnectorRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(Connector::from))
    }

    async fn connector_credential(&self, id: &str) -> Result<Option<(Connector, Vec<u8>)>> {
        let row: Option<CredentialRow> = sqlx::query_as(
            "SELECT c.id, c.owner_id, u.username AS owner_name, c.name, c.created_at, c.credential_digest \
             FROM connectors c JOIN users u ON u.id = c.owner_id WHERE c.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| (r.connector.into(), r.credential_digest)))
    }

    async fn claim_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        software: &str,
        authority: LinkAuthority<'_>,
        now: i64,
    ) -> Result<ConnectorClaim> {
        let mut tx = self.writer.begin().await?;
        let existing: Option<ClaimRow> = sqlx::query_as(
            "SELECT owner_id, credential_digest, signed_in_family FROM connectors WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let created = match (existing, authority) {
            (Some(row), _) if row.owner_id != owner_id => {
                return Ok(ConnectorClaim::OwnedByAnother);
            }
            (Some(row), LinkAuthority::SignIn { .. }) if !row.credential_digest.is_empty() => {
                return Ok(ConnectorClaim::NeedsCredential);
            }
            (Some(row), LinkAuthority::SignIn { family_id }) => {
                let creator = row.signed_in_family;
                let mine = creator.as_deref() == Some(family_id);
                if !mine {
                    // Signing a connector in again: a new sign-in takes over only when the one
                    // behind the connector can no longer obtain tokens (or, for a connector
                    // registered before sign-ins were recorded, there is none).
                    if let Some(creator) = &creator {
                        if family_is_valid(&mut tx, creator, now).await? {
                            return Ok(ConnectorClaim::OtherSignIn);
                        }
                        revoke_family_on(&mut tx, creator, "connector signed in again", now)
                            .await?;
                    }
                }
                sqlx::query(
                    "UPDATE connectors SET name = ?, software = ?, registered_at = ?, signed_in_family = ? WHERE id = ?",
                )
                .bind(name)
                .bind(software)
                .bind(now)
                .bind(family_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                false
            }
            (Some(_), LinkAuthority::Credential) => {
                sqlx::query(
                    "UPDATE connectors SET name = ?, software = ?, registered_at = ? WHERE id = ?",
                )
                .bind(name)
                .bind(software)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                false
            }
            (None, LinkAuthority::Credential) => return Ok(ConnectorClaim::Missing),
            (None, LinkAuthority::SignIn { family_id }) => {
                let removed: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM removed_connectors WHERE id = ?)",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if removed {
                    return Ok(ConnectorClaim::Removed);
                }
                sqlx::query(
                    "INSERT INTO connectors (id, owner_id, name, credential_digest, created_at, software, registered_at, signed_in_family) \
                     VALUES (?1, ?2, ?3, X'', ?4, ?5, ?4, ?6)",
                )
                .bind(id)
                .bind(owner_id)
                .bind(name)
                .bind(now)
                .bind(software)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
                true
            }
        };
        let sql = format!("{CONNECTOR_SELECT} WHERE c.id = ?");
        let row: ConnectorRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let connector = Connector::from(row);
        Ok(if created {
            ConnectorClaim::Created(connector)
        } else {
            ConnectorClaim::Updated(connector)
        })
    }

    async fn announce_sources(
        &self,
        connector_id: &str,
        sources: &[uplink_model::DataSourceDescriptor],
        keys: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<Vec<DataSource>> {
        let mut tx = self.writer.begin().await?;
        let connector_name: Option<String> =
            sqlx::query_scalar("SELECT name FROM connectors WHERE id = ?")
                .bind(connector_id)
                .fetch_optional(&mut *tx)
                .await?;
        let connector_name = connector_name
            .ok_or_else(|| HubError::NotFound(format!("no connector with id '{connector_id}'")))?;
        sqlx::query("UPDATE data_sources SET available = 0 WHERE connector_id = ?")
            .bind(connector_id)
            .execute(&mut *tx)
            .await?;
        let known: Vec<KnownSource> =
            sqlx::query_as("SELECT id, name, source_key FROM data_sources WHERE connector_id = ?")
                .bind(connector_id)
                .fetch_all(&mut *tx)
                .await?;
        let plan = plan_announcement(&known, sources, keys);
        // Names are unique per connector at every step: renamed rows pass through a name no
        // source can have (a leading space) before taking their new one.
        for (id, _) in &plan.renames {
            sqlx::query("UPDATE data_sources SET name = ' ' || id WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (id, name) in &plan.renames {
            sqlx::query("UPDATE data_sources SET name = ? WHERE id = ?")
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let mut announced = Vec::with_capacity(sources.len());
        for (source, target) in sources.iter().zip(&plan.targets) {
            let capabilities = serde_json::to_string(&source.capabilities).map_err(|e| {
                HubError::Invalid(format!("capabilities of '{}': {e}", source.name))
            })?;
            let key = keys.get(&source.name).map(String::as_str);
            let id = match target {
                Some(id) => {
                    sqlx::query(
                        "UPDATE data_sources SET description = ?, kind = ?, capabilities = ?, \
                         available = 1, announced_at = ?, source_key = COALESCE(?, source_key) \
                         WHERE id = ?",
                    )
                    .bind(&source.description)
                    .bind(&source.kind)
                    .bind(&capabilities)
                    .bind(now)
                    .bind(key)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    id.clone()
                }
                None => {
                    let id = public_id("src");
                    sqlx::query(
                        "INSERT INTO data_sources (id, connector_id, name, description, created_at, kind, capabilities, available, announced_at, source_key) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?5, ?8)",
                    )
                    .bind(&id)
                    .bind(connector_id)
                    .bind(&source.name)
                    .bind(&source.description)
                    .bind(now)
                    .bind(&source.kind)
                    .bind(&capabilities)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            announced.push(DataSource {
                id,
                connector_id: connector_id.to_owned(),
                connector_name: connector_name.clone(),
                name: source.name.clone(),
                description: source.description.clone(),
                kind: source.kind.clone(),
                capabilities: Some(source.capabilities.clone()),
                available: true,
            });
        }
        tx.commit().await?;
        Ok(announced)
    }

    async fn connector_grants(&self, connector_id: &str) -> Result<Vec<ConnectorGrant>> {
        let rows: Vec<ConnectorGrantRow> = sqlx::query_as(
            "SELECT g.app_id, a.name AS app_name, g.user_id, g.source_id, s.name AS source_name, \
             g.scopes, g.granted_at, g.last_used_at \
             FROM grants g JOIN apps a ON a.client_id = g.app_id \
             JOIN data_sources s ON s.id = g.source_id \
             WHERE s.connector_id = ? AND g.revoked_at IS NULL ORDER BY s.name, a.name, g.app_id",
        )
        .bind(connector_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(ConnectorGrant::from).collect())
    }

    async fn connector_revoked_apps(
        &self,
        connector_id: &str,
    ) -> Result<Vec<crate::store::RevokedApp>> {
        let rows: Vec<RevokedAppRow> = sqlx::query_as(
            "SELECT g.app_id, a.name AS app_name, MAX(g.revoked_at) AS revoked_at \
             FROM grants g JOIN apps a ON a.client_id = g.app_id \
             JOIN data_sources s ON s.id = g.source_id \
             WHERE s.connector_id = ?1 AND g.revoked_at IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM grants l JOIN data_sources ls ON ls.id = l.source_id \
              WHERE ls.connector_id = ?1 AND l.app_id = g.app_id AND l.revoked_at IS NULL) \
             GROUP BY g.app_id, a.name ORDER BY MAX(g.revoked_at) DESC, a.name",
        )
        .bind(connector_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(crate::store::RevokedApp::from)
            .collect())
    }

    async fn add_source(
        &self,
        connector_id: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<DataSource> {
        let connector_name: Option<String> =
            sqlx::query_scalar("SELECT name FROM connectors WHERE id = ?")
                .bind(connector_id)
                .fetch_optional(&self.reader)
                .await?;
        let connector_name = connector_name
            .ok_or_else(|| HubError::NotFound(format!("no connector with id '{connector_id}'")))?;
        let source = DataSource {
            id: public_id("src"),
            connector_id: connector_id.to_owned(),
            connector_name,
            name: name.to_owned(),
            description: description.to_owned(),
            kind: String::new(),
            capabilities: None,
            available: true,
        };
        sqlx::query(
            "INSERT INTO data_sources (id, connector_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&source.id)
        .bind(connector_id)
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                HubError::Conflict(format!(
                    "connector '{connector_id}' already has a data source named '{name}'"
                ))
            } else {
                e.into()
            }
        })?;
        Ok(source)
    }

    async fn sources_owned_by(&self, user_id: &str) -> Result<Vec<DataSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE c.owner_id = ? ORDER BY c.name, s.name");
        let rows: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(DataSource::from).collect())
    }

    async fn sources(&self) -> Result<Vec<DataSource>> {
        let sql = format!("{SOURCE_SELECT} ORDER BY c.name, s.name");
        let rows: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(DataSource::from).collect())
    }

    async fn source(&self, id: &str) -> Result<Option<DataSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE s.id = ?");
        let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(DataSource::from))
    }
}
