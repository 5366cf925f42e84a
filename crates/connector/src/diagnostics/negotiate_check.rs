//! The SignalR negotiate request of the connectivity test: `POST /hubs/connector/negotiate`,
//! with the access token when there is one, read as the link's client reads it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use uplink_link::HUB_PATH;
use uplink_signalr::Transport;
use uplink_signalr::negotiate::NegotiateResponse;
use url::Url;

use super::report::Outcome;
use super::route::Route;

/// What negotiate showed.
pub(super) struct Negotiated {
    pub outcome: Outcome,
    pub detail: String,
    /// The transports the hub offers (when it answered the negotiate).
    pub offered: Option<Vec<Transport>>,
    /// The hub answered 401 and no token was given: reachable, but the transports need one.
    pub needs_token: bool,
}

/// The negotiate URL of the connector hub under `hub_url`.
pub(super) fn negotiate_url(hub_url: &Url) -> Url {
    let mut url = hub_url.clone();
    url.set_path(&format!(
        "{}{HUB_PATH}/negotiate",
        hub_url.path().trim_end_matches('/')
    ));
    url.set_query(Some("negotiateVersion=1"));
    url
}

/// Sends the negotiate request and judges the answer.
pub(super) async fn negotiate(
    hub_url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    route: &Route,
    token: Option<&str>,
    timeout: Duration,
) -> Negotiated {
    let failed = |detail: String| Negotiated {
        outcome: Outcome::Failed,
        detail,
        offered: None,
        needs_token: false,
    };
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured((**tls).clone())
        // A redirect is reported, not followed: a proxy's login page redirects too.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    builder = match &route.proxy {
        Some(proxy) => match reqwest::Proxy::all(proxy.url()) {
            Ok(p) => builder.proxy(p),
            Err(_) => return failed("the proxy URL cannot be used".into()),
        },
        None => builder.no_proxy(),
    };
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => return failed(format!("the HTTP client could not be set up: {e}")),
    };
    let url = negotiate_url(hub_url);
    let mut request = client.post(url.clone()).header("content-length", "0");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => {
            return failed(format!(
                "no answer to POST {} within {} s",
                url.path(),
                timeout.as_secs()
            ));
        }
        Err(e) => return failed(format!("POST {} failed: {}", url.path(), causes(&e))),
    };
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    match status {
        StatusCode::OK => match serde_json::from_slice::<NegotiateResponse>(&body) {
            Ok(answer) if answer.error.is_some() => failed(format!(
                "the hub refused the negotiate: {}",
                answer.error.unwrap_or_default()
            )),
            Ok(answer) => {
                let offered: Vec<Transport> = Transport::ALL
                    .into_iter()
                    .filter(|t| answer.offers(*t))
                    .collect();
                let names: Vec<&str> = offered.iter().map(|t| t.as_str()).collect();
                Negotiated {
                    outcome: Outcome::Passed,
                    detail: format!(
                        "the hub answered HTTP 200 at {}; it offers {}",
                        url.path(),
                        if names.is_empty() { "no transport".into() } else { names.join(", ") }
                    ),
                    offered: Some(offered),
                    needs_token: false,
                }
            }
            Err(_) => failed(format!(
                "HTTP 200 at {}, but the answer is not a SignalR negotiate answer: something else (a proxy or login page?) answered in the hub's place",
                url.path()
            )),
        },
        StatusCode::UNAUTHORIZED if token.is_none() => Negotiated {
            outcome: Outcome::Passed,
            detail: "the hub is reachable and asks for an access token (HTTP 401): sign in to test the transports".into(),
            offered: None,
            needs_token: true,
        },
        StatusCode::UNAUTHORIZED => failed(
            "the hub is reachable but refused the access token (HTTP 401): the sign-in may have expired or been revoked; sign in again".into(),
        ),
        StatusCode::FORBIDDEN => failed(
            "the hub (or a proxy in front of it) refused the request (HTTP 403): the access token may not be a connector's, or a proxy blocks the hub".into(),
        ),
        StatusCode::NOT_FOUND => failed(format!(
            "nothing answers at {} (HTTP 404): check the hub URL (it should be the hub's address, without a path), or another web server is answering",
            url.path()
        )),
        status if status.is_redirection() => failed(format!(
            "the request was redirected (HTTP {}) to {}: a proxy's login page or a wrong hub URL",
            status.as_u16(),
            location.as_deref().unwrap_or("an unnamed place")
        )),
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => failed(
            "the proxy asks for a login (HTTP 407): put its user and password in the proxy URL".into(),
        ),
        status => failed(format!(
            "the hub answered HTTP {}{}",
            status.as_u16(),
            snippet(&body)
        )),
    }
}

/// A short, printable start of a body, for an unexpected answer.
fn snippet(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&body[..body.len().min(160)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// An error and its causes, innermost last.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_negotiate_under_the_hub_path() {
        let url = negotiate_url(&Url::parse("https://hub.example/").unwrap());
        assert_eq!(
            url.as_str(),
            "https://hub.example/hubs/connector/negotiate?negotiateVersion=1"
        );
        let prefixed = negotiate_url(&Url::parse("https://site.example/uplink/").unwrap());
        assert_eq!(prefixed.path(), "/uplink/hubs/connector/negotiate");
    }
}
