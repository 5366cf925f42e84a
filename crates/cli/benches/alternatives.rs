//! Uplink beside what a user would pick instead, in one run, with one table and one JSON file:
//!
//! 1. The relay's own figures (`benches/relay.rs`): snapshot latency, raw values/s per
//!    transport, the hub's memory per idle connector.
//! 2. Bytes/s of the same answer (1 M raw values as the connector writes them) fetched by the
//!    same HTTPS client: straight from a site service, through a `rathole` reverse tunnel over
//!    TLS in front of that service, and through our hub's app API and relay.
//! 3. Echo rate of messages over TLS on loopback: a plain tokio-tungstenite WebSocket (the floor),
//!    our SignalR client over WebSockets (JSON and MessagePack), and the official
//!    `@microsoft/signalr` Node client against the same server (`tests/bench/signalr_rate.mjs`).
//! 4. The desktop app's idle RSS, measured by `scripts/measure-desktop` and handed in through
//!    `UPLINK_DESKTOP_RSS_MIB` (`app=… webkit=…`); without it the row says it was not measured.
//!
//! Run with `cargo bench -p uplink-cli --bench alternatives [-- FILTER…] [--json PATH]`
//! (filters: snapshot, raw, memory, tunnel, messages; a transport's name — WebSockets,
//! ServerSentEvents, LongPolling — runs the raw reads over it alone, beside the in-process
//! answer); `scripts/benchmarks` runs all of it,
//! installs rathole first and draws the plots. `UPLINK_RATHOLE` names the rathole binary
//! (default `$CARGO_TARGET_DIR/tools/bin/rathole`).
#![allow(clippy::print_stdout)]

#[path = "relay.rs"]
#[allow(dead_code)]
mod relay;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use relay::{cpu_ns, thread_cpu_ns};
use serde_json::{Value, json};
use uplink_measure::{Timing, human, si};

