use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_platform_verifier::BuilderVerifierExt;

use crate::TlsError;

/// Which certificates a client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's trust store (production hubs with real certificates).
    Platform,
    /// Only the CA certificates in this PEM text (the embedded hub's loopback CA, or a
    /// site's private CA).
    CustomCa(String),
}

pub(crate) fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what: what.to_owned(),
        });
    }
    Ok(certs)
}

/// A server configuration for HTTP/1.1 (WebSockets upgrade from it) from a PEM certificate
/// chain (leaf first) and its PEM private key.
pub fn server_config(cert_chain_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, TlsError> {
    crate::install_crypto_provider();
    let chain = parse_certs(cert_chain_pem, "the certificate chain")?;
    // The parse error is dropped on purpose: it could quote key material.
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsError::NoPrivateKey {
            what: "the private key".to_owned(),
        })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration trusting `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsError> {
    crate::install_crypto_provider();
    let config = match trust {
        Trust::Platform => ClientConfig::builder()
            .with_platform_verifier()
            .map_err(|e| TlsError::Platform(e.to_string()))?
            .with_no_client_auth(),
        Trust::CustomCa(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in parse_certs(pem, "the CA certificate")? {
                roots.add(cert)?;
            }
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_named_not_echoed() {
        let err = server_config("not pem", "secret-key-material").unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let ca = crate::LoopbackCa::generate(&["localhost"]).unwrap();
        let err = server_config(
            &ca.cert_chain_pem(),
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        assert!(client_config(&Trust::CustomCa(String::new())).is_err());
    }

    #[test]
    fn platform_trust_builds() {
        client_config(&Trust::Platform).expect("the platform verifier is available");
    }
}
