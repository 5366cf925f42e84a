//! Signing a connector in to its hub through the system browser (RFC 8252): the
//! authorization-code flow with PKCE (S256) for the hub's built-in public client
//! `uplink-connector`, its code returned to a one-shot listener on `127.0.0.1` (any port).
//!
//! [`BrowserSignIn::start`] reads the hub's metadata (RFC 8414), binds the listener, opens the
//! browser at the authorize URL and hands back a [`PendingSignIn`] to show and a [`SignInTask`]
//! to await. The task accepts exactly one callback carrying its `state`: a callback with another
//! `state` is ignored (a stray request cannot cancel the sign-in); an `iss` (RFC 9207) that is
//! not the hub's fails it; a good one is exchanged for tokens and the browser tab says it may
//! close. It ends after [`SIGN_IN_TIMEOUT`], when cancelled, or when dropped, and the
//! listener goes with it.
//!
//! The outcome, [`SignedIn`], becomes the same [`LinkCredentials`] a device-flow sign-in
//! (`uplink connector login`) leaves: a rotating refresh token for `uplink-connector`, kept by
//! the [`CredentialStore`], which [`ConnectorRuntime::sign_in`](crate::ConnectorRuntime::sign_in)
//! links with.
//!
//! ```no_run
//! # async fn run(runtime: uplink_connector::ConnectorRuntime) -> Result<(), Box<dyn std::error::Error>> {
//! use uplink_connector::browser_sign_in::BrowserSignIn;
//! use uplink_connector::credentials::CredentialStore;
//!
//! let (pending, task) = BrowserSignIn::new()
//!     .start("https://hub.example", uplink_tls::Trust::Platform)
//!     .await?;
//! tracing::info!(url = %pending.authorize_url, "waiting for the browser");
//! let signed_in = task.await?;
//! let previous = CredentialStore::new(runtime.data_dir()).load().ok().flatten();
//! runtime.sign_in(signed_in.credentials(previous.as_ref())).await?;
//! # Ok(()) }
//! ```

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use ts_rs::TS;
use uplink_link::{CONNECTOR_CLIENT_ID, CONNECTOR_SCOPE};

use crate::config::ConfigError;
use crate::credentials::{CredentialStore, LinkCredentials, LinkSecret, generate_connector_id};

/// How long a sign-in waits for the browser to come back.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The path of the loopback redirect URI, as the hub registers it for `uplink-connector`
/// (`http://127.0.0.1/callback`, any port).
pub const CALLBACK_PATH: &str = "/callback";
/// How long the listener may take to finish the answer to the browser once the sign-in is over.
const FAREWELL: Duration = Duration::from_secs(5);
/// Longest text from the hub or the browser quoted in an error.
const QUOTE_LIMIT: usize = 200;

/// Opens a URL for the person signing in; the default is the system browser.
pub type BrowserOpener = Arc<dyn Fn(&str) -> std::io::Result<()> + Send + Sync>;

