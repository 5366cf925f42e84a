//! One real hub for tests and benchmarks (a dev-dependency only): `uplink_hub` served over real
//! TLS on loopback, with its own certificate authority, a fresh data folder (the SQLite file and
//! the token keys; or the keys only, with its state in PostgreSQL: [`TestHub::start_on_database`]
//! and [`postgres`], a server of the test's own), and a seeded account — the user Ada, a public and a confidential app, the
//! dashboard app and the connector "Plant A".
//!
//! The hub runs on a tokio runtime of its own, so [`TestHub::kill`] drops every task and socket
//! of it at once, as a process that dies would, and [`TestHub::restart`] brings it back on the
//! same data folder and port. Its [`client`](TestHub::client) trusts the CA and follows no
//! redirect (each hop is checked by hand); the helpers walk the hub's own pages (sign-in,
//! consent, settings, device approval) and mint tokens through its real OAuth2 endpoints.
//!
//! ```no_run
//! # async fn run() {
//! let mut hub = uplink_testkit::TestHub::start().await;
//! let source = hub.hub.add_source(hub.plant_id(), "historian", "").await.unwrap();
//! let tokens = hub.grant_public(&[&source.id]).await; // sign in, consent, code → tokens
//! assert_eq!(hub.access(&tokens.access, &source.id).await, 200);
//! hub.kill();
//! hub.restart().await; // same folder, port and keys: the token still works
//! assert_eq!(hub.access(&tokens.access, &source.id).await, 200);
//! # }
//! ```
#![warn(missing_docs)]

pub mod postgres;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use uplink_hub::password::Passwords;
use uplink_hub::relay::RelayError;
use uplink_hub::secret::pkce_s256;
use uplink_hub::store::{CodeGrant, CodeRedemption, User};
use uplink_hub::token::TokenSubject;
use uplink_hub::{Hub, HubConfig, NewApp, RegisteredConnector};

/// The seeded user's name.
pub const USER: &str = "ada";
/// The seeded user's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// The name of the browser session's cookie.
pub const SESSION_COOKIE: &str = "__Host-uplink-session";
/// A public app (PKCE only), registered for `data.read`, `tags.read` and — on purpose, so tests
/// can sign connectors in with it — `connector`.
pub const PUBLIC_APP: &str = "public-app";
/// The public app's redirect URI.
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1/callback";
/// A confidential app (client secret), registered for `data.read`.
pub const CONF_APP: &str = "conf-app";
/// The confidential app's redirect URI.
pub const CONF_REDIRECT: &str = "https://app.example/cb";
/// The "Energy dashboard", a public app registered for `data.read`.
pub const APP: &str = "dashboard";
/// The dashboard's display name.
pub const APP_NAME: &str = "Energy dashboard";
/// The dashboard's redirect URI.
pub const APP_REDIRECT: &str = "https://app.example/cb";
/// The seeded connector's display name.
pub const CONNECTOR_NAME: &str = "Plant A";
/// The PKCE verifier of every authorization the helpers start.
pub const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc7636-0123456789";
/// The `state` of every authorization the helpers start.
pub const STATE: &str = "xyz-state";

