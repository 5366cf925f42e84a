//! What can go wrong running the connector's link, named so a person can act on it.

use crate::SourceError;
use crate::config::ConfigError;

/// An error of the connector runtime or its link, with a stable [`code`](LinkError::code).
/// Messages never carry a token, credential or refresh token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The runtime was set up wrongly (bad hub URL, unusable CA certificate…).
    #[error("{0}")]
    Config(String),
    /// The hub could not be reached or answered nonsense.
    #[error("{message}")]
    Hub {
        /// What happened.
        message: String,
    },
    /// The hub refused (an OAuth error code such as `invalid_grant`, or a refused call).
    #[error("the hub refused: {code}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Refused {
        /// The hub's code.
        code: String,
        /// Its explanation.
        message: String,
    },
    /// There are no credentials in the data dir.
    #[error(
        "this connector is not signed in to a hub: run `uplink connector login --hub URL` or `uplink connector register`"
    )]
    SignedOut,
    /// Not linked to the hub right now.
    #[error("not linked to the hub right now: {0}")]
    NotLinked(String),
    /// Saved state could not be read or written.
    #[error(transparent)]
    Store(#[from] ConfigError),
    /// A data source could not be configured or opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The runtime has stopped.
    #[error("the connector runtime has stopped")]
    Stopped,
}

impl LinkError {
    /// A stable snake_case code for `{code, message}` bodies.
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::Config(_) => "link_config",
            LinkError::Hub { .. } => "hub_unreachable",
            LinkError::Refused { .. } => "hub_refused",
            LinkError::SignedOut => "signed_out",
            LinkError::NotLinked(_) => "not_linked",
            LinkError::Store(err) => err.code(),
            LinkError::Source(err) => err.code(),
            LinkError::Stopped => "stopped",
        }
    }
}
