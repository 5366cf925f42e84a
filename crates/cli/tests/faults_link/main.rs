//! The link under a site's network faults, with the real hub, the real connector runtime and
//! a fault proxy (`uplink-faults`) between them: cut every few seconds while an app queries,
//! half-open, WebSockets refused or held, Server-Sent Events buffered. Each scenario is bounded;
//! none asserts speed beyond generous bounds the issues ask for, only that what must happen
//! happens within its timeout.

// The demo's own consent flow and client, so the app's token is an ordinary grant.
#[path = "../../src/demo/consent.rs"]
#[allow(dead_code)]
mod consent;
mod site;
#[path = "../../src/demo/stage.rs"]
#[allow(dead_code)]
mod stage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use uplink_connector::runtime::{LinkState, TRANSPORT_MEMORY_FILE};
use uplink_faults::Close;
use uplink_signalr::Transport;

use self::site::{BACKOFF, QUERY_TIMEOUT, Site, SiteOptions, Via, distinct_query};

/// What a proxy's silence (a held upgrade, a buffered event stream) may cost on first contact:
/// about 2 s measured (the first probe's floor); the bound is generous for a loaded machine.
const FIRST_CONTACT_BOUND: Duration = Duration::from_secs(5);

/// What the app allows a query before calling it hung: the hub's own bound plus slack.
const APP_TIMEOUT: Duration = Duration::from_secs(15);

/// How one query ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 200 and exactly its own answer.
    Answered,
    /// 5xx with a `{code, message}` body: the code.
    Failed(String),
    /// The answer broke off: after its 200 head, or before the head was flushed (a relayed
    /// answer cut with the link never ends normally).
    CutShort,
    /// Anything else: wrong data, a 4xx, an error without JSON, no answer in time.
    Wrong(String),
}

async fn ask(site: &Site, n: u64) -> Outcome {
    let (query, expected) = distinct_query(n).await;
    let url = format!("{}/api/v1/sources/{}/query", site.issuer, site.source_id);
    let sent = site
        .app
        .post(&url)
        .bearer_auth(&site.token)
        .json(&query)
        .timeout(APP_TIMEOUT)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return Outcome::Wrong(format!("query {n} hung: {e}")),
        // Only the hub is on this path: a connection it closes before the response head is an
        // answer it cut right after its first chunk, before the head was flushed.
        Err(e) if chain(&e).contains("peer closed connection") => return Outcome::CutShort,
        Err(e) => return Outcome::Wrong(format!("query {n} not answered: {}", chain(&e))),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) if e.is_timeout() => return Outcome::Wrong(format!("query {n} hung: {e}")),
        Err(_) if status.is_success() => return Outcome::CutShort,
        Err(e) => return Outcome::Wrong(format!("query {n}: {status}, body unreadable: {e}")),
    };
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(_) => {
            return Outcome::Wrong(format!(
                "query {n}: {status}, not JSON: {}",
                String::from_utf8_lossy(&body)
            ));
        }
    };
    if status.is_success() {
        if json == expected {
            Outcome::Answered
        } else {
            Outcome::Wrong(format!(
                "query {n} answered with other data: {json} instead of {expected}"
            ))
        }
    } else if status.is_server_error()
        && json["code"].is_string()
        && json["message"].as_str().is_some_and(|m| !m.is_empty())
    {
        Outcome::Failed(format!(
            "{} {}",
            status.as_u16(),
            json["code"].as_str().unwrap_or("")
        ))
    } else {
        Outcome::Wrong(format!("query {n}: {status} {json}"))
    }
}

