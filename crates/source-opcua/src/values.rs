//! OPC UA values to Uplink's and back: status codes to good / uncertain / bad, variants to
//! numbers or text, and a written value to the variable's own type.

use chrono::Utc;
use opcua::types::{DataTypeId, DataValue, NodeId, StatusCode, Variant};
use uplink_model::time_expr::to_micros;
use uplink_model::{Sample, Status, TagValue};
use uplink_source::WriteValue;

/// Good, uncertain or bad from the code's severity bits (the code itself travels beside it, see
/// [`source_code`]).
pub(crate) fn status(code: StatusCode) -> Status {
    if code.is_good() {
        Status::Good
    } else if code.is_uncertain() {
        Status::Uncertain
    } else {
        Status::Bad
    }
}

/// A number, a text, or both, from a variant.
pub(crate) fn number_or_text(value: &Variant) -> (Option<f64>, Option<String>) {
    match value {
        Variant::Empty => (None, None),
        Variant::Boolean(b) => (Some(f64::from(u8::from(*b))), None),
        Variant::SByte(v) => (Some(f64::from(*v)), None),
        Variant::Byte(v) => (Some(f64::from(*v)), None),
        Variant::Int16(v) => (Some(f64::from(*v)), None),
        Variant::UInt16(v) => (Some(f64::from(*v)), None),
        Variant::Int32(v) => (Some(f64::from(*v)), None),
        Variant::UInt32(v) => (Some(f64::from(*v)), None),
        Variant::Int64(v) => (Some(*v as f64), None),
        Variant::UInt64(v) => (Some(*v as f64), None),
        Variant::Float(v) => (Some(f64::from(*v)), None),
        Variant::Double(v) => (Some(*v), None),
        Variant::String(s) => (None, s.value().clone()),
        Variant::LocalizedText(t) => (None, t.text.value().clone()),
        Variant::DateTime(t) => (None, Some(t.to_rfc3339())),
        Variant::StatusCode(c) => (
            Some(f64::from(c.bits())),
            Some(c.sub_code().name().to_owned()),
        ),
        other => (None, Some(format!("{other:?}"))),
    }
}

fn time_of(value: &DataValue) -> chrono::DateTime<Utc> {
    value
        .source_timestamp
        .or(value.server_timestamp)
        .filter(|t| !t.is_null())
        .map(|t| t.as_chrono())
        .unwrap_or_else(Utc::now)
}

/// A current value as apps receive it.
pub(crate) fn tag_value(value: &DataValue) -> TagValue {
    let (number, text) = value
        .value
        .as_ref()
        .map(number_or_text)
        .unwrap_or((None, None));
    TagValue {
        time: time_of(value),
        value: number.filter(|n| n.is_finite()),
        text,
        status: status(value.status()),
        units: None,
        source_status_code: source_code(value.status()),
    }
}

/// The server's own code, kept on the value unless it is plain Good (`0`), which says nothing
/// more than the good status does.
pub(crate) fn source_code(code: StatusCode) -> Option<u32> {
    (code.bits() != 0).then_some(code.bits())
}

/// A stored value in the compact form, with the server's own code; no number makes it a bad
/// sample.
pub(crate) fn sample(value: &DataValue) -> Sample {
    let time_us = to_micros(time_of(value));
    let number = value
        .value
        .as_ref()
        .and_then(|v| number_or_text(v).0)
        .filter(|n| n.is_finite());
    match number {
        Some(n) => Sample {
            time_us,
            value: n,
            status: status(value.status()),
            source_code: value.status().bits(),
        },
        None => Sample {
            source_code: value.status().bits(),
            ..Sample::bad(time_us)
        },
    }
}

fn whole<T: TryFrom<i64>>(n: f64, name: &str) -> Result<T, String> {
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(format!("{n} is not a whole number, and the tag is {name}"));
    }
    T::try_from(n as i64).map_err(|_| format!("{n} does not fit the tag's type ({name})"))
}

