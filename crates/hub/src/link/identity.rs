//! Who may open a connector link: a valid access token with scope `connector`, from either an
//! administrator-registered connector (client credentials; the connector must still exist) or
//! its owner's sign-in (device flow; the token family must still be live). Checked on negotiate
//! and on every transport request, so a revoked sign-in cannot keep polling.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uplink_signalr::server::{AuthRejection, AuthRequest, Authenticator, Claims, Identity};

use crate::hub::Hub;
use crate::scopes::CONNECTOR;

/// How a link's token was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LinkCredential {
    /// Client credentials of a connector an administrator registered.
    #[serde(rename_all = "camelCase")]
    Connector {
        /// The connector the token was issued to.
        connector_id: String,
    },
    /// The owner signed the connector in (device flow, or an app registered for `connector`).
    #[serde(rename_all = "camelCase")]
    SignedIn {
        /// The OAuth client it signed in with.
        app_id: String,
        /// The token family, revocable as a whole.
        family_id: String,
    },
}

/// The verified party behind a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkIdentity {
    /// The user who owns the connector.
    pub user_id: String,
    /// How the token was obtained.
    pub credential: LinkCredential,
    /// When the token expires (Unix seconds).
    pub expires_at: i64,
}

impl LinkIdentity {
    /// The SignalR subject: every request of one connection, and every token it renews with,
    /// must name the same one.
    pub fn subject(&self) -> String {
        match &self.credential {
            LinkCredential::Connector { connector_id } => format!("connector:{connector_id}"),
            LinkCredential::SignedIn { family_id, .. } => format!("sign-in:{family_id}"),
        }
    }

    /// The identity a connection was opened with, shared with the connection.
    pub fn of(identity: Option<&Identity>) -> Option<Arc<Self>> {
        identity?.claims.shared()
    }
}

/// Verifies `token` for a link: valid, scope `connector`, and its connector or sign-in still
/// live in the store. The error is a sentence for the connector (never the token).
pub async fn verify(hub: &Hub, token: &str) -> Result<LinkIdentity, String> {
    let claims = hub.keys.verify(token).map_err(|rejection| {
        tracing::info!(%rejection, "connector link token refused");
        rejection.to_string()
    })?;
    if !claims.has_scope(CONNECTOR) {
        return Err(format!("the access token lacks the scope '{CONNECTOR}'"));
    }
    let unavailable = |e: crate::error::HubError| {
        tracing::error!(error = %e, "connector link token check could not read the store");
        "the hub cannot check tokens right now; try again".to_owned()
    };
    // Only the client-credentials grant issues tokens whose family is the connector itself.
    let credential = if claims.family_id == claims.app_id && claims.app_id.starts_with("con_") {
        match hub
            .store
            .connector(&claims.app_id)
            .await
            .map_err(unavailable)?
        {
            Some(c) if c.owner_id == claims.user_id => {}
            _ => return Err("the connector this token was issued to no longer exists".into()),
        }
        LinkCredential::Connector {
            connector_id: claims.app_id,
        }
    } else {
        match hub
            .store
            .family(&claims.family_id)
            .await
            .map_err(unavailable)?
        {
            Some(f)
                if f.revoked_at.is_none()
                    && f.app_id == claims.app_id
                    && f.user_id == claims.user_id => {}
            _ => return Err("this sign-in was revoked; sign the connector in again".into()),
        }
        LinkCredential::SignedIn {
            app_id: claims.app_id,
            family_id: claims.family_id,
        }
    };
    Ok(LinkIdentity {
        user_id: claims.user_id,
        credential,
        expires_at: claims.expires_at,
    })
}

/// The link's authentication hook.
pub fn authenticator(hub: Arc<Hub>) -> Authenticator {
    Authenticator::new(move |request: AuthRequest| {
        let hub = hub.clone();
        async move {
            let Some(token) = request.bearer else {
                return Err(AuthRejection(format!(
                    "an access token with scope '{CONNECTOR}' is required"
                )));
            };
            let identity = verify(&hub, &token).await.map_err(AuthRejection)?;
            // Kept typed with the connection: a JSON tree of the same cost a kilobyte more per
            // idle link.
            Ok(Identity {
                subject: identity.subject(),
                claims: Claims::new(identity),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_kept_with_the_connection() {
        let identity = LinkIdentity {
            user_id: "usr_1".into(),
            credential: LinkCredential::SignedIn {
                app_id: "uplink-connector".into(),
                family_id: "fam_1".into(),
            },
            expires_at: 42,
        };
        let claims = Identity {
            subject: identity.subject(),
            claims: Claims::new(identity.clone()),
        };
        assert_eq!(LinkIdentity::of(Some(&claims)).as_deref(), Some(&identity));
        assert_eq!(LinkIdentity::of(Some(&Identity::new("x"))), None);
        assert_eq!(claims.subject, "sign-in:fam_1");
        assert_eq!(LinkIdentity::of(None), None);
    }
}
