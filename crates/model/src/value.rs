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

/// Sample times on the wire: RFC 3339 in UTC with `Z`, as many fraction digits as needed
/// (none, 3, 6 or 9: chrono's `SecondsFormat::AutoSi`).
///
/// Every live value crosses this twice or more on its way to an app (the link, the app's
/// stream), a thousand at a time, so a time is written into a buffer on the stack and read
/// from the text the deserializer lends, never through a `String` of its own.
pub mod rfc3339 {
    use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
    use serde::{Deserializer, Serialize, Serializer, de};

    /// The longest text [`write`] gives: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
    const LONGEST: usize = 30;

    /// `at` as `to_rfc3339_opts(SecondsFormat::AutoSi, true)` writes it, into `buf`; `None`
    /// for the instants that form leaves to chrono (years outside 0–9999, leap seconds).
    fn write(at: &DateTime<Utc>, buf: &mut [u8; LONGEST]) -> Option<usize> {
        let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
        let nanos = at.nanosecond();
        if nanos >= 1_000_000_000 {
            return None;
        }
        fn digits(buf: &mut [u8], mut n: u32) {
            for place in buf.iter_mut().rev() {
                *place = b'0' + (n % 10) as u8;
                n /= 10;
            }
        }
        digits(&mut buf[0..4], year);
        buf[4] = b'-';
        digits(&mut buf[5..7], at.month());
        buf[7] = b'-';
        digits(&mut buf[8..10], at.day());
        buf[10] = b'T';
        digits(&mut buf[11..13], at.hour());
        buf[13] = b':';
        digits(&mut buf[14..16], at.minute());
        buf[16] = b':';
        digits(&mut buf[17..19], at.second());
        let (places, fraction) = if nanos == 0 {
            (0, 0)
        } else if nanos.is_multiple_of(1_000_000) {
            (3, nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            (6, nanos / 1_000)
        } else {
            (9, nanos)
        };
        let mut len = 19;
        if places > 0 {
            buf[len] = b'.';
            digits(&mut buf[len + 1..len + 1 + places], fraction);
            len += 1 + places;
        }
        buf[len] = b'Z';
        Some(len + 1)
    }

    /// Serializes a time in the wire form.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; LONGEST];
        match write(at, &mut buf) {
            // Only ASCII digits and separators were written.
            Some(len) => serializer.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or("")),
            None => serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }

    /// A time to serialize in the wire form, for hand-written `Serialize` impls.
    #[derive(Debug, Clone, Copy)]
    pub struct Wire<'a>(pub &'a DateTime<Utc>);

    impl Serialize for Wire<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, serializer)
        }
    }

    /// Reads a time: any RFC 3339 text, with any offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer.deserialize_str(Time)
    }

    /// Reads RFC 3339 text, borrowed where the format lends it.
    struct Time;

    impl de::Visitor<'_> for Time {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 time as a string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|err| E::custom(format!("'{text}' is not an RFC 3339 time: {err}")))
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            match std::str::from_utf8(bytes) {
                Ok(text) => self.visit_str(text),
                Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use chrono::TimeZone as _;
        use proptest::prelude::*;

        use super::*;

        fn written(at: &DateTime<Utc>) -> String {
            serde_json::to_value(Wire(at))
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }

        proptest! {
            #[test]
            fn writes_what_chrono_writes_and_reads_it_back(
                seconds in -62_167_219_200i64..253_402_300_800,
                nanos in prop_oneof![
                    Just(0u32),
                    (0u32..1_000).prop_map(|ms| ms * 1_000_000),
                    (0u32..1_000_000).prop_map(|us| us * 1_000),
                    0u32..1_000_000_000,
                ],
            ) {
                let at = Utc.timestamp_opt(seconds, nanos).unwrap();
                let text = written(&at);
                prop_assert_eq!(&text, &at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
                let back: DateTime<Utc> =
                    deserialize(serde_json::Value::String(text)).unwrap();
                prop_assert_eq!(back, at);
            }
        }

        #[test]
        fn what_the_short_form_leaves_out_is_written_by_chrono() {
            let far = Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).unwrap();
            assert_eq!(
                written(&far),
                far.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
            let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_milli_opt(23, 59, 59, 1_500)
                .unwrap()
                .and_utc();
            assert_eq!(written(&leap), "2016-12-31T23:59:60.500Z");
        }

        #[test]
        fn any_offset_is_read_and_anything_else_refused() {
            let read = |v: serde_json::Value| deserialize(v).map_err(|e| e.to_string());
            assert_eq!(
                read("2024-05-01T10:00:00+02:00".into()).unwrap(),
                Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
            );
            assert!(read(5.into()).unwrap_err().contains("RFC 3339"));
        }
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
