//! One session to the server: the connector's application certificate, the explicit trust of the
//! server's certificate, the identity, and the session's event loop, which reconnects with
//! backoff and re-creates subscriptions after a server restart while health says what is wrong.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opcua::client::{Client, ClientBuilder, IdentityToken, Session, SessionPollResult};
use opcua::crypto::{CertificateStore, SecurityPolicy, X509};
use opcua::types::{EndpointDescription, MessageSecurityMode, StatusCode};
use sha2::Digest;
use tokio::sync::oneshot;
use uplink_source::SourceError;
use uplink_source::form::FieldError;

use crate::settings::{Identity, Settings};

/// The thumbprints of a server certificate, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprints {
    /// SHA-1, as OPC UA tools show it.
    pub sha1: String,
    /// SHA-256.
    pub sha256: String,
}

impl Thumbprints {
    fn of(cert: &X509) -> Result<Self, String> {
        let der = cert.to_der().map_err(|e| e.to_string())?;
        Ok(Self {
            sha1: cert.thumbprint().as_hex_string().to_ascii_lowercase(),
            sha256: sha2::Sha256::digest(&der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }

    fn matches(&self, wanted: &str) -> bool {
        wanted == self.sha1 || wanted == self.sha256
    }
}

impl std::fmt::Display for Thumbprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SHA-1 {}, SHA-256 {}", self.sha1, self.sha256)
    }
}

/// Whether the session is up, as health reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connected,
    Down(String),
}

/// A live session and what its event loop reports.
pub(crate) struct Connection {
    pub session: Arc<Session>,
    pub state: Arc<Mutex<LinkState>>,
    pub reconnects: Arc<std::sync::atomic::AtomicU64>,
    /// Counts reconnects too, waking each events stream to call ConditionRefresh again.
    pub reconnected: tokio::sync::watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.session.disable_reconnects();
        let session = self.session.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
            });
        }
        self.task.abort();
    }
}

/// The folder holding the connector's OPC UA certificate and trust list.
pub(crate) fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("opcua").join("pki")
}

/// A problem with `field`, as a form shows it.
fn field_error(field: &str, message: impl Into<String>) -> SourceError {
    SourceError::InvalidSettings(vec![FieldError::new(field, message)])
}

/// A status code in plain words, with the OPC UA name kept for people who look it up.
pub(crate) fn plain(code: StatusCode) -> String {
    let name = code.sub_code().name();
    let words = match name {
        "BadUserAccessDenied" | "BadIdentityTokenRejected" | "BadIdentityTokenInvalid" => {
            "the server refused the identity (wrong user name or password, or a user it does not accept)"
        }
        "BadCertificateUntrusted"
        | "BadSecurityChecksFailed"
        | "BadCertificateInvalid"
        | "BadCertificateHostNameInvalid"
        | "BadCertificateUriInvalid"
        | "BadCertificateTimeInvalid" => {
            "the server refused the connector's certificate or the security settings"
        }
        "BadSecurityPolicyRejected" | "BadSecurityModeRejected" => {
            "the server refused the security policy or mode"
        }
        "BadTimeout" | "BadRequestTimeout" => "the server did not answer in time",
        "BadNotConnected"
        | "BadConnectionClosed"
        | "BadConnectionRejected"
        | "BadCommunicationError"
        | "BadServerNotConnected"
        | "BadDisconnect"
        | "BadSecureChannelClosed"
        | "BadServerHalted"
        | "BadShutdown" => {
            "the server cannot be reached (stopped, restarting, or the network is down)"
        }
        "BadTooManySessions" => "the server has too many sessions open",
        _ => "the server refused the request",
    };
    format!("{words} ({name})")
}

