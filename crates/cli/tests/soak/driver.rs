//! The soak, shared by the short test (`tests/soak.rs`) and the long benchmark
//! (`benches/soak.rs`): N apps × M connectors on loopback against a real `uplink hub serve`
//! process, over real TLS.
//!
//! - The hub is the `uplink` binary, set up through its own admin commands, so its resident
//!   memory and open files are its own: they are read from `/proc/<pid>/` once per window.
//! - The connectors are the real connector runtime, each with a simulated source of its own
//!   seed, linked over WebSockets, Server-Sent Events or long polling (a mix).
//! - The apps hold tokens from the real consent flow, refresh them as they age, and issue a
//!   steady mix of snapshots and raw reads at random sources. Every answer is checked against
//!   the same simulated source computed here: a raw read must equal the in-process answer
//!   byte for byte, a snapshot's values must be the source's values at their times. An answer
//!   from another connector or another query cannot pass.
//!
//! The verdict: memory flat after warm-up, file descriptors back to their baseline once the
//! apps leave, no error, no wrong answer; the p99 is judged by the benchmark only.

// The demo's consent flow and HTTPS client, so the apps get their tokens as any app does.
#[path = "../../src/demo/consent.rs"]
#[allow(unused_imports, dead_code)]
mod consent;
#[path = "../../src/demo/stage.rs"]
#[allow(dead_code)]
mod stage;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use uplink_connector::credentials::{LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};
use uplink_connector::sources::simulated::SimulatedSource;
use uplink_connector::{ConfigStore, ConnectorConfig, SourceConfig, answer, kinds};
use uplink_link::ResultFormat;
use uplink_signalr::Transport;

use self::consent::ConsentFlow;
use self::stage::http_client;

const USER: &str = "soak";
const REDIRECT: &str = "http://127.0.0.1/callback";
const SCOPE: &str = "data.read tags.read";
/// The tags a snapshot asks for: seed-dependent shapes, so another connector's answer differs.
const SNAPSHOT_TAGS: [&str; 3] = ["sim.noise.1", "sim.randomWalk.2", "sim.sinusoid.1"];
/// The tags raw reads ask for.
const RAW_TAGS: [&str; 2] = ["sim.noise.2", "sim.randomWalk.1"];
/// Raw windows (start, minutes): short ones most of the time, a long one now and then, so
/// answers of one chunk and of several (with the acknowledgement window) both run.
const RAW_WINDOWS: [(&str, u32); 3] = [
    ("2026-01-01T00:00:00Z", 10),
    ("2026-01-01T06:00:00Z", 10),
    ("2026-01-02T00:00:00Z", 180),
];
/// The consent flow signs the one user in once per app; the hub allows ten a minute.
pub const MAX_APPS: usize = 10;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `uplink` binary.
    pub uplink: PathBuf,
    /// Apps, each with its own HTTPS client and token.
    pub apps: usize,
    /// Connectors, each linked to the hub.
    pub connectors: usize,
    /// How long the apps keep querying.
    pub duration: Duration,
    /// One row of the table per window.
    pub window: Duration,
    /// Windows ending within this time are warm-up: memory is judged after it.
    pub warm_up: Duration,
    /// Each app waits this long between its requests.
    pub pause: Duration,
    /// Print each row as its window ends (the benchmark); the test prints the table at the end.
    pub live: bool,
}

/// One window's figures.
#[derive(Debug, Clone)]
pub struct Window {
    /// Seconds since the load started, at the window's end.
    pub at: f64,
    pub rss_kib: u64,
    pub fds: usize,
    pub requests: u64,
    pub errors: u64,
    pub wrong: u64,
    pub p50: Duration,
    pub p99: Duration,
}

