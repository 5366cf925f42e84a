//! The live-stream leases room: the places open live-value streams hold under their caps,
//! counted across every hub process on the store, so the caps hold for a cluster as a whole.
//! A replica renews its leases while it lives; the leases of one that died lapse on their own.

use async_trait::async_trait;

use crate::error::Result;

/// One stream's place, as a replica asks for it.
#[derive(Debug, Clone, Copy)]
pub struct StreamLease<'a> {
    /// The replica serving the stream (random, per process): it renews the lease.
    pub replica: &'a str,
    /// The stream's sign-in (token family).
    pub family_id: &'a str,
    /// The connector whose data source it reads.
    pub connector_id: &'a str,
}

/// The caps a lease is taken under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseCaps {
    /// Live leases of one sign-in.
    pub per_sign_in: usize,
    /// Live leases on one connector's data sources.
    pub per_connector: usize,
}

/// What taking a lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The place is held: the lease's id, to renew and release it.
    Leased(i64),
    /// The sign-in already holds its cap of live leases.
    SignInFull,
    /// The connector already serves its cap of live leases.
    ConnectorFull,
}

/// The live-stream leases room.
#[async_trait]
pub trait StreamLeaseStore: Send + Sync {
    /// Takes a place for one more stream, valid until `expires_at`, unless the leases live at
    /// `now` (expiring after it) already reach a cap. Racing calls on any process take turns,
    /// so a cap is never exceeded.
    async fn lease_stream(
        &self,
        lease: StreamLease<'_>,
        caps: LeaseCaps,
        now: i64,
        expires_at: i64,
    ) -> Result<LeaseOutcome>;
    /// Extends every lease of `replica` to `expires_at` and drops every lease (anyone's) that
    /// expired at `now` or before. Returns how many of `replica`'s leases were extended.
    async fn renew_stream_leases(&self, replica: &str, now: i64, expires_at: i64) -> Result<u64>;
    /// Frees the leases `ids` (those already gone are ignored).
    async fn release_stream_leases(&self, ids: &[i64]) -> Result<()>;
}
