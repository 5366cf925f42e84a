//! Where the connectivity test dials: the hub itself, or the outbound proxy the SignalR client
//! would use (the same `HTTPS_PROXY` / `NO_PROXY` rules), and the HTTP CONNECT tunnel through it.

use std::net::SocketAddr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uplink_signalr::client::ProxySetting;
use url::Url;

/// The hub's host and port, and the proxy in between if any.
pub(super) struct Route {
    /// The hub's host name or address (without brackets).
    pub hub_host: String,
    /// The hub's port.
    pub hub_port: u16,
    /// The proxy the link goes through, if one applies to this hub.
    pub proxy: Option<ProxyHop>,
}

/// An HTTP proxy. Its `Debug` never shows the credentials.
pub(super) struct ProxyHop {
    pub host: String,
    pub port: u16,
    /// The proxy URL as configured (may hold credentials: never shown).
    pub url: String,
    /// `Basic …` from the URL's credentials.
    authorization: Option<String>,
}

impl std::fmt::Debug for ProxyHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHop")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
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
        let (url, no_proxy) = match proxy {
            ProxySetting::Direct => (None, String::new()),
            ProxySetting::Url { url, no_proxy } => (Some(url.clone()), no_proxy.clone()),
            ProxySetting::FromEnvironment => {
                let first = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
                };
                (
                    first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
                    first(&["NO_PROXY", "no_proxy"]).unwrap_or_default(),
                )
            }
        };
        let proxy = match url {
            Some(url) if !bypasses(&no_proxy, &hub_host) => Some(ProxyHop::parse(&url)?),
            _ => None,
        };
        Ok(Self {
            hub_host,
            hub_port,
            proxy,
        })
    }

    /// The host and port the first TCP connection goes to.
    pub fn dial_target(&self) -> (&str, u16) {
        match &self.proxy {
            Some(proxy) => (&proxy.host, proxy.port),
            None => (&self.hub_host, self.hub_port),
        }
    }

    /// After connecting to `address`, opens the tunnel to the hub when going through a proxy.
    ///
    /// # Errors
    /// What the proxy answered, in words.
    pub async fn through(&self, stream: TcpStream) -> Result<TcpStream, String> {
        match &self.proxy {
            Some(proxy) => proxy.tunnel(stream, &self.hub_host, self.hub_port).await,
            None => Ok(stream),
        }
    }

    /// A fresh connection to `address`, through the proxy when there is one.
    pub async fn redial(&self, address: SocketAddr) -> Result<TcpStream, String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        self.through(stream).await
    }
}

impl ProxyHop {
    fn parse(url: &str) -> Result<Self, String> {
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let parsed =
            Url::parse(&with_scheme).map_err(|e| format!("the proxy URL cannot be read ({e})"))?;
        if parsed.scheme() != "http" {
            return Err(format!(
                "proxy scheme '{}' is not supported: use an http:// proxy (the link inside it is still TLS)",
                parsed.scheme()
            ));
        }
        let host = parsed
            .host_str()
            .ok_or("the proxy URL has no host name")?
            .trim_matches(['[', ']'])
            .to_owned();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let authorization = (!parsed.username().is_empty()).then(|| {
            let user = decode(parsed.username());
            let pass = parsed.password().map(decode).unwrap_or_default();
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            format!("Basic {encoded}")
        });
        Ok(Self {
            host,
            port: parsed.port().unwrap_or(3128),
            url: with_scheme,
            authorization,
        })
    }

    async fn tunnel(
        &self,
        mut stream: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, String> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.authorization {
            request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        request.push_str("\r\n");
        let failed = |e: std::io::Error| format!("the proxy connection failed during CONNECT: {e}");
        stream.write_all(request.as_bytes()).await.map_err(failed)?;
        // Byte by byte: nothing of the tunnelled stream may be consumed.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 {
                return Err("the proxy's answer to CONNECT is not HTTP".into());
            }
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.map_err(failed)? == 0 {
                return Err("the proxy closed the connection instead of opening a tunnel".into());
            }
            head.push(byte[0]);
        }
        let status = String::from_utf8_lossy(&head)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        match status {
            200..=299 => Ok(stream),
            407 => Err(format!(
                "the proxy {}:{} asks for a login (HTTP 407): put its user and password in the proxy URL",
                self.host, self.port
            )),
            403 => Err(format!(
                "the proxy {}:{} refuses connections to {authority} (HTTP 403): ask IT to allow the hub",
                self.host, self.port
            )),
            other => Err(format!(
                "the proxy {}:{} would not open a tunnel to {authority} (HTTP {other})",
                self.host, self.port
            )),
        }
    }
}

/// Whether `host` is reached directly by the `NO_PROXY` rules: `*`, exact names, and domain
/// suffixes (`example.com` and `.example.com` both cover subdomains).
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .any(|entry| {
            let entry = entry
                .split(':')
                .next()
                .unwrap_or(&entry)
                .trim_matches(['[', ']'])
                .to_owned();
            if entry == "*" || entry == host {
                return true;
            }
            let domain = entry.trim_start_matches('.');
            !domain.is_empty() && host.ends_with(&format!(".{domain}"))
        })
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
