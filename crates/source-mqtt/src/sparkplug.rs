//! Sparkplug B: the payload messages of the official `sparkplug_b.proto` (Eclipse Tahu,
//! proto2, package `org.eclipse.tahu.protobuf`), derived with `prost::Message` by hand rather
//! than generated: the schema is small and frozen, and deriving keeps `protoc` and a build
//! script out of the build. Field numbers and types are the schema's; the parts a host reading
//! process values has no use for (templates, data sets, extensions) are left out, and protobuf
//! skips them when decoding, so such a metric reads as "no value" instead of failing the message.
//!
//! Also here: the topic namespace (`spBv1.0/group/TYPE/edge-node[/device]`) and the data-type
//! codes.

use uplink_model::DataType;

/// The topic namespace of Sparkplug B.
pub const NAMESPACE: &str = "spBv1.0";

/// A Sparkplug B payload (`Payload`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// When the message was sent, milliseconds since the Unix epoch.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// The sequence number (0–255), absent on NDEATH.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// A schema identifier.
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// An opaque body.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// One metric (`Payload.Metric`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// The name: always in births, optional in data messages once an alias is known.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The alias the birth ties to the name.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// When the value was acquired, milliseconds since the Unix epoch.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// The data-type code (see [`DataTypeCode`]).
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// A value from the past, not a current one.
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// Not to be stored as a tag.
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// Explicitly no value.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// Properties such as engineering units and quality.
    #[prost(message, optional, tag = "9")]
    pub properties: Option<PropertySet>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub value: Option<MetricValue>,
}

/// A metric's value (`Payload.Metric.value`), less data sets, templates and extensions.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    /// Int8/16/32 (two's complement) and UInt8/16/32.
    #[prost(uint32, tag = "10")]
    IntValue(u32),
    /// Int64 (two's complement), UInt64 and DateTime.
    #[prost(uint64, tag = "11")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "12")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "13")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    BooleanValue(bool),
    /// String, Text and UUID.
    #[prost(string, tag = "15")]
    StringValue(String),
    /// Bytes and File.
    #[prost(bytes = "vec", tag = "16")]
    BytesValue(Vec<u8>),
}

/// Named properties (`Payload.PropertySet`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PropertySet {
    /// The names.
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
    /// The values, one per name.
    #[prost(message, repeated, tag = "2")]
    pub values: Vec<PropertyValue>,
}

/// One property's value (`Payload.PropertyValue`), less nested sets and extensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PropertyValue {
    /// The data-type code.
    #[prost(uint32, optional, tag = "1")]
    pub r#type: Option<u32>,
    /// Explicitly no value.
    #[prost(bool, optional, tag = "2")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "PropertyValueKind", tags = "3, 4, 5, 6, 7, 8")]
    pub value: Option<PropertyValueKind>,
}

/// A property's value.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PropertyValueKind {
    /// 32-bit integers.
    #[prost(uint32, tag = "3")]
    IntValue(u32),
    /// 64-bit integers.
    #[prost(uint64, tag = "4")]
    LongValue(u64),
    /// Float.
    #[prost(float, tag = "5")]
    FloatValue(f32),
    /// Double.
    #[prost(double, tag = "6")]
    DoubleValue(f64),
    /// Boolean.
    #[prost(bool, tag = "7")]
    BooleanValue(bool),
    /// String.
    #[prost(string, tag = "8")]
    StringValue(String),
}

/// Sparkplug B data-type codes.
#[allow(missing_docs)]
pub mod code {
    pub const INT8: u32 = 1;
    pub const INT16: u32 = 2;
    pub const INT32: u32 = 3;
    pub const INT64: u32 = 4;
    pub const UINT8: u32 = 5;
    pub const UINT16: u32 = 6;
    pub const UINT32: u32 = 7;
    pub const UINT64: u32 = 8;
    pub const FLOAT: u32 = 9;
    pub const DOUBLE: u32 = 10;
    pub const BOOLEAN: u32 = 11;
    pub const STRING: u32 = 12;
    pub const DATETIME: u32 = 13;
    pub const TEXT: u32 = 14;
    pub const UUID: u32 = 15;
}

