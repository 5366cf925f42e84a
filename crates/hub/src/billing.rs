//! Billing for usage (`account.debit`): the app API under `/api/v1/account/`, the
//! compatibility routes Intelligent Plant's client libraries call (`/api/resource/debit`,
//! `…/refund`, `…/userbalance`), the hub's billing settings, and amounts as integers.
//!
//! Every amount is an `i64` of minor units of the hub's one currency (cents for EUR): never a
//! float, on the wire or inside. A debit is one store transaction (`AccountStore::debit`): the
//! live grant and sign-in, the idempotency key, the balance and the user's monthly limit are
//! checked and the ledger row written together, so racing debits never overdraw either and a
//! revoke that has returned stops every later debit.

// The helpers answer a refusal as the finished response the handler returns; boxing it would
// only add an allocation on the refusal path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike as _, TimeZone as _, Utc};
use serde_json::{Value, json};

use crate::api::ApiErrorCode;
use crate::hub::Hub;
use crate::store::{
    Allowance, DebitOutcome, DebitRequest, LedgerEntry, RefundOutcome, RefundRequest, TxKind,
};
use crate::token::AccessClaims;

/// The largest amount the hub takes in one movement or limit (10^12 minor units): far from
/// `i64` overflow however many are summed in a month.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// How a hub bills: its one currency and the rules the operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingConfig {
    /// ISO 4217 code shown with every amount (default `EUR`).
    pub currency: String,
    /// Digits after the decimal point of the currency's major unit (default 2: cents).
    pub minor_digits: u32,
    /// The monthly limit the consent page starts from when the app suggests none (default
    /// 500 minor units: 5.00).
    pub default_monthly_limit: i64,
    /// How long after a debit the app may refund it, in seconds (default 30 days).
    pub refund_window: i64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            currency: "EUR".into(),
            minor_digits: 2,
            default_monthly_limit: 500,
            refund_window: 30 * 24 * 3600,
        }
    }
}

impl BillingConfig {
    /// `minor` as people read it: `1234` → `12.34` (with two minor digits).
    pub fn format(&self, minor: i64) -> String {
        if self.minor_digits == 0 {
            return minor.to_string();
        }
        let scale = 10i64.pow(self.minor_digits);
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let scale_u = scale.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / scale_u,
            abs % scale_u,
            width = self.minor_digits as usize
        )
    }

    /// A decimal amount typed by a person (`5`, `5.5`, `5.50`) in minor units, with integer
    /// arithmetic only. None for anything else (negative, too many decimals, too large).
    pub fn parse(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty()
            || fraction.len() > self.minor_digits as usize
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() > 13
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut minor = whole.checked_mul(10i64.pow(self.minor_digits))?;
        if !fraction.is_empty() {
            let digits: i64 = fraction.parse().ok()?;
            minor =
                minor.checked_add(digits * 10i64.pow(self.minor_digits - fraction.len() as u32))?;
        }
        (minor <= MAX_AMOUNT).then_some(minor)
    }
}

/// The start (Unix seconds) of the calendar month, UTC, that `now` falls in: a limit's period.
pub fn period_start(now: i64) -> i64 {
    let at = Utc.timestamp_opt(now, 0).single().unwrap_or_default();
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .map_or(now, |t| t.timestamp())
}

/// Debits being handled right now, and the most at once: what the race tests read to prove
/// their debits really were in flight together.
#[derive(Debug, Default)]
pub struct DebitsInFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl DebitsInFlight {
    fn enter(&self) -> InFlightGuard<'_> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        InFlightGuard(self)
    }

    /// The most debits that were being handled at the same moment.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

struct InFlightGuard<'a>(&'a DebitsInFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

fn entry_json(e: &LedgerEntry, currency: &str) -> Value {
    json!({
        "id": e.id,
        "kind": e.kind.as_str(),
        "amount": e.amount,
        "currency": currency,
        "description": e.description,
        "refundOf": e.refund_of,
        "idempotencyKey": e.idempotency_key,
        "at": chrono::DateTime::from_timestamp(e.at, 0).map(|t| t.to_rfc3339()),
    })
}

fn allowance_json(a: &Allowance, currency: &str, period_start: i64) -> Value {
    json!({
        "currency": currency,
        "periodStart": chrono::DateTime::from_timestamp(period_start, 0).map(|t| t.to_rfc3339()),
        "monthlyLimit": a.grant.monthly_limit,
        "spent": a.spent,
        "limitRemaining": a.limit_remaining(),
        "available": a.available(),
    })
}

