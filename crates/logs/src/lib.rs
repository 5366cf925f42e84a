//! Uplink's logs: every long-running program (the desktop app's tray and window processes,
//! `uplink hub`, `uplink connector`) logs to standard error and to a rolling file in its data
//! folder, `DATA_DIR/logs/PROGRAM.log` (five files of 5 MiB at most), through one formatter
//! that keeps secrets out: a field whose name is a secret's (`password`, `refresh_token`,
//! `client_secret`, `api_key`…) is written as `<redacted>`, and every other value is scrubbed of
//! token-shaped text (PASETO `v4.local.…` tokens, `Bearer …`, `access_token=…`, long random runs).
//!
//! ```
//! let data_dir = tempfile::tempdir().unwrap();
//! let file = uplink_logs::LogFiles::in_data_dir(data_dir.path(), "example").open().unwrap();
//! tracing::subscriber::with_default(uplink_logs::subscriber("info", Some(file.clone())), || {
//!     tracing::info!(refresh_token = "kP3x9Qw2LmZ7vB1nR8tY4uI6oA0sD5fG3hJ7kL9zXc", "signed in");
//! });
//! let logged = std::fs::read_to_string(file.path()).unwrap();
//! assert!(logged.contains("signed in refresh_token=<redacted>"), "{logged}");
//! ```
#![warn(missing_docs)]

mod fields;
mod json;
pub mod redact;
mod rolling;

use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;

pub use fields::RedactingFields;
pub use json::JsonLines;
pub use rolling::{DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, LogFile, LogFiles, RecordWriter};

/// How lines on standard error look: text for people, or one JSON object per line for
/// journald and log shippers (`--log-format json`). Log files are always text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `time level target: message name=value…`.
    #[default]
    Text,
    /// [`JsonLines`].
    Json,
}

/// The subscriber every program installs: `filter` (an `EnvFilter` directive such as `info`,
/// overridden by `RUST_LOG`), standard error, and `file` when there is one, all through
/// [`RedactingFields`].
pub fn subscriber(
    filter: &str,
    file: Option<LogFile>,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    subscriber_to(filter, file, LogFormat::Text, std::io::stderr)
}

/// [`subscriber`] with standard error replaced by `out`, in `format`.
pub fn subscriber_to<W>(
    filter: &str,
    file: Option<LogFile>,
    format: LogFormat,
    out: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let (text, json) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(RedactingFields)
                    .with_writer(out),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(RedactingFields)
                    .event_format(JsonLines)
                    .with_writer(out),
            ),
        ),
    };
    let file = file.map(|file| {
        tracing_subscriber::fmt::layer()
            .fmt_fields(RedactingFields)
            .with_ansi(false)
            .with_writer(file)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(file)
}

/// Installs the logging of `program`: standard error, and `DATA_DIR/logs/PROGRAM.log` when a
/// data folder is given. Returns the log file's path; a log file that cannot be opened is
/// reported (on standard error, through the log) and the program logs to standard error alone.
/// Call once, first thing.
pub fn init(program: &str, data_dir: Option<&Path>) -> Option<PathBuf> {
    init_with(program, data_dir, LogFormat::Text)
}

/// [`init`] with standard error in `format`.
pub fn init_with(program: &str, data_dir: Option<&Path>, format: LogFormat) -> Option<PathBuf> {
    let files = data_dir.map(|dir| LogFiles::in_data_dir(dir, program));
    let (file, problem) = match files.map(|files| (files.path(), files.open())) {
        Some((_, Ok(file))) => (Some(file), None),
        Some((path, Err(error))) => (None, Some((path, error))),
        None => (None, None),
    };
    let path = file.as_ref().map(LogFile::path);
    let installed = subscriber_to("info", file, format, std::io::stderr);
    if tracing::subscriber::set_global_default(installed).is_err() {
        return None;
    }
    if let Some((path, error)) = problem {
        tracing::warn!(path = %path.display(), %error, "cannot write the log file: logging to standard error only");
    }
    path
}
