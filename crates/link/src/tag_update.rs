//! [`TagUpdate`]'s wire form by hand: one map of known length, read field by field.
//!
//! A live update carries up to a thousand of them; `#[serde(flatten)]` made every serializer
//! buffer each map of unknown length and every deserializer copy each field aside (its key
//! and text included) before reading it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeStruct as _, Serializer};
use serde::{Deserialize, Serialize};
use uplink_model::{Status, TagValue, rfc3339};

use crate::TagUpdate;

impl Serialize for TagUpdate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = &self.value;
        let len = 3
            + usize::from(v.value.is_some())
            + usize::from(v.text.is_some())
            + usize::from(v.units.is_some())
            + usize::from(v.source_status_code.is_some());
        let mut map = serializer.serialize_struct("TagUpdate", len)?;
        map.serialize_field("tag", &self.tag)?;
        map.serialize_field("time", &rfc3339::Wire(&v.time))?;
        if let Some(value) = &v.value {
            map.serialize_field("value", value)?;
        }
        if let Some(text) = &v.text {
            map.serialize_field("text", text)?;
        }
        map.serialize_field("status", &v.status)?;
        if let Some(units) = &v.units {
            map.serialize_field("units", units)?;
        }
        if let Some(code) = &v.source_status_code {
            map.serialize_field("sourceStatusCode", code)?;
        }
        map.end()
    }
}