/// The value in the variable's own type (`data_type`, read from the server); refused when it
/// does not fit.
pub(crate) fn to_variant(
    value: &WriteValue,
    data_type: Option<&NodeId>,
) -> Result<Variant, String> {
    let id = data_type.and_then(|id| id.as_data_type_id().ok());
    let number = match value {
        WriteValue::Number(n) => Some(*n),
        WriteValue::Bool(b) => Some(f64::from(u8::from(*b))),
        WriteValue::Text(_) => None,
    };
    let need_number = || number.ok_or_else(|| "the tag takes a number, not text".to_owned());
    Ok(match id {
        Some(DataTypeId::Boolean) => match value {
            WriteValue::Bool(b) => Variant::Boolean(*b),
            WriteValue::Number(n) if *n == 0.0 || *n == 1.0 => Variant::Boolean(*n == 1.0),
            _ => return Err("the tag is a boolean: write true or false".into()),
        },
        Some(DataTypeId::SByte) => Variant::SByte(whole(need_number()?, "SByte")?),
        Some(DataTypeId::Byte) => Variant::Byte(whole(need_number()?, "Byte")?),
        Some(DataTypeId::Int16) => Variant::Int16(whole(need_number()?, "Int16")?),
        Some(DataTypeId::UInt16) => Variant::UInt16(whole(need_number()?, "UInt16")?),
        Some(DataTypeId::Int32) => Variant::Int32(whole(need_number()?, "Int32")?),
        Some(DataTypeId::UInt32) => Variant::UInt32(whole(need_number()?, "UInt32")?),
        Some(DataTypeId::Int64) => Variant::Int64(whole(need_number()?, "Int64")?),
        Some(DataTypeId::UInt64) => {
            let n = need_number()?;
            if n < 0.0 {
                return Err(format!("{n} does not fit the tag's type (UInt64)"));
            }
            Variant::UInt64(whole::<i64>(n, "UInt64")? as u64)
        }
        Some(DataTypeId::Float) => {
            let n = need_number()?;
            if n.abs() > f64::from(f32::MAX) {
                return Err(format!("{n} does not fit the tag's type (Float)"));
            }
            Variant::Float(n as f32)
        }
        Some(DataTypeId::Double) => Variant::Double(need_number()?),
        Some(DataTypeId::String) => match value {
            WriteValue::Text(t) => Variant::from(t.as_str()),
            _ => return Err("the tag is text: write a text".into()),
        },
        _ => match value {
            WriteValue::Bool(b) => Variant::Boolean(*b),
            WriteValue::Number(n) => Variant::Double(*n),
            WriteValue::Text(t) => Variant::from(t.as_str()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_by_severity() {
        assert_eq!(status(StatusCode::Good), Status::Good);
        assert_eq!(
            status(StatusCode::UncertainLastUsableValue),
            Status::Uncertain
        );
        assert_eq!(status(StatusCode::BadSensorFailure), Status::Bad);
        assert_eq!(status(StatusCode::BadNoCommunication), Status::Bad);
    }

    #[test]
    fn the_servers_code_is_kept_beside_the_status_unless_plain_good() {
        let bad = DataValue {
            value: Some(Variant::Double(1.0)),
            status: Some(StatusCode::BadSensorFailure),
            ..Default::default()
        };
        let value = tag_value(&bad);
        assert_eq!(value.status, Status::Bad);
        assert_eq!(
            value.source_status_code,
            Some(StatusCode::BadSensorFailure.bits())
        );
        let good = DataValue::value_only(Variant::Double(1.0));
        assert_eq!(tag_value(&good).source_status_code, None);
    }

    #[test]
    fn variants_become_numbers_or_text() {
        assert_eq!(number_or_text(&Variant::Boolean(true)), (Some(1.0), None));
        assert_eq!(number_or_text(&Variant::Int32(-7)), (Some(-7.0), None));
        assert_eq!(number_or_text(&Variant::Float(0.5)), (Some(0.5), None));
        assert_eq!(
            number_or_text(&Variant::from("on")),
            (None, Some("on".into()))
        );
        let bad = DataValue {
            value: Some(Variant::Double(f64::NAN)),
            status: Some(StatusCode::BadSensorFailure),
            ..Default::default()
        };
        let sample = sample(&bad);
        assert!(sample.value.is_nan());
        assert_eq!(sample.status, Status::Bad);
    }

    #[test]
    fn written_values_take_the_variables_type_or_are_refused() {
        let int32: NodeId = DataTypeId::Int32.into();
        let boolean: NodeId = DataTypeId::Boolean.into();
        let float: NodeId = DataTypeId::Float.into();
        assert_eq!(
            to_variant(&WriteValue::Number(42.0), Some(&int32)),
            Ok(Variant::Int32(42))
        );
        assert!(
            to_variant(&WriteValue::Number(4.5), Some(&int32))
                .unwrap_err()
                .contains("whole")
        );
        assert!(
            to_variant(&WriteValue::Number(1e12), Some(&int32))
                .unwrap_err()
                .contains("fit")
        );
        assert_eq!(
            to_variant(&WriteValue::Bool(true), Some(&boolean)),
            Ok(Variant::Boolean(true))
        );
        assert!(to_variant(&WriteValue::Text("x".into()), Some(&float)).is_err());
        assert_eq!(
            to_variant(&WriteValue::Number(2.5), Some(&float)),
            Ok(Variant::Float(2.5))
        );
    }
}
