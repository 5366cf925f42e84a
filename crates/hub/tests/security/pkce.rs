use reqwest::StatusCode;

use crate::harness::*;

fn without(params: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    params.into_iter().filter(|(k, _)| k != name).collect()
}

fn with(params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    let mut p = without(params, name);
    p.push((name.into(), value.into()));
    p
}

async fn refused_to_app(hub: &TestHub, cookie: &str, params: &[(String, String)], error: &str) {
    let r = hub.authorize_raw(cookie, params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(
        loc.starts_with(PUBLIC_REDIRECT),
        "error goes back to the app: {loc}"
    );
    assert_eq!(query_param(&loc, "error").as_deref(), Some(error));
    assert_eq!(query_param(&loc, "code"), None, "no code");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(hub.issuer.as_str())
    );
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let good = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    refused_to_app(
        &hub,
        &cookie,
        &without(good.clone(), "code_challenge"),
        "invalid_request",
    )
    .await;
    // Without a method the default would be `plain`: a downgrade, refused.
    refused_to_app(
        &hub,
        &cookie,
        &without(good.clone(), "code_challenge_method"),
        "invalid_request",
    )
    .await;
    refused_to_app(
        &hub,
        &cookie,
        &with(good.clone(), "code_challenge_method", "plain"),
        "invalid_request",
    )
    .await;
    refused_to_app(
        &hub,
        &cookie,
        &with(good.clone(), "code_challenge", "short"),
        "invalid_request",
    )
    .await;
    assert_eq!(hub.grant_count().await, 0);
}

#[tokio::test]
async fn a_wrong_missing_or_downgraded_verifier_is_refused() {
    let hub = TestHub::start().await;
    let challenge = uplink_hub::secret::pkce_s256(VERIFIER);
    for (verifier, expected) in [
        (None, "invalid_request"),
        (
            Some("a-different-verifier-that-is-long-enough-0123456789"),
            "invalid_grant",
        ),
        // "plain" downgrade: presenting the challenge itself as the verifier.
        (Some(challenge.as_str()), "invalid_grant"),
    ] {
        // A fresh code for each attempt, so each check is the one that refuses.
        let code = hub
            .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
            .await;
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code.code.as_str()),
            ("redirect_uri", PUBLIC_REDIRECT),
        ];
        if let Some(v) = verifier {
            fields.push(("code_verifier", v));
        }
        let r = hub.token_request(PUBLIC_APP, &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], expected);
        assert!(body.get("access_token").is_none());
        if expected == "invalid_grant" {
            // The right verifier cannot rescue a code that failed a check: it is spent.
            let r = hub.exchange(PUBLIC_APP, &code).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
    }
}
