//! `uplink hub serve --metrics-listen` and `uplink connector run --metrics-listen`: Prometheus
//! metrics on a listener of their own, in a form
//! `promtool check metrics` accepts, counting what happened (a linked connector, a refused
//! token), never naming a user, app or connector, and absent from the public port.

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Running, add_connector, add_user, free_port, hub_ca, register_connector, uplink, wait_until,
};

/// `GET /metrics` over plain HTTP.
fn scrape(addr: &str) -> Option<String> {
    let mut socket = std::net::TcpStream::connect(addr).ok()?;
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_owned())
}

fn promtool_accepts(scrape: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package prometheus; scripts/lib/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{scrape}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_counts_links_and_refusals_for_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());
    add_user(hub, "ada", "correct horse battery staple");
    let (id, credential) = add_connector(hub, "ada", "Plant A");
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let _hub = Running(
        uplink()
            .args(["hub", "serve", "--data-dir", hub, "--listen", &listen])
            .args(["--metrics-listen", &metrics])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ca = hub_ca(hub);
    tokio::task::block_in_place(|| {
        wait_until("the hub serving", Duration::from_secs(60), || {
            ca.exists() && scrape(&metrics).is_some()
        })
    });
    register_connector(
        data,
        &format!("https://{listen}"),
        &id,
        &credential,
        &dir.path().join("credential"),
        &ca,
    );
    let connector_metrics = format!("127.0.0.1:{}", free_port());
    let _connector = Running(
        uplink()
            .args(["connector", "--data-dir", data, "run"])
            .args(["--metrics-listen", &connector_metrics])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    tokio::task::block_in_place(|| {
        wait_until("the link counted", Duration::from_secs(60), || {
            scrape(&metrics)
                .is_some_and(|s| s.contains(r#"uplink_hub_links{transport="websockets"} 1"#))
        })
    });
    // The connector knows it is linked once the hub answered its registration.
    let on_site = tokio::task::block_in_place(|| {
        let mut seen = String::new();
        wait_until("the connector linked", Duration::from_secs(60), || {
            seen = scrape(&connector_metrics).unwrap_or_default();
            seen.contains(r#"uplink_connector_link_state{state="connected"} 1"#)
        });
        seen
    });
    for line in [
        r#"uplink_connector_link_state{state="connected"} 1"#,
        r#"uplink_connector_link_state{state="reconnecting"} 0"#,
        r#"uplink_connector_link_transport{transport="websockets"} 1"#,
        r#"uplink_connector_source_health{source="simulated",kind="simulated",state="ok"} 1"#,
        "uplink_connector_active_queries 0",
    ] {
        assert!(on_site.contains(line), "{line} missing from\n{on_site}");
    }
    assert!(!on_site.contains(&id), "{on_site}");
    tokio::task::block_in_place(|| promtool_accepts(&on_site));

    // A refused token, from an app's side.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let refused = client
        .get(format!(
            "https://{listen}/api/v1/sources/src_x/snapshot?tags=A"
        ))
        .bearer_auth("v4.local.not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Metrics are not served on the public port.
    let public = client
        .get(format!("https://{listen}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);

    let text = tokio::task::block_in_place(|| scrape(&metrics)).unwrap();
    for line in [
        r#"uplink_hub_link_connects_total{transport="websockets"} 1"#,
        r#"uplink_hub_grant_checks_total{outcome="invalid_token"} 1"#,
        "uplink_hub_answers_in_flight 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    for private in [id.as_str(), "ada", "Plant A"] {
        assert!(!text.contains(private), "{private} in\n{text}");
    }
    tokio::task::block_in_place(|| promtool_accepts(&text));
}
