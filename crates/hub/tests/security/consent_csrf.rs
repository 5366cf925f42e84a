use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::harness::*;

fn cross_site(cookie: &str) -> HeaderMap {
    let mut h = TestHub::cookie_header(cookie);
    h.insert("origin", HeaderValue::from_static("https://evil.example"));
    h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    h
}

async fn assert_refused(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers().get("location").is_none(),
        "no redirect, so no code"
    );
}

#[tokio::test]
async fn consent_forgeries_are_refused_and_grant_nothing() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    let request = hub.start_authorization(&cookie, &params).await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let other_request = hub.start_authorization(&cookie, &params).await;
    let foreign = hub.consent_token(&cookie, &other_request).await;
    let source = hub.historian.id.clone();
    let form = |token: Option<&str>| {
        let mut f = vec![
            ("request", request.clone()),
            ("decision", "approve".to_owned()),
            ("scope", "data.read".to_owned()),
            ("source", source.clone()),
        ];
        if let Some(t) = token {
            f.push(("csrf", t.to_owned()));
        }
        f
    };
    let post = |headers: HeaderMap, fields: Vec<(&'static str, String)>| {
        let fields: Vec<(&str, String)> = fields;
        hub.client
            .post(hub.url("/account/consent"))
            .headers(headers)
            .form(&fields)
            .send()
    };
    // Cross-origin POST, even carrying the right token and cookie.
    assert_refused(post(cross_site(&cookie), form(Some(&csrf))).await.unwrap()).await;
    // No Origin and no Sec-Fetch-Site at all.
    assert_refused(
        post(TestHub::cookie_header(&cookie), form(Some(&csrf)))
            .await
            .unwrap(),
    )
    .await;
    // Missing token.
    assert_refused(
        post(hub.same_origin(Some(&cookie)), form(None))
            .await
            .unwrap(),
    )
    .await;
    // A token from another consent transaction.
    assert_refused(
        post(hub.same_origin(Some(&cookie)), form(Some(&foreign)))
            .await
            .unwrap(),
    )
    .await;
    // A token from another session of the same user.
    let other_cookie = hub.sign_in().await;
    assert_refused(
        post(hub.same_origin(Some(&other_cookie)), form(Some(&csrf)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(hub.grant_count().await, 0, "nothing was granted");
    // The genuine form still works afterwards: the refusals did not break the transaction.
    let r = post(hub.same_origin(Some(&cookie)), form(Some(&csrf)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(hub.grant_count().await, 1);
}

#[tokio::test]
async fn consent_page_cannot_be_framed_and_ticks_nothing() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub
        .start_authorization(
            &cookie,
            &TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT),
        )
        .await;
    let r = hub
        .client
        .get(hub.url(&format!("/account/consent?request={request}")))
        .headers(TestHub::cookie_header(&cookie))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(html.contains("Public App"));
    assert!(html.contains("historian") && html.contains("lab"));
    // Data-source boxes are never pre-ticked.
    for line in html.split('<').filter(|t| t.contains("name=\"source\"")) {
        assert!(
            !line.contains("checked"),
            "a data source was ticked by default: {line}"
        );
    }
}

#[tokio::test]
async fn approving_without_a_source_grants_nothing() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub
        .start_authorization(
            &cookie,
            &TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT),
        )
        .await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .decide_consent(&cookie, &request, &csrf, "approve", "data.read")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Tick at least one data source")
    );
    // A source the user does not own cannot be slipped in either.
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
                ("scope", "data.read"),
                ("source", "src_00000000000000000000"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Nor a scope the app did not ask for.
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "approve"),
                ("scope", "tags.read"),
                ("source", &hub.historian.id),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(hub.grant_count().await, 0);
}

#[tokio::test]
async fn deny_returns_access_denied_and_grants_nothing() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub
        .start_authorization(
            &cookie,
            &TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT),
        )
        .await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "deny"),
                ("source", &hub.historian.id),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "code"), None);
    assert_eq!(hub.grant_count().await, 0);
}

#[tokio::test]
async fn cross_site_sign_in_is_refused() {
    let hub = TestHub::start().await;
    let mut h = HeaderMap::new();
    h.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = hub
        .client
        .post(hub.url("/account/login"))
        .headers(h)
        .form(&[("username", "ada"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none(), "no session");
}
