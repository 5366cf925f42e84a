//! The demo app's way to a token: the real authorization-code flow with PKCE, walked through the
//! hub's own sign-in and consent pages the way a browser would, so the grant it produces is an
//! ordinary one (audited, listed on the settings page, revocable).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// Who consents, for which app, to which data sources (and to their alarms and events, where
/// the scope asks for them and the page offers them).
pub struct ConsentFlow<'a> {
    pub client: &'a reqwest::Client,
    pub issuer: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    /// Hub ids of the data sources to tick.
    pub source_ids: &'a [String],
}

/// The tokens the flow ends with.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

const SESSION_COOKIE: &str = "__Host-uplink-session";

impl ConsentFlow<'_> {
    /// Signs in, starts an authorization, ticks the sources, approves, and redeems the code.
    pub async fn run(&self) -> anyhow::Result<Tokens> {
        let session = self.sign_in().await?;
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_token();
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("scope", self.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let authorize = self
            .client
            .get(format!("{}/oauth/authorize?{query}", self.issuer))
            .headers(self.cookie(&session))
            .send()
            .await
            .context("the authorization request failed")?;
        let consent_path = expect_redirect(&authorize, "the authorization request")?;
        let request = consent_path
            .strip_prefix("/account/consent?request=")
            .with_context(|| format!("expected the consent page, was sent to {consent_path}"))?
            .to_owned();

        let page = self
            .client
            .get(format!("{}{consent_path}", self.issuer))
            .headers(self.cookie(&session))
            .send()
            .await
            .context("the consent page did not load")?;
        if page.status() != StatusCode::OK {
            bail!("the consent page answered {}", page.status());
        }
        let html = page.text().await?;
        let form = html
            .find("action=\"/account/consent\"")
            .map(|at| &html[at..])
            .context("the consent page has no consent form")?;
        let csrf = hidden_input(form, "csrf").context("the consent form has no CSRF token")?;
        let mut fields = vec![
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
        ];
        for scope in self.scope.split(' ') {
            fields.push(("scope", scope));
        }
        for id in self.source_ids {
            if !form.contains(&format!("value=\"{id}\"")) {
                bail!("the consent page does not offer data source {id}");
            }
            fields.push(("source", id));
            // Alarms and events are ticked per source, where the page offers them (the
            // scope asks for `events.read` and the source has events).
            if form.contains(&format!("name=\"events_source\" value=\"{id}\"")) {
                fields.push(("events_source", id));
            }
        }
        let approved = self
            .client
            .post(format!("{}/account/consent", self.issuer))
            .headers(self.same_origin(Some(&session)))
            .form(&fields)
            .send()
            .await
            .context("posting consent failed")?;
        let back = expect_redirect(&approved, "consent")?;
        if !back.starts_with(self.redirect_uri) {
            bail!("consent sent the browser to an unexpected place");
        }
        let url = url::Url::parse(&back).context("the redirect after consent is not a URL")?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(state.as_str()) {
            bail!("the state came back altered");
        }
        if param("iss").as_deref() != Some(self.issuer) {
            bail!("the redirect names another issuer");
        }
        let code = param("code").context("the redirect carries no code")?;

        let answer = self
            .client
            .post(format!("{}/oauth/token", self.issuer))
            .basic_auth(self.client_id, Some(self.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .context("the token request failed")?;
        if answer.status() != StatusCode::OK {
            bail!("the token endpoint answered {}", answer.status());
        }
        let body: serde_json::Value = answer.json().await?;
        Ok(Tokens {
            access_token: body["access_token"]
                .as_str()
                .context("no access_token in the token answer")?
                .to_owned(),
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_in: body["expires_in"].as_u64().unwrap_or(0),
        })
    }

    async fn sign_in(&self) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/account/login", self.issuer))
            .headers(self.same_origin(None))
            .form(&[("username", self.username), ("password", self.password)])
            .send()
            .await
            .context("signing in failed")?;
        if response.status() != StatusCode::SEE_OTHER {
            bail!("signing in answered {}", response.status());
        }
        let prefix = format!("{SESSION_COOKIE}=");
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&prefix))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .context("signing in set no session cookie")
    }

    fn cookie(&self, session: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={session}")) {
            headers.insert(reqwest::header::COOKIE, value);
        }
        headers
    }

    /// What a browser sends with a form posted from one of the hub's own pages.
    fn same_origin(&self, session: Option<&str>) -> HeaderMap {
        let mut headers = session.map(|s| self.cookie(s)).unwrap_or_default();
        if let Ok(origin) = HeaderValue::from_str(self.issuer) {
            headers.insert(reqwest::header::ORIGIN, origin);
        }
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        headers
    }
}

fn expect_redirect(response: &reqwest::Response, step: &str) -> anyhow::Result<String> {
    if response.status() != StatusCode::SEE_OTHER && response.status() != StatusCode::FOUND {
        bail!(
            "{step} answered {} instead of a redirect",
            response.status()
        );
    }
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("{step} redirected nowhere"))
}

/// The value of `<input type="hidden" name="NAME" value="…">` in `html`.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let rest = &html[html.find(&marker)? + marker.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::hidden_input;

    #[test]
    fn reads_a_hidden_input() {
        let html =
            r#"<form><input type="hidden" name="csrf" value="abc-123"><input name="x"></form>"#;
        assert_eq!(hidden_input(html, "csrf").as_deref(), Some("abc-123"));
        assert_eq!(hidden_input(html, "missing"), None);
    }
}
