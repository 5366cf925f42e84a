//! The caps on live-value streams: how many one sign-in (access-token family) and one
//! connector's data sources may have open at once on this hub, across the event-stream route
//! and the app hub. Each open stream holds a [`StreamPermit`]; the counts go down when it is
//! dropped, so a stream cut for any reason frees its place at once.
//!
//! A single hub counts in its memory. The replicas of a cluster ([`LiveStreams::share`]) count
//! in the store instead, so the caps hold for the cluster as a whole: each stream takes a
//! lease there (one write on opening, one on closing), which its replica renews every
//! [`LEASE_RENEW_EVERY`]; the leases of a replica that died lapse [`LEASE_LIFETIME`] after
//! their last renewal, freeing their places.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::HubError;
use crate::store::{LeaseCaps, LeaseOutcome, Store, StreamLease};

/// How often a replica renews the leases of the streams it serves.
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(3);

/// How long a lease lives past its last renewal (seconds): the places of a replica that died
/// are free again at most this long after it stopped renewing.
pub const LEASE_LIFETIME: i64 = 10;

/// The caps in force for one admission (read from the live limits on every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCaps {
    /// Streams of one sign-in (token family).
    pub per_sign_in: usize,
    /// Streams on one connector's data sources.
    pub per_connector: usize,
}

/// Why a stream was refused: which cap it met.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapReached {
    /// The sign-in already holds its share.
    #[error(
        "this sign-in already has {0} live-value streams open, the most the hub allows; close one (or add the tags to an open one) first"
    )]
    SignIn(usize),
    /// The connector already serves its share.
    #[error(
        "the connector serving this data source already has {0} live-value streams open, the most the hub allows; try again later"
    )]
    Connector(usize),
}