/// What the soak saw.
#[derive(Debug, Clone)]
pub struct Report {
    pub options: Options,
    pub transports: Vec<Transport>,
    pub windows: Vec<Window>,
    /// Hub RSS and open files once everything is linked, before the load.
    pub baseline_rss_kib: u64,
    pub baseline_fds: usize,
    /// Hub RSS and open files after the apps left.
    pub end_rss_kib: u64,
    pub end_fds: usize,
    pub refreshes: u64,
    /// The first few failures, for the reader.
    pub failures: Vec<String>,
    /// Warnings and errors the hub logged.
    pub hub_log_problems: Vec<String>,
    /// Connector links that went down during the load, with the reason each gave.
    pub link_losses: Vec<String>,
}

/// The judgement of a report.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Last window's RSS against the first one after warm-up.
    pub memory_flat: bool,
    pub memory_note: String,
    pub fds_back: bool,
    pub no_errors: bool,
    pub no_wrong_answers: bool,
    /// No window after warm-up has a p99 over three times the median window's.
    pub p99_stable: bool,
    pub p99_note: String,
}

/// The memory tolerance: growth from the first window after warm-up to the last.
pub const RSS_TOLERANCE_FRACTION: f64 = 0.10;
pub const RSS_TOLERANCE_KIB: u64 = 4 * 1024;

impl Report {
    pub fn total_requests(&self) -> u64 {
        self.windows.iter().map(|w| w.requests).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.windows.iter().map(|w| w.errors).sum()
    }

    pub fn total_wrong(&self) -> u64 {
        self.windows.iter().map(|w| w.wrong).sum()
    }

    /// Windows after warm-up.
    pub fn steady(&self) -> &[Window] {
        let warm = self.options.warm_up.as_secs_f64();
        let first = self
            .windows
            .iter()
            .position(|w| w.at > warm + 1e-6)
            .unwrap_or(self.windows.len());
        &self.windows[first..]
    }

    pub fn verdict(&self) -> Verdict {
        let steady = self.steady();
        let (memory_flat, memory_note) = match (steady.first(), steady.last()) {
            (Some(first), Some(last)) if steady.len() >= 2 => {
                let allowed = first.rss_kib
                    + (first.rss_kib as f64 * RSS_TOLERANCE_FRACTION) as u64
                    + RSS_TOLERANCE_KIB;
                (
                    last.rss_kib <= allowed,
                    format!(
                        "RSS {} after warm-up (t={:.0} s), {} at the end (t={:.0} s), allowed ≤ {} (+{:.0} % + {} MiB); trend {:+.1} MiB/min",
                        mib(first.rss_kib),
                        first.at,
                        mib(last.rss_kib),
                        last.at,
                        mib(allowed),
                        RSS_TOLERANCE_FRACTION * 100.0,
                        RSS_TOLERANCE_KIB / 1024,
                        slope_mib_per_min(steady),
                    ),
                )
            }
            _ => (
                false,
                "too few windows after warm-up to judge memory".to_owned(),
            ),
        };
        let mut p99s: Vec<Duration> = steady.iter().map(|w| w.p99).collect();
        p99s.sort();
        let median = p99s.get(p99s.len() / 2).copied().unwrap_or_default();
        let worst = p99s.last().copied().unwrap_or_default();
        Verdict {
            memory_flat,
            memory_note,
            fds_back: self.end_fds <= self.baseline_fds,
            no_errors: self.total_errors() == 0,
            no_wrong_answers: self.total_wrong() == 0,
            p99_stable: !p99s.is_empty() && worst <= median * 3,
            p99_note: format!(
                "window p99 after warm-up: median {}, worst {} (stable if ≤ 3 × median)",
                ms(median),
                ms(worst)
            ),
        }
    }

