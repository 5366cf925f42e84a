//! The typed hub: methods clients may call, with results or streams, and connection callbacks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::connection::ConnectionHandle;
use crate::arguments::{bind_arguments, to_value};
pub use crate::hub_error::HubError;
use crate::protocol::{Arguments, ValueEncoding};

/// Who is calling a hub method: the connection, which can also be invoked (client results).
pub type Caller = ConnectionHandle;

type MethodFn =
    Arc<dyn Fn(Caller, Arguments) -> BoxFuture<'static, Result<Value, HubError>> + Send + Sync>;
type StreamFn = Arc<
    dyn Fn(Caller, Arguments) -> Result<BoxStream<'static, Result<StreamValue, HubError>>, HubError>
        + Send
        + Sync,
>;

/// One stream item as a hub method yields it.
#[derive(Debug)]
pub(crate) enum StreamValue {
    /// A value, encoded for the connection when sent.
    Value(Value),
    /// Encoded already.
    Encoded(EncodedItem),
}

/// A stream item encoded once, ahead of the connections it goes to: the text of one JSON
/// value, or one MessagePack value. On a connection whose protocol has that encoding it is
/// copied into the `StreamItem` as it is, never decoded or encoded again; on another it is
/// converted (decoded into a value, then encoded for the connection).
///
/// ```
/// use uplink_signalr::server::EncodedItem;
///
/// let item = EncodedItem::json(br#"{"n":1}"#.to_vec());
/// assert_eq!(item.bytes(), br#"{"n":1}"#);
/// ```
#[derive(Debug, Clone)]
pub struct EncodedItem {
    encoding: ValueEncoding,
    bytes: Bytes,
}

impl EncodedItem {
    /// An item that is the text of one JSON value (as `serde_json` writes it).
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        Self {
            encoding: ValueEncoding::Json,
            bytes: bytes.into(),
        }
    }

    /// An item that is one MessagePack value.
    pub fn messagepack(bytes: impl Into<Bytes>) -> Self {
        Self {
            encoding: ValueEncoding::MessagePack,
            bytes: bytes.into(),
        }
    }

    /// How it is encoded.
    pub fn encoding(&self) -> ValueEncoding {
        self.encoding
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The item as a value, for a connection whose protocol encodes values otherwise.
    pub(crate) fn to_value(&self) -> crate::Result<Value> {
        match self.encoding {
            ValueEncoding::Json => {
                serde_json::from_slice(&self.bytes).map_err(crate::Error::malformed)
            }
            ValueEncoding::MessagePack => {
                crate::protocol::messagepack::value_from_slice(&self.bytes)
            }
        }
    }
}
type ConnectFn = Arc<dyn Fn(ConnectionHandle) -> BoxFuture<'static, ()> + Send + Sync>;
type DisconnectFn =
    Arc<dyn Fn(ConnectionHandle, Option<String>) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Method {
    Single(MethodFn),
    Stream(StreamFn),
}

/// The methods a hub offers and what happens when connections come and go.
///
/// Arguments arrive as the invocation's array (JSON, or MessagePack bound without a detour
/// through JSON) and are deserialised into the handler's argument type: a tuple for several
/// (`(i64, i64)`), a one-tuple for one (`(String,)`), `()` for none.
///
/// ```
/// use futures::stream;
/// use uplink_signalr::server::{Hub, HubError};
///
/// let hub = Hub::new()
///     .method("Add", |_caller, (a, b): (i64, i64)| async move { Ok::<_, HubError>(a + b) })
///     .stream("Count", |_caller, (n,): (u32,)| {
///         Ok(stream::iter((0..n).map(Ok::<_, HubError>)))
///     })
///     .on_connected(|conn| async move { tracing::info!(id = conn.id(), "connected") });
/// ```
#[derive(Clone, Default)]
pub struct Hub {
    pub(crate) methods: HashMap<String, Method>,
    pub(crate) on_connected: Option<ConnectFn>,
    pub(crate) on_disconnected: Option<DisconnectFn>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.methods.keys().collect();
        names.sort();
        f.debug_struct("Hub").field("methods", &names).finish()
    }
}

impl Hub {
    /// A hub with no methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a method that returns one result (use `()` for none).
    pub fn method<A, R, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(Caller, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HubError>> + Send + 'static,
    {
        let name = name.into();
        let target = name.clone();
        let handler = Arc::new(handler);
        let erased: MethodFn =
            Arc::new(
                move |caller, arguments| match bind_arguments::<A>(&target, arguments) {
                    Ok(args) => handler(caller, args).map(|r| r.and_then(to_value)).boxed(),
                    Err(e) => futures::future::ready(Err(e)).boxed(),
                },
            );
        self.methods.insert(name, Method::Single(erased));
        self
    }

    /// Adds a method that returns a stream of items (called with `StreamInvocation`).
    pub fn stream<A, T, S, F>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
        S: Stream<Item = Result<T, HubError>> + Send + 'static,
        F: Fn(Caller, A) -> Result<S, HubError> + Send + Sync + 'static,
    {
        let name = name.into();
        let target = name.clone();
        let erased: StreamFn = Arc::new(move |caller, arguments| {
            let args = bind_arguments::<A>(&target, arguments)?;
            let items = handler(caller, args)?;
            Ok(items
                .map(|item| item.and_then(to_value).map(StreamValue::Value))
                .boxed())
        });
        self.methods.insert(name, Method::Stream(erased));
        self
    }

    /// Adds a method that returns a stream of items it encoded itself ([`EncodedItem`]), in
    /// the encoding of the caller's protocol ([`Caller::value_encoding`]), so that each is
    /// encoded once rather than built as a value and encoded again per connection.
    pub fn encoded_stream<A, S, F>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        S: Stream<Item = Result<EncodedItem, HubError>> + Send + 'static,
        F: Fn(Caller, A) -> Result<S, HubError> + Send + Sync + 'static,
    {
        let name = name.into();
        let target = name.clone();
        let erased: StreamFn = Arc::new(move |caller, arguments| {
            let args = bind_arguments::<A>(&target, arguments)?;
            let items = handler(caller, args)?;
            Ok(items.map(|item| item.map(StreamValue::Encoded)).boxed())
        });
        self.methods.insert(name, Method::Stream(erased));
        self
    }

    /// Runs `callback` once a connection has completed its handshake.
    pub fn on_connected<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(ConnectionHandle) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connected = Some(Arc::new(move |c| callback(c).boxed()));
        self
    }

    /// Runs `callback` when a connection has ended, with the error that ended it if any.
    pub fn on_disconnected<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(ConnectionHandle, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnected = Some(Arc::new(move |c, e| callback(c, e).boxed()));
        self
    }
}
