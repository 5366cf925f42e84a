//! The connectivity test: DNS, TCP, TLS, negotiate, then each transport, in order, each with a
//! time limit; a check whose prerequisite failed is skipped, saying which.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::net::TcpStream;
use tokio::time::Instant;
use uplink_link::HUB_PATH;
use uplink_signalr::Transport;
use uplink_signalr::client::ProxySetting;
use url::Url;

use super::negotiate_check::{Negotiated, negotiate};
use super::report::{CheckId, DiagnosticsReport, Outcome};
use super::route::Route;
use super::{tls_check, transport_check};
use crate::LinkError;
use crate::credentials::LinkCredentials;

/// How long the name lookup may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each address may take to accept a TCP connection.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the TLS handshake may take.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the negotiate request may take.
const NEGOTIATE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long each transport may take to connect and handshake (the link's own limit).
const TRANSPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// Tests the way from this machine to the hub at `hub_url` (its base address, as in the
/// connector's credentials), step by step, the way the link goes: through `proxy`, trusting
/// `tls`, and with `token` (a connector access token) for negotiate and the transports.
/// Without a token, a hub that answers negotiate with 401 counts as reachable and the
/// transports are skipped.
///
/// Never fails: every problem is a failed check in the report. Details never hold the token.
///
/// ```no_run
/// # async fn run(tls: std::sync::Arc<rustls::ClientConfig>) {
/// use uplink_connector::diagnostics::{Outcome, check_connectivity};
/// use uplink_signalr::client::ProxySetting;
///
/// let hub = url::Url::parse("https://hub.example").unwrap();
/// let report = check_connectivity(&hub, tls, ProxySetting::default(), None).await;
/// for check in &report.checks {
///     println!("{}: {:?} — {}", check.label, check.outcome, check.detail);
/// }
/// # }
/// ```
pub async fn check_connectivity(
    hub_url: &Url,
    tls: Arc<rustls::ClientConfig>,
    proxy: ProxySetting,
    token: Option<String>,
) -> DiagnosticsReport {
    let mut report = DiagnosticsReport {
        hub_url: Some(hub_url.as_str().trim_end_matches('/').to_owned()),
        started_at: Utc::now(),
        checks: Vec::new(),
    };
    run(&mut report, hub_url, &tls, &proxy, token.as_deref()).await;
    if let Some(token) = token.as_deref().filter(|t| !t.is_empty()) {
        // The client's errors never quote the token; this makes it certain.
        for check in &mut report.checks {
            check.detail = check.detail.replace(token, "***");
        }
    }
    report
}

/// The TLS configuration the link uses for `credentials`: their CA when they carry one, else
/// the platform's trust store.
///
/// # Errors
/// [`LinkError::Config`] when the CA certificate is unusable.
pub fn link_tls(credentials: &LinkCredentials) -> Result<Arc<rustls::ClientConfig>, LinkError> {
    let trust = match &credentials.ca_pem {
        Some(pem) => uplink_tls::Trust::CustomCa(pem.clone()),
        None => uplink_tls::Trust::Platform,
    };
    uplink_tls::client_config(&trust)
        .map_err(|e| LinkError::Config(format!("TLS for the hub: {e}")))
}

async fn run(
    report: &mut DiagnosticsReport,
    hub_url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    proxy: &ProxySetting,
    token: Option<&str>,
) {
    let Some(route) = check_url(report, hub_url, proxy) else {
        return;
    };
    let Some(addresses) = check_dns(report, &route).await else {
        return;
    };
    let Some((stream, address)) = check_tcp(report, &route, &addresses).await else {
        return;
    };
    if !check_tls(report, hub_url, &route, stream, address, tls).await {
        return;
    }
    let Some(offered) = check_negotiate(report, hub_url, tls, &route, token).await else {
        return;
    };
    check_transports(report, hub_url, tls, proxy, token, &offered).await;
}

/// Marks every check from `from` on as skipped, saying why.
fn skip_from(report: &mut DiagnosticsReport, from: CheckId, reason: &str) {
    let first = CheckId::ALL.iter().position(|id| *id == from).unwrap_or(0);
    for id in &CheckId::ALL[first..] {
        report.skip(*id, reason);
    }
}

/// The route to the hub, or a failed first check when the URL or proxy is unusable.
fn check_url(report: &mut DiagnosticsReport, hub_url: &Url, proxy: &ProxySetting) -> Option<Route> {
    let route = if matches!(hub_url.scheme(), "https" | "http") {
        Route::new(hub_url, proxy, |name| std::env::var(name).ok())
    } else {
        Err(format!(
            "the hub URL must start with https:// (it starts with {}://)",
            hub_url.scheme()
        ))
    };
    match route {
        Ok(route) => Some(route),
        Err(problem) => {
            report.push(CheckId::Dns, Outcome::Failed, problem, None);
            skip_from(
                report,
                CheckId::Tcp,
                "skipped: the hub URL or proxy setting is not usable",
            );
            None
        }
    }
}

/// The name of what is dialled first: the hub, or the proxy.
fn dialled(route: &Route) -> String {
    let (host, _) = route.dial_target();
    match route.proxy {
        Some(_) => format!("the proxy {host}"),
        None => host.to_owned(),
    }
}

async fn check_dns(report: &mut DiagnosticsReport, route: &Route) -> Option<Vec<SocketAddr>> {
    let (host, port) = route.dial_target();
    let whose = dialled(route);
    let started = Instant::now();
    if let Ok(ip) = host.parse::<IpAddr>() {
        report.push(
            CheckId::Dns,
            Outcome::Passed,
            format!("{whose} is an IP address: nothing to look up"),
            Some(started.elapsed()),
        );
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let looked_up = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port))).await;
    let failure = match looked_up {
        Ok(Ok(found)) => {
            let mut addresses: Vec<SocketAddr> = Vec::new();
            for address in found {
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
            if !addresses.is_empty() {
                let shown: Vec<String> = addresses
                    .iter()
                    .take(6)
                    .map(|a| a.ip().to_string())
                    .collect();
                let more = if addresses.len() > 6 { " …" } else { "" };
                report.push(
                    CheckId::Dns,
                    Outcome::Passed,
                    format!("{whose} resolved to {}{more}", shown.join(", ")),
                    Some(started.elapsed()),
                );
                return Some(addresses);
            }
            format!("the name {whose} has no addresses")
        }
        Ok(Err(e)) => format!(
            "the name {whose} could not be resolved ({e}): check the hub URL and this machine's DNS settings"
        ),
        Err(_) => format!(
            "no answer from DNS for {whose} within {} s: check this machine's DNS settings",
            DNS_TIMEOUT.as_secs()
        ),
    };
    report.push(
        CheckId::Dns,
        Outcome::Failed,
        failure,
        Some(started.elapsed()),
    );
    skip_from(report, CheckId::Tcp, "skipped: the name did not resolve");
    None
}

