//! A real hub over real TLS on loopback, shared by the integration tests.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::StreamExt;
use tokio::sync::oneshot;
use uplink_signalr::HubError;
use uplink_signalr::protocol::ValueEncoding;
use uplink_signalr::server::{EncodedItem, Hub, HubServer, ServerOptions};

pub const HUB_PATH: &str = "/hubs/test";

/// The hub every test talks to.
pub fn test_hub() -> Hub {
    Hub::new()
        .method("Add", |_c, (a, b): (i64, i64)| async move {
            Ok::<_, HubError>(a + b)
        })
        .method("Echo", |_c, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        })
        .method("Fail", |_c, (): ()| async move {
            Err::<(), _>(HubError::new("It didn't work!"))
        })
        .method("Slow", |_c, (ms,): (u64,)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, HubError>(ms)
        })
        .method("AskClient", |caller, (question,): (String,)| async move {
            let answer: String = caller
                .invoke("Answer", (question,))
                .await
                .map_err(|e| HubError::new(format!("client result failed: {e}")))?;
            Ok::<_, HubError>(answer)
        })
        .method("TriggerNotify", |caller, (text,): (String,)| async move {
            caller.send("Notify", (text,)).map_err(HubError::from)?;
            Ok::<_, HubError>(true)
        })
        .method("ByteSum", |_c, (blob,): (Blob,)| async move {
            Ok::<_, HubError>((
                blob.0.len(),
                blob.0.iter().map(|&b| u64::from(b)).sum::<u64>(),
            ))
        })
        .stream("Counter", |_c, (n,): (u32,)| {
            Ok(futures::stream::iter(0..n)
                .then(|i| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    i
                })
                .map(Ok::<_, HubError>))
        })
        // Items encoded once, ahead: in the caller's encoding (copied into the frame as they
        // are), or always as JSON text (converted for a MessagePack connection).
        .encoded_stream("Encoded", |caller, (n, as_json): (u32, bool)| {
            let encoding = caller.value_encoding();
            Ok(futures::stream::iter(0..n).map(move |i| {
                let item = serde_json::json!({"n": i, "text": "a\u{1e}\"b"});
                Ok::<_, HubError>(match encoding {
                    Some(ValueEncoding::MessagePack) if !as_json => {
                        EncodedItem::messagepack(rmp_serde::to_vec_named(&item).unwrap())
                    }
                    _ => EncodedItem::json(serde_json::to_vec(&item).unwrap()),
                })
            }))
        })
}

/// A byte string: `bin` in MessagePack, an array of numbers in JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob(pub Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut bytes = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(Blob(bytes))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub client_tls: Arc<rustls::ClientConfig>,
    pub server: HubServer,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}{HUB_PATH}", self.addr.port())
    }

    /// Stops listening, then closes every connection, as a server shutting down does.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        self.server.close_all(Some("server shutting down".into()));
    }
}

pub fn loopback_ca() -> uplink_tls::LoopbackCa {
    uplink_tls::install_crypto_provider();
    uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"]).expect("generate loopback CA")
}

/// Serves `hub` over HTTPS on 127.0.0.1 (port 0 picks a free one).
pub async fn start_with(
    hub: Hub,
    options: ServerOptions,
    ca: &uplink_tls::LoopbackCa,
    port: u16,
) -> TestServer {
    let server = HubServer::new(hub, options);
    let app = Router::new().nest(HUB_PATH, server.router());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let config = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = uplink_tls::serve(listener, config, app, async {
            let _ = rx.await;
        })
        .await;
    });
    let client_tls =
        uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned())).unwrap();
    TestServer {
        addr,
        ca_pem: ca.ca_pem().to_owned(),
        client_tls,
        server,
        shutdown: Some(tx),
        task,
    }
}

pub async fn start(options: ServerOptions) -> TestServer {
    start_with(test_hub(), options, &loopback_ca(), 0).await
}

/// Waits for `future`, failing the test with `what` if it takes unreasonably long.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}
