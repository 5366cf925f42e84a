//! Converting between typed Rust values and the argument lists of invocations, in whichever
//! encoding the connection's protocol uses.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hub_error::HubError;
use crate::protocol::{Arguments, ValueEncoding, messagepack};

/// Turns the invocation's arguments into the handler's argument type.
pub(crate) fn bind_arguments<A: DeserializeOwned>(
    target: &str,
    arguments: Arguments,
) -> Result<A, HubError> {
    let count = arguments.len();
    let bound = match arguments {
        Arguments::Values(values) => bind_values(values).map_err(|e| e.to_string()),
        Arguments::MessagePack { array, len } => messagepack::bind(&array, len),
    };
    bound.map_err(|e| {
        HubError::new(format!(
            "Failed to invoke '{target}': {count} argument(s) could not be bound: {e}"
        ))
    })
}

fn bind_values<A: DeserializeOwned>(arguments: Vec<Value>) -> serde_json::Result<A> {
    if arguments.is_empty() {
        // `()` and `Option<_>` deserialise from null, not from an empty array.
        serde_json::from_value(Value::Null)
            .or_else(|_| serde_json::from_value(Value::Array(vec![])))
    } else {
        serde_json::from_value(Value::Array(arguments))
    }
}

pub(crate) fn to_value<R: Serialize>(value: R) -> Result<Value, HubError> {
    serde_json::to_value(value).map_err(|e| HubError::new(format!("result not serialisable: {e}")))
}

/// Serialises call arguments: a tuple or array becomes the argument list, `()` none, and any
/// other value a single argument.
pub(crate) fn arguments_to_values<A: Serialize>(arguments: A) -> Result<Vec<Value>> {
    match serde_json::to_value(arguments).map_err(|e| Error::Conversion(e.to_string()))? {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![other]),
    }
}

/// Serialises call arguments for a protocol: JSON values, or a MessagePack array in which
/// byte strings stay binary.
pub(crate) fn arguments_for<A: Serialize>(
    encoding: ValueEncoding,
    arguments: A,
) -> Result<Arguments> {
    match encoding {
        ValueEncoding::Json => arguments_to_values(arguments).map(Arguments::Values),
        ValueEncoding::MessagePack => messagepack::arguments_from(arguments),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn arguments_serialise_as_the_argument_list() {
        assert_eq!(
            arguments_to_values((1, "a")).unwrap(),
            vec![json!(1), json!("a")]
        );
        assert_eq!(arguments_to_values(()).unwrap(), Vec::<Value>::new());
        assert_eq!(arguments_to_values("one").unwrap(), vec![json!("one")]);
        assert_eq!(
            arguments_to_values((vec![1, 2],)).unwrap(),
            vec![json!([1, 2])]
        );
    }

    #[test]
    fn arguments_bind_to_tuples_unit_and_report_mismatches() {
        for encoding in [ValueEncoding::Json, ValueEncoding::MessagePack] {
            let args = |a| arguments_for(encoding, a).unwrap();
            let (a, b): (i64, String) = bind_arguments("m", args(json!([1, "x"]))).unwrap();
            assert_eq!((a, b.as_str()), (1, "x"), "{encoding:?}");
            let (): () = bind_arguments("m", args(json!([]))).unwrap();
            let none: Option<i64> = bind_arguments("m", args(json!([]))).unwrap();
            assert_eq!(none, None);
            let err = bind_arguments::<(i64, i64)>("Add", args(json!([1]))).unwrap_err();
            assert!(err.message().contains("'Add'"), "{err}");
            assert!(err.message().contains("1 argument(s)"), "{err}");
            let err = bind_arguments::<(i64,)>("Add", args(json!(["nope"]))).unwrap_err();
            let said = err.message();
            assert!(
                said.contains("invalid type") || said.contains("wrong msgpack marker"),
                "{encoding:?}: {err}"
            );
        }
    }

    #[test]
    fn messagepack_arguments_follow_the_json_rule_for_the_argument_list() {
        let args = |a| arguments_for(ValueEncoding::MessagePack, a).unwrap();
        assert_eq!(
            args(json!([1, "a"])).into_values().unwrap(),
            [json!(1), json!("a")]
        );
        assert!(args(json!(null)).is_empty());
        assert_eq!(args(json!("one")).into_values().unwrap(), [json!("one")]);
        // A struct is one argument, sent as a map keyed by field name.
        #[derive(Serialize)]
        struct Point {
            x: i32,
        }
        let Arguments::MessagePack { array, len } =
            arguments_for(ValueEncoding::MessagePack, Point { x: 3 }).unwrap()
        else {
            panic!("MessagePack arguments")
        };
        assert_eq!(len, 1);
        assert_eq!(&array[..], [0x91, 0x81, 0xa1, b'x', 0x03]);
    }

    #[test]
    fn byte_strings_stay_binary_in_messagepack() {
        struct Blob;
        impl Serialize for Blob {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(b"hi")
            }
        }
        let Arguments::MessagePack { array, .. } =
            arguments_for(ValueEncoding::MessagePack, (Blob,)).unwrap()
        else {
            panic!("MessagePack arguments")
        };
        assert_eq!(&array[..], [0x91, 0xc4, 0x02, b'h', b'i']);
    }
}
