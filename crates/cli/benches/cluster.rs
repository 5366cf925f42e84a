//! The cluster's backplane measured side by side: the same query answered by the hub replica
//! holding the connector's link (in-process, as a single hub) and by another replica, which
//! relays it over NATS to the holder (docs/cluster.md).
//!
//! 1. A snapshot of one tag: median latency of each, and the overhead NATS adds.
//! 2. A raw read of 1 M values: MB/s of each, and their ratio; beside it, one chunk's round
//!    trip over the same `nats-server` (a 64 KiB request and its empty reply, as a chunk and
//!    its acknowledgement travel) and the bound it sets on a cross-replica answer, whose holder
//!    may have four chunks unacknowledged: one window per round trip.
//! 3. Snapshots per second with three replicas (requests spread round-robin, two in three
//!    crossing NATS) against one replica answering them all, on the same machine.
//! 4. 10 000 idle connector links spread over three replica processes: resident memory per
//!    link on each replica, and what the backplane adds (NATS subscriptions per link and the
//!    `nats-server`'s memory per link).
//!
//! The replicas of 1–3 run in this process on one data folder; those of 4 are child
//! processes of this benchmark on one data folder (so each has its own resident set). All join
//! a `nats-server` the benchmark starts on loopback (Debian's `nats-server`; it fails when
//! missing). Run with `cargo bench -p uplink-cli --bench cluster [snapshot|raw|throughput|links]`
//! (`UPLINK_CLUSTER_BENCH_LINKS` sets how many links 4 opens; `UPLINK_CLUSTER_BENCH_HEAPTRACK=FILE`
//! runs 4's second replica, which creates nothing, under heaptrack's preload library and has it
//! exit normally at the end, so `/usr/lib/heaptrack/libexec/heaptrack_interpret < FILE > out`, then
//! `heaptrack_print -l out`, lists
//! what its links keep, by allocation site).
#![allow(clippy::print_stdout)]
#![allow(missing_debug_implementations)]

#[path = "../src/demo/consent.rs"]
#[allow(unused_imports, dead_code)]
mod consent;
#[path = "../src/demo/stage.rs"]
#[allow(dead_code)]
pub mod stage;

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use uplink_hub::{Hub, HubConfig};
use uplink_measure::{Timing, compare};
use uplink_signalr::Transport;

use self::stage::{Stage, StageOptions};

const RAW_VALUES: u64 = 1_000_000;
const SNAPSHOTS: usize = 2_000;

/// `nats-server` on a free loopback port, killed when dropped.
struct Nats {
    child: std::process::Child,
    url: String,
    /// Its monitoring port (`/subsz`).
    monitor: u16,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Nats {
    fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let monitor = free_port()?;
        let child = std::process::Command::new("/usr/sbin/nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &monitor.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("nats-server is missing: install the Debian package nats-server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
        })
    }

    /// How many subscriptions the server holds.
    async fn subscriptions(&self) -> anyhow::Result<u64> {
        let subsz: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{}/subsz", self.monitor))
                .await?
                .json()
                .await?;
        subsz["num_subscriptions"]
            .as_u64()
            .context("no num_subscriptions in /subsz")
    }

    /// The server's resident memory, KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib_of(&format!("/proc/{}/status", self.child.id()))
    }
}

/// VmRSS from a `/proc/…/status` file, KiB (0 when unreadable).
fn rss_kib_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stage's hub (holding the link) and two more replicas on the same folder and issuer.
struct Cluster {
    stage: Stage,
    holder_url: String,
    other_url: String,
    third_url: String,
    _others: Vec<tokio::task::JoinHandle<uplink_hub::Result<()>>>,
    nats: Nats,
    _dir: tempfile::TempDir,
}

