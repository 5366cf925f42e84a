//! A `POST …/query` body is parsed once and the scope checked is the scope of the query that
//! runs: a body naming `type` twice is refused, not checked as one operation and run as
//! another.

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn a_query_body_naming_its_type_twice_is_refused() {
    let hub = TestHub::start().await;
    // The confidential app may read values (`data.read`) but not list tags (`tags.read`).
    let code = hub
        .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.historian.id])
        .await;
    let tokens = TestHub::tokens(hub.exchange(CONF_APP, &code).await).await;
    for body in [
        r#"{"type":"raw","type":"search","pattern":"*"}"#,
        r#"{"type":"search","type":"raw","tag":"T","start":"*-1h"}"#,
    ] {
        let r = hub
            .client
            .post(hub.url(&format!("/api/v1/sources/{}/query", hub.historian.id)))
            .bearer_auth(&tokens.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: serde_json::Value = r.json().await.unwrap();
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("given more than once")),
            "{error}"
        );
    }
    // A search the token has no scope for is refused as such, whatever the body says first.
    let r = hub
        .client
        .post(hub.url(&format!("/api/v1/sources/{}/query", hub.historian.id)))
        .bearer_auth(&tokens.access)
        .header("content-type", "application/json")
        .body(r#"{"type":"search","pattern":"*"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
