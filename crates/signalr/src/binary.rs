//! A byte-string argument that a handler receives without a copy: bound from MessagePack, it
//! is a slice of the received message rather than bytes copied out of it.

use std::cell::RefCell;

use bytes::Bytes;
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer};

thread_local! {
    /// The MessagePack argument array being bound on this thread, if any: a [`Binary`] whose
    /// bytes lie inside it is taken as a slice of it.
    static BINDING: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Makes `array` the argument array being bound on this thread until the guard is dropped.
pub(crate) fn binding(array: &Bytes) -> BindingGuard {
    let previous = BINDING.with(|b| b.replace(Some(array.clone())));
    BindingGuard { previous }
}

/// Restores what was being bound before, also when binding panics.
pub(crate) struct BindingGuard {
    previous: Option<Bytes>,
}

impl Drop for BindingGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        BINDING.with(|b| *b.borrow_mut() = previous);
    }
}

/// `bytes` as a slice of the argument array being bound, when they lie inside it and make up
/// most of it; a copy otherwise. A slice keeps the whole frame it arrived in alive for as long
/// as it lives, so a small byte string among large arguments is copied instead; the decoder
/// copies out arguments that are a small part of their frame, so a slice never keeps more than
/// 16/9 of its own size alive.
fn shared_or_copied(bytes: &[u8]) -> Bytes {
    if bytes.is_empty() {
        return Bytes::new();
    }
    BINDING.with(|b| match &*b.borrow() {
        Some(array) if within(array, bytes) && worth_sharing(bytes.len(), array.len()) => {
            array.slice_ref(bytes)
        }
        _ => Bytes::copy_from_slice(bytes),
    })
}

/// Whether `part` bytes may keep `whole` bytes alive: at least three quarters of them.
pub(crate) fn worth_sharing(part: usize, whole: usize) -> bool {
    part.saturating_mul(4) >= whole.saturating_mul(3)
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let outer_start = outer.as_ptr() as usize;
    let inner_start = inner.as_ptr() as usize;
    inner_start >= outer_start && inner_start + inner.len() <= outer_start + outer.len()
}

/// A byte string argument: MessagePack `bin` (or `str`), or a JSON string, as the caller
/// sent it.
///
/// Bound from a MessagePack message, its bytes are a slice of the message as it arrived (when
/// they make up most of the arguments), not a copy: a hub relaying large byte strings onwards
/// copies none of them itself. From JSON, the string's own buffer becomes the bytes.
///
/// ```
/// use uplink_signalr::Binary;
///
/// let text: Binary = serde_json::from_str(r#""{\"v\":1}""#).unwrap();
/// assert_eq!(&text.into_bytes()[..], b"{\"v\":1}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binary(pub Bytes);

impl Binary {
    /// The bytes, without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BinaryVisitor;

        impl<'de> Visitor<'de> for BinaryVisitor {
            type Value = Binary;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string or a string")
            }

            fn visit_borrowed_bytes<E: serde::de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<Binary, E> {
                Ok(Binary(shared_or_copied(bytes)))
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Binary, E> {
                Ok(Binary(shared_or_copied(text.as_bytes())))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Binary, E> {
                Ok(Binary(Bytes::from(text.into_bytes())))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Binary, E> {
                Ok(Binary(Bytes::copy_from_slice(text.as_bytes())))
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Binary, E> {
                Ok(Binary(Bytes::copy_from_slice(bytes)))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Binary, E> {
                Ok(Binary(Bytes::from(bytes)))
            }
        }

        deserializer
            .deserialize_bytes(BinaryVisitor)
            .map_err(|e| D::Error::custom(format!("byte string: {e}")))
    }
}
