//! The user's profile against a real hub over TLS: the settings page sets the display name and
//! email, and the guide's userinfo `curl` example answers them to an app granted `profile`
//! and `email`.

use reqwest::StatusCode;
use serde_json::Value;
use uplink_hub::NewApp;
use uplink_testkit::*;

const PROFILE_APP: &str = "profile-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_sets_the_profile_and_userinfo_answers_it_as_the_guide_shows() {
    let hub = TestHub::start().await;
    let h = hub.hub.clone();
    hub.run(async move {
        h.add_app(NewApp {
            name: "Profile".into(),
            client_id: Some(PROFILE_APP.into()),
            confidential: false,
            redirect_uris: vec![PUBLIC_REDIRECT.into()],
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
        })
        .await
        .unwrap();
    })
    .await;
    let cookie = hub.sign_in().await;
    let csrf = hub.page_csrf(&cookie, "/account/settings").await;
    let save = |name: &'static str, email: &'static str| {
        hub.client
            .post(hub.url("/account/settings/profile"))
            .headers(hub.same_origin(Some(&cookie)))
            .form(&[
                ("csrf", csrf.as_str()),
                ("display_name", name),
                ("email", email),
            ])
            .send()
    };
    let r = save("Ada Lovelace", "not an address").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an email is checked");
    let r = save("Ada Lovelace", "ada@example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = hub
        .client
        .get(hub.url("/account/settings"))
        .headers(cookie_header(&cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"value="ada@example.com""#), "shown again");

    // Consent to openid, profile and email; the token's userinfo, as docs/api.md's example asks.
    let mut params = authorize_params(PROFILE_APP, PUBLIC_REDIRECT);
    params.retain(|(k, _)| k != "scope");
    params.push(("scope".into(), "openid profile email".into()));
    let request = hub.start_authorization(&cookie, &params).await;
    let consent_csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", request.as_str()),
                ("csrf", consent_csrf.as_str()),
                ("decision", "approve"),
                ("scope", "openid"),
                ("scope", "profile"),
                ("scope", "email"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = Code {
        code: query_param(&location(&r), "code").unwrap(),
        redirect_uri: PUBLIC_REDIRECT.into(),
    };
    let tokens = tokens(hub.exchange(PROFILE_APP, &code).await).await;

    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let example = guide
        .split("curl ")
        .find(|c| {
            c.lines()
                .next()
                .unwrap_or("")
                .contains("\"$HUB/oauth/userinfo\"")
        })
        .expect("the guide's userinfo example");
    assert!(example.contains(r#"-H "Authorization: Bearer $TOKEN""#));
    let r = hub
        .client
        .get(hub.url("/oauth/userinfo"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], hub.user.id.as_str());
    assert_eq!(info["name"], "Ada Lovelace");
    assert_eq!(info["preferred_username"], USER);
    assert_eq!(info["email"], "ada@example.com");
    // The shape the guide shows: the same keys.
    let shown = example
        .lines()
        .find(|l| l.trim_start().starts_with("# {"))
        .expect("the example's answer");
    for key in ["sub", "name", "preferred_username", "email"] {
        assert!(shown.contains(&format!("\"{key}\"")), "{shown}");
    }
}

/// A rotated ID-token key: new tokens carry the new `kid`, and the old key stays in the JWKS
/// beside it while tokens it signed may still be valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_the_jwks_publishes_the_old_and_the_new_key() {
    let hub = TestHub::start().await;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let jwks: Value = hub.get("/oauth/jwks").await.json().await.unwrap();
    let old = kids(&jwks);
    assert_eq!(old.len(), 1);
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let new = hub.hub.id_keys.rotate().unwrap();
    let jwks: Value = hub.get("/oauth/jwks").await.json().await.unwrap();
    assert_eq!(kids(&jwks), vec![new, old[0].clone()]);
    let discovery: Value = hub
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["jwks_uri"], hub.url("/oauth/jwks"));
    assert_eq!(discovery["issuer"], hub.issuer.as_str());
}

/// An ID-token key rotated by another process on the same store (an admin command, another
/// replica) is used here without a restart: the change feed tells the serving hub to re-read
/// its key file, and its JWKS, which looks at the file on each request, publishes the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_key_rotated_by_another_process_signs_here_without_a_restart() {
    let hub = TestHub::start().await;
    let before = hub.hub.id_keys.current_key_id();
    let data_dir = hub.data_dir();
    let rotated = hub
        .run(async move {
            let other = uplink_hub::Hub::open(
                &data_dir,
                uplink_hub::HubConfig::new("https://admin.invalid"),
            )
            .await
            .unwrap();
            other.rotate_id_token_key().await.unwrap()
        })
        .await;
    assert_ne!(rotated, before);
    // The feed's news, not a request, makes the serving hub sign with the new key.
    let mut waited = 0;
    while hub.hub.id_keys.current_key_id() != rotated {
        assert!(waited < 300, "the serving hub never heard of the rotation");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let jwks: Value = hub.get("/oauth/jwks").await.json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![rotated.as_str(), before.as_str()]);
}
