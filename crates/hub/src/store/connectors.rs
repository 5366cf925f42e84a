//! Connectors and the data sources they serve.

use async_trait::async_trait;

use crate::error::Result;

/// A site connector and the user who owns it (and so owns its data sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// Stable id (`con_…`).
    pub id: String,
    /// The owning user's id.
    pub owner_id: String,
    /// The owning user's name.
    pub owner_name: String,
    /// Display name.
    pub name: String,
    /// When it was registered.
    pub created_at: i64,
}

/// A data source offered by a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// Stable id (`src_…`), used in API paths.
    pub id: String,
    /// The connector that serves it.
    pub connector_id: String,
    /// That connector's display name.
    pub connector_name: String,
    /// Name, unique per connector.
    pub name: String,
    /// What it holds, in words.
    pub description: String,
    /// The adapter behind it (`simulated`, `csv`…), as its connector announced; empty until then.
    pub kind: String,
    /// The queries it answers, as its connector last announced; None until announced.
    pub capabilities: Option<uplink_model::Capabilities>,
    /// False once its connector stopped announcing it (kept, since grants refer to it).
    pub available: bool,
}

/// Outcome of a connector's registration on its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorClaim {
    /// First registration: the connector was created for the signed-in owner.
    Created(Connector),
    /// The connector exists and belongs to this owner; its name and software were updated.
    Updated(Connector),
    /// The id belongs to another user's connector.
    OwnedByAnother,
    /// No such connector, and creating one was not allowed.
    Missing,
    /// The id was removed from the hub; it is never registered again.
    Removed,
    /// An administrator provisioned this connector with its own credential: only a link
    /// authenticated with that credential may register as it.
    NeedsCredential,
    /// Another sign-in, still valid, created (or last took over) this connector.
    OtherSignIn,
}

/// The authority a link registers with: the connector's own credential, or an owner's
/// sign-in (a token family with scope `connector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAuthority<'a> {
    /// Client credentials of the connector itself.
    Credential,
    /// A sign-in: it may create a connector, and register only connectors its own family
    /// created — or one whose creating sign-in is no longer valid (revoked or expired), which
    /// it then takes over (signing a connector in again).
    SignIn {
        /// The sign-in's token family.
        family_id: &'a str,
    },
}

/// One live grant on a connector's data source, as the connector is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorGrant {
    /// The app's client id.
    pub app_id: String,
    /// The app's name.
    pub app_name: String,
    /// The user who consented.
    pub user_id: String,
    /// The data source's id.
    pub source_id: String,
    /// The data source's name on the connector.
    pub source_name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub granted_at: i64,
    /// When the app last used it, if ever.
    pub last_used_at: Option<i64>,
}

/// The connectors room: connectors and their data sources.
#[async_trait]
pub trait ConnectorStore: Send + Sync {
    /// Registers a connector owned by `owner_id`.
    async fn create_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        credential_digest: &[u8],
        now: i64,
    ) -> Result<Connector>;
    /// Connectors, all or one owner's.
    async fn connectors(&self, owner_id: Option<&str>) -> Result<Vec<Connector>>;
    /// Removes a connector and its data sources, revoking every grant on them and the
    /// sign-in that created it; its id is never registered again. None if no such connector,
    /// else the token families revoked. One transaction.
    async fn remove_connector(&self, id: &str, now: i64) -> Result<Option<Vec<String>>>;
    /// A connector by id.
    async fn connector(&self, id: &str) -> Result<Option<Connector>>;
    /// A connector and the digest of its credential (empty for connectors that registered
    /// themselves and have none).
    async fn connector_credential(&self, id: &str) -> Result<Option<(Connector, Vec<u8>)>>;
    /// A connector registers on its link as `owner_id` with `authority`: updates its name and
    /// software if it is that owner's and the authority is the connector's (its credential,
    /// or the sign-in that created it), creates it (without a credential) for a sign-in if
    /// missing and never removed, and never touches another owner's connector. One
    /// transaction.
    async fn claim_connector(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        software: &str,
        authority: LinkAuthority<'_>,
        now: i64,
    ) -> Result<ConnectorClaim>;
    /// Replaces the data sources a connector announces: each is created or updated (kind,
    /// description, capabilities, available again); sources not in the list become
    /// unavailable. Returns every announced source with its id, in the order given.
    async fn announce_sources(
        &self,
        connector_id: &str,
        sources: &[uplink_model::DataSourceDescriptor],
        now: i64,
    ) -> Result<Vec<DataSource>>;
    /// Every live grant on a connector's data sources, ordered by source then app.
    async fn connector_grants(&self, connector_id: &str) -> Result<Vec<ConnectorGrant>>;
    /// Adds a data source to a connector (until the link reports them).
    async fn add_source(
        &self,
        connector_id: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<DataSource>;
    /// The data sources of connectors a user owns, ordered by connector then name.
    async fn sources_owned_by(&self, user_id: &str) -> Result<Vec<DataSource>>;
    /// Every data source.
    async fn sources(&self) -> Result<Vec<DataSource>>;
    /// One data source by id (the app data API's path parameter).
    async fn source(&self, id: &str) -> Result<Option<DataSource>>;
}