/// Why a browser sign-in did not complete. Messages never carry an authorization code, a
/// token or the PKCE verifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The hub address is not one to sign in to (the reason; the address is not quoted, it
    /// might carry a password).
    #[error("the hub address is not valid: {0}; use https://host[:port]")]
    InvalidHubUrl(&'static str),
    /// The certificate authority to trust could not be used.
    #[error("the hub's CA certificate cannot be used: {0}")]
    Trust(String),
    /// The hub could not be reached, or its metadata does not allow this sign-in.
    #[error("{message}")]
    Hub {
        /// What happened, naming the hub.
        message: String,
    },
    /// No loopback listener could be opened for the browser's return.
    #[error("cannot listen on 127.0.0.1 for the browser's return: {0}")]
    Listener(#[source] std::io::Error),
    /// The callback named another issuer than the hub (RFC 9207): a mix-up attack, or a response
    /// from another hub.
    #[error("the browser returned from issuer '{returned}', not from {expected}; nothing was kept")]
    IssuerMismatch {
        /// The hub's issuer.
        expected: String,
        /// The issuer in the callback (cut short).
        returned: String,
    },
    /// The hub promises to name itself in its responses (RFC 9207) and this one did not.
    #[error("the browser returned without naming the hub (iss) although {expected} always does")]
    IssuerMissing {
        /// The hub's issuer.
        expected: String,
    },
    /// The hub (or the person) refused: `access_denied`, `invalid_scope`, `invalid_grant`…
    #[error("the hub refused the sign-in: {code}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Refused {
        /// The OAuth error code.
        code: String,
        /// The hub's explanation (cut short).
        description: String,
    },
    /// The callback carried neither a code nor an error.
    #[error("the browser returned without an authorization code")]
    MissingCode,
    /// The hub issued tokens without the refresh token a connector keeps.
    #[error("the hub issued no refresh token for the connector")]
    NoRefreshToken,
    /// Nobody finished signing in within the time allowed.
    #[error("the sign-in was not completed within {} minutes; start it again", .0.as_secs().div_ceil(60))]
    TimedOut(Duration),
    /// The sign-in was cancelled.
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// The credentials could not be saved.
    #[error(transparent)]
    Store(#[from] ConfigError),
}

impl SignInError {
    /// A stable snake_case code for `{code, message}` bodies (the control contract's codes).
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::InvalidHubUrl(_) | SignInError::Trust(_) => "invalid_arguments",
            SignInError::Hub { .. } => "hub_unreachable",
            SignInError::Listener(_) => "io",
            SignInError::Cancelled => "sign_in_cancelled",
            SignInError::Store(err) => err.code(),
            SignInError::IssuerMismatch { .. }
            | SignInError::IssuerMissing { .. }
            | SignInError::Refused { .. }
            | SignInError::MissingCode
            | SignInError::NoRefreshToken
            | SignInError::TimedOut(_) => "sign_in_failed",
        }
    }
}

/// A browser sign-in waiting for its redirect: what a UI shows (a link to open by hand when no
/// browser could be opened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PendingSignIn {
    /// The hub signed in to (its issuer).
    pub hub_url: String,
    /// The hub's authorize URL the browser was sent to. It carries the PKCE challenge and the
    /// state, never the verifier.
    pub authorize_url: String,
    /// When the sign-in started.
    pub started_at: DateTime<Utc>,
    /// Whether the system browser was opened; when not, the UI must offer the link.
    #[serde(skip)]
    #[ts(skip)]
    pub browser_opened: bool,
}

/// A completed sign-in: the hub, the trust it was reached with, and the refresh token.
#[derive(Clone)]
pub struct SignedIn {
    /// The hub signed in to (its issuer, no trailing slash).
    pub hub_url: String,
    /// The PEM CA trusted for the hub, when not the platform's roots.
    pub ca_pem: Option<String>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    refresh_token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("hub_url", &self.hub_url)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("scopes", &self.scopes)
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

impl SignedIn {
    /// The refresh token (rotates at its first use: hand it to the runtime, not to two places).
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The credentials to link with, as `uplink connector login` leaves them: the connector
    /// keeps the id of an earlier sign-in to the same hub (its grants refer to it), or gets a
    /// new one.
    pub fn credentials(&self, previous: Option<&LinkCredentials>) -> LinkCredentials {
        let connector_id = match previous {
            Some(previous) if previous.hub_url.trim_end_matches('/') == self.hub_url => {
                previous.connector_id.clone()
            }
            _ => generate_connector_id(),
        };
        LinkCredentials {
            hub_url: self.hub_url.clone(),
            connector_id,
            ca_pem: self.ca_pem.clone(),
            secret: LinkSecret::RefreshToken {
                refresh_token: self.refresh_token.clone(),
            },
        }
    }