fn main() -> anyhow::Result<()> {
    if std::env::var(relay::HUB_ROLE).as_deref() == Ok("hub") {
        return tokio::runtime::Runtime::new()?.block_on(relay::idle_hub::serve());
    }
    let mut filters = Vec::new();
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--json" {
            json_path = Some(PathBuf::from(args.next().ok_or_else(|| {
                anyhow::anyhow!("--json needs the path of the file to write")
            })?));
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let machine_before = machine();
    let mut report = Report::default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        if wanted("snapshot") {
            report.snapshot(relay::snapshot().await?);
        }
        // Naming transports runs the raw reads over those alone.
        let transports: Vec<_> = uplink_signalr::Transport::ALL
            .into_iter()
            .filter(|t| filters.iter().any(|f| *f == t.to_string()))
            .collect();
        if wanted("raw") || !transports.is_empty() {
            report.raw(relay::raw(&transports).await?);
        }
        if wanted("memory") {
            report.memory(relay::idle_hub::memory_per_connector().await?);
        }
        if wanted("tunnel") {
            report.tunnel(tunnel::measure().await?);
        }
        if wanted("messages") {
            for rates in messages::measure().await? {
                report.messages(rates);
            }
        }
        anyhow::Ok(())
    })?;
    report.desktop(std::env::var("UPLINK_DESKTOP_RSS_MIB").ok().as_deref())?;

    println!("\n{}", report.table());
    let document = json!({
        "command": "scripts/benchmarks (cargo bench -p uplink-cli --bench alternatives)",
        "machine": machine_before,
        "load_after": load_average(),
        "rows": report.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    if let Some(path) = json_path {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

/// One line of the table: a figure of ours, and the baseline it is read against.
struct Row {
    section: &'static str,
    figure: String,
    unit: &'static str,
    ours: Option<f64>,
    baseline: Option<(String, f64)>,
    /// Ours relative to the baseline, above 1 when ours is better (faster, more per second).
    ratio: Option<f64>,
    note: String,
}

impl Row {
    fn to_json(&self) -> Value {
        json!({
            "section": self.section,
            "figure": self.figure,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.baseline.as_ref().map(|(name, _)| name),
            "baselineValue": self.baseline.as_ref().map(|(_, v)| v),
            "ratio": self.ratio,
            "note": self.note,
        })
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    /// Raw values/s through the relay per transport, kept to set beside the tunnel's bound.
    raw_rates: Vec<(String, f64)>,
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Report {
    fn push(&mut self, section: &'static str, figure: String, unit: &'static str, ours: f64) {
        self.rows.push(Row {
            section,
            figure,
            unit,
            ours: Some(ours),
            baseline: None,
            ratio: None,
            note: String::new(),
        });
    }

    /// A time against a baseline time: the ratio is baseline / ours.
    fn time(
        &mut self,
        section: &'static str,
        figure: String,
        ours: Duration,
        base: (&str, Duration),
    ) {
        self.rows.push(Row {
            section,
            figure,
            unit: "µs",
            ours: Some(micros(ours)),
            baseline: Some((base.0.to_owned(), micros(base.1))),
            ratio: Some(base.1.as_secs_f64() / ours.as_secs_f64().max(f64::MIN_POSITIVE)),
            note: String::new(),
        });
    }

    /// A rate against a baseline rate: the ratio is ours / baseline.
    fn rate(
        &mut self,
        section: &'static str,
        figure: String,
        unit: &'static str,
        ours: f64,
        base: (&str, f64),
    ) {
        self.rows.push(Row {
            section,
            figure,
            unit,
            ours: Some(ours),
            baseline: Some((base.0.to_owned(), base.1)),
            ratio: Some(ours / base.1.max(f64::MIN_POSITIVE)),
            note: String::new(),
        });
    }

    fn snapshot(&mut self, f: relay::SnapshotFigures) {
        for p in [50.0, 99.0] {
            self.time(
                "snapshot",
                format!("snapshot latency p{p}, one at a time"),
                f.relay.percentile(p),
                ("in-process answer", f.in_process.percentile(p)),
            );
        }
        for p in [50.0, 99.0] {
            self.push(
                "snapshot",
                format!(
                    "snapshot latency p{p} at {} req/s ({} of 3000 shed as busy)",
                    si(f.offered_per_second),
                    f.shed
                ),
                "µs",
                micros(f.paced.percentile(p)),
            );
        }
        let floor = "floor: HTTPS request + WebSocket round trip";
        self.time(
            "snapshot",
            "snapshot latency p50, one at a time, against its floor".into(),
            f.relay.percentile(50.0),
            (floor, f.floor.unloaded(50.0)),
        );
        self.time(
            "snapshot",
            "snapshot latency p50 at 1 000 req/s, against its floor".into(),
            f.paced.percentile(50.0),
            (floor, f.floor.paced(50.0)),
        );
        self.push(
            "snapshot",
            "snapshots/s, 16 in flight".into(),
            "req/s",
            f.sustained_per_second,
        );
        let g = &f.grant;
        self.rows.push(Row {
            section: "snapshot",
            figure: "grant check inside a snapshot request (mean, the hub's counters)".into(),
            unit: "µs",
            ours: Some(micros(g.in_request)),
            baseline: Some(("the request (mean)".into(), micros(g.request_mean))),
            ratio: None,
            note: format!(
                "{:.1} % of the request; its store read {:.1} µs; {} checks",
                100.0 * g.share(),
                micros(g.store_in_request),
                g.checks
            ),
        });
        self.rows.push(Row {
            section: "snapshot",
            figure: "grant check alone, in-process (p50)".into(),
            unit: "µs",
            ours: Some(micros(g.check.median())),
            baseline: None,
            ratio: None,
            note: format!(
                "token verification {:.1} µs, store read {:.1} µs",
                micros(g.verify.median()),
                micros(g.store.median())
            ),
        });
    }

    fn raw(&mut self, f: relay::RawFigures) {
        let local = f.in_process.per_second(relay::RAW_VALUES);
        for (transport, timing) in &f.relayed {
            self.raw_rates
                .push((transport.to_string(), timing.per_second(relay::RAW_VALUES)));
            self.rate(
                "raw",
                format!("raw values/s over {transport}"),
                "values/s",
                timing.per_second(relay::RAW_VALUES),
                ("in-process answer", local),
            );
            if let Some((_, cpu)) = f.cpu_relayed.iter().find(|(t, _)| t == transport)
                && let Some(last) = self.rows.last_mut()
            {
                last.note = format!(
                    "CPU per read {:.2} s, {:.1} × the in-process answer's",
                    cpu.as_secs_f64(),
                    cpu.as_secs_f64() / f.cpu_in_process.as_secs_f64().max(f64::MIN_POSITIVE)
                );
            }
        }
        if let Some(last) = self.rows.last_mut() {
            last.note = format!(
                "{}; {:.1} MB JSON body",
                last.note,
                f.body_bytes as f64 / 1e6
            );
        }
    }

    fn memory(&mut self, f: relay::MemoryFigures) {
        self.push(
            "memory",
            format!("hub memory per idle connector ({} links)", f.links),
            "KiB",
            f.per_connector_kib,
        );
        if let Some(last) = self.rows.last_mut() {
            last.note = format!(
                "hub RSS {:.1} → {:.1} MiB",
                f.before_kib as f64 / 1024.0,
                f.after_kib as f64 / 1024.0
            );
        }
    }

    fn tunnel(&mut self, f: tunnel::Figures) {
        let mbps = |t: &Timing| f.body_bytes as f64 / t.median().as_secs_f64() / 1e6;
        self.rate(
            "tunnel",
            "MB/s through our relay (WebSockets)".into(),
            "MB/s",
            mbps(&f.relay),
            ("rathole over TLS", mbps(&f.rathole)),
        );
        self.rate(
            "tunnel",
            "MB/s through rathole over TLS".into(),
            "MB/s",
            mbps(&f.rathole),
            ("site service direct", mbps(&f.direct)),
        );
        self.rate(
            "tunnel",
            "MB/s through our relay (WebSockets)".into(),
            "MB/s",
            mbps(&f.relay),
            ("site service direct", mbps(&f.direct)),
        );
        // The bound: any relay of this answer terminates the app's TLS and carries the bytes
        // over a second TLS connection; a bare forwarder does only that.
        self.rate(
            "tunnel",
            "MB/s through a TLS→TLS forwarder".into(),
            "MB/s",
            mbps(&f.forwarder),
            ("site service direct", mbps(&f.direct)),
        );
        self.rate(
            "tunnel",
            "MB/s through our relay (WebSockets), against the bound".into(),
            "MB/s",
            mbps(&f.relay),
            ("TLS→TLS forwarder", mbps(&f.forwarder)),
        );
        for row in self.rows.iter_mut().rev().take(5) {
            row.note = format!(
                "{:.1} MB body, median of {}",
                f.body_bytes as f64 / 1e6,
                f.relay.len()
            );
        }
        if let Some(last) = self.rows.last_mut() {
            let per_byte = |name: &str| {
                f.cpu
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |(_, c)| c.as_nanos() as f64 / f.body_bytes as f64)
            };
            last.note.push_str(&format!(
                "; CPU ns/byte: relay {:.2}, forwarder {:.2}, direct {:.2}",
                per_byte("relay"),
                per_byte("TLS→TLS forwarder"),
                per_byte("direct")
            ));
        }
        // The raw reads carry the same answer (the same query and answer code), so the
        // forwarder bounds them too.
        let bound = f.forwarder.per_second(relay::RAW_VALUES);
        for (transport, rate) in std::mem::take(&mut self.raw_rates) {
            self.rate(
                "raw",
                format!("raw values/s over {transport}, against the bound"),
                "values/s",
                rate,
                ("site service through a TLS→TLS forwarder", bound),
            );
        }
    }

    fn messages(&mut self, r: messages::Rates) {
        let size = if r.size >= 1024 {
            format!("{} KiB", r.size / 1024)
        } else {
            format!("{} B", r.size)
        };
        let floor = ("tokio-tungstenite echo", r.plain.per_second(1));
        for (name, timing) in [
            ("our SignalR client, JSON", &r.ours_json),
            ("our SignalR client, MessagePack", &r.ours_msgpack),
            ("@microsoft/signalr (Node), JSON", &r.node_json),
            ("@microsoft/signalr (Node), MessagePack", &r.node_msgpack),
        ] {
            self.rate(
                "messages",
                format!("echoes/s of {size}, {name}"),
                "msg/s",
                timing.per_second(1),
                floor,
            );
        }
        // The bound: the plain echo plus the protocol's own work, in CPU per echo.
        for (name, timing, cpu, protocol) in [
            ("JSON", &r.ours_json, r.cpu_json, r.protocol_json),
            (
                "MessagePack",
                &r.ours_msgpack,
                r.cpu_msgpack,
                r.protocol_msgpack,
            ),
        ] {
            self.rate(
                "messages",
                format!("echoes/s of {size}, our SignalR client, {name}, against the bound"),
                "msg/s",
                timing.per_second(1),
                ("plain echo + the protocol's work", r.bound(protocol)),
            );
            if let Some(last) = self.rows.last_mut() {
                last.note = format!(
                    "CPU per echo: ours {:.2} µs, plain {:.2} µs, protocol {:.2} µs",
                    micros(cpu),
                    micros(r.cpu_plain),
                    micros(protocol)
                );
            }
        }
    }

    fn desktop(&mut self, measured: Option<&str>) -> anyhow::Result<()> {
        let mut row = Row {
            section: "desktop",
            figure: "desktop app idle RSS (app process)".into(),
            unit: "MiB",
            ours: None,
            baseline: None,
            ratio: None,
            note: "not measured in this run: scripts/benchmarks --desktop runs scripts/measure-desktop".into(),
        };
        if let Some(text) = measured {
            let field = |name: &str| -> anyhow::Result<f64> {
                text.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .ok_or_else(|| {
                        anyhow::anyhow!("UPLINK_DESKTOP_RSS_MIB has no {name}=…: {text:?}")
                    })?
                    .parse()
                    .map_err(|e| anyhow::anyhow!("UPLINK_DESKTOP_RSS_MIB {name}: {e}"))
            };
            row.ours = Some(field("app")?);
            row.note = format!(
                "WebKit processes {} MiB more (scripts/measure-desktop)",
                field("webkit")?
            );
        }
        self.rows.push(row);
        Ok(())
    }

    fn table(&self) -> String {
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.figure.clone(),
                    r.ours
                        .map_or("—".into(), |v| format!("{} {}", number(v), r.unit)),
                    r.baseline.as_ref().map_or(String::new(), |(n, v)| {
                        format!("{n}: {} {}", number(*v), r.unit)
                    }),
                    r.ratio.map_or(String::new(), |v| format!("{v:.2}")),
                    r.note.clone(),
                ]
            })
            .collect();
        let header = [
            "figure",
            "ours (median)",
            "baseline (median)",
            "ratio",
            "note",
        ];
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String]| {
            let mut out = String::new();
            for (c, w) in row.iter().zip(widths) {
                out.push_str(&format!("{c:<w$}  "));
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&header.map(str::to_owned));
        out.push_str(&line(&widths.map(|w| "-".repeat(w))));
        for row in &cells {
            out.push_str(&line(row));
        }
        out
    }
}

/// A figure with three significant digits and SI suffixes for large ones.
fn number(v: f64) -> String {
    if v >= 10_000.0 {
        si(v)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|(_, m)| m.trim().to_owned())
    });
    let rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpuModel": cpu_model,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "rustc": rustc,
        "memTotalKib": read("/proc/meminfo").lines().find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<u64>().ok()),
        "loadBefore": load_average(),
    })
}

fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// The repository's root (`tests/` holds the Node client).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port nobody listens on now (for processes that take their port from a file).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// GETs `url` and reads its body to the end; the time it took and the body's length.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await?;
    anyhow::ensure!(
        response.status() == 200,
        "{url} answered {}",
        response.status()
    );
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len();
    }
    Ok((started.elapsed(), bytes))
}

mod tunnel {
    //! The same answer over three paths: a site service straight, the service behind a rathole
    //! tunnel (client on the site, server in front), and our relay.

    use std::process::Stdio;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::routing::get;
    use futures::StreamExt;
    use tokio::process::{Child, Command};
    use uplink_connector::{ConnectorConfig, answer, kinds};
    use uplink_link::ResultFormat;
    use uplink_model::Query;
    use uplink_signalr::Transport;

    use super::*;

    const RUNS: usize = 7;

    pub struct Figures {
        pub body_bytes: usize,
        pub direct: Timing,
        pub rathole: Timing,
        pub relay: Timing,
        /// The site service behind a bare TLS→TLS forwarder: two TLS legs and a copy, the
        /// least a relay adds to the direct fetch.
        pub forwarder: Timing,
        /// CPU time of this process per fetch (median), by path: the client and the site
        /// service always, plus the forwarder, or the hub and the connector; rathole's own
        /// processes are not counted.
        pub cpu: Vec<(&'static str, Duration)>,
    }

