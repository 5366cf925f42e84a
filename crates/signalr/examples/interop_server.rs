//! A SignalR test server for interoperability tests with other clients (the official
//! JavaScript client in `tests/signalr/`): serves a small hub over HTTPS on loopback with a
//! freshly generated CA, prints `{"url": …, "ca": …}` as one JSON line, and runs until its
//! standard input closes.
//!
//! Hub methods: `Add(a, b)`, `Echo(text)`, `Fail()`, `Transport()`, `Protocol()`,
//! `ByteSum(bytes)` (length and sum of a byte string: `bin` in MessagePack),
//! `AskClient(question)` (asks the caller's `Answer` method: a client result),
//! `TriggerNotify(text)` (invokes the caller's `Notify`), and the stream `Counter(n)`. Every
//! request needs the bearer token `interop-token`.

use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use uplink_signalr::HubError;
use uplink_signalr::server::{
    AuthRejection, Authenticator, Hub, HubServer, Identity, ServerOptions,
};

fn hub() -> Hub {
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
        .method("Transport", |caller, (): ()| async move {
            Ok::<_, HubError>(caller.transport().map(|t| t.as_str()))
        })
        .method("Protocol", |caller, (): ()| async move {
            Ok::<_, HubError>(caller.protocol())
        })
        .method("ByteSum", |_c, (bytes,): (ByteString,)| async move {
            let sum: u64 = bytes.0.iter().map(|&b| u64::from(b)).sum();
            Ok::<_, HubError>((bytes.0.len(), sum))
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
        .stream("Counter", |_c, (n,): (u32,)| {
            Ok(futures::stream::iter(0..n)
                .then(|i| async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    i
                })
                .map(Ok::<_, HubError>))
        })
}

/// A byte string: MessagePack `bin` (what the official clients send for a `Uint8Array`).
struct ByteString(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteString, E> {
                Ok(ByteString(v.to_vec()))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    uplink_tls::install_crypto_provider();
    let dir = tempfile::tempdir().context("temporary directory for the CA")?;
    let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
    ca.write_to_dir(dir.path())?;

    let options = ServerOptions {
        authenticator: Some(Authenticator::new(|request| async move {
            match request.bearer.as_deref() {
                Some("interop-token") => Ok(Identity::new("interop")),
                Some(_) => Err(AuthRejection("invalid token".into())),
                None => Err(AuthRejection("a bearer token is required".into())),
            }
        })),
        ..ServerOptions::default()
    };
    let server = HubServer::new(hub(), options);
    let app = Router::new().nest("/hubs/interop", server.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let config = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;

    let line = serde_json::json!({
        "url": format!("https://localhost:{port}/hubs/interop"),
        "ca": dir.path().join("ca.pem"),
    });
    // The one line the test harness reads.
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }

    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    uplink_tls::serve(listener, config, app, stdin_closed).await?;
    server.close_all(Some("server shutting down".into()));
    Ok(())
}