    /// Saves [`credentials`](Self::credentials) into `store` (atomically, owner-only), for a
    /// host without a running runtime; returns what was saved.
    ///
    /// # Errors
    /// [`SignInError::Store`].
    pub fn save(&self, store: &CredentialStore) -> Result<LinkCredentials, SignInError> {
        // An unreadable old file is replaced: signing in again is how it gets fixed.
        let previous = store.load().ok().flatten();
        let credentials = self.credentials(previous.as_ref());
        store.save(&credentials)?;
        Ok(credentials)
    }
}

/// Cancels a running sign-in from elsewhere; its task then ends with
/// [`SignInError::Cancelled`] and releases the listener. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CancelSignIn(Arc<watch::Sender<bool>>);

impl CancelSignIn {
    /// Asks the sign-in to stop.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// The sign-in in progress: await it for the outcome. Dropping it cancels the sign-in at once
/// and closes the listener.
#[must_use = "a sign-in only proceeds while its task is awaited"]
pub struct SignInTask {
    run: Pin<Box<dyn Future<Output = Result<SignedIn, SignInError>> + Send>>,
    cancel: CancelSignIn,
}

impl std::fmt::Debug for SignInTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInTask").finish_non_exhaustive()
    }
}

impl SignInTask {
    /// A handle that cancels this sign-in.
    pub fn canceller(&self) -> CancelSignIn {
        self.cancel.clone()
    }
}

impl Future for SignInTask {
    type Output = Result<SignedIn, SignInError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.run.as_mut().poll(cx)
    }
}

/// Starts browser sign-ins; [`BrowserSignIn::new`] opens the system browser and waits
/// [`SIGN_IN_TIMEOUT`].
#[derive(Clone)]
pub struct BrowserSignIn {
    opener: BrowserOpener,
    timeout: Duration,
}

impl std::fmt::Debug for BrowserSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSignIn")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for BrowserSignIn {
    fn default() -> Self {
        Self::new()
    }
}

/// The hub's metadata (RFC 8414), the parts a sign-in needs.
#[derive(Debug, Deserialize)]
struct HubMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// An `oauth2` client with the endpoints a code flow needs.
type CodeFlowClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What one sign-in needs once the browser is on its way.
struct Flow {
    oauth: CodeFlowClient,
    http: reqwest::Client,
    issuer: String,
    issuer_required: bool,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    ca_pem: Option<String>,
    timeout: Duration,
}

impl BrowserSignIn {
    /// Sign-ins that open the system browser (the `webbrowser` crate) and wait ten minutes.
    pub fn new() -> Self {
        Self {
            opener: Arc::new(open_system_browser),
            timeout: SIGN_IN_TIMEOUT,
        }
    }

    /// Opens the authorize URL with `opener` instead of the system browser (a test drives it
    /// with an HTTP client; a host may show it its own way).
    pub fn with_opener(
        mut self,
        opener: impl Fn(&str) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.opener = Arc::new(opener);
        self
    }

