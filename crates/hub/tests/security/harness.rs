//! A real hub for the attack suite: a fresh SQLite file, real TLS on loopback, a seeded user
//! with two data sources, a public and a confidential app, and a client that speaks HTTPS to
//! it without following redirects (each hop is checked by hand).

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use uplink_hub::password::Passwords;
use uplink_hub::secret::pkce_s256;
use uplink_hub::store::{DataSource, SqliteStore, User};
use uplink_hub::{Hub, HubConfig, NewApp};

pub const PASSWORD: &str = "correct horse battery staple";
pub const PUBLIC_APP: &str = "public-app";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1/callback";
pub const CONF_APP: &str = "conf-app";
pub const CONF_REDIRECT: &str = "https://app.example/cb";
pub const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc7636-0123456789";

pub struct TestHub {
    pub hub: Arc<Hub>,
    pub issuer: String,
    pub client: reqwest::Client,
    pub user: User,
    pub historian: DataSource,
    pub lab: DataSource,
    pub conf_secret: String,
    /// The certificate authority the hub's certificate chains to, for raw TLS clients.
    pub ca_pem: String,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The outcome of a completed consent: a code and what is needed to redeem it.
#[derive(Debug, Clone)]
pub struct Code {
    pub code: String,
    pub redirect_uri: String,
}

/// Tokens from a successful exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

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

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut HubConfig)) -> Self {
        uplink_tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("https://127.0.0.1:{}", addr.port());
        let mut config = HubConfig::new(issuer.clone());
        configure(&mut config);
        let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
        let hub = Arc::new(
            Hub::new(Arc::new(store), config, Passwords::with_cost(4, 64, 1))
                .await
                .unwrap(),
        );
        let user = hub.add_user("ada", PASSWORD.into()).await.unwrap();
        let plant = hub.add_connector("ada", "Plant A").await.unwrap();
        let historian = hub
            .add_source(&plant.connector.id, "historian", "Process historian")
            .await
            .unwrap();
        let lab = hub
            .add_source(&plant.connector.id, "lab", "Lab results")
            .await
            .unwrap();
        // Registered for `connector` on purpose, so the attack tests can sign in connectors
        // with it (an ordinary app cannot be: `add_app` refuses the scope).
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
        let ca = uplink_tls::LoopbackCa::generate(&["127.0.0.1", "localhost"]).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = hub.clone();
        let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
        tokio::spawn(async move {
            uplink_hub::serve(serving, listener, &chain, &key, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))
            .unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            hub,
            issuer,
            client,
            user,
            historian,
            lab,
            conf_secret: conf.secret.unwrap().expose().to_owned(),
            ca_pem: ca.ca_pem().to_owned(),
            _dir: dir,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The hub's data directory (its `hub.db`).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `GET path`, as any client would, without a token.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Headers a browser sends with a form posted from one of the hub's own pages.
    pub fn same_origin(&self, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("origin", HeaderValue::from_str(&self.issuer).unwrap());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        if let Some(c) = cookie {
            h.insert(
                "cookie",
                HeaderValue::from_str(&format!("__Host-uplink-session={c}")).unwrap(),
            );
        }
        h
    }

    pub fn cookie_header(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("__Host-uplink-session={cookie}")).unwrap(),
        );
        h
    }

    /// Signs in; returns the session cookie's value.
    pub async fn sign_in(&self) -> String {
        let r = self
            .client
            .post(self.url("/account/login"))
            .headers(self.same_origin(None))
            .form(&[("username", "ada"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in must succeed");
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        set_cookie
            .strip_prefix("__Host-uplink-session=")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Query of a well-formed authorization request for `client_id`.
    pub fn authorize_params(client_id: &str, redirect_uri: &str) -> Vec<(String, String)> {
        vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), redirect_uri.into()),
            ("scope".into(), "data.read".into()),
            ("state".into(), "xyz-state".into()),
            ("code_challenge".into(), pkce_s256(VERIFIER)),
            ("code_challenge_method".into(), "S256".into()),
        ]
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
            .headers(Self::cookie_header(cookie))
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
            .headers(Self::cookie_header(cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        // The consent form's own token, not the sign-out form's in the page header.
        let form = &html[html
            .find("action=\"/account/consent\"")
            .expect("consent form")..];
        hidden_input(form, "csrf").expect("consent page has a CSRF token")
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

    /// A complete, honest consent for `client_id` ticking `sources`; returns the code.
    pub async fn consent_for(&self, client_id: &str, redirect_uri: &str, sources: &[&str]) -> Code {
        let cookie = self.sign_in().await;
        let request = self
            .start_authorization(&cookie, &Self::authorize_params(client_id, redirect_uri))
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
        assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
        assert_eq!(
            query_param(&loc, "iss").as_deref(),
            Some(self.issuer.as_str())
        );
        Code {
            code: query_param(&loc, "code").expect("a code"),
            redirect_uri: redirect_uri.to_owned(),
        }
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

    pub async fn tokens(response: reqwest::Response) -> Tokens {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// The whole honest flow for the public app, ticking `sources`.
    pub async fn grant_public(&self, sources: &[&str]) -> Tokens {
        let code = self.consent_for(PUBLIC_APP, PUBLIC_REDIRECT, sources).await;
        Self::tokens(self.exchange(PUBLIC_APP, &code).await).await
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

    /// A client of this hub calling from another loopback address (127.0.0.2, …: all of
    /// 127/8 reaches the hub), so the hub sees a distinct caller as it would on a network.
    pub fn client_from(&self, address: [u8; 4]) -> reqwest::Client {
        let tls =
            uplink_tls::client_config(&uplink_tls::Trust::CustomCa(self.ca_pem.clone())).unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(address))
            .build()
            .unwrap()
    }

    /// How many active grants the user holds, over all apps.
    pub async fn grant_count(&self) -> usize {
        self.hub.store.grants_of(&self.user.id).await.unwrap().len()
    }
}
