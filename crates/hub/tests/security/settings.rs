use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::harness::*;

#[tokio::test]
async fn settings_lists_grants_and_revokes_one_source_then_the_app() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id, &hub.lab.id]).await;
    let cookie = hub.sign_in().await;
    let page = hub
        .client
        .get(hub.url("/account/settings"))
        .headers(TestHub::cookie_header(&cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Public App") && page.contains("historian") && page.contains("lab"));
    assert!(page.contains("Plant A"), "owned connectors are listed");
    let csrf = hidden_input(&page, "csrf").unwrap();

    // A cross-site revoke is refused (and changes nothing).
    let mut evil = TestHub::cookie_header(&cookie);
    evil.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = hub
        .settings_revoke(evil, &csrf, PUBLIC_APP, Some(&hub.lab.id))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        hub.access(&tokens.access, &hub.lab.id).await,
        StatusCode::OK
    );

    let r = hub
        .settings_revoke(
            hub.same_origin(Some(&cookie)),
            &csrf,
            PUBLIC_APP,
            Some(&hub.lab.id),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        hub.access(&tokens.access, &hub.lab.id).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::OK
    );

    let r = hub
        .settings_revoke(hub.same_origin(Some(&cookie)), &csrf, PUBLIC_APP, None)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(hub.grant_count().await, 0);
    let events = hub.hub.store.audit_events(50).await.unwrap();
    assert!(
        events.iter().filter(|e| e.event == "revoke").count() >= 2,
        "revokes are audited"
    );
}

#[tokio::test]
async fn removing_an_app_revokes_everything_and_is_announced() {
    let hub = TestHub::start().await;
    let mut announcements = hub.hub.announcer.subscribe();
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    hub.hub.remove_app(PUBLIC_APP).await.unwrap();
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
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the app no longer exists"
    );
    let mut heard = false;
    while let Ok(a) = announcements.try_recv() {
        heard |= a
            == uplink_hub::revocation::Revocation::AppRemoved {
                app_id: PUBLIC_APP.into(),
            };
    }
    assert!(heard);
}

#[tokio::test]
async fn settings_show_whether_a_connector_is_linked_and_which_sources_it_stopped_offering() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let settings = || async {
        hub.client
            .get(hub.url("/account/settings"))
            .headers(TestHub::cookie_header(&cookie))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let page = settings().await;
    assert!(page.contains("offline") && !page.contains(">online<"));
    assert!(!page.contains("no longer offered"));
    // The connector announces only the historian: the lab stays, marked.
    let historian = uplink_model::DataSourceDescriptor {
        name: "historian".into(),
        kind: "simulated".into(),
        description: "Process historian".into(),
        capabilities: uplink_model::Capabilities::all_from_raw(),
    };
    hub.hub
        .store
        .announce_sources(
            &hub.historian.connector_id,
            &[historian],
            &Default::default(),
            1,
        )
        .await
        .unwrap();
    let page = settings().await;
    assert_eq!(page.matches("no longer offered").count(), 1);
    let lab_line = &page[page.find(">lab").expect("lab listed")..];
    let marker = lab_line
        .find("no longer offered")
        .expect("the lab is marked");
    assert!(
        marker < lab_line.find("</li>").unwrap(),
        "the mark is on the lab"
    );
}
