//! The relay measured end to end, each figure beside what it cannot beat:
//!
//! 1. A snapshot of one tag, app HTTPS → hub → connector over WebSockets → simulated source and
//!    back: latency unloaded, at a paced 1 000 requests/s, and the most sustained requests/s;
//!    against the same snapshot answered in-process by the connector (source + JSON body).
//! 2. A raw read of 1 M values through the relay over each transport, against the connector
//!    writing the same JSON body in-process (what the relay cannot avoid).
//! 3. The hub's memory per idle connected connector at 1 000 connectors (the hub runs in a
//!    child process so its RSS is its own).
//!
//! Run with `cargo bench -p uplink-cli --bench relay [snapshot|raw|memory]`. Each measurement
//! also returns its figures, so `benches/alternatives.rs` can put them in its table beside the
//! alternatives.
#![allow(clippy::print_stdout)]
// The figures are public for `alternatives.rs`, which includes this file; a benchmark's own
// types need no `Debug`, and the demo's token holder must not have one that prints the token.
#![allow(missing_debug_implementations)]

// The demo's own stage, so the benchmark measures exactly what `uplink demo` runs; the
// benchmark reads only part of it.
#[path = "../src/demo/consent.rs"]
#[allow(unused_imports, dead_code)]
mod consent;
#[path = "../src/demo/stage.rs"]
#[allow(dead_code)]
pub mod stage;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use uplink_connector::{ConnectorConfig, answer, kinds};
use uplink_link::ResultFormat;
use uplink_measure::{Timing, compare, describe, si};
use uplink_model::Query;
use uplink_signalr::Transport;
use uplink_signalr::client::HubConnection;

use self::stage::{Stage, StageOptions};

pub const RAW_VALUES: u64 = 1_000_000;
const CONNECTORS: usize = 1_000;
pub const HUB_ROLE: &str = "UPLINK_RELAY_BENCH_ROLE";

/// A snapshot of one tag: through the relay and in-process, paced and sustained.
pub struct SnapshotFigures {
    pub relay: Timing,
    pub in_process: Timing,
    pub paced: Timing,
    pub offered_per_second: f64,
    /// Paced requests the connector shed as busy (503 `busy`) instead of answering.
    pub shed: usize,
    pub sustained_per_second: f64,
    /// What a relayed snapshot cannot beat on this machine, measured in the same run.
    pub floor: Floor,
    /// The grant check's share of a snapshot request, measured in the same run.
    pub grant: GrantFigures,
}

/// The grant check (token verified, grant read from the store) on the snapshot requests: its
/// time inside them, from the hub's own counters, and the check alone, in-process.
pub struct GrantFigures {
    /// Checks counted during the one-at-a-time run.
    pub checks: u64,
    /// Mean time of a check inside those requests (`grant_check_seconds`).
    pub in_request: Duration,
    /// Mean time of its store read inside those requests (`store_seconds{active_grant}`).
    pub store_in_request: Duration,
    /// Mean time of a snapshot request in the same run.
    pub request_mean: Duration,
    /// The whole check, called in-process one at a time.
    pub check: Timing,
    /// The token's verification alone.
    pub verify: Timing,
    /// The store read alone.
    pub store: Timing,
}

