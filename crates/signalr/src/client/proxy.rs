//! Outbound proxies: `HTTPS_PROXY` / `NO_PROXY` and HTTP CONNECT tunnels with Basic credentials.

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::error::{Error, Result};

/// Which proxy the client uses.
#[derive(Clone, Default)]
pub enum ProxySetting {
    /// `HTTPS_PROXY` (or `https_proxy`, then `ALL_PROXY`) and `NO_PROXY` from the environment.
    #[default]
    FromEnvironment,
    /// Connect directly.
    Direct,
    /// This proxy URL (`http://user:pass@proxy:3128`), bypassed for the hosts in `no_proxy`.
    Url {
        /// The proxy's URL; credentials in it are sent as Basic `Proxy-Authorization`.
        url: String,
        /// `NO_PROXY`-style list of hosts to reach directly.
        no_proxy: String,
    },
}

impl std::fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxySetting::FromEnvironment => f.write_str("FromEnvironment"),
            ProxySetting::Direct => f.write_str("Direct"),
            ProxySetting::Url { url, no_proxy } => f
                .debug_struct("Url")
                .field("url", &redact_credentials(url))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

/// A resolved proxy: where it is, how to authenticate, and what bypasses it. Its `Debug`
/// never shows the credentials.
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    /// The URL as configured, with a scheme; may hold credentials.
    url: String,
    authorization: Option<String>,
    no_proxy: Vec<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.authorization.is_some())
            .finish()
    }
}

fn redact_credentials(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("<redacted>");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable proxy URL>".into(),
    }
}

impl ProxySetting {
    /// Resolves the setting, reading the environment through `env` (for testability).
    ///
    /// # Errors
    /// [`Error::Config`] naming what is wrong with the proxy URL (never its credentials).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<Proxy>> {
        let (url, no_proxy) = match self {
            ProxySetting::Direct => return Ok(None),
            ProxySetting::Url { url, no_proxy } => (url.clone(), no_proxy.clone()),
            ProxySetting::FromEnvironment => {
                let first = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
                };
                let Some(url) = first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
                else {
                    return Ok(None);
                };
                (url, first(&["NO_PROXY", "no_proxy"]).unwrap_or_default())
            }
        };
        Proxy::parse(&url, &no_proxy).map(Some)
    }
}

impl Proxy {
    fn parse(url: &str, no_proxy: &str) -> Result<Self> {
        // A bare `host:port` is common in proxy variables.
        let with_scheme = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let parsed = Url::parse(&with_scheme).map_err(|e| {
            Error::Config(format!(
                "proxy URL {}: {e}",
                redact_credentials(&with_scheme)
            ))
        })?;
        if parsed.scheme() != "http" {
            return Err(Error::Config(format!(
                "proxy scheme '{}' is not supported (use an http:// proxy; the tunnel inside is TLS)",
                parsed.scheme()
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| Error::Config("proxy URL has no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
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
            no_proxy: no_proxy
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        })
    }

    /// Whether `host` is reached directly, by the `NO_PROXY` rules: `*`, exact names and
    /// addresses, and domain suffixes (`example.com` and `.example.com` both cover subdomains).
    pub fn bypasses(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            let entry = entry.split(':').next().unwrap_or(entry);
            let entry = entry.trim_matches(['[', ']']);
            if entry == "*" || entry == host {
                return true;
            }
            let domain = entry.trim_start_matches('.');
            !domain.is_empty() && host.ends_with(&format!(".{domain}"))
        })
    }

    /// The proxy's host name or address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port (3128 when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy URL as configured, with its scheme. It may hold credentials: never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a tunnel to `host:port` through the proxy.
    pub(crate) async fn tunnel(&self, host: &str, port: u16) -> Result<TcpStream> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                Error::transport(
                    "proxy",
                    format!("cannot reach proxy {}:{}: {e}", self.host, self.port),
                )
            })?;
        stream.set_nodelay(true)?;
        self.open_tunnel(stream, host, port).await
    }

    /// Asks the proxy, over `stream` (already connected to it), for a CONNECT tunnel to
    /// `host:port`, and hands the stream back once the proxy opened it.
    ///
    /// # Errors
    /// [`Error::HttpStatus`] with the proxy's status when it refuses (407: it wants a login);
    /// a transport or I/O error when it closes or does not speak HTTP.
    pub async fn open_tunnel(
        &self,
        mut stream: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TcpStream> {
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
        stream.write_all(request.as_bytes()).await?;

        // Read the reply head byte by byte: nothing of the tunnelled stream may be consumed.
        let mut head = Vec::with_capacity(256);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 {
                return Err(Error::transport("proxy", "CONNECT reply head too long"));
            }
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await? == 0 {
                return Err(Error::transport(
                    "proxy",
                    "proxy closed the connection during CONNECT",
                ));
            }
            head.push(byte[0]);
        }
        let status_line = String::from_utf8_lossy(&head);
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(Error::HttpStatus {
                operation: "proxy CONNECT",
                status,
            });
        }
        Ok(stream)
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
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_the_environment_with_credentials_and_no_proxy() {
        let proxy = ProxySetting::FromEnvironment
            .resolve(env(&[
                ("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.local:8080"),
                ("NO_PROXY", "localhost, .internal,10.0.0.1,example.org"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.local", 8080));
        let expected = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(proxy.authorization, Some(format!("Basic {expected}")));
        assert!(proxy.bypasses("localhost"));
        assert!(proxy.bypasses("hub.internal"));
        assert!(proxy.bypasses("10.0.0.1"));
        assert!(proxy.bypasses("api.example.org"));
        assert!(!proxy.bypasses("example.com"));
        assert!(!proxy.bypasses("notexample.org"));
        assert!(!format!("{proxy:?}").contains("p:ss"));
    }

    #[test]
    fn no_variable_means_direct_and_bad_urls_are_named() {
        assert!(
            ProxySetting::FromEnvironment
                .resolve(env(&[]))
                .unwrap()
                .is_none()
        );
        let bare = ProxySetting::FromEnvironment
            .resolve(env(&[("https_proxy", "proxy:3129")]))
            .unwrap()
            .unwrap();
        assert_eq!(bare.port, 3129);
        let err = ProxySetting::Url {
            url: "socks5://x:1".into(),
            no_proxy: String::new(),
        }
        .resolve(env(&[]))
        .unwrap_err();
        assert!(err.to_string().contains("socks5"), "{err}");
        let star = Proxy::parse("http://p:1", "*").unwrap();
        assert!(star.bypasses("anything"));
    }

    #[test]
    fn debug_of_a_setting_hides_the_password() {
        let s = ProxySetting::Url {
            url: "http://user:hunter2@p:1".into(),
            no_proxy: String::new(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