    /// Waits `timeout` for the browser instead of [`SIGN_IN_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts signing in to the hub at `hub_url` (`https://…`, trusted with `trust`): reads its
    /// metadata, listens on `127.0.0.1:0`, opens the browser at the authorize URL. A browser
    /// that cannot be opened is logged, not fatal: the UI offers the URL.
    ///
    /// # Errors
    /// [`SignInError::InvalidHubUrl`], [`SignInError::Trust`], [`SignInError::Hub`] (unreachable,
    /// or metadata that does not fit: another issuer, no S256) or [`SignInError::Listener`].
    pub async fn start(
        &self,
        hub_url: &str,
        trust: uplink_tls::Trust,
    ) -> Result<(PendingSignIn, SignInTask), SignInError> {
        let issuer = hub_issuer(hub_url)?;
        let tls =
            uplink_tls::client_config(&trust).map_err(|e| SignInError::Trust(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SignInError::Trust(format!("HTTP client: {e}")))?;
        let metadata = fetch_metadata(&http, &issuer).await?;

        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(SignInError::Listener)?;
        let port = listener.local_addr().map_err(SignInError::Listener)?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");

        let endpoint = |url: &str, what: &str| SignInError::Hub {
            message: format!("the hub at {issuer} gives an unusable {what} endpoint '{url}'"),
        };
        let oauth = BasicClient::new(ClientId::new(CONNECTOR_CLIENT_ID.to_owned()))
            .set_auth_uri(
                AuthUrl::new(metadata.authorization_endpoint.clone())
                    .map_err(|_| endpoint(&metadata.authorization_endpoint, "authorization"))?,
            )
            .set_token_uri(
                TokenUrl::new(metadata.token_endpoint.clone())
                    .map_err(|_| endpoint(&metadata.token_endpoint, "token"))?,
            )
            .set_redirect_uri(RedirectUrl::new(redirect_uri).map_err(|e| {
                SignInError::Listener(std::io::Error::other(format!("loopback redirect URI: {e}")))
            })?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, state) = oauth
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new(CONNECTOR_SCOPE.to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let authorize_url = authorize_url.to_string();

        let opener = self.opener.clone();
        let url = authorize_url.clone();
        let browser_opened = match tokio::task::spawn_blocking(move || opener(&url)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, hub = %issuer, "no browser could be opened for the sign-in; open the URL by hand");
                false
            }
            Err(error) => {
                tracing::warn!(%error, hub = %issuer, "opening the browser failed");
                false
            }
        };
        tracing::info!(hub = %issuer, port, browser_opened, "browser sign-in started; waiting for the redirect");

        let pending = PendingSignIn {
            hub_url: issuer.clone(),
            authorize_url,
            started_at: Utc::now(),
            browser_opened,
        };
        let (cancel, cancelled) = watch::channel(false);
        let flow = Flow {
            oauth,
            http,
            issuer_required: metadata.authorization_response_iss_parameter_supported,
            issuer,
            state,
            verifier,
            ca_pem: match trust {
                uplink_tls::Trust::CustomCa(pem) => Some(pem),
                uplink_tls::Trust::Platform => None,
            },
            timeout: self.timeout,
        };
        let task = SignInTask {
            run: Box::pin(flow.run(listener, cancelled)),
            cancel: CancelSignIn(Arc::new(cancel)),
        };
        Ok((pending, task))
    }
}

/// Opens `url` in the system browser. Without a graphical session (a server reached over SSH)
/// nothing is tried: the fallbacks there are text browsers, which would take over the terminal.
///
/// # Errors
/// When there is no graphical session or no browser could be started.
pub fn open_system_browser(url: &str) -> std::io::Result<()> {
    #[cfg(all(unix, not(target_os = "macos")))]
    if std::env::var_os("BROWSER").is_none()
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no graphical session to open a browser in",
        ));
    }
    webbrowser::open(url)
}

