//! Writing to a source, as its site allows: the form field every kind that can write adds with
//! one call ([`fields`]), and the tag patterns read from it ([`WritableTags`]). Writing is off
//! until the owner names at least one pattern; the connector checks every written tag against
//! them before the source sees it.

use serde_json::{Map, Value};
use uplink_model::NamePattern;

use crate::SourceError;
use crate::form::{FieldError, FieldSchema, FieldType};

/// The settings key of the writable tag patterns (one per line; empty: writing off).
pub const WRITABLE_TAGS: &str = "writableTags";

/// The writing field, appended to the form of a kind that can write:
/// `fields.extend(writing::fields())`.
pub fn fields() -> Vec<FieldSchema> {
    vec![
        FieldSchema::new(WRITABLE_TAGS, "Apps may change these tags", FieldType::Lines, false,
            "Tag names apps you allow may write, one pattern per line, with * for any run and ? for one character (such as SP*). Empty: no app can write to this source.")
            .default_value(""),
    ]
}

/// The tags a site lets apps write on one source.
#[derive(Debug, Clone, Default)]
pub struct WritableTags {
    patterns: Vec<NamePattern>,
    lines: Vec<String>,
}

impl WritableTags {
    /// Reads the patterns from a source's settings; a kind without the field writes nothing.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] on the field, naming the line of a bad pattern.
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, SourceError> {
        let Some(text) = settings.get(WRITABLE_TAGS).and_then(Value::as_str) else {
            return Ok(Self::default());
        };
        let mut tags = Self::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let pattern = NamePattern::new(line).map_err(|err| {
                SourceError::InvalidSettings(vec![FieldError::new(
                    WRITABLE_TAGS,
                    format!("line {}: {err}", number + 1),
                )])
            })?;
            tags.patterns.push(pattern);
            tags.lines.push(line.to_owned());
        }
        Ok(tags)
    }

    /// Whether writing is off (no pattern).
    pub fn is_off(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `tag` may be written.
    pub fn allows(&self, tag: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(tag))
    }

    /// The patterns as the owner wrote them.
    pub fn patterns(&self) -> &[String] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(text: &str) -> Map<String, Value> {
        json!({ WRITABLE_TAGS: text }).as_object().unwrap().clone()
    }

    #[test]
    fn writing_is_off_until_a_pattern_is_named() {
        assert!(WritableTags::from_settings(&Map::new()).unwrap().is_off());
        assert!(
            WritableTags::from_settings(&settings(" \n\n"))
                .unwrap()
                .is_off()
        );
        let tags = WritableTags::from_settings(&settings("SP*\n  Mode?\n")).unwrap();
        assert!(!tags.is_off());
        assert!(tags.allows("SP1"));
        assert!(tags.allows("Mode1"));
        assert!(!tags.allows("Mode12"));
        assert!(!tags.allows("PV1"));
        assert_eq!(tags.patterns(), ["SP*", "Mode?"]);
    }
}