/// Why a stream was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A cap is met.
    #[error(transparent)]
    Cap(#[from] CapReached),
    /// The store, which counts a cluster's streams, could not answer.
    #[error(transparent)]
    Store(#[from] HubError),
}

#[derive(Debug, Default)]
struct Counts {
    by_sign_in: HashMap<String, usize>,
    by_connector: HashMap<String, usize>,
}

/// Where a cluster's replica counts its streams: leases in the shared store.
#[derive(Debug)]
struct Leases {
    store: Arc<dyn Store>,
    /// This replica's name on its leases (random, per process).
    replica: String,
    /// Leases of streams that ended, to free in the store.
    released: mpsc::UnboundedSender<i64>,
}

/// The open live-value streams of this hub node, counted per sign-in and per connector (and,
/// for a cluster's replica, across the cluster in the store).
#[derive(Debug, Default)]
pub struct LiveStreams {
    counts: Mutex<Counts>,
    shared: OnceLock<Leases>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveStreams {
    /// Counts this replica's streams with every other replica's on `store` from now on: the
    /// caps then hold for the cluster. Starts the task that renews this replica's leases and
    /// frees those of ended streams; it ends with the last [`Arc`] of `self`. Call once, on a
    /// runtime, before any stream opens.
    pub fn share(self: &Arc<Self>, store: Arc<dyn Store>) {
        let (released, freed) = mpsc::unbounded_channel();
        let replica = format!("{:016x}", rand::random::<u64>());
        let leases = Leases {
            store: store.clone(),
            replica: replica.clone(),
            released,
        };
        if self.shared.set(leases).is_ok() {
            tokio::spawn(keep_leases(store, replica, freed));
        }
    }

    /// A place for one more stream of `family_id` on `connector_id`, unless a cap is met.
    ///
    /// # Errors
    /// [`Refused::Cap`] naming the cap; [`Refused::Store`] when the store (a cluster's count)
    /// cannot answer.
    pub async fn admit(
        self: &Arc<Self>,
        family_id: &str,
        connector_id: &str,
        caps: StreamCaps,
    ) -> Result<StreamPermit, Refused> {
        let lease = match self.shared.get() {
            None => None,
            Some(leases) => {
                let now = crate::clock::now();
                let outcome = leases
                    .store
                    .lease_stream(
                        StreamLease {
                            replica: &leases.replica,
                            family_id,
                            connector_id,
                        },
                        LeaseCaps {
                            per_sign_in: caps.per_sign_in,
                            per_connector: caps.per_connector,
                        },
                        now,
                        now + LEASE_LIFETIME,
                    )
                    .await?;
                match outcome {
                    LeaseOutcome::Leased(id) => Some(id),
                    LeaseOutcome::SignInFull => {
                        return Err(CapReached::SignIn(caps.per_sign_in).into());
                    }
                    LeaseOutcome::ConnectorFull => {
                        return Err(CapReached::Connector(caps.per_connector).into());
                    }
                }
            }
        };
        let mut permit = self.admit_here(family_id, connector_id, caps, lease.is_some())?;
        permit.lease = lease;
        Ok(permit)
    }

    /// Counts the stream in this node's memory; checks the caps there unless the store did.
    fn admit_here(
        self: &Arc<Self>,
        family_id: &str,
        connector_id: &str,
        caps: StreamCaps,
        checked: bool,
    ) -> Result<StreamPermit, CapReached> {
        let mut counts = lock(&self.counts);
        let of_sign_in = counts.by_sign_in.get(family_id).copied().unwrap_or(0);
        if !checked && of_sign_in >= caps.per_sign_in {
            return Err(CapReached::SignIn(caps.per_sign_in));
        }
        let of_connector = counts.by_connector.get(connector_id).copied().unwrap_or(0);
        if !checked && of_connector >= caps.per_connector {
            return Err(CapReached::Connector(caps.per_connector));
        }
        counts
            .by_sign_in
            .insert(family_id.to_owned(), of_sign_in + 1);
        counts
            .by_connector
            .insert(connector_id.to_owned(), of_connector + 1);
        Ok(StreamPermit {
            streams: self.clone(),
            family_id: family_id.to_owned(),
            connector_id: connector_id.to_owned(),
            lease: None,
        })
    }

    /// How many streams `family_id` has open.
    pub fn of_sign_in(&self, family_id: &str) -> usize {
        lock(&self.counts)
            .by_sign_in
            .get(family_id)
            .copied()
            .unwrap_or(0)
    }

    /// How many streams are open on `connector_id`'s data sources.
    pub fn of_connector(&self, connector_id: &str) -> usize {
        lock(&self.counts)
            .by_connector
            .get(connector_id)
            .copied()
            .unwrap_or(0)
    }

    fn release(&self, family_id: &str, connector_id: &str, lease: Option<i64>) {
        {
            let mut counts = lock(&self.counts);
            decrement(&mut counts.by_sign_in, family_id);
            decrement(&mut counts.by_connector, connector_id);
        }
        if let (Some(id), Some(leases)) = (lease, self.shared.get()) {
            // Freed by the lease keeper; were it gone, the lease lapses unrenewed.
            let _ = leases.released.send(id);
        }
    }
}

/// Frees the leases of ended streams as they end, and renews this replica's others every
/// [`LEASE_RENEW_EVERY`], until every sender is gone. A lease the store could not free is
/// tried again before the next renewal, so it is never renewed.
async fn keep_leases(
    store: Arc<dyn Store>,
    replica: String,
    mut freed: mpsc::UnboundedReceiver<i64>,
) {
    let mut unfreed: Vec<i64> = Vec::new();
    let mut renew = tokio::time::interval(LEASE_RENEW_EVERY);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let renewing = tokio::select! {
            id = freed.recv() => match id {
                Some(id) => {
                    unfreed.push(id);
                    while let Ok(id) = freed.try_recv() {
                        unfreed.push(id);
                    }
                    false
                }
                None => break,
            },
            _ = renew.tick() => true,
        };
        if !unfreed.is_empty() {
            match store.release_stream_leases(&unfreed).await {
                Ok(()) => unfreed.clear(),
                Err(e) => {
                    tracing::warn!(error = %e, leases = unfreed.len(), "live-stream leases not freed yet; trying again");
                    continue;
                }
            }
        }
        if renewing {
            let now = crate::clock::now();
            if let Err(e) = store
                .renew_stream_leases(&replica, now, now + LEASE_LIFETIME)
                .await
            {
                tracing::warn!(error = %e, "live-stream leases not renewed; trying again");
            }
        }
    }
}

/// Counts down, forgetting a key at zero so the maps hold only what is open.
fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// One open stream's place; released when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    streams: Arc<LiveStreams>,
    family_id: String,
    connector_id: String,
    /// Its lease in the store, for a cluster's replica.
    lease: Option<i64>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.streams
            .release(&self.family_id, &self.connector_id, self.lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: StreamCaps = StreamCaps {
        per_sign_in: 2,
        per_connector: 3,
    };

    /// The cap a refusal names.
    fn cap(refused: Refused) -> CapReached {
        match refused {
            Refused::Cap(cap) => cap,
            Refused::Store(e) => panic!("a cap, not {e}"),
        }
    }

    #[tokio::test]
    async fn each_cap_refuses_one_more_and_a_dropped_stream_frees_its_place() {
        let streams = Arc::new(LiveStreams::default());
        let a1 = streams.admit("fam_a", "con", CAPS).await.unwrap();
        let _a2 = streams.admit("fam_a", "con", CAPS).await.unwrap();
        assert_eq!(
            cap(streams.admit("fam_a", "con", CAPS).await.unwrap_err()),
            CapReached::SignIn(2)
        );
        let _b1 = streams.admit("fam_b", "con", CAPS).await.unwrap();
        assert_eq!(
            cap(streams.admit("fam_c", "con", CAPS).await.unwrap_err()),
            CapReached::Connector(3),
            "the connector's cap counts every sign-in"
        );
        assert!(streams.admit("fam_c", "other", CAPS).await.is_ok());
        drop(a1);
        assert_eq!(streams.of_sign_in("fam_a"), 1);
        assert_eq!(streams.of_connector("con"), 2);
        let _a3 = streams.admit("fam_a", "con", CAPS).await.unwrap();
        assert_eq!(streams.of_connector("con"), 3);
    }

    /// Two replicas on one store: the caps count the streams of both, and an ended stream's
    /// place is free again on the other.
    #[tokio::test]
    async fn replicas_sharing_a_store_hold_the_caps_together() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            crate::hub::open_store(&dir.path().join("hub"))
                .await
                .unwrap(),
        );
        let one = Arc::new(LiveStreams::default());
        let two = Arc::new(LiveStreams::default());
        one.share(store.clone());
        two.share(store.clone());
        let a1 = one.admit("fam_a", "con", CAPS).await.unwrap();
        let _a2 = two.admit("fam_a", "con", CAPS).await.unwrap();
        assert_eq!(
            cap(two.admit("fam_a", "con", CAPS).await.unwrap_err()),
            CapReached::SignIn(2),
            "one on each replica fills the sign-in's cap of two"
        );
        let _b1 = one.admit("fam_b", "con", CAPS).await.unwrap();
        assert_eq!(
            cap(two.admit("fam_c", "con", CAPS).await.unwrap_err()),
            CapReached::Connector(3)
        );
        drop(a1);
        // Freed by the replica's lease keeper, a moment later.
        let mut tries = 0;
        let _a3 = loop {
            match two.admit("fam_a", "con", CAPS).await {
                Ok(permit) => break permit,
                Err(refused) => {
                    assert_eq!(cap(refused), CapReached::SignIn(2));
                    tries += 1;
                    assert!(tries < 500, "the ended stream's place was never freed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        assert_eq!(two.of_sign_in("fam_a"), 2, "this replica's own count");
    }

    #[tokio::test]
    async fn nothing_is_kept_for_what_closed() {
        let streams = Arc::new(LiveStreams::default());
        drop(streams.admit("fam", "con", CAPS).await.unwrap());
        let counts = lock(&streams.counts);
        assert!(counts.by_sign_in.is_empty() && counts.by_connector.is_empty());
    }
}