    /// The header and one row per window.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", header());
        for w in &self.windows {
            let _ = writeln!(out, "{}", row(w));
        }
        out
    }

    /// Everything, for people: setup, table, totals and the verdict.
    pub fn summary(&self) -> String {
        let o = &self.options;
        let v = self.verdict();
        let transports: Vec<String> = Transport::ALL
            .iter()
            .map(|t| {
                let n = self.transports.iter().filter(|u| *u == t).count();
                format!("{n} on {t}")
            })
            .collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soak: {} apps × {} connectors for {:.0} s, windows of {:.0} s, warm-up {:.0} s, {} ms between an app's requests",
            o.apps,
            o.connectors,
            o.duration.as_secs_f64(),
            o.window.as_secs_f64(),
            o.warm_up.as_secs_f64(),
            o.pause.as_millis()
        );
        let _ = writeln!(out, "connector transports: {}", transports.join(", "));
        let _ = writeln!(
            out,
            "hub before the load: RSS {}, {} open files",
            mib(self.baseline_rss_kib),
            self.baseline_fds
        );
        out.push_str(&self.table());
        let _ = writeln!(
            out,
            "hub after the apps left: RSS {}, {} open files (baseline {})",
            mib(self.end_rss_kib),
            self.end_fds,
            self.baseline_fds
        );
        let _ = writeln!(
            out,
            "requests {}, errors {}, wrong answers {}, token refreshes {}",
            self.total_requests(),
            self.total_errors(),
            self.total_wrong(),
            self.refreshes
        );
        for failure in &self.failures {
            let _ = writeln!(out, "  failure: {failure}");
        }
        for line in &self.hub_log_problems {
            let _ = writeln!(out, "  hub log: {line}");
        }
        for loss in &self.link_losses {
            let _ = writeln!(out, "  link lost: {loss}");
        }
        let mark = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "verdict: memory flat {} — {}",
            mark(v.memory_flat),
            v.memory_note
        );
        let _ = writeln!(
            out,
            "verdict: no fd leak {} — {} open files at the end, {} before the load",
            mark(v.fds_back),
            self.end_fds,
            self.baseline_fds
        );
        let _ = writeln!(
            out,
            "verdict: no errors {}, no wrong answers {}",
            mark(v.no_errors),
            mark(v.no_wrong_answers)
        );
        let _ = writeln!(
            out,
            "verdict: p99 stable {} — {}",
            mark(v.p99_stable),
            v.p99_note
        );
        out
    }
}

fn header() -> String {
    format!(
        "{:>7} {:>10} {:>6} {:>9} {:>7} {:>6} {:>9} {:>9}",
        "t (s)", "hub RSS", "fds", "requests", "errors", "wrong", "p50", "p99"
    )
}

fn row(w: &Window) -> String {
    format!(
        "{:>7.0} {:>10} {:>6} {:>9} {:>7} {:>6} {:>9} {:>9}",
        w.at,
        mib(w.rss_kib),
        w.fds,
        w.requests,
        w.errors,
        w.wrong,
        ms(w.p50),
        ms(w.p99)
    )
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Least-squares slope of RSS over time, in MiB per minute.
fn slope_mib_per_min(windows: &[Window]) -> f64 {
    let n = windows.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = windows.iter().map(|w| w.at).sum::<f64>() / n;
    let mean_r = windows.iter().map(|w| w.rss_kib as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for w in windows {
        num += (w.at - mean_t) * (w.rss_kib as f64 - mean_r);
        den += (w.at - mean_t).powi(2);
    }
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0 / 1024.0
    }
}

/// The transport of connector `j`: half on WebSockets (what connectors use), a quarter each on
/// Server-Sent Events and long polling.
fn transport_of(j: usize) -> Transport {
    match j % 4 {
        2 => Transport::ServerSentEvents,
        3 => Transport::LongPolling,
        _ => Transport::WebSockets,
    }
}

/// The hub process, killed when dropped.
pub struct HubProcess {
    child: Child,
    pub issuer: String,
    pub ca_pem: String,
    pub log: PathBuf,
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HubProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("cannot read the hub's /proc status (has it exited?)")?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .context("no VmRSS in the hub's /proc status")
    }

    pub fn fds(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .context("cannot list the hub's open files")?
            .count())
    }

    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the hub exited ({status}); its log:\n{}",
                tail(&self.log, 20)
            );
        }
        Ok(())
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs an admin command of `uplink hub`; its standard output.
pub fn admin(uplink: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(uplink)
        .arg("hub")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", uplink.display()))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .context("piped stdin")?
            .write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "uplink hub {} failed: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The value after `key: ` in an admin command's answer.
pub fn field(output: &str, key: &str) -> anyhow::Result<String> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map(str::to_owned)
        .with_context(|| format!("no '{key}' in: {output}"))
}

