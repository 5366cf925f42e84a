//! Billing (`account.debit`) against a real hub over TLS: the consent page's spending limit,
//! the app API and its compatibility routes, and the races the ledger must win — 200 debits
//! at once against a balance and a limit, one idempotency key sent many times at once, and a
//! revoke in the middle of a stream of debits. Each race test first proves it raced: the hub
//! counts the debits it was handling at the same moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use uplink_hub::NewApp;
use uplink_hub::store::TxKind;
use uplink_testkit::*;

const METER: &str = "meter";

/// A hub with the "Meter" app (scope `account.debit`) and Ada's account credited `balance`;
/// Ada consented to Meter with `limit` typed on the consent page (None: "No monthly limit"
/// ticked). Returns the hub and Meter's access token.
async fn metered(balance: i64, limit: Option<&str>) -> (Arc<TestHub>, String) {
    let hub = TestHub::start_on(4, |_| {}).await;
    let h = hub.hub.clone();
    hub.run(async move {
        h.add_app(NewApp {
            name: "Meter".into(),
            client_id: Some(METER.into()),
            confidential: false,
            redirect_uris: vec![PUBLIC_REDIRECT.into()],
            scopes: vec!["account.debit".into()],
        })
        .await
        .unwrap();
        if balance > 0 {
            h.operator_entry(USER, TxKind::Credit, balance, "top-up")
                .await
                .unwrap();
        }
    })
    .await;
    let cookie = hub.sign_in().await;
    let mut params = authorize_params(METER, PUBLIC_REDIRECT);
    params.retain(|(k, _)| k != "scope");
    params.push(("scope".into(), "account.debit".into()));
    params.push(("spending_limit".into(), "300".into()));
    let request = hub.start_authorization(&cookie, &params).await;
    let page = hub
        .client
        .get(hub.url(&format!("/account/consent?request={request}")))
        .headers(cookie_header(&cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Monthly spending limit for Meter (EUR)"),
        "{page}"
    );
    assert!(
        page.contains(r#"value="3.00""#),
        "the app's suggestion fills the limit"
    );
    assert!(
        !page.contains(r#"id="spending-unlimited" checked"#),
        "never unlimited unless chosen"
    );
    let csrf = hidden_input(&page[page.find("/account/consent\"").unwrap()..], "csrf").unwrap();
    let mut fields = vec![
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "approve"),
        ("scope", "account.debit"),
    ];
    match limit {
        Some(limit) => fields.push(("spending_limit", limit)),
        None => fields.push(("spending_unlimited", "yes")),
    }
    let r = hub
        .post_consent(hub.same_origin(Some(&cookie)), &fields)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = Code {
        code: query_param(&location(&r), "code").expect("a code"),
        redirect_uri: PUBLIC_REDIRECT.into(),
    };
    let tokens = tokens(hub.exchange(METER, &code).await).await;
    (Arc::new(hub), tokens.access)
}

async fn debit(hub: &TestHub, token: &str, amount: Value, key: &str) -> (StatusCode, Value) {
    let r = hub
        .client
        .post(hub.url("/api/v1/account/debits"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "amount": amount, "description": "one report" }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(hub: &TestHub, token: &str, path: &str) -> (StatusCode, Value) {
    let r = hub
        .client
        .get(hub.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn balance_of_ada(hub: &TestHub) -> i64 {
    let (h, id) = (hub.hub.clone(), hub.user.id.clone());
    hub.run(async move { h.store.balance(&id).await.unwrap() })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_debits_within_the_limit_refunds_and_sees_only_its_allowance() {
    let (hub, token) = metered(10_000, Some("5.00")).await;
    let (status, first) = debit(&hub, &token, json!(120), "k1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["amount"], 120);
    assert_eq!(first["kind"], "debit");
    // Fractions are refused: amounts are whole minor units.
    let (status, body) = debit(&hub, &token, json!(1.5), "k2").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    // Over the limit: 402 with what remains.
    let (status, body) = debit(&hub, &token, json!(400), "k3").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["code"], "limit_reached");
    assert_eq!(body["limitRemaining"], 380);
    let (status, balance) = get(&hub, &token, "/api/v1/account/balance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        balance["available"], 380,
        "what the app may spend, not the balance"
    );
    assert_eq!(balance["monthlyLimit"], 500);
    assert_eq!(balance["spent"], 120);

    // A partial refund, then more than is left is refused.
    let id = first["id"].as_str().unwrap();
    let refund = |body: Value| {
        hub.client
            .post(hub.url(&format!("/api/v1/account/debits/{id}/refund")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = refund(json!({ "amount": 20 })).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = refund(json!({ "amount": 101 })).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(balance_of_ada(&hub).await, 10_000 - 120 + 20);
    let (_, list) = get(&hub, &token, "/api/v1/account/transactions").await;
    let kinds: Vec<&str> = list["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["debit", "refund"],
        "the operator's credit is not the app's"
    );

    // The compatibility routes: a bare JSON number, `debitAmount`, `transactionRef`.
    let r = hub
        .client
        .post(hub.url("/api/resource/debit"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("30")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let compat_id: String = r.json().await.unwrap();
    assert!(compat_id.starts_with("txn_"));
    let r = hub
        .client
        .post(hub.url("/api/resource/debit?debitAmount=2.5"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "no fractions here either"
    );
    let r = hub
        .client
        .post(hub.url(&format!("/api/resource/refund?transactionRef={compat_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, available) = get(&hub, &token, "/api/resource/userbalance").await;
    assert_eq!(available, json!(400), "500 limit − 120 + 20 refunded");

    // The audit has each movement and the consent.
    let h = hub.hub.clone();
    let events = hub
        .run(async move { h.store.audit_events(100).await.unwrap() })
        .await;
    let count = |name: &str| events.iter().filter(|e| e.event == name).count();
    assert_eq!(count("account_credited"), 1);
    assert_eq!(
        count("account_debited"),
        2,
        "the two debits that went through"
    );
    assert_eq!(count("account_refunded"), 2);
    assert_eq!(count("billing_granted"), 1);
}

/// 200 debits at once against a balance that covers 30 and a limit that covers 50: exactly 30
/// succeed, the balance ends at zero, never below; then against the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_racing_debits_never_overdraw_the_balance_or_the_limit() {
    for (balance, limit, expected) in [(3_000, "50.00", 30), (100_000, "50.00", 50)] {
        let (hub, token) = metered(balance, Some(limit)).await;
        let attempts = (0..200).map(|i| {
            let (hub, token) = (hub.clone(), token.clone());
            tokio::spawn(async move { debit(&hub, &token, json!(100), &format!("race-{i}")).await })
        });
        let outcomes = futures::future::join_all(attempts).await;
        let mut done = 0;
        for outcome in outcomes {
            let (status, body) = outcome.unwrap();
            match status {
                StatusCode::CREATED => done += 1,
                StatusCode::PAYMENT_REQUIRED => {
                    let code = body["code"].as_str().unwrap();
                    assert!(
                        code == "insufficient_funds" || code == "limit_reached",
                        "{body}"
                    );
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        let peak = hub.hub.debits_in_flight.peak();
        assert!(peak >= 2, "the debits raced (at most {peak} at once)");
        assert_eq!(done, expected, "balance {balance}, limit {limit}");
        assert_eq!(balance_of_ada(&hub).await, balance - expected * 100);
        assert!(balance_of_ada(&hub).await >= 0);
    }
}

/// One idempotency key sent 50 times at once: one debit, and every answer is its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_idempotency_key_debits_once_even_concurrently() {
    let (hub, token) = metered(10_000, Some("50.00")).await;
    let attempts = (0..50).map(|_| {
        let (hub, token) = (hub.clone(), token.clone());
        tokio::spawn(async move { debit(&hub, &token, json!(250), "same-key").await })
    });
    let outcomes: Vec<(StatusCode, Value)> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(hub.hub.debits_in_flight.peak() >= 2, "the repeats raced");
    let created = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "one debit made");
    let ids: std::collections::BTreeSet<&str> = outcomes
        .iter()
        .map(|(s, b)| {
            assert!(s.is_success(), "{s}: {b}");
            b["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every answer is the first result");
    assert_eq!(balance_of_ada(&hub).await, 10_000 - 250);
    // The same key for another amount is a mistake, not a repeat.
    let (status, body) = debit(&hub, &token, json!(99), "same-key").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
}

/// Debits stream in while the user revokes billing on the settings page: none that starts
/// after the revoke returned succeeds, and the ledger holds exactly the ones that did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_debit_starting_after_a_revoke_succeeds() {
    let (hub, token) = metered(10_000_000, None).await;
    let cookie = hub.sign_in().await;
    let csrf = hub.page_csrf(&cookie, "/account/settings").await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (hub, token, stop) = (hub.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, _) = debit(&hub, &token, json!(1), &format!("w{w}-{i}")).await;
                    seen.push((started, status));
                    i += 1;
                }
                seen
            })
        })
        .collect();
    // Let debits succeed for a while first.
    while balance_of_ada(&hub).await > 10_000_000 - 40 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = hub
        .client
        .post(hub.url("/account/settings/billing"))
        .headers(hub.same_origin(Some(&cookie)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("app", METER),
            ("action", "revoke"),
        ])
        .send()
        .await
        .unwrap();
    let revoked = Instant::now();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let debited_at_revoke = 10_000_000 - balance_of_ada(&hub).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut after) = (0, 0);
    for w in workers {
        for (started, status) in w.await.unwrap() {
            if status == StatusCode::CREATED {
                ok += 1;
            }
            if started >= revoked {
                after += 1;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "a debit started after the revoke succeeded"
                );
            }
        }
    }
    assert!(hub.hub.debits_in_flight.peak() >= 2, "the debits raced");
    assert!(after > 0, "debits kept coming after the revoke");
    let debited = 10_000_000 - balance_of_ada(&hub).await;
    assert_eq!(
        debited, ok,
        "the ledger holds exactly the debits that succeeded"
    );
    assert_eq!(
        debited, debited_at_revoke,
        "nothing was debited after the revoke returned"
    );
}

/// Every `curl` example in docs/api.md's billing section runs against a real hub and succeeds:
/// the debit (its id becomes `$TXN`), the refund, the balance, the transactions and the
/// compatibility routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guides_billing_curl_examples_run() {
    let (hub, token) = metered(10_000, Some("50.00")).await;
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let start = guide
        .find("## Billing: `account.debit`")
        .expect("the billing section");
    let section = &guide[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let quoted = |text: &str, flag: &str| -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(flag) {
            rest = &rest[at + flag.len()..];
            let quote = rest.chars().next().unwrap();
            let end = rest[1..].find(quote).unwrap() + 1;
            found.push(rest[1..end].to_owned());
            rest = &rest[end..];
        }
        found
    };
    let mut txn = String::new();
    let mut ran = 0;
    for command in section.split("curl ").skip(1) {
        let mut text = String::new();
        for line in command.lines() {
            text.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                break;
            }
        }
        let at = text.find("\"$HUB").expect("a quoted $HUB URL");
        let url = &text[at + 1..];
        let url = url[..url.find('"').unwrap()]
            .replace("$HUB", &hub.issuer)
            .replace("$TXN", &txn);
        let body = quoted(&text, "-d ").pop();
        let post = body.is_some() || text.contains("-X POST");
        let mut request = if post {
            hub.client.post(&url)
        } else {
            hub.client.get(&url)
        };
        for header in quoted(&text, "-H ") {
            let (name, value) = header.split_once(": ").unwrap();
            let value = value.replace("$TOKEN", &token);
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let r = request.send().await.unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "curl {text}: {status} {answer}");
        if url.ends_with("/api/v1/account/debits") {
            txn = answer["id"].as_str().unwrap().to_owned();
        }
        ran += 1;
    }
    assert!(ran >= 6, "only {ran} billing examples found");
    assert!(!txn.is_empty(), "the debit example ran first");
}
