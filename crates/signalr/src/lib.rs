//! The ASP.NET Core SignalR protocol in Rust: the JSON hub protocol, negotiate, and the
//! WebSockets, Server-Sent Events and long-polling transports, as an axum server and a
//! reconnecting client, both speaking to the official clients and servers.

mod arguments;
pub mod client;
pub mod error;
mod frames;
mod hub_error;
pub mod negotiate;
pub mod protocol;

pub use error::{Error, Result};
pub use hub_error::HubError;
pub use negotiate::Transport;
pub mod server;
mod signal;
