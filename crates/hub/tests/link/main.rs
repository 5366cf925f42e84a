//! The connector link end to end: a real hub over real TLS on loopback, and a connector on our
//! SignalR client, over each transport — registration, relayed answers in chunks with
//! backpressure, cancellation, timeouts, replaced links, token renewal, the cap on connector
//! links, and grants pushed both ways.

mod harness;

mod admission;
mod grants;
mod limit;
mod relay;
