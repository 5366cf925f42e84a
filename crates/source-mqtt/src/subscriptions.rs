//! The subscriptions field: one subscription per line, in a small grammar.
//!
//! ```text
//! FILTER RULE [OPTION=VALUE]...
//! ```
//!
//! - `FILTER` is an MQTT topic filter (`plant/+/temp`, `site/#`), without spaces.
//! - `RULE` says how a payload reads: `plain` (a number, `true`/`false`, or else text), `json`
//!   (a value picked out of a JSON document), `sparkplug` (Sparkplug B) or `event` (each message
//!   an alarm or event, a JSON object; see [`crate::events`]).
//! - Options:
//!   - `name=TEMPLATE`: the tag name (plain and json), from `{topic}` (the whole topic) and
//!     `{1}`, `{2}`… (the topic's levels, from 1) and literal text; `{topic}` when left out.
//!   - `value=PATH` (json, required), `time=PATH`, `quality=PATH` (json): where the value, its
//!     time and its quality are in the document. A path is `$` followed by `.key` and `[index]`
//!     steps, such as `$.v` or `$.data[0].value`.
//!   - `message=PATH`, `priority=PATH`, `time=PATH`, `category=PATH`, `type=PATH` (event): where
//!     the event's fields are (`$.message`, `$.priority`, `$.time`, `$.category`, `$.type` when
//!     left out); the object's other top-level fields become the event's properties.
//!   - `unit=ms|s|us` (json and event): the unit of a numeric time (milliseconds since the Unix epoch when
//!     left out); a text time is RFC 3339.
//!   - `qos=0|1|2`: the quality of service asked of the broker (1 when left out).
//!   - `command=TEMPLATE` (plain and json): the topic a write to one of the line's tags is
//!     published to, with the same placeholders as `name` (`{topic}/set`, `cmd/{2}`). Without it
//!     the line's tags cannot be written. Sparkplug tags are written with NCMD/DCMD.
//!
//! Blank lines are ignored. When a topic matches several lines, the first one wins.

use std::fmt;

use rumqttc::QoS;
use serde_json::Value;
use uplink_source::form::FieldError;

use crate::events::EventRule;

/// The form field the subscriptions are entered in.
pub const FIELD: &str = "subscriptions";

/// How a subscription's payloads read.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// UTF-8 text: a number, `true`/`false` (1/0), or else text.
    Plain,
    /// A JSON document with the value at a path.
    Json {
        /// Where the value is.
        value: JsonPath,
        /// Where the time is, if the document has it.
        time: Option<JsonPath>,
        /// Where the quality is, if the document has it.
        quality: Option<JsonPath>,
        /// Microseconds per unit of a numeric time.
        time_unit_us: i64,
    },
    /// Sparkplug B payloads on `spBv1.0/...` topics.
    Sparkplug,
    /// Alarms and events: each payload a JSON object mapped to one event.
    Event(EventRule),
}

/// One subscription line.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The line number in the field, from 1.
    pub line: usize,
    /// The topic filter.
    pub filter: String,
    /// How payloads read.
    pub rule: Rule,
    /// The tag name template (plain and json).
    pub name: Template,
    /// The quality of service asked for.
    pub qos: QoS,
    /// Where writes go (plain and json).
    pub command: Option<Template>,
    /// The filter's levels, for matching.
    levels: Vec<String>,
}

impl Subscription {
    /// Whether `topic` matches this subscription's filter.
    pub fn matches(&self, topic: &str) -> bool {
        matches(&self.levels, topic)
    }
}

