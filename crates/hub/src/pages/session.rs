//! Browser sessions: a random secret in a `__Host-` cookie (Secure, HttpOnly, SameSite=Lax,
//! path /), kept in the store only as a digest. CSRF tokens for forms are derived from the
//! session secret, so a page from another site can neither read nor forge them.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::error::Result;
use crate::hub::Hub;
use crate::secret::Secret;
use crate::store::{LoginSession, User};

/// The session cookie's name. The `__Host-` prefix makes browsers insist on Secure, path `/`
/// and no Domain, so no other host can set or shadow it.
pub const COOKIE: &str = "__Host-uplink-session";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub user: User,
    /// When they signed in (Unix seconds): an ID token's `auth_time`.
    pub signed_in_at: i64,
    secret: Secret,
}

fn derive(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

impl SignedIn {
    /// The CSRF token for this session's settings forms.
    pub fn csrf_token(&self) -> String {
        derive(&["uplink settings csrf", self.secret.expose()])
    }

    /// The CSRF token for one consent transaction in this session: a token from another
    /// transaction or another session does not fit.
    pub fn consent_token(&self, request_id: &str) -> String {
        derive(&["uplink consent csrf", self.secret.expose(), request_id])
    }

    /// The session's digest in the store.
    pub fn digest(&self) -> Vec<u8> {
        self.secret.digest()
    }
}

/// The value of cookie `name` in the request, if exactly one is present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

/// The signed-in user of this request, if its session is live.
pub async fn signed_in(hub: &Hub, headers: &HeaderMap) -> Option<SignedIn> {
    let secret = Secret::from_received(cookie(headers, COOKIE)?);
    let session = match hub
        .store
        .session(&secret.digest(), crate::clock::now())
        .await
    {
        Ok(s) => s?,
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return None;
        }
    };
    let user = hub.store.user(&session.user_id).await.ok()??;
    Some(SignedIn {
        user,
        signed_in_at: session.signed_in_at,
        secret,
    })
}

/// Starts a session for `user`; returns the `Set-Cookie` value.
pub async fn start(hub: &Hub, user: &User) -> Result<String> {
    let secret = Secret::generate();
    let now = crate::clock::now();
    let session = LoginSession {
        user_id: user.id.clone(),
        expires_at: now + hub.config.session_ttl,
        signed_in_at: now,
    };
    hub.store
        .create_session(&secret.digest(), &session, now)
        .await?;
    Ok(format!(
        "{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        secret.expose(),
        hub.config.session_ttl
    ))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookie_is_found_once_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-uplink-session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-uplink-session=other"),
        );
        assert_eq!(cookie(&h, COOKIE), None);
    }

    #[test]
    fn consent_tokens_are_bound_to_the_transaction() {
        let s = SignedIn {
            user: User {
                id: "u".into(),
                username: "u".into(),
                created_at: 0,
                display_name: None,
                email: None,
            },
            signed_in_at: 0,
            secret: Secret::from_received("s"),
        };
        assert_ne!(s.consent_token("req_a"), s.consent_token("req_b"));
        assert_ne!(s.consent_token("req_a"), s.csrf_token());
    }
}
