//! The accounts room's rows, as both backends read them (the same columns on SQLite and
//! PostgreSQL).

use crate::store::{BillingGrant, LedgerEntry, TxKind};

#[derive(sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) app_id: Option<String>,
    pub(crate) amount: i64,
    pub(crate) kind: String,
    pub(crate) description: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) refund_of: Option<String>,
    pub(crate) grant_id: Option<String>,
    pub(crate) at: i64,
}

impl From<EntryRow> for LedgerEntry {
    fn from(r: EntryRow) -> Self {
        LedgerEntry {
            id: r.id,
            user_id: r.user_id,
            app_id: r.app_id,
            amount: r.amount,
            // The column's CHECK allows only the three.
            kind: TxKind::parse(&r.kind).unwrap_or(TxKind::Debit),
            description: r.description,
            idempotency_key: r.idempotency_key,
            refund_of: r.refund_of,
            grant_id: r.grant_id,
            at: r.at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) app_id: String,
    pub(crate) monthly_limit: Option<i64>,
    pub(crate) granted_at: i64,
}

impl From<GrantRow> for BillingGrant {
    fn from(r: GrantRow) -> Self {
        BillingGrant {
            id: r.id,
            user_id: r.user_id,
            app_id: r.app_id,
            monthly_limit: r.monthly_limit,
            granted_at: r.granted_at,
        }
    }
}
