//! Issue 16 item 4: the owner ends every sign-in, and the links those sign-ins opened close at
//! once — from the settings page, by a new password, by removing the connector, and by an
//! administrator's command run in another process beside the running hub.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use uplink_hub::password::Passwords;
use uplink_hub::store::SqliteStore;
use uplink_hub::{Hub, HubConfig};

use crate::harness::*;
use crate::links::*;

const OWN_ID: &str = "con_signed-in-connector-0002";

async fn settings_page(hub: &TestHub, cookie: &str) -> String {
    hub.client
        .get(hub.url("/account/settings"))
        .headers(TestHub::cookie_header(cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The CSRF token of the page's form that revokes `family`.
fn revoke_form_csrf(page: &str, family: &str) -> String {
    let at = page
        .find(&format!("name=\"family\" value=\"{family}\""))
        .expect("the sign-in has a revoke button");
    let form = &page[page[..at].rfind("<form").unwrap()..at];
    assert!(form.contains("action=\"/account/settings/revoke-sign-in\""));
    hidden_input(form, "csrf").unwrap()
}

#[tokio::test]
async fn settings_list_sign_ins_and_revoking_one_closes_its_live_link() {
    let hub = TestHub::start().await;
    let tokens = hub.connector_sign_in().await;
    let family = hub.hub.keys.verify(&tokens.access).unwrap().family_id;
    let mut link = Link::open(&hub, tokens.access.clone()).await;
    link.register(OWN_ID).await.unwrap();

    let cookie = hub.sign_in().await;
    let page = settings_page(&hub, &cookie).await;
    let row = &page[page.find("Signed-in connectors and devices").unwrap()..];
    assert!(
        row.contains("Connector press-shop-pc"),
        "named by its connector"
    );
    assert!(row.contains("Uplink connector"), "and its client");
    assert!(row.contains("<code>127.0.0.1</code>"), "from where");
    assert!(row.contains(" UTC"), "when signed in and last used");
    let csrf = revoke_form_csrf(&page, &family);

    // Cross-site, without the token, or for a sign-in of another account: refused, nothing ends.
    let mut evil = TestHub::cookie_header(&cookie);
    evil.insert("origin", HeaderValue::from_static("https://evil.example"));
    let post = |headers, fields: Vec<(&'static str, String)>| {
        hub.client
            .post(hub.url("/account/settings/revoke-sign-in"))
            .headers(headers)
            .form(&fields)
            .send()
    };
    let r = post(
        evil,
        vec![("csrf", csrf.clone()), ("family", family.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(
        hub.same_origin(Some(&cookie)),
        vec![("csrf", "wrong".into()), ("family", family.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let bob = hub
        .hub
        .add_user("bob", "another long password".into())
        .await
        .unwrap();
    let bobs_family = {
        let store = &hub.hub.store;
        let code = uplink_hub::store::CodeGrant {
            app_id: PUBLIC_APP.into(),
            user_id: bob.id.clone(),
            redirect_uri: PUBLIC_REDIRECT.into(),
            scopes: vec!["data.read".into()],
            code_challenge: "c".into(),
            nonce: None,
            auth_time: 0,
            created_at: 0,
            expires_at: i64::MAX,
        };
        store.create_code(b"bobs", &code).await.unwrap();
        match store.redeem_code(b"bobs", 1).await.unwrap() {
            uplink_hub::store::CodeRedemption::Fresh { family_id, .. } => family_id,
            other => panic!("{other:?}"),
        }
    };
    let r = post(
        hub.same_origin(Some(&cookie)),
        vec![("csrf", csrf.clone()), ("family", bobs_family.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let bobs = hub.hub.store.family(&bobs_family).await.unwrap().unwrap();
    assert!(
        bobs.revoked_at.is_none(),
        "another account's sign-in is untouched"
    );
    assert!(link.alive().await);

    let r = post(
        hub.same_origin(Some(&cookie)),
        vec![("csrf", csrf), ("family", family.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (why, took) = link.closed().await;
    eprintln!("settings revoke closed the link in {took:?}");
    assert!(why.contains("revoked"), "{why}");
    assert!(!hub.hub.relay().is_online(OWN_ID));
    assert_eq!(
        hub.negotiate(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        hub.refresh_connector(&tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    let page = settings_page(&hub, &cookie).await;
    assert!(
        !page.contains(&family),
        "a revoked sign-in is no longer listed"
    );
    link.stop().await;
}

/// Why a sign-in revoked from the settings form left its link heartbeating: "Revoke all
/// access" of an app revoked the app's token families in the store (its last grant gone) but
/// announced only the grant, so a link opened by one of those families never heard of it.
#[tokio::test]
async fn revoking_an_apps_access_closes_links_its_sign_ins_opened() {
    let hub = TestHub::start().await;
    // The public app may ask for `connector`: it signs a connector in, and holds a grant.
    let cookie = hub.sign_in().await;
    let mut params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    for (k, v) in &mut params {
        if k == "scope" {
            *v = "connector".into();
        }
    }
    let request = hub.start_authorization(&cookie, &params).await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .decide_consent(&cookie, &request, &csrf, "approve", "connector")
        .await;
    let code = Code {
        code: query_param(&location(&r), "code").unwrap(),
        redirect_uri: PUBLIC_REDIRECT.into(),
    };
    let connector = TestHub::tokens(hub.exchange(PUBLIC_APP, &code).await).await;
    let _data = hub.grant_public(&[&hub.historian.id]).await;
    // Two links of that sign-in: one registered, one not yet.
    let mut registered = Link::open(&hub, connector.access.clone()).await;
    registered.register(OWN_ID).await.unwrap();
    let mut unregistered = Link::open(&hub, connector.access.clone()).await;

    let page = settings_page(&hub, &cookie).await;
    let csrf = hidden_input(&page, "csrf").unwrap();
    let r = hub
        .settings_revoke(hub.same_origin(Some(&cookie)), &csrf, PUBLIC_APP, None)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (why, _) = registered.closed().await;
    assert!(why.contains("revoked"), "{why}");
    let (why, _) = unregistered.closed().await;
    assert!(why.contains("revoked"), "{why}");
    registered.stop().await;
    unregistered.stop().await;
}

#[tokio::test]
async fn a_new_password_revokes_every_sign_in_and_closes_its_links() {
    let hub = TestHub::start().await;
    let tokens = hub.connector_sign_in().await;
    let mut link = Link::open(&hub, tokens.access.clone()).await;
    link.register(OWN_ID).await.unwrap();
    let app = hub.grant_public(&[&hub.historian.id]).await;

    hub.hub
        .set_password("ada", "a brand new password".into())
        .await
        .unwrap();
    let (why, _) = link.closed().await;
    assert!(why.contains("revoked"), "{why}");
    assert_eq!(
        hub.refresh_connector(&tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        hub.access(&app.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN,
        "the apps' sign-ins end too"
    );
    assert!(
        hub.hub
            .store
            .sign_ins_of(&hub.user.id, uplink_hub::clock::now())
            .await
            .unwrap()
            .is_empty()
    );
    link.stop().await;
}

#[tokio::test]
async fn removing_a_connector_revokes_its_sign_in_and_its_id_is_never_registered_again() {
    let hub = TestHub::start().await;
    let tokens = hub.connector_sign_in().await;
    let mut link = Link::open(&hub, tokens.access.clone()).await;
    link.register(OWN_ID).await.unwrap();

    hub.hub.remove_connector(OWN_ID).await.unwrap();
    let (why, _) = link.closed().await;
    assert!(why.contains("removed"), "{why}");
    assert_eq!(
        hub.refresh_connector(&tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST,
        "the sign-in that created it is revoked"
    );
    // A fresh sign-in cannot bring the removed id back.
    let again = Link::open(&hub, hub.connector_sign_in().await.access).await;
    let err = again.register(OWN_ID).await.unwrap_err().to_string();
    assert!(err.contains("removed from this hub"), "{err}");
    assert!(hub.hub.store.connector(OWN_ID).await.unwrap().is_none());
    again.stop().await;
    link.stop().await;
}

/// The hub as an admin command opens it: its own process, its own store handle on the same
/// file, no server. What it revokes must reach the serving hub's live links.
async fn admin(hub: &TestHub) -> Hub {
    let store = SqliteStore::open(&hub.data_dir().join("hub.db"))
        .await
        .unwrap();
    Hub::new(
        Arc::new(store),
        HubConfig::new("https://admin.invalid"),
        Passwords::with_cost(4, 64, 1),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn revokes_by_another_process_reach_the_serving_hubs_links() {
    let hub = TestHub::start().await;
    let admin = admin(&hub).await;

    // A sign-in revoked by the other process.
    let tokens = hub.connector_sign_in().await;
    let mut link = Link::open(&hub, tokens.access.clone()).await;
    link.register(OWN_ID).await.unwrap();
    let family = hub.hub.keys.verify(&tokens.access).unwrap().family_id;
    assert!(admin.revoke_family(&family, "admin").await.unwrap());
    let (why, took) = link.closed().await;
    eprintln!("a revoke from another process closed the link in {took:?}");
    assert!(why.contains("revoked"), "{why}");

    // A connector removed by the other process.
    let plant = hub.hub.add_connector("ada", "Plant B").await.unwrap();
    let id = plant.connector.id.clone();
    let mut provisioned = Link::open(
        &hub,
        hub.credential_token(&id, plant.credential.expose()).await,
    )
    .await;
    provisioned.register(&id).await.unwrap();
    admin.remove_connector(&id).await.unwrap();
    let (why, took) = provisioned.closed().await;
    eprintln!("a removal from another process closed the link in {took:?}");
    assert!(why.contains("removed"), "{why}");

    // A new password set by the other process.
    let tokens = hub.connector_sign_in().await;
    let mut link = Link::open(&hub, tokens.access.clone()).await;
    link.register("con_signed-in-connector-0003").await.unwrap();
    admin
        .set_password("ada", "a brand new password".into())
        .await
        .unwrap();
    let (why, _) = link.closed().await;
    assert!(why.contains("revoked"), "{why}");
    link.stop().await;
    provisioned.stop().await;
}