/// The Uplink data type of a Sparkplug data-type code.
pub fn data_type(datatype: u32) -> DataType {
    match datatype {
        code::INT8..=code::UINT64 | code::DATETIME => DataType::Integer,
        code::FLOAT | code::DOUBLE => DataType::Float,
        code::BOOLEAN => DataType::Boolean,
        _ => DataType::Text,
    }
}

/// The name of a data-type code, for tag properties.
pub fn type_name(datatype: u32) -> &'static str {
    match datatype {
        code::INT8 => "Int8",
        code::INT16 => "Int16",
        code::INT32 => "Int32",
        code::INT64 => "Int64",
        code::UINT8 => "UInt8",
        code::UINT16 => "UInt16",
        code::UINT32 => "UInt32",
        code::UINT64 => "UInt64",
        code::FLOAT => "Float",
        code::DOUBLE => "Double",
        code::BOOLEAN => "Boolean",
        code::STRING => "String",
        code::DATETIME => "DateTime",
        code::TEXT => "Text",
        code::UUID => "UUID",
        16 => "DataSet",
        17 => "Bytes",
        18 => "File",
        19 => "Template",
        _ => "Unknown",
    }
}

/// A metric value read as a number or a text, by the metric's data type.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A number (integers, floats, booleans as 1/0).
    Number(f64),
    /// A text.
    Text(String),
    /// No value (null, or a kind Uplink does not read).
    Nothing,
}

/// Reads a metric's value; `datatype` comes from the birth when the data message leaves it out.
pub fn read(value: Option<&MetricValue>, datatype: u32, is_null: bool) -> Reading {
    if is_null {
        return Reading::Nothing;
    }
    match value {
        None => Reading::Nothing,
        Some(MetricValue::IntValue(v)) => Reading::Number(match datatype {
            code::INT8 => f64::from(*v as u8 as i8),
            code::INT16 => f64::from(*v as u16 as i16),
            code::INT32 => f64::from(*v as i32),
            _ => f64::from(*v),
        }),
        Some(MetricValue::LongValue(v)) => Reading::Number(match datatype {
            code::INT64 | code::INT8 | code::INT16 | code::INT32 => *v as i64 as f64,
            _ => *v as f64,
        }),
        Some(MetricValue::FloatValue(v)) => Reading::Number(f64::from(*v)),
        Some(MetricValue::DoubleValue(v)) => Reading::Number(*v),
        Some(MetricValue::BooleanValue(v)) => Reading::Number(f64::from(u8::from(*v))),
        Some(MetricValue::StringValue(s)) => Reading::Text(s.clone()),
        Some(MetricValue::BytesValue(_)) => Reading::Nothing,
    }
}

/// Encodes a number as a metric value of `datatype`, refusing what does not fit.
///
/// # Errors
/// A sentence for a person: the value is out of range, not whole, or the type takes no number.
pub fn encode_number(number: f64, datatype: u32) -> Result<MetricValue, String> {
    let whole = |min: f64, max: f64| -> Result<f64, String> {
        if number.fract() != 0.0 || !number.is_finite() {
            return Err(format!(
                "a {} takes whole numbers, not {number}",
                type_name(datatype)
            ));
        }
        if !(min..=max).contains(&number) {
            return Err(format!(
                "{number} is outside the range of a {} ({min} to {max})",
                type_name(datatype)
            ));
        }
        Ok(number)
    };
    Ok(match datatype {
        code::INT8 => MetricValue::IntValue(whole(-128.0, 127.0)? as i32 as u32),
        code::INT16 => MetricValue::IntValue(whole(-32_768.0, 32_767.0)? as i32 as u32),
        code::INT32 => {
            MetricValue::IntValue(whole(-2_147_483_648.0, 2_147_483_647.0)? as i32 as u32)
        }
        code::INT64 => MetricValue::LongValue(whole(
            -9.223_372_036_854_776e18,
            9.223_372_036_854_776e18,
        )? as i64 as u64),
        code::UINT8 => MetricValue::IntValue(whole(0.0, 255.0)? as u32),
        code::UINT16 => MetricValue::IntValue(whole(0.0, 65_535.0)? as u32),
        code::UINT32 => MetricValue::IntValue(whole(0.0, 4_294_967_295.0)? as u32),
        code::UINT64 | code::DATETIME => {
            MetricValue::LongValue(whole(0.0, 1.844_674_407_370_955_2e19)? as u64)
        }
        code::FLOAT => MetricValue::FloatValue(number as f32),
        code::DOUBLE => MetricValue::DoubleValue(number),
        code::BOOLEAN if number == 0.0 || number == 1.0 => MetricValue::BooleanValue(number == 1.0),
        code::BOOLEAN => return Err(format!("a Boolean takes on or off (1 or 0), not {number}")),
        code::STRING | code::TEXT | code::UUID => MetricValue::StringValue(number.to_string()),
        other => return Err(format!("Uplink cannot write a {} metric", type_name(other))),
    })
}

