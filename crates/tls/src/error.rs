use std::path::PathBuf;

/// What can go wrong setting up TLS. Messages name the file or the setting at fault and never
/// include key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificate in the PEM text given for a certificate chain.
    #[error("no certificate found in {what}")]
    NoCertificate { what: String },
    /// No private key in the PEM text given for a key.
    #[error("no private key found in {what}")]
    NoPrivateKey { what: String },
    /// PEM text that could not be parsed.
    #[error("{what} is not valid PEM: {reason}")]
    BadPem { what: String, reason: String },
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// The operating system's trust store could not be used.
    #[error("platform certificate verifier unavailable: {0}")]
    Platform(String),
    /// Generating a certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing certificate files failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