impl GrantFigures {
    /// The check's share of a snapshot request's time (means).
    pub fn share(&self) -> f64 {
        self.in_request.as_secs_f64() / self.request_mean.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The latency floor of a relayed snapshot: the app's HTTPS request to a trivial handler plus
/// one WebSocket round trip (the hub asking the connector), both on loopback over the same
/// rustls configuration — one at a time and at the same 1 000 per second as the relay.
pub struct Floor {
    pub https: Timing,
    pub https_paced: Timing,
    pub websocket: Timing,
    pub websocket_paced: Timing,
}

impl Floor {
    /// The floor at percentile `p`, one at a time.
    pub fn unloaded(&self, p: f64) -> Duration {
        self.https.percentile(p) + self.websocket.percentile(p)
    }

    /// The floor at percentile `p` at 1 000 per second.
    pub fn paced(&self, p: f64) -> Duration {
        self.https_paced.percentile(p) + self.websocket_paced.percentile(p)
    }
}

/// A raw read of `RAW_VALUES` values: in-process and through the relay over each transport.
pub struct RawFigures {
    pub in_process: Timing,
    pub body_bytes: usize,
    pub relayed: Vec<(Transport, Timing)>,
    /// CPU time of this process per read (median): the in-process answer, then per transport
    /// (the client, the hub and the connector all run in it).
    pub cpu_in_process: Duration,
    pub cpu_relayed: Vec<(Transport, Duration)>,
}

/// The hub's resident memory with one link and with all of them.
pub struct MemoryFigures {
    pub links: usize,
    pub before_kib: u64,
    pub after_kib: u64,
    pub per_connector_kib: f64,
}

fn main() -> anyhow::Result<()> {
    if std::env::var(HUB_ROLE).as_deref() == Ok("hub") {
        return tokio::runtime::Runtime::new()?.block_on(idle_hub::serve());
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        if wanted("snapshot") {
            snapshot().await?;
        }
        if wanted("raw") {
            raw(&[]).await?;
        }
        if wanted("memory") {
            idle_hub::memory_per_connector().await?;
        }
        anyhow::Ok(())
    })
}

/// CPU time used so far by every thread of this process, in nanoseconds (the process's CPU
/// clock, which counts the running threads' time up to now): unlike wall time, others' load on
/// the machine adds little to it.
pub fn cpu_ns() -> u64 {
    cpu_clock_ns(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time used so far by the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    cpu_clock_ns(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock_ns(clock: nix::time::ClockId) -> u64 {
    nix::time::clock_gettime(clock)
        .map(|t| Duration::from(t).as_nanos() as u64)
        .unwrap_or(0)
}

pub async fn stage(transport: Transport) -> anyhow::Result<(Stage, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let stage = Stage::start(StageOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        transports: vec![transport],
        access_token_ttl: 3600,
    })
    .await?;
    Ok((stage, dir))
}

pub fn url(stage: &Stage, query: &str) -> String {
    format!(
        "{}/api/v1/sources/{}/{query}",
        stage.issuer, stage.sources[0].id
    )
}

/// One GET, its body read to the end; the time it took, or `None` when the connector shed it
/// as busy (503 `busy`: it runs a bounded number of queries at once, and sheds the rest).
async fn timed_get_or_shed(
    client: reqwest::Client,
    token: Arc<str>,
    url: Arc<str>,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let response = client.get(&*url).bearer_auth(&*token).send().await?;
    match response.status().as_u16() {
        200 => {
            response.bytes().await?;
            Ok(Some(started.elapsed()))
        }
        503 => {
            let body: serde_json::Value = response.json().await?;
            if body["code"] == uplink_link::failure::BUSY {
                Ok(None)
            } else {
                anyhow::bail!("the relay answered 503: {body}")
            }
        }
        status => anyhow::bail!("the relay answered {status}: {}", response.text().await?),
    }
}

/// One GET that must be answered; the time it took.
async fn timed_get(
    client: reqwest::Client,
    token: Arc<str>,
    url: Arc<str>,
) -> anyhow::Result<Duration> {
    timed_get_or_shed(client, token, url)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the connector shed a request as busy"))
}

pub async fn snapshot() -> anyhow::Result<SnapshotFigures> {
    println!("== snapshot of one tag through the relay (WebSockets link)");
    let (stage, _dir) = stage(Transport::WebSockets).await?;
    let client = stage::http_client(&stage.ca_pem)?;
    let token: Arc<str> = stage.tokens.access_token.clone().into();
    let url: Arc<str> = url(&stage, "snapshot?tags=sim.sinusoid.1").into();
    let get = || timed_get(client.clone(), token.clone(), url.clone());
    for _ in 0..200 {
        get().await?;
    }
    let counted_before = grant_counters(&stage);
    let mut unloaded = Vec::new();
    for _ in 0..2000 {
        unloaded.push(get().await?);
    }
    let counted = grant_counters(&stage).since(&counted_before);
    let request_mean = unloaded.iter().sum::<Duration>() / unloaded.len() as u32;
    let unloaded = Timing::from_samples(unloaded);
    let grant = grant_alone(&stage, counted, request_mean).await?;

    // The baseline: the connector's own answer for the same query, in-process.
    let source = kinds::open(&ConnectorConfig::default().sources[0]).await?;
    let query: Query = serde_json::from_str(r#"{"type":"snapshot","tags":["sim.sinusoid.1"]}"#)?;
    let mut local = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        let body: Vec<_> = answer::answer(source.clone(), query.clone(), ResultFormat::Json)
            .collect()
            .await;
        std::hint::black_box(body);
        local.push(started.elapsed());
    }
    let local = Timing::from_samples(local);
    println!(
        "{}",
        compare(
            "relay, one request at a time",
            &unloaded,
            "in-process answer",
            &local
        )
    );

    // Paced: one request every millisecond for three seconds, each on its own task.
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = FuturesUnordered::new();
    let paced_started = Instant::now();
    for _ in 0..3000 {
        tick.tick().await;
        inflight.push(tokio::spawn(timed_get_or_shed(
            client.clone(),
            token.clone(),
            url.clone(),
        )));
    }
    let offered = 3000.0 / paced_started.elapsed().as_secs_f64();
    let mut paced = Vec::new();
    let mut shed = 0;
    while let Some(done) = inflight.next().await {
        match done?? {
            Some(took) => paced.push(took),
            None => shed += 1,
        }
    }
    let paced = Timing::from_samples(paced);
    println!(
        "{} (offered {} req/s, {shed} of 3000 shed as busy)",
        describe("relay at 1 000 req/s", &paced, None),
        si(offered)
    );

    // Sustained: a closed loop with 16 requests always in flight (the connector serves 32 at once), for three seconds.
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, token, url) = (client.clone(), token.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                timed_get(client.clone(), token.clone(), url.clone()).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await??;
    }
    let sustained_per_second = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "relay, 16 requests in flight: {} req/s sustained",
        si(sustained_per_second)
    );
    stage.stop().await;

    let floor = floor::measure().await?;
    for (label, ours, floor) in [
        ("one at a time", &unloaded, floor.unloaded(50.0)),
        ("at 1 000 req/s", &paced, floor.paced(50.0)),
    ] {
        println!(
            "relay {label}: p50 {} | floor (HTTPS request + WebSocket round trip): p50 {} | ours / floor {:.2}",
            uplink_measure::human(ours.median()),
            uplink_measure::human(floor),
            ours.median().as_secs_f64() / floor.as_secs_f64().max(f64::MIN_POSITIVE)
        );
    }
    Ok(SnapshotFigures {
        relay: unloaded,
        in_process: local,
        paced,
        offered_per_second: offered,
        shed,
        sustained_per_second,
        floor,
        grant,
    })
}

/// The hub's grant-check counters: checks, seconds in them, seconds in their store reads.
#[derive(Default)]
struct GrantCounters {
    checks: f64,
    seconds: f64,
    store_seconds: f64,
}

impl GrantCounters {
    fn since(&self, before: &Self) -> Self {
        Self {
            checks: self.checks - before.checks,
            seconds: self.seconds - before.seconds,
            store_seconds: self.store_seconds - before.store_seconds,
        }
    }
}

fn grant_counters(stage: &Stage) -> GrantCounters {
    let text = stage.hub.metrics.scrape(&stage.hub);
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    GrantCounters {
        checks: value("uplink_hub_grant_check_seconds_count "),
        seconds: value("uplink_hub_grant_check_seconds_sum "),
        store_seconds: value("uplink_hub_store_seconds_sum{operation=\"active_grant\"} "),
    }
}

/// The grant check alone, in-process on the stage's hub, beside what the requests counted.
async fn grant_alone(
    stage: &Stage,
    counted: GrantCounters,
    request_mean: Duration,
) -> anyhow::Result<GrantFigures> {
    use uplink_hub::scopes::DATA_READ;
    let (hub, token) = (&stage.hub, stage.tokens.access_token.as_str());
    let source = stage.sources[0].id.as_str();
    let claims = hub.keys.verify(token)?;
    let (mut check, mut verify, mut store) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..2200 {
        let started = Instant::now();
        hub.check_access(token, source, DATA_READ).await?;
        let took = started.elapsed();
        let started = Instant::now();
        std::hint::black_box(hub.keys.verify(token)?);
        let verified = started.elapsed();
        let started = Instant::now();
        let grant = hub
            .store
            .active_grant(&claims.user_id, &claims.app_id, source, &claims.family_id)
            .await?;
        let read = started.elapsed();
        anyhow::ensure!(grant.is_some(), "the stage's app has no live grant");
        if i >= 200 {
            check.push(took);
            verify.push(verified);
            store.push(read);
        }
    }
    anyhow::ensure!(
        counted.checks >= 2000.0,
        "the hub counted {} grant checks for 2 000 requests",
        counted.checks
    );
    let mean = |seconds: f64| Duration::from_secs_f64(seconds / counted.checks);
    let figures = GrantFigures {
        checks: counted.checks as u64,
        in_request: mean(counted.seconds),
        store_in_request: mean(counted.store_seconds),
        request_mean,
        check: Timing::from_samples(check),
        verify: Timing::from_samples(verify),
        store: Timing::from_samples(store),
    };
    println!(
        "grant check inside the snapshot requests: mean {} of a mean {} request ({:.1} %; its store read {}) | alone, in-process: check p50 {}, token verification p50 {}, store read p50 {}",
        uplink_measure::human(figures.in_request),
        uplink_measure::human(request_mean),
        100.0 * figures.share(),
        uplink_measure::human(figures.store_in_request),
        uplink_measure::human(figures.check.median()),
        uplink_measure::human(figures.verify.median()),
        uplink_measure::human(figures.store.median()),
    );
    Ok(figures)
}

/// The floor of a relayed snapshot, measured on servers of its own (see [`Floor`]).
mod floor {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use futures::SinkExt;
    use tokio::net::TcpListener;
    use tokio_rustls::{TlsAcceptor, TlsConnector};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    /// About the size of a one-tag snapshot answer.
    const BODY: &str = r#"{"values":[{"tag":"sim.sinusoid.1","time":"2026-12-07T00:00:00.000Z","value":0.5,"quality":"good"}]}"#;
    const SAMPLES: usize = 2000;
    const PACED: usize = 3000;