/// Whether `topic` matches a filter split into levels (`+` one level, `#` the rest). Topics
/// starting with `$` match no filter starting with a wildcard, as MQTT says.
fn matches(filter: &[String], topic: &str) -> bool {
    if topic.starts_with('$') && filter.first().is_some_and(|f| f == "+" || f == "#") {
        return false;
    }
    let mut levels = topic.split('/');
    for part in filter {
        if part == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if part == "+" || part == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// A tag-name or command-topic template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Topic,
    Level(usize),
}

impl Template {
    /// `{topic}`.
    pub fn topic() -> Self {
        Self {
            parts: vec![Part::Topic],
        }
    }

    fn parse(text: &str, filter_levels: &[String]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("'{text}' has a '{{' without its '}}'"))?
                + open;
            let inside = &rest[open + 1..close];
            if inside == "topic" {
                parts.push(Part::Topic);
            } else {
                let level: usize = inside.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                    format!(
                        "'{{{inside}}}' in '{text}' is not {{topic}} or a topic level such as {{1}}"
                    )
                })?;
                let open_ended = filter_levels.last().is_some_and(|l| l == "#");
                if !open_ended && level > filter_levels.len() {
                    return Err(format!(
                        "'{{{level}}}' in '{text}': the filter has only {} levels",
                        filter_levels.len()
                    ));
                }
                parts.push(Part::Level(level));
            }
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("'{text}' has a '}}' without its '{{'"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err("is empty".into());
        }
        Ok(Self { parts })
    }

    /// The template filled in from `topic`; `None` when the topic lacks a level it names.
    pub fn render(&self, topic: &str) -> Option<String> {
        if let [Part::Topic] = self.parts.as_slice() {
            return Some(topic.to_owned());
        }
        let mut out = String::with_capacity(topic.len() + 8);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Topic => out.push_str(topic),
                Part::Level(n) => out.push_str(topic.split('/').nth(n - 1)?),
            }
        }
        Some(out)
    }

    /// Whether the template names the same thing for every topic (no placeholder).
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

/// A path into a JSON document: `$` then `.key` and `[index]` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("'{text}' is not a JSON path ({why}); write it as $.key or $.list[0].key")
        };
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("it must start with $"))?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return Err(bad("a '.' needs a key after it"));
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| bad("a '[' needs its ']'"))?;
                let index = after[..end]
                    .parse()
                    .map_err(|_| bad("an index is a whole number"))?;
                steps.push(Step::Index(index));
                rest = &after[end + 1..];
            } else {
                return Err(bad("steps start with '.' or '['"));
            }
        }
        Ok(Self { steps })
    }

    /// The value at this path, if the document has one.
    pub fn get<'a>(&self, document: &'a Value) -> Option<&'a Value> {
        self.steps.iter().try_fold(document, |at, step| match step {
            Step::Key(key) => at.get(key),
            Step::Index(index) => at.get(index),
        })
    }

    /// The path's first key, if it starts with one (the top-level field it reads).
    pub fn first_key(&self) -> Option<&str> {
        match self.steps.first()? {
            Step::Key(key) => Some(key),
            Step::Index(_) => None,
        }
    }

    /// A document holding `value` at this path (objects along its keys), or `None` when the
    /// path has an index (there is no telling what else the list holds).
    pub fn build(&self, value: Value) -> Option<Value> {
        self.steps
            .iter()
            .rev()
            .try_fold(value, |inner, step| match step {
                Step::Key(key) => {
                    let mut object = serde_json::Map::new();
                    object.insert(key.clone(), inner);
                    Some(Value::Object(object))
                }
                Step::Index(_) => None,
            })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for step in &self.steps {
            match step {
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// The most subscription lines one source takes.
pub const MAX_LINES: usize = 1_000;

/// Reads the subscriptions field; every bad line is its own field error naming the line.
///
/// # Errors
/// One [`FieldError`] on `subscriptions` per bad line, or one when there is no line at all.
pub fn parse(text: &str) -> Result<Vec<Subscription>, Vec<FieldError>> {
    let mut subscriptions = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(i + 1, line) {
            Ok(sub) => subscriptions.push(sub),
            Err(message) => {
                errors.push(FieldError::new(FIELD, format!("line {}: {message}", i + 1)))
            }
        }
    }
    if errors.is_empty() && subscriptions.is_empty() {
        errors.push(FieldError::new(
            FIELD,
            "has no subscription: add a line such as `plant/+/temp plain` or `spBv1.0/# sparkplug`",
        ));
    }
    if subscriptions.len() > MAX_LINES {
        errors.push(FieldError::new(
            FIELD,
            format!(
                "has {} lines; at most {MAX_LINES} are taken",
                subscriptions.len()
            ),
        ));
    }
    if errors.is_empty() {
        Ok(subscriptions)
    } else {
        Err(errors)
    }
}

fn check_filter(filter: &str) -> Result<Vec<String>, String> {
    if filter.len() > 65_535 {
        return Err("the topic filter is longer than MQTT allows".into());
    }
    let levels: Vec<String> = filter.split('/').map(str::to_owned).collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (level != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "'{filter}' is not a topic filter: '#' must be a whole level and the last one"
            ));
        }
        if level.contains('+') && level != "+" {
            return Err(format!(
                "'{filter}' is not a topic filter: '+' must be a whole level"
            ));
        }
    }
    Ok(levels)
}

