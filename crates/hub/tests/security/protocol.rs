use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn implicit_and_password_grants_are_refused() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let mut params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    params.retain(|(k, _)| k != "response_type");
    params.push(("response_type".into(), "token".into()));
    let r = hub.authorize_raw(&cookie, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert!(
        !loc.contains("access_token") && !loc.contains('#'),
        "no token in {loc}"
    );

    for grant_type in ["password", "client_credentials", "implicit"] {
        // Client credentials exist, for connectors only: an app is refused for the grant.
        let expected = if grant_type == "client_credentials" {
            "unauthorized_client"
        } else {
            "unsupported_grant_type"
        };
        let r = hub
            .token_request(
                CONF_APP,
                &[
                    ("grant_type", grant_type),
                    ("username", "ada"),
                    ("password", PASSWORD),
                    ("scope", "data.read"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{grant_type}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], expected, "{grant_type}");
        assert!(body.get("access_token").is_none());
    }
    assert_eq!(hub.grant_count().await, 0);
}

#[tokio::test]
async fn duplicate_parameters_are_refused() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    for name in [
        "client_id",
        "redirect_uri",
        "scope",
        "code_challenge",
        "state",
    ] {
        let mut params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
        let value = params.iter().find(|(k, _)| k == name).unwrap().1.clone();
        params.push((name.into(), value));
        let r = hub.authorize_raw(&cookie, &params).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name} twice");
        assert!(
            r.headers().get("location").is_none(),
            "{name} twice: no redirect"
        );
    }
    let code = hub
        .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
        .await;
    let r = hub
        .token_request(
            PUBLIC_APP,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("code", "another"),
                ("redirect_uri", PUBLIC_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("'code'")
    );
    // The refused request did not spend the code.
    assert_eq!(
        hub.exchange(PUBLIC_APP, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn introspection_needs_client_authentication() {
    let hub = TestHub::start().await;
    let code = hub
        .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.historian.id])
        .await;
    let tokens = TestHub::tokens(hub.exchange(CONF_APP, &code).await).await;
    let url = hub.url("/oauth/introspect");
    // Nobody.
    let r = hub
        .client
        .post(&url)
        .form(&[("token", tokens.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body.get("active").is_none());
    // A wrong secret.
    let r = hub
        .client
        .post(&url)
        .basic_auth(CONF_APP, Some("wrong-secret"))
        .form(&[("token", tokens.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A public client (no secret to prove anything with).
    let r = hub
        .client
        .post(&url)
        .form(&[("token", tokens.access.as_str()), ("client_id", PUBLIC_APP)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The owner, properly authenticated.
    let r = hub
        .client
        .post(&url)
        .basic_auth(CONF_APP, Some(&hub.conf_secret))
        .form(&[("token", tokens.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], CONF_APP);
}

#[tokio::test]
async fn rfc7009_revocation_ends_the_family() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let r = hub
        .client
        .post(hub.url("/oauth/revoke"))
        .form(&[
            ("token", tokens.refresh.as_str()),
            ("client_id", PUBLIC_APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    let r = hub
        .token_request(
            PUBLIC_APP,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Unknown tokens are answered the same way (no oracle).
    let r = hub
        .client
        .post(hub.url("/oauth/revoke"))
        .form(&[("token", "not-a-token"), ("client_id", PUBLIC_APP)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn confidential_clients_must_prove_their_secret() {
    let hub = TestHub::start().await;
    let code = hub
        .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.historian.id])
        .await;
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", CONF_REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", CONF_APP),
    ];
    let r = hub
        .client
        .post(hub.url("/oauth/token"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = hub
        .client
        .post(hub.url("/oauth/token"))
        .basic_auth(CONF_APP, Some("guessed"))
        .form(&fields[..4])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none());
    // The failed attempts did not spend the code.
    assert_eq!(hub.exchange(CONF_APP, &code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn metadata_describes_the_server() {
    let hub = TestHub::start().await;
    let r = hub.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: serde_json::Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], hub.issuer.as_str());
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(m["token_endpoint"], format!("{}/oauth/token", hub.issuer));
}

#[tokio::test]
async fn introspection_reports_a_spent_refresh_token_inactive() {
    let hub = TestHub::start().await;
    let code = hub
        .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.historian.id])
        .await;
    let first = TestHub::tokens(hub.exchange(CONF_APP, &code).await).await;
    let second = TestHub::tokens(
        hub.token_request(
            CONF_APP,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first.refresh),
            ],
        )
        .await,
    )
    .await;
    let introspect = |token: String| {
        let hub = &hub;
        async move {
            let r = hub
                .client
                .post(hub.url("/oauth/introspect"))
                .basic_auth(CONF_APP, Some(&hub.conf_secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            body["active"].as_bool().unwrap()
        }
    };
    assert!(!introspect(first.refresh.clone()).await, "spent");
    assert!(introspect(second.refresh.clone()).await, "current");
}
