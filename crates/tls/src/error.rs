use std::path::PathBuf;

/// What can go wrong setting up TLS. Messages name the file or the setting at fault and never
/// include key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificate in the PEM text given for a certificate chain.
    #[error("no certificate found in {what}")]
    NoCertificate {
        /// What the text was for ("the certificate chain", "the CA certificate").
        what: String,
    },
    /// No private key in the PEM text given for a key.
    #[error("no private key found in {what}")]
    NoPrivateKey {
        /// What the text was for.
        what: String,
    },
    /// PEM text that could not be parsed.
    #[error("{what} is not valid PEM: {reason}")]
    BadPem {
        /// What the text was for.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
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
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}
