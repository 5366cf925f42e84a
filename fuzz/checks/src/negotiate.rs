//! Negotiate, both ways: the client reading the server's answer, and the server reading the
//! query parameters and bearer token of negotiate and transport requests.

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use uplink_signalr::negotiate::{NegotiateResponse, Transport};
use uplink_signalr::server::{bearer_token, negotiate_version, query_param, redacted_uri};

/// `negotiate`. First byte even: the rest is a negotiate answer for the client. Odd: the rest is
/// a request target, optionally followed by a newline and an `Authorization` header value.
pub fn negotiate(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        client(rest);
    } else {
        server(rest);
    }
}

fn client(body: &[u8]) {
    let Ok(answer) = NegotiateResponse::parse(body) else {
        return;
    };
    assert!(answer.error.is_none(), "a refusal parsed as an answer");
    // What the client would try, fastest first; never a transport the server did not offer.
    let offered: Vec<Transport> = Transport::ALL
        .into_iter()
        .filter(|&t| answer.offers(t))
        .collect();
    for t in &offered {
        assert!(
            answer
                .available_transports
                .iter()
                .any(|a| a.transport == t.as_str())
        );
    }
    assert_eq!(
        answer.transport_id(),
        answer
            .connection_token
            .as_deref()
            .or(answer.connection_id.as_deref())
    );
    // Written again and read back, it is the same answer.
    let again = NegotiateResponse::parse(&serde_json::to_vec(&answer).expect("serialise"))
        .expect("re-read");
    assert_eq!(again, answer);
    // Debug output never shows the connection token (when the token is not also some other
    // field's text, where it would rightly show).
    if let Some(token) = answer.connection_token.as_deref().filter(|t| t.len() >= 8) {
        let without = NegotiateResponse {
            connection_token: None,
            ..answer.clone()
        };
        if !format!("{without:?}").contains(token) {
            assert!(
                !format!("{answer:?}").contains(token),
                "the connection token leaked into Debug output"
            );
        }
    }
}

fn server(request: &[u8]) {
    let (target, authorization) = match request.iter().position(|&b| b == b'\n') {
        Some(i) => (&request[..i], Some(&request[i + 1..])),
        None => (request, None),
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(header::AUTHORIZATION, value);
    }
    assert!(negotiate_version(&uri) <= 1);
    let _ = query_param(&uri, "id");
    let _ = bearer_token(&headers, &uri);

    // The logged form of the request names no secret: every parameter the server reads as the
    // connection token or the access token, decoded as the server decodes it, is redacted.
    let logged = redacted_uri(&uri);
    assert!(logged.starts_with(uri.path()));
    if let Some((_, query)) = logged.split_once('?') {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == "id" || name == "access_token" {
                assert!(
                    value == "<redacted>" || value.is_empty(),
                    "'{name}' logged in clear: {logged}"
                );
            }
        }
    }
}