    pub async fn measure() -> anyhow::Result<Floor> {
        let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
        let server_tls = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;

        // HTTPS: a handler that answers at once, served as the hub serves its API.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let https_port = listener.local_addr()?.port();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { BODY }));
        tokio::spawn(uplink_tls::serve(
            listener,
            server_tls.clone(),
            app,
            std::future::pending(),
        ));
        let client = stage::http_client(ca.ca_pem())?;
        let url: Arc<str> = format!("https://localhost:{https_port}/").into();
        let get = |client: reqwest::Client, url: Arc<str>| async move {
            let started = Instant::now();
            let response = client.get(&*url).bearer_auth("token").send().await?;
            anyhow::ensure!(
                response.status() == 200,
                "the floor's handler answered {}",
                response.status()
            );
            response.bytes().await?;
            anyhow::Ok(started.elapsed())
        };
        for _ in 0..200 {
            get(client.clone(), url.clone()).await?;
        }
        let mut https = Vec::new();
        for _ in 0..SAMPLES {
            https.push(get(client.clone(), url.clone()).await?);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut inflight = FuturesUnordered::new();
        for _ in 0..PACED {
            tick.tick().await;
            inflight.push(tokio::spawn(get(client.clone(), url.clone())));
        }
        let mut https_paced = Vec::new();
        while let Some(done) = inflight.next().await {
            https_paced.push(done??);
        }

        // WebSocket: an echo behind the same TLS, one connection as the hub has to a connector.
        let plain = TcpListener::bind("127.0.0.1:0").await?;
        let ws_port = plain.local_addr()?.port();
        let acceptor = TlsAcceptor::from(server_tls);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = plain.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    tcp.set_nodelay(true)?;
                    let ws = tokio_tungstenite::accept_async(acceptor.accept(tcp).await?).await?;
                    let (sink, stream) = ws.split();
                    stream.forward(sink).await?;
                    anyhow::Ok(())
                });
            }
        });
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ws_port)).await?;
        tcp.set_nodelay(true)?;
        let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))?;
        let tls = TlsConnector::from(tls)
            .connect("localhost".try_into()?, tcp)
            .await?;
        let (ws, _) =
            tokio_tungstenite::client_async(format!("wss://localhost:{ws_port}/"), tls).await?;
        let (mut sink, mut stream) = ws.split();
        let mut websocket = Vec::new();
        for i in 0..(200 + SAMPLES) {
            let started = Instant::now();
            sink.send(Message::text(BODY)).await?;
            match stream.next().await {
                Some(Ok(Message::Text(_))) => {}
                other => anyhow::bail!("the WebSocket echo answered {other:?}"),
            }
            if i >= 200 {
                websocket.push(started.elapsed());
            }
        }
        // Paced: a message every millisecond on the one connection, each timed to its echo
        // (echoes come back in order).
        let sent: Mutex<VecDeque<Instant>> = Mutex::default();
        let send = async {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for _ in 0..PACED {
                tick.tick().await;
                sent.lock().expect("not poisoned").push_back(Instant::now());
                sink.send(Message::text(BODY)).await?;
            }
            anyhow::Ok(())
        };
        let receive = async {
            let mut took = Vec::new();
            for _ in 0..PACED {
                match stream.next().await {
                    Some(Ok(Message::Text(_))) => {}
                    other => anyhow::bail!("the WebSocket echo answered {other:?}"),
                }
                let started = sent.lock().expect("not poisoned").pop_front();
                took.push(started.map(|s| s.elapsed()).unwrap_or_default());
            }
            anyhow::Ok(took)
        };
        let ((), websocket_paced) = tokio::try_join!(send, receive)?;
        Ok(Floor {
            https: Timing::from_samples(https),
            https_paced: Timing::from_samples(https_paced),
            websocket: Timing::from_samples(websocket),
            websocket_paced: Timing::from_samples(websocket_paced),
        })
    }
}

