//! Hostile HTTP against the hub: request bodies bounded per route (413 JSON), a body that
//! trickles in is cut off (408 JSON), the serving limits in the hub's configuration reach its
//! HTTPS server, and the OAuth endpoints' OpenAPI document is served and lists exactly the
//! endpoints that answer.

use std::time::Duration;

use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::harness::{CONF_APP, TestHub};

async fn raw_tls(hub: &TestHub) -> TlsStream<tokio::net::TcpStream> {
    let addr = hub.issuer.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let config = hub.tls.clone();
    TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Everything the hub sends until it closes the connection (bounded by 20 s).
async fn read_until_closed(tls: &mut TlsStream<tokio::net::TcpStream>) -> String {
    let mut received = Vec::new();
    // A close without TLS close_notify reads as an error; either way the connection ended.
    let _ended = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut received))
        .await
        .expect("the hub closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// The JSON body of a raw HTTP/1.1 response.
fn json_body(response: &str) -> Value {
    let body = &response[response.find("\r\n\r\n").expect("a complete response") + 4..];
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}

/// `POST …/query` on the historian without a token, so a body within the limit meets 401.
async fn post_query(hub: &TestHub, query: String) -> reqwest::Response {
    let path = format!("/api/v1/sources/{}/query", hub.historian.id);
    hub.client
        .post(hub.url(&path))
        .header("content-type", "application/json")
        .body(query)
        .send()
        .await
        .unwrap()
}

async fn still_serves(hub: &TestHub) {
    let r = hub.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn bodies_over_a_routes_limit_are_refused_413_with_a_json_error() {
    let hub = TestHub::start_with(|c| {
        c.bodies.form_bytes = 4096;
        c.bodies.api_bytes = 16 * 1024;
    })
    .await;
    // A token request over the form limit, declared by Content-Length.
    let r = hub
        .client
        .post(hub.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}",
            "r".repeat(5000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "body_too_large", "{body}");
    assert!(body["message"].as_str().unwrap().contains("4096"), "{body}");

    // The data API takes larger bodies: 8 KiB passes the body limit (and meets the token check).
    let query = format!(
        r#"{{"type":"snapshot","tags":["{}"]}}"#,
        "t".repeat(8 * 1024)
    );
    let r = post_query(&hub, query).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Over its own limit, it is refused the same way.
    let query = format!(
        r#"{{"type":"snapshot","tags":["{}"]}}"#,
        "t".repeat(32 * 1024)
    );
    let r = post_query(&hub, query).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "body_too_large", "{body}");

    // A chunked body declares no length: it is cut off once it passes the limit.
    let mut tls = raw_tls(&hub).await;
    let head = "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = "a".repeat(1024);
    for _ in 0..8 {
        // The hub may answer and close before the last chunks are sent.
        if tls
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let answer = read_until_closed(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(json_body(&answer)["code"], "body_too_large");

    still_serves(&hub).await;
}

/// The data API documents queries of up to 10 000 tags; with the default limits such a body
/// reaches the token check instead of being cut off (a single 64 KiB limit for every route
/// used to refuse it).
#[tokio::test]
async fn a_query_naming_ten_thousand_tags_fits_the_default_data_api_limit() {
    let hub = TestHub::start().await;
    let tags: Vec<String> = (0..10_000)
        .map(|i| format!("area{i:05}.FIC{i:05}.PV"))
        .collect();
    let query = serde_json::json!({ "type": "snapshot", "tags": tags }).to_string();
    assert!(query.len() > 64 * 1024);
    let r = post_query(&hub, query).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_within_the_body_timeout() {
    let hub = TestHub::start_with(|c| c.bodies.read_timeout = Duration::from_millis(300)).await;
    let mut tls = raw_tls(&hub).await;
    let body = format!(
        "grant_type=client_credentials&client_id={CONF_APP}&x={}",
        "x".repeat(200)
    );
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    // One byte every 50 ms would take over 12 s; the hub must answer long before.
    let mut answer = String::new();
    for byte in body.as_bytes() {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(50), tls.read(&mut buf)).await {
            Err(_) => {
                tls.write_all(&[*byte]).await.unwrap();
            }
            Ok(Ok(n)) => {
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
                answer.push_str(&read_until_closed(&mut tls).await);
                break;
            }
            Ok(Err(e)) => panic!("the connection failed instead of answering: {e}"),
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert_eq!(json_body(&answer)["code"], "body_timeout");

    still_serves(&hub).await;
}

#[tokio::test]
async fn the_serving_limits_in_the_hubs_configuration_reach_its_server() {
    let hub = TestHub::start_with(|c| {
        c.serving.header_read_timeout = Duration::from_millis(300);
        c.serving.max_headers = 16;
    })
    .await;
    // A connection that never sends its headers is closed after the configured wait.
    let mut idle = raw_tls(&hub).await;
    let answer = read_until_closed(&mut idle).await;
    assert!(!answer.contains(" 200 "), "{answer}");

    // More header fields than configured: 431.
    let mut tls = raw_tls(&hub).await;
    let mut request =
        String::from("GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..30 {
        request.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    still_serves(&hub).await;
}

#[tokio::test]
async fn the_oauth_document_is_served_and_lists_exactly_the_oauth_endpoints() {
    let hub = TestHub::start().await;
    let r = hub.get("/oauth/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK, "served without a token");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], hub.issuer.as_str());

    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("get", "/.well-known/oauth-authorization-server"),
        ("get", "/oauth/authorize"),
        ("post", "/oauth/token"),
        ("post", "/oauth/revoke"),
        ("post", "/oauth/introspect"),
        ("post", "/oauth/device_authorization"),
        ("get", "/oauth/openapi.json"),
        ("get", "/.well-known/openid-configuration"),
        ("get", "/oauth/jwks"),
        ("get", "/oauth/userinfo"),
        ("post", "/oauth/userinfo"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // The endpoints the metadata names are the ones documented.
    let metadata: Value = hub
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "device_authorization_endpoint",
    ] {
        let url = metadata[field].as_str().unwrap();
        let path = url.strip_prefix(hub.issuer.as_str()).unwrap();
        assert!(
            doc["paths"][path].is_object(),
            "{field} {path} is not documented"
        );
    }

    // Every $ref resolves.
    let text = uplink_hub::oauth::openapi::DOCUMENT;
    for reference in text.split("\"$ref\": \"#/").skip(1) {
        let pointer = &reference[..reference.find('"').unwrap()];
        assert!(
            doc.pointer(&format!("/{pointer}")).is_some(),
            "dangling $ref #/{pointer}"
        );
    }

    // Every documented POST endpoint answers an empty form with an OAuth error, not a miss;
    // userinfo, a bearer-protected resource, asks for the token as RFC 6750 says.
    let userinfo = hub
        .client
        .post(hub.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    assert!(
        userinfo.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "{:?}",
        userinfo.headers()
    );
    for (method, path) in &documented {
        if method != "post" || path == "/oauth/userinfo" {
            continue;
        }
        let r = hub
            .client
            .post(hub.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(
            status.is_client_error() && status != StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}
