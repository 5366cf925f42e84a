//! Revoke means stop: an app's long `raw … start=*-30d` answer, flowing from the real connector
//! runtime through the real hub over TLS on loopback, is cut the moment the access it serves
//! ends — a grant revoked on the settings page (one source or all), the token family revoked
//! at `/oauth/revoke`, the app or the connector removed, the access token's expiry — and when
//! the site blocks the app or removes the source. Each case checks that the app's body is cut
//! (an aborted transfer, never a complete document), that bytes stop within a generous bound
//! of the revoke's answer, and that the connector stopped the query (nothing more is read).
//!
//! Each case runs several rounds and prints the median cut-off (docs/hardening.md, "Revocation
//! in flight"): `cargo test -p uplink-cli --test connector_hub answers_in_flight --
//! --nocapture --test-threads=1`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::policy::{LocalPolicy, PolicyStore};
use uplink_connector::runtime::{ConnectorRuntime, ConnectorStatus, LinkState, RuntimeOptions};
use uplink_hub::Hub;
use uplink_signalr::Transport;
use uplink_signalr::client::Backoff;
use uplink_testkit::{APP, TestHub};

use crate::wait_for;

/// Rounds per case; the median is reported.
const ROUNDS: usize = 5;
/// The generous bound on "from the revoke's answer to the last byte" (the goal is ≤ 100 ms
/// on loopback; the machine running the tests may be loaded).
const BOUND: Duration = Duration::from_secs(2);
/// What the app reads before the access ends, so the answer is surely flowing.
const READ_FIRST: usize = 256 * 1024;

/// The test kit's hub (Ada, the dashboard app, her connector "Plant A") and Plant A's
/// connector runtime, linked and registered with its simulated source.
struct Stage {
    kit: TestHub,
    connector_id: String,
    source_id: String,
    runtime: ConnectorRuntime,
    status: watch::Receiver<ConnectorStatus>,
    data_dir: tempfile::TempDir,
}

/// Registers the dashboard app (again, after a removal).
async fn app(hub: &Hub) {
    hub.add_app(uplink_testkit::dashboard_app()).await.unwrap();
}

impl Stage {
    async fn start() -> Self {
        let kit = TestHub::start().await;
        let connector_id = kit.plant_id().to_owned();
        let data_dir = tempfile::tempdir().unwrap();
        CredentialStore::new(data_dir.path())
            .save(&LinkCredentials {
                hub_url: kit.issuer.clone(),
                connector_id: connector_id.clone(),
                ca_pem: Some(kit.ca_pem().to_owned()),
                secret: LinkSecret::ClientCredential {
                    credential: kit.plant.credential.expose().to_owned(),
                },
            })
            .unwrap();
        let mut options = RuntimeOptions::new(data_dir.path());
        options.transports = vec![Transport::WebSockets];
        options.backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        options.write_status_file = false;
        let runtime = ConnectorRuntime::start(options).await.unwrap();
        let mut status = runtime.status();
        let linked = wait_for(&mut status, "linked and registered", |s| {
            s.link == LinkState::Connected && s.sources.iter().any(|s| s.hub_id.is_some())
        })
        .await;
        let source_id = linked.sources[0].hub_id.clone().unwrap();
        Self {
            kit,
            connector_id,
            source_id,
            runtime,
            status,
            data_dir,
        }
    }

    fn hub(&self) -> &Hub {
        &self.kit.hub
    }

    fn client(&self) -> &reqwest::Client {
        &self.kit.client
    }

    fn url(&self, path: &str) -> String {
        self.kit.url(path)
    }

    /// Ada consents to the app reading the simulated source; an access token of a fresh
    /// family, valid for `ttl` seconds.
    async fn consent(&self, ttl: i64) -> Token {
        let now = uplink_testkit::unix_now();
        let access = self
            .kit
            .mint_app_token(
                &self.kit.user.id,
                APP,
                std::slice::from_ref(&self.source_id),
                ttl,
            )
            .await;
        Token {
            access,
            expires_at: now + ttl,
        }
    }

