//! The bearer token every HTTP request of a connection carries, replaceable while connected.

use std::sync::{Arc, RwLock};

/// The current access token, shared by a connection's transports: long polling and
/// Server-Sent Events read it for every request, so a token renewed while connected (see
/// [`HubConnection::set_access_token`](super::HubConnection::set_access_token)) reaches every
/// later poll and send.
#[derive(Clone, Default)]
pub(crate) struct TokenCell(Arc<RwLock<Current>>);

#[derive(Default)]
struct Current {
    token: Option<Arc<str>>,
    /// The connection was redirected to another origin: its token (if any) came from the
    /// redirect, and renewals of our own token must not reach that origin.
    foreign: bool,
}

impl std::fmt::Debug for TokenCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("TokenCell")
            .field("set", &self.get().is_some())
            .finish()
    }
}

impl TokenCell {
    pub fn get(&self) -> Option<Arc<str>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .token
            .clone()
    }

    /// The token of a new connection: ours when it stays on the hub's origin (`foreign`
    /// false), else only what a negotiate redirect handed over.
    pub fn set(&self, token: Option<String>, foreign: bool) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Current {
            token: token.map(Arc::from),
            foreign,
        };
    }

    /// A renewed token of ours, for the current connection unless it runs on another origin.
    pub fn renew(&self, token: String) {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        if !current.foreign {
            current.token = Some(Arc::from(token));
        }
    }
}
