//! The TLS handshake of the connectivity test: the protocol version and the certificate on
//! success; on failure the reason in plain words ("certificate not trusted", "name mismatch",
//! "expired"…) and, when the certificate was refused, who it claims to be — a second handshake
//! that only reads the certificate shows, for example, a TLS-inspecting proxy's own CA.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

/// What a completed handshake showed.
pub(super) struct Handshake {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The server's certificate, if it sent one.
    pub certificate: Option<CertificateFacts>,
}

/// Who a certificate names and who issued it.
pub(super) struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_after: String,
}

impl std::fmt::Display for CertificateFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "certificate for \"{}\"", self.subject)?;
        if !self.names.is_empty() {
            write!(f, " (names: {})", self.names.join(", "))?;
        }
        write!(
            f,
            ", issued by \"{}\", valid until {}",
            self.issuer, self.not_after
        )
    }
}

/// Runs the handshake on `stream` as the link's client would (same trust, HTTP/1.1 ALPN).
///
/// # Errors
/// The reason in plain words.
pub(super) async fn handshake(
    stream: TcpStream,
    host: &str,
    tls: &Arc<ClientConfig>,
) -> Result<Handshake, String> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("'{host}' is not a valid server name: {e}"))?;
    let mut config = (**tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connected = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| describe_failure(&e, host))?;
    let (_, session) = connected.get_ref();
    let version = session
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("an unknown TLS version")
        .replace('_', ".")
        .replace("TLSv1.", "TLS 1.");
    let certificate = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| facts(der));
    Ok(Handshake {
        version,
        certificate,
    })
}

/// Reads the certificate `stream`'s server presents without judging it, to say who it claims
/// to be after it was refused. Nothing is sent over this connection.
pub(super) async fn inspect(
    stream: TcpStream,
    host: &str,
    tls: &Arc<ClientConfig>,
) -> Option<CertificateFacts> {
    let provider = tls.crypto_provider().clone();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let connected = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .ok()?;
    let (_, session) = connected.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| facts(der))
}

/// Whether a failure was about the certificate (so inspecting it helps).
pub(super) fn is_certificate_problem(detail: &str) -> bool {
    detail.starts_with(CERTIFICATE_PREFIX)
}

const CERTIFICATE_PREFIX: &str = "the hub's certificate";

fn facts(der: &CertificateDer<'_>) -> Option<CertificateFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some((*name).to_owned()),
                    GeneralName::IPAddress(bytes) => ip_text(bytes),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_after: chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| cert.validity().not_after.to_string()),
    })
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The handshake's failure in words a site's IT staff can act on.
fn describe_failure(error: &std::io::Error, host: &str) -> String {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match error.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "the server closed the connection during the TLS handshake: it may not speak TLS on this port, or a firewall cut it".into()
            }
            _ => format!("the TLS handshake failed: {error}"),
        };
    };
    use rustls::Error as E;
    match tls {
        E::InvalidCertificate(problem) => {
            let why = match problem {
                CertificateError::UnknownIssuer => "is not trusted: it was issued by a certificate authority this machine does not trust (a proxy that inspects TLS traffic causes this too; add its CA to the machine's trust store, or give the connector the hub's CA)".to_owned(),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    format!("does not match the name: it is not valid for '{host}' (check the hub URL, or a proxy is answering in the hub's place)")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired: the hub's operator must renew it (or this machine's clock is wrong)".to_owned()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "is not valid yet: check this machine's date and time".to_owned()
                }
                CertificateError::Revoked => "has been revoked by its issuer".to_owned(),
                CertificateError::BadSignature => "is not trusted: it names a certificate authority this machine trusts, but that authority did not sign it (the hub's CA may have been generated anew: get its current CA certificate)".to_owned(),
                other => format!("was refused ({other:?})"),
            };
            format!("{CERTIFICATE_PREFIX} {why}")
        }
        E::AlertReceived(alert) => {
            format!(
                "the server ended the TLS handshake with the alert '{alert:?}': it may require a TLS version or client certificate this connector does not offer"
            )
        }
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS: is the port an https port, or is a proxy in the way?"
                .into()
        }
        E::PeerIncompatible(problem) => {
            format!(
                "no TLS version or cipher in common with the server ({problem:?}): it may be too old (TLS 1.2 or newer is required)"
            )
        }
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// Accepts any certificate but still checks the handshake's signatures: used only to read what
/// a refused server presents, on a connection that carries nothing else.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
