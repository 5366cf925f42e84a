//! The hub's store: users, apps, connectors, data sources, grants, OAuth2 artefacts, sessions,
//! token keys, the change feed, the audit log, the idempotency keys of writes and the leases of
//! live-value streams.
//!
//! It is split into rooms, one trait per aggregate, each in its own file with its row types
//! (`users.rs`: [`UserStore`], `apps.rs`: [`AppStore`], …). [`Store`] is their sum: what the
//! hub holds as `Arc<dyn Store>`. Call sites bring the room traits into scope with
//! `use crate::store::prelude::*`. Two engines implement every room: SQLite (`sqlite/`, the
//! default, one file in the data folder) and PostgreSQL (`postgres/`, shared by the replicas
//! of a cluster); both pass the same conformance suite (`conformance.rs`).
//!
//! Every method that answers a security question reads the store afresh: nothing here caches,
//! so a revoke committed by one call is seen by the next check.

mod accounts;
mod apps;
mod audit;
mod authorization;
mod changes;
#[cfg(test)]
mod conformance;
mod connectors;
mod device_flow;
mod families;
mod grants;
mod login_sessions;
mod postgres;
mod rows;
mod sqlite;
mod stream_leases;
mod token_keys;
mod users;
mod writes;

pub use accounts::{
    AccountStore, Allowance, BillingGrant, DebitOutcome, DebitRequest, LedgerEntry, RefundOutcome,
    RefundRequest, TxKind,
};
pub use apps::{App, AppStore};
pub use audit::{AuditEvent, AuditStore};
pub use authorization::{AuthorizationRequest, AuthorizationStore, CodeGrant, CodeRedemption};
pub use changes::{ChangeBatch, ChangeFeedStore};
pub use connectors::{
    Connector, ConnectorClaim, ConnectorGrant, ConnectorStore, DataSource, LinkAuthority,
};
pub use device_flow::{DeviceAuthorization, DeviceFlowStore, DevicePoll};
pub use families::{Rotation, SignInView, TokenFamily, TokenFamilyStore};
pub use grants::{ActiveGrant, GrantStore, GrantView, RevokedApp};
pub use login_sessions::{LoginSession, LoginSessionStore};
pub use postgres::{DatabaseUrl, PG_CHANGE_POLL, PostgresStore};
pub use sqlite::{CHANGE_POLL, SqliteStore};
pub use stream_leases::{LeaseCaps, LeaseOutcome, StreamLease, StreamLeaseStore};
pub use token_keys::{TokenKeyRecord, TokenKeyStore};
pub use users::{User, UserStore};
pub use writes::{WriteClaim, WriteKey, WriteStore};

/// The room traits and [`Store`], for call sites: `use crate::store::prelude::*;` (or
/// `uplink_hub::store::prelude::*` outside the crate) makes every store method callable.
pub mod prelude {
    pub use super::{
        AccountStore, AppStore, AuditStore, AuthorizationStore, ChangeFeedStore, ConnectorStore,
        DeviceFlowStore, GrantStore, LoginSessionStore, Store, StreamLeaseStore, TokenFamilyStore,
        TokenKeyStore, UserStore, WriteStore,
    };
}

/// Where the hub keeps its state: every room. SQLite ([`SqliteStore`]) or PostgreSQL
/// ([`PostgresStore`]). Implemented for every type that implements all the rooms.
pub trait Store:
    UserStore
    + AccountStore
    + AppStore
    + ConnectorStore
    + GrantStore
    + AuthorizationStore
    + TokenFamilyStore
    + DeviceFlowStore
    + LoginSessionStore
    + TokenKeyStore
    + ChangeFeedStore
    + AuditStore
    + WriteStore
    + StreamLeaseStore
    + std::fmt::Debug
    + 'static
{
}

impl<T> Store for T where
    T: UserStore
        + AccountStore
        + AppStore
        + ConnectorStore
        + GrantStore
        + AuthorizationStore
        + TokenFamilyStore
        + DeviceFlowStore
        + LoginSessionStore
        + TokenKeyStore
        + ChangeFeedStore
        + AuditStore
        + WriteStore
        + StreamLeaseStore
        + std::fmt::Debug
        + 'static
{
}

/// Splits a space-separated scope string.
pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
