//! The negotiate exchange (`POST …/negotiate?negotiateVersion=1`) shared by server and client.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The three transports, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Transport {
    /// Full duplex over one WebSocket.
    WebSockets,
    /// Server-Sent Events down, HTTP POST up.
    ServerSentEvents,
    /// Long-polling GETs down, HTTP POST up.
    LongPolling,
}

impl Transport {
    /// All transports in order of preference.
    pub const ALL: [Transport; 3] = [
        Transport::WebSockets,
        Transport::ServerSentEvents,
        Transport::LongPolling,
    ];

    /// The name used on the wire and in the official clients.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSockets => "WebSockets",
            Transport::ServerSentEvents => "ServerSentEvents",
            Transport::LongPolling => "LongPolling",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `availableTransports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTransport {
    /// The transport's name; unknown names are kept as text and skipped by the client.
    pub transport: String,
    /// `Text` and/or `Binary`.
    pub transfer_formats: Vec<String>,
}

/// The negotiate answer. The connection token is a secret: `Debug` leaves it out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateResponse {
    /// Version 1 and later: the secret the transports present as `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_token: Option<String>,
    /// The public id others use to address this connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The negotiate version the server chose.
    #[serde(default)]
    pub negotiate_version: u32,
    /// The transports the server offers.
    #[serde(default)]
    pub available_transports: Vec<AvailableTransport>,
    /// A redirect to another endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A token to use with the redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Why the server refused the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Debug for NegotiateResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NegotiateResponse")
            .field("connection_id", &self.connection_id)
            .field(
                "connection_token",
                &self.connection_token.as_ref().map(|_| "<redacted>"),
            )
            .field("negotiate_version", &self.negotiate_version)
            .field("available_transports", &self.available_transports)
            .field("url", &self.url)
            .field("error", &self.error)
            .finish()
    }
}

impl NegotiateResponse {
    /// Reads a negotiate answer as a client receives it: any JSON object with these fields
    /// (unknown fields ignored); a server's refusal (`error`) becomes an error.
    ///
    /// # Errors
    /// [`Error::Negotiate`] for a body that is not such an object, or that carries `error`.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let answer: Self = serde_json::from_slice(body)
            .map_err(|e| Error::Negotiate(format!("unreadable answer: {e}")))?;
        if let Some(error) = answer.error {
            return Err(Error::Negotiate(error));
        }
        Ok(answer)
    }

    /// Whether the server offers `transport`.
    pub fn offers(&self, transport: Transport) -> bool {
        self.available_transports
            .iter()
            .any(|t| t.transport == transport.as_str())
    }

    /// The `id` to present on transport requests: the token in version 1, the id in version 0.
    pub fn transport_id(&self) -> Option<&str> {
        self.connection_token
            .as_deref()
            .or(self.connection_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_specification_example_and_hides_the_token() {
        let text = r#"{"connectionToken":"05265228-1e2c","connectionId":"807809a5","negotiateVersion":1,
            "availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},
            {"transport":"ServerSentEvents","transferFormats":["Text"]}]}"#;
        let r: NegotiateResponse = serde_json::from_str(text).unwrap();
        assert!(r.offers(Transport::WebSockets));
        assert!(r.offers(Transport::ServerSentEvents));
        assert!(!r.offers(Transport::LongPolling));
        assert_eq!(r.transport_id(), Some("05265228-1e2c"));
        let debug = format!("{r:?}");
        assert!(!debug.contains("05265228"), "{debug}");
    }
}
