//! Serving a `Write` from the hub. The site decides before the source sees anything, in this
//! order and whatever the hub granted: the data source exists, the local policy allows the app
//! on it, each tag matches the source's writable patterns (none: writing is off); only then
//! `DataSource::write`, with the tag's value read just before for the audit trail. Every value
//! tried or refused goes into the activity trail.

use chrono::Utc;
use tokio::time::Instant;
use uplink_link::{
    QueryFailure, WriteAnswer, WriteItem, WriteItemResult, WriteRequest, WriteResult, failure,
    write_code,
};
use uplink_source::WriteValue;
use uplink_source::writing::WritableTags;

use super::Inner;
use crate::activity::ActivityRecord;
use crate::{DataSource, SourceError};

/// Applies `request` as the site allows, recording each value in the activity trail.
pub(super) async fn serve(inner: &Inner, request: &WriteRequest) -> WriteAnswer {
    let arrived = Instant::now();
    let answer = decide_and_write(inner, request).await;
    let took = arrived.elapsed().as_secs_f64() * 1000.0;
    if let Some(error) = &answer.error {
        tracing::info!(write = %request.write_id, app = %request.app_id, source = %request.source, code = %error.code, "write refused");
        inner
            .activity
            .record(record(request, None, &error.code, took));
    }
    for (item, result) in request.values.iter().zip(&answer.results) {
        let outcome = result.code.as_deref().unwrap_or(WriteResult::Ok.as_str());
        tracing::info!(write = %request.write_id, app = %request.app_id, source = %request.source, tag = %item.tag, result = result.result.as_str(), %outcome, "write");
        inner
            .activity
            .record(record(request, Some((item, result)), outcome, took));
    }
    inner.publish();
    answer
}

fn record(
    request: &WriteRequest,
    item: Option<(&WriteItem, &WriteItemResult)>,
    outcome: &str,
    duration_ms: f64,
) -> ActivityRecord {
    ActivityRecord {
        time: Utc::now(),
        app_id: request.app_id.clone(),
        user_id: request.user_id.clone(),
        source: request.source.clone(),
        operation: "write".into(),
        outcome: outcome.to_owned(),
        duration_ms,
        bytes: 0,
        tag: item.map(|(item, _)| item.tag.clone()),
        old_value: item
            .and_then(|(_, result)| result.old_value.as_ref())
            .map(shown),
        new_value: item.map(|(item, _)| item.value.to_string()),
    }
}

/// A value as the activity view shows it.
fn shown(value: &uplink_model::TagValue) -> String {
    match (&value.value, &value.text) {
        (Some(number), _) => number.to_string(),
        (None, Some(text)) => format!("{text:?}"),
        (None, None) => format!("({})", value.status),
    }
}

async fn decide_and_write(inner: &Inner, request: &WriteRequest) -> WriteAnswer {
    let Some((source, writable)) = inner.writable_source(&request.source) else {
        return refused(QueryFailure {
            code: failure::UNKNOWN_SOURCE.to_owned(),
            message: format!(
                "no data source named '{}' on this connector",
                request.source
            ),
        });
    };
    if let Err(veto) = inner.veto(&request.app_id, &request.source) {
        return refused(veto);
    }
    let mut results = Vec::with_capacity(request.values.len());
    for item in &request.values {
        results.push(write_one(source.as_ref(), &writable, &request.source, item).await);
    }
    WriteAnswer {
        error: None,
        results,
    }
}

fn refused(error: QueryFailure) -> WriteAnswer {
    WriteAnswer {
        error: Some(error),
        results: Vec::new(),
    }
}

async fn write_one(
    source: &dyn DataSource,
    writable: &WritableTags,
    source_name: &str,
    item: &WriteItem,
) -> WriteItemResult {
    let outcome = |result, code: &str, message: String| WriteItemResult {
        tag: item.tag.clone(),
        result,
        code: Some(code.to_owned()),
        message: Some(message),
        old_value: None,
    };
    if writable.is_off() {
        return outcome(
            WriteResult::Refused,
            write_code::WRITING_OFF,
            format!("writing to the data source '{source_name}' is off on this connector"),
        );
    }
    if !writable.allows(&item.tag) {
        return outcome(
            WriteResult::Refused,
            write_code::TAG_NOT_WRITABLE,
            format!(
                "the tag '{}' is not among the tags this connector lets apps write on '{source_name}'",
                item.tag
            ),
        );
    }
    // The value before, for the audit trail, where the source can read it.
    let old_value = source
        .snapshot(std::slice::from_ref(&item.tag))
        .await
        .ok()
        .and_then(|mut values| values.pop());
    let value = match &item.value {
        uplink_link::WriteValue::Bool(b) => WriteValue::Bool(*b),
        uplink_link::WriteValue::Number(n) => WriteValue::Number(*n),
        uplink_link::WriteValue::Text(t) => WriteValue::Text(t.clone()),
    };
    let mut result = match source.write(&item.tag, &value).await {
        Ok(()) => WriteItemResult {
            tag: item.tag.clone(),
            result: WriteResult::Ok,
            code: None,
            message: None,
            old_value: None,
        },
        Err(error) => {
            let (result, code) = classify(&error);
            outcome(result, code, error.to_string())
        }
    };
    result.old_value = old_value;
    result
}

/// What a source's refusal is for the app: the kind cannot write (refused), or the source
/// tried and failed.
fn classify(error: &SourceError) -> (WriteResult, &'static str) {
    match error {
        SourceError::Unsupported { .. } => (WriteResult::Refused, write_code::UNSUPPORTED),
        SourceError::UnknownTag { .. } => (WriteResult::Failed, write_code::UNKNOWN_TAG),
        SourceError::WriteRefused { .. } | SourceError::Query(_) => {
            (WriteResult::Failed, write_code::WRITE_REFUSED)
        }
        _ => (WriteResult::Failed, write_code::SOURCE_ERROR),
    }
}