/// Everything needed to open a session, built from the settings.
fn client(settings: &Settings, pki: &Path) -> Result<Client, SourceError> {
    std::fs::create_dir_all(pki)
        .map_err(|e| SourceError::io("cannot create the OPC UA certificate folder", pki, e))?;
    let host = hostname();
    ClientBuilder::new()
        .application_name("Uplink connector")
        .application_uri(format!("urn:{host}:uplink:connector"))
        .product_uri("urn:uplink:connector")
        .create_sample_keypair(true)
        .pki_dir(pki)
        .certificate_path("own/cert.der")
        .private_key_path("private/private.pem")
        .trust_server_certs(false)
        .verify_server_certs(true)
        .session_retry_limit(-1)
        .session_retry_initial(Duration::from_millis(500))
        .session_retry_max(Duration::from_secs(30))
        .request_timeout(settings.timeout)
        .keep_alive_interval(Duration::from_secs(2).min(settings.timeout))
        .max_failed_keep_alive_count(2)
        .session_timeout(60_000)
        .channel_lifetime(
            u32::try_from(settings.channel_lifetime.as_millis())
                .unwrap_or(u32::MAX)
                .max(1_000),
        )
        .recreate_subscriptions(true)
        .client()
        .map_err(|errors| SourceError::Unavailable {
            source_name: String::new(),
            message: format!("the OPC UA client is misconfigured: {}", errors.join("; ")),
        })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The server's endpoints, or a plain error naming the endpoint field.
async fn endpoints(
    client: &Client,
    settings: &Settings,
) -> Result<Vec<EndpointDescription>, SourceError> {
    match tokio::time::timeout(
        settings.timeout,
        client.get_server_endpoints_from_url(settings.endpoint_url.as_str()),
    )
    .await
    {
        Ok(Ok(endpoints)) => Ok(endpoints),
        Ok(Err(err)) => Err(field_error(
            "endpointUrl",
            format!(
                "cannot reach an OPC UA server at {}: {}",
                settings.endpoint_url,
                plain(err.status())
            ),
        )),
        Err(_) => Err(field_error(
            "endpointUrl",
            format!(
                "no OPC UA server answered at {} within {} s",
                settings.endpoint_url,
                settings.timeout.as_secs_f64()
            ),
        )),
    }
}

fn matching_endpoint(
    endpoints: &[EndpointDescription],
    settings: &Settings,
) -> Result<EndpointDescription, SourceError> {
    Client::find_matching_endpoint(
        endpoints,
        &settings.endpoint_url,
        settings.policy,
        settings.mode,
    )
    .ok_or_else(|| {
        let offered: Vec<String> = endpoints
            .iter()
            .map(|e| {
                format!(
                    "{} {:?}",
                    SecurityPolicy::from_uri(e.security_policy_uri.as_ref()),
                    e.security_mode
                )
            })
            .collect();
        field_error(
            "securityPolicy",
            format!(
                "the server does not offer {} with {:?} at this URL (it offers: {})",
                settings.policy,
                settings.mode,
                if offered.is_empty() {
                    "nothing".to_owned()
                } else {
                    offered.join(", ")
                }
            ),
        )
    })
}

fn server_certificate(endpoint: &EndpointDescription) -> Result<X509, SourceError> {
    X509::from_byte_string(&endpoint.server_certificate).map_err(|err| {
        field_error(
            "endpointUrl",
            format!("the server sent no usable certificate: {err}"),
        )
    })
}

fn trusted_path(pki: &Path, cert: &X509) -> PathBuf {
    pki.join("trusted")
        .join(CertificateStore::cert_file_name(cert))
}

fn rejected_path(pki: &Path, cert: &X509) -> PathBuf {
    pki.join("rejected")
        .join(CertificateStore::cert_file_name(cert))
}

/// Writes `bytes` to `path` atomically (the connector's one way of saving state).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    uplink_files::write_atomically(path, bytes, uplink_files::Access::Default).map_err(|err| {
        SourceError::Unavailable {
            source_name: String::new(),
            message: format!("cannot save a certificate in the trust list: {err}"),
        }
    })
}

/// Puts `cert` on the trust list (and off the rejected list).
fn trust(pki: &Path, cert: &X509) -> Result<(), SourceError> {
    let der = cert.to_der().map_err(|err| {
        field_error(
            "endpointUrl",
            format!("the server's certificate is unreadable: {err}"),
        )
    })?;
    write_atomic(&trusted_path(pki, cert), &der)?;
    let _ = std::fs::remove_file(rejected_path(pki, cert));
    Ok(())
}

fn is_trusted(pki: &Path, cert: &X509) -> bool {
    match (std::fs::read(trusted_path(pki, cert)), cert.to_der()) {
        (Ok(on_disk), Ok(der)) => on_disk == der,
        _ => false,
    }
}