pub struct Registered {
    pub id: String,
    pub credential: String,
}

/// `uplink hub user add`.
pub fn add_user(uplink: &Path, hub_dir: &Path, name: &str, password: &str) -> anyhow::Result<()> {
    admin(
        uplink,
        &[
            "user",
            "add",
            "--data-dir",
            &hub_dir.to_string_lossy(),
            name,
        ],
        Some(&format!("{password}\n")),
    )?;
    Ok(())
}

/// `uplink hub connector add`: the connector's id and credential.
pub fn add_connector(
    uplink: &Path,
    hub_dir: &Path,
    owner: &str,
    name: &str,
) -> anyhow::Result<Registered> {
    let out = admin(
        uplink,
        &[
            "connector",
            "add",
            "--data-dir",
            &hub_dir.to_string_lossy(),
            "--owner",
            owner,
            "--name",
            name,
        ],
        None,
    )?;
    Ok(Registered {
        id: field(&out, "connector_id")?,
        credential: field(&out, "credential")?,
    })
}

/// `uplink hub serve` on a free loopback port, capped at `max_connectors` links, logging
/// warnings to `hub.log` in its data folder; returns once it says it is ready.
pub fn start_hub(
    uplink: &Path,
    data_dir: &Path,
    max_connectors: usize,
) -> anyhow::Result<HubProcess> {
    let log = data_dir.join("hub.log");
    let mut child = Command::new(uplink)
        .args(["hub", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--max-connectors", &max_connectors.to_string()])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {} hub serve", uplink.display()))?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut ca_path, mut issuer) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(path) = line.strip_prefix("loopback CA certificate: ") {
            ca_path = Some(PathBuf::from(path));
        }
        if let Some(url) = line.strip_prefix("hub ready at ") {
            issuer = Some(url.to_owned());
            break;
        }
    }
    // Whatever else it prints is drained, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let mut hub = HubProcess {
        child,
        issuer: String::new(),
        ca_pem: String::new(),
        log,
    };
    hub.alive()?;
    hub.issuer = issuer.context("the hub never said it was ready")?;
    let ca_path = ca_path.context("the hub did not say where its CA certificate is")?;
    hub.ca_pem = std::fs::read_to_string(&ca_path)?;
    Ok(hub)
}

/// The simulated source of connector `j`: its own seed, two tags per shape.
fn source_config(j: usize) -> anyhow::Result<SourceConfig> {
    let mut settings = serde_json::Map::new();
    settings.insert("seed".into(), serde_json::json!(j + 1));
    settings.insert("tagsPerShape".into(), serde_json::json!(2));
    let settings = kinds::schema("simulated")?
        .validate(&settings)
        .map_err(|errors| anyhow::anyhow!("simulated settings: {errors:?}"))?;
    Ok(SourceConfig {
        name: "line".into(),
        kind: "simulated".into(),
        description: format!("simulated line of site {j}"),
        settings,
    })
}

pub async fn start_connector(
    dir: &Path,
    j: usize,
    hub: &HubProcess,
    registered: &Registered,
    configure: impl FnOnce(&mut RuntimeOptions),
) -> anyhow::Result<ConnectorRuntime> {
    std::fs::create_dir_all(dir)?;
    let mut config = ConnectorConfig {
        sources: vec![source_config(j)?],
        ..ConnectorConfig::default()
    };
    config.settings.display_name = Some(format!("Site {j}"));
    ConfigStore::new(dir).save(&config)?;
    let mut options = RuntimeOptions::new(dir);
    options.transports = vec![transport_of(j)];
    options.write_status_file = false;
    configure(&mut options);
    let runtime = ConnectorRuntime::start(options).await?;
    runtime
        .sign_in(LinkCredentials {
            hub_url: hub.issuer.clone(),
            connector_id: registered.id.clone(),
            ca_pem: Some(hub.ca_pem.clone()),
            secret: LinkSecret::ClientCredential {
                credential: registered.credential.clone(),
            },
        })
        .await?;
    Ok(runtime)
}

