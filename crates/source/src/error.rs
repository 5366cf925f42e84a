//! What can go wrong reading a data source or its configuration, named so a person can fix it.

use std::path::PathBuf;

use uplink_model::ModelError;

use crate::form::FieldError;

/// An error from a data source or the connector's configuration, with a stable
/// [`code`](SourceError::code) for APIs. Messages never carry a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The query itself is wrong (bad time, reversed range, unknown function…).
    #[error(transparent)]
    Query(#[from] ModelError),
    /// The data source has no tag of that name.
    #[error("data source '{source_name}' has no tag '{tag}'")]
    UnknownTag {
        /// The data source.
        source_name: String,
        /// The tag asked for.
        tag: String,
    },
    /// No data source of that name is configured.
    #[error("no data source named '{0}' is configured")]
    UnknownSource(String),
    /// No adapter of that kind exists.
    #[error("unknown data source kind '{kind}' (known: {known})")]
    UnknownKind {
        /// The kind asked for.
        kind: String,
        /// The known kinds, comma separated.
        known: String,
    },
    /// The submitted settings do not fit the kind's form.
    #[error("invalid settings: {}", FieldError::join(.0))]
    InvalidSettings(Vec<FieldError>),
    /// The data source does not answer this kind of query.
    #[error("data source '{source_name}' does not support {what}")]
    Unsupported {
        /// The data source.
        source_name: String,
        /// The query kind, in words.
        what: &'static str,
    },
    /// A file could not be read or written.
    #[error("{action} {}: {}", .path.display(), io_words(.source))]
    Io {
        /// What was being done ("cannot read", "cannot write"…).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The source's server or device cannot be reached or refused the connection (it is
    /// retried in the background; health says what is wrong).
    #[error("data source '{source_name}' is unavailable: {message}")]
    Unavailable {
        /// The data source.
        source_name: String,
        /// What is wrong, in plain words, without any secret.
        message: String,
    },
    /// The source did not answer in time; the request was abandoned.
    #[error("data source '{source_name}' did not answer {what} within {seconds} s")]
    Timeout {
        /// The data source.
        source_name: String,
        /// The request, in words.
        what: &'static str,
        /// The time allowed.
        seconds: u64,
    },
    /// The database refused or failed a query.
    #[error("data source '{source_name}': {message}")]
    Database {
        /// The data source.
        source_name: String,
        /// What failed, without any secret.
        message: String,
    },
    /// The device or server behind the source did not answer, or refused (a PLC that times out,
    /// a Modbus exception).
    #[error("data source '{source_name}': {message}")]
    Device {
        /// The data source.
        source_name: String,
        /// What happened, in plain words, without any secret.
        message: String,
    },
    /// A write was refused before reaching the device: the tag is read-only or the value does
    /// not fit it.
    #[error("data source '{source_name}' cannot write '{tag}': {reason}")]
    WriteRefused {
        /// The data source.
        source_name: String,
        /// The tag.
        tag: String,
        /// Why, for a person.
        reason: String,
    },
}

impl SourceError {
    /// A stable snake_case code for `{code, message}` bodies.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Query(err) => err.code(),
            SourceError::UnknownTag { .. } => "unknown_tag",
            SourceError::UnknownSource(_) => "unknown_data_source",
            SourceError::UnknownKind { .. } => "unknown_kind",
            SourceError::InvalidSettings(_) => "invalid_settings",
            SourceError::Unsupported { .. } => "unsupported",
            SourceError::Io { .. } => "io",
            SourceError::Unavailable { .. } => "source_unavailable",
            SourceError::Timeout { .. } => "source_timeout",
            SourceError::Database { .. } => "database",
            SourceError::Device { .. } => "device",
            SourceError::WriteRefused { .. } => "write_refused",
        }
    }

    /// Field-level problems, when the error is about submitted settings.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            SourceError::InvalidSettings(errors) => errors,
            _ => &[],
        }
    }

    /// A file error, naming what was done and which file.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SourceError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// An operating system's file error in words, without its bare number: "(os error 2)" alone
/// tells a person nothing.
pub fn io_words(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let words = match error.kind() {
        ErrorKind::NotFound => "there is no such file or folder on this machine",
        ErrorKind::PermissionDenied => {
            "permission denied: the user Uplink runs as may not open it; change its permissions or choose another place"
        }
        ErrorKind::IsADirectory => "it is a folder where a file is needed",
        ErrorKind::NotADirectory => "a part of the path is a file where a folder is needed",
        ErrorKind::InvalidData => "its contents are not valid text",
        ErrorKind::StorageFull => "the disk is full",
        _ => "",
    };
    if !words.is_empty() {
        return words.to_owned();
    }
    // Other kinds: the system's own sentence, without the number it appends.
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