/// A TCP connection to the first address that answers, tunnelled to the hub by the proxy
/// when there is one.
async fn check_tcp(
    report: &mut DiagnosticsReport,
    route: &Route,
    addresses: &[SocketAddr],
) -> Option<(TcpStream, SocketAddr)> {
    let started = Instant::now();
    let (_, port) = route.dial_target();
    let connected = match connect_first(addresses).await {
        Ok((stream, address)) => route.through(stream).await.map(|s| (s, address)),
        Err(failures) => Err(format!(
            "no TCP connection to {} on port {port}: {}",
            dialled(route),
            failures.join("; ")
        )),
    };
    match connected {
        Ok((stream, address)) => {
            let detail = match &route.proxy {
                Some(_) => format!(
                    "connected to the proxy at {address}, which opened a tunnel to {}:{}",
                    route.hub_host, route.hub_port
                ),
                None => format!("connected to {address}"),
            };
            report.push(
                CheckId::Tcp,
                Outcome::Passed,
                detail,
                Some(started.elapsed()),
            );
            Some((stream, address))
        }
        Err(problem) => {
            report.push(
                CheckId::Tcp,
                Outcome::Failed,
                problem,
                Some(started.elapsed()),
            );
            skip_from(
                report,
                CheckId::Tls,
                "skipped: no TCP connection to the hub",
            );
            None
        }
    }
}