    /// A bare forwarder in front of `site_port`: terminates the client's TLS and carries the
    /// bytes both ways over a TLS connection of its own to the site service, with 64 KiB
    /// buffers. Returns the port it listens on.
    async fn forwarder(ca: &uplink_tls::LoopbackCa, site_port: u16) -> anyhow::Result<u16> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let acceptor = tokio_rustls::TlsAcceptor::from(uplink_tls::server_config(
            &ca.cert_chain_pem(),
            ca.key_pem(),
        )?);
        let connector = tokio_rustls::TlsConnector::from(uplink_tls::client_config(
            &uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()),
        )?);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, connector) = (acceptor.clone(), connector.clone());
                tokio::spawn(async move {
                    tcp.set_nodelay(true)?;
                    let mut front = acceptor.accept(tcp).await?;
                    let upstream = tokio::net::TcpStream::connect(("127.0.0.1", site_port)).await?;
                    upstream.set_nodelay(true)?;
                    let mut back = connector.connect("localhost".try_into()?, upstream).await?;
                    tokio::io::copy_bidirectional_with_sizes(
                        &mut front,
                        &mut back,
                        64 * 1024,
                        64 * 1024,
                    )
                    .await?;
                    anyhow::Ok(())
                });
            }
        });
        Ok(port)
    }

    fn rathole_binary() -> anyhow::Result<PathBuf> {
        let path = match std::env::var_os("UPLINK_RATHOLE") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(
                std::env::var("CARGO_TARGET_DIR")
                    .unwrap_or_else(|_| repo_root().join("target").to_string_lossy().into_owned()),
            )
            .join("tools/bin/rathole"),
        };
        anyhow::ensure!(
            path.is_file(),
            "rathole is not installed at {} (scripts/benchmarks installs it, or set UPLINK_RATHOLE)",
            path.display()
        );
        Ok(path)
    }

    /// The site service: the connector's own answer to the raw query, streamed over HTTPS.
    async fn site_service(ca: &uplink_tls::LoopbackCa) -> anyhow::Result<u16> {
        let source = kinds::open(&ConnectorConfig::default().sources[0]).await?;
        let query: Arc<Query> = Arc::new(serde_json::from_str(
            r#"{"type":"raw","tag":"sim.sinusoid.1","start":"*-12d","end":"*","maxCount":1000000}"#,
        )?);
        let app = Router::new().route(
            "/raw",
            get(move || {
                let (source, query) = (source.clone(), (*query).clone());
                async move {
                    Body::from_stream(answer::answer(source, query, ResultFormat::Json).map(
                        |part| {
                            part.map(Bytes::from)
                                .map_err(|f| std::io::Error::other(f.message))
                        },
                    ))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let tls = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;
        tokio::spawn(uplink_tls::serve(
            listener,
            tls,
            app,
            std::future::pending(),
        ));
        Ok(port)
    }

    /// rathole's server (TLS control and data channels) and client, in front of `site_port`;
    /// returns them and the port the server exposes the site service on.
    fn start_rathole(dir: &Path, site_port: u16) -> anyhow::Result<(Child, Child, u16)> {
        let bin = rathole_binary()?;
        // rathole's TLS (native-tls) takes the server's identity as PKCS#12.
        let status = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:bench"])
            .arg("-out")
            .arg(dir.join("identity.pfx"))
            .arg("-inkey")
            .arg(dir.join("key.pem"))
            .arg("-in")
            .arg(dir.join("cert.pem"))
            .status()
            .map_err(|e| {
                anyhow::anyhow!("cannot run openssl to build rathole's PKCS#12 identity: {e}")
            })?;
        anyhow::ensure!(status.success(), "openssl pkcs12 failed ({status})");
        let (control, exposed) = (free_port()?, free_port()?);
        let transport = |side: &str, tls: String| {
            format!(
                "[{side}.transport]\ntype = \"tls\"\n[{side}.transport.tcp]\nnodelay = true\n[{side}.transport.tls]\n{tls}"
            )
        };
        let server = format!(
            "[server]\nbind_addr = \"127.0.0.1:{control}\"\n{}\n[server.services.site]\ntoken = \"bench-token\"\nbind_addr = \"127.0.0.1:{exposed}\"\n",
            transport(
                "server",
                format!(
                    "pkcs12 = {:?}\npkcs12_password = \"bench\"\n",
                    dir.join("identity.pfx")
                )
            )
        );
        let client = format!(
            "[client]\nremote_addr = \"127.0.0.1:{control}\"\n{}\n[client.services.site]\ntoken = \"bench-token\"\nlocal_addr = \"127.0.0.1:{site_port}\"\n",
            transport(
                "client",
                format!(
                    "trusted_root = {:?}\nhostname = \"localhost\"\n",
                    dir.join("ca.pem")
                )
            )
        );
        std::fs::write(dir.join("server.toml"), server)?;
        std::fs::write(dir.join("client.toml"), client)?;
        let spawn = |flag: &str, config: &str| -> anyhow::Result<Child> {
            Ok(Command::new(&bin)
                .arg(flag)
                .arg(dir.join(config))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()?)
        };
        let server = spawn("--server", "server.toml")?;
        let client = spawn("--client", "client.toml")?;
        Ok((server, client, exposed))
    }

    pub async fn measure() -> anyhow::Result<Figures> {
        println!(
            "== the same 1 M-value answer: direct, through rathole over TLS, through our relay"
        );
        let dir = tempfile::tempdir()?;
        let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
        ca.write_to_dir(dir.path())?;
        let site_port = site_service(&ca).await?;
        let (_server, _client, exposed) = start_rathole(dir.path(), site_port)?;
        let client = relay::stage::http_client(ca.ca_pem())?;
        let direct_url = format!("https://localhost:{site_port}/raw");
        let tunnel_url = format!("https://localhost:{exposed}/raw");
        let forwarder_url = format!("https://localhost:{}/raw", forwarder(&ca, site_port).await?);

        // The tunnel is up once a request goes through it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut expected = fetch(&client, &direct_url, None).await?.1;
        loop {
            match fetch(&client, &tunnel_url, None).await {
                Ok((_, bytes)) => {
                    expected = expected.max(bytes);
                    break;
                }
                Err(e) if Instant::now() > deadline => {
                    anyhow::bail!("rathole did not carry a request within 30 s: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }

        let (stage, _stage_dir) = relay::stage(Transport::WebSockets).await?;
        let stage_client = relay::stage::http_client(&stage.ca_pem)?;
        let relay_url = relay::url(
            &stage,
            "raw?tag=sim.sinusoid.1&start=*-12d&end=*&maxCount=1000000",
        );
        let token = stage.tokens.access_token.clone();
        fetch(&stage_client, &relay_url, Some(&token)).await?;
        fetch(&client, &forwarder_url, None).await?;

        // Interleaved, so a burst of load elsewhere on the machine falls on all four alike.
        let (mut direct, mut tunnel, mut relayed, mut forwarded) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut cpu: [Vec<Duration>; 4] = Default::default();
        for _ in 0..RUNS {
            for ((url, token, samples, client), cpu) in [
                (&direct_url, None, &mut direct, &client),
                (&forwarder_url, None, &mut forwarded, &client),
                (&tunnel_url, None, &mut tunnel, &client),
                (
                    &relay_url,
                    Some(token.as_str()),
                    &mut relayed,
                    &stage_client,
                ),
            ]
            .into_iter()
            .zip(cpu.iter_mut())
            {
                let started = cpu_ns();
                let (took, bytes) = fetch(client, url, token).await?;
                cpu.push(Duration::from_nanos(cpu_ns().saturating_sub(started)));
                anyhow::ensure!(
                    bytes.abs_diff(expected) < expected / 100,
                    "{url} carried {bytes} bytes where {expected} were expected"
                );
                samples.push(took);
            }
        }
        stage.stop().await;
        let figures = Figures {
            body_bytes: expected,
            direct: Timing::from_samples(direct),
            rathole: Timing::from_samples(tunnel),
            relay: Timing::from_samples(relayed),
            forwarder: Timing::from_samples(forwarded),
            cpu: ["direct", "TLS→TLS forwarder", "rathole", "relay"]
                .into_iter()
                .zip(cpu.map(|c| Timing::from_samples(c).median()))
                .collect(),
        };
        for (name, cpu) in &figures.cpu {
            println!(
                "{name}: CPU of this process per fetch {} ({:.2} ns per byte)",
                human(*cpu),
                cpu.as_nanos() as f64 / figures.body_bytes as f64
            );
        }
        for (name, t) in [
            ("direct", &figures.direct),
            ("TLS→TLS forwarder", &figures.forwarder),
            ("rathole", &figures.rathole),
            ("relay", &figures.relay),
        ] {
            println!(
                "{name}: median {} (min {}), {:.0} MB/s",
                human(t.median()),
                human(t.min()),
                figures.body_bytes as f64 / t.median().as_secs_f64() / 1e6
            );
        }
        Ok(figures)
    }
}

mod messages {
    //! Echo rates over TLS on loopback with a window of calls in flight: plain WebSocket,
    //! our SignalR client, the official Node client.

    use std::sync::Arc;

    use axum::Router;
    use futures::stream::FuturesUnordered;
    use futures::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_rustls::{TlsAcceptor, TlsConnector};
    use tokio_tungstenite::tungstenite::Message;
    use uplink_signalr::client::{HubConnection, ProxySetting};
    use uplink_signalr::server::{Hub, HubServer, ServerOptions};
    use uplink_signalr::{HubError, Transport};

    use super::*;

    const SIZES: [usize; 2] = [100, 16 * 1024];
    const COUNT: usize = 4000;
    const WINDOW: usize = 32;
    const RUNS: usize = 5;

    /// Time per echo, one sample per run of `COUNT`.
    pub struct Rates {
        pub size: usize,
        pub plain: Timing,
        pub ours_json: Timing,
        pub ours_msgpack: Timing,
        pub node_json: Timing,
        pub node_msgpack: Timing,
        /// CPU time per echo, every thread of this process (client and server both run in
        /// it): the plain echo, ours in JSON, ours in MessagePack.
        pub cpu_plain: Duration,
        pub cpu_json: Duration,
        pub cpu_msgpack: Duration,
        /// The protocol's own work per echo, in-process, no I/O (see [`protocol_work`]).
        pub protocol_json: Duration,
        pub protocol_msgpack: Duration,
    }

    impl Rates {
        /// What SignalR's echo cannot beat: the plain echo's rate, scaled by its CPU per echo
        /// against that CPU plus the protocol's own work.
        pub fn bound(&self, protocol: Duration) -> f64 {
            let plain = self.cpu_plain.as_secs_f64();
            self.plain.per_second(1) * plain / (plain + protocol.as_secs_f64())
        }
    }

    /// The work a SignalR echo needs beyond a plain one, per echo, done in-process without
    /// I/O: the client encodes the call (its argument made a value), the server parses it,
    /// binds the argument, makes the result a value and encodes the completion, and the client
    /// parses that and binds the result. In MessagePack it goes through `serde_json::Value`
    /// on both sides, which is a little more than the client's direct encoding, so the bound
    /// it gives is if anything low.
    pub fn protocol_work(payload: &str, message_pack: bool) -> anyhow::Result<Duration> {
        use axum::body::Bytes;
        use uplink_signalr::protocol::{
            Completion, HubMessage, Invocation, Outcome, json, messagepack,
        };
        let encode = |m: &HubMessage, out: &mut Vec<u8>| {
            out.clear();
            if message_pack {
                messagepack::encode(m, out)
            } else {
                json::encode(m, out)
            }
        };
        let decode = |out: &[u8]| {
            if message_pack {
                messagepack::decode(&Bytes::copy_from_slice(out))
            } else {
                json::decode(out)
            }
        };
        let mut out = Vec::with_capacity(payload.len() + 64);
        let mut runs = Vec::new();
        for run in 0..=RUNS {
            let started = thread_cpu_ns();
            for i in 0..COUNT {
                let call = HubMessage::Invocation(Invocation::new(
                    Some(i.to_string()),
                    "Echo",
                    vec![serde_json::to_value(payload)?],
                ));
                encode(&call, &mut out)?;
                let HubMessage::Invocation(call) = decode(&out)? else {
                    anyhow::bail!("the call did not parse as an invocation");
                };
                let (text,): (String,) =
                    serde_json::from_value(Value::Array(call.arguments.into_values()?))?;
                let done = HubMessage::Completion(Completion {
                    headers: Default::default(),
                    invocation_id: call.invocation_id.unwrap_or_default(),
                    outcome: Outcome::Result(serde_json::to_value(text)?),
                });
                encode(&done, &mut out)?;
                let HubMessage::Completion(done) = decode(&out)? else {
                    anyhow::bail!("the completion did not parse as one");
                };
                let Outcome::Result(result) = done.outcome else {
                    anyhow::bail!("the completion carries no result");
                };
                let echoed: String = serde_json::from_value(result)?;
                anyhow::ensure!(
                    echoed.len() == payload.len(),
                    "the echo changed the payload"
                );
            }
            // The first run warms up.
            if run > 0 {
                runs.push(Duration::from_nanos(
                    thread_cpu_ns().saturating_sub(started),
                ));
            }
        }
        Ok(per_echo(runs).median())
    }

    fn per_echo(runs: Vec<Duration>) -> Timing {
        Timing::from_samples(runs.into_iter().map(|d| d / COUNT as u32).collect())
    }

    struct Servers {
        signalr_url: String,
        websocket_port: u16,
        ca_file: PathBuf,
        client_tls: Arc<rustls::ClientConfig>,
        _dir: tempfile::TempDir,
    }

    async fn servers() -> anyhow::Result<Servers> {
        let dir = tempfile::tempdir()?;
        let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
        ca.write_to_dir(dir.path())?;
        let server_tls = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem())?;
        let hub = Hub::new().method("Echo", |_c, (text,): (String,)| async move {
            Ok::<_, HubError>(text)
        });
        let app = Router::new().nest(
            "/hubs/bench",
            HubServer::new(hub, ServerOptions::default()).router(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(uplink_tls::serve(
            listener,
            server_tls.clone(),
            app,
            std::future::pending(),
        ));

        // The floor: a WebSocket that sends back every message, behind the same TLS.
        let plain = TcpListener::bind("127.0.0.1:0").await?;
        let websocket_port = plain.local_addr()?.port();
        let acceptor = TlsAcceptor::from(server_tls);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = plain.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    tcp.set_nodelay(true)?;
                    let ws = tokio_tungstenite::accept_async(acceptor.accept(tcp).await?).await?;
                    let (sink, stream) = ws.split();
                    stream
                        .filter(|m| futures::future::ready(m.as_ref().is_ok_and(Message::is_text)))
                        .forward(sink)
                        .await?;
                    anyhow::Ok(())
                });
            }
        });
        Ok(Servers {
            signalr_url: format!("https://localhost:{port}/hubs/bench"),
            websocket_port,
            ca_file: dir.path().join("ca.pem"),
            client_tls: uplink_tls::client_config(&uplink_tls::Trust::CustomCa(
                ca.ca_pem().to_owned(),
            ))?,
            _dir: dir,
        })
    }

    async fn plain(s: &Servers, payload: &str) -> anyhow::Result<(Timing, Duration)> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.websocket_port)).await?;
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(s.client_tls.clone())
            .connect("localhost".try_into()?, tcp)
            .await?;
        let (ws, _) =
            tokio_tungstenite::client_async(format!("wss://localhost:{}/", s.websocket_port), tls)
                .await?;
        let (mut sink, mut stream) = ws.split();
        // Sends `count` messages, never more than `WINDOW` ahead of the echoes read back, while
        // reading the echoes at the same time; it flushes only when the window is full or all
        // are sent, so several messages share a TLS record as they do in the SignalR clients.
        let mut run = async |count: usize| -> anyhow::Result<Duration> {
            let started = Instant::now();
            let window = tokio::sync::Semaphore::new(WINDOW);
            let send = async {
                for _ in 0..count {
                    let permit = match window.try_acquire() {
                        Ok(permit) => permit,
                        Err(_) => {
                            sink.flush().await?;
                            window.acquire().await?
                        }
                    };
                    permit.forget();
                    sink.feed(Message::text(payload)).await?;
                }
                sink.flush().await?;
                anyhow::Ok(())
            };
            let receive = async {
                for _ in 0..count {
                    match stream.next().await {
                        Some(Ok(Message::Text(t))) if t.len() == payload.len() => {
                            window.add_permits(1);
                        }
                        other => anyhow::bail!("the WebSocket echo answered {other:?}"),
                    }
                }
                anyhow::Ok(())
            };
            tokio::try_join!(send, receive)?;
            Ok(started.elapsed())
        };
        run(500).await?;
        let cpu = cpu_ns();
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(run(COUNT).await?);
        }
        Ok((per_echo(runs), cpu_per_echo(cpu)))
    }

    /// CPU time per echo of the `RUNS` runs since `started` (a [`cpu_ns`] reading).
    fn cpu_per_echo(started: u64) -> Duration {
        Duration::from_nanos((cpu_ns().saturating_sub(started)) / (RUNS * COUNT) as u64)
    }

    async fn ours(
        s: &Servers,
        payload: &str,
        message_pack: bool,
    ) -> anyhow::Result<(Timing, Duration)> {
        let mut builder = HubConnection::builder(&s.signalr_url)
            .tls(s.client_tls.clone())
            .proxy(ProxySetting::Direct)
            .force_transport(Transport::WebSockets);
        if message_pack {
            builder = builder.message_pack();
        }
        let client = builder.start()?;
        tokio::time::timeout(Duration::from_secs(20), client.wait_connected()).await?;
        let run = async |count: usize| -> anyhow::Result<Duration> {
            let started = Instant::now();
            let mut in_flight = FuturesUnordered::new();
            for _ in 0..count {
                if in_flight.len() == WINDOW {
                    let echoed: String = in_flight.next().await.expect("in flight")?;
                    anyhow::ensure!(echoed.len() == payload.len(), "echo changed the payload");
                }
                in_flight.push(client.invoke::<String>("Echo", (payload,)));
            }
            while let Some(echoed) = in_flight.next().await {
                anyhow::ensure!(echoed?.len() == payload.len(), "echo changed the payload");
            }
            Ok(started.elapsed())
        };
        run(500).await?;
        let cpu = cpu_ns();
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(run(COUNT).await?);
        }
        let cpu = cpu_per_echo(cpu);
        client.stop().await;
        Ok((per_echo(runs), cpu))
    }

    async fn node(s: &Servers, size: usize, protocol: &str) -> anyhow::Result<Timing> {
        let tests = repo_root().join("tests");
        anyhow::ensure!(
            tests
                .join("node_modules/@microsoft/signalr-protocol-msgpack")
                .is_dir(),
            "the official SignalR client is not installed: run `npm ci` in {}",
            tests.display()
        );
        let output = tokio::process::Command::new("node")
            .current_dir(&tests)
            .env("NODE_EXTRA_CA_CERTS", &s.ca_file)
            .arg("bench/signalr_rate.mjs")
            .args([&s.signalr_url, protocol])
            .args([size, COUNT, WINDOW, RUNS].map(|n| n.to_string()))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(300), output)
            .await
            .map_err(|_| {
                anyhow::anyhow!("the Node SignalR client did not finish within 5 minutes")
            })?
            .map_err(|e| anyhow::anyhow!("cannot run node: {e}"))?;
        anyhow::ensure!(
            output.status.success(),
            "the Node SignalR client failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
        let runs = result["runsMs"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("the Node client printed no runs: {stdout}"))?
            .iter()
            .filter_map(Value::as_f64)
            .map(|ms| Duration::from_secs_f64(ms / 1e3))
            .collect::<Vec<_>>();
        anyhow::ensure!(
            runs.len() == RUNS,
            "the Node client printed {} runs",
            runs.len()
        );
        Ok(per_echo(runs))
    }

    pub async fn measure() -> anyhow::Result<Vec<Rates>> {
        let s = servers().await?;
        let mut all = Vec::new();
        for size in SIZES {
            println!("== echoes of {size} bytes over TLS, {WINDOW} in flight");
            let payload = "x".repeat(size);
            let (plain, cpu_plain) = plain(&s, &payload).await?;
            let (ours_json, cpu_json) = ours(&s, &payload, false).await?;
            let (ours_msgpack, cpu_msgpack) = ours(&s, &payload, true).await?;
            let rates = Rates {
                size,
                plain,
                ours_json,
                ours_msgpack,
                node_json: node(&s, size, "json").await?,
                node_msgpack: node(&s, size, "messagepack").await?,
                cpu_plain,
                cpu_json,
                cpu_msgpack,
                protocol_json: protocol_work(&payload, false)?,
                protocol_msgpack: protocol_work(&payload, true)?,
            };
            for (name, t) in [
                ("tokio-tungstenite", &rates.plain),
                ("ours, JSON", &rates.ours_json),
                ("ours, MessagePack", &rates.ours_msgpack),
                ("Node, JSON", &rates.node_json),
                ("Node, MessagePack", &rates.node_msgpack),
            ] {
                println!("{name}: {} echoes/s", si(t.per_second(1)));
            }
            for (name, timing, cpu, protocol) in [
                (
                    "JSON",
                    &rates.ours_json,
                    rates.cpu_json,
                    rates.protocol_json,
                ),
                (
                    "MessagePack",
                    &rates.ours_msgpack,
                    rates.cpu_msgpack,
                    rates.protocol_msgpack,
                ),
            ] {
                println!(
                    "CPU per echo: plain {:.2} µs, ours in {name} {:.2} µs; the protocol's own work {:.2} µs; bound {} echoes/s, ours / bound {:.2}",
                    micros(rates.cpu_plain),
                    micros(cpu),
                    micros(protocol),
                    si(rates.bound(protocol)),
                    timing.per_second(1) / rates.bound(protocol)
                );
            }
            all.push(rates);
        }
        Ok(all)
    }
}
