//! Reading a JSON string argument in one pass.
//!
//! Large string arguments (a relayed answer's chunks, whose JSON text escapes every quote) are
//! the bulk of what a hub decodes; serde_json's string reader handles each escape on its own,
//! which made unescaping the largest single cost of a relayed answer. Here the raw literal,
//! already validated by serde_json, is copied run by run between backslashes.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// One argument as a [`Value`]; a string takes the one-pass path.
pub(super) fn argument_value(raw: &RawValue) -> Result<Value> {
    let text = raw.get();
    if text.starts_with('"') {
        unescape(text).map(Value::String)
    } else {
        serde_json::from_str(text).map_err(Error::malformed)
    }
}

/// The content of a valid JSON string literal (quotes included in `literal`).
fn unescape(literal: &str) -> Result<String> {
    let inner = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| Error::malformed("a string argument lacks its quotes"))?;
    let bytes = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut start = 0;
    for at in memchr::memchr_iter(b'\\', bytes) {
        if at < start {
            // The second backslash of an escaped backslash.
            continue;
        }
        // Backslashes and the escape letters are ASCII, so every index here is a char boundary.
        out.push_str(&inner[start..at]);
        let unescaped = match bytes.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            // \uXXXX (and surrogate pairs) are rare in large arguments: serde_json reads those.
            _ => return serde_json::from_str(literal).map_err(Error::malformed),
        };
        out.push(unescaped);
        start = at + 2;
    }
    out.push_str(&inner[start..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both_ways(text: &str) {
        let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(argument_value(&raw).unwrap(), expected, "{text}");
    }

    #[test]
    fn strings_read_as_serde_json_reads_them() {
        for text in [
            r#""""#,
            r#""plain""#,
            r#""{\"t\":\"2026-01-01T00:00:00Z\",\"v\":1.5}""#,
            r#""a\\\\\"b\\""#,
            r#""\\\\""#,
            r#""\/\b\f\n\r\t""#,
            r#""caf\u00e9 \ud83d\ude00 and \" after""#,
            r#""é ü ✓ — non-ASCII as is \"quoted\"""#,
            r#""ends with escape\n""#,
        ] {
            both_ways(text);
        }
    }

    #[test]
    fn other_arguments_read_as_values() {
        for text in ["42", "-1.5e3", "null", "true", r#"{"a":["b\"c",1]}"#, "[]"] {
            both_ways(text);
        }
    }
}
