//! One JSON object per line, for journald and log shippers (`--log-format json`), with the same
//! redaction as the text lines: a secret's field by its name, token-shaped text by its shape.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::redact::{REDACTED, is_secret_field, scrub};

/// Formats an event as `{"time","level","target","message","fields":{…},"spans":[…]}` on one
/// line. Span fields come as their formatter wrote them (with [`crate::RedactingFields`],
/// already redacted).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert("time".into(), Value::String(time));
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert("target".into(), Value::String(metadata.target().to_owned()));
        line.insert(
            "message".into(),
            Value::String(fields.message.unwrap_or_default()),
        );
        if !fields.fields.is_empty() {
            line.insert("fields".into(), Value::Object(fields.fields));
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let extensions = span.extensions();
                    let recorded = extensions
                        .get::<FormattedFields<N>>()
                        .map(|f| f.fields.as_str())
                        .unwrap_or_default();
                    if recorded.is_empty() {
                        Value::String(span.name().to_owned())
                    } else {
                        Value::String(format!("{}{{{recorded}}}", span.name()))
                    }
                })
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// An event's fields as JSON values, secrets removed.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value = if is_secret_field(name) {
            Value::String(REDACTED.into())
        } else {
            match value {
                Value::String(text) => Value::String(scrub(&text).into_owned()),
                other => other,
            }
        };
        if name == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(name.to_owned(), value);
        }
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::LogFormat;
    use crate::test_support::Captured;

    const PASETO: &str = "v4.local.Xq3bJm0Zk9VgTz2rR8yQ1aW5uN7oP4sL6dF0hJ2kE9cV3xB_-Aa";
    const SECRET: &str = "hunter2-the-site-password";

    #[test]
    fn each_event_is_one_json_object_with_secrets_removed() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            crate::subscriber_to("info", None, LogFormat::Json, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("sign_in", client_secret = SECRET, hub = "hub.example");
            let _entered = span.enter();
            tracing::info!(
                password = SECRET,
                user = "owner",
                attempts = 3,
                "signing in"
            );
            tracing::warn!("sent Authorization: Bearer {PASETO} to the hub");
        });
        let text = out.text();
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("Xq3bJm0Zk9"), "{text}");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "signing in");
        assert_eq!(lines[0]["fields"]["password"], "<redacted>");
        assert_eq!(lines[0]["fields"]["user"], "owner");
        assert_eq!(lines[0]["fields"]["attempts"], 3);
        assert_eq!(
            lines[0]["spans"][0],
            "sign_in{client_secret=<redacted> hub=\"hub.example\"}"
        );
        assert_eq!(
            lines[1]["message"],
            "sent Authorization: Bearer <redacted> to the hub"
        );
        assert!(lines[1]["time"].as_str().unwrap().contains('T'));
    }
}