thread_local! {
    /// Keeps a hub thread's log destination for as long as the thread lives.
    static LOG_TO: std::cell::RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// How long a restart may wait for the killed hub's port to be free again.
const PORT_FREE_WITHIN: Duration = Duration::from_secs(30);

/// The outcome of a completed consent: a code and what is needed to redeem it.
#[derive(Debug, Clone)]
pub struct Code {
    /// The authorization code.
    pub code: String,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
}

/// Tokens from a successful exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// A real hub on loopback TLS; see the crate's documentation. Dropping it kills the hub.
pub struct TestHub {
    /// The hub (after a restart, the new one).
    pub hub: Arc<Hub>,
    /// Its public origin, `https://127.0.0.1:PORT`.
    pub issuer: String,
    /// The port it listens on (kept across restarts).
    pub port: u16,
    /// An HTTPS client that trusts the hub's CA and follows no redirect.
    pub client: reqwest::Client,
    /// A TLS client configuration that trusts the hub's CA (for SignalR clients, raw TLS).
    pub tls: Arc<rustls::ClientConfig>,
    /// The certificate authority the hub's certificate chains to.
    pub ca: uplink_tls::LoopbackCa,
    /// The seeded user, Ada.
    pub user: User,
    /// The seeded connector, "Plant A", owned by Ada, with its credential.
    pub plant: RegisteredConnector,
    /// The confidential app's client secret.
    pub conf_secret: String,
    config: HubConfig,
    worker_threads: usize,
    /// The PostgreSQL database it keeps its state in; `None`: SQLite in its data folder.
    database: Option<uplink_hub::store::DatabaseUrl>,
    runtime: Option<tokio::runtime::Runtime>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub")
            .field("issuer", &self.issuer)
            .field("data_dir", &self.data_dir())
            .field("running", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The value of `name` in the query of `location` (an absolute URL).
pub fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of a hidden input named `name` in an HTML page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `Location` header of a redirect, or an empty string.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The session cookie's value set by a response (a sign-in's).
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{SESSION_COOKIE}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// A `Cookie` header carrying the session cookie.
pub fn cookie_header(cookie: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={cookie}")).unwrap(),
    );
    h
}

/// The query of a well-formed authorization request for `client_id` (`data.read`, PKCE S256
/// with [`VERIFIER`], state [`STATE`]).
pub fn authorize_params(client_id: &str, redirect_uri: &str) -> Vec<(String, String)> {
    vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), redirect_uri.into()),
        ("scope".into(), "data.read".into()),
        ("state".into(), STATE.into()),
        ("code_challenge".into(), pkce_s256(VERIFIER)),
        ("code_challenge_method".into(), "S256".into()),
    ]
}

/// Asserts a token endpoint's success and reads its tokens.
pub async fn tokens(response: reqwest::Response) -> Tokens {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// An HTTPS client trusting `ca_pem`, following no redirect.
pub fn trusting_client(ca_pem: &str) -> reqwest::Client {
    client_builder(ca_pem).build().unwrap()
}

/// A client builder trusting `ca_pem` and following no redirect, for a client that needs more
/// (a timeout, a local address).
pub fn client_builder(ca_pem: &str) -> reqwest::ClientBuilder {
    let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca_pem.to_owned())).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
}

impl TestHub {
    /// A hub with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A hub whose configuration `configure` adjusts (the issuer is set already).
    pub async fn start_with(configure: impl FnOnce(&mut HubConfig)) -> Self {
        Self::start_on(1, configure).await
    }

    /// A hub whose runtime has `worker_threads` threads (benchmarks measure it as a server
    /// process would run), its configuration adjusted by `configure`.
    pub async fn start_on(worker_threads: usize, configure: impl FnOnce(&mut HubConfig)) -> Self {
        Self::start_full(worker_threads, None, configure).await
    }

    /// A hub keeping its state in the PostgreSQL database at `url` (an empty one: the hub
    /// brings its schema up to date and the kit seeds it); its key files stay in its data
    /// folder.
    pub async fn start_on_database(url: &str) -> Self {
        let url = url.parse().expect("a postgres:// URL");
        Self::start_full(1, Some(url), |_| {}).await
    }

