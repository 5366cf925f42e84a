//! How long a first probe of a transport waits, and the memory of which transport worked.
//!
//! A proxy that hangs WebSocket upgrades or buffers event streams shows nothing but silence,
//! so the only way to notice it is to stop waiting. The wait of a first probe is sized from the
//! connection the client just made: an upgrade and the handshake's answer take about two round
//! trips plus the server's own work, the TCP and TLS connect before them two or three, so a
//! multiple of the measured connect time ([`FIRST_PROBE_CONNECT_MULTIPLE`]) is ample on an honest
//! link, and never less than [`FIRST_PROBE_FLOOR`], which covers a busy server and a connect that
//! was quick only because it ended at a nearby proxy. A transport known to work (remembered, or
//! the last one on the list, with nothing left to fall back to) and a background re-probe get the
//! whole handshake timeout instead: waiting there costs no downtime.

use std::time::Duration;

use crate::negotiate::Transport;

use super::SkippedTransport;

/// The least a first probe waits for a transport's answer once connected.
pub const FIRST_PROBE_FLOOR: Duration = Duration::from_secs(2);

/// A first probe waits this many times the measured TCP and TLS connect time (if that is more
/// than [`FIRST_PROBE_FLOOR`]).
pub const FIRST_PROBE_CONNECT_MULTIPLE: u32 = 4;

/// The wait of a first probe after a connect that took `connect`: at least the floor, at most
/// the handshake timeout.
pub fn first_probe_wait(connect: Duration, handshake_timeout: Duration) -> Duration {
    connect
        .saturating_mul(FIRST_PROBE_CONNECT_MULTIPLE)
        .max(FIRST_PROBE_FLOOR)
        .min(handshake_timeout)
}

/// How patient one attempt on a transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patience {
    /// A first probe: [`first_probe_wait`] after the connect.
    FirstProbe,
    /// The whole handshake timeout.
    Full,
}

/// The transport that last worked on a route (hub URL and proxy), and why the faster ones did
/// not, as a [`TransportMemory`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// The transport that last completed a handshake.
    pub transport: Transport,
    /// The faster transports that failed then, with their reasons.
    pub failed: Vec<SkippedTransport>,
}

/// Keeps what the client learnt about a route across its restarts (see
/// [`ClientBuilder::transport_memory`](super::ClientBuilder::transport_memory)): the client
/// starts on the remembered transport at once, without probing the faster ones that failed,
/// and re-probes those in the background.
pub trait TransportMemory: Send + Sync {
    /// What is remembered for `route`.
    fn recall(&self, route: &str) -> Option<Remembered>;
    /// Called when what worked on `route` changed. Keep it quick: it runs on the client's task.
    fn remember(&self, route: &str, remembered: &Remembered);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_the_connect_between_the_floor_and_the_handshake_timeout() {
        let timeout = Duration::from_secs(15);
        // Loopback or a LAN: the floor.
        assert_eq!(
            first_probe_wait(Duration::from_millis(3), timeout),
            FIRST_PROBE_FLOOR
        );
        // A satellite link (600 ms round trips, 1.2 s to connect): four times that.
        assert_eq!(
            first_probe_wait(Duration::from_millis(1200), timeout),
            Duration::from_millis(4800)
        );
        // Never past the handshake timeout.
        assert_eq!(first_probe_wait(Duration::from_secs(9), timeout), timeout);
        assert_eq!(
            first_probe_wait(Duration::from_millis(1), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
