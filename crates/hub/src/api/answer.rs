//! The relayed answer as the app's HTTP response: the format the app asked for, and the
//! connector's bytes streamed through as they arrive — never collected, so an answer of any
//! size passes with bounded memory. An answer that breaks off after it began ends the body with
//! an error, so the app sees a failed transfer, never a complete-looking document.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::{StreamExt as _, TryStreamExt as _};
use uplink_link::ResultFormat;

use super::error::ApiError;
use crate::relay::RelayStream;

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

/// Streams `answer` to the app. The first chunk is awaited before the status is sent (the
/// relay has normally received it already), so an answer that fails at once still gets an
/// error status; later failures cut the body.
pub async fn respond(
    format: ResultFormat,
    query_id: String,
    mut answer: RelayStream,
) -> Result<Response, ApiError> {
    let first = match answer.next().await {
        Some(Err(error)) => return Err(error.into()),
        first => first,
    };
    let body = futures::stream::iter(first)
        .chain(answer)
        .inspect_err(move |error| {
            tracing::warn!(%query_id, code = error.code(), %error, "answer broke off; cutting the app's body");
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
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

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