    async fn start_full(
        worker_threads: usize,
        database: Option<uplink_hub::store::DatabaseUrl>,
        configure: impl FnOnce(&mut HubConfig),
    ) -> Self {
        uplink_tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = uplink_tls::LoopbackCa::generate(&["127.0.0.1", "localhost"]).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("https://127.0.0.1:{port}");
        let mut config = HubConfig::new(issuer.clone());
        configure(&mut config);
        let data_dir = dir.path().join("hub");
        let (runtime, hub) = serve(
            &data_dir,
            database.clone(),
            &ca,
            listener,
            config.clone(),
            worker_threads,
        )
        .await;
        let seeded = hub.clone();
        let (user, plant, conf_secret) = runtime
            .spawn(async move { seed(&seeded).await })
            .await
            .unwrap();
        let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))
            .unwrap();
        Self {
            hub,
            issuer,
            port,
            client: trusting_client(ca.ca_pem()),
            tls,
            ca,
            user,
            plant,
            conf_secret,
            config,
            worker_threads,
            database,
            runtime: Some(runtime),
            dir,
        }
    }

    /// Kills the hub: every task and socket of it goes, and this returns once its port no
    /// longer accepts connections (the runtime's tasks are dropped on a thread of its own, which
    /// a loaded machine may run a moment later). [`TestHub::restart`] brings it back.
    pub fn kill(&mut self) {
        self.shut_down();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && started.elapsed() < PORT_FREE_WITHIN
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the hub again on the same data folder and port (killing it first if it runs).
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Restarts the hub with its configuration adjusted by `configure` (the change stays for
    /// later restarts).
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut HubConfig)) {
        self.shut_down();
        configure(&mut self.config);
        let started = Instant::now();
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(e) if started.elapsed() < PORT_FREE_WITHIN => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("port {} not free again: {e}", self.port),
            }
        };
        let (runtime, hub) = serve(
            &self.data_dir(),
            self.database.clone(),
            &self.ca,
            listener,
            self.config.clone(),
            self.worker_threads,
        )
        .await;
        self.hub = hub;
        self.runtime = Some(runtime);
    }

    fn shut_down(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Runs `future` on the hub's runtime (where the hub's own tasks run).
    pub async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.spawn(future).await.unwrap()
    }

    /// Spawns `future` on the hub's runtime.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.runtime
            .as_ref()
            .expect("the hub is running")
            .spawn(future)
    }

    /// The hub's data folder (its `hub.db` and token keys).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("hub")
    }

    /// A folder that lives as long as the hub, for the test's own files.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA's PEM, for clients that trust it.
    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    /// Trust of the hub's CA, as the connector and the SignalR client take it.
    pub fn trust(&self) -> uplink_tls::Trust {
        uplink_tls::Trust::CustomCa(self.ca.ca_pem().to_owned())
    }

    /// The seeded connector's id.
    pub fn plant_id(&self) -> &str {
        &self.plant.connector.id
    }

    /// The absolute URL of `path` on the hub.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `GET path`, as any client would, without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A client of this hub calling from another loopback address (127.0.0.2, …: all of
    /// 127/8 reaches the hub), so the hub sees a distinct caller as it would on a network.
    pub fn client_from(&self, address: [u8; 4]) -> reqwest::Client {
        client_builder(self.ca.ca_pem())
            .local_address(std::net::IpAddr::from(address))
            .build()
            .unwrap()
    }

    /// Headers a browser sends with a form posted from one of the hub's own pages.
    pub fn same_origin(&self, cookie: Option<&str>) -> HeaderMap {
        let mut h = match cookie {
            Some(c) => cookie_header(c),
            None => HeaderMap::new(),
        };
        h.insert("origin", HeaderValue::from_str(&self.issuer).unwrap());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        h
    }

    /// Signs Ada in on the hub's page; returns the session cookie's value.
    pub async fn sign_in(&self) -> String {
        self.sign_in_as(USER, PASSWORD).await
    }

    /// Signs `username` in on the hub's page; returns the session cookie's value.
    pub async fn sign_in_as(&self, username: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/account/login"))
            .headers(self.same_origin(None))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in must succeed");
        session_cookie(&r).expect("a session cookie")
    }

    /// The CSRF token of the first form on the signed-in page at `path`.
    pub async fn page_csrf(&self, cookie: &str, path: &str) -> String {
        let r = self
            .client
            .get(self.url(path))
            .headers(self.same_origin(Some(cookie)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let page = r.text().await.unwrap();
        hidden_input(&page, "csrf").unwrap_or_else(|| panic!("{path} has a CSRF token"))
    }

    /// Signs Ada in and opens the settings page: the session cookie and the page's CSRF token.
    pub async fn settings_session(&self) -> (String, String) {
        let cookie = self.sign_in().await;
        let csrf = self.page_csrf(&cookie, "/account/settings").await;
        (cookie, csrf)
    }

    /// Posts the settings page's confirmed Revoke form for `app` (one source, or the whole app)
    /// with `headers`; the hub's answer.
    pub async fn settings_revoke(
        &self,
        headers: HeaderMap,
        csrf: &str,
        app: &str,
        source: Option<&str>,
    ) -> reqwest::Response {
        // The confirm step's form: the settings page's Revoke button first asks.
        let mut form = vec![("csrf", csrf), ("app", app), ("confirm", "yes")];
        if let Some(source) = source {
            form.push(("source", source));
        }
        self.client
            .post(self.url("/account/settings/revoke"))
            .headers(headers)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Presses Revoke on the settings page for `app` (one source, or the whole app); asserts
    /// the hub's redirect back.
    pub async fn revoke_on_settings_page(
        &self,
        session: &(String, String),
        app: &str,
        source: Option<&str>,
    ) {
        let (cookie, csrf) = session;
        let r = self
            .settings_revoke(self.same_origin(Some(cookie)), csrf, app, source)
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "revoked");
    }

    /// `GET /oauth/authorize` with raw query pairs (repeats allowed), as the browser would.
    pub async fn authorize_raw(
        &self,
        cookie: &str,
        pairs: &[(String, String)],
    ) -> reqwest::Response {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.client
            .get(format!("{}?{query}", self.url("/oauth/authorize")))
            .headers(cookie_header(cookie))
            .send()
            .await
            .unwrap()
    }

    /// Starts an authorization; returns the consent transaction id.
    pub async fn start_authorization(&self, cookie: &str, pairs: &[(String, String)]) -> String {
        let r = self.authorize_raw(cookie, pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = location(&r);
        loc.strip_prefix("/account/consent?request=")
            .unwrap_or_else(|| panic!("expected the consent page, got {loc}"))
            .to_owned()
    }

    /// Opens the consent page; returns its CSRF token.
    pub async fn consent_token(&self, cookie: &str, request: &str) -> String {
        let r = self
            .client
            .get(self.url(&format!("/account/consent?request={request}")))
            .headers(cookie_header(cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        consent_form_csrf(&html)
    }

    /// Posts the consent form.
    pub async fn post_consent(
        &self,
        headers: HeaderMap,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(self.url("/account/consent"))
            .headers(headers)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Posts the consent form from the hub's own page: `decision` (`approve` or `deny`) on
    /// `request` for `scope`, ticking no data source; the hub's answer.
    pub async fn decide_consent(
        &self,
        cookie: &str,
        request: &str,
        csrf: &str,
        decision: &str,
        scope: &str,
    ) -> reqwest::Response {
        self.post_consent(
            self.same_origin(Some(cookie)),
            &[
                ("request", request),
                ("csrf", csrf),
                ("decision", decision),
                ("scope", scope),
            ],
        )
        .await
    }

    /// A complete, honest consent for `client_id` ticking `sources`; returns the code.
    pub async fn consent_for(&self, client_id: &str, redirect_uri: &str, sources: &[&str]) -> Code {
        let cookie = self.sign_in().await;
        let request = self
            .start_authorization(&cookie, &authorize_params(client_id, redirect_uri))
            .await;
        let csrf = self.consent_token(&cookie, &request).await;
        let mut fields = vec![
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
            ("scope", "data.read"),
        ];
        for s in sources {
            fields.push(("source", s));
        }
        let r = self
            .post_consent(self.same_origin(Some(&cookie)), &fields)
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = location(&r);
        assert!(loc.starts_with(redirect_uri), "redirected to {loc}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some(STATE));
        assert_eq!(
            query_param(&loc, "iss").as_deref(),
            Some(self.issuer.as_str())
        );
        Code {
            code: query_param(&loc, "code").expect("a code"),
            redirect_uri: redirect_uri.to_owned(),
        }
    }

    /// Walks the hub's pages from an authorize URL (of a signed-out browser) through the
    /// sign-in page to the consent decision, as a person would; returns where the hub sends the
    /// browser back to. `browser` must follow no redirect by itself.
    pub async fn sign_in_and_decide(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        decision: &str,
        scope: &str,
    ) -> String {
        let r = browser.get(authorize_url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let login = location(&r);
        let request = login
            .strip_prefix("/account/login?request=")
            .unwrap_or_else(|| panic!("expected the sign-in page, got {login}"))
            .to_owned();
        let r = browser
            .post(self.url("/account/login"))
            .headers(self.same_origin(None))
            .form(&[
                ("username", USER),
                ("password", PASSWORD),
                ("request", request.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "signing in on the hub");
        let session = session_cookie(&r).expect("a session cookie");
        let consent_path = location(&r);
        assert_eq!(consent_path, format!("/account/consent?request={request}"));
        let page = browser
            .get(self.url(&consent_path))
            .headers(self.same_origin(Some(&session)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if scope == "connector" {
            assert!(page.contains("Connect a site connector to your account"));
        }
        let csrf = consent_form_csrf(&page);
        let r = browser
            .post(self.url("/account/consent"))
            .headers(self.same_origin(Some(&session)))
            .form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", decision),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the consent decision");
        location(&r)
    }

    /// Ada approves (or denies) a device's `user_code` on the hub's device page; the page's
    /// answer.
    pub async fn decide_device(&self, user_code: &str, decision: &str) -> String {
        let cookie = self.sign_in().await;
        let csrf = self.page_csrf(&cookie, "/account/device").await;
        let r = self
            .client
            .post(self.url("/account/device"))
            .headers(self.same_origin(Some(&cookie)))
            .form(&[
                ("csrf", csrf.as_str()),
                ("user_code", user_code),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the device decision");
        r.text().await.unwrap()
    }

    /// Posts to the token endpoint as `client_id` (with the confidential secret when it is the
    /// confidential app).
    pub async fn token_request(
        &self,
        client_id: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        let request = self.client.post(self.url("/oauth/token"));
        let request = if client_id == CONF_APP {
            request.basic_auth(CONF_APP, Some(&self.conf_secret))
        } else {
            body.push(("client_id", client_id));
            request
        };
        request.form(&body).send().await.unwrap()
    }

    /// Redeems a code with the right verifier.
    pub async fn exchange(&self, client_id: &str, code: &Code) -> reqwest::Response {
        self.token_request(
            client_id,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", &code.redirect_uri),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    /// The whole honest flow for the public app, ticking `sources`.
    pub async fn grant_public(&self, sources: &[&str]) -> Tokens {
        self.grant_tokens(PUBLIC_APP, PUBLIC_REDIRECT, sources)
            .await
    }

    /// The whole honest flow for `client_id` (sign-in, consent ticking `sources`, code
    /// exchange): its tokens.
    pub async fn grant_tokens(
        &self,
        client_id: &str,
        redirect_uri: &str,
        sources: &[&str],
    ) -> Tokens {
        let code = self.consent_for(client_id, redirect_uri, sources).await;
        tokens(self.exchange(client_id, &code).await).await
    }

    /// The seeded connector's access token through `grant_type=client_credentials`, as a
    /// connector gets it.
    pub async fn connector_token(&self) -> String {
        let r = self
            .client
            .post(self.url("/oauth/token"))
            .basic_auth(self.plant_id(), Some(self.plant.credential.expose()))
            .form(&[("grant_type", "client_credentials"), ("scope", "connector")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "no refresh token");
        assert_eq!(body["scope"], "connector");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token of `app_id` for `user_id`, valid for `ttl` seconds, after the user
    /// consented to `source_ids`: a grant and a fresh token family, as a redeemed code leaves
    /// them in the store, without the pages (for tests that need many, or a short life).
    pub async fn mint_app_token(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        ttl: i64,
    ) -> String {
        self.mint_token(
            user_id,
            app_id,
            source_ids,
            &["data.read"],
            &["data.read"],
            ttl,
        )
        .await
    }

    /// As [`mint_app_token`](Self::mint_app_token), with the scopes the grant of each source
    /// holds and the scopes the token carries given apart (a token may carry a scope no
    /// source's grant has, as when the user did not tick writing for any source).
    pub async fn mint_token(
        &self,
        user_id: &str,
        app_id: &str,
        source_ids: &[String],
        grant_scopes: &[&str],
        token_scopes: &[&str],
        ttl: i64,
    ) -> String {
        let owned = |scopes: &[&str]| scopes.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        self.hub
            .grant(user_id, app_id, source_ids, &owned(grant_scopes))
            .await
            .unwrap();
        let store = &self.hub.store;
        let now = unix_now();
        let digest = uplink_hub::secret::Secret::generate().digest();
        store
            .create_code(
                &digest,
                &CodeGrant {
                    app_id: app_id.into(),
                    user_id: user_id.into(),
                    redirect_uri: APP_REDIRECT.into(),
                    scopes: owned(token_scopes),
                    code_challenge: "unused".into(),
                    nonce: None,
                    auth_time: now,
                    created_at: now,
                    expires_at: now + 600,
                },
            )
            .await
            .unwrap();
        let CodeRedemption::Fresh { family_id, .. } =
            store.redeem_code(&digest, now).await.unwrap()
        else {
            panic!("code not redeemed")
        };
        self.issue(
            &TokenSubject {
                user_id: user_id.into(),
                app_id: app_id.into(),
                scopes: owned(token_scopes),
                family_id,
            },
            ttl,
        )
    }

    /// An access token for `subject`, valid for `ttl` seconds.
    pub fn issue(&self, subject: &TokenSubject, ttl: i64) -> String {
        self.hub
            .keys
            .issue(subject, ttl)
            .unwrap()
            .expose()
            .to_owned()
    }

    /// The protected endpoint's answer for `token` on `source`.
    pub async fn access(&self, token: &str, source: &str) -> StatusCode {
        self.client
            .get(self.url(&format!("/api/v1/sources/{source}/access")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// How many active grants Ada holds, over all apps.
    pub async fn grant_count(&self) -> usize {
        self.hub.store.grants_of(&self.user.id).await.unwrap().len()
    }

    /// Relays `query` to `connector_id` as the app data API would (on the hub's runtime) and
    /// reads the whole answer.
    pub async fn relay(
        &self,
        connector_id: &str,
        query: uplink_link::RelayedQuery,
    ) -> Result<String, RelayError> {
        let relay = self.hub.relay();
        let connector_id = connector_id.to_owned();
        self.run(async move {
            let mut stream = relay.relay(&connector_id, query).await?;
            let mut body = Vec::new();
            while let Some(chunk) = stream.next().await {
                body.extend_from_slice(&chunk?);
            }
            Ok(String::from_utf8(body).unwrap())
        })
        .await
    }
}

/// Seconds since the Unix epoch, as the store keeps time.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit in i64")
}

/// The consent form's own CSRF token (not the sign-out form's in the page header).
fn consent_form_csrf(html: &str) -> String {
    let form = &html[html
        .find("action=\"/account/consent\"")
        .expect("a consent form")..];
    hidden_input(form, "csrf").expect("the consent page has a CSRF token")
}

/// Opens the store in `data_dir` and serves the hub on `listener` on a runtime of its own.
async fn serve(
    data_dir: &Path,
    database: Option<uplink_hub::store::DatabaseUrl>,
    ca: &uplink_tls::LoopbackCa,
    listener: std::net::TcpListener,
    mut config: HubConfig,
    worker_threads: usize,
) -> (tokio::runtime::Runtime, Arc<Hub>) {
    listener.set_nonblocking(true).unwrap();
    config
        .key_file
        .get_or_insert_with(|| data_dir.join(uplink_hub::data_dir::KEY_FILE));
    config
        .id_key_file
        .get_or_insert_with(|| data_dir.join(uplink_hub::id_token::ID_KEY_FILE));
    // The hub's threads log to whatever the starting thread logs to, so a test that captures
    // the log with a scoped subscriber (`tracing::subscriber::with_default`) sees the hub's
    // lines too.
    let dispatch = tracing::dispatcher::get_default(|current| current.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&dispatch);
            LOG_TO.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .build()
        .unwrap();
    let (data_dir, chain, key) = (
        data_dir.to_owned(),
        ca.cert_chain_pem(),
        ca.key_pem().to_owned(),
    );
    let hub = runtime
        .spawn(async move {
            let store = uplink_hub::hub::open_store_at(&data_dir, database.as_ref())
                .await
                .unwrap();
            // Cheap password hashing: a sign-in per test must not take seconds.
            let passwords = Passwords::with_cost(4, 64, 1);
            let hub = Arc::new(Hub::new(store, config, passwords).await.unwrap());
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let serving = hub.clone();
            tokio::spawn(async move {
                uplink_hub::serve(serving, listener, &chain, &key, std::future::pending())
                    .await
                    .unwrap();
            });
            hub
        })
        .await
        .unwrap();
    (runtime, hub)
}

/// The dashboard app ([`APP`]) as it is registered: public, `data.read`.
pub fn dashboard_app() -> NewApp {
    NewApp {
        name: APP_NAME.into(),
        client_id: Some(APP.into()),
        confidential: false,
        redirect_uris: vec![APP_REDIRECT.into()],
        scopes: vec!["data.read".into()],
    }
}

/// Ada, her connector "Plant A", the public and confidential apps and the dashboard.
async fn seed(hub: &Hub) -> (User, RegisteredConnector, String) {
    let user = hub.add_user(USER, PASSWORD.into()).await.unwrap();
    let plant = hub.add_connector(USER, CONNECTOR_NAME).await.unwrap();
    // Registered for `connector` on purpose, so tests can sign connectors in with it (an
    // ordinary app cannot be: `add_app` refuses the scope).
    hub.add_app_allowing_connector_scope(NewApp {
        name: "Public App".into(),
        client_id: Some(PUBLIC_APP.into()),
        confidential: false,
        redirect_uris: vec![PUBLIC_REDIRECT.into()],
        scopes: vec!["data.read".into(), "tags.read".into(), "connector".into()],
    })
    .await
    .unwrap();
    let conf = hub
        .add_app(NewApp {
            name: "Confidential App".into(),
            client_id: Some(CONF_APP.into()),
            confidential: true,
            redirect_uris: vec![CONF_REDIRECT.into()],
            scopes: vec!["data.read".into()],
        })
        .await
        .unwrap();
    hub.add_app(dashboard_app()).await.unwrap();
    (user, plant, conf.secret.unwrap().expose().to_owned())
}
