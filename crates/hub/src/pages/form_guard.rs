//! Cross-site request forgery defences for the hub's forms: a POST must come from the hub's
//! own pages (Origin or Sec-Fetch-Site says so) and carry the form's token.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::layout::error_page;
use crate::secret::equal;

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
