//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong speaking SignalR: malformed input, a peer that breaks the
/// protocol, a transport that fails, or an invocation that the other side answered with an error.
///
/// Messages never include secrets: access tokens and connection tokens are not part of any
/// variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message was not valid JSON or MessagePack, or a field had the wrong type.
    #[error("malformed message: {detail}")]
    MalformedMessage {
        /// What the parser found wrong.
        detail: String,
    },
    /// A message lacked a field its type requires.
    #[error("{message_type} message is missing its required '{field}' field")]
    MissingField {
        /// The message type, e.g. `Invocation`.
        message_type: &'static str,
        /// The missing field's JSON name.
        field: &'static str,
    },
    /// A message's `type` was not one the protocol defines.
    #[error("unknown message type {0}")]
    UnknownMessageType(u64),
    /// A message broke a rule of the hub protocol other than its shape.
    #[error("protocol violation: {0}")]
    ProtocolViolation(String),
    /// A message (or an unterminated run of bytes) exceeded the configured maximum.
    #[error(
        "message exceeds the maximum size of {limit} bytes (or, in JSON, lacks its 0x1E record separator)"
    )]
    MessageTooLarge {
        /// The configured maximum, in bytes.
        limit: usize,
    },
    /// The client asked for a hub protocol this side does not speak.
    #[error("requested protocol '{name}' version {version} is not available")]
    UnsupportedProtocol {
        /// The protocol name from the handshake.
        name: String,
        /// The protocol version from the handshake.
        version: u32,
    },
    /// The server answered the handshake with an error.
    #[error("handshake rejected by the server: {0}")]
    HandshakeRejected(String),
    /// The negotiate request failed or its answer was unusable.
    #[error("negotiate failed: {0}")]
    Negotiate(String),
    /// An HTTP request of a transport got an unexpected status.
    #[error("{operation} returned HTTP {status}")]
    HttpStatus {
        /// What was being done, e.g. `long polling GET`.
        operation: &'static str,
        /// The status code received.
        status: u16,
    },
    /// A transport could not be used or failed while in use.
    #[error("{transport} transport: {detail}")]
    Transport {
        /// The transport's name.
        transport: &'static str,
        /// What failed.
        detail: String,
    },
    /// No transport allowed by the client and offered by the server worked.
    #[error("no transport could connect: {0}")]
    NoTransport(String),
    /// The URL, proxy setting or another piece of configuration was invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Network I/O failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup or handshake failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// Something did not happen in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long it was awaited.
        after: Duration,
    },
    /// The connection is not (or no longer) open.
    #[error("connection is closed{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    ConnectionClosed {
        /// Why, when known.
        reason: Option<String>,
    },
    /// The peer completed an invocation with an error.
    #[error("invocation failed: {0}")]
    Invocation(String),
    /// An invocation was canceled before it completed.
    #[error("invocation canceled")]
    Canceled,
    /// The peer sent a value that does not match the expected type.
    #[error("could not convert value: {0}")]
    Conversion(String),
    /// The per-connection send queue is full: the peer is not reading fast enough.
    #[error("send queue is full: the peer reads too slowly")]
    SlowConsumer,
}

impl Error {
    /// A stable, machine-readable code for this error (for `{code, message}` bodies and logs).
    pub fn code(&self) -> &'static str {
        match self {
            Error::MalformedMessage { .. } => "malformed_message",
            Error::MissingField { .. } => "missing_field",
            Error::UnknownMessageType(_) => "unknown_message_type",
            Error::ProtocolViolation(_) => "protocol_violation",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::UnsupportedProtocol { .. } => "unsupported_protocol",
            Error::HandshakeRejected(_) => "handshake_rejected",
            Error::Negotiate(_) => "negotiate_failed",
            Error::HttpStatus { .. } => "http_status",
            Error::Transport { .. } => "transport_failed",
            Error::NoTransport(_) => "no_transport",
            Error::Config(_) => "invalid_config",
            Error::Io(_) => "io",
            Error::Tls(_) => "tls",
            Error::Timeout { .. } => "timeout",
            Error::ConnectionClosed { .. } => "connection_closed",
            Error::Invocation(_) => "invocation_failed",
            Error::Canceled => "canceled",
            Error::Conversion(_) => "conversion",
            Error::SlowConsumer => "slow_consumer",
        }
    }

    pub(crate) fn malformed(detail: impl std::fmt::Display) -> Self {
        Error::MalformedMessage {
            detail: detail.to_string(),
        }
    }

    pub(crate) fn transport(transport: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Transport {
            transport,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn closed(reason: impl Into<String>) -> Self {
        Error::ConnectionClosed {
            reason: Some(reason.into()),
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_name_the_problem() {
        let e = Error::MissingField {
            message_type: "Invocation",
            field: "target",
        };
        assert_eq!(e.code(), "missing_field");
        assert_eq!(
            e.to_string(),
            "Invocation message is missing its required 'target' field"
        );
        let closed = Error::ConnectionClosed { reason: None };
        assert_eq!(closed.to_string(), "connection is closed");
        assert_eq!(
            Error::closed("server stopped").to_string(),
            "connection is closed: server stopped"
        );
    }
}