/// The fields of a [`TagUpdate`]'s map.
enum Field {
    Tag,
    Time,
    Value,
    Text,
    Status,
    Units,
    SourceStatusCode,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "tag" => Field::Tag,
                    "time" => Field::Time,
                    "value" => Field::Value,
                    "text" => Field::Text,
                    "status" => Field::Status,
                    "units" => Field::Units,
                    "sourceStatusCode" => Field::SourceStatusCode,
                    _ => Field::Other,
                })
            }

            fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Field, E> {
                Ok(std::str::from_utf8(name).map_or(Field::Other, |name| {
                    self.visit_str::<E>(name).unwrap_or(Field::Other)
                }))
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// A time read in the wire form.
#[derive(Deserialize)]
#[serde(transparent)]
struct Time(#[serde(with = "rfc3339")] DateTime<Utc>);

impl<'de> Deserialize<'de> for TagUpdate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = TagUpdate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tag's value: a map with tag, time, value, text, status, units")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagUpdate, A::Error> {
                fn once<T, E: de::Error>(
                    slot: &mut Option<T>,
                    name: &'static str,
                    value: T,
                ) -> Result<(), E> {
                    if slot.replace(value).is_some() {
                        return Err(E::duplicate_field(name));
                    }
                    Ok(())
                }
                let mut tag = None;
                let mut time = None;
                let mut value = None;
                let mut text = None;
                let mut status = None;
                let mut units = None;
                let mut code = None;
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Tag => {
                            once::<_, A::Error>(&mut tag, "tag", map.next_value::<String>()?)?
                        }
                        Field::Time => {
                            once::<_, A::Error>(&mut time, "time", map.next_value::<Time>()?.0)?
                        }
                        Field::Value => {
                            once::<_, A::Error>(
                                &mut value,
                                "value",
                                map.next_value::<Option<f64>>()?,
                            )?;
                        }
                        Field::Text => {
                            once::<_, A::Error>(
                                &mut text,
                                "text",
                                map.next_value::<Option<String>>()?,
                            )?;
                        }
                        Field::Status => {
                            once::<_, A::Error>(&mut status, "status", map.next_value::<Status>()?)?
                        }
                        Field::Units => {
                            once::<_, A::Error>(
                                &mut units,
                                "units",
                                map.next_value::<Option<String>>()?,
                            )?;
                        }
                        Field::SourceStatusCode => once::<_, A::Error>(
                            &mut code,
                            "sourceStatusCode",
                            map.next_value::<Option<u32>>()?,
                        )?,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TagUpdate {
                    tag: tag.ok_or_else(|| <A::Error as de::Error>::missing_field("tag"))?,
                    value: TagValue {
                        time: time.ok_or_else(|| <A::Error as de::Error>::missing_field("time"))?,
                        value: value.flatten(),
                        text: text.flatten(),
                        status: status.unwrap_or_default(),
                        units: units.flatten(),
                        source_status_code: code.flatten(),
                    },
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    /// The derived form this replaces: the wire must not change.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Flattened {
        tag: String,
        #[serde(flatten)]
        value: TagValue,
    }

    fn updates() -> Vec<TagUpdate> {
        let time = Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap()
            + chrono::TimeDelta::milliseconds(123);
        vec![
            TagUpdate {
                tag: "sim.ramp.1".into(),
                value: TagValue::number(time, 4.5),
            },
            TagUpdate {
                tag: "Valve".into(),
                value: TagValue {
                    time,
                    value: Some(1.0),
                    text: Some("Open".into()),
                    status: Status::Uncertain,
                    units: Some("bar".into()),
                    source_status_code: Some(0x408F_0000),
                },
            },
            TagUpdate {
                tag: "gone".into(),
                value: TagValue::event(time, Status::Bad),
            },
        ]
    }

    fn flattened(update: &TagUpdate) -> Flattened {
        Flattened {
            tag: update.tag.clone(),
            value: update.value.clone(),
        }
    }

    #[test]
    fn the_wire_form_is_the_flattened_one_in_json_and_messagepack() {
        for update in updates() {
            let old = flattened(&update);
            assert_eq!(
                serde_json::to_string(&update).unwrap(),
                serde_json::to_string(&old).unwrap()
            );
            let json = serde_json::to_string(&old).unwrap();
            assert_eq!(serde_json::from_str::<TagUpdate>(&json).unwrap(), update);
            let packed = rmp_serde::to_vec_named(&update).unwrap();
            assert_eq!(packed, rmp_serde::to_vec_named(&old).unwrap());
            assert_eq!(rmp_serde::from_slice::<TagUpdate>(&packed).unwrap(), update);
            assert_eq!(rmp_serde::from_slice::<Flattened>(&packed).unwrap(), old);
        }
    }

    #[test]
    fn unknown_fields_are_skipped_defaults_filled_and_mistakes_named() {
        let read = |json: &str| serde_json::from_str::<TagUpdate>(json).map_err(|e| e.to_string());
        let update = read(
            r#"{"future":[1,{"a":2}],"time":"2026-01-01T00:00:00+01:00","tag":"A","value":null,"status":64}"#,
        )
        .unwrap();
        assert_eq!(update.tag, "A");
        assert_eq!(update.value.value, None);
        assert_eq!(update.value.status, Status::Uncertain);
        assert_eq!(
            update.value.time,
            Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()
        );
        let good = read(r#"{"tag":"A","time":"2026-01-01T00:00:00Z","value":3}"#).unwrap();
        assert_eq!(
            (good.value.value, good.value.status),
            (Some(3.0), Status::Good)
        );
        for (json, says) in [
            (r#"{"time":"2026-01-01T00:00:00Z"}"#, "missing field `tag`"),
            (r#"{"tag":"A"}"#, "missing field `time`"),
            (
                r#"{"tag":"A","tag":"B","time":"2026-01-01T00:00:00Z"}"#,
                "duplicate field `tag`",
            ),
            (
                r#"{"tag":"A","time":"soon"}"#,
                "'soon' is not an RFC 3339 time",
            ),
            (
                r#"{"tag":"A","time":"2026-01-01T00:00:00Z","status":"fine"}"#,
                "'fine'",
            ),
            (r#"["A","2026-01-01T00:00:00Z"]"#, "invalid type"),
        ] {
            let error = read(json).unwrap_err();
            assert!(error.contains(says), "{json}: {error}");
        }
    }
}
