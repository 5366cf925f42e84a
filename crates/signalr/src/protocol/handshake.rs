//! The handshake: always JSON, always one record, whatever hub protocol follows.

use serde::{Deserialize, Serialize};

use super::records::write_record;
use crate::error::{Error, Result};

/// The client's first message: which hub protocol it will speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// Protocol name, e.g. `json`.
    pub protocol: String,
    /// Protocol version; 1 for both official protocols.
    pub version: u32,
}

impl HandshakeRequest {
    /// Parses a handshake record (without its separator).
    ///
    /// # Errors
    /// [`Error::MalformedMessage`] or [`Error::MissingField`] naming what is wrong.
    pub fn parse(record: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Wire {
            protocol: Option<String>,
            version: Option<u32>,
        }
        let wire: Wire = serde_json::from_slice(record)
            .map_err(|e| Error::malformed(format!("handshake request: {e}")))?;
        Ok(Self {
            protocol: wire.protocol.ok_or(Error::MissingField {
                message_type: "HandshakeRequest",
                field: "protocol",
            })?,
            version: wire.version.ok_or(Error::MissingField {
                message_type: "HandshakeRequest",
                field: "version",
            })?,
        })
    }

    /// Appends the encoded request and its separator to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let json = serde_json::to_vec(self).unwrap_or_default();
        write_record(&json, out);
    }
}

/// The server's answer: empty on success, an error otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// Why the handshake failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HandshakeResponse {
    /// Parses a handshake response record (without its separator).
    ///
    /// # Errors
    /// [`Error::MalformedMessage`] if it is not a JSON object.
    pub fn parse(record: &[u8]) -> Result<Self> {
        serde_json::from_slice(record)
            .map_err(|e| Error::malformed(format!("handshake response: {e}")))
    }

    /// Appends the encoded response and its separator to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let json = serde_json::to_vec(self).unwrap_or_default();
        write_record(&json, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_as_the_official_client_writes_it() {
        let req = HandshakeRequest::parse(br#"{"protocol":"json","version":1}"#).unwrap();
        assert_eq!(req.protocol, "json");
        assert_eq!(req.version, 1);
        let mut out = Vec::new();
        req.write(&mut out);
        assert_eq!(out, b"{\"protocol\":\"json\",\"version\":1}\x1e");
    }

    #[test]
    fn request_errors_name_the_problem() {
        let err = HandshakeRequest::parse(br#"{"version":1}"#).unwrap_err();
        assert!(err.to_string().contains("'protocol'"), "{err}");
        let err = HandshakeRequest::parse(b"not json").unwrap_err();
        assert_eq!(err.code(), "malformed_message");
        let err = HandshakeRequest::parse(br#"{"protocol":1,"version":1}"#).unwrap_err();
        assert_eq!(err.code(), "malformed_message");
    }

    #[test]
    fn response_success_is_an_empty_object() {
        let mut out = Vec::new();
        HandshakeResponse::default().write(&mut out);
        assert_eq!(out, b"{}\x1e");
        let resp = HandshakeResponse::parse(br#"{"error":"nope"}"#).unwrap();
        assert_eq!(resp.error.as_deref(), Some("nope"));
    }
}