pub async fn wait_registered(runtimes: &[ConnectorRuntime]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (j, runtime) in runtimes.iter().enumerate() {
        let mut status = runtime.status();
        loop {
            let (state, error) = {
                let s = status.borrow_and_update();
                (s.link, s.last_error.clone())
            };
            if state == LinkState::Connected {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "connector {j} did not register within a minute ({state:?}, {error:?})"
            );
            let _ = tokio::time::timeout(Duration::from_millis(500), status.changed()).await;
        }
    }
    Ok(())
}

/// One connector as the apps see it: its hub source id and what its answers must be.
struct Target {
    source_id: String,
    sim: SimulatedSource,
    /// Raw bodies by (tag, window).
    raw: Vec<(String, String)>,
}

/// The in-process answer bodies every raw read of connector `j` must match.
async fn expected_raw(j: usize) -> anyhow::Result<Vec<(String, String)>> {
    let source = kinds::open(&source_config(j)?).await?;
    let mut bodies = Vec::new();
    for tag in RAW_TAGS {
        for (start, minutes) in RAW_WINDOWS {
            let begin = chrono::DateTime::parse_from_rfc3339(start)?;
            let end = (begin + chrono::Duration::minutes(i64::from(minutes)))
                .to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let query: uplink_model::Query = serde_json::from_value(serde_json::json!({
                "type": "raw", "tag": tag, "start": start, "end": end, "maxCount": 100_000,
            }))?;
            let mut body = String::new();
            let mut chunks = answer::answer(source.clone(), query, ResultFormat::Json);
            while let Some(chunk) = chunks.next().await {
                body.push_str(&chunk.map_err(|f| anyhow::anyhow!(f.message))?);
            }
            let path = format!("raw?tag={tag}&start={start}&end={end}&maxCount=100000");
            bodies.push((path, body));
        }
    }
    Ok(bodies)
}

/// What the apps count in the current window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    requests: u64,
    errors: u64,
    wrong: u64,
}

