//! The quality of a value, with the numeric codes industrial historians and OPC use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// How far a value can be trusted.
///
/// The numeric codes are the conventional OPC quality bytes: Bad 0, Uncertain 64, Good 192.
/// On the wire a status is its lower-case name (`"good"`); a numeric code is accepted too, and
/// classified by its two quality bits as OPC does (192–255 good, 64–127 uncertain, anything
/// else bad).
///
/// ```
/// use uplink_model::Status;
///
/// assert_eq!(Status::Good.code(), 192);
/// assert_eq!(Status::from_code(70), Status::Uncertain);
/// assert_eq!("GOOD".parse::<Status>().unwrap(), Status::Good);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Status {
    /// The value is not usable (sensor failure, communication loss, no data).
    Bad = 0,
    /// The value is usable with care (stale, out of calibration, substituted).
    Uncertain = 64,
    /// The value is trusted.
    #[default]
    Good = 192,
}

impl Status {
    /// Every status, worst first.
    pub const ALL: [Status; 3] = [Status::Bad, Status::Uncertain, Status::Good];

    /// The conventional numeric code: Bad 0, Uncertain 64, Good 192.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Classifies any quality byte by its two quality bits (OPC DA convention).
    pub const fn from_code(code: u8) -> Self {
        match code >> 6 {
            0b11 => Status::Good,
            0b01 => Status::Uncertain,
            _ => Status::Bad,
        }
    }

    /// The lower-case name used on the wire and in tables.
    pub const fn name(self) -> &'static str {
        match self {
            Status::Bad => "bad",
            Status::Uncertain => "uncertain",
            Status::Good => "good",
        }
    }

    /// True for [`Status::Good`].
    pub const fn is_good(self) -> bool {
        matches!(self, Status::Good)
    }

    /// The worse of two statuses (a result is only as good as its worst input).
    pub fn worst(self, other: Status) -> Status {
        self.min(other)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text was not a status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a value status (expected good, uncertain or bad, or a numeric quality code)")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    /// A name (any case) or a numeric quality code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Ok(code) = trimmed.parse::<u8>() {
            return Ok(Status::from_code(code));
        }
        Status::ALL
            .into_iter()
            .find(|status| status.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Status {
    /// A name, or a quality code from 0 to 255. Read by a visitor of its own rather than an
    /// untagged enum, which would copy every value aside first: live values carry one each.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Wire;
        impl de::Visitor<'_> for Wire {
            type Value = Status;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value status: good, uncertain or bad, or a quality code 0-255")
            }

            fn visit_u64<E: de::Error>(self, code: u64) -> Result<Status, E> {
                u8::try_from(code)
                    .map(Status::from_code)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(code), &self))
            }

            fn visit_i64<E: de::Error>(self, code: i64) -> Result<Status, E> {
                u8::try_from(code)
                    .map(Status::from_code)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(code), &self))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Status, E> {
                name.parse().map_err(E::custom)
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Status, E> {
                match std::str::from_utf8(bytes) {
                    Ok(name) => self.visit_str(name),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
                }
            }
        }
        deserializer.deserialize_any(Wire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_conventional_ones() {
        assert_eq!(Status::Bad.code(), 0);
        assert_eq!(Status::Uncertain.code(), 64);
        assert_eq!(Status::Good.code(), 192);
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), status);
        }
    }

    #[test]
    fn any_quality_byte_is_classified_by_its_quality_bits() {
        assert_eq!(Status::from_code(255), Status::Good);
        assert_eq!(Status::from_code(127), Status::Uncertain);
        assert_eq!(Status::from_code(63), Status::Bad);
        assert_eq!(Status::from_code(128), Status::Bad);
    }

    #[test]
    fn wire_form_is_the_name_and_codes_are_accepted() {
        assert_eq!(
            serde_json::to_string(&Status::Uncertain).unwrap(),
            "\"uncertain\""
        );
        assert_eq!(
            serde_json::from_str::<Status>("\"Good\"").unwrap(),
            Status::Good
        );
        assert_eq!(
            serde_json::from_str::<Status>("64").unwrap(),
            Status::Uncertain
        );
        let err = serde_json::from_str::<Status>("\"fine\"").unwrap_err();
        assert!(
            err.to_string().contains("'fine' is not a value status"),
            "{err}"
        );
        for refused in ["256", "-1", "1.5", "null"] {
            assert!(
                serde_json::from_str::<Status>(refused).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn worst_of_two_is_the_lower_quality() {
        assert_eq!(Status::Good.worst(Status::Uncertain), Status::Uncertain);
        assert_eq!(Status::Bad.worst(Status::Good), Status::Bad);
    }
}