/// Raw reads over `transports` (every transport when empty), beside the in-process answer.
pub async fn raw(transports: &[Transport]) -> anyhow::Result<RawFigures> {
    println!(
        "== raw read of {} values: relay vs the connector's in-process answer",
        si(RAW_VALUES as f64)
    );
    // The simulated source has one sample per second: 1 M values span about 11.6 days.
    let span = "start=*-12d&end=*&maxCount=1000000";
    let source = kinds::open(&ConnectorConfig::default().sources[0]).await?;
    let query: Query = serde_json::from_str(
        r#"{"type":"raw","tag":"sim.sinusoid.1","start":"*-12d","end":"*","maxCount":1000000}"#,
    )?;
    let runs = 5;
    let mut local = Vec::new();
    let mut local_cpu = Vec::new();
    let mut local_bytes: usize = 0;
    for _ in 0..runs {
        let (started, cpu) = (Instant::now(), cpu_ns());
        let mut bytes = 0;
        let mut body = answer::answer(source.clone(), query.clone(), ResultFormat::Json);
        while let Some(chunk) = body.next().await {
            bytes += chunk.map_err(|f| anyhow::anyhow!(f.message))?.len();
        }
        local.push(started.elapsed());
        local_cpu.push(Duration::from_nanos(cpu_ns().saturating_sub(cpu)));
        local_bytes = bytes;
    }
    let local = Timing::from_samples(local);
    let cpu_in_process = Timing::from_samples(local_cpu).median();
    println!(
        "{} ({} MB body)",
        describe("in-process answer", &local, Some(RAW_VALUES)),
        local_bytes / 1_000_000
    );
    let mut all_relayed = Vec::new();
    let mut cpu_relayed = Vec::new();
    for transport in Transport::ALL {
        if !transports.is_empty() && !transports.contains(&transport) {
            continue;
        }
        let (stage, _dir) = stage(transport).await?;
        let client = stage::http_client(&stage.ca_pem)?;
        let url = url(&stage, &format!("raw?tag=sim.sinusoid.1&{span}"));
        let mut relayed = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..runs {
            let (started, cpu_started) = (Instant::now(), cpu_ns());
            let response = client
                .get(&url)
                .bearer_auth(&stage.tokens.access_token)
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == 200,
                "raw answered {}",
                response.status()
            );
            let mut response = response;
            let mut bytes: usize = 0;
            while let Some(chunk) = response.chunk().await? {
                bytes += chunk.len();
            }
            anyhow::ensure!(
                bytes.abs_diff(local_bytes) < local_bytes / 100,
                "the relayed body ({bytes} bytes) differs in size from the in-process one"
            );
            relayed.push(started.elapsed());
            cpu.push(Duration::from_nanos(cpu_ns().saturating_sub(cpu_started)));
        }
        let relayed = Timing::from_samples(relayed);
        let cpu = Timing::from_samples(cpu).median();
        println!(
            "{} | {} values/s | CPU per read {} ({:.1} × the in-process answer's {}; {:.0} % of the read's time on two cores)",
            compare(
                &format!("relay over {transport}"),
                &relayed,
                "in-process answer",
                &local
            ),
            si(relayed.per_second(RAW_VALUES)),
            uplink_measure::human(cpu),
            cpu.as_secs_f64() / cpu_in_process.as_secs_f64().max(f64::MIN_POSITIVE),
            uplink_measure::human(cpu_in_process),
            100.0 * cpu.as_secs_f64() / (2.0 * relayed.median().as_secs_f64())
        );
        cpu_relayed.push((transport, cpu));
        all_relayed.push((transport, relayed));
        stage.stop().await;
    }
    Ok(RawFigures {
        in_process: local,
        body_bytes: local_bytes,
        relayed: all_relayed,
        cpu_in_process,
        cpu_relayed,
    })
}

