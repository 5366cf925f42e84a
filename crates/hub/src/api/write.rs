//! `PUT /api/v1/sources/{source}/values`: an app sets values on a data source. The hub checks
//! the token and the grant (scope `data.write`, ticked for that very source) on the request,
//! makes an `Idempotency-Key` apply once, relays the write and keeps each value's result in
//! its audit trail; the connector decides what its site allows and answers per value.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uplink_link::{MAX_WRITE_VALUES, WriteAnswer, WriteItem, WriteResult, WriteValue};

use super::{ApiError, ApiErrorCode};
use crate::hub::Hub;
use crate::store::{WriteClaim, WriteKey};

/// The longest tag name a write may name.
const MAX_TAG_LEN: usize = 1_024;
/// The longest text value.
const MAX_TEXT_LEN: usize = 4_096;
/// How long an idempotency key's answer is kept (24 h).
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 24 * 60 * 60;
/// The header a repeated write's answer carries.
pub const REPLAYED: &str = "idempotent-replayed";

/// The body: `{"values": [{"tag", "value", "time"?}]}`, each field checked and named.
///
/// # Errors
/// A 400 `invalid_query` naming the field.
pub fn parse(body: &[u8]) -> Result<Vec<WriteItem>, ApiError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("not JSON: {e}")))?;
    let object = json
        .as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be an object with \"values\""))?;
    if let Some(unknown) = object.keys().find(|k| *k != "values") {
        return Err(ApiError::invalid(
            unknown.as_str(),
            "is not a field of a write (only \"values\")",
        ));
    }
    let values = object
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("values", "required: a list of {tag, value, time?}"))?;
    if values.is_empty() || values.len() > MAX_WRITE_VALUES {
        return Err(ApiError::invalid(
            "values",
            format!(
                "must hold 1 to {MAX_WRITE_VALUES} values, not {}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, item)| parse_item(i, item))
        .collect()
}

fn parse_item(i: usize, item: &Value) -> Result<WriteItem, ApiError> {
    let field = |name: &str| format!("values[{i}].{name}");
    let object = item
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("values[{i}]"), "must be an object"))?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "tag" | "value" | "time"))
    {
        return Err(ApiError::invalid(
            field(unknown),
            "is not a field of a value (tag, value, time)",
        ));
    }
    let tag = match object.get("tag").and_then(Value::as_str) {
        Some(tag) if !tag.is_empty() && tag.chars().count() <= MAX_TAG_LEN => tag.to_owned(),
        _ => {
            return Err(ApiError::invalid(
                field("tag"),
                format!("required: the tag's name, 1 to {MAX_TAG_LEN} characters"),
            ));
        }
    };
    let value = match object.get("value") {
        Some(Value::Bool(b)) => WriteValue::Bool(*b),
        Some(Value::Number(n)) => match n.as_f64().filter(|n| n.is_finite()) {
            Some(n) => WriteValue::Number(n),
            None => return Err(ApiError::invalid(field("value"), "must be a finite number")),
        },
        Some(Value::String(t)) if t.chars().count() <= MAX_TEXT_LEN => WriteValue::Text(t.clone()),
        _ => {
            return Err(ApiError::invalid(
                field("value"),
                format!("required: true/false, a number, or a text of at most {MAX_TEXT_LEN} characters"),
            ));
        }
    };
    let time = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    ApiError::invalid(field("time"), "must be an RFC 3339 time such as 2026-11-25T08:00:00Z")
                })?
                .with_timezone(&chrono::Utc),
        ),
        Some(_) => {
            return Err(ApiError::invalid(
                field("time"),
                "must be an RFC 3339 time such as 2026-11-25T08:00:00Z",
            ));
        }
    };
    Ok(WriteItem { tag, value, time })
}

/// One value's result as the app sees it.
#[derive(Debug, Serialize)]
struct ItemResult<'a> {
    tag: &'a str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The 200 body: one result per value, in the order asked (the connector's old values stay in
/// the audit trail).
pub fn answer_body(answer: &WriteAnswer) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        results: Vec<ItemResult<'a>>,
    }
    let body = Body {
        results: answer
            .results
            .iter()
            .map(|r| ItemResult {
                tag: &r.tag,
                result: r.result.as_str(),
                code: r.code.as_deref(),
                message: r.message.as_deref(),
            })
            .collect(),
    };
    serde_json::to_string(&body).unwrap_or_else(|_| r#"{"results":[]}"#.to_owned())
}

/// The digest that tells a retry (same values) from a key reused for other values.
pub fn digest(source_id: &str, items: &[WriteItem]) -> String {
    let canonical = serde_json::to_string(&(source_id, items)).unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A JSON response with `status` and `body`.
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Claims the request's `Idempotency-Key`, if it has one: `Ok(None)` without a key,
/// `Ok(Some(key))` when this request applies the write, `Err(response)` when the first
/// request's answer (or a refusal) is the answer.
pub async fn claim(
    hub: &Hub,
    headers: &HeaderMap,
    app_id: &str,
    user_id: &str,
    digest: &str,
) -> Result<Option<WriteKey>, Response> {
    let Some(key) = crate::billing::idempotency_key(headers)? else {
        return Ok(None);
    };
    let key = WriteKey {
        app_id: app_id.to_owned(),
        user_id: user_id.to_owned(),
        key,
    };
    let now = crate::clock::now();
    let claim = hub
        .store
        .claim_write(&key, digest, now, now - IDEMPOTENCY_WINDOW_SECS)
        .await
        .map_err(|e| ApiError::Store(e).into_response())?;
    match claim {
        WriteClaim::Claimed => Ok(Some(key)),
        WriteClaim::Answered { status, answer } => {
            let mut response = json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                answer,
            );
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
            Err(response)
        }
        WriteClaim::InProgress => Err(ApiErrorCode::WriteInProgress.response(
            "Idempotency-Key: a write with this key is being applied; ask again shortly for its answer",
        )),
        WriteClaim::KeyReused => Err(ApiErrorCode::IdempotencyKeyReused.response(
            "Idempotency-Key: already used for a different write; use a new key for new values",
        )),
    }
}

/// The audit rows of a write: one per value, with app, user, data source, tag, the value
/// before (where the source could read it), the new value and the result.
pub fn audit_events(
    user_id: &str,
    app_id: &str,
    source_id: &str,
    items: &[WriteItem],
    answer: &WriteAnswer,
) -> Vec<crate::store::AuditEvent> {
    let at = crate::clock::now();
    items
        .iter()
        .zip(&answer.results)
        .map(|(item, result)| {
            let old = result.old_value.as_ref().map_or_else(
                || "unknown".to_owned(),
                |v| match (&v.value, &v.text) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(t)) => format!("{t:?}"),
                    (None, None) => format!("({})", v.status),
                },
            );
            let mut detail = format!(
                "tag={:?} old={old} new={} result={}",
                item.tag,
                item.value,
                result.result.as_str()
            );
            if let Some(code) = &result.code {
                detail.push_str(&format!(" code={code}"));
            }
            let event = if result.result == WriteResult::Ok {
                "write"
            } else {
                "write_not_applied"
            };
            crate::store::AuditEvent {
                at,
                event: event.to_owned(),
                user_id: Some(user_id.to_owned()),
                app_id: Some(app_id.to_owned()),
                source_id: Some(source_id.to_owned()),
                detail,
            }
        })
        .collect()
}
