//! The connectors room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{Connector, ConnectorGrant, DataSource, split_scopes};

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectorRow {
    pub(crate) id: String,
    pub(crate) owner_id: String,
    pub(crate) owner_name: String,
    pub(crate) name: String,
    pub(crate) created_at: i64,
}

impl From<ConnectorRow> for Connector {
    fn from(row: ConnectorRow) -> Self {
        Connector {
            id: row.id,
            owner_id: row.owner_id,
            owner_name: row.owner_name,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialRow {
    #[sqlx(flatten)]
    pub(crate) connector: ConnectorRow,
    pub(crate) credential_digest: Vec<u8>,
}

/// What a registration needs to know about an existing connector.
#[derive(sqlx::FromRow)]
pub(crate) struct ClaimRow {
    pub(crate) owner_id: String,
    pub(crate) credential_digest: Vec<u8>,
    pub(crate) signed_in_family: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SourceRow {
    pub(crate) id: String,
    pub(crate) connector_id: String,
    pub(crate) connector_name: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) kind: String,
    /// JSON as announced; NULL until announced.
    pub(crate) capabilities: Option<String>,
    pub(crate) available: bool,
}

impl From<SourceRow> for DataSource {
    fn from(row: SourceRow) -> Self {
        let capabilities = row.capabilities.and_then(|json| {
            serde_json::from_str(&json)
                .inspect_err(|e| {
                    tracing::warn!(source = %row.id, error = %e, "stored capabilities unreadable");
                })
                .ok()
        });
        DataSource {
            id: row.id,
            connector_id: row.connector_id,
            connector_name: row.connector_name,
            name: row.name,
            description: row.description,
            kind: row.kind,
            capabilities,
            available: row.available,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConnectorGrantRow {
    pub(crate) app_id: String,
    pub(crate) app_name: String,
    pub(crate) user_id: String,
    pub(crate) source_id: String,
    pub(crate) source_name: String,
    pub(crate) scopes: String,
    pub(crate) granted_at: i64,
    pub(crate) last_used_at: Option<i64>,
}

impl From<ConnectorGrantRow> for ConnectorGrant {
    fn from(row: ConnectorGrantRow) -> Self {
        ConnectorGrant {
            app_id: row.app_id,
            app_name: row.app_name,
            user_id: row.user_id,
            source_id: row.source_id,
            source_name: row.source_name,
            scopes: split_scopes(&row.scopes),
            granted_at: row.granted_at,
            last_used_at: row.last_used_at,
        }
    }
}
