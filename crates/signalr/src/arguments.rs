//! Converting between typed Rust values and the JSON argument lists of invocations.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hub_error::HubError;

/// Turns the invocation's argument array into the handler's argument type.
pub(crate) fn bind_arguments<A: DeserializeOwned>(
    target: &str,
    arguments: Vec<Value>,
) -> Result<A, HubError> {
    let count = arguments.len();
    let as_array = if count == 0 {
        // `()` and `Option<_>` deserialise from null, not from an empty array.
        serde_json::from_value(Value::Null)
            .or_else(|_| serde_json::from_value(Value::Array(vec![])))
    } else {
        serde_json::from_value(Value::Array(arguments))
    };
    as_array.map_err(|e| {
        HubError::new(format!(
            "Failed to invoke '{target}': {count} argument(s) could not be bound: {e}"
        ))
    })
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
        let (a, b): (i64, String) = bind_arguments("m", vec![json!(1), json!("x")]).unwrap();
        assert_eq!((a, b.as_str()), (1, "x"));
        let (): () = bind_arguments("m", vec![]).unwrap();
        let err = bind_arguments::<(i64, i64)>("Add", vec![json!(1)]).unwrap_err();
        assert!(err.message().contains("'Add'"), "{err}");
        assert!(err.message().contains("1 argument(s)"), "{err}");
        let err = bind_arguments::<(i64,)>("Add", vec![json!("nope")]).unwrap_err();
        assert!(err.message().contains("invalid type"), "{err}");
    }
}
