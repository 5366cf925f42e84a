//! Form schemas: each data source kind publishes the fields of its "add data source" form, and
//! the same schema validates what is submitted, field by field. A user interface draws a form
//! for any kind from its schema alone, so a new kind needs no interface work.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;
use uplink_model::time_expr::parse_span;

/// The form of one data source kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FormSchema {
    /// The kind's identifier (`simulated`, `csv`, `sqlite`).
    pub kind: String,
    /// A title for the form.
    pub title: String,
    /// What this kind of source reads.
    pub description: String,
    /// The fields, in display order.
    pub fields: Vec<FieldSchema>,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// The settings key.
    pub name: String,
    /// A label for people.
    pub label: String,
    /// What the field holds.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Whether a value must be given (a default counts).
    pub required: bool,
    /// The value used when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "string | number | boolean")]
    pub default: Option<Value>,
    /// One or two sentences shown beside the field.
    pub help: String,
    /// Limits on the value.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    #[ts(as = "Option<Constraints>", optional)]
    pub constraints: Constraints,
    /// A password or key: never shown back, never written to the configuration in plain text.
    #[serde(default)]
    pub secret: bool,
}

/// The kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// Free text.
    Text,
    /// Text over several lines, such as a small table in CSV; checked as text.
    Lines,
    /// A file or folder on the connector's machine.
    Path,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// On or off.
    Boolean,
    /// One of `constraints.options`.
    Select,
    /// A length of time such as `1s` or `1h 30m`.
    Duration,
}

/// Limits on a field's value; empty parts do not apply.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    /// Smallest number accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub min: Option<f64>,
    /// Largest number accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max: Option<f64>,
    /// Longest text accepted, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub max_length: Option<usize>,
    /// The choices of a select field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub options: Vec<String>,
}

impl Constraints {
    fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// What is wrong with one submitted field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `field: message; field: message` for one-line reports.
    pub fn join(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Texts longer than this are refused unless a field says otherwise.
const DEFAULT_MAX_LENGTH: usize = 4_096;

impl FieldSchema {
    /// A field with no default, no constraints, not secret.
    pub fn new(name: &str, label: &str, field_type: FieldType, required: bool, help: &str) -> Self {
        Self {
            name: name.to_owned(),
            label: label.to_owned(),
            field_type,
            required,
            default: None,
            help: help.to_owned(),
            constraints: Constraints::default(),
            secret: false,
        }
    }

    /// The same field with a default value.
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// The same field limited to `min..=max`.
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.constraints.min = Some(min);
        self.constraints.max = Some(max);
        self
    }

    /// The same field as a choice among `options`.
    pub fn options(mut self, options: &[&str]) -> Self {
        self.constraints.options = options.iter().map(|o| (*o).to_owned()).collect();
        self
    }

    /// The same field marked secret.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Checks one value (text from a form is converted to the field's type).
    fn check(&self, value: &Value) -> Result<Value, String> {
        match self.field_type {
            FieldType::Text | FieldType::Lines | FieldType::Path => {
                // A settings file may give lines as a list of strings.
                let text = match value {
                    Value::Array(items) if self.field_type == FieldType::Lines => items
                        .iter()
                        .map(as_text)
                        .collect::<Option<Vec<_>>>()
                        .map(|lines| lines.join("\n")),
                    _ => as_text(value),
                }
                .ok_or("must be text")?;
                let limit = self.constraints.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
                if text.chars().count() > limit {
                    return Err(format!("must be at most {limit} characters"));
                }
                if self.required && text.trim().is_empty() {
                    return Err("must not be empty".into());
                }
                if self.field_type == FieldType::Path && !is_full_path(&text) {
                    return Err(RELATIVE_PATH.into());
                }
                Ok(Value::String(text))
            }
            FieldType::Integer => {
                let number = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or("must be a whole number")?;
                self.check_range(number as f64)?;
                Ok(Value::from(number))
            }
            FieldType::Number => {
                let number = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|n| n.is_finite())
                .ok_or("must be a number")?;
                self.check_range(number)?;
                Ok(Value::from(number))
            }
            FieldType::Boolean => match value {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
                _ => Err("must be true or false".into()),
            },
            FieldType::Select => {
                let text = as_text(value).ok_or("must be text")?;
                if self.constraints.options.contains(&text) {
                    Ok(Value::String(text))
                } else {
                    Err(format!(
                        "must be one of {}",
                        self.constraints.options.join(", ")
                    ))
                }
            }
            FieldType::Duration => {
                let text = as_text(value).ok_or("must be a duration such as 1s or 1h 30m")?;
                let span = parse_span(&text).map_err(|e| e.to_string())?;
                if span.as_micros() <= 0 {
                    return Err("must be longer than zero".into());
                }
                Ok(Value::String(text))
            }
        }
    }