fn parse_line(line: usize, text: &str) -> Result<Subscription, String> {
    let mut words = text.split_whitespace();
    let filter = words.next().unwrap_or_default();
    let levels = check_filter(filter)?;
    let rule_word = words.next().ok_or_else(|| {
        format!("'{filter}' needs a payload rule after it: plain, json, sparkplug or event")
    })?;
    let (mut name, mut value, mut time, mut quality, mut unit, mut qos, mut command) =
        (None, None, None, None, None, None, None);
    let (mut message, mut priority, mut category, mut event_type) = (None, None, None, None);
    for word in words {
        let (key, val) = word
            .split_once('=')
            .ok_or_else(|| format!("'{word}' is not an option: write option=value"))?;
        let slot = match key {
            "name" => &mut name,
            "value" => &mut value,
            "time" => &mut time,
            "quality" => &mut quality,
            "unit" => &mut unit,
            "qos" => &mut qos,
            "command" => &mut command,
            "message" => &mut message,
            "priority" => &mut priority,
            "category" => &mut category,
            "type" => &mut event_type,
            other => {
                return Err(format!(
                    "'{other}' is not an option (name, value, time, quality, unit, qos, command, message, priority, category, type)"
                ));
            }
        };
        if slot.replace(val).is_some() {
            return Err(format!("'{key}' is given twice"));
        }
        if val.is_empty() {
            return Err(format!("'{key}=' needs a value"));
        }
    }
    let json_only = |what: Option<&str>, key: &str| match what {
        Some(_) => Err(format!("'{key}=' applies to the json rule only")),
        None => Ok(()),
    };
    let time_unit_us = match unit.unwrap_or("ms") {
        "ms" => 1_000,
        "s" => 1_000_000,
        "us" => 1,
        other => return Err(format!("unit={other}: the time unit is ms, s or us")),
    };
    if rule_word != "event" {
        for (given, key) in [
            (message, "message"),
            (priority, "priority"),
            (category, "category"),
            (event_type, "type"),
        ] {
            if given.is_some() {
                return Err(format!("'{key}=' applies to the event rule only"));
            }
        }
    }
    let path_or = |given: Option<&str>, default: &str| JsonPath::parse(given.unwrap_or(default));
    let rule = match rule_word {
        "plain" => {
            json_only(value, "value")?;
            json_only(quality, "quality")?;
            for (given, key) in [(time, "time"), (unit, "unit")] {
                if given.is_some() {
                    return Err(format!("'{key}=' applies to the json and event rules only"));
                }
            }
            Rule::Plain
        }
        "json" => Rule::Json {
            value: JsonPath::parse(
                value.ok_or("the json rule needs value=PATH, such as value=$.v")?,
            )?,
            time: time.map(JsonPath::parse).transpose()?,
            quality: quality.map(JsonPath::parse).transpose()?,
            time_unit_us,
        },
        "event" => {
            for (given, key) in [
                (name, "name"),
                (value, "value"),
                (quality, "quality"),
                (command, "command"),
            ] {
                if given.is_some() {
                    return Err(format!(
                        "'{key}=' does not apply to the event rule: its fields are message, priority, time, category and type"
                    ));
                }
            }
            Rule::Event(EventRule {
                message: path_or(message, "$.message")?,
                priority: path_or(priority, "$.priority")?,
                time: path_or(time, "$.time")?,
                category: path_or(category, "$.category")?,
                event_type: path_or(event_type, "$.type")?,
                time_unit_us,
            })
        }
        "sparkplug" => {
            for (given, key) in [
                (name, "name"),
                (value, "value"),
                (time, "time"),
                (quality, "quality"),
                (unit, "unit"),
                (command, "command"),
            ] {
                if given.is_some() {
                    return Err(format!(
                        "'{key}=' does not apply to sparkplug: names come from the metrics (group/edge-node/device/metric) and writes go out as NCMD/DCMD"
                    ));
                }
            }
            if !matches!(levels[0].as_str(), "spBv1.0" | "+" | "#") {
                return Err(format!(
                    "'{filter}' cannot match Sparkplug B topics, which start with spBv1.0/"
                ));
            }
            Rule::Sparkplug
        }
        other => {
            return Err(format!(
                "'{other}' is not a payload rule: plain, json, sparkplug or event"
            ));
        }
    };
    let name = match name {
        Some(text) => Template::parse(text, &levels).map_err(|e| format!("name={text}: {e}"))?,
        None => Template::topic(),
    };
    let command = command
        .map(|text| Template::parse(text, &levels).map_err(|e| format!("command={text}: {e}")))
        .transpose()?;
    if let Some(command) = &command
        && command
            .parts
            .iter()
            .any(|p| matches!(p, Part::Text(t) if t.contains(['+', '#'])))
    {
        return Err("command= must name a topic, without wildcards".into());
    }
    let qos = match qos.unwrap_or("1") {
        "0" => QoS::AtMostOnce,
        "1" => QoS::AtLeastOnce,
        "2" => QoS::ExactlyOnce,
        other => return Err(format!("qos={other}: the quality of service is 0, 1 or 2")),
    };
    Ok(Subscription {
        line,
        filter: filter.to_owned(),
        rule,
        name,
        qos,
        command,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_json_line_reads_with_every_option() {
        let subs = parse("plant/+/temp json value=$.v time=$.ts quality=$.q unit=s name={2}.temp qos=0 command={topic}/set\n\n").unwrap();
        assert_eq!(subs.len(), 1);
        let sub = &subs[0];
        assert_eq!(sub.filter, "plant/+/temp");
        assert_eq!(sub.qos, QoS::AtMostOnce);
        assert_eq!(sub.name.render("plant/boiler/temp").unwrap(), "boiler.temp");
        assert_eq!(
            sub.command
                .as_ref()
                .unwrap()
                .render("plant/boiler/temp")
                .unwrap(),
            "plant/boiler/temp/set"
        );
        let Rule::Json {
            value,
            time,
            time_unit_us,
            ..
        } = &sub.rule
        else {
            panic!("{:?}", sub.rule)
        };
        assert_eq!(*time_unit_us, 1_000_000);
        assert_eq!(value.get(&json!({"v": 3.5})), Some(&json!(3.5)));
        assert_eq!(time.as_ref().unwrap().to_string(), "$.ts");
        assert!(sub.matches("plant/boiler/temp"));
        assert!(!sub.matches("plant/boiler/temp/x"));
        assert!(!sub.matches("plant/temp"));
    }

    #[test]
    fn paths_walk_lists_and_build_documents() {
        let path = JsonPath::parse("$.data[1].value").unwrap();
        assert_eq!(
            path.get(&json!({"data": [{}, {"value": 2}]})),
            Some(&json!(2))
        );
        assert_eq!(path.build(json!(1)), None);
        let path = JsonPath::parse("$.a.b").unwrap();
        assert_eq!(path.build(json!(1)), Some(json!({"a": {"b": 1}})));
    }

    #[test]
    fn wildcards_match_as_mqtt_says() {
        let subs = parse("a/# plain\n# plain\n+/b plain").unwrap();
        assert!(subs[0].matches("a"));
        assert!(subs[0].matches("a/b/c"));
        assert!(subs[1].matches("x/y"));
        assert!(!subs[1].matches("$SYS/broker"));
        assert!(subs[2].matches("x/b"));
        assert!(!subs[2].matches("x/b/c"));
    }

    #[test]
    fn each_bad_line_is_an_error_naming_its_line() {
        let text = "a/b plain\n\
                    a/#/b plain\n\
                    a/b json\n\
                    a/b plain value=$.v\n\
                    a/b xml\n\
                    a/+ json value=v\n\
                    a/+ plain name={3}\n\
                    spBv1.0/# sparkplug name={topic}\n\
                    plant/# sparkplug\n\
                    a/b plain qos=3\n\
                    a/b\n\
                    a/b plain colour=red\n\
                    a/b plain name={topic";
        let errors = parse(text).unwrap_err();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors.len(), 12, "{messages:#?}");
        assert!(errors.iter().all(|e| e.field == FIELD));
        for (line, fragment) in [
            (2, "'#' must be a whole level and the last"),
            (3, "needs value=PATH"),
            (4, "applies to the json rule only"),
            (5, "'xml' is not a payload rule"),
            (6, "must start with $"),
            (7, "the filter has only 2 levels"),
            (8, "does not apply to sparkplug"),
            (9, "cannot match Sparkplug B topics"),
            (10, "qos=3"),
            (11, "needs a payload rule"),
            (12, "'colour' is not an option"),
            (13, "without its '}'"),
        ] {
            let prefix = format!("line {line}: ");
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with(&prefix) && m.contains(fragment)),
                "no error for line {line} with '{fragment}': {messages:#?}"
            );
        }
        assert!(
            parse(" \n").unwrap_err()[0]
                .message
                .contains("no subscription")
        );
    }

    #[test]
    fn event_lines_read_their_paths_and_each_bad_one_is_named() {
        let subs =
            parse("plant/+/alarms event\na/# event message=$.text priority=$.sev unit=s").unwrap();
        let Rule::Event(rule) = &subs[0].rule else {
            panic!("{:?}", subs[0].rule)
        };
        assert_eq!(rule.message.to_string(), "$.message");
        assert_eq!(rule.event_type.to_string(), "$.type");
        assert!(subs[0].matches("plant/boiler/alarms"));
        let Rule::Event(rule) = &subs[1].rule else {
            panic!("{:?}", subs[1].rule)
        };
        assert_eq!(rule.priority.to_string(), "$.sev");
        assert_eq!(rule.time_unit_us, 1_000_000);
        let text = "a/b event value=$.v\n\
                    a/b event message=text\n\
                    a/b json value=$.v priority=$.p\n\
                    a/b event unit=h\n\
                    a/b event command=x/set\n\
                    a/b event type=$.t type=$.u\n\
                    a/b plain time=$.t";
        let errors = parse(text).unwrap_err();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors.len(), 7, "{messages:#?}");
        for (line, fragment) in [
            (1, "'value=' does not apply to the event rule"),
            (2, "'text' is not a JSON path"),
            (3, "'priority=' applies to the event rule only"),
            (4, "unit=h"),
            (5, "'command=' does not apply to the event rule"),
            (6, "'type' is given twice"),
            (7, "'time=' applies to the json and event rules only"),
        ] {
            let prefix = format!("line {line}: ");
            assert!(
                messages
                    .iter()
                    .any(|m| m.starts_with(&prefix) && m.contains(fragment)),
                "no error for line {line} with '{fragment}': {messages:#?}"
            );
        }
    }
}