#[derive(Default)]
struct Shared {
    tally: Mutex<Tally>,
    failures: Mutex<Vec<String>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn record(&self, took: Duration, outcome: Outcome) {
        let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        t.requests += 1;
        match outcome {
            Outcome::Right => {
                t.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
            Outcome::Error(why) => {
                t.errors += 1;
                drop(t);
                self.fail(why);
            }
            Outcome::Wrong(why) => {
                t.wrong += 1;
                drop(t);
                self.fail(why);
            }
        }
    }

    fn fail(&self, why: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < 10 {
            failures.push(why);
        }
    }

    fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

enum Outcome {
    Right,
    Error(String),
    Wrong(String),
}

/// An app's credentials, refreshed (and rotated) at half their life.
struct AppTokens {
    client_id: String,
    client_secret: String,
    access: String,
    refresh: Option<String>,
    renew_at: Instant,
}

impl AppTokens {
    async fn current(
        &mut self,
        client: &reqwest::Client,
        issuer: &str,
        shared: &Shared,
    ) -> anyhow::Result<String> {
        if Instant::now() >= self.renew_at {
            let refresh = self
                .refresh
                .clone()
                .context("the app was given no refresh token")?;
            let answer: serde_json::Value = client
                .post(format!("{issuer}/oauth/token"))
                .basic_auth(&self.client_id, Some(&self.client_secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ])
                .send()
                .await?
                .error_for_status()
                .context("the token refresh was refused")?
                .json()
                .await?;
            self.access = answer["access_token"]
                .as_str()
                .context("no access_token in the refresh answer")?
                .to_owned();
            self.refresh = answer["refresh_token"].as_str().map(str::to_owned);
            let life = answer["expires_in"].as_u64().unwrap_or(600);
            self.renew_at = Instant::now() + Duration::from_secs(life / 2);
            shared
                .refreshes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(self.access.clone())
    }
}

/// One app's run: its own HTTPS client and tokens, the connectors it may read.
struct App {
    index: usize,
    client: reqwest::Client,
    issuer: String,
    tokens: AppTokens,
    targets: Arc<Vec<Target>>,
    shared: Arc<Shared>,
    until: Instant,
    pause: Duration,
}

impl App {
    /// Requests until the end of the run, each checked, with a pause after each.
    async fn run(mut self) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.index as u64);
        while Instant::now() < self.until {
            let j = rng.random_range(0..self.targets.len());
            let (path, expected) = self.pick(j, &mut rng);
            let started = Instant::now();
            let outcome = match self.request(j, &path, expected.as_deref()).await {
                Ok(()) => Outcome::Right,
                Err(Failure::Error(why)) => Outcome::Error(why),
                Err(Failure::Wrong(why)) => Outcome::Wrong(why),
            };
            let context = |why: String| format!("app {} → site {j} {path}: {why}", self.index);
            let outcome = match outcome {
                Outcome::Error(why) => Outcome::Error(context(why)),
                Outcome::Wrong(why) => Outcome::Wrong(context(why)),
                right => right,
            };
            self.shared.record(started.elapsed(), outcome);
            tokio::time::sleep(self.pause).await;
        }
    }

    /// Three snapshots to one raw read; short raw windows four times as often as the long one.
    fn pick(&self, j: usize, rng: &mut impl Rng) -> (String, Option<String>) {
        if rng.random_range(0..4) != 0 {
            return (format!("snapshot?tags={}", SNAPSHOT_TAGS.join(",")), None);
        }
        let long = RAW_WINDOWS.len() - 1;
        let window = if rng.random_range(0..5) == 0 {
            long
        } else {
            rng.random_range(0..long)
        };
        let tag = rng.random_range(0..RAW_TAGS.len());
        let (path, body) = &self.targets[j].raw[tag * RAW_WINDOWS.len() + window];
        (path.clone(), Some(body.clone()))
    }

    async fn request(
        &mut self,
        j: usize,
        path: &str,
        expected: Option<&str>,
    ) -> Result<(), Failure> {
        let token = self
            .tokens
            .current(&self.client, &self.issuer, &self.shared)
            .await
            .map_err(|e| Failure::Error(format!("{e:#}")))?;
        let target = &self.targets[j];
        let url = format!("{}/api/v1/sources/{}/{path}", self.issuer, target.source_id);
        let body = fetch(&self.client, &url, &token)
            .await
            .map_err(|e| Failure::Error(format!("{e:#}")))?;
        match expected {
            Some(expected) if body == expected => Ok(()),
            Some(_) => Err(Failure::Wrong(format!(
                "raw answer of {} bytes differs from the source's own",
                body.len()
            ))),
            None => check_snapshot(&target.sim, &body).map_err(Failure::Wrong),
        }
    }
}

enum Failure {
    Error(String),
    Wrong(String),
}

async fn fetch(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<String> {
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        client.get(url).bearer_auth(token).send(),
    )
    .await
    .context("no answer within 60 s")??;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(60), response.text())
        .await
        .context("the body did not end within 60 s")??;
    if status != 200 {
        bail!("HTTP {status}: {}", &body[..body.len().min(200)]);
    }
    Ok(body)
}

/// A snapshot is right when it has exactly the asked tags, each with the source's value at
/// its time, and that time is recent.
fn check_snapshot(sim: &SimulatedSource, body: &str) -> Result<(), String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("unreadable snapshot: {e}"))?;
    let values = json["values"].as_array().ok_or("snapshot without values")?;
    if values.len() != SNAPSHOT_TAGS.len() {
        return Err(format!(
            "{} values for {} tags",
            values.len(),
            SNAPSHOT_TAGS.len()
        ));
    }
    let now = chrono::Utc::now();
    for (value, tag) in values.iter().zip(SNAPSHOT_TAGS) {
        if value["tag"] != tag {
            return Err(format!("expected {tag}, got {}", value["tag"]));
        }
        let time = value["time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| format!("{tag}: no readable time"))?
            .to_utc();
        if (now - time).num_seconds().abs() > 120 {
            return Err(format!("{tag}: time {time} is not recent"));
        }
        let expected = sim
            .value_at(tag, time.timestamp_micros())
            .map_err(|e| e.to_string())?;
        // Exactly the source's value, bit for bit: a process value must not change on its way
        // across the link (JSON floats are written shortest and parsed exactly).
        if value["value"].as_f64().map(f64::to_bits) != Some(expected.value.to_bits()) {
            return Err(format!(
                "{tag} at {time}: {} where the source has {}",
                value["value"], expected.value
            ));
        }
    }
    Ok(())
}

