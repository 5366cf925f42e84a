//! Who may connect: the bearer-token hook, the Origin check, and keeping tokens out of logs.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderMap, Uri, header};
use futures::FutureExt;
use futures::future::BoxFuture;

/// The authenticated party behind a connection, as the authentication hook decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// A stable name for the party (user id, connector id…). Every request of a connection must
    /// authenticate as the same subject.
    pub subject: String,
    /// Anything else the application wants to keep with the connection.
    pub claims: Claims,
}

impl Identity {
    /// An identity for `subject` with no claims.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            claims: Claims::default(),
        }
    }
}

/// What the application keeps with a connection about its party, as a value of its own type:
/// kept as it is, rather than as a JSON tree, since every connection holds one for its life.
///
/// ```
/// use uplink_signalr::server::{Claims, Identity};
///
/// #[derive(Debug, PartialEq)]
/// struct Site { id: u32 }
///
/// let identity = Identity { subject: "site:7".into(), claims: Claims::new(Site { id: 7 }) };
/// assert_eq!(identity.claims.get::<Site>(), Some(&Site { id: 7 }));
/// assert_eq!(identity.claims.get::<String>(), None);
/// ```
#[derive(Clone, Default)]
pub struct Claims(Option<Arc<dyn Any + Send + Sync>>);

impl Claims {
    /// Claims holding `value`.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self(Some(Arc::new(value)))
    }

    /// The value, if there is one of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }

    /// The value shared, if there is one of type `T`: for keeping it beyond the connection's
    /// handle without a copy.
    pub fn shared<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone()?.downcast().ok()
    }
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Claims may hold secrets; their type is not worth printing either.
        f.write_str(if self.0.is_some() {
            "Claims(..)"
        } else {
            "Claims(none)"
        })
    }
}

impl PartialEq for Claims {
    /// The same claims: both none, or one shared value.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What the authentication hook sees of a request.
pub struct AuthRequest {
    /// The bearer token, from `Authorization: Bearer …` or the `access_token` query parameter
    /// (browsers cannot set headers on WebSockets and EventSource).
    pub bearer: Option<String>,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Why the hook refused a request; the message goes back to the client as the 401 body.
#[derive(Debug, Clone)]
pub struct AuthRejection(pub String);

type AuthFn =
    Arc<dyn Fn(AuthRequest) -> BoxFuture<'static, Result<Identity, AuthRejection>> + Send + Sync>;

/// The authentication hook, called for the negotiate request and every transport request.
#[derive(Clone)]
pub struct Authenticator(AuthFn);

impl Authenticator {
    /// Wraps an async function that checks a request.
    pub fn new<F, Fut>(check: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Identity, AuthRejection>> + Send + 'static,
    {
        Self(Arc::new(move |r| check(r).boxed()))
    }

    pub(crate) async fn check(&self, request: AuthRequest) -> Result<Identity, AuthRejection> {
        (self.0)(request).await
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// The bearer token of a request: the `Authorization` header first, else the `access_token`
/// query parameter (browsers cannot set headers on WebSockets and event streams).
pub fn bearer_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return Some(token.trim().to_string());
        }
    }
    query_param(uri, "access_token")
}

/// The first query parameter called `name`, both name and value form-decoded, as every
/// route of the server reads `id`, `access_token` and `negotiateVersion`.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The URI with `access_token` and `id` (the connection token) replaced, for logging.
///
/// ```
/// use axum::http::Uri;
/// use uplink_signalr::server::redacted_uri;
///
/// let uri: Uri = "/hubs/x?id=secret&access_token=tok&_=1".parse().unwrap();
/// assert_eq!(redacted_uri(&uri), "/hubs/x?id=<redacted>&access_token=<redacted>&_=1");
/// ```
pub fn redacted_uri(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_string();
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            // Names are compared decoded, as `query_param` reads them: `acc%65ss_token` is the
            // access token too.
            Some((k, _)) if is_secret_param(k) => format!("{k}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
}

fn is_secret_param(raw_name: &str) -> bool {
    url::form_urlencoded::parse(raw_name.as_bytes())
        .next()
        .is_some_and(|(name, _)| name == "access_token" || name == "id")
}

/// Which browser origins may connect. Requests without an `Origin` header (non-browser clients)
/// are always allowed: the check protects browsers' ambient credentials, not the endpoint.
#[derive(Debug, Clone, Default)]
pub enum OriginPolicy {
    /// Only pages served from the same host (the `Origin`'s host equals the `Host` header).
    #[default]
    SameOrigin,
    /// The same host, or one of these origins (e.g. `https://app.example.com`).
    Allow(Vec<String>),
    /// Any origin.
    Any,
}

impl OriginPolicy {
    /// Whether a request with these headers passes.
    pub fn permits(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let same_host = || {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
        };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::SameOrigin => same_host(),
            OriginPolicy::Allow(list) => {
                same_host() || list.iter().any(|o| o.eq_ignore_ascii_case(origin))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_percent_encoded_secret_name_is_redacted_too() {
        // The server reads `acc%65ss_token` as the access token, so the log must not show it.
        let uri: Uri = "/h?acc%65ss_token=s3cret&%69d=c0nn&_=1&access_token"
            .parse()
            .unwrap();
        assert_eq!(
            bearer_token(&HeaderMap::new(), &uri).as_deref(),
            Some("s3cret")
        );
        assert_eq!(query_param(&uri, "id").as_deref(), Some("c0nn"));
        let logged = redacted_uri(&uri);
        assert!(
            !logged.contains("s3cret") && !logged.contains("c0nn"),
            "{logged}"
        );
        assert_eq!(
            logged,
            "/h?acc%65ss_token=<redacted>&%69d=<redacted>&_=1&access_token"
        );
    }

    #[test]
    fn bearer_comes_from_header_then_query() {
        let mut headers = HeaderMap::new();
        let uri: Uri = "/h?access_token=fromquery".parse().unwrap();
        assert_eq!(bearer_token(&headers, &uri).as_deref(), Some("fromquery"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer fromheader"),
        );
        assert_eq!(bearer_token(&headers, &uri).as_deref(), Some("fromheader"));
        let plain: Uri = "/h".parse().unwrap();
        assert_eq!(
            bearer_token(&HeaderMap::new(), &plain),
            None,
            "no token anywhere"
        );
    }

    #[test]
    fn origin_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("hub.example:8443"));
        assert!(
            OriginPolicy::SameOrigin.permits(&headers),
            "no Origin header"
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://hub.example:8443"),
        );
        assert!(OriginPolicy::SameOrigin.permits(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!OriginPolicy::SameOrigin.permits(&headers));
        assert!(OriginPolicy::Allow(vec!["https://evil.example".into()]).permits(&headers));
        assert!(OriginPolicy::Any.permits(&headers));
    }

    #[test]
    fn debug_hides_the_token() {
        let r = AuthRequest {
            bearer: Some("s3cret".into()),
            headers: HeaderMap::new(),
        };
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