pub mod idle_hub {
    //! A hub in a child process with many registered connectors, and the parent that links
    //! them all and reads the child's resident memory.

    use std::num::NonZeroU32;
    use std::process::{Command, Stdio};

    use uplink_testkit::{TestHub, USER};

    use super::*;

    /// The child: a hub with `CONNECTORS` registered connectors; prints one JSON line, then
    /// answers each "rss" line on stdin with its resident set in KiB.
    pub async fn serve() -> anyhow::Result<()> {
        // The test kit's hub, on a runtime of two threads as the server process runs it.
        let many = NonZeroU32::new(1_000_000).expect("non-zero");
        let kit = TestHub::start_on(2, |config| {
            config.rate_limits.token_per_address = many;
            config.rate_limits.token_per_app = many;
        })
        .await;
        let (issuer, ca) = (kit.issuer.clone(), &kit.ca);
        let mut connectors = vec![(
            kit.plant_id().to_owned(),
            kit.plant.credential.expose().to_owned(),
        )];
        for i in 1..CONNECTORS {
            let c = kit.hub.add_connector(USER, &format!("site {i}")).await?;
            connectors.push((c.connector.id, c.credential.expose().to_owned()));
        }
        let hello =
            serde_json::json!({ "issuer": issuer, "ca": ca.ca_pem(), "connectors": connectors });
        let mut out = std::io::stdout();
        writeln!(out, "{hello}")?;
        out.flush()?;
        tokio::task::spawn_blocking(|| {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "rss" {
                    let _ = writeln!(std::io::stdout(), "{}", rss_kib());
                    let _ = std::io::stdout().flush();
                }
            }
        })
        .await?;
        Ok(())
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    pub async fn memory_per_connector() -> anyhow::Result<MemoryFigures> {
        println!("== hub memory per idle connector ({CONNECTORS} connectors on WebSockets)");
        let mut child = Command::new(std::env::current_exe()?)
            .env(HUB_ROLE, "hub")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let hello: serde_json::Value = serde_json::from_str(&line)?;
        let issuer = hello["issuer"].as_str().unwrap_or_default().to_owned();
        let ca = hello["ca"].as_str().unwrap_or_default().to_owned();
        let mut rss = move || -> anyhow::Result<u64> {
            writeln!(stdin, "rss")?;
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            Ok(line.trim().parse()?)
        };
        let client = super::stage::http_client(&ca)?;
        let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.clone()))?;
        let connectors: Vec<(String, String)> =
            serde_json::from_value(hello["connectors"].clone())?;

        // One link first, so lazily built parts of the hub are in the baseline.
        let mut links = vec![link(&client, &tls, &issuer, &connectors[0]).await?];
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss()?;
        let mut pending = FuturesUnordered::new();
        for c in &connectors[1..] {
            pending.push(link(&client, &tls, &issuer, c));
            if pending.len() >= 50
                && let Some(done) = pending.next().await
            {
                links.push(done?);
            }
        }
        while let Some(done) = pending.next().await {
            links.push(done?);
        }
        // Let them go idle: handshakes done, keep-alives exchanged.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let after = rss()?;
        let per_kib = after.saturating_sub(before) as f64 / (links.len() - 1) as f64;
        println!(
            "hub RSS {:.1} MiB with 1 link, {:.1} MiB with {} links: {per_kib:.1} KiB per idle connector (goal ≤ 32 KiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            links.len(),
        );
        let links_len = links.len();
        for l in links {
            l.stop().await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(MemoryFigures {
            links: links_len,
            before_kib: before,
            after_kib: after,
            per_connector_kib: per_kib,
        })
    }

    async fn link(
        client: &reqwest::Client,
        tls: &Arc<rustls::ClientConfig>,
        issuer: &str,
        (id, credential): &(String, String),
    ) -> anyhow::Result<HubConnection> {
        let answer: serde_json::Value = client
            .post(format!("{issuer}/oauth/token"))
            .basic_auth(id, Some(credential))
            .form(&[("grant_type", "client_credentials"), ("scope", "connector")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let connection = HubConnection::builder(format!("{issuer}/hubs/connector"))
            .tls(tls.clone())
            .force_transport(Transport::WebSockets)
            // As the connector links: MessagePack over WebSockets.
            .message_pack()
            .access_token(move || {
                let token = token.clone();
                async move { Ok::<_, String>(token) }
            })
            .start()?;
        connection.wait_connected().await;
        let registration = uplink_link::Registration {
            connector_id: id.clone(),
            name: "idle site".into(),
            software: "relay benchmark".into(),
            source_keys: Default::default(),
            sources: vec![uplink_model::DataSourceDescriptor {
                name: "historian".into(),
                kind: "simulated".into(),
                description: String::new(),
                capabilities: uplink_model::Capabilities::all_from_raw(),
            }],
        };
        let _: uplink_link::Registered = connection
            .invoke(uplink_link::to_hub::REGISTER, (registration,))
            .await?;
        Ok(connection)
    }
}
