//! The error a method handler returns, on either side of the connection.

/// The error a method handler returns; its message is sent to the caller in the `Completion`.
///
/// Any `std::error::Error` converts into it, so `?` works in method handlers. Keep messages free of
/// secrets: they cross the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError(String);

impl HubError {
    /// An error with `message`, shown to the caller.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for HubError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}