/// Another replica of the stage's hub in this process, on the stage's folder and issuer.
async fn another_replica(
    dir: &std::path::Path,
    stage: &Stage,
    nats: &Nats,
    ca: &uplink_tls::LoopbackCa,
) -> anyhow::Result<(String, tokio::task::JoinHandle<uplink_hub::Result<()>>)> {
    let other = Arc::new(Hub::open(&dir.join("hub"), HubConfig::new(stage.issuer.clone())).await?);
    other.join_backplane(&nats.url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
    let serving = tokio::spawn(async move {
        uplink_hub::serve(other, listener, &chain, &key, std::future::pending()).await
    });
    Ok((url, serving))
}

async fn cluster() -> anyhow::Result<Cluster> {
    let nats = Nats::start()?;
    let dir = tempfile::tempdir()?;
    let stage = Stage::start(StageOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        transports: vec![Transport::WebSockets],
        access_token_ttl: 3600,
    })
    .await?;
    stage.hub.join_backplane(&nats.url).await?;
    let ca = uplink_tls::LoopbackCa::load_or_generate(
        &dir.path().join("tls"),
        &["localhost", "127.0.0.1", "::1"],
    )?;
    let (other_url, other) = another_replica(dir.path(), &stage, &nats, &ca).await?;
    let (third_url, third) = another_replica(dir.path(), &stage, &nats, &ca).await?;
    Ok(Cluster {
        holder_url: stage.issuer.clone(),
        other_url,
        third_url,
        stage,
        _others: vec![other, third],
        nats,
        _dir: dir,
    })
}

fn url(base: &str, stage: &Stage, query: &str) -> String {
    format!("{base}/api/v1/sources/{}/{query}", stage.sources[0].id)
}

async fn get(client: &reqwest::Client, token: &str, url: &str) -> anyhow::Result<usize> {
    let response = client.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(
        response.status() == 200,
        "{url} answered {}",
        response.status()
    );
    Ok(response.bytes().await?.len())
}