    /// The app asks for a month of raw values and reads the first [`READ_FIRST`] bytes.
    async fn start_reading(&self, token: &Token) -> Reader {
        let mut response = self
            .client()
            .get(self.url(&format!(
                "/api/v1/sources/{}/raw?tag=sim.ramp.1&start=*-30d&end=*",
                self.source_id
            )))
            .bearer_auth(&token.access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut bytes = 0;
        while bytes < READ_FIRST {
            let chunk = response
                .chunk()
                .await
                .expect("the answer flows")
                .expect("the answer is longer than what is read first");
            bytes += chunk.len();
        }
        wait_for(&mut self.status.clone(), "the query runs on site", |s| {
            s.active_queries == 1
        })
        .await;
        Reader {
            response,
            bytes,
            last_byte: Instant::now(),
        }
    }

    /// Signs Ada in on the hub's pages: the session cookie and the settings page's CSRF token.
    async fn settings_session(&self) -> (String, String) {
        self.kit.settings_session().await
    }

    /// Ada presses Revoke on the settings page (one source, or the whole app); returns when
    /// the hub answered.
    async fn revoke_on_settings_page(&self, session: &(String, String), source: Option<&str>) {
        self.kit.revoke_on_settings_page(session, APP, source).await;
    }

    /// Waits until the connector recorded the query's end with `outcome` and runs nothing.
    async fn connector_stopped(&self, outcome: &str) -> u64 {
        let ended = wait_for(
            &mut self.status.clone(),
            &format!("the connector stops the query ({outcome})"),
            |s| {
                s.active_queries == 0
                    && s.recent_activity
                        .first()
                        .is_some_and(|a| a.outcome == outcome)
            },
        )
        .await;
        ended.recent_activity[0].bytes
    }
}

struct Token {
    access: String,
    expires_at: i64,
}

impl Token {
    /// When the token expires, on the monotonic clock.
    fn expiry(&self) -> Instant {
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(self.expires_at).unwrap());
        Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
    }
}

struct Reader {
    response: reqwest::Response,
    bytes: usize,
    last_byte: Instant,
}

impl Reader {
    /// Reads on in its own task, as an app keeps reading its answer; send it when the access
    /// ended (the revoke's answer, the block's save, the token's expiry), and join it for
    /// the time from then to the last byte.
    fn keep_reading(self) -> (oneshot::Sender<Instant>, JoinHandle<Duration>) {
        let (ended, ended_at) = oneshot::channel();
        (ended, tokio::spawn(self.until_cut(ended_at)))
    }

    /// Reads until the body breaks off, paced like a slow app's until the access ended (so a
    /// month of values cannot all have arrived by then). Fails if the body completes, or
    /// still flows or hangs past the bound after the end.
    async fn until_cut(mut self, mut ended_at: oneshot::Receiver<Instant>) -> Duration {
        let mut ended: Option<Instant> = None;
        loop {
            if ended.is_none() {
                ended = ended_at.try_recv().ok();
            }
            if ended.is_none_or(|at| Instant::now() < at) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let give_up = ended.map_or_else(
                || Instant::now() + Duration::from_secs(30),
                |at| at + BOUND + Duration::from_secs(1),
            );
            match tokio::time::timeout_at(give_up.into(), self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    self.bytes += chunk.len();
                    self.last_byte = Instant::now();
                    if let Some(at) = ended {
                        assert!(
                            self.last_byte < at + BOUND,
                            "bytes still arrive {:?} after the access ended ({} bytes so far)",
                            self.last_byte - at,
                            self.bytes
                        );
                    }
                }
                Ok(Ok(None)) => panic!(
                    "the body ended normally after {} bytes: a cut answer must never look complete",
                    self.bytes
                ),
                // The transfer was aborted: the body is cut.
                Ok(Err(_)) => break,
                Err(_) => panic!("the body neither ended nor broke off after the access ended"),
            }
        }
        let ended = match ended {
            Some(at) => at,
            None => ended_at.await.expect("told when the access ended"),
        };
        let cut_off = self.last_byte.saturating_duration_since(ended);
        assert!(
            cut_off <= BOUND,
            "the last byte came {cut_off:?} after the end"
        );
        cut_off
    }
}

/// Prints the figures of one case and their median.
fn report(case: &str, figures: &mut [Duration]) {
    figures.sort();
    let median = figures[figures.len() / 2];
    let all: Vec<String> = figures
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .collect();
    eprintln!(
        "cut-off after {case}: median {:.1} ms over {} rounds ({} ms)",
        median.as_secs_f64() * 1000.0,
        figures.len(),
        all.join(", ")
    );
}

/// Runs `rounds` rounds of: consent, start reading, `end` the access, read until cut, check
/// the connector stopped with `outcome`. Returns the cut-off of each round.
async fn rounds<F, Fut>(stage: &Stage, rounds: usize, outcome: &str, mut end: F) -> Vec<Duration>
where
    F: FnMut(Token) -> Fut,
    Fut: std::future::Future<Output = Instant>,
{
    let mut figures = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let token = stage.consent(600).await;
        let (ended, reading) = stage.start_reading(&token).await.keep_reading();
        ended.send(end(token).await).unwrap();
        let cut_off = reading.await.unwrap();
        let read_on_site = stage.connector_stopped(outcome).await;
        // A month of values is ~190 MB of JSON; a stopped query read a small part of it.
        assert!(
            read_on_site < 64 * 1024 * 1024,
            "the connector read {read_on_site} bytes"
        );
        figures.push(cut_off);
    }
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_one_source_on_the_settings_page_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let session = stage.settings_session().await;
    let mut figures = rounds(&stage, ROUNDS, "cancelled", |token| {
        let (stage, session) = (&stage, &session);
        async move {
            stage
                .revoke_on_settings_page(session, Some(&stage.source_id))
                .await;
            let ended = Instant::now();
            // New requests are refused at once too.
            let r = stage
                .client()
                .get(stage.url(&format!("/api/v1/sources/{}", stage.source_id)))
                .bearer_auth(&token.access)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            ended
        }
    })
    .await;
    report("a grant revoke (one source)", &mut figures);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_all_of_an_apps_access_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let session = stage.settings_session().await;
    let mut figures = rounds(&stage, ROUNDS, "cancelled", |_| {
        let (stage, session) = (&stage, &session);
        async move {
            stage.revoke_on_settings_page(session, None).await;
            Instant::now()
        }
    })
    .await;
    report("\"revoke all access\"", &mut figures);
    stage.runtime.stop().await;
}

