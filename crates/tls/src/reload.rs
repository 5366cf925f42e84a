//! A server certificate that can be replaced while serving: an ACME renewal or a rotated key
//! takes effect on the next handshake, with no restart and no connection dropped. A
//! replacement that does not parse, or whose key does not match its certificate, is refused
//! and the one in service stays.

use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::TlsError;
use crate::config::parse_certs;

/// The certificate and key every new handshake uses.
#[derive(Debug)]
pub struct CertificateSlot {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateSlot {
    /// A slot holding `cert_chain_pem` (leaf first) and its `key_pem`.
    ///
    /// # Errors
    /// The PEM text has no certificate or key, or the key is not the certificate's.
    pub fn new(cert_chain_pem: &str, key_pem: &str) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(certified_key(cert_chain_pem, key_pem)?),
        }))
    }

    /// Makes `cert_chain_pem` and `key_pem` the certificate of every handshake from now on;
    /// connections already open keep theirs.
    ///
    /// # Errors
    /// As [`CertificateSlot::new`]; the certificate in service is then unchanged.
    pub fn replace(&self, cert_chain_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let replacement = certified_key(cert_chain_pem, key_pem)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = replacement;
        Ok(())
    }

    /// The leaf certificate in service (DER), to say which one in logs and tests.
    pub fn leaf_der(&self) -> Vec<u8> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// A server configuration (HTTP/1.1 over ALPN, like [`crate::server_config`]) whose
    /// handshakes take their certificate from this slot.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        crate::install_crypto_provider();
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn certified_key(cert_chain_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, TlsError> {
    crate::install_crypto_provider();
    let chain = parse_certs(cert_chain_pem, "the certificate chain")?;
    // The parse error is dropped on purpose: it could quote key material.
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsError::NoPrivateKey {
            what: "the private key".to_owned(),
        })?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoopbackCa;

    #[test]
    fn a_replacement_is_used_and_a_bad_one_is_refused_keeping_the_old() {
        let first = LoopbackCa::generate(&["localhost"]).unwrap();
        let second = LoopbackCa::generate(&["localhost"]).unwrap();
        let slot = CertificateSlot::new(&first.cert_chain_pem(), first.key_pem()).unwrap();
        let in_service = slot.leaf_der();

        // A key that is not the certificate's is refused, and the first stays.
        let mismatch = slot.replace(&second.cert_chain_pem(), first.key_pem());
        assert!(matches!(mismatch, Err(TlsError::Config(_))), "{mismatch:?}");
        assert!(slot.replace("not pem", second.key_pem()).is_err());
        assert_eq!(slot.leaf_der(), in_service);

        slot.replace(&second.cert_chain_pem(), second.key_pem())
            .unwrap();
        assert_ne!(slot.leaf_der(), in_service);
    }
}
