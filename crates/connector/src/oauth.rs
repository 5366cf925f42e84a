//! The connector's side of the hub's OAuth endpoints: client credentials for connectors an
//! administrator registered, the device flow (RFC 8628) for connectors their owner signs in,
//! and rotating refresh tokens (docs/protocol.md §1).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use uplink_link::{CONNECTOR_CLIENT_ID, CONNECTOR_SCOPE};

use crate::LinkError;

/// An access token the hub issued, with its lifetime and (device flow) the next refresh token.
#[derive(Clone, Deserialize)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it stays valid.
    #[serde(default = "default_lifetime")]
    pub expires_in: u64,
    /// The refresh token that replaces the one used (device flow only).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

fn default_lifetime() -> u64 {
    600
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl IssuedToken {
    /// How long the token can be relied on. Expiry claims are whole seconds, so the token may
    /// expire up to a second before `expires_in` has passed: count one second less.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.expires_in.saturating_sub(1).max(1))
    }
}

/// The answer to a device authorization request: what to show the owner.
#[derive(Clone, Deserialize)]
pub struct DeviceAuthorization {
    /// Secret: polled with; never shown.
    pub device_code: String,
    /// The code the owner types at the verification page.
    pub user_code: String,
    /// The page where the owner approves.
    pub verification_uri: String,
    /// The page with the code filled in.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds before the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Talks to one hub's token endpoints.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    base: String,
}

