use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::harness::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start_device(hub: &TestHub) -> (String, String) {
    let r = hub
        .client
        .post(hub.url("/oauth/device_authorization"))
        .form(&[("client_id", PUBLIC_APP), ("scope", "connector")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["verification_uri"],
        format!("{}/account/device", hub.issuer)
    );
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

async fn poll(hub: &TestHub, device_code: &str, client: &str) -> (StatusCode, serde_json::Value) {
    let r = hub
        .client
        .post(hub.url("/oauth/token"))
        .form(&[
            ("grant_type", GRANT),
            ("device_code", device_code),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn device_form(hub: &TestHub, cookie: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let r = hub
        .client
        .post(hub.url("/account/device"))
        .headers(hub.same_origin(Some(cookie)))
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn session_csrf(hub: &TestHub, cookie: &str) -> String {
    let page = hub
        .client
        .get(hub.url("/account/device"))
        .headers(TestHub::cookie_header(cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    hidden_input(&page, "csrf").unwrap()
}

#[tokio::test]
async fn a_device_is_approved_once_and_gets_no_data_source() {
    let hub = TestHub::start().await;
    let (device_code, user_code) = start_device(&hub).await;
    let (status, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let (_, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert_eq!(body["error"], "slow_down");

    let cookie = hub.sign_in().await;
    let csrf = session_csrf(&hub, &cookie).await;
    // A cross-site approval is refused.
    let mut evil = TestHub::cookie_header(&cookie);
    evil.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = hub
        .client
        .post(hub.url("/account/device"))
        .headers(evil)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user_code", user_code.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert!(body.get("access_token").is_none());

    let (status, page) = device_form(
        &hub,
        &cookie,
        &[("csrf", &csrf), ("user_code", "BCDF-GHJK")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not valid"));
    // Typed in lower case without the dash: still found.
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, page) =
        device_form(&hub, &cookie, &[("csrf", &csrf), ("user_code", &typed)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Connect a site connector to your account"));
    assert!(
        !page.contains("type=\"checkbox\""),
        "no data source to tick"
    );
    let (status, page) = device_form(
        &hub,
        &cookie,
        &[
            ("csrf", &csrf),
            ("user_code", &typed),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Device connected"));

    // Another client cannot collect it.
    let (_, body) = poll(&hub, &device_code, CONF_APP).await;
    assert!(body.get("access_token").is_none());
    let (status, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body["scope"], "connector");
    // Approval grants scopes, never a data source.
    assert_eq!(
        hub.access(&access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(hub.grant_count().await, 0);
    // Redeemed once only.
    let (_, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert_eq!(body["error"], "expired_token");
}

#[tokio::test]
async fn a_denied_device_gets_nothing() {
    let hub = TestHub::start().await;
    let (device_code, user_code) = start_device(&hub).await;
    let cookie = hub.sign_in().await;
    let csrf = session_csrf(&hub, &cookie).await;
    let (status, page) = device_form(
        &hub,
        &cookie,
        &[
            ("csrf", &csrf),
            ("user_code", &user_code),
            ("decision", "deny"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Request denied"));
    let (status, body) = poll(&hub, &device_code, PUBLIC_APP).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied"))
    );
    assert!(body.get("access_token").is_none());
    // A decided code cannot be approved afterwards.
    let (status, _) = device_form(
        &hub,
        &cookie,
        &[
            ("csrf", &csrf),
            ("user_code", &user_code),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_approval_page_says_who_asked_when_and_from_where_and_warns() {
    let hub = TestHub::start().await;
    // The device asks from its own address.
    let r = hub
        .client_from([127, 0, 0, 7])
        .post(hub.url("/oauth/device_authorization"))
        .form(&[("client_id", PUBLIC_APP), ("scope", "connector")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    let cookie = hub.sign_in().await;
    let csrf = session_csrf(&hub, &cookie).await;
    let (status, page) =
        device_form(&hub, &cookie, &[("csrf", &csrf), ("user_code", &user_code)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Public App"), "names the client: {page}");
    assert!(page.contains(PUBLIC_APP), "and its client id");
    assert!(page.contains("Asked from"));
    assert!(
        page.contains("127.0.0.7"),
        "the address the device asked from"
    );
    assert!(page.contains("Asked at"));
    assert!(page.contains("less than a minute ago"), "when it asked");
    assert!(
        page.contains("Only approve a code you started yourself, on a device you own"),
        "a plain warning"
    );
}

#[tokio::test]
async fn a_code_filled_in_from_a_link_is_said_to_come_from_the_link() {
    let hub = TestHub::start().await;
    let (_device_code, user_code) = start_device(&hub).await;
    let cookie = hub.sign_in().await;
    let page = |query: String| {
        let hub = &hub;
        let cookie = &cookie;
        async move {
            hub.client
                .get(hub.url(&format!("/account/device{query}")))
                .headers(TestHub::cookie_header(cookie))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let linked = page(format!("?user_code={user_code}")).await;
    assert!(
        linked.contains(&format!("value=\"{user_code}\"")),
        "pre-filled"
    );
    assert!(
        linked.contains("filled in from the link you opened"),
        "and says so: {linked}"
    );
    assert!(linked.contains("Only approve a code you started yourself"));
    let typed = page(String::new()).await;
    assert!(!typed.contains("filled in from the link"));
}
