//! The relayed answer as the app's HTTP response: the format the app asked for, and the
//! connector's bytes streamed through as they arrive — never collected, so an answer of any
//! size passes with bounded memory. An answer that breaks off after it began ends the body with
//! an error, so the app sees a failed transfer, never a complete-looking document.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use uplink_link::ResultFormat;

use super::error::ApiError;
use crate::relay::{RelayError, RelayStream};

/// The format asked for: `?format=` wins; else `Accept: application/x-ndjson` means NDJSON;
/// else JSON.
pub fn format(parameter: Option<&str>, headers: &HeaderMap) -> Result<ResultFormat, ApiError> {
    if let Some(value) = parameter {
        return match value.to_ascii_lowercase().as_str() {
            "json" => Ok(ResultFormat::Json),
            "ndjson" => Ok(ResultFormat::Ndjson),
            _ => Err(ApiError::invalid(
                "format",
                format!("expected json or ndjson, got '{value}'"),
            )),
        };
    }
    let wants_ndjson = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            // `q=0` means "not acceptable".
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            !refused
                && (media.eq_ignore_ascii_case("application/x-ndjson")
                    || media.eq_ignore_ascii_case("application/ndjson"))
        });
    Ok(if wants_ndjson {
        ResultFormat::Ndjson
    } else {
        ResultFormat::Json
    })
}

/// Who computed a plot, values-at-times or processed answer: `source` (pushed down to the data
/// source) or `uplink` (computed from raw values). Absent when the connector did not say.
pub const COMPUTED_BY: header::HeaderName = header::HeaderName::from_static("uplink-computed-by");

/// How much of an answer that is already at hand is held back before the status goes out, so
/// that an answer which broke off within it still gets an error status.
const HELD_BEFORE_STATUS: usize = 64 * 1024;

/// Streams `answer` to the app. The first chunk is awaited before the status is sent (the
/// relay has normally received it already), and whatever else has already arrived is taken
/// too, up to [`HELD_BEFORE_STATUS`]: the HTTP server writes the head together with the first
/// bytes, so a failure already queued behind them would otherwise close the connection before
/// any status went out. A failure that comes later cuts the body.
pub async fn respond(
    format: ResultFormat,
    query_id: String,
    mut answer: RelayStream,
) -> Result<Response, ApiError> {
    let mut held = Vec::new();
    let mut held_bytes = 0;
    let mut ended = false;
    let mut next = answer.next().await;
    loop {
        match next {
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(chunk)) => {
                held_bytes += chunk.len();
                held.push(Ok(chunk));
            }
            None => {
                ended = true;
                break;
            }
        }
        if held_bytes >= HELD_BEFORE_STATUS {
            break;
        }
        match answer.next().now_or_never() {
            Some(item) => next = item,
            None => break,
        }
    }
    let computed_by = answer.computed();
    let rest = if ended {
        futures::stream::empty().boxed()
    } else {
        answer.boxed()
    };
    let body = futures::stream::iter(held)
        .chain(rest)
        .inspect_err(move |error| match error {
            RelayError::Revoked | RelayError::TokenExpired => {
                tracing::info!(%query_id, code = error.code(), %error, "access ended; cutting the app's body");
            }
            _ => {
                tracing::warn!(%query_id, code = error.code(), %error, "answer broke off; cutting the app's body");
            }
        });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    // Process data is the data owner's: no cache along the way may keep a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(by) = computed_by {
        headers.insert(COMPUTED_BY, HeaderValue::from_static(by.as_str()));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use bytes::Bytes;
    use uplink_model::ComputedBy;

    fn chunk(text: &'static str) -> Result<Bytes, RelayError> {
        Ok(Bytes::from_static(text.as_bytes()))
    }

    async fn answer_of(items: Vec<Result<Bytes, RelayError>>) -> Response {
        let stream = futures::stream::iter(items).boxed();
        respond(
            ResultFormat::Json,
            "q-test".into(),
            RelayStream::new(stream),
        )
        .await
        .unwrap_or_else(axum::response::IntoResponse::into_response)
    }

    #[tokio::test]
    async fn a_failure_queued_behind_the_first_chunk_gets_an_error_status() {
        let response = answer_of(vec![chunk("{\"items\":["), Err(RelayError::LinkLost)]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "link_lost");
    }

    #[tokio::test]
    async fn a_complete_answer_at_hand_is_sent_whole() {
        let response = answer_of(vec![chunk("{\"items\":"), chunk("[]}")]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        assert_eq!(&body[..], b"{\"items\":[]}");
    }

    #[tokio::test]
    async fn who_computed_the_answer_is_a_header_only_when_the_connector_said() {
        for said in [Some(ComputedBy::Source), Some(ComputedBy::Uplink), None] {
            let stream = futures::stream::iter(vec![chunk("{}")]).boxed();
            let response = respond(
                ResultFormat::Json,
                "q-test".into(),
                RelayStream::new(stream).computed_by(said),
            )
            .await
            .unwrap();
            let header = response
                .headers()
                .get("uplink-computed-by")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(header.as_deref(), said.map(ComputedBy::as_str));
        }
    }

    #[tokio::test]
    async fn a_failure_after_the_status_cuts_the_body() {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        sender.unbounded_send(chunk("{\"items\":[")).unwrap();
        let response = respond(
            ResultFormat::Json,
            "q-test".into(),
            RelayStream::new(receiver.boxed()),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        sender.unbounded_send(Err(RelayError::LinkLost)).unwrap();
        assert!(to_bytes(response.into_body(), 1 << 16).await.is_err());
    }

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn format_follows_the_parameter_then_accept() {
        let none = HeaderMap::new();
        assert_eq!(format(None, &none).unwrap(), ResultFormat::Json);
        assert_eq!(
            format(None, &accept("application/x-ndjson")).unwrap(),
            ResultFormat::Ndjson
        );
        assert_eq!(
            format(
                None,
                &accept("application/json, application/x-ndjson; q=0.0")
            )
            .unwrap(),
            ResultFormat::Json
        );
        assert_eq!(
            format(Some("json"), &accept("application/x-ndjson")).unwrap(),
            ResultFormat::Json
        );
        assert_eq!(format(Some("NDJSON"), &none).unwrap(), ResultFormat::Ndjson);
        assert_eq!(
            format(Some("csv"), &none).unwrap_err().to_string(),
            "format: expected json or ndjson, got 'csv'"
        );
    }
}
