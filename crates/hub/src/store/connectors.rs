//! Connectors and the data sources they serve.

use std::collections::{BTreeMap, HashSet};

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
    /// Replaces the data sources a connector announces: each is created or updated (name,
    /// kind, description, capabilities, available again); sources not in the list become
    /// unavailable. A source is found by its stable key in `keys` (by name), so a renamed
    /// source keeps its id and its grants; a key seen for the first time adopts the keyless
    /// source of the same name (one announced before keys, or added by an administrator); a
    /// source without a key is found by name. Returns every announced source with its id, in
    /// the order given. One transaction.
    async fn announce_sources(
        &self,
        connector_id: &str,
        sources: &[uplink_model::DataSourceDescriptor],
        keys: &BTreeMap<String, String>,
        now: i64,
    ) -> Result<Vec<DataSource>>;
    /// Every live grant on a connector's data sources, ordered by source then app.
    async fn connector_grants(&self, connector_id: &str) -> Result<Vec<ConnectorGrant>>;
    /// The apps that held grants on a connector's data sources and hold none there now, most
    /// recently revoked first.
    async fn connector_revoked_apps(
        &self,
        connector_id: &str,
    ) -> Result<Vec<crate::store::RevokedApp>>;
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

/// A connector's data source as an announcement finds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct KnownSource {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) source_key: Option<String>,
}

/// What one announcement changes, worked out before anything is written.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AnnouncementPlan {
    /// For each announced source, in order, the row it updates (None: a new row).
    pub(crate) targets: Vec<Option<String>>,
    /// Rows whose name changes, with their new name: renamed sources, and sources no longer
    /// announced that give way to a name now in use (they become `NAME (removed)`).
    pub(crate) renames: Vec<(String, String)>,
}

/// Matches an announcement against a connector's known sources: by key first, then a new
/// key adopts the keyless source of its name, then a source without a key is found by name.
pub(crate) fn plan_announcement(
    known: &[KnownSource],
    announced: &[uplink_model::DataSourceDescriptor],
    keys: &BTreeMap<String, String>,
) -> AnnouncementPlan {
    let mut used: HashSet<&str> = HashSet::new();
    let mut targets: Vec<Option<&KnownSource>> = vec![None; announced.len()];
    // By key.
    for (at, source) in announced.iter().enumerate() {
        if let Some(key) = keys.get(&source.name) {
            targets[at] = known
                .iter()
                .find(|k| k.source_key.as_deref() == Some(key.as_str()));
            if let Some(found) = targets[at] {
                used.insert(found.id.as_str());
            }
        }
    }
    // A new key adopts the keyless source of its name; a keyless announcement finds its name.
    for (at, source) in announced.iter().enumerate() {
        if targets[at].is_some() {
            continue;
        }
        let keyed = keys.contains_key(&source.name);
        targets[at] = known.iter().find(|k| {
            k.name == source.name
                && !used.contains(k.id.as_str())
                && (!keyed || k.source_key.is_none())
        });
        if let Some(found) = targets[at] {
            used.insert(found.id.as_str());
        }
    }
    let mut renames: Vec<(String, String)> = announced
        .iter()
        .zip(&targets)
        .filter_map(|(source, target)| {
            let target = (*target)?;
            (target.name != source.name).then(|| (target.id.clone(), source.name.clone()))
        })
        .collect();
    // Names taken once this announcement is done.
    let mut taken: HashSet<String> = announced.iter().map(|s| s.name.clone()).collect();
    taken.extend(
        known
            .iter()
            .filter(|k| !used.contains(k.id.as_str()))
            .map(|k| k.name.clone()),
    );
    let announced_names: HashSet<&str> = announced.iter().map(|s| s.name.as_str()).collect();
    for stale in known.iter().filter(|k| !used.contains(k.id.as_str())) {
        if !announced_names.contains(stale.name.as_str()) {
            continue;
        }
        let mut n = 1;
        let new_name = loop {
            let candidate = if n == 1 {
                format!("{} (removed)", stale.name)
            } else {
                format!("{} (removed {n})", stale.name)
            };
            if !taken.contains(&candidate) {
                break candidate;
            }
            n += 1;
        };
        taken.insert(new_name.clone());
        renames.push((stale.id.clone(), new_name));
    }
    AnnouncementPlan {
        targets: targets
            .into_iter()
            .map(|t| t.map(|k| k.id.clone()))
            .collect(),
        renames,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str, name: &str, key: Option<&str>) -> KnownSource {
        KnownSource {
            id: id.into(),
            name: name.into(),
            source_key: key.map(str::to_owned),
        }
    }

    fn announced(names: &[&str]) -> Vec<uplink_model::DataSourceDescriptor> {
        names
            .iter()
            .map(|n| uplink_model::DataSourceDescriptor {
                name: (*n).into(),
                kind: "csv".into(),
                description: String::new(),
                capabilities: uplink_model::Capabilities::default(),
            })
            .collect()
    }

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
            .collect()
    }

    #[test]
    fn a_renamed_source_keeps_its_row() {
        let plan = plan_announcement(
            &[known("src_1", "lab", Some("k1"))],
            &announced(&["quality-lab"]),
            &keys(&[("quality-lab", "k1")]),
        );
        assert_eq!(plan.targets, vec![Some("src_1".to_owned())]);
        assert_eq!(plan.renames, vec![("src_1".into(), "quality-lab".into())]);
    }

    #[test]
    fn a_first_key_adopts_the_keyless_source_of_its_name() {
        let plan = plan_announcement(
            &[
                known("src_1", "lab", None),
                known("src_2", "old", Some("k9")),
            ],
            &announced(&["lab", "new"]),
            &keys(&[("lab", "k1"), ("new", "k2")]),
        );
        assert_eq!(plan.targets, vec![Some("src_1".to_owned()), None]);
        assert!(plan.renames.is_empty());
    }

    #[test]
    fn a_new_source_under_a_removed_ones_name_gets_a_row_of_its_own() {
        let plan = plan_announcement(
            &[
                known("src_1", "lab", Some("k1")),
                known("src_2", "lab (removed)", None),
            ],
            &announced(&["lab"]),
            &keys(&[("lab", "k2")]),
        );
        assert_eq!(plan.targets, vec![None]);
        assert_eq!(
            plan.renames,
            vec![("src_1".into(), "lab (removed 2)".into())]
        );
    }

    #[test]
    fn two_sources_swap_names() {
        let plan = plan_announcement(
            &[
                known("src_1", "a", Some("k1")),
                known("src_2", "b", Some("k2")),
            ],
            &announced(&["b", "a"]),
            &keys(&[("b", "k1"), ("a", "k2")]),
        );
        assert_eq!(
            plan.targets,
            vec![Some("src_1".to_owned()), Some("src_2".to_owned())]
        );
        assert_eq!(
            plan.renames,
            vec![("src_1".into(), "b".into()), ("src_2".into(), "a".into())]
        );
    }

    #[test]
    fn without_keys_sources_are_found_by_name() {
        let plan = plan_announcement(
            &[known("src_1", "lab", Some("k1"))],
            &announced(&["lab", "other"]),
            &BTreeMap::new(),
        );
        assert_eq!(plan.targets, vec![Some("src_1".to_owned()), None]);
        assert!(plan.renames.is_empty());
    }
}
