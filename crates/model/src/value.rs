//! Values: the wire form ([`TagValue`]) and the compact form aggregation works on ([`Sample`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Status;
use crate::time_expr::{from_micros, to_micros};

/// One value of a tag at a moment, as apps receive it.
///
/// A value carries a number, a text, or both (a digital state has both: `1` and `"Open"`);
/// a value with neither is a status event such as "no data" and is usually [`Status::Bad`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use uplink_model::{Status, TagValue};
///
/// let v = TagValue::number(Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap(), 4.2);
/// let json = serde_json::to_string(&v).unwrap();
/// assert_eq!(json, r#"{"time":"2024-05-01T08:00:00Z","value":4.2,"status":"good"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagValue {
    /// When the value was sampled, UTC.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
    /// The numeric value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The text value (or digital state name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// How far the value can be trusted.
    #[serde(default)]
    pub status: Status,
    /// Engineering units, when they differ from the tag's or the tag is not at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// The data source's own status code behind `status`, when it has one other than plain
    /// good (an OPC UA StatusCode such as `0x808F0000`, BadSensorFailure). Only present when
    /// the source gave one; `status` is what to act on, this is for people and tools that know
    /// the source's codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_status_code: Option<u32>,
}

impl TagValue {
    /// A good numeric value.
    pub fn number(time: DateTime<Utc>, value: f64) -> Self {
        Self {
            time,
            value: Some(value),
            text: None,
            status: Status::Good,
            units: None,
            source_status_code: None,
        }
    }

    /// A good text value.
    pub fn text(time: DateTime<Utc>, text: impl Into<String>) -> Self {
        Self {
            time,
            value: None,
            text: Some(text.into()),
            status: Status::Good,
            units: None,
            source_status_code: None,
        }
    }

    /// A value-less event with the given status (for example "no data": [`Status::Bad`]).
    pub fn event(time: DateTime<Utc>, status: Status) -> Self {
        Self {
            time,
            value: None,
            text: None,
            status,
            units: None,
            source_status_code: None,
        }
    }

    /// The same value with a different status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// The same value with the source's own status code attached.
    pub fn with_source_status_code(mut self, code: u32) -> Self {
        self.source_status_code = Some(code);
        self
    }

    /// The same value with units attached.
    pub fn with_units(mut self, units: impl Into<String>) -> Self {
        self.units = Some(units.into());
        self
    }

    /// The compact form for aggregation; a value without a number becomes a bad sample.
    pub fn to_sample(&self) -> Sample {
        match self.value {
            Some(value) if value.is_finite() => Sample {
                time_us: to_micros(self.time),
                value,
                status: self.status,
                source_code: self.source_status_code.unwrap_or(0),
            },
            _ => Sample::bad(to_micros(self.time)),
        }
    }
}

impl From<Sample> for TagValue {
    /// A non-finite value (how aggregation marks "no value") becomes a value-less event.
    fn from(sample: Sample) -> Self {
        TagValue {
            time: sample.time(),
            value: sample.value.is_finite().then_some(sample.value),
            text: None,
            status: sample.status,
            units: None,
            source_status_code: (sample.source_code != 0).then_some(sample.source_code),
        }
    }
}

/// A numeric value at a moment in its compact form: what aggregation and data sources move in
/// bulk (24 bytes; millions fit in memory).
///
/// `value` is NaN when there is no number (a bad sample or an empty interval's result).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    /// The value; NaN for "no value".
    pub value: f64,
    /// How far the value can be trusted.
    pub status: Status,
    /// The source's own status code beside `status` (an OPC UA server's StatusCode), `0` when
    /// the source has none or it is plain good; what [`TagValue::source_status_code`] carries.
    /// Aggregates computed by Uplink have none.
    pub source_code: u32,
}

impl Sample {
    /// A good sample.
    pub const fn good(time_us: i64, value: f64) -> Self {
        Self {
            time_us,
            value,
            status: Status::Good,
            source_code: 0,
        }
    }

    /// A bad sample with no value.
    pub const fn bad(time_us: i64) -> Self {
        Self {
            time_us,
            value: f64::NAN,
            status: Status::Bad,
            source_code: 0,
        }
    }

    /// The sample time as a date.
    pub fn time(&self) -> DateTime<Utc> {
        from_micros(self.time_us)
    }

    /// True when the value may enter an aggregate: not bad, and a finite number.
    #[inline]
    pub fn is_usable(&self) -> bool {
        self.status != Status::Bad && self.value.is_finite()
    }
}

/// Sample times on the wire: RFC 3339 in UTC with `Z`, as many fraction digits as needed.
pub(crate) mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| {
                serde::de::Error::custom(format!("'{text}' is not an RFC 3339 time: {err}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sample_stays_compact() {
        assert_eq!(std::mem::size_of::<Sample>(), 24);
    }

    #[test]
    fn value_round_trips_through_json_with_all_fields() {
        let time = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
            + chrono::TimeDelta::microseconds(1_500);
        let v = TagValue {
            time,
            value: Some(1.0),
            text: Some("Open".into()),
            status: Status::Uncertain,
            units: Some("bar".into()),
            source_status_code: Some(0x408F_0000),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2024-05-01T08:00:00.001500Z","value":1.0,"text":"Open","status":"uncertain","units":"bar","sourceStatusCode":1083113472}"#
        );
        assert_eq!(serde_json::from_str::<TagValue>(&json).unwrap(), v);
    }

    #[test]
    fn bad_time_on_the_wire_is_named() {
        let err = serde_json::from_str::<TagValue>(r#"{"time":"yesterday","status":"good"}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("'yesterday' is not an RFC 3339 time"),
            "{err}"
        );
    }

    #[test]
    fn valueless_and_non_finite_values_become_bad_samples() {
        let time = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
        assert!(!TagValue::text(time, "x").to_sample().is_usable());
        assert!(
            !TagValue::number(time, f64::INFINITY)
                .to_sample()
                .is_usable()
        );
        let sample = TagValue::number(time, 2.5).to_sample();
        assert_eq!(sample, Sample::good(time.timestamp_micros(), 2.5));
        let back = TagValue::from(Sample::bad(sample.time_us));
        assert_eq!(back.value, None);
        assert_eq!(back.status, Status::Bad);
    }
}
