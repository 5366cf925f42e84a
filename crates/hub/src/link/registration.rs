//! What a connector may announce: checked before anything is stored, each problem named.

use std::collections::HashSet;

use uplink_link::Registration;

/// The most data sources one connector may announce.
const MAX_SOURCES: usize = 1000;

/// Whether `id` is a connector id a connector may choose: `con_` and 20 to 64 of
/// `[A-Za-z0-9_-]`.
pub fn valid_connector_id(id: &str) -> bool {
    id.strip_prefix("con_").is_some_and(|rest| {
        (20..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Checks a registration; the error says what to fix.
pub fn validate(registration: &Registration) -> Result<(), String> {
    if !valid_connector_id(&registration.connector_id) {
        return Err(format!(
            "connectorId '{}' is not valid: it must be 'con_' followed by 20 to 64 letters, digits, '_' or '-'",
            registration.connector_id
        ));
    }
    let name = registration.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err("name must be 1 to 128 characters".into());
    }
    if registration.software.chars().count() > 128 {
        return Err("software must be at most 128 characters".into());
    }
    if registration.sources.len() > MAX_SOURCES {
        return Err(format!(
            "{} data sources announced; at most {MAX_SOURCES} are accepted",
            registration.sources.len()
        ));
    }
    let mut seen = HashSet::new();
    for source in &registration.sources {
        let n = source.name.chars().count();
        if n == 0 || n > 64 || source.name.contains('/') || source.name.trim() != source.name {
            return Err(format!(
                "data source name '{}' is not valid: 1 to 64 characters, no '/', no leading or trailing spaces",
                source.name
            ));
        }
        if !seen.insert(source.name.as_str()) {
            return Err(format!(
                "data source name '{}' is announced twice; names are unique per connector",
                source.name
            ));
        }
        if source.kind.chars().count() > 64 {
            return Err(format!(
                "data source '{}': kind must be at most 64 characters",
                source.name
            ));
        }
        if source.description.chars().count() > 1024 {
            return Err(format!(
                "data source '{}': description must be at most 1024 characters",
                source.name
            ));
        }
    }
    let mut keys = HashSet::new();
    for (name, key) in &registration.source_keys {
        if !seen.contains(name.as_str()) {
            return Err(format!(
                "sourceKeys names '{name}', which is not among the announced data sources"
            ));
        }
        let n = key.chars().count();
        if n == 0 || n > MAX_KEY_CHARS || key.chars().any(char::is_control) {
            return Err(format!(
                "the key of data source '{name}' is not valid: 1 to {MAX_KEY_CHARS} characters, no control characters"
            ));
        }
        if !keys.insert(key.as_str()) {
            return Err(format!(
                "the key of data source '{name}' is given to another source too; keys are unique per connector"
            ));
        }
    }
    Ok(())
}

/// The longest stable key of a data source.
const MAX_KEY_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use uplink_model::{Capabilities, DataSourceDescriptor};

    use super::*;

    fn registration(id: &str, sources: &[&str]) -> Registration {
        Registration {
            connector_id: id.into(),
            name: "site-pc".into(),
            software: "uplink-connector 0.1.0".into(),
            source_keys: Default::default(),
            sources: sources
                .iter()
                .map(|n| DataSourceDescriptor {
                    name: (*n).into(),
                    kind: "simulated".into(),
                    description: String::new(),
                    capabilities: Capabilities::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn ids_and_names_are_checked_with_reasons() {
        let good = "con_abcdefghij0123456789";
        assert!(validate(&registration(good, &["line-1", "line 2"])).is_ok());
        for (id, sources, expected) in [
            ("con_short", &["a"][..], "connectorId 'con_short'"),
            ("app_abcdefghij0123456789", &["a"], "connectorId"),
            ("con_abcdefghij012345678!", &["a"], "connectorId"),
            (good, &["a/b"], "'a/b' is not valid"),
            (good, &[""], "'' is not valid"),
            (good, &["a", "a"], "announced twice"),
        ] {
            let err = validate(&registration(id, sources)).unwrap_err();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        let mut keyed = registration(good, &["a", "b"]);
        keyed.source_keys = [("a".into(), "k1".into()), ("b".into(), "k2".into())].into();
        assert!(validate(&keyed).is_ok());
        for (keys, expected) in [
            (vec![("a", "k1"), ("b", "k1")], "keys are unique"),
            (vec![("c", "k1")], "'c', which is not among"),
            (vec![("a", "")], "key of data source 'a' is not valid"),
        ] {
            keyed.source_keys = keys
                .into_iter()
                .map(|(n, k)| (n.to_owned(), k.to_owned()))
                .collect();
            let err = validate(&keyed).unwrap_err();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
        let mut nameless = registration(good, &[]);
        nameless.name = "  ".into();
        assert!(validate(&nameless).unwrap_err().contains("name"));
    }
}
