//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): `client_secret_basic` or `client_secret_post` for confidential apps,
//! `none` (client id only, PKCE proves the rest) for public apps. One method per request.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::OAuthError;
use super::params::Params;
use crate::hub::Hub;
use crate::secret::{digest, equal};
use crate::store::App;

/// The credentials a request presented.
#[derive(Debug)]
struct Presented {
    client_id: String,
    secret: Option<String>,
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<Presented>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client("unreadable Authorization header"))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client(
            "unreadable Authorization header",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "client authentication must use the Basic scheme",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| OAuthError::invalid_client("unreadable Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client("unreadable Basic credentials"))?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some(Presented {
        client_id: unescape(id),
        secret: Some(unescape(secret)),
    }))
}

/// The client id and secret a request presents, by exactly one method: HTTP Basic, or the
/// `client_id` (and `client_secret`) form fields.
pub(crate) fn presented(
    headers: &HeaderMap,
    params: &Params,
) -> Result<(String, Option<String>), OAuthError> {
    let presented = match basic_credentials(headers)? {
        Some(basic) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not both Basic and client_secret",
                ));
            }
            if params
                .get("client_id")
                .is_some_and(|id| id != basic.client_id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            basic
        }
        None => Presented {
            client_id: params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?
                .to_owned(),
            secret: params.get("client_secret").map(str::to_owned),
        },
    };
    Ok((presented.client_id, presented.secret))
}

/// Authenticates the calling app. Unknown apps, wrong or missing secrets, secrets presented
/// by public apps, and mixed methods are all refused.
pub async fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    params: &Params,
) -> Result<App, OAuthError> {
    let (client_id, secret) = presented(headers, params)?;
    let app = hub
        .store
        .app(&client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    match (&app.secret_digest, secret) {
        (Some(expected), Some(secret)) if equal(expected, &digest(&secret)) => Ok(app),
        (None, None) if !app.confidential => Ok(app),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "this app is public: it has no secret to present",
        )),
        _ => {
            tracing::info!(client_id = %app.client_id, "client authentication failed");
            Err(OAuthError::invalid_client("client authentication failed"))
        }
    }
}