fn store_failure(e: &crate::HubError) -> Response {
    tracing::error!(error = %e, "billing could not use the store");
    ApiErrorCode::StoreUnavailable.response("the hub cannot reach its ledger right now; try again")
}

/// The bearer token of a billing request, verified and carrying `account.debit`.
fn billing_claims(hub: &Hub, headers: &HeaderMap) -> Result<AccessClaims, Response> {
    use crate::access::Denied;
    let token =
        crate::access::bearer_token(headers).ok_or_else(|| Denied::MissingToken.into_response())?;
    let claims = hub.keys.verify(token).map_err(|rejection| {
        tracing::info!(%rejection, "billing: access token refused");
        Denied::InvalidToken(rejection).into_response()
    })?;
    if !claims.has_scope(crate::scopes::ACCOUNT_DEBIT) {
        return Err(Denied::InsufficientScope(crate::scopes::ACCOUNT_DEBIT).into_response());
    }
    Ok(claims)
}

fn invalid(message: impl Into<String>) -> Response {
    ApiErrorCode::InvalidQuery.response(message)
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("Idempotency-Key: send it once"));
    }
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 255 => Ok(Some(key.to_owned())),
        _ => Err(invalid("Idempotency-Key: 1–255 visible ASCII characters")),
    }
}

/// An amount from JSON: a whole number of minor units, 1 … [`MAX_AMOUNT`]; never a float.
fn amount_of(value: &Value, field: &str) -> Result<i64, Response> {
    match value.as_i64() {
        Some(n) if (1..=MAX_AMOUNT).contains(&n) && !value.is_f64() => Ok(n),
        _ => Err(invalid(format!(
            "{field}: a whole number of minor units (cents), 1 to {MAX_AMOUNT}; amounts are never fractional"
        ))),
    }
}

/// Makes a debit and answers it: 201 with the transaction (200 for a repeated key), or the
/// refusal with what remains.
async fn debit(
    hub: &Hub,
    claims: &AccessClaims,
    amount: i64,
    description: String,
    idempotency_key: Option<String>,
) -> Result<LedgerEntry, Response> {
    let _in_flight = hub.debits_in_flight.enter();
    let now = crate::clock::now();
    let request = DebitRequest {
        user_id: claims.user_id.clone(),
        app_id: claims.app_id.clone(),
        family_id: claims.family_id.clone(),
        amount,
        description,
        idempotency_key,
        now,
        period_start: period_start(now),
    };
    let outcome = hub
        .store
        .debit(&request)
        .await
        .map_err(|e| store_failure(&e))?;
    let currency = &hub.config.billing.currency;
    let refused = |code: ApiErrorCode, message: String, extra: Value| {
        let mut body = json!({ "code": code.as_str(), "message": message, "currency": currency });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        (code.status(), Json(body)).into_response()
    };
    match outcome {
        DebitOutcome::Done(entry) => {
            hub.audit(
                "account_debited",
                Some(&entry.user_id),
                entry.app_id.as_deref(),
                None,
                format!("{} {} {}", entry.id, entry.amount, currency),
            )
            .await;
            Ok(entry)
        }
        DebitOutcome::Repeated(entry) => {
            Err((StatusCode::OK, Json(entry_json(&entry, currency))).into_response())
        }
        DebitOutcome::KeyReused => Err(ApiErrorCode::IdempotencyKeyReused
            .response("Idempotency-Key: already used for a different amount or description")),
        DebitOutcome::NoGrant => Err(ApiErrorCode::NoGrant
            .response("the user has not allowed this app to debit their account, or revoked it")),
        DebitOutcome::InsufficientFunds {
            balance,
            limit_remaining,
        } => Err(refused(
            ApiErrorCode::InsufficientFunds,
            format!("the account holds {}", hub.config.billing.format(balance)),
            json!({ "balance": balance, "limitRemaining": limit_remaining }),
        )),
        DebitOutcome::LimitReached {
            limit_remaining,
            balance,
        } => Err(refused(
            ApiErrorCode::LimitReached,
            format!(
                "the user's monthly limit leaves {} for this app",
                hub.config.billing.format(limit_remaining)
            ),
            json!({ "limitRemaining": limit_remaining, "balance": balance }),
        )),
    }
}

