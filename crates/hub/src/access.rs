//! The grant check every protected request goes through: verify the access token, then look
//! up the grant for (user, app, data source) in the store — on every request, no cache — and
//! allow, or refuse with a JSON error. The app data API builds on [`SourceAccess`] (an axum
//! extractor) or [`Hub::check_access`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Json, Router, routing::get};
//! use uplink_hub::{Hub, access::SourceAccess};
//!
//! // Any route with a `{source}` path parameter can take `SourceAccess`: the handler runs
//! // only for a live grant on that data source.
//! async fn snapshot(access: SourceAccess) -> Json<String> {
//!     Json(format!("app {} reads {}", access.claims.app_id, access.source_id))
//! }
//! fn routes() -> Router<Arc<Hub>> {
//!     Router::new().route("/api/v1/sources/{source}/snapshot", get(snapshot))
//! }
//! ```

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::ApiErrorCode;
use crate::error::HubError;
use crate::hub::Hub;
use crate::scopes;
use crate::token::{AccessClaims, TokenRejection};

/// How often (seconds) a grant's "last used" time is written: often enough for the settings
/// page, rarely enough that reads stay reads.
pub(crate) const LAST_USED_RESOLUTION: i64 = 60;

/// Access was allowed: the verified token and the data source it may read.
#[derive(Debug, Clone)]
pub struct Access {
    /// The verified token.
    pub claims: AccessClaims,
    /// The data source the grant covers.
    pub source_id: String,
}

/// Why access was refused.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No bearer token in the request.
    #[error("an access token is required (Authorization: Bearer …)")]
    MissingToken,
    /// The token failed verification.
    #[error("{0}")]
    InvalidToken(TokenRejection),
    /// The token lacks the scope this request needs.
    #[error("the access token lacks the scope '{0}'")]
    InsufficientScope(&'static str),
    /// No live grant for this user, app and data source (never granted, revoked, or the
    /// token's family was revoked).
    #[error("this app has no grant for that data source")]
    NoGrant,
    /// The store could not answer; refused, since access must be proven.
    #[error(transparent)]
    Store(#[from] HubError),
}

impl Denied {
    /// Why, as a metric's label.
    pub fn metric_code(&self) -> &'static str {
        match self {
            Denied::MissingToken => "missing_token",
            Denied::InvalidToken(_) => "invalid_token",
            Denied::InsufficientScope(_) => "insufficient_scope",
            Denied::NoGrant => "no_grant",
            Denied::Store(_) => "store_error",
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let (code, challenge) = match &self {
            Denied::MissingToken => (ApiErrorCode::MissingToken, "Bearer"),
            Denied::InvalidToken(_) => {
                (ApiErrorCode::InvalidToken, "Bearer error=\"invalid_token\"")
            }
            Denied::InsufficientScope(_) => (
                ApiErrorCode::InsufficientScope,
                "Bearer error=\"insufficient_scope\"",
            ),
            Denied::NoGrant => (ApiErrorCode::NoGrant, ""),
            Denied::Store(e) => return store_failure(e),
        };
        let mut response = code.response(self.to_string());
        if !challenge.is_empty() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

fn store_failure(e: &HubError) -> Response {
    tracing::error!(error = %e, "grant check could not read the store");
    ApiErrorCode::StoreUnavailable.response("the hub cannot check grants right now; try again")
}

/// The bearer token of a request, if it carries exactly one `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token.trim())
}

impl Hub {
    /// The full check: `token` is valid and carries `scope`, and the store holds a live grant
    /// of `scope` for (token's user, token's app, `source_id`) in a live token family.
    pub async fn check_access(
        &self,
        token: &str,
        source_id: &str,
        scope: &'static str,
    ) -> Result<Access, Denied> {
        self.check_access_beside(token, source_id, scope, std::future::ready(()))
            .await
            .0
    }

    /// [`Hub::check_access`], with `beside` (another store read the request needs) run at the
    /// same time as the grant read, so the request waits for one store round trip rather than
    /// two. `beside` runs only for a token that verified: a request without a valid token
    /// reads nothing from the store. Its result is `None` when it did not run.
    pub async fn check_access_beside<T>(
        &self,
        token: &str,
        source_id: &str,
        scope: &'static str,
        beside: impl Future<Output = T>,
    ) -> (Result<Access, Denied>, Option<T>) {
        let started = std::time::Instant::now();
        let counted = |checked: &Result<Access, Denied>| {
            let outcome = match checked {
                Ok(_) => "ok",
                Err(denied) => denied.metric_code(),
            };
            self.metrics.grant_check(outcome, started.elapsed());
        };
        let claims = match self.verified_claims(token, scope) {
            Ok(claims) => claims,
            Err(denied) => {
                // Refused without touching the store.
                let refused = Err(denied);
                counted(&refused);
                return (refused, None);
            }
        };
        let grant = async {
            let checked = self.grant_for(claims, source_id, scope).await;
            counted(&checked);
            checked
        };
        let (checked, beside) = tokio::join!(grant, beside);
        (checked, Some(beside))
    }

    /// The token's claims, when it is valid and carries `scope`.
    fn verified_claims(&self, token: &str, scope: &'static str) -> Result<AccessClaims, Denied> {
        let claims = self.keys.verify(token).map_err(|rejection| {
            tracing::info!(%rejection, "access token refused");
            Denied::InvalidToken(rejection)
        })?;
        if !claims.has_scope(scope) {
            return Err(Denied::InsufficientScope(scope));
        }
        Ok(claims)
    }

    /// The grant read: a live grant of `scope` for the verified token's user and app on
    /// `source_id`, in a live token family.
    async fn grant_for(
        &self,
        claims: AccessClaims,
        source_id: &str,
        scope: &'static str,
    ) -> Result<Access, Denied> {
        let read = std::time::Instant::now();
        let grant = self
            .store
            .active_grant(
                &claims.user_id,
                &claims.app_id,
                source_id,
                &claims.family_id,
            )
            .await;
        self.metrics.store_read("active_grant", read.elapsed());
        let grant = grant?.ok_or(Denied::NoGrant)?;
        if !grant.scopes.iter().any(|s| s == scope) {
            return Err(Denied::InsufficientScope(scope));
        }
        let now = crate::clock::now();
        if grant
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_RESOLUTION)
            && self.first_touch_in_a_while(grant.id, now)
        {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_grant(grant.id, now).await {
                    tracing::warn!(error = %e, "could not record grant use");
                }
            });
        }
        Ok(Access {
            claims,
            source_id: source_id.to_owned(),
        })
    }
}

