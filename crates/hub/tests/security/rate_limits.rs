//! Rate limits cannot be spent by someone else: an attacker's failures are charged to the
//! attacker's address, never to the owner's account or to a client everyone shares. Each
//! party calls from its own loopback address (127.0.0.2, 127.0.0.3: all of 127/8 reaches the
//! hub on 127.0.0.1), so the hub sees distinct callers as it would on a network.

use std::num::NonZeroU32;
use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::*;

const ATTACKER: [u8; 4] = [127, 0, 0, 2];
const OWNER: [u8; 4] = [127, 0, 0, 3];

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

async fn sign_in_from(
    hub: &TestHub,
    client: &reqwest::Client,
    password: &str,
) -> reqwest::Response {
    client
        .post(hub.url("/account/login"))
        .headers(hub.same_origin(None))
        .form(&[("username", "ada"), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_passwords_from_one_address_never_lock_the_owner_out() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.sign_in_per_address = n(5);
        c.rate_limits.sign_in_per_account = n(3);
        c.rate_limits.sign_in_failures_per_account = n(3);
        c.rate_limits.sign_in_backoff = Duration::from_millis(50);
    })
    .await;
    let attacker = hub.client_from(ATTACKER);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            sign_in_from(&hub, &attacker, "not the password at all")
                .await
                .status(),
        );
    }
    assert_eq!(&statuses[..5], &[StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(
        &statuses[5..],
        &[StatusCode::TOO_MANY_REQUESTS; 2],
        "the attacker's own address ran out"
    );
    // More failures than the account's failure budget: the owner, from their own address,
    // still signs in (after the backoff), and gets a session.
    let owner = hub.client_from(OWNER);
    let r = sign_in_from(&hub, &owner, PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the owner is not locked out"
    );
    assert!(r.headers().get("set-cookie").is_some());
    // A wrong password from the owner's address still fails as wrong, not as limited.
    let r = sign_in_from(&hub, &owner, "a typo").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let audit = hub.hub.store.audit_events(50).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.event == "sign_in_failed").count(),
        6,
        "every checked wrong password is audited, none refused before checking was"
    );
}

#[tokio::test]
async fn successful_sign_ins_spend_the_accounts_own_budget() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.sign_in_per_account = n(2);
    })
    .await;
    let owner = hub.client_from(OWNER);
    for _ in 0..2 {
        assert_eq!(
            sign_in_from(&hub, &owner, PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
    }
    let r = sign_in_from(&hub, &owner, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("set-cookie").is_none());
}

async fn refresh_from(
    hub: &TestHub,
    client: &reqwest::Client,
    refresh_token: &str,
) -> reqwest::Response {
    client
        .post(hub.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", PUBLIC_APP),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flood_with_a_public_client_id_never_refuses_a_valid_refresh_from_elsewhere() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.token_per_app = n(5);
        c.rate_limits.token_failures_per_address = n(5);
    })
    .await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    // Anyone can name a public client: the attacker floods the token endpoint with its id.
    let attacker = hub.client_from(ATTACKER);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            refresh_from(&hub, &attacker, &format!("guess-{i}"))
                .await
                .status(),
        );
    }
    assert_eq!(&statuses[..5], &[StatusCode::BAD_REQUEST; 5]);
    assert!(
        statuses[5..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "the attacker's address ran out of failures: {statuses:?}"
    );
    // The owner's app refreshes from its own address: never refused for the attacker's
    // failures, and its own budget is its own.
    let owner = hub.client_from(OWNER);
    let mut refresh = tokens.refresh;
    for _ in 0..4 {
        let tokens = TestHub::tokens(refresh_from(&hub, &owner, &refresh).await).await;
        refresh = tokens.refresh;
    }
    // A confidential app's secret guessed wrong from the attacker's address costs the app
    // nothing either.
    let r = attacker
        .post(hub.url("/oauth/token"))
        .basic_auth(CONF_APP, Some("not the secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = hub
        .token_request(
            CONF_APP,
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the real app is still heard"
    );
}

#[tokio::test]
async fn token_requests_are_limited_per_address() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.token_per_address = n(5);
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = hub
            .token_request(
                PUBLIC_APP,
                &[("grant_type", "refresh_token"), ("refresh_token", "guess")],
            )
            .await;
        statuses.push(r.status());
    }
    assert_eq!(&statuses[..5], &[StatusCode::BAD_REQUEST; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
}
