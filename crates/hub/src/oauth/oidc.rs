//! OpenID Connect on top of the OAuth2 server: discovery
//! (`/.well-known/openid-configuration`), the signing keys (`/oauth/jwks`), the ID token the
//! token endpoint adds when scope `openid` was granted, and `/oauth/userinfo`.
//!
//! `sub` is public, not pairwise: the user's hub id (`usr_…`), the same for every app. It is
//! random, never reused and says nothing about the person; token introspection already reports
//! it to the app; and a pairwise id would hide nothing the app-store's apps do not already share
//! through the user's own choice of data sources. `docs/api.md` says so to app developers.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::hub::Hub;
use crate::scopes;
use crate::store::User;

/// The discovery document: the RFC 8414 metadata plus what OpenID Connect Discovery 1.0 adds.
pub fn discovery(issuer: &str) -> Value {
    let mut doc = super::metadata::document(issuer);
    let extra = json!({
        "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "preferred_username", "email"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            doc.insert(k.clone(), v.clone());
        }
    }
    doc
}

/// `GET /.well-known/openid-configuration`.
pub async fn configuration(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(discovery(&hub.config.issuer))
}

/// `GET /oauth/jwks`: the keys ID tokens are signed with, including retired keys whose tokens
/// may still be valid.
pub async fn jwks(State(hub): State<Arc<Hub>>) -> Response {
    // A key another replica sharing the folder rotated in is published at once: one `stat`,
    // and a read only when the file changed.
    if let Err(e) = hub.id_keys.reload_if_changed() {
        tracing::warn!(error = %e, "the ID-token key file cannot be re-read");
    }
    let mut response = Json(hub.id_keys.jwks(crate::clock::now())).into_response();
    // Short enough that a relying party sees a rotation well before the old key goes.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The claims about `user` that `granted` scopes allow: `sub` always, `name` and
/// `preferred_username` with `profile`, `email` with `email`.
pub fn user_claims(user: &User, granted: &[String]) -> Value {
    let has = |s: &str| granted.iter().any(|g| g == s);
    let mut claims = json!({ "sub": user.id });
    if has(scopes::PROFILE) {
        claims["preferred_username"] = json!(user.username);
        claims["name"] = json!(user.display_name.as_deref().unwrap_or(&user.username));
    }
    if has(scopes::EMAIL)
        && let Some(email) = &user.email
    {
        claims["email"] = json!(email);
    }
    claims
}

fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "code": error, "message": description })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "Bearer error=\"{error}\", error_description=\"{description}\""
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `GET` and `POST /oauth/userinfo`: the bearer access token's user, with only the claims its
/// scopes allow. The token must carry `openid` and its sign-in must still be live: revoking
/// the sign-in stops this at once.
pub async fn userinfo(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let Some(token) = crate::access::bearer_token(&headers) else {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "code": "missing_token", "message": "an access token is required (Authorization: Bearer …)" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let claims = match hub.keys.verify(token) {
        Ok(claims) => claims,
        Err(rejection) => {
            tracing::info!(%rejection, "userinfo: access token refused");
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid or expired",
            );
        }
    };
    if !claims.has_scope(scopes::OPENID) {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token lacks the scope 'openid'",
        );
    }
    let live = match hub.store.family(&claims.family_id).await {
        Ok(family) => family.is_some_and(|f| f.revoked_at.is_none() && f.user_id == claims.user_id),
        Err(e) => return e.into_response(),
    };
    if !live {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the sign-in this token belongs to was revoked",
        );
    }
    let user = match hub.store.user(&claims.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token's user no longer exists",
            );
        }
        Err(e) => return e.into_response(),
    };
    let mut response = Json(user_claims(&user, &claims.scopes)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_scopes() {
        let user = User {
            id: "usr_1".into(),
            username: "ada".into(),
            created_at: 0,
            display_name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
        };
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(user_claims(&user, &s(&["openid"])), json!({"sub": "usr_1"}));
        assert_eq!(
            user_claims(&user, &s(&["openid", "profile"])),
            json!({"sub": "usr_1", "name": "Ada Lovelace", "preferred_username": "ada"})
        );
        assert_eq!(
            user_claims(&user, &s(&["openid", "email"])),
            json!({"sub": "usr_1", "email": "ada@example.com"})
        );
    }

    #[test]
    fn discovery_names_the_oidc_endpoints() {
        let doc = discovery("https://hub.test");
        assert_eq!(doc["issuer"], "https://hub.test");
        assert_eq!(doc["jwks_uri"], "https://hub.test/oauth/jwks");
        assert_eq!(doc["userinfo_endpoint"], "https://hub.test/oauth/userinfo");
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["EdDSA"]));
        assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
    }
}