impl Hub {
    /// Whether this grant's use has not been recorded in the last minute by this node.
    fn first_touch_in_a_while(&self, grant_id: i64, now: i64) -> bool {
        let mut touched = self
            .recently_touched
            .lock()
            .expect("touch record lock poisoned");
        match touched.get(&grant_id) {
            Some(at) if now - *at < LAST_USED_RESOLUTION => false,
            _ => {
                touched.insert(grant_id, now);
                true
            }
        }
    }
}

/// Extractor: the request's bearer token grants `data.read` on the route's `{source}` path
/// parameter. Refuses with 401/403 JSON otherwise.
#[derive(Debug, Clone)]
pub struct SourceAccess {
    /// The verified token.
    pub claims: AccessClaims,
    /// The data source.
    pub source_id: String,
}

impl FromRequestParts<Arc<Hub>> for SourceAccess {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        hub: &Arc<Hub>,
    ) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, hub)
            .await
            .map_err(IntoResponse::into_response)?;
        let source_id = params
            .iter()
            .find(|(name, _)| *name == "source")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiErrorCode::NotFound.response("no data source in the path"))?;
        let token =
            bearer_token(&parts.headers).ok_or_else(|| Denied::MissingToken.into_response())?;
        let access = hub
            .check_access(token, &source_id, scopes::DATA_READ)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(SourceAccess {
            claims: access.claims,
            source_id: access.source_id,
        })
    }
}

/// `GET /api/v1/sources/{source}/access`: answers whether the bearer may read the data source.
/// The smallest protected endpoint; the data API's handlers take [`SourceAccess`] the same way.
pub async fn source_access(access: SourceAccess) -> Response {
    axum::Json(serde_json::json!({
        "allowed": true,
        "source": access.source_id,
        "app": access.claims.app_id,
        "scopes": access.claims.scopes,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_needs_exactly_one_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer def"),
        );
        assert_eq!(bearer_token(&h), None);
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
    }
}
