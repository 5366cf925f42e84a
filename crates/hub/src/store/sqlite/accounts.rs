//! The accounts room on SQLite. Every movement is one transaction on the single writer
//! connection: the checks (grant, sign-in, balance, limit, idempotency) and the ledger row and
//! balance change commit together, so concurrent debits are serialised and never overdraw.

use async_trait::async_trait;

use super::{SqliteStore, is_unique_violation};
use crate::error::{HubError, Result};
use crate::secret::public_id;
use crate::store::rows::accounts::{EntryRow, GrantRow};
use crate::store::{
    AccountStore, Allowance, BillingGrant, DebitOutcome, DebitRequest, LedgerEntry, RefundOutcome,
    RefundRequest, TxKind,
};

/// `SELECT` of a whole ledger row, then `$rest` (a literal: the SQL stays static text).
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, app_id, amount, kind, description, idempotency_key, refund_of, \
             grant_id, at FROM ledger ",
            $rest
        )
    };
}

async fn append(conn: &mut sqlx::SqliteConnection, e: &LedgerEntry) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger (id, user_id, app_id, amount, kind, description, idempotency_key, \
         refund_of, grant_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.id)
    .bind(&e.user_id)
    .bind(&e.app_id)
    .bind(e.amount)
    .bind(e.kind.as_str())
    .bind(&e.description)
    .bind(&e.idempotency_key)
    .bind(&e.refund_of)
    .bind(&e.grant_id)
    .bind(e.at)
    .execute(&mut *conn)
    .await?;
    let delta = match e.kind {
        TxKind::Debit => -e.amount,
        TxKind::Refund | TxKind::Credit => e.amount,
    };
    // The CHECK (balance >= 0) is the last guard: a debit that would overdraw fails here.
    sqlx::query("INSERT OR IGNORE INTO accounts (user_id, balance) VALUES (?, 0)")
        .bind(&e.user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE accounts SET balance = balance + ? WHERE user_id = ?")
        .bind(delta)
        .bind(&e.user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn balance_on(conn: &mut sqlx::SqliteConnection, user_id: &str) -> Result<i64> {
    let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM accounts WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(balance.unwrap_or(0))
}

async fn live_grant(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    app_id: &str,
) -> Result<Option<BillingGrant>> {
    let row: Option<GrantRow> = sqlx::query_as(
        "SELECT id, user_id, app_id, monthly_limit, granted_at FROM billing_grants \
         WHERE user_id = ? AND app_id = ? AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(app_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(BillingGrant::from))
}

/// Debits less refunds of (user, app) since `period_start`.
async fn spent_on(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    app_id: &str,
    period_start: i64,
) -> Result<i64> {
    let spent: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(CASE kind WHEN 'debit' THEN amount WHEN 'refund' THEN -amount ELSE 0 END), 0) \
         FROM ledger WHERE user_id = ? AND app_id = ? AND at >= ?",
    )
    .bind(user_id)
    .bind(app_id)
    .bind(period_start)
    .fetch_one(conn)
    .await?;
    Ok(spent.max(0))
}

async fn by_key(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    app_id: &str,
    kind: TxKind,
    key: &str,
) -> Result<Option<LedgerEntry>> {
    let row: Option<EntryRow> = sqlx::query_as(select_entries!(
        "WHERE user_id = ? AND app_id = ? AND kind = ? AND idempotency_key = ?"
    ))
    .bind(user_id)
    .bind(app_id)
    .bind(kind.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(LedgerEntry::from))
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn operator_entry(
        &self,
        user_id: &str,
        kind: TxKind,
        amount: i64,
        description: &str,
        now: i64,
    ) -> Result<Option<LedgerEntry>> {
        if amount <= 0 || kind == TxKind::Refund {
            return Err(HubError::Invalid(
                "the operator credits or debits a positive amount".into(),
            ));
        }
        let mut tx = self.writer.begin().await?;
        if kind == TxKind::Debit && balance_on(&mut tx, user_id).await? < amount {
            return Ok(None);
        }
        let entry = LedgerEntry {
            id: public_id("txn"),
            user_id: user_id.to_owned(),
            app_id: None,
            amount,
            kind,
            description: description.to_owned(),
            idempotency_key: None,
            refund_of: None,
            grant_id: None,
            at: now,
        };
        append(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    async fn balance(&self, user_id: &str) -> Result<i64> {
        let mut conn = self.reader.acquire().await?;
        balance_on(&mut conn, user_id).await
    }

    async fn grant_billing(
        &self,
        user_id: &str,
        app_id: &str,
        monthly_limit: Option<i64>,
        now: i64,
    ) -> Result<BillingGrant> {
        let mut tx = self.writer.begin().await?;
        if let Some(mut live) = live_grant(&mut tx, user_id, app_id).await? {
            sqlx::query("UPDATE billing_grants SET monthly_limit = ? WHERE id = ?")
                .bind(monthly_limit)
                .bind(&live.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            live.monthly_limit = monthly_limit;
            return Ok(live);
        }
        let grant = BillingGrant {
            id: public_id("bil"),
            user_id: user_id.to_owned(),
            app_id: app_id.to_owned(),
            monthly_limit,
            granted_at: now,
        };
        sqlx::query(
            "INSERT INTO billing_grants (id, user_id, app_id, monthly_limit, granted_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&grant.id)
        .bind(user_id)
        .bind(app_id)
        .bind(monthly_limit)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(grant)
    }

    async fn set_billing_limit(
        &self,
        user_id: &str,
        app_id: &str,
        monthly_limit: Option<i64>,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE billing_grants SET monthly_limit = ? WHERE user_id = ? AND app_id = ? AND revoked_at IS NULL",
        )
        .bind(monthly_limit)
        .bind(user_id)
        .bind(app_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn revoke_billing(&self, user_id: &str, app_id: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE billing_grants SET revoked_at = ? WHERE user_id = ? AND app_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(app_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn allowance(
        &self,
        user_id: &str,
        app_id: &str,
        period_start: i64,
    ) -> Result<Option<Allowance>> {
        let mut conn = self.reader.acquire().await?;
        let Some(grant) = live_grant(&mut conn, user_id, app_id).await? else {
            return Ok(None);
        };
        let spent = spent_on(&mut conn, user_id, app_id, period_start).await?;
        let balance = balance_on(&mut conn, user_id).await?;
        Ok(Some(Allowance {
            grant,
            spent,
            balance,
        }))
    }

    async fn allowances_of(&self, user_id: &str, period_start: i64) -> Result<Vec<Allowance>> {
        let mut conn = self.reader.acquire().await?;
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT id, user_id, app_id, monthly_limit, granted_at FROM billing_grants \
             WHERE user_id = ? AND revoked_at IS NULL ORDER BY granted_at, id",
        )
        .bind(user_id)
        .fetch_all(&mut *conn)
        .await?;
        let balance = balance_on(&mut conn, user_id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let spent = spent_on(&mut conn, user_id, &row.app_id, period_start).await?;
            out.push(Allowance {
                grant: row.into(),
                spent,
                balance,
            });
        }
        Ok(out)
    }

    async fn debit(&self, r: &DebitRequest) -> Result<DebitOutcome> {
        let mut tx = self.writer.begin().await?;
        if let Some(key) = &r.idempotency_key
            && let Some(first) = by_key(&mut tx, &r.user_id, &r.app_id, TxKind::Debit, key).await?
        {
            return Ok(
                if first.amount == r.amount && first.description == r.description {
                    DebitOutcome::Repeated(first)
                } else {
                    DebitOutcome::KeyReused
                },
            );
        }
        let family_live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM token_families WHERE id = ? AND user_id = ? AND app_id = ? AND revoked_at IS NULL)",
        )
        .bind(&r.family_id)
        .bind(&r.user_id)
        .bind(&r.app_id)
        .fetch_one(&mut *tx)
        .await?;
        let grant = match live_grant(&mut tx, &r.user_id, &r.app_id).await? {
            Some(grant) if family_live => grant,
            _ => return Ok(DebitOutcome::NoGrant),
        };
        let balance = balance_on(&mut tx, &r.user_id).await?;
        let spent = spent_on(&mut tx, &r.user_id, &r.app_id, r.period_start).await?;
        let limit_remaining = grant.monthly_limit.map(|l| (l - spent).max(0));
        if let Some(left) = limit_remaining
            && r.amount > left
        {
            return Ok(DebitOutcome::LimitReached {
                limit_remaining: left,
                balance,
            });
        }
        if r.amount > balance {
            return Ok(DebitOutcome::InsufficientFunds {
                balance,
                limit_remaining,
            });
        }
        let entry = LedgerEntry {
            id: public_id("txn"),
            user_id: r.user_id.clone(),
            app_id: Some(r.app_id.clone()),
            amount: r.amount,
            kind: TxKind::Debit,
            description: r.description.clone(),
            idempotency_key: r.idempotency_key.clone(),
            refund_of: None,
            grant_id: Some(grant.id),
            at: r.now,
        };
        append(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(DebitOutcome::Done(entry))
    }

    async fn refund(&self, r: &RefundRequest) -> Result<RefundOutcome> {
        let mut tx = self.writer.begin().await?;
        if let Some(key) = &r.idempotency_key
            && let Some(first) = by_key(&mut tx, &r.user_id, &r.app_id, TxKind::Refund, key).await?
        {
            return Ok(RefundOutcome::Done(first));
        }
        let debit: Option<EntryRow> = sqlx::query_as(select_entries!(
            "WHERE id = ? AND user_id = ? AND app_id = ? AND kind = 'debit'"
        ))
        .bind(&r.debit_id)
        .bind(&r.user_id)
        .bind(&r.app_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(debit) = debit.map(LedgerEntry::from) else {
            return Ok(RefundOutcome::NotFound);
        };
        if debit.at < r.window_start {
            return Ok(RefundOutcome::TooLate);
        }
        let refunded: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE kind = 'refund' AND refund_of = ?",
        )
        .bind(&debit.id)
        .fetch_one(&mut *tx)
        .await?;
        let refundable = debit.amount - refunded;
        let amount = r.amount.unwrap_or(refundable);
        if amount <= 0 || amount > refundable {
            return Ok(RefundOutcome::TooMuch { refundable });
        }
        let entry = LedgerEntry {
            id: public_id("txn"),
            user_id: r.user_id.clone(),
            app_id: Some(r.app_id.clone()),
            amount,
            kind: TxKind::Refund,
            description: format!("refund of {}", debit.id),
            idempotency_key: r.idempotency_key.clone(),
            refund_of: Some(debit.id),
            grant_id: debit.grant_id,
            at: r.now,
        };
        append(&mut tx, &entry).await.map_err(|e| match e {
            HubError::Store(ref s) if is_unique_violation(s) => {
                HubError::Conflict("this refund was already made".into())
            }
            e => e,
        })?;
        tx.commit().await?;
        Ok(RefundOutcome::Done(entry))
    }

    async fn transactions(&self, user_id: &str, app_id: Option<&str>) -> Result<Vec<LedgerEntry>> {
        let rows: Vec<EntryRow> = sqlx::query_as(select_entries!(
            "WHERE user_id = ?1 AND (?2 IS NULL OR app_id = ?2) ORDER BY seq"
        ))
        .bind(user_id)
        .bind(app_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(LedgerEntry::from).collect())
    }
}
