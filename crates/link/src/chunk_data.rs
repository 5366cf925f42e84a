//! The `data` argument of `QueryChunk`: bytes of the app's HTTP body.

use bytes::Bytes;
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Body bytes of a relayed answer, as the `data` argument of
/// [`to_hub::QUERY_CHUNK`](crate::to_hub::QUERY_CHUNK).
///
/// In the JSON hub protocol it travels as a JSON string (the body is UTF-8 text); in the
/// MessagePack hub protocol as `bin`, so neither side escapes, unescapes or validates it. It
/// reads from either form, and from a MessagePack `str` too, so any official client may send
/// it.
///
/// ```
/// use uplink_link::ChunkData;
///
/// let chunk = ChunkData::from(String::from("{\"values\":["));
/// assert_eq!(serde_json::to_string(&chunk).unwrap(), r#""{\"values\":[""#);
/// let back: ChunkData = serde_json::from_str(r#""{\"values\":[""#).unwrap();
/// assert_eq!(back, chunk);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkData(pub Bytes);

impl ChunkData {
    /// How many body bytes it carries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it carries none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for ChunkData {
    fn from(text: String) -> Self {
        Self(Bytes::from(text.into_bytes()))
    }
}

impl Serialize for ChunkData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let text = std::str::from_utf8(&self.0).map_err(|_| {
                serde::ser::Error::custom(
                    "a body chunk must be UTF-8 text to travel in the JSON hub protocol",
                )
            })?;
            serializer.serialize_str(text)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ChunkData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChunkVisitor;

        impl Visitor<'_> for ChunkVisitor {
            type Value = ChunkData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("body bytes as a string or a byte string")
            }

            // A JSON string arrives owned: its buffer becomes the chunk without a copy.
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<ChunkData, E> {
                Ok(ChunkData::from(text))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ChunkData, E> {
                Ok(ChunkData(Bytes::copy_from_slice(text.as_bytes())))
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ChunkData, E> {
                Ok(ChunkData(Bytes::copy_from_slice(bytes)))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<ChunkData, E> {
                Ok(ChunkData(Bytes::from(bytes)))
            }
        }

        deserializer
            .deserialize_bytes(ChunkVisitor)
            .map_err(|e| D::Error::custom(format!("chunk data: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_strings_and_refuses_other_json() {
        let chunk: ChunkData = serde_json::from_value(serde_json::json!("a\"\n")).unwrap();
        assert_eq!(&chunk.0[..], b"a\"\n");
        let err = serde_json::from_value::<ChunkData>(serde_json::json!(12)).unwrap_err();
        assert!(err.to_string().contains("chunk data"), "{err}");
    }

    #[test]
    fn bytes_that_are_not_text_cannot_travel_as_json() {
        let err = serde_json::to_string(&ChunkData(Bytes::from_static(&[0xff]))).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
