//! `uplink hub serve` and `uplink connector` under a service manager (systemd `Type=notify`),
//! with a notification socket of the test's own: `READY=1` comes only once the hub listens and
//! once the connector's link is up, `WATCHDOG=1` keeps coming at half the unit's interval,
//! SIGTERM stops either cleanly with `STOPPING=1`, and the hub answers its health checks.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Running, add_connector, add_user, free_port, hub_ca, register_connector, serve_hub, uplink,
};

/// The service manager's end: a datagram socket the program under test notifies.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Messages as they arrive until one has the line `line`; fails after `within`.
    fn until(&mut self, line: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(message) = self.next(deadline.saturating_duration_since(Instant::now()))
                && message.lines().any(|l| l == line)
            {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no {line} within {within:?}; got {:?}",
                self.seen
            );
        }
    }

    /// The next message within `within`, if any.
    fn next(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buffer = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buffer) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                    self.seen.push(message.clone());
                    return Some(message);
                }
                Err(_) if Instant::now() < deadline => {}
                Err(_) => return None,
            }
        }
    }

    /// How many messages with the line `line` arrive within `within`.
    fn count(&mut self, line: &str, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut count = 0;
        while Instant::now() < deadline {
            if let Some(message) = self.next(deadline.saturating_duration_since(Instant::now()))
                && message.lines().any(|l| l == line)
            {
                count += 1;
            }
        }
        count
    }
}

/// `command`, told of the notification socket and a 600 ms watchdog as systemd would.
fn as_service(mut command: Command, notify: &NotifySocket) -> Running {
    Running(
        command
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "600000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn terminate(running: &mut Running) -> std::process::ExitStatus {
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    running.0.wait().unwrap()
}

async fn get(url: &str, ca: &Path) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_is_ready_once_it_listens_pings_the_watchdog_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let hub = hub_dir.to_str().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let listen = format!("127.0.0.1:{}", free_port());

    let mut serving = as_service(
        {
            let mut command = uplink();
            command.args(["hub", "serve", "--data-dir", hub, "--listen", &listen]);
            command
        },
        &notify,
    );
    let ready = tokio::task::block_in_place(|| notify.until("READY=1", Duration::from_secs(60)));
    // Ready means serving: the listener accepts at once, and the status line says where.
    assert!(std::net::TcpStream::connect(&listen).is_ok());
    assert!(
        ready.contains(&format!("STATUS=serving https://{listen}")),
        "{ready}"
    );

    let (status, alive) = get(&format!("https://{listen}/healthz"), &hub_ca(hub)).await;
    assert_eq!((status, alive["status"].as_str()), (200, Some("alive")));
    let (status, ready) = get(&format!("https://{listen}/readyz"), &hub_ca(hub)).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"][0]["name"], "store");
    assert_eq!(ready["checks"][0]["ok"], true);

    // 600 ms watchdog: a ping every 300 ms, so at least 4 in 2 s even on a loaded machine.
    let pings = tokio::task::block_in_place(|| notify.count("WATCHDOG=1", Duration::from_secs(2)));
    assert!(pings >= 4, "{pings} watchdog pings in 2 s");

    let exited = tokio::task::block_in_place(|| terminate(&mut serving));
    assert!(
        exited.success(),
        "SIGTERM stops the hub cleanly: {exited:?}"
    );
    tokio::task::block_in_place(|| notify.until("STOPPING=1", Duration::from_secs(5)));
}

#[test]
fn the_connector_is_ready_only_once_its_link_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());
    add_user(hub, "ada", "correct horse battery staple");
    let (id, credential) = add_connector(hub, "ada", "Plant A");
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("https://{listen}");
    {
        let _hub = serve_hub(hub, &listen);
        register_connector(
            data,
            &url,
            &id,
            &credential,
            &dir.path().join("credential"),
            &hub_ca(hub),
        );
    }

    // The hub is down: the connector runs and says why in its status, but is not ready.
    let mut notify = NotifySocket::bind(dir.path());
    let mut connector = as_service(
        {
            let mut command = uplink();
            command.args(["connector", "--data-dir", data]);
            command
        },
        &notify,
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(message) = notify.next(deadline.saturating_duration_since(Instant::now())) {
        assert!(
            !message.lines().any(|l| l == "READY=1"),
            "ready before its link is up: {message}"
        );
    }
    assert!(
        notify.seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "the watchdog is pinged while waiting for the hub: {:?}",
        notify.seen
    );

    let _hub = serve_hub(hub, &listen);
    let ready = notify.until("READY=1", Duration::from_secs(90));
    assert!(ready.contains("STATUS=linked to the hub over "), "{ready}");

    let exited = terminate(&mut connector);
    assert!(exited.success(), "SIGTERM stops the connector: {exited:?}");
    notify.until("STOPPING=1", Duration::from_secs(5));
}