    fn check_range(&self, number: f64) -> Result<(), String> {
        match (self.constraints.min, self.constraints.max) {
            (Some(min), Some(max)) if !(min..=max).contains(&number) => {
                Err(format!("must be between {min} and {max}"))
            }
            (Some(min), None) if number < min => Err(format!("must be at least {min}")),
            (None, Some(max)) if number > max => Err(format!("must be at most {max}")),
            _ => Ok(()),
        }
    }
}

/// Why a relative path is refused: the connector resolves it against its own working folder
/// (a service's is `/` or its data folder), never the folder the owner had in mind.
const RELATIVE_PATH: &str = "must be a full path from the root, such as /srv/data/plant.csv or C:\\data\\plant.csv: the connector runs in a folder of its own, so a relative path would point somewhere else";

/// Whether `text` is empty or a full path on this platform or a Windows one (`C:\…`, `\\server\…`),
/// so a form filled in for another machine's connector is judged the same way.
fn is_full_path(text: &str) -> bool {
    let text = text.trim();
    let bytes = text.as_bytes();
    let windows_drive = bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes[2] == b'\\' || bytes[2] == b'/');
    text.is_empty()
        || std::path::Path::new(text).is_absolute()
        || text.starts_with('/')
        || text.starts_with("\\\\")
        || windows_drive
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl FormSchema {
    /// Validates submitted settings: every field checked and converted, defaults filled in,
    /// unknown fields refused. All problems are reported at once.
    ///
    /// ```
    /// use serde_json::json;
    /// use uplink_source::form::{FieldSchema, FieldType, FormSchema};
    ///
    /// let schema = FormSchema {
    ///     kind: "example".into(),
    ///     title: "Example".into(),
    ///     description: "A source with two numbers".into(),
    ///     fields: vec![
    ///         FieldSchema::new("seed", "Seed", FieldType::Integer, false, "Random seed"),
    ///         FieldSchema::new("amplitude", "Amplitude", FieldType::Number, true, "Peak value"),
    ///     ],
    /// };
    /// let settings = json!({"seed": "7", "amplitude": "big"});
    /// let errors = schema.validate(settings.as_object().unwrap()).unwrap_err();
    /// assert_eq!(errors[0].field, "amplitude");
    /// ```
    pub fn validate(
        &self,
        submitted: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut valid = Map::new();
        for key in submitted.keys() {
            if !self.fields.iter().any(|f| f.name == *key) {
                errors.push(FieldError::new(
                    key.as_str(),
                    format!("is not a field of a {} data source", self.kind),
                ));
            }
        }
        for field in &self.fields {
            let given = submitted.get(&field.name).filter(|v| !v.is_null());
            match given.or(field.default.as_ref()) {
                Some(value) => match field.check(value) {
                    Ok(value) => {
                        valid.insert(field.name.clone(), value);
                    }
                    Err(message) => errors.push(FieldError::new(field.name.as_str(), message)),
                },
                None if field.required => {
                    errors.push(FieldError::new(field.name.as_str(), "is required"))
                }
                None => {}
            }
        }
        if errors.is_empty() {
            Ok(valid)
        } else {
            Err(errors)
        }
    }

    /// The names of the secret fields.
    pub fn secret_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(|f| f.secret)
            .map(|f| f.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> FormSchema {
        FormSchema {
            kind: "test".into(),
            title: "Test".into(),
            description: String::new(),
            fields: vec![
                FieldSchema::new("path", "Path", FieldType::Path, true, "A file."),
                FieldSchema::new("count", "Count", FieldType::Integer, false, "")
                    .default_value(10)
                    .range(1.0, 100.0),
                FieldSchema::new("ratio", "Ratio", FieldType::Number, false, ""),
                FieldSchema::new("on", "On", FieldType::Boolean, false, "").default_value(false),
                FieldSchema::new("mode", "Mode", FieldType::Select, false, "")
                    .options(&["a", "b"])
                    .default_value("a"),
                FieldSchema::new("every", "Every", FieldType::Duration, false, "")
                    .default_value("1s"),
                FieldSchema::new("password", "Password", FieldType::Text, false, "").secret(),
            ],
        }
    }

    fn validate(value: Value) -> Result<Map<String, Value>, Vec<FieldError>> {
        schema().validate(value.as_object().unwrap())
    }

    #[test]
    fn a_relative_path_is_refused_with_the_reason() {
        for relative in ["plant.csv", "./data", "data/plant.csv", "~/plant.csv"] {
            let errors = validate(json!({ "path": relative })).unwrap_err();
            assert_eq!(errors[0].field, "path", "{relative}");
            assert!(errors[0].message.contains("full path"), "{relative}");
            assert!(
                errors[0].message.contains("relative path would point"),
                "{relative}"
            );
        }
        for full in [
            "/srv/data/plant.csv",
            "C:\\data\\plant.csv",
            "D:/data",
            "\\\\server\\share",
        ] {
            assert!(validate(json!({ "path": full })).is_ok(), "{full}");
        }
    }

    #[test]
    fn defaults_fill_in_and_form_text_is_converted() {
        let valid =
            validate(json!({"path": "/x", "count": "5", "ratio": "0.5", "on": "TRUE"})).unwrap();
        assert_eq!(valid["count"], 5);
        assert_eq!(valid["ratio"], 0.5);
        assert_eq!(valid["on"], true);
        assert_eq!(valid["mode"], "a");
        assert_eq!(valid["every"], "1s");
        assert!(!valid.contains_key("password"));
    }

    #[test]
    fn every_bad_field_is_reported_by_name() {
        let errors = validate(json!({
            "count": 0, "ratio": "x", "on": "maybe", "mode": "c", "every": "0s", "colour": "red"
        }))
        .unwrap_err();
        let by_field = |name: &str| {
            errors
                .iter()
                .find(|e| e.field == name)
                .unwrap_or_else(|| panic!("no error for {name}: {errors:?}"))
                .message
                .clone()
        };
        assert_eq!(by_field("path"), "is required");
        assert_eq!(by_field("count"), "must be between 1 and 100");
        assert_eq!(by_field("ratio"), "must be a number");
        assert_eq!(by_field("on"), "must be true or false");
        assert_eq!(by_field("mode"), "must be one of a, b");
        assert_eq!(by_field("every"), "must be longer than zero");
        assert!(by_field("colour").contains("is not a field"));
        let errors = validate(json!({"path": "  ", "every": "1x"})).unwrap_err();
        assert_eq!(errors[0].message, "must not be empty");
        assert!(errors[1].message.contains("unknown unit 'x'"), "{errors:?}");
    }

    #[test]
    fn a_lines_field_keeps_its_lines_and_its_length_limit() {
        let mut table = FieldSchema::new("map", "Map", FieldType::Lines, true, "");
        table.constraints.max_length = Some(10);
        let schema = FormSchema {
            kind: "test".into(),
            title: "Test".into(),
            description: String::new(),
            fields: vec![table],
        };
        let valid = schema
            .validate(json!({"map": "a,b\n1,2\n"}).as_object().unwrap())
            .unwrap();
        assert_eq!(valid["map"], "a,b\n1,2\n");
        let errors = schema
            .validate(json!({"map": "a,b\n1,2\n3,4\n"}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(errors[0].message, "must be at most 10 characters");
        let list = schema
            .validate(json!({"map": ["a,b", "1,2"]}).as_object().unwrap())
            .unwrap();
        assert_eq!(
            list["map"], "a,b\n1,2",
            "a list of lines from a settings file"
        );
        let errors = schema
            .validate(json!({"map": ["a", 1.5, {}]}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(errors[0].message, "must be text");
        assert_eq!(serde_json::to_value(FieldType::Lines).unwrap(), "lines");
    }

    #[test]
    fn secret_fields_are_marked_in_the_wire_form() {
        let json = serde_json::to_value(schema()).unwrap();
        assert_eq!(json["fields"][6]["secret"], true);
        assert_eq!(json["fields"][1]["type"], "integer");
        assert_eq!(json["fields"][1]["constraints"]["max"], 100.0);
        assert_eq!(schema().secret_fields().collect::<Vec<_>>(), ["password"]);
    }
}
