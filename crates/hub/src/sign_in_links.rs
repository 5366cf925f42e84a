//! One-time sign-in links: a hub running inside the desktop app (the embedded local hub) opens
//! its own pages in the owner's browser already signed in, without the owner ever knowing the
//! owner account's password.
//!
//! A link is minted only in process (`Hub::mint_sign_in_link`), never over HTTP. It carries a
//! random secret whose digest alone is kept, in this process's memory; it is spent on first
//! use (a second use, even a racing one, finds nothing) and expires after
//! [`SIGN_IN_LINK_TTL`]. Where it leads is stored beside it, not read from the URL, so a link
//! cannot be turned into a redirect elsewhere. The URL is a secret for that minute only: once
//! spent or expired it opens nothing, so a copy left in the browser's history or a log is
//! worthless. Links live in one process's memory, so a hub behind a backplane never mints one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secret::Secret;

/// How long a sign-in link stays valid: enough to open a browser, short enough to be useless
/// to anyone who finds it later.
pub const SIGN_IN_LINK_TTL: Duration = Duration::from_secs(60);
/// The most links waiting at once; minting more forgets the oldest.
const MAX_WAITING: usize = 16;
/// Where a sign-in link is opened.
pub const SIGN_IN_LINK_PATH: &str = "/account/login/link";

/// Who a link signs in, and where it then leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInLink {
    /// The user signed in.
    pub user_id: String,
    /// A path on this hub (`/…`) to continue to.
    pub next: String,
}

#[derive(Debug)]
struct Waiting {
    link: SignInLink,
    expires: Instant,
}

/// The links minted and not yet spent, by their secret's digest.
#[derive(Debug, Default)]
pub struct SignInLinks {
    waiting: Mutex<HashMap<Vec<u8>, Waiting>>,
}

impl SignInLinks {
    /// Mints a link for `link`; returns its secret (for the URL's `token`).
    pub(crate) fn mint(&self, link: SignInLink) -> Secret {
        let secret = Secret::generate();
        let now = Instant::now();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|_, w| w.expires > now);
        while waiting.len() >= MAX_WAITING {
            let oldest = waiting
                .iter()
                .min_by_key(|(_, w)| w.expires)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            waiting.remove(&oldest);
        }
        waiting.insert(
            secret.digest(),
            Waiting {
                link,
                expires: now + SIGN_IN_LINK_TTL,
            },
        );
        secret
    }

    /// Spends the link whose secret is `token`: `None` when there is none, it was spent, or
    /// it expired.
    pub(crate) fn spend(&self, token: &str) -> Option<SignInLink> {
        let digest = Secret::from_received(token).digest();
        let spent = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest)?;
        (spent.expires > Instant::now()).then_some(spent.link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> SignInLink {
        SignInLink {
            user_id: "usr_1".into(),
            next: "/account/settings".into(),
        }
    }

    #[test]
    fn a_link_is_spent_once() {
        let links = SignInLinks::default();
        let secret = links.mint(link());
        assert_eq!(links.spend("not-it"), None);
        assert_eq!(links.spend(secret.expose()), Some(link()));
        assert_eq!(links.spend(secret.expose()), None, "single use");
    }

    #[test]
    fn an_expired_link_opens_nothing() {
        let links = SignInLinks::default();
        let secret = links.mint(link());
        links
            .waiting
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|w| w.expires = Instant::now() - Duration::from_secs(1));
        assert_eq!(links.spend(secret.expose()), None);
    }

    #[test]
    fn waiting_links_are_bounded() {
        let links = SignInLinks::default();
        let first = links.mint(link());
        for _ in 0..MAX_WAITING {
            links.mint(link());
        }
        assert_eq!(links.waiting.lock().unwrap().len(), MAX_WAITING);
        assert_eq!(links.spend(first.expose()), None, "the oldest was forgotten");
    }
}