impl OAuthClient {
    /// A client for the hub at `hub_url` (`https://hub.example`), trusting `tls`.
    ///
    /// # Errors
    /// [`LinkError::Config`] when the HTTP client cannot be built.
    pub fn new(hub_url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Self, LinkError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            // A fresh connection for every token request: they come once per link and renewal,
            // and after the network silently dropped the link (a half-open connection), a kept
            // one is as dead as the link, so reusing it would hold up the reconnect 30 s.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| LinkError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: hub_url.trim_end_matches('/').to_owned(),
        })
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Result<reqwest::Response, OAuthErrorBody>, LinkError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url).form(form);
        if let Some((user, password)) = basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request.send().await.map_err(|e| LinkError::Hub {
            message: format!("cannot reach {url}: {}", without_url(&e)),
        })?;
        if response.status().is_success() {
            return Ok(Ok(response));
        }
        let status = response.status();
        match response.json::<OAuthErrorBody>().await {
            Ok(body) => Ok(Err(body)),
            Err(_) => Err(LinkError::Hub {
                message: format!("{url} answered HTTP {}", status.as_u16()),
            }),
        }
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<IssuedToken, LinkError> {
        match self.post("/oauth/token", form, basic).await? {
            Ok(response) => response.json().await.map_err(|e| LinkError::Hub {
                message: format!("unreadable token answer: {}", without_url(&e)),
            }),
            Err(body) => Err(LinkError::Refused {
                code: body.error,
                message: body.error_description.unwrap_or_default(),
            }),
        }
    }

    /// A token for a connector registered by an administrator.
    ///
    /// # Errors
    /// [`LinkError::Refused`] when the hub refuses the credential; [`LinkError::Hub`] when it
    /// cannot be reached.
    pub async fn client_credentials(
        &self,
        connector_id: &str,
        credential: &str,
    ) -> Result<IssuedToken, LinkError> {
        self.token(
            &[
                ("grant_type", "client_credentials"),
                ("scope", CONNECTOR_SCOPE),
            ],
            Some((connector_id, credential)),
        )
        .await
    }

    /// A token from a refresh token; the answer carries the next refresh token, which must be
    /// stored before anything else happens.
    ///
    /// # Errors
    /// As [`client_credentials`](Self::client_credentials).
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedToken, LinkError> {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", CONNECTOR_CLIENT_ID),
            ],
            None,
        )
        .await
    }

    /// Ends a sign-in at the hub (RFC 7009): the refresh token's whole family is revoked, so
    /// the hub lets a newer sign-in of this connector take its place.
    ///
    /// # Errors
    /// As [`client_credentials`](Self::client_credentials).
    pub async fn revoke(&self, refresh_token: &str) -> Result<(), LinkError> {
        match self
            .post(
                "/oauth/revoke",
                &[
                    ("token", refresh_token),
                    ("token_type_hint", "refresh_token"),
                    ("client_id", CONNECTOR_CLIENT_ID),
                ],
                None,
            )
            .await?
        {
            Ok(_) => Ok(()),
            Err(body) => Err(LinkError::Refused {
                code: body.error,
                message: body.error_description.unwrap_or_default(),
            }),
        }
    }

    /// Starts the device flow.
    ///
    /// # Errors
    /// As [`client_credentials`](Self::client_credentials).
    pub async fn device_authorization(&self) -> Result<DeviceAuthorization, LinkError> {
        let form = [
            ("client_id", CONNECTOR_CLIENT_ID),
            ("scope", CONNECTOR_SCOPE),
        ];
        match self
            .post("/oauth/device_authorization", &form, None)
            .await?
        {
            Ok(response) => response.json().await.map_err(|e| LinkError::Hub {
                message: format!("unreadable device authorization: {}", without_url(&e)),
            }),
            Err(body) => Err(LinkError::Refused {
                code: body.error,
                message: body.error_description.unwrap_or_default(),
            }),
        }
    }

    /// Polls until the owner approved (the token), denied or let the code expire (an error),
    /// waiting `interval` between polls and longer when asked to slow down.
    ///
    /// # Errors
    /// [`LinkError::Refused`] with `access_denied` or `expired_token`, or as
    /// [`client_credentials`](Self::client_credentials).
    pub async fn poll_device(
        &self,
        authorization: &DeviceAuthorization,
    ) -> Result<IssuedToken, LinkError> {
        let mut interval = Duration::from_secs(authorization.interval.max(1));
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(authorization.expires_in.max(1));
        loop {
            tokio::time::sleep(interval).await;
            let polled = self
                .token(
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", &authorization.device_code),
                        ("client_id", CONNECTOR_CLIENT_ID),
                    ],
                    None,
                )
                .await;
            match polled {
                Ok(token) => return Ok(token),
                Err(LinkError::Refused { code, .. }) if code == "authorization_pending" => {}
                Err(LinkError::Refused { code, .. }) if code == "slow_down" => {
                    interval += Duration::from_secs(5);
                }
                Err(other) => return Err(other),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LinkError::Refused {
                    code: "expired_token".into(),
                    message: "the code expired before it was approved; run the sign-in again"
                        .into(),
                });
            }
        }
    }
}

/// A reqwest error's causes without its own text, which only repeats the URL already named.
pub(crate) fn without_url(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_hub_is_named_once_with_the_cause() {
        uplink_tls::install_crypto_provider();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls = uplink_tls::client_config(&uplink_tls::Trust::Platform).unwrap();
        let client = OAuthClient::new(&format!("https://127.0.0.1:{port}/"), tls).unwrap();
        let error = client
            .client_credentials("con_x", "secret-credential")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(error.matches("127.0.0.1").count(), 1, "{error}");
        assert!(error.contains("refused"), "{error}");
        assert!(!error.contains("secret-credential"));
    }

    #[test]
    fn issued_tokens_never_show_their_secrets() {
        let token: IssuedToken = serde_json::from_str(
            r#"{"access_token":"at-secret","expires_in":600,"refresh_token":"rt-secret"}"#,
        )
        .unwrap();
        let shown = format!("{token:?}");
        assert!(
            !shown.contains("at-secret") && !shown.contains("rt-secret"),
            "{shown}"
        );
        // Whole-second expiry claims may cut up to a second off.
        assert_eq!(token.lifetime(), Duration::from_secs(599));
    }
}
