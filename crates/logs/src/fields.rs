//! The field formatter of every log line: like `tracing-subscriber`'s default (`message`
//! first, then `name=value`), except that secrets never come out.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

use crate::redact::{REDACTED, is_secret_field, scrub};

/// Formats fields with secrets removed: a secret's field by its name, token-shaped text in any
/// value (the message included) by its shape. Use with `fmt::layer().fmt_fields(RedactingFields)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingFields;

impl<'a> MakeVisitor<Writer<'a>> for RedactingFields {
    type Visitor = RedactingVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        RedactingVisitor {
            writer: target,
            empty: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields.
#[derive(Debug)]
pub struct RedactingVisitor<'a> {
    writer: Writer<'a>,
    empty: bool,
    result: fmt::Result,
}

impl RedactingVisitor<'_> {
    fn record(&mut self, field: &Field, text: &str, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        let separator = if self.empty { "" } else { " " };
        self.empty = false;
        let (value, quoted) = if is_secret_field(name) {
            (REDACTED.into(), false)
        } else {
            (scrub(text), quoted)
        };
        self.result = match (name, quoted) {
            ("message", _) => write!(self.writer, "{separator}{value}"),
            (_, true) => write!(self.writer, "{separator}{name}={value:?}"),
            (_, false) => write!(self.writer, "{separator}{name}={value}"),
        };
    }
}

impl Visit for RedactingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, &format!("{value:?}"), false);
    }
}

impl VisitOutput<fmt::Result> for RedactingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for RedactingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use crate::LogFiles;

    const PASETO: &str = "v4.local.Xq3bJm0Zk9VgTz2rR8yQ1aW5uN7oP4sL6dF0hJ2kE9cV3xB_-Aa";
    const SECRET: &str = "hunter2-the-site-password";

    #[test]
    fn secrets_logged_by_name_or_by_shape_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = LogFiles::in_data_dir(dir.path(), "test").open().unwrap();
        tracing::subscriber::with_default(crate::subscriber("info", Some(file.clone())), || {
            let span = tracing::info_span!("sign_in", client_secret = SECRET, hub = "hub.example");
            let _entered = span.enter();
            tracing::info!(password = SECRET, user = "owner", "signing in");
            tracing::warn!(token = ?PASETO, "refused");
            tracing::info!("sent Authorization: Bearer {PASETO} to the hub");
            tracing::error!(error = %format!("the hub said: {PASETO} expired"), "failed");
        });
        let logged = std::fs::read_to_string(file.path()).unwrap();
        assert!(!logged.contains(SECRET), "{logged}");
        assert!(!logged.contains("Xq3bJm0Zk9"), "{logged}");
        // What is not secret stays readable.
        for kept in [
            "sign_in{client_secret=<redacted> hub=\"hub.example\"}",
            "signing in password=<redacted> user=\"owner\"",
            "refused token=<redacted>",
            "sent Authorization: Bearer <redacted> to the hub",
            "failed error=the hub said: <redacted> expired",
        ] {
            assert!(logged.contains(kept), "{kept:?} missing from {logged}");
        }
        assert!(
            !logged.contains('\u{1b}'),
            "no colour codes in a file: {logged}"
        );
    }
}
