//! [`Store`] on one SQLite file: WAL journal, one writer connection (SQLite serialises writers
//! anyway; one connection makes that explicit and avoids busy errors), several readers.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    ActiveGrant, App, AuditEvent, AuthorizationRequest, ChangeBatch, CodeGrant, CodeRedemption,
    Connector, ConnectorClaim, ConnectorGrant, DataSource, DeviceAuthorization, DevicePoll,
    GrantView, LinkAuthority, LoginSession, Rotation, SignInView, Store, TokenFamily,
    TokenKeyRecord, User, split_scopes,
};
use crate::error::{HubError, Result};
use crate::revocation::Revocation;
use crate::secret::public_id;

/// The SQLite store of one hub node.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// How often a SQLite store looks for changes committed by other processes.
pub const CHANGE_POLL: Duration = Duration::from_millis(100);

/// Appends `change` to the change feed, inside the caller's transaction.
async fn record_change(
    conn: &mut sqlx::SqliteConnection,
    change: &Revocation,
    now: i64,
) -> Result<()> {
    let json = serde_json::to_string(change)
        .map_err(|e| HubError::Invalid(format!("change not recorded: {e}")))?;
    sqlx::query("INSERT INTO changes (at, change) VALUES (?, ?)")
        .bind(now)
        .bind(json)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a revoked family in the change feed, inside the caller's transaction.
async fn record_families(
    conn: &mut sqlx::SqliteConnection,
    families: &[String],
    now: i64,
) -> Result<()> {
    for family_id in families {
        record_change(
            &mut *conn,
            &Revocation::TokenFamily {
                family_id: family_id.clone(),
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// Revokes one token family; a family already revoked keeps its first reason and time.
/// Returns whether this call revoked it (and then records the change).
async fn revoke_family_on(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE token_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 1 {
        record_families(conn, &[id.to_owned()], now).await?;
    }
    Ok(n == 1)
}

/// Whether a family can still obtain tokens: not revoked, with an unspent, unexpired refresh
/// token.
async fn family_is_valid(conn: &mut sqlx::SqliteConnection, id: &str, now: i64) -> Result<bool> {
    let valid: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM token_families f WHERE f.id = ?1 AND f.revoked_at IS NULL \
         AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id AND r.used_at IS NULL AND r.expires_at > ?2))",
    )
    .bind(id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(valid)
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let base = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No ping before each use: a local file connection does not go stale, and the ping
        // would double the cost of every grant check.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    /// The file's pools are closed; pending writes are flushed.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

type AppRow = (String, String, bool, Option<Vec<u8>>, String, String, i64);

fn app_from_row(row: AppRow) -> Result<App> {
    let redirect_uris: Vec<String> = serde_json::from_str(&row.4)
        .map_err(|e| HubError::Invalid(format!("stored redirect URIs of app '{}': {e}", row.0)))?;
    Ok(App {
        client_id: row.0,
        name: row.1,
        confidential: row.2,
        secret_digest: row.3,
        redirect_uris,
        scopes: split_scopes(&row.5),
        created_at: row.6,
    })
}

type RequestRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

type FamilyRow = (String, String, String, String, Option<i64>);

fn family_from_row(row: FamilyRow) -> TokenFamily {
    TokenFamily {
        id: row.0,
        user_id: row.1,
        app_id: row.2,
        scopes: split_scopes(&row.3),
        revoked_at: row.4,
    }
}

type SourceRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
);

fn source_from_row(row: SourceRow) -> DataSource {
    let capabilities = row.6.and_then(|json| {
        serde_json::from_str(&json)
            .inspect_err(|e| {
                tracing::warn!(source = %row.0, error = %e, "stored capabilities unreadable");
            })
            .ok()
    });
    DataSource {
        id: row.0,
        connector_id: row.1,
        connector_name: row.2,
        name: row.3,
        description: row.4,
        kind: row.5,
        capabilities,
        available: row.7,
    }
}

const SOURCE_SELECT: &str = "SELECT s.id, s.connector_id, c.name, s.name, s.description, \
     s.kind, s.capabilities, s.available \
     FROM data_sources s JOIN connectors c ON c.id = s.connector_id";

type ConnectorRow = (String, String, String, String, i64);

fn connector_from_row((id, owner_id, owner_name, name, created_at): ConnectorRow) -> Connector {
    Connector {
        id,
        owner_id,
        owner_name,
        name,
        created_at,
    }
}

const CONNECTOR_SELECT: &str = "SELECT c.id, c.owner_id, u.username, c.name, c.created_at \
     FROM connectors c JOIN users u ON u.id = c.owner_id";

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User> {
        let user = User {
            id: public_id("usr"),
            username: username.to_owned(),
            created_at: crate::clock::now(),
        };
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(password_hash)
        .bind(user.created_at)
        .execute(&self.writer)
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
        let row: Option<(String, String, i64, String)> = sqlx::query_as(
            "SELECT id, username, created_at, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(id, username, created_at, hash)| {
            (
                User {
                    id,
                    username,
                    created_at,
                },
                hash,
            )
        }))
    }

    async fn user(&self, id: &str) -> Result<Option<User>> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT id, username, created_at FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|(id, username, created_at)| User {
            id,
            username,
            created_at,
        }))
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT id, username, created_at FROM users ORDER BY username")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username, created_at)| User {
                id,
                username,
                created_at,
            })
            .collect())
    }

    async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE users SET password_hash = ? WHERE username = ? RETURNING id",
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
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let families: Vec<String> = sqlx::query_scalar(
            "UPDATE token_families SET revoked_at = ?, revoked_reason = 'password changed' \
             WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        record_families(&mut tx, &families, now).await?;
        tx.commit().await?;
        Ok(Some(families))
    }

    async fn create_app(&self, app: &App) -> Result<()> {
        let uris = serde_json::to_string(&app.redirect_uris)
            .map_err(|e| HubError::Invalid(format!("redirect URIs: {e}")))?;
        sqlx::query(
            "INSERT INTO apps (client_id, name, confidential, secret_digest, redirect_uris, scopes, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app.client_id)
        .bind(&app.name)
        .bind(app.confidential)
        .bind(&app.secret_digest)
        .bind(uris)
        .bind(app.scopes.join(" "))
        .bind(app.created_at)
        .execute(&self.writer)
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
        let row: Option<AppRow> = sqlx::query_as(
            "SELECT client_id, name, confidential, secret_digest, redirect_uris, scopes, created_at \
             FROM apps WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(app_from_row).transpose()
    }

    async fn apps(&self) -> Result<Vec<App>> {
        let rows: Vec<AppRow> = sqlx::query_as(
            "SELECT client_id, name, confidential, secret_digest, redirect_uris, scopes, created_at \
             FROM apps ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(app_from_row).collect()
    }

    async fn set_app_redirect_uris(
        &self,
        client_id: &str,
        redirect_uris: &[String],
    ) -> Result<bool> {
        let uris = serde_json::to_string(redirect_uris)
            .map_err(|e| HubError::Invalid(format!("redirect URIs: {e}")))?;
        let updated = sqlx::query("UPDATE apps SET redirect_uris = ? WHERE client_id = ?")
            .bind(uris)
            .bind(client_id)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(updated > 0)
    }

    async fn remove_app(&self, client_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let removed = sqlx::query("DELETE FROM apps WHERE client_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE grants SET revoked_at = ?, revoked_by = 'app removed' WHERE app_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        let families: Vec<String> = sqlx::query_scalar(
            "UPDATE token_families SET revoked_at = ?, revoked_reason = 'app removed' WHERE app_id = ? AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM authorization_codes WHERE app_id = ?")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        record_change(
            &mut tx,
            &Revocation::AppRemoved {
                app_id: client_id.to_owned(),
            },
            now,
        )
        .await?;
        record_families(&mut tx, &families, now).await?;
        tx.commit().await?;
        Ok(true)
    }

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
        Ok(rows.into_iter().map(connector_from_row).collect())
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
        Ok(row.map(connector_from_row))
    }

    async fn connector_credential(&self, id: &str) -> Result<Option<(Connector, Vec<u8>)>> {
        let row: Option<(String, String, String, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT c.id, c.owner_id, u.username, c.name, c.created_at, c.credential_digest \
             FROM connectors c JOIN users u ON u.id = c.owner_id WHERE c.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| (connector_from_row((r.0, r.1, r.2, r.3, r.4)), r.5)))
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
        let existing: Option<(String, Vec<u8>, Option<String>)> = sqlx::query_as(
            "SELECT owner_id, credential_digest, signed_in_family FROM connectors WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let created = match (existing, authority) {
            (Some((owner, _, _)), _) if owner != owner_id => {
                return Ok(ConnectorClaim::OwnedByAnother);
            }
            (Some((_, credential, _)), LinkAuthority::SignIn { .. }) if !credential.is_empty() => {
                return Ok(ConnectorClaim::NeedsCredential);
            }
            (Some((_, _, creator)), LinkAuthority::SignIn { family_id }) => {
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
        let connector = connector_from_row(row);
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
        let mut announced = Vec::with_capacity(sources.len());
        for source in sources {
            let capabilities = serde_json::to_string(&source.capabilities).map_err(|e| {
                HubError::Invalid(format!("capabilities of '{}': {e}", source.name))
            })?;
            let id: String = sqlx::query_scalar(
                "INSERT INTO data_sources (id, connector_id, name, description, created_at, kind, capabilities, available, announced_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?5) \
                 ON CONFLICT (connector_id, name) DO UPDATE SET description = excluded.description, \
                 kind = excluded.kind, capabilities = excluded.capabilities, available = 1, \
                 announced_at = excluded.announced_at \
                 RETURNING id",
            )
            .bind(public_id("src"))
            .bind(connector_id)
            .bind(&source.name)
            .bind(&source.description)
            .bind(now)
            .bind(&source.kind)
            .bind(capabilities)
            .fetch_one(&mut *tx)
            .await?;
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
        let rows: Vec<(String, String, String, String, String, String, i64, Option<i64>)> =
            sqlx::query_as(
                "SELECT g.app_id, a.name, g.user_id, g.source_id, s.name, g.scopes, g.granted_at, g.last_used_at \
                 FROM grants g JOIN apps a ON a.client_id = g.app_id \
                 JOIN data_sources s ON s.id = g.source_id \
                 WHERE s.connector_id = ? AND g.revoked_at IS NULL ORDER BY s.name, a.name, g.app_id",
            )
            .bind(connector_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConnectorGrant {
                app_id: r.0,
                app_name: r.1,
                user_id: r.2,
                source_id: r.3,
                source_name: r.4,
                scopes: split_scopes(&r.5),
                granted_at: r.6,
                last_used_at: r.7,
            })
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
        Ok(rows.into_iter().map(source_from_row).collect())
    }

    async fn sources(&self) -> Result<Vec<DataSource>> {
        let sql = format!("{SOURCE_SELECT} ORDER BY c.name, s.name");
        let rows: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(source_from_row).collect())
    }

    async fn source(&self, id: &str) -> Result<Option<DataSource>> {
        let sql = format!("{SOURCE_SELECT} WHERE s.id = ?");
        let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(source_from_row))
    }

    async fn grant(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        scopes: &[String],
        now: i64,
    ) -> Result<()> {
        let scopes = scopes.join(" ");
        let mut tx = self.writer.begin().await?;
        for source_id in source_ids {
            sqlx::query(
                "INSERT INTO grants (user_id, app_id, source_id, scopes, granted_at, granted_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?1) \
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
        record_change(
            &mut tx,
            &Revocation::Granted {
                user_id: user_id.to_owned(),
                app_id: app_id.to_owned(),
                source_ids: source_ids.to_vec(),
            },
            now,
        )
        .await?;
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
        let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT g.id, g.scopes, g.last_used_at FROM grants g \
             WHERE g.user_id = ? AND g.app_id = ? AND g.source_id = ? AND g.revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = ? AND f.revoked_at IS NULL)",
        )
        .bind(user_id)
        .bind(app_id)
        .bind(source_id)
        .bind(family_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(id, scopes, last_used_at)| ActiveGrant {
            id,
            scopes: split_scopes(&scopes),
            last_used_at,
        }))
    }

    async fn touch_grant(&self, grant_id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE grants SET last_used_at = ? WHERE id = ?")
            .bind(now)
            .bind(grant_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn grants_of(&self, user_id: &str) -> Result<Vec<GrantView>> {
        let rows: Vec<(String, String, String, String, String, String, i64, Option<i64>)> =
            sqlx::query_as(
                "SELECT g.app_id, a.name, g.source_id, s.name, c.name, g.scopes, g.granted_at, g.last_used_at \
                 FROM grants g JOIN apps a ON a.client_id = g.app_id \
                 JOIN data_sources s ON s.id = g.source_id JOIN connectors c ON c.id = s.connector_id \
                 WHERE g.user_id = ? AND g.revoked_at IS NULL ORDER BY a.name, c.name, s.name",
            )
            .bind(user_id)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| GrantView {
                app_id: r.0,
                app_name: r.1,
                source_id: r.2,
                source_name: r.3,
                connector_name: r.4,
                scopes: split_scopes(&r.5),
                granted_at: r.6,
                last_used_at: r.7,
            })
            .collect())
    }

    async fn revoke(
        &self,
        user_id: &str,
        app_id: &str,
        source_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, Vec<String>)> {
        let mut tx = self.writer.begin().await?;
        let revoked = sqlx::query(
            "UPDATE grants SET revoked_at = ?1, revoked_by = ?2 \
             WHERE user_id = ?2 AND app_id = ?3 AND (?4 IS NULL OR source_id = ?4) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(app_id)
        .bind(source_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM grants WHERE user_id = ? AND app_id = ? AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(app_id)
        .fetch_one(&mut *tx)
        .await?;
        record_change(
            &mut tx,
            &Revocation::Grant {
                user_id: user_id.to_owned(),
                app_id: app_id.to_owned(),
                source_id: source_id.map(str::to_owned),
            },
            now,
        )
        .await?;
        let mut families = Vec::new();
        if left == 0 {
            // Without a grant the app must not be able to mint new access tokens quietly.
            families = sqlx::query_scalar(
                "UPDATE token_families SET revoked_at = ?, revoked_reason = 'all grants revoked' \
                 WHERE user_id = ? AND app_id = ? AND revoked_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(user_id)
            .bind(app_id)
            .fetch_all(&mut *tx)
            .await?;
            record_families(&mut tx, &families, now).await?;
        }
        tx.commit().await?;
        Ok((revoked, families))
    }

    async fn create_authorization_request(&self, r: &AuthorizationRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_requests (id, app_id, redirect_uri, scopes, state, code_challenge, \
             user_id, created_at, expires_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.app_id)
        .bind(&r.redirect_uri)
        .bind(r.scopes.join(" "))
        .bind(&r.state)
        .bind(&r.code_challenge)
        .bind(&r.user_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.finished_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn authorization_request(&self, id: &str) -> Result<Option<AuthorizationRequest>> {
        let row: Option<RequestRow> = sqlx::query_as(
            "SELECT id, app_id, redirect_uri, scopes, state, code_challenge, user_id, \
             created_at, expires_at, finished_at FROM authorization_requests WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| AuthorizationRequest {
            id: r.0,
            app_id: r.1,
            redirect_uri: r.2,
            scopes: split_scopes(&r.3),
            state: r.4,
            code_challenge: r.5,
            user_id: r.6,
            created_at: r.7,
            expires_at: r.8,
            finished_at: r.9,
        }))
    }

    async fn bind_authorization_request(&self, id: &str, user_id: &str) -> Result<bool> {
        let bound: Option<String> = sqlx::query_scalar(
            "UPDATE authorization_requests SET user_id = COALESCE(user_id, ?1) WHERE id = ?2 RETURNING user_id",
        )
        .bind(user_id)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(bound.as_deref() == Some(user_id))
    }

    async fn finish_authorization_request(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE authorization_requests SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn create_code(&self, digest: &[u8], code: &CodeGrant) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (digest, app_id, user_id, redirect_uri, scopes, code_challenge, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(&code.app_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(code.scopes.join(" "))
        .bind(&code.code_challenge)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn redeem_code(&self, digest: &[u8], now: i64) -> Result<CodeRedemption> {
        let family_id = public_id("fam");
        let mut tx = self.writer.begin().await?;
        // The UPDATE is the race's referee: only one redemption finds `used_at` empty.
        let row: Option<(String, String, String, String, String, i64, i64)> = sqlx::query_as(
            "UPDATE authorization_codes SET used_at = ?1, family_id = ?2 \
             WHERE digest = ?3 AND used_at IS NULL \
             RETURNING app_id, user_id, redirect_uri, scopes, code_challenge, created_at, expires_at",
        )
        .bind(now)
        .bind(&family_id)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match row {
            Some(r) => {
                sqlx::query(
                    "INSERT INTO token_families (id, user_id, app_id, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&family_id)
                .bind(&r.1)
                .bind(&r.0)
                .bind(&r.3)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                CodeRedemption::Fresh {
                    grant: CodeGrant {
                        app_id: r.0,
                        user_id: r.1,
                        redirect_uri: r.2,
                        scopes: split_scopes(&r.3),
                        code_challenge: r.4,
                        created_at: r.5,
                        expires_at: r.6,
                    },
                    family_id,
                }
            }
            None => {
                let used: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT family_id FROM authorization_codes WHERE digest = ?",
                )
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
                match used {
                    Some(first) => {
                        // RFC 6749 §4.1.2: a replayed code revokes what its first use issued.
                        if let Some(first) = first {
                            revoke_family_on(&mut tx, &first, "code replayed", now).await?;
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
        Ok(row.map(family_from_row))
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
        Ok(row.map(family_from_row))
    }

    async fn rotate_refresh_token(
        &self,
        old_digest: &[u8],
        new_digest: &[u8],
        now: i64,
        new_expires_at: i64,
    ) -> Result<Rotation> {
        let mut tx = self.writer.begin().await?;
        let spent: Option<(String, i64)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = ?1 WHERE digest = ?2 AND used_at IS NULL \
             RETURNING family_id, expires_at",
        )
        .bind(now)
        .bind(old_digest)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match spent {
            Some((family_id, expires_at)) => {
                let family: Option<FamilyRow> = sqlx::query_as(
                    "SELECT id, user_id, app_id, scopes, revoked_at FROM token_families WHERE id = ?",
                )
                .bind(&family_id)
                .fetch_optional(&mut *tx)
                .await?;
                match family.map(family_from_row) {
                    Some(family) if family.revoked_at.is_none() && expires_at > now => {
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
        Ok(row.map(family_from_row))
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
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT f.id, f.app_id, a.name, \
             (SELECT c.name FROM connectors c WHERE c.signed_in_family = f.id ORDER BY c.name LIMIT 1), \
             f.scopes, f.created_at, \
             (SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.family_id = f.id), \
             (SELECT r.client_address FROM refresh_tokens r WHERE r.family_id = f.id \
              ORDER BY r.created_at DESC, r.rowid DESC LIMIT 1) \
             FROM token_families f LEFT JOIN apps a ON a.client_id = f.app_id \
             WHERE f.user_id = ?1 AND f.revoked_at IS NULL AND EXISTS (SELECT 1 FROM refresh_tokens r \
             WHERE r.family_id = f.id AND r.used_at IS NULL AND r.expires_at > ?2) \
             ORDER BY f.created_at DESC, f.id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SignInView {
                family_id: r.0,
                app_id: r.1,
                app_name: r.2,
                connector_name: r.3,
                scopes: split_scopes(&r.4),
                signed_in_at: r.5,
                last_used_at: r.6.unwrap_or(r.5),
                last_address: r.7,
            })
            .collect())
    }

    async fn create_device_authorization(
        &self,
        device_digest: &[u8],
        user_code_digest: &[u8],
        r: &DeviceAuthorization,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_authorizations (device_digest, user_code_digest, app_id, scopes, \
             created_at, expires_at, interval_secs, requested_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(device_digest)
        .bind(user_code_digest)
        .bind(&r.app_id)
        .bind(r.scopes.join(" "))
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.interval_secs)
        .bind(&r.requested_from)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn pending_device_authorization(
        &self,
        user_code_digest: &[u8],
        now: i64,
    ) -> Result<Option<DeviceAuthorization>> {
        let row: Option<(String, String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT app_id, scopes, created_at, expires_at, interval_secs, requested_from FROM device_authorizations \
             WHERE user_code_digest = ? AND expires_at > ? AND approved_at IS NULL AND denied_at IS NULL",
        )
        .bind(user_code_digest)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| DeviceAuthorization {
            app_id: r.0,
            scopes: split_scopes(&r.1),
            created_at: r.2,
            expires_at: r.3,
            interval_secs: r.4,
            requested_from: r.5,
        }))
    }

    async fn decide_device_authorization(
        &self,
        user_code_digest: &[u8],
        user_id: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE device_authorizations SET user_id = ?1, \
             approved_at = CASE WHEN ?1 IS NULL THEN NULL ELSE ?2 END, \
             denied_at = CASE WHEN ?1 IS NULL THEN ?2 ELSE NULL END \
             WHERE user_code_digest = ?3 AND expires_at > ?2 AND approved_at IS NULL AND denied_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(user_code_digest)
        .execute(&self.writer)
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
        let mut tx = self.writer.begin().await?;
        // The store has one writer connection, so this read-then-write transaction cannot
        // interleave with another poll of the same code.
        let row: Option<(Option<i64>, i64, i64, Option<String>, String, Option<i64>, Option<i64>, Option<i64>)> =
            sqlx::query_as(
                "SELECT last_polled_at, expires_at, interval_secs, user_id, scopes, approved_at, denied_at, \
                 redeemed_at FROM device_authorizations WHERE device_digest = ? AND app_id = ?",
            )
            .bind(device_digest)
            .bind(app_id)
            .fetch_optional(&mut *tx)
            .await?;
        sqlx::query("UPDATE device_authorizations SET last_polled_at = ? WHERE device_digest = ?")
            .bind(now)
            .bind(device_digest)
            .execute(&mut *tx)
            .await?;
        let Some((last, expires_at, interval, user_id, scopes, approved, denied, redeemed)) = row
        else {
            return Ok(DevicePoll::Invalid);
        };
        let outcome = if redeemed.is_some() || expires_at <= now {
            DevicePoll::Invalid
        } else if denied.is_some() {
            DevicePoll::Denied
        } else if let (Some(_), Some(user_id)) = (approved, user_id) {
            let family_id = public_id("fam");
            sqlx::query("UPDATE device_authorizations SET redeemed_at = ? WHERE device_digest = ?")
                .bind(now)
                .bind(device_digest)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO token_families (id, user_id, app_id, scopes, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&family_id)
            .bind(&user_id)
            .bind(app_id)
            .bind(&scopes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            DevicePoll::Approved(TokenFamily {
                id: family_id,
                user_id,
                app_id: app_id.to_owned(),
                scopes: split_scopes(&scopes),
                revoked_at: None,
            })
        } else {
            DevicePoll::Pending {
                too_fast: last.is_some_and(|t| now - t < interval),
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn create_session(&self, digest: &[u8], session: &LoginSession, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(digest)
        .bind(&session.user_id)
        .bind(now)
        .bind(session.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn session(&self, digest: &[u8], now: i64) -> Result<Option<LoginSession>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT user_id, expires_at FROM sessions WHERE digest = ? AND expires_at > ?",
        )
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(user_id, expires_at)| LoginSession {
            user_id,
            expires_at,
        }))
    }

    async fn delete_session(&self, digest: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE digest = ?")
            .bind(digest)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>> {
        let rows: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(
            "SELECT id, key_bytes, created_at FROM token_keys ORDER BY created_at DESC, rowid DESC",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, key_bytes, created_at)| TokenKeyRecord {
                id,
                key_bytes,
                created_at,
            })
            .collect())
    }

    async fn add_token_key(&self, key: &TokenKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO token_keys (id, key_bytes, created_at) VALUES (?, ?, ?)")
            .bind(&key.id)
            .bind(&key.key_bytes)
            .bind(key.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn forget_token_keys(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        // Deleted rows are zeroed in place, the file is rebuilt without free pages that might
        // still hold old bytes, and the WAL (which held the pages before) is emptied.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM token_keys")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn change_cursor(&self) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
            .fetch_one(&self.reader)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    async fn changes_after(&self, after: i64) -> Result<ChangeBatch> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, change FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000")
                .bind(after)
                .fetch_all(&self.reader)
                .await?;
        let cursor = rows.last().map_or(after, |(seq, _)| *seq);
        let changes = rows
            .into_iter()
            .filter_map(|(seq, json)| {
                serde_json::from_str(&json)
                    .inspect_err(|e| {
                        // Written by a newer hub: skipped; requests still check the store.
                        tracing::warn!(seq, error = %e, "a change in the feed was not understood");
                    })
                    .ok()
            })
            .collect();
        Ok(ChangeBatch { cursor, changes })
    }

    async fn wait_for_changes(&self, after: i64) -> Result<()> {
        while self.change_cursor().await? <= after {
            tokio::time::sleep(CHANGE_POLL).await;
        }
        Ok(())
    }

    async fn prune_changes(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM changes WHERE at < ?")
            .bind(before)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    async fn audit(&self, e: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, user_id, app_id, source_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(&e.user_id)
        .bind(&e.app_id)
        .bind(&e.source_id)
        .bind(&e.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows: Vec<(i64, String, Option<String>, Option<String>, Option<String>, String)> =
            sqlx::query_as(
                "SELECT at, event, user_id, app_id, source_id, detail FROM audit_log ORDER BY id DESC LIMIT ?",
            )
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                at: r.0,
                event: r.1,
                user_id: r.2,
                app_id: r.3,
                source_id: r.4,
                detail: r.5,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
        (dir, store)
    }

    async fn seeded(store: &SqliteStore) -> (User, DataSource, DataSource) {
        let user = store.create_user("ada", "hash").await.unwrap();
        store
            .create_connector("con_1", &user.id, "Plant A", b"digest", 1)
            .await
            .unwrap();
        let a = store.add_source("con_1", "historian", "", 1).await.unwrap();
        let b = store.add_source("con_1", "lab", "", 1).await.unwrap();
        store
            .create_app(&App {
                client_id: "app1".into(),
                name: "Dashboard".into(),
                confidential: false,
                secret_digest: None,
                redirect_uris: vec!["https://app.example/cb".into()],
                scopes: vec!["data.read".into()],
                created_at: 1,
            })
            .await
            .unwrap();
        (user, a, b)
    }

    fn code(user: &User) -> CodeGrant {
        CodeGrant {
            app_id: "app1".into(),
            user_id: user.id.clone(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["data.read".into()],
            code_challenge: "c".into(),
            created_at: 1,
            expires_at: 100,
        }
    }

    #[tokio::test]
    async fn usernames_are_unique_regardless_of_case() {
        let (_dir, store) = store().await;
        store.create_user("Ada", "h").await.unwrap();
        let err = store.create_user("ada", "h").await.unwrap_err();
        assert_eq!(err.code(), "conflict");
        assert!(store.user_credentials("ADA").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_code_is_spent_once_and_its_replay_revokes_the_family() {
        let (_dir, store) = store().await;
        let (user, _, _) = seeded(&store).await;
        store.create_code(b"d1", &code(&user)).await.unwrap();
        let CodeRedemption::Fresh { family_id, .. } = store.redeem_code(b"d1", 5).await.unwrap()
        else {
            panic!("first redemption must succeed");
        };
        assert!(
            store
                .family(&family_id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        );
        assert_eq!(
            store.redeem_code(b"d1", 6).await.unwrap(),
            CodeRedemption::Replayed
        );
        assert_eq!(
            store.family(&family_id).await.unwrap().unwrap().revoked_at,
            Some(6)
        );
        assert_eq!(
            store.redeem_code(b"nope", 6).await.unwrap(),
            CodeRedemption::Unknown
        );
    }

    #[tokio::test]
    async fn grants_are_checked_per_source_and_family_and_revoke_is_immediate() {
        let (_dir, store) = store().await;
        let (user, a, b) = seeded(&store).await;
        store.create_code(b"d1", &code(&user)).await.unwrap();
        let CodeRedemption::Fresh { family_id, .. } = store.redeem_code(b"d1", 5).await.unwrap()
        else {
            panic!()
        };
        store
            .grant(
                &user.id,
                "app1",
                std::slice::from_ref(&a.id),
                &["data.read".into()],
                5,
            )
            .await
            .unwrap();
        assert!(
            store
                .active_grant(&user.id, "app1", &a.id, &family_id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .active_grant(&user.id, "app1", &b.id, &family_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .active_grant(&user.id, "app1", &a.id, "fam_other")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .revoke(&user.id, "app1", Some(&a.id), 9)
                .await
                .unwrap(),
            (1, vec![family_id.clone()]),
            "the last grant gone, the family goes and is named"
        );
        assert!(
            store
                .active_grant(&user.id, "app1", &a.id, &family_id)
                .await
                .unwrap()
                .is_none()
        );
        // The last grant gone, the app's token families are gone too.
        assert!(
            store
                .family(&family_id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
    }

    #[tokio::test]
    async fn refresh_reuse_revokes_the_family() {
        let (_dir, store) = store().await;
        let (user, _, _) = seeded(&store).await;
        store.create_code(b"d1", &code(&user)).await.unwrap();
        let CodeRedemption::Fresh { family_id, .. } = store.redeem_code(b"d1", 5).await.unwrap()
        else {
            panic!()
        };
        store
            .create_refresh_token(b"r1", &family_id, 5, 1000)
            .await
            .unwrap();
        assert!(matches!(
            store
                .rotate_refresh_token(b"r1", b"r2", 6, 1000)
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
        assert_eq!(
            store
                .rotate_refresh_token(b"r1", b"r3", 7, 1000)
                .await
                .unwrap(),
            Rotation::Reused
        );
        assert_eq!(
            store
                .rotate_refresh_token(b"r2", b"r4", 8, 1000)
                .await
                .unwrap(),
            Rotation::Invalid
        );
    }

    #[tokio::test]
    async fn removing_an_app_revokes_its_grants() {
        let (_dir, store) = store().await;
        let (user, a, _) = seeded(&store).await;
        store
            .grant(
                &user.id,
                "app1",
                std::slice::from_ref(&a.id),
                &["data.read".into()],
                5,
            )
            .await
            .unwrap();
        assert_eq!(store.grants_of(&user.id).await.unwrap().len(), 1);
        assert!(store.remove_app("app1", 6).await.unwrap());
        assert!(store.grants_of(&user.id).await.unwrap().is_empty());
        assert!(!store.remove_app("app1", 6).await.unwrap());
    }

    fn descriptor(name: &str, kind: &str) -> uplink_model::DataSourceDescriptor {
        uplink_model::DataSourceDescriptor {
            name: name.into(),
            kind: kind.into(),
            description: format!("{name} source"),
            capabilities: uplink_model::Capabilities::all_from_raw(),
        }
    }

    #[tokio::test]
    async fn a_registering_connector_claims_only_its_own_id() {
        let (_dir, store) = store().await;
        let (ada, _, _) = seeded(&store).await;
        let bob = store.create_user("bob", "h").await.unwrap();
        let claim = |id: &'static str, owner: String, authority: LinkAuthority<'static>| {
            let store = store.clone();
            async move {
                store
                    .claim_connector(id, &owner, "Site PC", "uplink 0.1", authority, 3)
                    .await
                    .unwrap()
            }
        };
        let mine = LinkAuthority::SignIn { family_id: "fam_a" };
        let credential = LinkAuthority::Credential;
        assert_eq!(
            claim("con_new", ada.id.clone(), credential).await,
            ConnectorClaim::Missing
        );
        assert!(
            matches!(claim("con_new", ada.id.clone(), mine).await, ConnectorClaim::Created(c) if c.owner_id == ada.id)
        );
        assert!(
            matches!(claim("con_new", ada.id.clone(), mine).await, ConnectorClaim::Updated(c) if c.name == "Site PC")
        );
        assert_eq!(
            claim("con_new", bob.id.clone(), mine).await,
            ConnectorClaim::OwnedByAnother
        );
        // A connector provisioned with a credential is reachable only with it.
        assert_eq!(
            claim("con_1", ada.id.clone(), mine).await,
            ConnectorClaim::NeedsCredential
        );
        assert!(matches!(
            claim("con_1", ada.id.clone(), credential).await,
            ConnectorClaim::Updated(_)
        ));
        let (_, digest) = store
            .connector_credential("con_new")
            .await
            .unwrap()
            .unwrap();
        assert!(
            digest.is_empty(),
            "a self-registered connector has no credential"
        );
        assert_eq!(
            store
                .connector_credential("con_1")
                .await
                .unwrap()
                .unwrap()
                .1,
            b"digest".to_vec()
        );
    }

    #[tokio::test]
    async fn the_change_feed_holds_each_revoke_in_order_and_skips_what_it_cannot_read() {
        let (_dir, store) = store().await;
        let (user, a, _) = seeded(&store).await;
        let start = store.change_cursor().await.unwrap();
        store
            .grant(
                &user.id,
                "app1",
                std::slice::from_ref(&a.id),
                &["data.read".into()],
                5,
            )
            .await
            .unwrap();
        // A change written by a newer hub that this one cannot read.
        sqlx::query("INSERT INTO changes (at, change) VALUES (6, '{\"kind\":\"fromTheFuture\"}')")
            .execute(&store.writer)
            .await
            .unwrap();
        store.revoke(&user.id, "app1", None, 7).await.unwrap();
        store.wait_for_changes(start).await.unwrap();
        let batch = store.changes_after(start).await.unwrap();
        assert_eq!(
            batch.changes,
            vec![
                Revocation::Granted {
                    user_id: user.id.clone(),
                    app_id: "app1".into(),
                    source_ids: vec![a.id.clone()],
                },
                Revocation::Grant {
                    user_id: user.id.clone(),
                    app_id: "app1".into(),
                    source_id: None,
                },
            ]
        );
        assert_eq!(batch.cursor, store.change_cursor().await.unwrap());
        assert!(
            store
                .changes_after(batch.cursor)
                .await
                .unwrap()
                .changes
                .is_empty()
        );
        assert_eq!(store.prune_changes(7).await.unwrap(), 2, "older than 7 go");
        assert_eq!(store.changes_after(start).await.unwrap().changes.len(), 1);
    }

    #[tokio::test]
    async fn announced_sources_replace_the_list_and_keep_their_ids() {
        let (_dir, store) = store().await;
        let (user, historian, lab) = seeded(&store).await;
        let first = store
            .announce_sources(
                "con_1",
                &[
                    descriptor("historian", "sqlite"),
                    descriptor("sim", "simulated"),
                ],
                4,
            )
            .await
            .unwrap();
        assert_eq!(first[0].id, historian.id, "an existing source keeps its id");
        assert_eq!(first[1].kind, "simulated");
        let all = store.sources_owned_by(&user.id).await.unwrap();
        let by_name = |n: &str| all.iter().find(|s| s.name == n).unwrap().clone();
        assert!(by_name("historian").available);
        assert_eq!(by_name("historian").kind, "sqlite");
        assert!(by_name("historian").capabilities.unwrap().raw);
        assert!(
            !by_name("lab").available,
            "a source no longer announced is unavailable"
        );
        assert_eq!(by_name("lab").id, lab.id);
        store
            .grant(
                &user.id,
                "app1",
                std::slice::from_ref(&historian.id),
                &["data.read".into()],
                5,
            )
            .await
            .unwrap();
        let grants = store.connector_grants("con_1").await.unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(
            (grants[0].app_name.as_str(), grants[0].source_name.as_str()),
            ("Dashboard", "historian")
        );
        store.revoke(&user.id, "app1", None, 6).await.unwrap();
        assert!(store.connector_grants("con_1").await.unwrap().is_empty());
    }
}