/// Checks the server's certificate against the trust list and the form's thumbprint: a
/// certificate seen for the first time is refused, with its thumbprints, never accepted.
fn check_trust(
    pki: &Path,
    settings: &Settings,
    endpoint: &EndpointDescription,
    source_name: &str,
) -> Result<(), SourceError> {
    let cert = server_certificate(endpoint)?;
    let thumbprints = Thumbprints::of(&cert).map_err(|err| {
        field_error(
            "endpointUrl",
            format!("the server's certificate is unreadable: {err}"),
        )
    })?;
    if let Some(wanted) = &settings.trusted_thumbprint {
        if thumbprints.matches(wanted) {
            return trust(pki, &cert);
        }
        return Err(field_error(
            "trustedThumbprint",
            format!(
                "the server's certificate has other thumbprints ({thumbprints}): it is not the certificate you trusted; check the server before trusting it"
            ),
        ));
    }
    if is_trusted(pki, &cert) {
        return Ok(());
    }
    if let Ok(der) = cert.to_der() {
        let _ = write_atomic(&rejected_path(pki, &cert), &der);
    }
    Err(field_error(
        "trustedThumbprint",
        format!(
            "the server's certificate is not trusted yet ({thumbprints}); check it on the server, then enter its thumbprint here or run `uplink sources trust {source_name}`"
        ),
    ))
}

fn identity_token(identity: &Identity) -> Result<IdentityToken, SourceError> {
    Ok(match identity {
        Identity::Anonymous => IdentityToken::Anonymous,
        Identity::UserName { user, password } => {
            IdentityToken::new_user_name(user.clone(), password.clone())
        }
        Identity::X509 { certificate, key } => {
            let cert = CertificateStore::read_cert(certificate).map_err(|err| {
                field_error(
                    "userCertificate",
                    format!("is not a readable certificate: {err}"),
                )
            })?;
            let key = CertificateStore::read_pkey(key).map_err(|err| {
                field_error(
                    "userPrivateKey",
                    format!("is not a readable private key: {err}"),
                )
            })?;
            IdentityToken::X509(Box::new(cert), Box::new(key))
        }
    })
}

/// Refuses an identity the endpoint does not accept, saying which it does.
fn check_identity_offered(
    endpoint: &EndpointDescription,
    identity: &Identity,
) -> Result<(), SourceError> {
    use opcua::types::UserTokenType;
    let offered: Vec<UserTokenType> = endpoint
        .user_identity_tokens
        .iter()
        .flatten()
        .map(|policy| policy.token_type)
        .collect();
    let wanted = match identity {
        Identity::Anonymous => UserTokenType::Anonymous,
        Identity::UserName { .. } => UserTokenType::UserName,
        Identity::X509 { .. } => UserTokenType::Certificate,
    };
    if offered.is_empty() || offered.contains(&wanted) {
        return Ok(());
    }
    let words = |t: &UserTokenType| match t {
        UserTokenType::Anonymous => "anonymous",
        UserTokenType::UserName => "user name and password",
        UserTokenType::Certificate => "X.509 certificate",
        UserTokenType::IssuedToken => "issued token",
    };
    Err(field_error(
        "identity",
        format!(
            "the server does not accept {} sign-in here (it accepts: {})",
            words(&wanted),
            offered.iter().map(words).collect::<Vec<_>>().join(", ")
        ),
    ))
}

/// Fetches the server's certificate for `settings` and puts it on the trust list; returns its
/// thumbprints. Refused when `expected` is given and differs.
pub(crate) async fn trust_server(
    settings: &Settings,
    data_dir: &Path,
    expected: Option<&str>,
) -> Result<Thumbprints, SourceError> {
    if settings.policy == SecurityPolicy::None {
        return Err(field_error(
            "securityPolicy",
            "is None: nothing is signed or encrypted, so there is no server certificate to trust",
        ));
    }
    let pki = pki_dir(data_dir);
    let client = client(settings, &pki)?;
    let endpoints = endpoints(&client, settings).await?;
    let endpoint = matching_endpoint(&endpoints, settings)?;
    let cert = server_certificate(&endpoint)?;
    let thumbprints = Thumbprints::of(&cert)
        .map_err(|err| field_error("endpointUrl", format!("unreadable certificate: {err}")))?;
    if let Some(expected) = expected {
        let wanted = crate::settings::normalise_thumbprint(expected).ok_or_else(|| {
            field_error(
                "trustedThumbprint",
                "must be a SHA-1 or SHA-256 thumbprint in hex",
            )
        })?;
        if !thumbprints.matches(&wanted) {
            return Err(field_error(
                "trustedThumbprint",
                format!(
                    "the server's certificate has other thumbprints ({thumbprints}); nothing was trusted"
                ),
            ));
        }
    }
    trust(&pki, &cert)?;
    Ok(thumbprints)
}

