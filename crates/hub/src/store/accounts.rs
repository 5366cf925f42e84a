//! Accounts and their ledger: each user's balance in integer minor units of the hub's one
//! currency, every movement an append-only ledger row, and the user's consent to an app
//! debiting the account (`account.debit`) with the monthly limit they chose.
//!
//! Amounts are `i64` minor units (cents for EUR): never floats. The balance is kept in the same
//! database transaction as the ledger row that changes it, so the two never disagree.

use async_trait::async_trait;

use crate::error::Result;

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// Money out of the account: an app's charge, or the operator's.
    Debit,
    /// Money back from an earlier debit.
    Refund,
    /// Money in, by the operator.
    Credit,
}

impl TxKind {
    /// Its name in the ledger and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Debit => "debit",
            TxKind::Refund => "refund",
            TxKind::Credit => "credit",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debit" => Some(TxKind::Debit),
            "refund" => Some(TxKind::Refund),
            "credit" => Some(TxKind::Credit),
            _ => None,
        }
    }
}

/// One ledger row. Rows are never changed or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Transaction id (`txn_…`).
    pub id: String,
    /// Whose account.
    pub user_id: String,
    /// The app that made it; None for the operator's.
    pub app_id: Option<String>,
    /// Minor units, always positive; `kind` says which way.
    pub amount: i64,
    /// Debit, refund or credit.
    pub kind: TxKind,
    /// What it was for, as the app or operator said.
    pub description: String,
    /// The app's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// For a refund: the debit it refunds.
    pub refund_of: Option<String>,
    /// For an app's debit: the billing grant it was made under.
    pub grant_id: Option<String>,
    /// When (Unix seconds).
    pub at: i64,
}

/// A user's consent to an app debiting their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingGrant {
    /// Grant id (`bil_…`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The app.
    pub app_id: String,
    /// The most the app may debit per calendar month (UTC), in minor units; None: no limit,
    /// which only the user's explicit choice sets.
    pub monthly_limit: Option<i64>,
    /// When given.
    pub granted_at: i64,
}

/// What an app may still spend of a user's account this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// The grant.
    pub grant: BillingGrant,
    /// Debited this period, less refunds made this period.
    pub spent: i64,
    /// The account's balance.
    pub balance: i64,
}

impl Allowance {
    /// What is left of the limit (None: no limit).
    pub fn limit_remaining(&self) -> Option<i64> {
        self.grant
            .monthly_limit
            .map(|limit| (limit - self.spent).max(0))
    }

    /// What the app may debit now: the smaller of the balance and what is left of the limit.
    pub fn available(&self) -> i64 {
        self.limit_remaining()
            .map_or(self.balance, |left| left.min(self.balance))
    }
}

/// An app's debit, as the store is asked to make it.
#[derive(Debug, Clone)]
pub struct DebitRequest {
    /// Whose account.
    pub user_id: String,
    /// The app charging.
    pub app_id: String,
    /// The token family the request's access token belongs to: it must be live.
    pub family_id: String,
    /// Minor units, > 0.
    pub amount: i64,
    /// What for.
    pub description: String,
    /// The app's `Idempotency-Key`, if any: a repeat returns the first result.
    pub idempotency_key: Option<String>,
    /// Now (Unix seconds).
    pub now: i64,
    /// Start of the limit's period (the calendar month, UTC).
    pub period_start: i64,
}

/// What became of a debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebitOutcome {
    /// Debited now.
    Done(LedgerEntry),
    /// The idempotency key was used before for the same debit: its first result.
    Repeated(LedgerEntry),
    /// The idempotency key was used before for a different amount or description.
    KeyReused,
    /// No live `account.debit` grant (never given, revoked) or the sign-in was revoked.
    NoGrant,
    /// The balance is too low.
    InsufficientFunds {
        /// The account's balance.
        balance: i64,
        /// What is left of the limit (None: no limit).
        limit_remaining: Option<i64>,
    },
    /// The user's monthly limit would be passed.
    LimitReached {
        /// What is left of the limit.
        limit_remaining: i64,
        /// The account's balance.
        balance: i64,
    },
}

/// An app's refund of one of its debits.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// Whose account.
    pub user_id: String,
    /// The app refunding: it must be the one that debited.
    pub app_id: String,
    /// The debit.
    pub debit_id: String,
    /// Minor units; None: whatever of the debit is not refunded yet.
    pub amount: Option<i64>,
    /// The app's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// Now.
    pub now: i64,
    /// Debits made before this are past the refund window.
    pub window_start: i64,
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Refunded now (or, for a repeated idempotency key, earlier).
    Done(LedgerEntry),
    /// No such debit of this app and user.
    NotFound,
    /// The debit is older than the refund window.
    TooLate,
    /// More than is left to refund.
    TooMuch {
        /// What is left to refund.
        refundable: i64,
    },
}

/// The accounts room.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The operator's credit (money in) or debit (money out, never below zero) of `user_id`'s
    /// account. None: the debit would overdraw it.
    async fn operator_entry(
        &self,
        user_id: &str,
        kind: TxKind,
        amount: i64,
        description: &str,
        now: i64,
    ) -> Result<Option<LedgerEntry>>;
    /// The account's balance (0 for an account never credited).
    async fn balance(&self, user_id: &str) -> Result<i64>;
    /// Records the user's consent to `app_id` debiting them, replacing a live one's limit.
    async fn grant_billing(
        &self,
        user_id: &str,
        app_id: &str,
        monthly_limit: Option<i64>,
        now: i64,
    ) -> Result<BillingGrant>;
    /// Changes a live grant's limit; false if there is none.
    async fn set_billing_limit(
        &self,
        user_id: &str,
        app_id: &str,
        monthly_limit: Option<i64>,
    ) -> Result<bool>;
    /// Revokes the live grant; false if there was none. Committed before it returns: no
    /// debit starting afterwards succeeds.
    async fn revoke_billing(&self, user_id: &str, app_id: &str, now: i64) -> Result<bool>;
    /// The live grant of (user, app) with what was spent since `period_start`, and the balance.
    async fn allowance(
        &self,
        user_id: &str,
        app_id: &str,
        period_start: i64,
    ) -> Result<Option<Allowance>>;
    /// Every live billing grant of a user, with this period's spending.
    async fn allowances_of(&self, user_id: &str, period_start: i64) -> Result<Vec<Allowance>>;
    /// An app's debit, in one transaction: idempotency, the live grant and sign-in, the
    /// balance and the limit checked, the row appended and the balance lowered.
    async fn debit(&self, request: &DebitRequest) -> Result<DebitOutcome>;
    /// An app's refund of its own debit, in one transaction.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome>;
    /// A user's ledger rows (only `app_id`'s, if given), oldest first.
    async fn transactions(&self, user_id: &str, app_id: Option<&str>) -> Result<Vec<LedgerEntry>>;
}
