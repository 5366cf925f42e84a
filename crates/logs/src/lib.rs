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
    subscriber_with_level(filter, file, format, out).0
}

/// Which events are logged, changeable while the program runs (`--log-level`, reloaded on
/// SIGHUP). `RUST_LOG`, when set, wins over both.
#[derive(Clone)]
pub struct LevelHandle {
    handle: tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    from_environment: bool,
}

impl std::fmt::Debug for LevelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelHandle")
            .field("from_environment", &self.from_environment)
            .finish_non_exhaustive()
    }
}

impl LevelHandle {
    /// Logs what `directive` (`info`, `warn,uplink_hub=debug`…) lets through from now on.
    /// Returns whether it changed anything: not while `RUST_LOG` decides.
    ///
    /// # Errors
    /// A directive that does not parse, in words; the level in force stays.
    pub fn set(&self, directive: &str) -> Result<bool, String> {
        if self.from_environment {
            return Ok(false);
        }
        let filter = EnvFilter::try_new(directive)
            .map_err(|error| format!("log level '{directive}' is not valid: {error}"))?;
        self.handle
            .reload(filter)
            .map_err(|error| format!("cannot change the log level: {error}"))?;
        Ok(true)
    }
}

/// [`subscriber_to`], with the handle that changes its level while it runs.
pub fn subscriber_with_level<W>(
    filter: &str,
    file: Option<LogFile>,
    format: LogFormat,
    out: W,
) -> (
    impl tracing::Subscriber + Send + Sync + 'static,
    LevelHandle,
)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, from_environment) = match EnvFilter::try_from_default_env() {
        Ok(from_environment) => (from_environment, true),
        Err(_) => (
            EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")),
            false,
        ),
    };
    layered(filter, from_environment, file, format, out)
}

fn layered<W>(
    filter: EnvFilter,
    from_environment: bool,
    file: Option<LogFile>,
    format: LogFormat,
    out: W,
) -> (
    impl tracing::Subscriber + Send + Sync + 'static,
    LevelHandle,
)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
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
    let subscriber = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(file);
    (
        subscriber,
        LevelHandle {
            handle,
            from_environment,
        },
    )
}

/// What [`init_with`] installed.
#[derive(Debug)]
pub struct Installed {
    /// The log file, when there is one.
    pub file: Option<PathBuf>,
    /// Changes the level while the program runs.
    pub level: LevelHandle,
}

/// Installs the logging of `program`: standard error, and `DATA_DIR/logs/PROGRAM.log` when a
/// data folder is given. Returns the log file's path; a log file that cannot be opened is
/// reported (on standard error, through the log) and the program logs to standard error alone.
/// Call once, first thing.
pub fn init(program: &str, data_dir: Option<&Path>) -> Option<PathBuf> {
    init_with(program, data_dir, LogFormat::Text, "info").and_then(|installed| installed.file)
}

/// [`init`] with standard error in `format` and `level` (an `EnvFilter` directive; `RUST_LOG`
/// wins when set). `None` when a subscriber was installed already.
pub fn init_with(
    program: &str,
    data_dir: Option<&Path>,
    format: LogFormat,
    level: &str,
) -> Option<Installed> {
    let files = data_dir.map(|dir| LogFiles::in_data_dir(dir, program));
    let (file, problem) = match files.map(|files| (files.path(), files.open())) {
        Some((_, Ok(file))) => (Some(file), None),
        Some((path, Err(error))) => (None, Some((path, error))),
        None => (None, None),
    };
    let path = file.as_ref().map(LogFile::path);
    let (installed, level) = subscriber_with_level(level, file, format, std::io::stderr);
    if tracing::subscriber::set_global_default(installed).is_err() {
        return None;
    }
    if let Some((path, error)) = problem {
        tracing::warn!(path = %path.display(), %error, "cannot write the log file: logging to standard error only");
    }
    Some(Installed { file: path, level })
}

#[cfg(test)]
mod level_tests {
    use crate::LogFormat;
    use crate::test_support::Captured;

    #[test]
    fn the_level_changes_while_running_and_a_bad_one_is_refused() {
        let out = Captured::default();
        let writer = out.clone();
        // Built as `--log-level info` would be, whatever RUST_LOG the test runs with.
        let (subscriber, level) = crate::layered(
            tracing_subscriber::EnvFilter::new("info"),
            false,
            None,
            LogFormat::Text,
            move || writer.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("first debug");
            tracing::info!("first info");
            assert_eq!(level.set("debug"), Ok(true));
            tracing::debug!("second debug");
            assert!(level.set("not a [level").unwrap_err().contains("not valid"));
            tracing::debug!("third debug");
            level.set("warn").unwrap();
            tracing::info!("second info");
        });
        let text = out.text();
        assert!(!text.contains("first debug"), "{text}");
        assert!(text.contains("first info"), "{text}");
        assert!(text.contains("second debug"), "{text}");
        assert!(
            text.contains("third debug"),
            "a refused level keeps the one in force: {text}"
        );
        assert!(!text.contains("second info"), "{text}");
    }
}

/// What the tests log into.
#[cfg(test)]
mod test_support {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Lines written, kept for the test to read.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
