//! The ASP.NET Core SignalR protocol in Rust: the JSON and MessagePack hub protocols,
//! negotiate, and the WebSockets, Server-Sent Events and long-polling transports, as an axum
//! server and a reconnecting client, both interoperable with the official clients and servers.
//!
//! - [`protocol`]: the hub protocol without I/O — messages, the handshake, and the JSON
//!   (`0x1E` records) and MessagePack (VarInt length prefixes) encodings behind the
//!   [`protocol::HubProtocol`] trait, each with a size limit.
//! - [`server`]: a [`server::HubServer`] whose [`axum::Router`] mounts at any path and serves
//!   negotiate and all three transports, with keep-alive, timeouts, bounded send queues, an
//!   Origin check and an authentication hook; hub methods with results, streams and client
//!   results.
//! - [`client`]: a [`client::HubConnection`] that negotiates, falls back from WebSockets to
//!   Server-Sent Events to long polling, goes through `HTTPS_PROXY`, reconnects forever with
//!   jittered backoff, and moves back up to a faster transport when it works again.
//!
//! A server and a client, over TLS. The crate itself needs only rustls configurations (a
//! client without one trusts the platform's store); the example makes them, and serves HTTPS,
//! with `uplink-tls`, Uplink's own TLS helpers, which are not a dependency of this crate:
//!
//! ```no_run
//! use axum::Router;
//! use uplink_signalr::client::HubConnection;
//! use uplink_signalr::server::{Hub, HubServer, ServerOptions};
//! use uplink_signalr::HubError;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! uplink_tls::install_crypto_provider();
//! let ca = uplink_tls::LoopbackCa::generate(&["localhost"])?;
//!
//! // Server: a hub with one method, mounted at /hubs/demo.
//! let hub = Hub::new()
//!     .method("Add", |_caller, (a, b): (i64, i64)| async move { Ok::<_, HubError>(a + b) });
//! let server = HubServer::new(hub, ServerOptions::default());
//! let app = Router::new().nest("/hubs/demo", server.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let tls = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;
//! tokio::spawn(uplink_tls::serve(listener, tls, app, std::future::pending()));
//!
//! // Client: trusts the demo CA, picks the best transport, reconnects on its own.
//! let trust = uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned());
//! let connection = HubConnection::builder("https://localhost:8443/hubs/demo")
//!     .tls(uplink_tls::client_config(&trust)?)
//!     .start()?;
//! let transport = connection.wait_connected().await;
//! let sum: i64 = connection.invoke("Add", (40, 2)).await?;
//! assert_eq!(sum, 42);
//! println!("42 over {transport}");
//! connection.stop().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod arguments;
mod binary;
pub mod client;
pub mod error;
mod frames;
mod hub_error;
pub mod negotiate;
pub mod protocol;
pub mod server;
mod signal;

pub use binary::Binary;
pub use error::{Error, Result};
pub use hub_error::HubError;
pub use negotiate::Transport;