/// The desktop app's revoke button: the connector asks the hub over its link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_on_site_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let mut figures = rounds(&stage, 1, "cancelled", |_| {
        let stage = &stage;
        async move {
            stage.runtime.revoke(APP, Some("simulated")).await.unwrap();
            Instant::now()
        }
    })
    .await;
    report("a revoke on site (desktop)", &mut figures);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_token_family_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let mut figures = rounds(&stage, ROUNDS, "cancelled", |token| {
        let stage = &stage;
        async move {
            let r = stage
                .client()
                .post(stage.url("/oauth/revoke"))
                .form(&[("token", token.access.as_str()), ("client_id", APP)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            Instant::now()
        }
    })
    .await;
    report("a token revoke (RFC 7009)", &mut figures);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_app_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let mut figures = rounds(&stage, ROUNDS, "cancelled", |_| {
        let stage = &stage;
        async move {
            stage.hub().remove_app(APP).await.unwrap();
            let ended = Instant::now();
            // Registered again for the next round.
            app(stage.hub()).await;
            ended
        }
    })
    .await;
    report("an app removal", &mut figures);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_connector_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let token = stage.consent(600).await;
    let (ended, reading) = stage.start_reading(&token).await.keep_reading();
    stage
        .hub()
        .remove_connector(&stage.connector_id)
        .await
        .unwrap();
    ended.send(Instant::now()).unwrap();
    let cut_off = reading.await.unwrap();
    stage.connector_stopped("cancelled").await;
    report("a connector removal", &mut [cut_off]);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_tokens_expiry_cuts_the_answer_in_flight() {
    let stage = Stage::start().await;
    let mut figures = Vec::new();
    for _ in 0..ROUNDS {
        // Expiry is kept in whole seconds: this token lives two to three seconds.
        let token = stage.consent(3).await;
        let (ended, reading) = stage.start_reading(&token).await.keep_reading();
        ended.send(token.expiry()).unwrap();
        let cut_off = reading.await.unwrap();
        stage.connector_stopped("cancelled").await;
        figures.push(cut_off);
    }
    report("the access token's expiry", &mut figures);
    stage.runtime.stop().await;
}

/// `uplink connector policy block-app` is another process writing the policy file through
/// its own `PolicyStore`, as here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_block_from_another_process_stops_the_running_query() {
    let stage = Stage::start().await;
    let cli = PolicyStore::new(stage.data_dir.path());
    let mut figures = Vec::new();
    for _ in 0..ROUNDS {
        cli.save(&LocalPolicy::default()).unwrap();
        let token = stage.consent(600).await;
        let (ended, reading) = stage.start_reading(&token).await.keep_reading();
        let mut policy = cli.load().unwrap();
        policy.block_app(APP);
        cli.save(&policy).unwrap();
        ended.send(Instant::now()).unwrap();
        let cut_off = reading.await.unwrap();
        stage.connector_stopped("vetoed").await;
        figures.push(cut_off);
    }
    report(
        "a site block (policy file from another process)",
        &mut figures,
    );
    assert_vetoed_with_a_reason(&stage).await;
    stage.runtime.stop().await;
}

/// What an app is told when it asks again after a site block.
async fn assert_vetoed_with_a_reason(stage: &Stage) {
    let cli = PolicyStore::new(stage.data_dir.path());
    let mut policy = LocalPolicy::default();
    policy.block_app(APP);
    cli.save(&policy).unwrap();
    let token = stage.consent(600).await;
    let r = stage
        .client()
        .get(stage.url(&format!(
            "/api/v1/sources/{}/raw?tag=sim.ramp.1&start=*-1h&end=*",
            stage.source_id
        )))
        .bearer_auth(&token.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "vetoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_block_from_the_desktop_stops_the_running_query() {
    let stage = Stage::start().await;
    let mut figures = rounds(&stage, 1, "vetoed", |_| {
        let stage = &stage;
        async move {
            stage
                .runtime
                .set_source_blocked("simulated", true)
                .await
                .unwrap();
            Instant::now()
        }
    })
    .await;
    report("a site block (desktop)", &mut figures);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_source_on_site_stops_the_running_query() {
    let stage = Stage::start().await;
    let mut figures = rounds(&stage, 1, "unknown_source", |_| {
        let stage = &stage;
        async move {
            stage.runtime.remove_source("simulated").await.unwrap();
            Instant::now()
        }
    })
    .await;
    report("a source removed on site", &mut figures);
    stage.runtime.stop().await;
}