/// The issuer a hub URL names: `https`, a host, no path beyond `/`, no query, no trailing slash.
fn hub_issuer(hub_url: &str) -> Result<String, SignInError> {
    let trimmed = hub_url.trim().trim_end_matches('/');
    let parsed =
        url::Url::parse(trimmed).map_err(|_| SignInError::InvalidHubUrl("it is not a URL"))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() {
        return Err(SignInError::InvalidHubUrl(
            "it is not an https address (the link is always encrypted)",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(SignInError::InvalidHubUrl(
            "it carries a user name or password",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(SignInError::InvalidHubUrl("it has a query or fragment"));
    }
    Ok(trimmed.to_owned())
}

async fn fetch_metadata(http: &reqwest::Client, issuer: &str) -> Result<HubMetadata, SignInError> {
    let url = format!("{issuer}/.well-known/oauth-authorization-server");
    let response = http.get(&url).send().await.map_err(|e| SignInError::Hub {
        message: format!(
            "cannot reach the hub at {issuer}: {}",
            crate::oauth::without_url(&e)
        ),
    })?;
    if !response.status().is_success() {
        return Err(SignInError::Hub {
            message: format!(
                "the hub at {issuer} answered HTTP {} for its OAuth metadata; is it an Uplink hub?",
                response.status().as_u16()
            ),
        });
    }
    let metadata: HubMetadata = response.json().await.map_err(|_| SignInError::Hub {
        message: format!("the hub at {issuer} sent unreadable OAuth metadata"),
    })?;
    // RFC 8414 §3.3: the metadata must name the issuer it was fetched from.
    if metadata.issuer.trim_end_matches('/') != issuer {
        return Err(SignInError::Hub {
            message: format!(
                "the hub at {issuer} calls itself '{}'; sign in with that address",
                quote(&metadata.issuer)
            ),
        });
    }
    if !metadata
        .code_challenge_methods_supported
        .iter()
        .any(|m| m == "S256")
    {
        return Err(SignInError::Hub {
            message: format!("the hub at {issuer} does not offer PKCE with S256"),
        });
    }
    for endpoint in [&metadata.authorization_endpoint, &metadata.token_endpoint] {
        if !endpoint.starts_with("https://") {
            return Err(SignInError::Hub {
                message: format!(
                    "the hub at {issuer} gives an endpoint that is not https: '{}'",
                    quote(endpoint)
                ),
            });
        }
    }
    Ok(metadata)
}

/// One request to the loopback listener's callback, waiting for the page to answer with.
struct Callback {
    query: String,
    reply: oneshot::Sender<Page>,
}

/// The pages the listener shows in the browser tab: plain, local, nothing fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    SignedIn,
    Failed,
    NotThisSignIn,
    Cancelled,
    NotFound,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Page::SignedIn => (
                StatusCode::OK,
                "Signed in — you can close this tab",
                "Uplink received the hub's answer and is linking the connector.",
            ),
            Page::Failed => (
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                "Uplink did not accept this answer. Go back to Uplink to see why and start again.",
            ),
            Page::NotThisSignIn => (
                StatusCode::BAD_REQUEST,
                "Not this sign-in's answer",
                "Uplink is waiting for another answer from the hub and ignored this one. If you started the sign-in, finish it in the tab Uplink opened.",
            ),
            Page::Cancelled => (
                StatusCode::GONE,
                "No sign-in is waiting",
                "This sign-in was cancelled or has ended. Start again from Uplink.",
            ),
            Page::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "Uplink only listens here for the hub's answer to a sign-in.",
            ),
        };
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;\
             margin:4rem auto;padding:0 1rem;color:#1f2933}}h1{{font-size:1.4rem}}</style></head>\
             <body><h1>{title}</h1><p>{text}</p></body></html>"
        );
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        // The address holds the code: keep it out of caches and referrers.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

async fn callback(State(calls): State<mpsc::Sender<Callback>>, RawQuery(query): RawQuery) -> Page {
    let (reply, page) = oneshot::channel();
    let call = Callback {
        query: query.unwrap_or_default(),
        reply,
    };
    if calls.send(call).await.is_err() {
        return Page::Cancelled;
    }
    page.await.unwrap_or(Page::Cancelled)
}

/// The callback's parameters; a repeated one makes the callback invalid.
struct CallbackParams(Vec<(String, String)>);

impl CallbackParams {
    fn parse(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The single value of `name`; `Err` when repeated.
    fn one(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(());
        }
        Ok(first)
    }
}

impl Flow {
    async fn run(
        self,
        listener: tokio::net::TcpListener,
        mut cancelled: watch::Receiver<bool>,
    ) -> Result<SignedIn, SignInError> {
        let (calls, mut incoming) = mpsc::channel::<Callback>(1);
        let app = axum::Router::new()
            .route(CALLBACK_PATH, axum::routing::get(callback))
            .fallback(|| async { Page::NotFound })
            .with_state(calls);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future();
        tokio::pin!(server);

        let timeout = self.timeout;
        let outcome = {
            let waiting = self.complete(&mut incoming);
            tokio::pin!(waiting);
            tokio::select! {
                outcome = &mut waiting => outcome,
                _ = tokio::time::sleep(timeout) => Err(SignInError::TimedOut(timeout)),
                _ = cancelled.wait_for(|c| *c) => Err(SignInError::Cancelled),
                served = &mut server => Err(SignInError::Listener(match served {
                    Ok(()) => std::io::Error::other("the listener stopped"),
                    Err(e) => e,
                })),
            }
        };
        // Callbacks queued behind the one that counted are told no sign-in waits.
        drop(incoming);
        let _ = stop.send(());
        // Let the browser's tab receive its page; the listener closes either way.
        let _ = tokio::time::timeout(FAREWELL, server).await;
        match &outcome {
            Ok(_) => tracing::info!(hub = %self.issuer, "browser sign-in completed"),
            Err(error) => tracing::warn!(hub = %self.issuer, %error, "browser sign-in failed"),
        }
        outcome
    }

    /// Waits for the one callback carrying this sign-in's `state`, checks it, exchanges its
    /// code and answers the browser. A callback with another `state` (a stale tab, another
    /// page or process on this machine) is told it is not the one and ignored: it cannot end
    /// the sign-in, which goes on waiting for the browser.
    async fn complete(
        &self,
        incoming: &mut mpsc::Receiver<Callback>,
    ) -> Result<SignedIn, SignInError> {
        loop {
            let Some(call) = incoming.recv().await else {
                return Err(SignInError::Cancelled);
            };
            let params = CallbackParams::parse(&call.query);
            // The state first: until it matches, nothing else in the callback is trusted.
            if !matches!(params.one("state"), Ok(Some(state)) if state == self.state.secret()) {
                tracing::warn!(hub = %self.issuer, "ignored a callback that is not this sign-in's (wrong or missing state)");
                let _ = call.reply.send(Page::NotThisSignIn);
                continue;
            }
            let outcome = self.accept(&params).await;
            let page = if outcome.is_ok() {
                Page::SignedIn
            } else {
                Page::Failed
            };
            let _ = call.reply.send(page);
            return outcome;
        }
    }

    /// Checks a callback whose `state` is this sign-in's, and exchanges its code.
    async fn accept(&self, params: &CallbackParams) -> Result<SignedIn, SignInError> {
        match params.one("iss") {
            Ok(Some(iss)) if iss.trim_end_matches('/') == self.issuer => {}
            Ok(Some(iss)) => {
                return Err(SignInError::IssuerMismatch {
                    expected: self.issuer.clone(),
                    returned: quote(iss),
                });
            }
            Ok(None) if !self.issuer_required => {}
            Ok(None) | Err(()) => {
                return Err(SignInError::IssuerMissing {
                    expected: self.issuer.clone(),
                });
            }
        }
        if let Ok(Some(error)) | Err(error) = params.one("error").map_err(|()| "invalid_request") {
            return Err(SignInError::Refused {
                code: quote(error),
                description: params
                    .one("error_description")
                    .ok()
                    .flatten()
                    .map(quote)
                    .unwrap_or_default(),
            });
        }
        let code = match params.one("code") {
            Ok(Some(code)) if !code.is_empty() => code,
            _ => return Err(SignInError::MissingCode),
        };
        let verifier = PkceCodeVerifier::new(self.verifier.secret().clone());
        let http = token_transport(self.http.clone());
        let tokens = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .map_err(|e| self.token_error(e))?;
        let refresh_token = tokens
            .refresh_token()
            .map(|t| t.secret().clone())
            .ok_or(SignInError::NoRefreshToken)?;
        let scopes = tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_else(|| vec![CONNECTOR_SCOPE.to_owned()]);
        Ok(SignedIn {
            hub_url: self.issuer.clone(),
            ca_pem: self.ca_pem.clone(),
            scopes,
            refresh_token,
        })
    }

    /// The token endpoint's failure in words, without the response body (it may hold tokens).
    fn token_error(
        &self,
        error: RequestTokenError<
            TransportError,
            oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>,
        >,
    ) -> SignInError {
        match error {
            RequestTokenError::ServerResponse(response) => SignInError::Refused {
                code: response.error().as_ref().to_owned(),
                description: response
                    .error_description()
                    .map(|d| quote(d))
                    .unwrap_or_default(),
            },
            RequestTokenError::Request(TransportError(message)) => SignInError::Hub {
                message: format!(
                    "cannot reach the hub's token endpoint at {}: {message}",
                    self.issuer
                ),
            },
            RequestTokenError::Parse(..) => SignInError::Hub {
                message: format!("the hub at {} sent an unreadable token answer", self.issuer),
            },
            RequestTokenError::Other(_) => SignInError::Hub {
                message: format!("the hub at {} sent an unexpected token answer", self.issuer),
            },
        }
    }
}

/// Why the token request did not get an answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

type TransportFuture =
    Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send>>;

/// The workspace's HTTP client (rustls, redirects off) as the `oauth2` crate's transport.
fn token_transport(http: reqwest::Client) -> impl Fn(oauth2::HttpRequest) -> TransportFuture {
    move |request| {
        let http = http.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| TransportError(crate::oauth::without_url(&e)))?;
            let response = http
                .execute(request)
                .await
                .map_err(|e| TransportError(crate::oauth::without_url(&e)))?;
            let mut answer = oauth2::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| TransportError(crate::oauth::without_url(&e)))?;
            answer
                .body(body.to_vec())
                .map_err(|e| TransportError(e.to_string()))
        })
    }
}