/// An error with its causes.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The bound on the connector's return once the link is back: 1 s plus the longest backoff
/// it may be sleeping when the link returns.
fn back_within() -> Duration {
    Duration::from_secs(1) + BACKOFF.max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_link_cut_every_few_seconds_for_a_minute_loses_no_query_and_mixes_none() {
    let site = Arc::new(Site::start(SiteOptions::tcp()).await);
    assert_eq!(ask(&site, 0).await, Outcome::Answered, "the link works");
    let faults = site.proxy.tcp();

    // The app: four callers, each query with its own tag and time range.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let mut callers = Vec::new();
    for _ in 0..4 {
        let (site, stop, next) = (site.clone(), stop.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let outcome = ask(&site, n).await;
                if outcome != Outcome::Answered {
                    // As an app would, rather than hammering a hub without its connector.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                outcomes.push(outcome);
            }
            outcomes
        }));
    }

    // The network: every five seconds the link is cut (FIN, RST, or reset in the middle of
    // a message on every connection for the whole cycle) and the hub stays unreachable for a
    // second.
    let (mut returns, mut backoffs) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let mut cycle = 0u32;
    while started.elapsed() < Duration::from_secs(60) {
        let cycle_started = Instant::now();
        match cycle % 3 {
            0 => faults.drop_connections(Close::Fin),
            1 => faults.drop_connections(Close::Rst),
            _ => {
                // Enough for a connection's TLS and the link's registration, not for a cycle
                // of answers.
                faults.set_cut_after(Some(30_000 + u64::from(cycle) * 7_919 % 30_000));
                faults.drop_connections(Close::Rst);
            }
        }
        faults.set_refuse(true);
        site.wait_online(false, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        faults.set_refuse(false);
        let link_returned = Instant::now();
        let back = site.wait_online(true, back_within()).await;
        let backoff = site.backoff_left_at(link_returned);
        assert!(
            back <= backoff + Duration::from_secs(1),
            "cycle {cycle}: back {back:?} after the link returned, the backoff in force was {backoff:?}"
        );
        returns.push(back);
        backoffs.push(backoff);
        tokio::time::sleep_until(cycle_started + Duration::from_secs(5)).await;
        faults.set_cut_after(None);
        cycle += 1;
    }
    faults.clear();
    stop.store(true, Ordering::SeqCst);

    let mut tally: BTreeMap<Outcome, u64> = BTreeMap::new();
    for caller in callers {
        let outcomes = tokio::time::timeout(APP_TIMEOUT * 2, caller)
            .await
            .expect("every caller ends")
            .unwrap();
        for outcome in outcomes {
            *tally.entry(outcome).or_default() += 1;
        }
    }
    eprintln!(
        "{cycle} cuts; back after the link returned: median {:?}, max {:?}, of which backoff still in force: median {:?}, max {:?}; outcomes {tally:?}",
        median(returns.clone()),
        returns.iter().max().unwrap(),
        median(backoffs.clone()),
        backoffs.iter().max().unwrap(),
    );
    let wrong: Vec<&Outcome> = tally
        .keys()
        .filter(|o| matches!(o, Outcome::Wrong(_)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    let answered = tally.get(&Outcome::Answered).copied().unwrap_or(0);
    let failed: u64 = tally
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Failed(_)))
        .map(|(_, n)| n)
        .sum();
    assert!(
        answered >= 100,
        "queries were answered between the cuts: {tally:?}"
    );
    assert!(failed > 0, "the cuts failed some queries: {tally:?}");

    // The link is whole again (on a connection with no byte budget): the next query is
    // answered.
    faults.set_refuse(true);
    faults.drop_connections(Close::Fin);
    site.wait_online(false, Duration::from_secs(5)).await;
    faults.set_refuse(false);
    site.wait_online(true, back_within()).await;
    let n = next.fetch_add(1, Ordering::SeqCst);
    assert_eq!(ask(&site, n).await, Outcome::Answered);
    Arc::into_inner(site).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_link_is_noticed_within_the_server_timeout_and_replaced() {
    const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
    let site = Site::start(SiteOptions {
        transports: vec![Transport::WebSockets],
        tune: |options| {
            options.heartbeat_interval = Duration::from_millis(500);
            options.keep_alive_interval = Duration::from_millis(500);
            options.server_timeout = SERVER_TIMEOUT;
        },
        ..SiteOptions::tcp()
    })
    .await;
    assert_eq!(ask(&site, 1).await, Outcome::Answered);
    let faults = site.proxy.tcp();
    let accepted = faults.accepted();

    // The flow is silently forgotten: no FIN, no RST, nothing more gets through.
    let reconnects = site.runtime.status().borrow().reconnects;
    faults.stall_connections();
    // The proxy's connection tasks freeze at once; a query sent now goes down the dead link.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lost = tokio::spawn({
        let url = format!("{}/api/v1/sources/{}/query", site.issuer, site.source_id);
        let (app, token) = (site.app.clone(), site.token.clone());
        async move {
            let started = Instant::now();
            let (query, _) = distinct_query(2).await;
            let response = app
                .post(url)
                .bearer_auth(token)
                .json(&query)
                .timeout(APP_TIMEOUT)
                .send()
                .await
                .expect("the hub answers a query sent down a dead link");
            (
                response.status(),
                response.json::<serde_json::Value>().await,
                started.elapsed(),
            )
        }
    });
    // The tick of the client's liveness check is half the shorter of its two intervals.
    let noticed = site
        .wait_status("given up", SERVER_TIMEOUT + Duration::from_secs(1), |s| {
            s.link != LinkState::Connected || s.reconnects > reconnects
        })
        .await;
    let back = site
        .wait_status(
            "linked again",
            back_within() + Duration::from_secs(1),
            |s| s.link == LinkState::Connected && s.reconnects > reconnects,
        )
        .await;
    assert!(faults.accepted() > accepted, "a new connection replaced it");
    site.wait_online(true, back_within()).await;
    assert_eq!(
        ask(&site, 3).await,
        Outcome::Answered,
        "the new link serves"
    );

    let (status, body, took) = lost.await.unwrap();
    let body = body.expect("a JSON error");
    assert!(
        status.is_server_error() && body["code"].is_string() && body["message"].is_string(),
        "{status} {body}"
    );
    assert!(took <= QUERY_TIMEOUT + Duration::from_secs(2), "{took:?}");
    eprintln!(
        "half-open link noticed after {noticed:?} (server timeout {SERVER_TIMEOUT:?}), linked again {back:?} later; the query sent down it got {status} {} after {took:?}",
        body["code"]
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_websockets_fall_back_to_server_sent_events_within_3_s() {
    let site = Site::start(SiteOptions {
        via: Via::Intercept,
        refuse_websockets: true,
        ..SiteOptions::tcp()
    })
    .await;
    assert!(
        site.proxy.http().refused_upgrades() >= 1,
        "WebSockets were tried"
    );
    assert_eq!(site.transport().as_deref(), Some("ServerSentEvents"));
    let skipped = site.runtime.status().borrow().skipped_transports.clone();
    assert!(
        skipped
            .iter()
            .any(|s| s.transport == "WebSockets" && s.reason.contains("403")),
        "{skipped:?}"
    );
    assert!(
        site.linked_after <= Duration::from_secs(3),
        "on Server-Sent Events {:?} after the first attempt",
        site.linked_after
    );
    assert_eq!(
        ask(&site, 4).await,
        Outcome::Answered,
        "the link serves over SSE"
    );
    eprintln!(
        "WebSockets refused: linked over Server-Sent Events {:?} after the first attempt",
        site.linked_after
    );
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_server_sent_events_fall_back_to_long_polling() {
    let site = Site::start(SiteOptions {
        via: Via::Intercept,
        refuse_websockets: true,
        buffer_event_streams: true,
        ..SiteOptions::tcp()
    })
    .await;
    let http = site.proxy.http();
    assert!(
        http.refused_upgrades() >= 1 && http.buffered_streams() >= 1,
        "both were tried"
    );
    assert_eq!(site.transport().as_deref(), Some("LongPolling"));
    let skipped = site.runtime.status().borrow().skipped_transports.clone();
    let sse = skipped
        .iter()
        .find(|s| s.transport == "ServerSentEvents")
        .unwrap_or_else(|| panic!("{skipped:?}"));
    assert!(
        sse.reason.contains("buffer"),
        "the reason names the likely cause: {sse:?}"
    );
    // Noticed by the first probe's short wait (a multiple of the connect time, at least
    // `FIRST_PROBE_FLOOR`), well before the whole handshake timeout of a transport (15 s). The
    // issue asks for 3 s; the bound is generous for a loaded machine.
    assert!(
        site.linked_after <= FIRST_CONTACT_BOUND,
        "{:?} > {FIRST_CONTACT_BOUND:?}",
        site.linked_after
    );
    assert_eq!(
        ask(&site, 5).await,
        Outcome::Answered,
        "the link serves over long polling"
    );
    eprintln!(
        "Server-Sent Events buffered: linked over long polling {:?} after the first attempt",
        site.linked_after
    );
    site.stop().await;
}

/// The transport the connector's memory file holds for its one route, and the transports it
/// remembers as failed.
fn remembered(site: &Site) -> (String, Vec<String>) {
    let path = site.connector_dir().join(TRANSPORT_MEMORY_FILE);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the transport memory is saved"))
            .unwrap();
    let routes = json["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "one route: {json}");
    let failed = routes[0]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["transport"].as_str().unwrap().to_owned())
        .collect();
    (routes[0]["transport"].as_str().unwrap().to_owned(), failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_websocket_upgrade_costs_seconds_on_first_contact_and_nothing_after() {
    let mut site = Site::start(SiteOptions {
        via: Via::Intercept,
        hang_websockets: true,
        // No background re-probe until the last step: every upgrade counted is a foreground one.
        tune: |o| o.reprobe_interval = None,
        ..SiteOptions::tcp()
    })
    .await;
    let http = site.proxy.http();
    assert!(http.hung_upgrades() >= 1, "WebSockets were tried");
    assert_eq!(site.transport().as_deref(), Some("ServerSentEvents"));
    let skipped = site.runtime.status().borrow().skipped_transports.clone();
    assert!(
        skipped
            .iter()
            .any(|s| s.transport == "WebSockets" && s.reason.contains("upgrade")),
        "{skipped:?}"
    );
    // The first probe stopped waiting for the upgrade soon after connecting, not after the
    // whole handshake timeout (15 s).
    assert!(
        site.linked_after <= FIRST_CONTACT_BOUND,
        "on Server-Sent Events {:?} after the first attempt",
        site.linked_after
    );
    assert_eq!(
        remembered(&site),
        ("ServerSentEvents".to_owned(), vec!["WebSockets".to_owned()]),
        "the memory holds what worked and what failed"
    );

    // A reconnect goes straight to Server-Sent Events: the held upgrade is not tried again.
    let hung = http.hung_upgrades();
    let reconnects = site.runtime.status().borrow().reconnects;
    let started = Instant::now();
    site.runtime.reconnect().await.unwrap();
    site.wait_status("reconnected", Duration::from_secs(30), |s| {
        s.reconnects > reconnects && s.link == LinkState::Connected
    })
    .await;
    let reconnected = started.elapsed();
    assert_eq!(
        http.hung_upgrades(),
        hung,
        "the reconnect did not retry WebSockets"
    );
    assert_eq!(site.transport().as_deref(), Some("ServerSentEvents"));
    let skipped = site.runtime.status().borrow().skipped_transports.clone();
    assert!(
        skipped
            .iter()
            .any(|s| s.transport == "WebSockets" && s.reason.contains("not retried")),
        "the status says why WebSockets were not tried: {skipped:?}"
    );

    // So does a restarted connector, from the memory in its data dir.
    let restarted = site.restart_connector(|_| {}).await;
    assert_eq!(
        http.hung_upgrades(),
        hung,
        "the restart did not retry WebSockets"
    );
    assert_eq!(site.transport().as_deref(), Some("ServerSentEvents"));
    assert_eq!(ask(&site, 6).await, Outcome::Answered, "the link serves");

    // The proxy lets upgrades through again: a background re-probe moves the link up, and the
    // memory follows.
    http.hang_websockets(false);
    site.restart_connector(|o| o.reprobe_interval = Some(Duration::from_secs(1)))
        .await;
    assert_eq!(
        http.hung_upgrades(),
        hung,
        "started on the remembered transport"
    );
    site.wait_status("on WebSockets", Duration::from_secs(30), |s| {
        s.transport.as_deref() == Some("WebSockets") && s.link == LinkState::Connected
    })
    .await;
    assert_eq!(remembered(&site), ("WebSockets".to_owned(), Vec::new()));
    assert_eq!(ask(&site, 7).await, Outcome::Answered, "the link serves");
    eprintln!(
        "WebSockets upgrade held: linked over Server-Sent Events {:?} after the first attempt; reconnected in {reconnected:?} and relinked {restarted:?} after a restart without trying WebSockets",
        site.linked_after
    );
    site.stop().await;
}