/// Opens a session and waits until it is active; after that the event loop keeps it up.
pub(crate) async fn connect(
    settings: &Settings,
    data_dir: &Path,
    source_name: &str,
) -> Result<Connection, SourceError> {
    let pki = pki_dir(data_dir);
    let mut client = client(settings, &pki)?;
    let token = identity_token(&settings.identity)?;
    let endpoints = endpoints(&client, settings).await?;
    let endpoint = matching_endpoint(&endpoints, settings)?;
    check_identity_offered(&endpoint, &settings.identity)?;
    if settings.mode != MessageSecurityMode::None {
        check_trust(&pki, settings, &endpoint, source_name)?;
    }
    let (session, event_loop) = client
        .connect_to_endpoint_directly(endpoint, token)
        .map_err(|err| field_error("endpointUrl", format!("cannot use this endpoint: {err}")))?;
    let state = Arc::new(Mutex::new(LinkState::Down("connecting".into())));
    let reconnects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (first_tx, first_rx) = oneshot::channel::<Result<(), StatusCode>>();
    let (reconnected_tx, reconnected) = tokio::sync::watch::channel(0u64);
    let task = {
        let state = state.clone();
        let reconnects = reconnects.clone();
        let name = source_name.to_owned();
        let session = session.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            let stream = event_loop.enter();
            futures::pin_mut!(stream);
            let mut first = Some(first_tx);
            while let Some(event) = stream.next().await {
                let set = |s: LinkState| *state.lock().unwrap_or_else(|p| p.into_inner()) = s;
                match event {
                    Ok(SessionPollResult::Reconnected(mode)) => {
                        set(LinkState::Connected);
                        match first.take() {
                            Some(tx) => {
                                let _ = tx.send(Ok(()));
                            }
                            None => {
                                // Subscriptions were re-created while reconnecting, before the
                                // new publish loop started: start publishing for them.
                                session.trigger_publish_now();
                                reconnects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                reconnected_tx.send_modify(|count| *count += 1);
                                tracing::info!(source = %name, ?mode, "reconnected to the OPC UA server");
                            }
                        }
                    }
                    Ok(SessionPollResult::ReconnectFailed(code)) => {
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Err(code));
                            return;
                        }
                        tracing::warn!(source = %name, %code, "cannot reconnect to the OPC UA server");
                        set(LinkState::Down(format!(
                            "cannot reconnect to the server: {}; retrying",
                            plain(code)
                        )));
                    }
                    Ok(SessionPollResult::ConnectionLost(code)) => {
                        tracing::warn!(source = %name, %code, "lost the connection to the OPC UA server");
                        set(LinkState::Down(format!(
                            "lost the connection to the server: {}; reconnecting",
                            plain(code)
                        )));
                    }
                    Ok(_) => {}
                    Err(code) => {
                        if let Some(tx) = first.take() {
                            let _ = tx.send(Err(code));
                        }
                        set(LinkState::Down(format!(
                            "the session to the server ended: {}",
                            plain(code)
                        )));
                        return;
                    }
                }
            }
        })
    };
    let outcome = tokio::time::timeout(settings.timeout * 2, first_rx).await;
    let connection = Connection {
        session,
        state,
        reconnects,
        reconnected,
        task,
    };
    match outcome {
        Ok(Ok(Ok(()))) => Ok(connection),
        Ok(Ok(Err(code))) => Err(connect_error(code, settings)),
        Ok(Err(_)) => Err(SourceError::Unavailable {
            source_name: source_name.to_owned(),
            message: "the session ended while connecting".into(),
        }),
        Err(_) => Err(field_error(
            "endpointUrl",
            format!(
                "the server did not open a session within {} s",
                (settings.timeout * 2).as_secs_f64()
            ),
        )),
    }
}

/// The first connection's failure as a field error on the field to fix.
fn connect_error(code: StatusCode, settings: &Settings) -> SourceError {
    let field = match code.sub_code().name() {
        "BadUserAccessDenied" | "BadIdentityTokenRejected" | "BadIdentityTokenInvalid" => {
            match settings.identity {
                Identity::UserName { .. } => "password",
                Identity::X509 { .. } => "userCertificate",
                Identity::Anonymous => "identity",
            }
        }
        name if name.starts_with("BadCertificate") || name.starts_with("BadSecurity") => {
            "securityPolicy"
        }
        _ => "endpointUrl",
    };
    field_error(field, plain(code))
}