/// The kind of a Sparkplug message, from its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Edge node birth.
    NBirth,
    /// Edge node death.
    NDeath,
    /// Edge node data.
    NData,
    /// Command to an edge node.
    NCmd,
    /// Device birth.
    DBirth,
    /// Device death.
    DDeath,
    /// Device data.
    DData,
    /// Command to a device.
    DCmd,
}

/// A parsed Sparkplug topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic<'a> {
    /// The group id.
    pub group: &'a str,
    /// The message type.
    pub kind: MessageType,
    /// The edge node id.
    pub node: &'a str,
    /// The device id, for device messages.
    pub device: Option<&'a str>,
}

/// Parses `spBv1.0/group/TYPE/node[/device]`; `None` for anything else (STATE, other topics).
pub fn parse_topic(topic: &str) -> Option<Topic<'_>> {
    let mut parts = topic.split('/');
    if parts.next()? != NAMESPACE {
        return None;
    }
    let group = parts.next()?;
    let kind = match parts.next()? {
        "NBIRTH" => MessageType::NBirth,
        "NDEATH" => MessageType::NDeath,
        "NDATA" => MessageType::NData,
        "NCMD" => MessageType::NCmd,
        "DBIRTH" => MessageType::DBirth,
        "DDEATH" => MessageType::DDeath,
        "DDATA" => MessageType::DData,
        "DCMD" => MessageType::DCmd,
        _ => return None,
    };
    let node = parts.next()?;
    let device = parts.next();
    let is_device = matches!(
        kind,
        MessageType::DBirth | MessageType::DDeath | MessageType::DData | MessageType::DCmd
    );
    if parts.next().is_some() || is_device != device.is_some() {
        return None;
    }
    Some(Topic {
        group,
        kind,
        node,
        device,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn a_payload_round_trips_and_signed_integers_read_back() {
        let payload = Payload {
            timestamp: Some(1_700_000_000_000),
            seq: Some(3),
            metrics: vec![Metric {
                name: Some("Motor/Speed".into()),
                alias: Some(7),
                datatype: Some(code::INT16),
                value: Some(encode_number(-5.0, code::INT16).unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = payload.encode_to_vec();
        let back = Payload::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, payload);
        let metric = &back.metrics[0];
        assert_eq!(
            read(metric.value.as_ref(), code::INT16, false),
            Reading::Number(-5.0)
        );
        assert_eq!(
            read(Some(&MetricValue::LongValue(u64::MAX)), code::INT64, false),
            Reading::Number(-1.0)
        );
    }

    #[test]
    fn numbers_that_do_not_fit_are_refused() {
        assert!(
            encode_number(300.0, code::UINT8)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            encode_number(1.5, code::INT32)
                .unwrap_err()
                .contains("whole")
        );
        assert!(encode_number(2.0, code::BOOLEAN).is_err());
        assert_eq!(
            encode_number(1.0, code::BOOLEAN).unwrap(),
            MetricValue::BooleanValue(true)
        );
    }

    #[test]
    fn topics_parse_and_malformed_ones_do_not() {
        let t = parse_topic("spBv1.0/plant/DDATA/edge1/pump3").unwrap();
        assert_eq!(
            (t.group, t.kind, t.node, t.device),
            ("plant", MessageType::DData, "edge1", Some("pump3"))
        );
        assert_eq!(
            parse_topic("spBv1.0/plant/NBIRTH/edge1").unwrap().device,
            None
        );
        assert!(parse_topic("spBv1.0/plant/NDATA/edge1/extra").is_none());
        assert!(parse_topic("spBv1.0/plant/DDATA/edge1").is_none());
        assert!(parse_topic("spBv1.0/STATE/host").is_none());
        assert!(parse_topic("plant/NDATA/edge1").is_none());
    }
}
