//! Where the connectivity test dials: the hub itself, or the outbound proxy the SignalR client
//! would use (its own `HTTPS_PROXY` / `NO_PROXY` rules and CONNECT tunnel, from
//! `uplink_signalr::client::Proxy`), with what went wrong put in words for the report.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use uplink_signalr::client::{Proxy, ProxySetting};
use url::Url;

/// The hub's host and port, and the proxy in between if any.
pub(super) struct Route {
    /// The hub's host name or address (without brackets).
    pub hub_host: String,
    /// The hub's port.
    pub hub_port: u16,
    /// The proxy the link goes through, if one applies to this hub. Its `Debug` never shows
    /// the credentials.
    pub proxy: Option<Proxy>,
}

impl Route {
    /// The route to `hub_url` under `proxy`, reading the environment through `env`.
    ///
    /// # Errors
    /// A sentence naming what is wrong with the URL or the proxy setting.
    pub fn new(
        hub_url: &Url,
        proxy: &ProxySetting,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let hub_host = hub_url
            .host_str()
            .ok_or_else(|| format!("the hub URL '{hub_url}' has no host name"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let hub_port = hub_url.port_or_known_default().unwrap_or(443);
        let proxy = proxy
            .resolve(env)
            .map_err(|e| match e {
                uplink_signalr::Error::Config(detail) => detail,
                other => other.to_string(),
            })?
            .filter(|proxy| !proxy.bypasses(&hub_host));
        Ok(Self {
            hub_host,
            hub_port,
            proxy,
        })
    }

    /// The host and port the first TCP connection goes to.
    pub fn dial_target(&self) -> (&str, u16) {
        match &self.proxy {
            Some(proxy) => (proxy.host(), proxy.port()),
            None => (&self.hub_host, self.hub_port),
        }
    }

    /// After connecting to `address`, opens the tunnel to the hub when going through a proxy.
    ///
    /// # Errors
    /// What the proxy answered, in words.
    pub async fn through(&self, stream: TcpStream) -> Result<TcpStream, String> {
        let Some(proxy) = &self.proxy else {
            return Ok(stream);
        };
        let authority = if self.hub_host.contains(':') {
            format!("[{}]:{}", self.hub_host, self.hub_port)
        } else {
            format!("{}:{}", self.hub_host, self.hub_port)
        };
        let (host, port) = (proxy.host(), proxy.port());
        proxy
            .open_tunnel(stream, &self.hub_host, self.hub_port)
            .await
            .map_err(|error| match error {
                uplink_signalr::Error::HttpStatus { status: 407, .. } => format!(
                    "the proxy {host}:{port} asks for a login (HTTP 407): put its user and password in the proxy URL"
                ),
                uplink_signalr::Error::HttpStatus { status: 403, .. } => format!(
                    "the proxy {host}:{port} refuses connections to {authority} (HTTP 403): ask IT to allow the hub"
                ),
                uplink_signalr::Error::HttpStatus { status, .. } => format!(
                    "the proxy {host}:{port} would not open a tunnel to {authority} (HTTP {status})"
                ),
                other => format!("the proxy {host}:{port} did not open a tunnel: {other}"),
            })
    }

    /// A fresh connection to `address`, through the proxy when there is one.
    pub async fn redial(&self, address: SocketAddr) -> Result<TcpStream, String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        self.through(stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn diagnostics_dial_the_proxy_unless_no_proxy_covers_the_hub() {
        let hub = Url::parse("https://hub.example.com/").unwrap();
        let route = Route::new(
            &hub,
            &ProxySetting::FromEnvironment,
            env(&[("https_proxy", "http://user:pw@proxy.corp:8080")]),
        )
        .unwrap();
        assert_eq!(route.dial_target(), ("proxy.corp", 8080));
        assert!(!format!("{:?}", route.proxy).contains("pw"));
        let bypassed = Route::new(
            &hub,
            &ProxySetting::FromEnvironment,
            env(&[
                ("HTTPS_PROXY", "proxy.corp:3128"),
                ("NO_PROXY", ".example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(bypassed.dial_target(), ("hub.example.com", 443));
        let direct =
            Route::new(&hub, &ProxySetting::Direct, env(&[("HTTPS_PROXY", "p:1")])).unwrap();
        assert!(direct.proxy.is_none());
        let socks = Route::new(
            &hub,
            &ProxySetting::Url {
                url: "socks5://p:1".into(),
                no_proxy: String::new(),
            },
            env(&[]),
        );
        assert!(socks.err().unwrap().contains("socks5"));
    }
}
