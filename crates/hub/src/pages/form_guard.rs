//! Cross-site request forgery defences for the hub's forms: a POST must come from the hub's
//! own pages (Origin or Sec-Fetch-Site says so), from a signed-in browser, and carry the
//! form's token. [`GuardedForm`] does all three, in that order, for every signed-in form; a
//! handler that takes it only ever sees a submission that passed.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::fields::Fields;
use super::layout::error_page;
use super::session::{self, SignedIn};
use crate::hub::Hub;
use crate::secret::equal;

/// Which token a guarded form carries, and how it answers a browser that is not signed in.
pub trait FormKind {
    /// The token this form must carry for `who`, or None when the form lacks what the token
    /// is bound to (the submission is then refused as forged).
    fn expected_token(who: &SignedIn, form: &Fields) -> Option<String>;

    /// The answer to a browser that is not signed in, given before the origin is checked;
    /// None (the default) refuses it as forged, after the origin check.
    fn signed_out() -> Option<Response> {
        None
    }
}

/// The signed-in account forms (settings, device approval): the session's settings token.
#[derive(Debug)]
pub enum AccountForm {}

impl FormKind for AccountForm {
    fn expected_token(who: &SignedIn, _form: &Fields) -> Option<String> {
        Some(who.csrf_token())
    }
}

/// The consent form: a token bound to the session and to the form's `request`.
#[derive(Debug)]
pub enum ConsentForm {}

impl FormKind for ConsentForm {
    fn expected_token(who: &SignedIn, form: &Fields) -> Option<String> {
        form.one("request")
            .map(|request| who.consent_token(request))
    }
}

/// The sign-out button: the settings token; a browser already signed out is sent to the
/// sign-in page whatever the origin.
#[derive(Debug)]
pub enum SignOutForm {}

impl FormKind for SignOutForm {
    fn expected_token(who: &SignedIn, _form: &Fields) -> Option<String> {
        Some(who.csrf_token())
    }

    fn signed_out() -> Option<Response> {
        Some(Redirect::to("/account/login").into_response())
    }
}

/// A form POST that came from the hub's own page, from a signed-in browser, with the right
/// token for its kind `K`. Any other submission is answered with [`forged`] (or `K`'s
/// signed-out answer) before the handler runs.
#[derive(Debug)]
pub struct GuardedForm<K: FormKind = AccountForm> {
    /// The signed-in browser that submitted it.
    pub who: SignedIn,
    /// The submitted fields.
    pub form: Fields,
    kind: PhantomData<K>,
}

impl<K: FormKind> FromRequest<Arc<Hub>> for GuardedForm<K> {
    type Rejection = Response;

    async fn from_request(request: Request, hub: &Arc<Hub>) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, hub)
            .await
            .map_err(IntoResponse::into_response)?;
        let cross_site = !same_origin(&headers, &hub.config.issuer);
        let signed_out = K::signed_out();
        if cross_site && signed_out.is_none() {
            return Err(forged());
        }
        let Some(who) = session::signed_in(hub, &headers).await else {
            return Err(signed_out.unwrap_or_else(forged));
        };
        if cross_site {
            return Err(forged());
        }
        let form = Fields::parse(&body);
        let Some(expected) = K::expected_token(&who, &form) else {
            return Err(forged());
        };
        if !token_matches(&expected, form.one("csrf")) {
            return Err(forged());
        }
        Ok(Self {
            who,
            form,
            kind: PhantomData,
        })
    }
}

/// Whether the request says it came from a page of `issuer` itself. Browsers send `Origin`
/// on every POST and `Sec-Fetch-Site` on every request; at least one must be present and
/// every one present must agree.
pub fn same_origin(headers: &HeaderMap, issuer: &str) -> bool {
    let fetch_site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    let origin = headers.get("origin").map(|v| v.as_bytes());
    if fetch_site.is_none() && origin.is_none() {
        return false;
    }
    fetch_site.is_none_or(|s| s == b"same-origin") && origin.is_none_or(|o| o == issuer.as_bytes())
}

/// Whether a submitted form token equals the expected one (constant time).
pub fn token_matches(expected: &str, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|s| equal(expected.as_bytes(), s.as_bytes()))
}

/// The page shown when a form fails these checks.
pub fn forged() -> Response {
    tracing::warn!("form submission refused: cross-site or without a valid token");
    error_page(
        StatusCode::FORBIDDEN,
        "This form could not be accepted",
        "It did not come from this hub's own page, or the page was too old. Go back, reload the page and try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const ISSUER: &str = "https://hub.test";

    #[test]
    fn cross_site_and_anonymous_posts_are_refused() {
        let mut h = HeaderMap::new();
        assert!(!same_origin(&h, ISSUER));
        h.insert("origin", HeaderValue::from_static("https://hub.test"));
        assert!(same_origin(&h, ISSUER));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, ISSUER));
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_static("https://evil.test"));
        assert!(!same_origin(&h, ISSUER));
        h.insert("origin", HeaderValue::from_static("null"));
        assert!(!same_origin(&h, ISSUER));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", Some("abc")));
        assert!(!token_matches("abc", Some("abd")));
        assert!(!token_matches("abc", None));
    }
}