/// Waits until the other replica relays: the replicas join NATS, and hear who holds the
/// link, in the background.
async fn relaying(client: &reqwest::Client, token: &str, cross: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(client, token, cross).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the other replica never relayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn snapshot(cluster: &Cluster) -> anyhow::Result<()> {
    println!("== snapshot of one tag: another replica (over NATS) vs the holding replica");
    let client = stage::http_client(&cluster.stage.ca_pem)?;
    let token = cluster.stage.tokens.access_token.clone();
    let query = "snapshot?tags=sim.sinusoid.1";
    let same = url(&cluster.holder_url, &cluster.stage, query);
    let cross = url(&cluster.other_url, &cluster.stage, query);
    relaying(&client, &token, &cross).await?;
    for _ in 0..200 {
        get(&client, &token, &same).await?;
        get(&client, &token, &cross).await?;
    }
    let (mut same_samples, mut cross_samples) = (Vec::new(), Vec::new());
    // Interleaved, so both see the same machine.
    for _ in 0..SNAPSHOTS {
        let started = Instant::now();
        get(&client, &token, &same).await?;
        same_samples.push(started.elapsed());
        let started = Instant::now();
        get(&client, &token, &cross).await?;
        cross_samples.push(started.elapsed());
    }
    let (same, cross) = (
        Timing::from_samples(same_samples),
        Timing::from_samples(cross_samples),
    );
    println!(
        "{}",
        compare("cross-replica", &cross, "same-replica", &same)
    );
    let overhead = cross.median().as_secs_f64() - same.median().as_secs_f64();
    println!(
        "p50 overhead of the backplane: {:.3} ms (goal ≤ 0.5 ms)",
        overhead * 1e3
    );
    Ok(())
}

async fn raw(cluster: &Cluster) -> anyhow::Result<()> {
    println!(
        "== raw read of {RAW_VALUES} values: another replica (over NATS) vs the holding replica"
    );
    let client = stage::http_client(&cluster.stage.ca_pem)?;
    let token = cluster.stage.tokens.access_token.clone();
    let query = format!("raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount={RAW_VALUES}");
    let same = url(&cluster.holder_url, &cluster.stage, &query);
    let cross = url(&cluster.other_url, &cluster.stage, &query);
    relaying(
        &client,
        &token,
        &url(
            &cluster.other_url,
            &cluster.stage,
            "snapshot?tags=sim.sinusoid.1",
        ),
    )
    .await?;
    let (mut same_rates, mut cross_rates) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..5 {
        for (target, rates) in [(&same, &mut same_rates), (&cross, &mut cross_rates)] {
            let started = Instant::now();
            bytes = get(&client, &token, target).await?;
            rates.push(bytes as f64 / started.elapsed().as_secs_f64() / 1e6);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (same, cross) = (median(same_rates), median(cross_rates));
    println!(
        "{:.1} MB bodies: same-replica {same:.1} MB/s, cross-replica {cross:.1} MB/s, ratio {:.2} (goal ≥ 0.7)",
        bytes as f64 / 1e6,
        cross / same
    );
    let (empty, chunk) = chunk_round_trips(&cluster.nats.url).await?;
    let window = (uplink_link::CHUNK_WINDOW * uplink_link::MAX_CHUNK_BYTES) as f64;
    let bound = window / chunk.median().as_secs_f64() / 1e6;
    println!(
        "NATS round trip on the same nats-server (median of {ROUND_TRIPS}): empty {:.0} µs, one {} KiB chunk and its acknowledgement {:.0} µs (p99 {:.0} µs): one window of {} × {} KiB per chunk round trip bounds a cross-replica answer at {bound:.1} MB/s; cross-replica measured {cross:.1} MB/s ({:.0} % of the bound), ratio bound {:.2}",
        empty.median().as_secs_f64() * 1e6,
        uplink_link::MAX_CHUNK_BYTES / 1024,
        chunk.median().as_secs_f64() * 1e6,
        chunk.percentile(99.0).as_secs_f64() * 1e6,
        uplink_link::CHUNK_WINDOW,
        uplink_link::MAX_CHUNK_BYTES / 1024,
        cross / bound * 100.0,
        bound / same
    );
    Ok(())
}

const ROUND_TRIPS: usize = 2_000;

/// Round trips over `nats_url` between two connections of their own, as the two replicas of a
/// cross-replica answer have: an empty request, and a chunk-sized one answered empty (a chunk
/// and its acknowledgement). Interleaved, so both see the same machine.
async fn chunk_round_trips(nats_url: &str) -> anyhow::Result<(Timing, Timing)> {
    let holder = async_nats::connect(nats_url).await?;
    let asker = async_nats::connect(nats_url).await?;
    let mut acks = holder.subscribe("bench.ack").await?;
    let answering = holder.clone();
    let answer = tokio::spawn(async move {
        while let Some(message) = acks.next().await {
            if let Some(reply) = message.reply {
                let _ = answering.publish(reply, bytes::Bytes::new()).await;
            }
        }
    });
    holder.flush().await?;
    let chunk = bytes::Bytes::from(vec![7u8; uplink_link::MAX_CHUNK_BYTES]);
    let (mut empty_samples, mut chunk_samples) = (Vec::new(), Vec::new());
    for n in 0..ROUND_TRIPS + 200 {
        let started = Instant::now();
        asker.request("bench.ack", bytes::Bytes::new()).await?;
        let empty = started.elapsed();
        let started = Instant::now();
        asker.request("bench.ack", chunk.clone()).await?;
        let chunked = started.elapsed();
        // The first 200 warm up both connections.
        if n >= 200 {
            empty_samples.push(empty);
            chunk_samples.push(chunked);
        }
    }
    answer.abort();
    Ok((
        Timing::from_samples(empty_samples),
        Timing::from_samples(chunk_samples),
    ))
}

const THROUGHPUT_WORKERS: usize = 16;
const THROUGHPUT_ROUND: Duration = Duration::from_secs(3);

/// Reads of the store on the request path so far (count, seconds), from `hub`'s metrics.
fn store_reads(hub: &Hub) -> (f64, f64) {
    let text = hub.metrics.scrape(hub);
    let total = |suffix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("uplink_hub_store_seconds_{suffix}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (total("count"), total("sum"))
}

/// Snapshots answered per second by `THROUGHPUT_WORKERS` concurrent requests, each worker
/// going round-robin over `targets`, for one round.
async fn snapshots_per_second(
    client: &reqwest::Client,
    token: &str,
    targets: &[String],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut workers = FuturesUnordered::new();
    for worker in 0..THROUGHPUT_WORKERS {
        workers.push(async move {
            let mut done = 0u64;
            let mut i = worker;
            while started.elapsed() < THROUGHPUT_ROUND {
                get(client, token, &targets[i % targets.len()]).await?;
                done += 1;
                i += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = workers.next().await {
        total += done?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn throughput(cluster: &Cluster) -> anyhow::Result<()> {
    println!(
        "== snapshots per second, {THROUGHPUT_WORKERS} concurrent requests: three replicas (round-robin, two in three over NATS) vs one replica, one machine"
    );
    let client = stage::http_client(&cluster.stage.ca_pem)?;
    let token = cluster.stage.tokens.access_token.clone();
    let query = "snapshot?tags=sim.sinusoid.1";
    let one = vec![url(&cluster.holder_url, &cluster.stage, query)];
    let three = vec![
        url(&cluster.holder_url, &cluster.stage, query),
        url(&cluster.other_url, &cluster.stage, query),
        url(&cluster.third_url, &cluster.stage, query),
    ];
    for target in &three {
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(&client, &token, target).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "{target} never relayed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (mut ones, mut threes) = (Vec::new(), Vec::new());
    let (mut reads, mut read_seconds, mut one_requests) = (0.0, 0.0, 0.0);
    // Interleaved rounds, so both see the same machine.
    for _ in 0..3 {
        let (count_before, seconds_before) = store_reads(&cluster.stage.hub);
        let started = Instant::now();
        let rate = snapshots_per_second(&client, &token, &one).await?;
        one_requests += rate * started.elapsed().as_secs_f64();
        let (count_after, seconds_after) = store_reads(&cluster.stage.hub);
        reads += count_after - count_before;
        read_seconds += seconds_after - seconds_before;
        ones.push(rate);
        threes.push(snapshots_per_second(&client, &token, &three).await?);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (one, three) = (median(ones), median(threes));
    println!(
        "one replica {one:.0} snapshots/s, three replicas {three:.0} snapshots/s, ratio {:.2} (medians of 3 rounds of {} s; the replicas share this machine's cores, so this is the cost of crossing, not scale-out)",
        three / one,
        THROUGHPUT_ROUND.as_secs()
    );
    // From the one replica's metrics during the one-replica rounds.
    println!(
        "store reads on the request path: {:.2} per snapshot, {:.3} ms each (mean; SQLite here)",
        reads / one_requests,
        read_seconds / reads.max(1.0) * 1e3
    );
    Ok(())
}

/// The child-process side of the idle-links benchmark.
mod replica {
    use super::*;

    pub const ROLE: &str = "UPLINK_CLUSTER_BENCH_ROLE";
    pub const DIR: &str = "UPLINK_CLUSTER_BENCH_DIR";
    pub const NATS: &str = "UPLINK_CLUSTER_BENCH_NATS";
    pub const CREATE: &str = "UPLINK_CLUSTER_BENCH_CREATE";
    pub const OWNER: &str = "bench";

    /// A replica on the shared folder, joined to NATS, serving on a port of its own; the one
    /// told to creates the connectors. Prints one JSON line, then answers each "rss" line on
    /// standard input with its resident set in KiB.
    pub async fn serve() -> anyhow::Result<()> {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
        uplink_tls::install_crypto_provider();
        let dir = std::path::PathBuf::from(std::env::var(DIR)?);
        let nats = std::env::var(NATS)?;
        let create: usize = std::env::var(CREATE)?.parse()?;
        let ca = uplink_tls::LoopbackCa::load_or_generate(
            &dir.join("tls"),
            &["localhost", "127.0.0.1", "::1"],
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("https://{}", listener.local_addr()?);
        let mut config = HubConfig::new(issuer.clone());
        let many = std::num::NonZeroU32::new(1_000_000).context("non-zero")?;
        config.rate_limits.token_per_address = many;
        config.rate_limits.token_per_app = many;
        if create > 0 {
            // The first replica makes the shared folder; the others start after it.
            uplink_hub::data_dir::prepare(&dir.join("hub"))?;
        }
        let hub = Arc::new(Hub::open(&dir.join("hub"), config).await?);
        hub.join_backplane(&nats).await?;
        let mut connectors = Vec::new();
        if create > 0 {
            hub.add_user(OWNER, "bench-password-0123".into()).await?;
            for i in 0..create {
                let c = hub.add_connector(OWNER, &format!("site {i}")).await?;
                connectors.push((c.connector.id, c.credential.expose().to_owned()));
            }
        }
        let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
        tokio::spawn(async move {
            uplink_hub::serve(hub, listener, &chain, &key, std::future::pending()).await
        });
        let hello =
            serde_json::json!({ "issuer": issuer, "ca": ca.ca_pem(), "connectors": connectors });
        let mut out = std::io::stdout();
        writeln!(out, "{hello}")?;
        out.flush()?;
        tokio::task::spawn_blocking(|| {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match line.trim() {
                    "rss" => {
                        let sockets = std::fs::read_dir("/proc/self/fd")
                            .map(|fds| {
                                fds.filter_map(Result::ok)
                                    .filter(|fd| {
                                        std::fs::read_link(fd.path()).is_ok_and(|target| {
                                            target.to_string_lossy().starts_with("socket:")
                                        })
                                    })
                                    .count()
                            })
                            .unwrap_or(0);
                        let rss = rss_kib_of("/proc/self/status");
                        let _ = writeln!(std::io::stdout(), "{rss} {sockets}");
                        let _ = std::io::stdout().flush();
                    }
                    // A normal exit with every link still held, so a heap profiler's exit
                    // report lists what the links keep.
                    "exit" => std::process::exit(0),
                    _ => {}
                }
            }
        })
        .await?;
        Ok(())
    }
}

/// Debian's heaptrack preload library (package `heaptrack`).
const HEAPTRACK_PRELOAD: &str = "/usr/lib/heaptrack/libheaptrack_preload.so";

/// A replica child process as the parent sees it.
struct ReplicaProcess {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    issuer: String,
    ca: String,
}

impl ReplicaProcess {
    fn start(
        dir: &std::path::Path,
        nats: &Nats,
        create: usize,
        heaptrack: Option<&str>,
    ) -> anyhow::Result<(Self, Vec<(String, String)>)> {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        if let Some(file) = heaptrack {
            command
                .env("LD_PRELOAD", HEAPTRACK_PRELOAD)
                .env("DUMP_HEAPTRACK_OUTPUT", file);
        }
        let mut child = command
            .env(replica::ROLE, "replica")
            .env(replica::DIR, dir)
            .env(replica::NATS, &nats.url)
            .env(replica::CREATE, create.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().context("piped")?;
        let mut stdout = std::io::BufReader::new(child.stdout.take().context("piped")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let hello: serde_json::Value =
            serde_json::from_str(&line).context("the replica did not start")?;
        let connectors = serde_json::from_value(hello["connectors"].clone())?;
        Ok((
            Self {
                child,
                stdin,
                stdout,
                issuer: hello["issuer"].as_str().unwrap_or_default().to_owned(),
                ca: hello["ca"].as_str().unwrap_or_default().to_owned(),
            },
            connectors,
        ))
    }

    /// Its resident set (KiB) and how many sockets it has open.
    fn rss_kib(&mut self) -> anyhow::Result<(u64, u64)> {
        writeln!(self.stdin, "rss")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let rss = words.next().context("no answer")?.parse()?;
        let sockets = words.next().context("no socket count")?.parse()?;
        Ok((rss, sockets))
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Links one connector to `issuer` the way a connector does (client credentials, then the
/// link over WebSockets with MessagePack, then its registration).
async fn link(
    client: &reqwest::Client,
    tls: &Arc<rustls::ClientConfig>,
    issuer: &str,
    (id, credential): &(String, String),
) -> anyhow::Result<uplink_signalr::client::HubConnection> {
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
    let connection =
        uplink_signalr::client::HubConnection::builder(format!("{issuer}/hubs/connector"))
            .tls(tls.clone())
            .force_transport(Transport::WebSockets)
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
        software: "cluster benchmark".into(),
        sources: vec![uplink_model::DataSourceDescriptor {
            name: "historian".into(),
            kind: "simulated".into(),
            description: String::new(),
            capabilities: uplink_model::Capabilities::all_from_raw(),
        }],
        source_keys: Default::default(),
    };
    let registered: Result<uplink_link::Registered, _> = connection
        .invoke(uplink_link::to_hub::REGISTER, (registration,))
        .await;
    if let Err(e) = registered {
        // A connection whose registration failed is closed before the next attempt, as the
        // connector does: left open, it would stay on the replica beside the link that
        // replaces it and be counted as that link's memory.
        connection.stop().await;
        return Err(e.into());
    }
    Ok(connection)
}

/// [`link`], tried again a few times: the replicas share one SQLite folder, whose writer lock
/// a registration may find busy while thousands register at once.
async fn link_retrying(
    client: &reqwest::Client,
    tls: &Arc<rustls::ClientConfig>,
    issuer: &str,
    connector: &(String, String),
) -> anyhow::Result<uplink_signalr::client::HubConnection> {
    let mut attempt = 0;
    loop {
        match link(client, tls, issuer, connector).await {
            Ok(connection) => return Ok(connection),
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "link failed; again");
                tokio::time::sleep(Duration::from_millis(100 * attempt.min(10))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The open-file limit this process may use, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

async fn idle_links() -> anyhow::Result<()> {
    let total: usize = std::env::var("UPLINK_CLUSTER_BENCH_LINKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "== {total} idle connector links over three replica processes: memory per link, and the backplane's per-link cost"
    );
    // This process holds every link's client socket; each replica a third of them.
    let needed = total as u64 + 1_000;
    let limit = open_file_limit().unwrap_or(0);
    anyhow::ensure!(
        limit >= needed,
        "the open-file limit is {limit}, {needed} are needed: raise it (ulimit -n {needed}) and run again"
    );
    let nats = Nats::start()?;
    let dir = tempfile::tempdir()?;
    let heaptrack = std::env::var("UPLINK_CLUSTER_BENCH_HEAPTRACK").ok();
    let (first, connectors) = ReplicaProcess::start(dir.path(), &nats, total, None)?;
    let mut replicas = vec![first];
    replicas.push(ReplicaProcess::start(dir.path(), &nats, 0, heaptrack.as_deref())?.0);
    replicas.push(ReplicaProcess::start(dir.path(), &nats, 0, None)?.0);
    let ca = replicas[0].ca.clone();
    let client = stage::http_client(&ca)?;
    let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca))?;
    let issuers: Vec<String> = replicas.iter().map(|r| r.issuer.clone()).collect();

    // One link on each replica first, so lazily built parts are in the baseline.
    let mut links = Vec::new();
    for (i, issuer) in issuers.iter().enumerate() {
        links.push(link(&client, &tls, issuer, &connectors[i]).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before: Vec<(u64, u64)> = replicas
        .iter_mut()
        .map(ReplicaProcess::rss_kib)
        .collect::<anyhow::Result<_>>()?;
    let (nats_before, subs_before) = (nats.rss_kib(), nats.subscriptions().await?);
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for (i, c) in connectors.iter().enumerate().skip(3) {
        pending.push(link_retrying(&client, &tls, &issuers[i % 3], c));
        if pending.len() >= 16
            && let Some(done) = pending.next().await
        {
            links.push(done?);
        }
    }
    while let Some(done) = pending.next().await {
        links.push(done?);
    }
    println!(
        "{} links opened in {:.1} s",
        links.len(),
        started.elapsed().as_secs_f64()
    );
    // Let them go idle: handshakes done, keep-alives exchanged.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after: Vec<(u64, u64)> = replicas
        .iter_mut()
        .map(ReplicaProcess::rss_kib)
        .collect::<anyhow::Result<_>>()?;
    let (nats_after, subs_after) = (nats.rss_kib(), nats.subscriptions().await?);
    let added_per_replica = (links.len() - 3) as f64 / 3.0;
    let mut per_link = Vec::new();
    for (i, ((b, b_sockets), (a, a_sockets))) in before.iter().zip(&after).enumerate() {
        let kib = a.saturating_sub(*b) as f64 / added_per_replica;
        per_link.push(kib);
        // One socket per link: more would be connections that are not links.
        println!(
            "replica {}: RSS {:.1} MiB with 1 link, {:.1} MiB with {:.0} links: {kib:.1} KiB per idle link (goal ≤ 32 KiB); open sockets {b_sockets} → {a_sockets}, {:.2} per link",
            i + 1,
            *b as f64 / 1024.0,
            *a as f64 / 1024.0,
            added_per_replica + 1.0,
            a_sockets.saturating_sub(*b_sockets) as f64 / added_per_replica
        );
    }
    let added = (links.len() - 3) as f64;
    println!(
        "backplane: {} NATS subscriptions for {} links ({:.2} per link); nats-server RSS {:.1} → {:.1} MiB, {:.2} KiB per link; per-link memory on the replicas / goal: {}",
        subs_after,
        links.len(),
        (subs_after - subs_before) as f64 / added,
        nats_before as f64 / 1024.0,
        nats_after as f64 / 1024.0,
        nats_after.saturating_sub(nats_before) as f64 / added,
        per_link
            .iter()
            .map(|k| format!("{:.2}", k / 32.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(file) = &heaptrack {
        writeln!(replicas[1].stdin, "exit")?;
        replicas[1].child.wait()?;
        println!(
            "replica 2's heap profile: {file} (heaptrack_interpret < it, then heaptrack_print -l)"
        );
    }
    for l in links {
        l.stop().await;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::var(replica::ROLE).as_deref() == Ok("replica") {
        return tokio::runtime::Runtime::new()?.block_on(replica::serve());
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        if wanted("snapshot") || wanted("raw") || wanted("throughput") {
            let cluster = cluster().await?;
            if wanted("snapshot") {
                snapshot(&cluster).await?;
            }
            if wanted("raw") {
                raw(&cluster).await?;
            }
            if wanted("throughput") {
                throughput(&cluster).await?;
            }
        }
        if wanted("links") {
            idle_links().await?;
        }
        anyhow::Ok(())
    })
}
