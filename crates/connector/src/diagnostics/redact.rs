//! Keeping secrets out of a diagnostics archive, twice over: the configuration loses every
//! secret setting by its form schema (and any setting whose name says it is one), and every
//! file is then scrubbed of each secret value this connector knows, in case one slipped into
//! a log or a description.

use serde_json::{Map, Value};

/// A secret shorter than this is not scrubbed from free text (it would mangle it); the
/// settings that hold one are removed from the configuration all the same.
const MIN_SCRUBBED_LEN: usize = 4;

/// Whether a setting's name says it holds a secret whatever its schema says: the same words
/// the log layer redacts fields by.
pub(super) fn looks_secret(name: &str) -> bool {
    uplink_logs::redact::looks_secret(name)
}

/// The secret values this connector holds, to scrub from anything exported.
#[derive(Default)]
pub(super) struct KnownSecrets {
    values: Vec<String>,
}

impl std::fmt::Debug for KnownSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownSecrets({} values)", self.values.len())
    }
}

impl KnownSecrets {
    /// Adds every string in `value` (a secrets file, or the secret part of the credentials).
    pub fn add_all(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Number(n) => self.add(&n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| self.add_all(v)),
            Value::Object(fields) => fields.values().for_each(|v| self.add_all(v)),
            _ => {}
        }
    }

    /// Adds one secret.
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= MIN_SCRUBBED_LEN && !self.values.iter().any(|v| v == secret) {
            self.values.push(secret.to_owned());
        }
    }

    /// `bytes` with every known secret (as written, and as escaped in JSON) replaced by
    /// `***`, and how many were replaced.
    pub fn scrub(&self, bytes: &[u8]) -> (Vec<u8>, usize) {
        let mut out = bytes.to_vec();
        let mut count = 0;
        for secret in &self.values {
            let escaped = serde_json::to_string(secret).expect("a string serialises");
            let escaped = &escaped[1..escaped.len() - 1];
            for form in [secret.as_str(), escaped] {
                let (next, n) = replace_all(&out, form.as_bytes(), b"***");
                out = next;
                count += n;
            }
        }
        (out, count)
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> (Vec<u8>, usize) {
    if needle.is_empty() || haystack.len() < needle.len() {
        return (haystack.to_vec(), 0);
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut count = 0;
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
            count += 1;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    (out, count)
}

/// The configuration file's JSON with secret settings removed: for each source, the fields
/// its kind's schema marks secret (`secret_fields` gives them, `None` for an unknown kind, whose
/// settings all go) and any whose name looks secret. Every removed value is added to
/// `secrets`; the list says what was removed, as `sources[name].settings.field`.
pub(super) fn redact_config(
    config: &mut Value,
    secret_fields: &dyn Fn(&str) -> Option<Vec<String>>,
    secrets: &mut KnownSecrets,
) -> Vec<String> {
    let mut removed = Vec::new();
    let Some(sources) = config.get_mut("sources").and_then(Value::as_array_mut) else {
        return removed;
    };
    for source in sources {
        let name = source
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let kind = source
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(settings) = source.get_mut("settings").and_then(Value::as_object_mut) else {
            continue;
        };
        let schema_secrets = secret_fields(&kind);
        let doomed: Vec<String> = settings
            .keys()
            .filter(|field| match &schema_secrets {
                Some(fields) => fields.contains(field) || looks_secret(field),
                None => true,
            })
            .cloned()
            .collect();
        let unknown_kind = schema_secrets.is_none() && !doomed.is_empty();
        for field in doomed {
            if let Some(value) = settings.remove(&field) {
                secrets.add_all(&value);
                removed.push(format!("sources[{name}].settings.{field}"));
            }
        }
        if unknown_kind {
            settings.insert(
                "_removed".into(),
                Value::String(format!(
                    "every setting: '{kind}' is not a kind this connector knows, so which are secret cannot be told"
                )),
            );
        }
    }
    removed
}

/// The secret part of a credentials file: everything but where the hub is and who we are.
pub(super) fn credential_secrets(credentials: &Value, secrets: &mut KnownSecrets) {
    if let Some(fields) = credentials.as_object() {
        let public = ["hubUrl", "connectorId", "caPem"];
        let secret_part: Map<String, Value> = fields
            .iter()
            .filter(|(k, _)| !public.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The secret's `kind` tag ("clientCredential") names the sort of secret, not the
        // secret: scrubbing that word would only mangle the archive.
        let mut secret_part = Value::Object(secret_part);
        if let Some(secret) = secret_part.get_mut("secret").and_then(Value::as_object_mut) {
            secret.remove("kind");
        }
        secrets.add_all(&secret_part);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn diagnostics_config_loses_schema_and_named_secrets() {
        let mut config = json!({
            "version": 1,
            "sources": [
                {"name": "plant", "kind": "sql", "settings": {"host": "db", "password": "pw-1234", "dsn": "x"}},
                {"name": "odd", "kind": "future", "settings": {"whatever": "opaque-5678"}},
                {"name": "sim", "kind": "simulated", "settings": {"apiToken": "tok-9999", "tags": 5}}
            ]
        });
        let fields = |kind: &str| match kind {
            "sql" => Some(vec!["dsn".to_owned()]),
            "simulated" => Some(vec![]),
            _ => None,
        };
        let mut secrets = KnownSecrets::default();
        let removed = redact_config(&mut config, &fields, &mut secrets);
        assert_eq!(
            removed,
            [
                "sources[plant].settings.dsn",
                "sources[plant].settings.password",
                "sources[odd].settings.whatever",
                "sources[sim].settings.apiToken"
            ]
        );
        assert_eq!(config["sources"][0]["settings"], json!({"host": "db"}));
        assert_eq!(config["sources"][2]["settings"], json!({"tags": 5}));
        let (scrubbed, n) =
            secrets.scrub(b"log: pw-1234 and \"opaque-5678\" and tok-9999; x stays");
        assert_eq!(n, 3);
        assert_eq!(scrubbed, b"log: *** and \"***\" and ***; x stays");
    }

    #[test]
    fn diagnostics_scrub_json_escaped_secrets() {
        let mut secrets = KnownSecrets::default();
        secrets.add("a\"quoted\\secret");
        let written = serde_json::to_vec(&json!({"s": "a\"quoted\\secret"})).unwrap();
        let (scrubbed, n) = secrets.scrub(&written);
        assert_eq!(n, 1);
        assert_eq!(scrubbed, br#"{"s":"***"}"#);
    }
}
