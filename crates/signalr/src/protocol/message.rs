//! The messages of the SignalR hub protocol, independent of their encoding.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;

use crate::error::Result;

/// Headers a message may carry; no header has a defined meaning, so they are passed through.
pub type Headers = BTreeMap<String, String>;

/// One message of the hub protocol (the handshake is separate: see [`super::handshake`]).
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1: call a method on the other side; without an id it is fire-and-forget.
    Invocation(Invocation),
    /// Type 2: one item of a streamed result (or of an upload stream).
    StreamItem(StreamItem),
    /// Type 3: the end of an invocation or stream, with its result or error.
    Completion(Completion),
    /// Type 4: call a method whose result is a stream of items.
    StreamInvocation(Invocation),
    /// Type 5: the caller no longer wants the result of an invocation.
    CancelInvocation(CancelInvocation),
    /// Type 6: keep-alive.
    Ping,
    /// Type 7: the sender is closing the connection.
    Close(Close),
    /// Type 8: stateful reconnect acknowledgement.
    Ack {
        /// Highest sequence id received.
        sequence_id: u64,
    },
    /// Type 9: stateful reconnect restart point.
    Sequence {
        /// Sequence id of the next message.
        sequence_id: u64,
    },
}

impl HubMessage {
    /// The numeric `type` of this message on the wire.
    pub fn type_id(&self) -> u8 {
        match self {
            HubMessage::Invocation(_) => 1,
            HubMessage::StreamItem(_) => 2,
            HubMessage::Completion(_) => 3,
            HubMessage::StreamInvocation(_) => 4,
            HubMessage::CancelInvocation(_) => 5,
            HubMessage::Ping => 6,
            HubMessage::Close(_) => 7,
            HubMessage::Ack { .. } => 8,
            HubMessage::Sequence { .. } => 9,
        }
    }
}

/// An `Invocation` or `StreamInvocation`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    /// Pass-through headers.
    pub headers: Headers,
    /// `None` for a non-blocking invocation (no answer expected).
    pub invocation_id: Option<String>,
    /// The method name (case-sensitive).
    pub target: String,
    /// The positional arguments.
    pub arguments: Arguments,
    /// Ids of upload streams the caller will send with `StreamItem`s.
    pub stream_ids: Vec<String>,
}

impl Invocation {
    /// An invocation of `target` with `arguments`, answered under `invocation_id` if given.
    pub fn new(
        invocation_id: Option<String>,
        target: impl Into<String>,
        arguments: impl Into<Arguments>,
    ) -> Self {
        Self {
            invocation_id,
            target: target.into(),
            arguments: arguments.into(),
            ..Self::default()
        }
    }
}

/// The arguments of an invocation, either as JSON values or still in the MessagePack array
/// they arrived in.
///
/// MessagePack arguments are bound straight to the method's parameter types, never through
/// JSON values, so a `bin` argument arrives as bytes without a detour (see
/// [`crate::protocol::MessagePackProtocol`]).
#[derive(Debug, Clone)]
pub enum Arguments {
    /// JSON values: decoded by the JSON protocol, or built by the sender.
    Values(Vec<Value>),
    /// One MessagePack array, header included, exactly as received or encoded.
    MessagePack {
        /// The array's bytes.
        array: Bytes,
        /// How many arguments it holds.
        len: usize,
    },
}

impl Arguments {
    /// How many arguments there are.
    pub fn len(&self) -> usize {
        match self {
            Arguments::Values(values) => values.len(),
            Arguments::MessagePack { len, .. } => *len,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments as JSON values (MessagePack `bin` becomes an array of byte values).
    ///
    /// # Errors
    /// [`crate::Error::MalformedMessage`] if MessagePack bytes do not hold an array.
    pub fn into_values(self) -> Result<Vec<Value>> {
        match self {
            Arguments::Values(values) => Ok(values),
            Arguments::MessagePack { array, .. } => {
                match super::messagepack::value_from_slice(&array)? {
                    Value::Array(values) => Ok(values),
                    _ => Err(crate::Error::malformed("arguments are not an array")),
                }
            }
        }
    }
}

impl From<Vec<Value>> for Arguments {
    fn from(values: Vec<Value>) -> Self {
        Arguments::Values(values)
    }
}

impl Default for Arguments {
    fn default() -> Self {
        Arguments::Values(Vec::new())
    }
}

impl PartialEq for Arguments {
    /// Equal when they hold the same values, whatever their encoding.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Arguments::Values(a), Arguments::Values(b)) => a == b,
            (Arguments::MessagePack { array: a, .. }, Arguments::MessagePack { array: b, .. }) => {
                a == b
            }
            _ => match (self.clone().into_values(), other.clone().into_values()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        }
    }
}

/// A `StreamItem`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    /// Pass-through headers.
    pub headers: Headers,
    /// The invocation (or upload stream) this item belongs to.
    pub invocation_id: String,
    /// The item.
    pub item: Value,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished without a value (void method, or end of a stream).
    Void,
    /// Finished with a value (which may be JSON `null`).
    Result(Value),
    /// Failed with a message.
    Error(String),
}

/// A `Completion`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Pass-through headers.
    pub headers: Headers,
    /// The invocation that completed.
    pub invocation_id: String,
    /// Its result or error.
    pub outcome: Outcome,
}

impl Completion {
    /// A completion of `invocation_id` with `outcome`.
    pub fn new(invocation_id: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            headers: Headers::new(),
            invocation_id: invocation_id.into(),
            outcome,
        }
    }
}

/// A `CancelInvocation`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelInvocation {
    /// Pass-through headers.
    pub headers: Headers,
    /// The invocation to cancel.
    pub invocation_id: String,
}

/// A `Close`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Close {
    /// Why the connection closed, if because of an error.
    pub error: Option<String>,
    /// Whether a reconnecting client should try again.
    pub allow_reconnect: bool,
}