/// The handshake on the connection TCP opened; when the certificate is refused, a second look
/// says who it claims to be.
async fn check_tls(
    report: &mut DiagnosticsReport,
    hub_url: &Url,
    route: &Route,
    stream: TcpStream,
    address: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
) -> bool {
    if hub_url.scheme() == "http" {
        report.push(
            CheckId::Tls,
            Outcome::Failed,
            "the hub URL starts with http://: the link is only made over TLS; use https://",
            None,
        );
        skip_from(report, CheckId::Negotiate, "skipped: no TLS");
        return false;
    }
    let started = Instant::now();
    let handshake = tokio::time::timeout(TLS_TIMEOUT, tls_check::handshake(stream, &route.hub_host, tls))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no TLS handshake within {} s: is this an https port, or is a firewall holding the connection?",
                TLS_TIMEOUT.as_secs()
            ))
        });
    let took = started.elapsed();
    match handshake {
        Ok(handshake) => {
            let detail = match handshake.certificate {
                Some(cert) => format!("{}, {cert}", handshake.version),
                None => handshake.version,
            };
            report.push(CheckId::Tls, Outcome::Passed, detail, Some(took));
            true
        }
        Err(mut problem) => {
            if tls_check::is_certificate_problem(&problem) {
                let shown = tokio::time::timeout(TLS_TIMEOUT, async {
                    let stream = route.redial(address).await.ok()?;
                    tls_check::inspect(stream, &route.hub_host, tls).await
                })
                .await
                .ok()
                .flatten();
                if let Some(cert) = shown {
                    problem.push_str(&format!(". The server presented a {cert}"));
                }
            }
            report.push(CheckId::Tls, Outcome::Failed, problem, Some(took));
            skip_from(
                report,
                CheckId::Negotiate,
                "skipped: the TLS handshake failed",
            );
            false
        }
    }
}

/// The negotiate; the transports the hub offers when they can be tried.
async fn check_negotiate(
    report: &mut DiagnosticsReport,
    hub_url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    route: &Route,
    token: Option<&str>,
) -> Option<Vec<Transport>> {
    let started = Instant::now();
    let Negotiated {
        outcome,
        detail,
        offered,
        needs_token,
    } = negotiate(hub_url, tls, route, token, NEGOTIATE_TIMEOUT).await;
    report.push(CheckId::Negotiate, outcome, detail, Some(started.elapsed()));
    if needs_token {
        skip_from(
            report,
            CheckId::WebSockets,
            "skipped: opening a link needs an access token; sign in to the hub first",
        );
        return None;
    }
    if offered.is_none() {
        skip_from(report, CheckId::WebSockets, "skipped: negotiate failed");
    }
    offered
}

/// Each transport the hub offers, opened with the link's own client.
async fn check_transports(
    report: &mut DiagnosticsReport,
    hub_url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    proxy: &ProxySetting,
    token: Option<&str>,
    offered: &[Transport],
) {
    let endpoint = format!("{}{HUB_PATH}", hub_url.as_str().trim_end_matches('/'));
    for (id, transport) in [
        (CheckId::WebSockets, Transport::WebSockets),
        (CheckId::ServerSentEvents, Transport::ServerSentEvents),
        (CheckId::LongPolling, Transport::LongPolling),
    ] {
        if !offered.contains(&transport) {
            report.push(
                id,
                Outcome::Failed,
                format!("the hub does not offer {transport}"),
                None,
            );
            continue;
        }
        let started = Instant::now();
        let opened = transport_check::open_and_close(
            &endpoint,
            tls,
            proxy,
            token,
            transport,
            TRANSPORT_TIMEOUT,
        )
        .await;
        let (outcome, detail) = match opened {
            Ok(()) => (
                Outcome::Passed,
                "connected, completed the SignalR handshake, and closed".to_owned(),
            ),
            Err(problem) => (Outcome::Failed, problem),
        };
        report.push(id, outcome, detail, Some(started.elapsed()));
    }
}

/// Connects to the first of `addresses` that answers; otherwise says why each did not.
async fn connect_first(addresses: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), Vec<String>> {
    let mut failures = Vec::new();
    for &address in addresses {
        match tokio::time::timeout(TCP_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, address));
            }
            Ok(Err(e)) => failures.push(match e.kind() {
                std::io::ErrorKind::ConnectionRefused => format!(
                    "{address} refused the connection (nothing listens on that port: a wrong port, or the service is not running)"
                ),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable => {
                    format!("{address} is unreachable from this machine ({e})")
                }
                _ => format!("{address}: {e}"),
            }),
            Err(_) => failures.push(format!(
                "{address} did not answer within {} s (a firewall may be dropping outbound connections)",
                TCP_TIMEOUT.as_secs()
            )),
        }
    }
    Err(failures)
}
