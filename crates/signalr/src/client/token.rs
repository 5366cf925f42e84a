//! The bearer token every HTTP request of a connection carries, replaceable while connected.

use std::sync::{Arc, RwLock};

/// The current access token, shared by a connection's transports: long polling and
/// Server-Sent Events read it for every request, so a token renewed while connected (see
/// [`HubConnection::set_access_token`](super::HubConnection::set_access_token)) reaches every
/// later poll and send.
#[derive(Clone, Default)]
pub(crate) struct TokenCell(Arc<RwLock<Option<Arc<str>>>>);

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
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, token: Option<String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = token.map(Arc::from);
    }
}