/// `POST /api/v1/account/debits`: `{amount, description}` with a required `Idempotency-Key`.
pub async fn post_debit(State(hub): State<Arc<Hub>>, headers: HeaderMap, body: Bytes) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key = match idempotency_key(&headers) {
        Ok(Some(key)) => key,
        Ok(None) => return invalid("Idempotency-Key: required, so a retried debit is made once"),
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return invalid("body: JSON {\"amount\": minor units, \"description\": \"…\"}");
    };
    let amount = match body.get("amount").map(|v| amount_of(v, "amount")) {
        Some(Ok(a)) => a,
        Some(Err(r)) => return r,
        None => return invalid("amount: required"),
    };
    let description = match body.get("description").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() && d.chars().count() <= 200 => d.trim().to_owned(),
        _ => return invalid("description: required, 1–200 characters, what the user pays for"),
    };
    match debit(&hub, &claims, amount, description, Some(key)).await {
        Ok(entry) => (
            StatusCode::CREATED,
            Json(entry_json(&entry, &hub.config.billing.currency)),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn refund(
    hub: &Hub,
    claims: &AccessClaims,
    debit_id: &str,
    amount: Option<i64>,
    idempotency_key: Option<String>,
) -> Result<LedgerEntry, Response> {
    let now = crate::clock::now();
    let outcome = hub
        .store
        .refund(&RefundRequest {
            user_id: claims.user_id.clone(),
            app_id: claims.app_id.clone(),
            debit_id: debit_id.to_owned(),
            amount,
            idempotency_key,
            now,
            window_start: now - hub.config.billing.refund_window,
        })
        .await
        .map_err(|e| store_failure(&e))?;
    match outcome {
        RefundOutcome::Done(entry) => {
            hub.audit(
                "account_refunded",
                Some(&entry.user_id),
                entry.app_id.as_deref(),
                None,
                format!("{} {} of {}", entry.id, entry.amount, debit_id),
            )
            .await;
            Ok(entry)
        }
        RefundOutcome::NotFound => Err(ApiErrorCode::NotFound
            .response("no debit of this app on this user's account has that id")),
        RefundOutcome::TooLate => Err(ApiErrorCode::RefundRefused.response(format!(
            "the debit is older than the hub's refund window ({} days)",
            hub.config.billing.refund_window / 86_400
        ))),
        RefundOutcome::TooMuch { refundable } => Err(ApiErrorCode::RefundRefused.response(
            format!("amount: at most {refundable} is left to refund of this debit"),
        )),
    }
}

/// `POST /api/v1/account/debits/{id}/refund`: `{amount}` for part of it, or no body for all
/// that is left.
pub async fn post_refund(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let amount = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            return invalid("body: JSON {\"amount\": minor units}, or none to refund it all");
        };
        match body.get("amount").map(|v| amount_of(v, "amount")) {
            Some(Ok(a)) => Some(a),
            Some(Err(r)) => return r,
            None => None,
        }
    };
    match refund(&hub, &claims, &id, amount, key).await {
        Ok(entry) => (
            StatusCode::CREATED,
            Json(entry_json(&entry, &hub.config.billing.currency)),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn allowance(hub: &Hub, claims: &AccessClaims) -> Result<(Allowance, i64), Response> {
    let start = period_start(crate::clock::now());
    match hub
        .store
        .allowance(&claims.user_id, &claims.app_id, start)
        .await
    {
        Ok(Some(a)) => Ok((a, start)),
        Ok(None) => Err(ApiErrorCode::NoGrant
            .response("the user has not allowed this app to debit their account, or revoked it")),
        Err(e) => Err(store_failure(&e)),
    }
}

/// `GET /api/v1/account/balance`: what this app may still spend this month, not the user's
/// whole balance.
pub async fn get_balance(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match allowance(&hub, &claims).await {
        Ok((a, start)) => {
            Json(allowance_json(&a, &hub.config.billing.currency, start)).into_response()
        }
        Err(r) => r,
    }
}

/// `GET /api/v1/account/transactions`: this app's debits and refunds on this user's account.
pub async fn get_transactions(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match hub
        .store
        .transactions(&claims.user_id, Some(&claims.app_id))
        .await
    {
        Ok(entries) => {
            let currency = &hub.config.billing.currency;
            Json(json!({
                "transactions": entries.iter().map(|e| entry_json(e, currency)).collect::<Vec<_>>()
            }))
            .into_response()
        }
        Err(e) => store_failure(&e),
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Compatibility: `POST /api/resource/debit` as Intelligent Plant's client libraries send it —
/// the amount as a bare JSON number body or the `debitAmount` query parameter (whole minor
/// units only), an `Idempotency-Key` optional. Answers the transaction id as a JSON string.
pub async fn compat_debit(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let amount = if let Some(text) = query_value(query.as_deref(), "debitAmount") {
        match text.parse::<i64>() {
            Ok(n) => amount_of(&json!(n), "debitAmount"),
            Err(_) => Err(invalid(
                "debitAmount: a whole number of minor units (cents); amounts are never fractional",
            )),
        }
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => amount_of(&value, "body"),
            Err(_) => Err(invalid(
                "body: the amount as a bare JSON number, or ?debitAmount=",
            )),
        }
    };
    let amount = match amount {
        Ok(a) => a,
        Err(r) => return r,
    };
    let description = query_value(query.as_deref(), "description")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| "usage".to_owned());
    match debit(&hub, &claims, amount, description, key).await {
        Ok(entry) => (StatusCode::OK, Json(json!(entry.id))).into_response(),
        Err(r) => r,
    }
}

/// Compatibility: `POST /api/resource/refund?transactionRef=ID` refunds what is left of it.
pub async fn compat_refund(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(id) = query_value(query.as_deref(), "transactionRef") else {
        return invalid("transactionRef: required, the id the debit answered");
    };
    match refund(&hub, &claims, &id, None, None).await {
        Ok(entry) => (StatusCode::OK, Json(json!(entry.id))).into_response(),
        Err(r) => r,
    }
}

/// Compatibility: `GET /api/resource/userbalance`: what this app may still spend, as a bare
/// JSON integer of minor units.
pub async fn compat_balance(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let claims = match billing_claims(&hub, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match allowance(&hub, &claims).await {
        Ok((a, _)) => Json(json!(a.available())).into_response(),
        Err(r) => r,
    }
}

/// The ledger rows as CSV (the owner's export): one header line, one row per transaction.
pub fn ledger_csv(entries: &[LedgerEntry], currency: &str) -> String {
    // A cell a spreadsheet would run as a formula gets a leading apostrophe.
    let field = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = String::from(
        "id,time,kind,app,amount,currency,description,refund_of,idempotency_key,grant\n",
    );
    for e in entries {
        let time = chrono::DateTime::from_timestamp(e.at, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        let signed = match e.kind {
            TxKind::Debit => -e.amount,
            TxKind::Refund | TxKind::Credit => e.amount,
        };
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            field(&e.id),
            time,
            e.kind.as_str(),
            field(e.app_id.as_deref().unwrap_or("")),
            signed,
            field(currency),
            field(&e.description),
            field(e.refund_of.as_deref().unwrap_or("")),
            field(e.idempotency_key.as_deref().unwrap_or("")),
            field(e.grant_id.as_deref().unwrap_or("")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_format_with_integers_only() {
        let c = BillingConfig::default();
        assert_eq!(c.parse("5"), Some(500));
        assert_eq!(c.parse("5.5"), Some(550));
        assert_eq!(c.parse("0.07"), Some(7));
        assert_eq!(c.parse(".5"), Some(50));
        for bad in ["", ".", "-1", "1.234", "1e3", "1,5", "99999999999999"] {
            assert_eq!(c.parse(bad), None, "{bad}");
        }
        assert_eq!(c.format(1234), "12.34");
        assert_eq!(c.format(7), "0.07");
        let yen = BillingConfig {
            minor_digits: 0,
            ..BillingConfig::default()
        };
        assert_eq!(yen.format(1234), "1234");
        assert_eq!(yen.parse("12"), Some(12));
        assert_eq!(yen.parse("12.5"), None);
    }

    #[test]
    fn a_period_is_the_calendar_month_in_utc() {
        // 2026-12-06T23:05:00Z
        assert_eq!(period_start(1_796_598_300), 1_796_083_200);
        assert_eq!(period_start(1_796_083_200), 1_796_083_200);
    }

    #[test]
    fn floats_are_refused_as_amounts() {
        assert!(amount_of(&json!(5), "amount").is_ok());
        assert!(amount_of(&json!(5.0), "amount").is_err());
        assert!(amount_of(&json!(0), "amount").is_err());
        assert!(amount_of(&json!("5"), "amount").is_err());
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        let e = LedgerEntry {
            id: "txn_1".into(),
            user_id: "usr_1".into(),
            app_id: Some("app".into()),
            amount: 250,
            kind: TxKind::Debit,
            description: "=HYPERLINK(\"x\")".into(),
            idempotency_key: None,
            refund_of: None,
            grant_id: None,
            at: 0,
        };
        let csv = ledger_csv(&[e], "EUR");
        assert!(
            csv.contains(",-250,EUR,\"'=HYPERLINK(\"\"x\"\")\","),
            "{csv}"
        );
    }
}
