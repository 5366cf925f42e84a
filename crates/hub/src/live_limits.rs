//! The limits an operator can change while the hub serves (`uplink hub serve` reloads them on
//! SIGHUP or when its configuration file changes): request body sizes and time, the HTTPS
//! server's connection and header limits, the cap on connector links, the time a link has to
//! register and the caps on live-value streams. Each request or
//! connection reads the limits in force when it arrives; nothing already admitted is cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use uplink_tls::{ServeLimits, ServeLimitsSlot};

use crate::body_limit::BodyLimits;
use crate::hub::HubConfig;
use crate::live_streams::StreamCaps;

/// The hub's replaceable limits, seeded from its [`HubConfig`].
#[derive(Debug)]
pub struct LiveLimits {
    bodies: watch::Sender<BodyLimits>,
    serving: Arc<ServeLimitsSlot>,
    max_connectors: AtomicUsize,
    register_timeout_ms: AtomicU64,
    live_streams: watch::Sender<StreamCaps>,
}

/// One set of the limits [`LiveLimits`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Request bodies.
    pub bodies: BodyLimits,
    /// The HTTPS server.
    pub serving: ServeLimits,
    /// Connector links served at once.
    pub max_connectors: usize,
    /// How long a connector link may stay open without registering.
    pub register_timeout: Duration,
    /// Live-value streams open at once per sign-in and per connector.
    pub live_streams: StreamCaps,
}

impl Limits {
    /// The limits `config` starts with.
    pub fn of(config: &HubConfig) -> Self {
        Self {
            bodies: config.bodies,
            serving: config.serving.clone(),
            max_connectors: config.max_connectors,
            register_timeout: config.register_timeout,
            live_streams: StreamCaps {
                per_sign_in: config.max_live_streams_per_sign_in,
                per_connector: config.max_live_streams_per_connector,
            },
        }
    }
}

impl LiveLimits {
    /// Holds `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            bodies: watch::Sender::new(limits.bodies),
            serving: Arc::new(ServeLimitsSlot::new(limits.serving)),
            max_connectors: AtomicUsize::new(limits.max_connectors),
            register_timeout_ms: AtomicU64::new(millis(limits.register_timeout)),
            live_streams: watch::Sender::new(limits.live_streams),
        }
    }

    /// The body limits in force.
    pub fn bodies(&self) -> BodyLimits {
        *self.bodies.borrow()
    }

    /// The HTTPS server's limits, as the server reads them for each new connection.
    pub fn serving(&self) -> Arc<ServeLimitsSlot> {
        self.serving.clone()
    }

    /// The cap on connector links in force.
    pub fn max_connectors(&self) -> usize {
        self.max_connectors.load(Ordering::Relaxed)
    }

    /// The time a connector link has to register, for links opening now.
    pub fn register_timeout(&self) -> Duration {
        Duration::from_millis(self.register_timeout_ms.load(Ordering::Relaxed))
    }

    /// The caps on live-value streams in force.
    pub fn live_streams(&self) -> StreamCaps {
        *self.live_streams.borrow()
    }

    /// Every limit in force.
    pub fn current(&self) -> Limits {
        Limits {
            bodies: self.bodies(),
            serving: self.serving.current(),
            max_connectors: self.max_connectors(),
            register_timeout: self.register_timeout(),
            live_streams: self.live_streams(),
        }
    }

    /// Puts `limits` in force for what arrives from now on.
    pub fn replace(&self, limits: Limits) {
        self.bodies.send_replace(limits.bodies);
        self.serving.replace(limits.serving);
        self.max_connectors
            .store(limits.max_connectors, Ordering::Relaxed);
        self.register_timeout_ms
            .store(millis(limits.register_timeout), Ordering::Relaxed);
        self.live_streams.send_replace(limits.live_streams);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_limit_is_the_one_read_next() {
        let config = HubConfig::new("https://hub.test");
        let live = LiveLimits::new(Limits::of(&config));
        assert_eq!(live.current(), Limits::of(&config));
        let mut lower = Limits::of(&config);
        lower.bodies.api_bytes = 10;
        lower.serving.max_connections = 3;
        lower.max_connectors = 2;
        lower.live_streams.per_sign_in = 4;
        lower.register_timeout = Duration::from_secs(5);
        live.replace(lower.clone());
        assert_eq!(live.bodies().api_bytes, 10);
        assert_eq!(live.serving().current().max_connections, 3);
        assert_eq!(live.max_connectors(), 2);
        assert_eq!(live.live_streams().per_sign_in, 4);
        assert_eq!(live.register_timeout(), Duration::from_secs(5));
        assert_eq!(live.current(), lower);
    }
}
