//! `GET /api/v1/sources` and `GET /api/v1/sources/{source}`: the data sources a token may read,
//! as the store says at this moment (live grants of the token's user and app, in a live token
//! family), with whether each connector is online and what each source answers.

use serde::Serialize;
use uplink_model::{Capabilities, FunctionDescriptor};

use super::error::ApiError;
use crate::access::Denied;
use crate::hub::Hub;
use crate::relay::ConnectorRouter;
use crate::scopes;
use crate::store::{DataSource, GrantView};
use crate::token::AccessClaims;

/// A data source as an app sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    /// The id used in API paths (`src_…`).
    pub id: String,
    /// Its name on its connector.
    pub name: String,
    /// What it holds, in words.
    pub description: String,
    /// The adapter behind it (`simulated`, `csv`…), once its connector announced it.
    pub kind: Option<String>,
    /// False when its connector no longer announces it.
    pub available: bool,
    /// The connector that serves it.
    pub connector: ConnectorView,
    /// What this token may do with it (`data.read`, `tags.read`).
    pub scopes: Vec<String>,
    /// The queries it answers, once its connector announced them.
    pub capabilities: Option<Capabilities>,
    /// The processed functions it offers (the same as `capabilities.processed`).
    pub functions: Option<Vec<FunctionDescriptor>>,
}

/// The connector behind a data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// Its display name.
    pub name: String,
    /// Whether it has a live link to the hub right now.
    pub online: bool,
}

/// The answer of `GET /api/v1/sources`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceList {
    /// Every data source the token may read.
    pub sources: Vec<SourceView>,
}

/// The data sources `token` may read now, or only `only` among them.
pub async fn readable(
    hub: &Hub,
    relay: &dyn ConnectorRouter,
    token: &str,
    only: Option<&str>,
) -> Result<Vec<SourceView>, ApiError> {
    let claims = hub.keys.verify(token).map_err(|rejection| {
        tracing::info!(%rejection, "access token refused");
        Denied::InvalidToken(rejection)
    })?;
    let readable_scopes: Vec<String> = [scopes::DATA_READ, scopes::TAGS_READ, scopes::EVENTS_READ]
        .into_iter()
        .filter(|s| claims.has_scope(s))
        .map(str::to_owned)
        .collect();
    if readable_scopes.is_empty() {
        return Err(Denied::InsufficientScope(scopes::DATA_READ).into());
    }
    let grants = live_grants(hub, &claims, &readable_scopes, only).await?;
    let mut views = Vec::with_capacity(grants.len());
    for (grant, scopes) in grants {
        // A source removed since the grants were read is simply left out.
        if let Some(source) = hub.store.source(&grant.source_id).await? {
            views.push(view(source, scopes, relay));
        }
    }
    Ok(views)
}

/// The token's live grants (optionally on one source), each with the scopes both the grant
/// and the token carry; empty when the token's family was revoked.
async fn live_grants(
    hub: &Hub,
    claims: &AccessClaims,
    token_scopes: &[String],
    only: Option<&str>,
) -> Result<Vec<(GrantView, Vec<String>)>, ApiError> {
    let family_live = hub
        .store
        .family(&claims.family_id)
        .await?
        .is_some_and(|f| f.revoked_at.is_none() && f.app_id == claims.app_id);
    if !family_live {
        return Ok(Vec::new());
    }
    Ok(hub
        .store
        .grants_of(&claims.user_id)
        .await?
        .into_iter()
        .filter(|g| g.app_id == claims.app_id && only.is_none_or(|id| g.source_id == id))
        .filter_map(|g| {
            let scopes: Vec<String> = g
                .scopes
                .iter()
                .filter(|s| token_scopes.contains(s))
                .cloned()
                .collect();
            (!scopes.is_empty()).then_some((g, scopes))
        })
        .collect())
}

fn view(source: DataSource, scopes: Vec<String>, relay: &dyn ConnectorRouter) -> SourceView {
    SourceView {
        connector: ConnectorView {
            online: relay.is_online(&source.connector_id),
            name: source.connector_name,
        },
        kind: (!source.kind.is_empty()).then_some(source.kind),
        functions: source.capabilities.as_ref().map(|c| c.processed.clone()),
        capabilities: source.capabilities,
        available: source.available,
        id: source.id,
        name: source.name,
        description: source.description,
        scopes,
    }
}
