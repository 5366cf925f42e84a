//! The revocation announcement seam: after a revoke is committed to the store (which the
//! per-request check reads, so it is already in force), it is announced here so connectors
//! and, later, other hub nodes learn of it at once. Consents travel the same way, so a
//! connector's list of grants stays live both ways. In-process broadcast now; a backplane
//! (NATS, Redis) can implement the same trait.

use tokio::sync::broadcast;

/// What was revoked. Serialized (JSON) into the store's change feed, so other hub processes
/// and admin commands announce the same thing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Revocation {
    /// A user's grant to an app: one data source, or all of them (`source_id` None).
    Grant {
        /// The user who revoked.
        user_id: String,
        /// The app that lost access.
        app_id: String,
        /// The data source, or None for every source.
        source_id: Option<String>,
    },
    /// An app was removed from the hub: every grant it held is gone.
    AppRemoved {
        /// Its client id.
        app_id: String,
    },
    /// A token family was revoked (code replay, refresh-token reuse, RFC 7009 revocation).
    TokenFamily {
        /// The family id.
        family_id: String,
    },
    /// A connector was removed: grants on its data sources are gone.
    ConnectorRemoved {
        /// Its id.
        connector_id: String,
    },
    /// A user consented: grants on these data sources were given or renewed (not a
    /// revocation, but connectors show grants live, so it travels the same seam).
    Granted {
        /// The consenting user.
        user_id: String,
        /// The app granted access.
        app_id: String,
        /// The data sources.
        source_ids: Vec<String>,
    },
    /// The access-token keys were rotated (by a replica or `uplink hub key rotate`): every
    /// process re-reads its key file. Not a revocation, and never announced to links; it only
    /// travels the change feed.
    TokenKeysRotated {
        /// The new current key's id (public: it is in every token's footer).
        key_id: String,
    },
    /// The ID-token signing keys were rotated (by a replica or `uplink hub key
    /// rotate-id-token`): every process re-reads its ID-token key file. Travels the change
    /// feed only, as [`Revocation::TokenKeysRotated`].
    IdTokenKeysRotated {
        /// The new signing key's id (public: it is in the JWKS and every ID token's header).
        key_id: String,
    },
}

impl Revocation {
    /// The kind of revocation as a metric's label; `None` for a consent, which revokes nothing.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Revocation::Grant { .. } => Some("grant"),
            Revocation::AppRemoved { .. } => Some("app_removed"),
            Revocation::TokenFamily { .. } => Some("token_family"),
            Revocation::ConnectorRemoved { .. } => Some("connector_removed"),
            Revocation::Granted { .. }
            | Revocation::TokenKeysRotated { .. }
            | Revocation::IdTokenKeysRotated { .. } => None,
        }
    }
}

/// Tells whoever listens that something was revoked. Announcing never fails the revoke: the
/// store is the authority, announcements only make the news travel faster.
pub trait RevocationAnnouncer: Send + Sync + std::fmt::Debug {
    /// Announces a committed revocation.
    fn announce(&self, revocation: Revocation);
    /// A stream of announcements from now on.
    fn subscribe(&self) -> broadcast::Receiver<Revocation>;
}

/// In-process announcer for a single hub node.
#[derive(Debug, Clone)]
pub struct LocalAnnouncer {
    sender: broadcast::Sender<Revocation>,
}

impl Default for LocalAnnouncer {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl RevocationAnnouncer for LocalAnnouncer {
    fn announce(&self, revocation: Revocation) {
        tracing::info!(?revocation, "revocation announced");
        // No subscriber is not an error: nobody is connected to be told.
        let _ = self.sender.send(revocation);
    }

    fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_hear_announcements() {
        let announcer = LocalAnnouncer::default();
        let mut rx = announcer.subscribe();
        announcer.announce(Revocation::AppRemoved { app_id: "a".into() });
        assert_eq!(
            rx.recv().await.unwrap(),
            Revocation::AppRemoved { app_id: "a".into() }
        );
    }
}