/// Runs the soak.
// With `live`, the long run prints its table window by window: that is its output.
#[allow(clippy::print_stdout)]
pub async fn run(options: Options) -> anyhow::Result<Report> {
    ensure!(
        (1..=MAX_APPS).contains(&options.apps),
        "1 to {MAX_APPS} apps (each consents with one sign-in of the same user)"
    );
    ensure!(options.connectors >= 1, "at least one connector");
    uplink_tls::install_crypto_provider();
    let dir = tempfile::tempdir()?;
    let hub_dir = dir.path().join("hub");
    let uplink = options.uplink.as_path();

    // The hub's records, through its own admin commands.
    let password = "a soak-test password of some length";
    add_user(uplink, &hub_dir, USER, password)?;
    let mut apps = Vec::new();
    for i in 0..options.apps {
        let client_id = format!("soak-app-{i}");
        let out = admin(
            uplink,
            &[
                "app",
                "add",
                "--data-dir",
                &hub_dir.to_string_lossy(),
                "--name",
                &format!("Soak app {i}"),
                "--client-id",
                &client_id,
                "--redirect-uri",
                REDIRECT,
                "--scope",
                "data.read",
                "--scope",
                "tags.read",
            ],
            None,
        )?;
        apps.push((client_id, field(&out, "client_secret")?));
    }
    let mut registered = Vec::new();
    for j in 0..options.connectors {
        registered.push(add_connector(uplink, &hub_dir, USER, &format!("Site {j}"))?);
    }

    let mut hub = start_hub(uplink, &hub_dir, options.connectors + 8)?;
    let mut runtimes = Vec::new();
    for (j, r) in registered.iter().enumerate() {
        runtimes.push(
            start_connector(
                &dir.path().join(format!("connector-{j}")),
                j,
                &hub,
                r,
                |_| {},
            )
            .await?,
        );
    }
    wait_registered(&runtimes).await?;
    hub.alive()?;

    // Each connector's source as the hub named it, and what its answers must be.
    let listed = admin(
        uplink,
        &["source", "list", "--data-dir", &hub_dir.to_string_lossy()],
        None,
    )?;
    let mut targets = Vec::new();
    for j in 0..options.connectors {
        let name = format!("Site {j}");
        let source_id = listed
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|cols| cols.len() >= 3 && cols[1] == name && cols[2] == "line")
            .map(|cols| cols[0].to_owned())
            .with_context(|| format!("the hub lists no source of {name}:\n{listed}"))?;
        targets.push(Target {
            source_id,
            sim: SimulatedSource::open(&source_config(j)?)?,
            raw: expected_raw(j).await?,
        });
    }
    let source_ids: Vec<String> = targets.iter().map(|t| t.source_id.clone()).collect();

    // Consent, app by app, through the hub's pages.
    let mut tokens = Vec::new();
    {
        let client = http_client(&hub.ca_pem)?;
        for (client_id, client_secret) in &apps {
            let granted = ConsentFlow {
                client: &client,
                issuer: &hub.issuer,
                username: USER,
                password,
                client_id,
                client_secret,
                redirect_uri: REDIRECT,
                scope: SCOPE,
                source_ids: &source_ids,
            }
            .run()
            .await
            .with_context(|| format!("{client_id} could not obtain consent"))?;
            tokens.push(AppTokens {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                access: granted.access_token,
                refresh: granted.refresh_token,
                renew_at: Instant::now() + Duration::from_secs(granted.expires_in / 2),
            });
        }
    }
    // The consent client's connection is gone; the hub is as the load will find it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_rss_kib = hub.rss_kib()?;
    let baseline_fds = hub.fds()?;

    let shared = Arc::new(Shared::default());
    // A link that goes down explains failed requests: note each loss and its reason.
    let link_losses = Arc::new(Mutex::new(Vec::new()));
    let watchers: Vec<_> = runtimes
        .iter()
        .enumerate()
        .map(|(j, runtime)| tokio::spawn(watch_link(j, runtime.status(), link_losses.clone())))
        .collect();
    let targets = Arc::new(targets);
    let started = Instant::now();
    let until = started + options.duration;
    let mut tasks = Vec::new();
    for (i, tokens) in tokens.into_iter().enumerate() {
        let app = App {
            index: i,
            client: http_client(&hub.ca_pem)?,
            issuer: hub.issuer.clone(),
            tokens,
            targets: targets.clone(),
            shared: shared.clone(),
            until,
            pause: options.pause,
        };
        tasks.push(tokio::spawn(app.run()));
    }
    if options.live {
        println!("{}", header());
    }
    let mut windows = Vec::new();
    let mut next = started + options.window;
    while next <= until + Duration::from_millis(1) {
        tokio::time::sleep_until(next.into()).await;
        hub.alive()?;
        let tally = shared.take();
        let mut latencies = tally.latencies_us;
        latencies.sort_unstable();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .map(|us| Duration::from_micros(u64::from(*us)))
                .unwrap_or_default()
        };
        let window = Window {
            at: started.elapsed().as_secs_f64(),
            rss_kib: hub.rss_kib()?,
            fds: hub.fds()?,
            requests: tally.requests,
            errors: tally.errors,
            wrong: tally.wrong,
            p50: pick(0.50),
            p99: pick(0.99),
        };
        if options.live {
            println!("{}", row(&window));
        }
        windows.push(window);
        next += options.window;
    }
    for task in tasks {
        task.await?;
    }
    // Requests that ended after the last window count too.
    let rest = shared.take();
    if let Some(last) = windows.last_mut() {
        last.requests += rest.requests;
        last.errors += rest.errors;
        last.wrong += rest.wrong;
    }

    // The apps are gone: their connections close, and the hub's open files must come back
    // to what they were before the load.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut end_fds = hub.fds()?;
    while end_fds > baseline_fds && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        end_fds = hub.fds()?;
    }
    let end_rss_kib = hub.rss_kib()?;
    hub.alive()?;

    for watcher in watchers {
        watcher.abort();
    }
    for runtime in runtimes {
        runtime.stop().await;
    }
    let hub_log_problems = std::fs::read_to_string(&hub.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .take(10)
        .map(str::to_owned)
        .collect();
    drop(hub);
    let failures = shared
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Report {
        transports: (0..options.connectors).map(transport_of).collect(),
        options,
        windows,
        baseline_rss_kib,
        baseline_fds,
        end_rss_kib,
        end_fds,
        refreshes: shared.refreshes.load(std::sync::atomic::Ordering::Relaxed),
        failures,
        hub_log_problems,
        link_losses: link_losses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    })
}

/// Notes each time connector `j`'s link leaves `Connected`, with the error it gives then.
async fn watch_link(
    j: usize,
    mut status: tokio::sync::watch::Receiver<uplink_connector::runtime::ConnectorStatus>,
    losses: Arc<Mutex<Vec<String>>>,
) {
    let mut was_up = true;
    loop {
        let (up, reason) = {
            let now = status.borrow_and_update();
            (now.link == LinkState::Connected, now.last_error.clone())
        };
        if was_up && !up {
            let mut losses = losses.lock().unwrap_or_else(|p| p.into_inner());
            if losses.len() < 10 {
                losses.push(format!(
                    "connector {j}: {}",
                    reason.as_deref().unwrap_or("no reason given")
                ));
            }
        }
        was_up = up;
        if status.changed().await.is_err() {
            return;
        }
    }
}