/// `text` cut to [`QUOTE_LIMIT`] characters, for error messages.
fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTE_LIMIT).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_addresses_must_be_plain_https_origins() {
        assert_eq!(
            hub_issuer("https://hub.example/").unwrap(),
            "https://hub.example"
        );
        assert_eq!(
            hub_issuer(" https://127.0.0.1:8443 ").unwrap(),
            "https://127.0.0.1:8443"
        );
        for bad in [
            "http://hub.example",
            "hub.example",
            "https://user:pw@hub.example",
            "https://hub.example/?x=1",
            "https://hub.example/#f",
            "",
        ] {
            let err = hub_issuer(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_arguments", "{bad}");
        }
        let err = hub_issuer("https://user:secret-pw@hub.example")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("password") && !err.contains("secret-pw"),
            "{err}"
        );
    }

    #[test]
    fn a_repeated_callback_parameter_is_not_taken() {
        let params = CallbackParams::parse("state=a&code=x&state=b");
        assert!(params.one("state").is_err());
        assert_eq!(params.one("code"), Ok(Some("x")));
        assert_eq!(params.one("iss"), Ok(None));
    }

    #[test]
    fn signed_in_never_shows_its_refresh_token_and_keeps_the_connector_id_per_hub() {
        let signed_in = SignedIn {
            hub_url: "https://hub.example".into(),
            ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
            scopes: vec!["connector".into()],
            refresh_token: "rt-very-secret".into(),
        };
        let shown = format!("{signed_in:?}");
        assert!(
            !shown.contains("rt-very-secret") && !shown.contains("BEGIN"),
            "{shown}"
        );
        let previous = LinkCredentials {
            hub_url: "https://hub.example/".into(),
            connector_id: "con_previous".into(),
            ca_pem: None,
            secret: LinkSecret::ClientCredential {
                credential: "old".into(),
            },
        };
        let same_hub = signed_in.credentials(Some(&previous));
        assert_eq!(same_hub.connector_id, "con_previous");
        assert_eq!(
            same_hub.secret,
            LinkSecret::RefreshToken {
                refresh_token: "rt-very-secret".into()
            }
        );
        let other_hub = signed_in.credentials(Some(&LinkCredentials {
            hub_url: "https://other.example".into(),
            ..previous
        }));
        assert_ne!(other_hub.connector_id, "con_previous");
        assert!(other_hub.connector_id.starts_with("con_"));
    }

    #[test]
    fn saving_leaves_the_device_flow_end_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        let signed_in = SignedIn {
            hub_url: "https://hub.example".into(),
            ca_pem: None,
            scopes: vec!["connector".into()],
            refresh_token: "rt-1".into(),
        };
        let first = signed_in.save(&store).unwrap();
        assert_eq!(store.load().unwrap().as_ref(), Some(&first));
        let again = SignedIn {
            refresh_token: "rt-2".into(),
            ..signed_in
        }
        .save(&store)
        .unwrap();
        assert_eq!(again.connector_id, first.connector_id, "same hub, same id");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn error_codes_follow_the_control_contract() {
        assert_eq!(SignInError::Cancelled.code(), "sign_in_cancelled");
        assert_eq!(SignInError::MissingCode.code(), "sign_in_failed");
        assert_eq!(
            SignInError::Hub {
                message: "x".into()
            }
            .code(),
            "hub_unreachable"
        );
        let timed_out = SignInError::TimedOut(SIGN_IN_TIMEOUT).to_string();
        assert!(timed_out.contains("10 minutes"), "{timed_out}");
    }
}
