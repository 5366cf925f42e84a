//! `uplink hub serve --metrics-listen` and `uplink connector run --metrics-listen`: Prometheus
//! metrics on a listener of their own, in a form
//! `promtool check metrics` accepts, counting what happened (a linked connector, a refused
//! token), never naming a user, app or connector, and absent from the public port; the Grafana
//! dashboard the package installs reads only what they export.

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
    tokio::task::block_in_place(|| the_dashboard_reads_what_is_exported(&[&text, &on_site]));
}

/// Every series name a scrape offers: the samples', and for each `# TYPE` the names its
/// samples take.
fn exported_names(scrapes: &[&str]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrapes.iter().flat_map(|s| s.lines()) {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap();
            let suffixes: &[&str] = match kind {
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// The families a metrics module registers (`registry.register("name", …)`), with `prefix`:
/// a labelled family is in a scrape only once it has a sample, which an idle hub lacks.
fn registered_families(source: &str, prefix: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
    let text = std::fs::read_to_string(path).unwrap();
    text.split("registry.register(")
        .skip(1)
        .map(|call| {
            let name = call.split('"').nth(1).unwrap();
            format!("{prefix}{name}")
        })
        .collect()
}

/// `packaging/grafana/uplink.json` (installed by the server package) is a Grafana dashboard
/// whose every query names only series the hub and connector export (seen in a scrape, or a
/// family they register that has no sample yet), in PromQL that promtool parses.
fn the_dashboard_reads_what_is_exported(scrapes: &[&str]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/grafana/uplink.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let exported = exported_names(scrapes);
    let mut families = registered_families("../hub/src/metrics.rs", "uplink_hub_");
    families.extend(registered_families(
        "../connector/src/runtime/metrics.rs",
        "uplink_connector_",
    ));
    assert!(families.len() >= 20, "{families:?}");
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let named: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("uplink_"))
                .collect();
            assert!(!named.is_empty(), "{title}: {expr} names no Uplink series");
            for name in named {
                let declared = families.iter().any(|family| {
                    ["", "_total", "_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| format!("{family}{suffix}") == name)
                });
                assert!(
                    exported.contains(name) || declared,
                    "{title}: {name} is not exported; exported: {exported:?}, registered: {families:?}"
                );
            }
            expressions.push(expr.to_owned());
        }
    }
    assert!(expressions.len() >= 20, "{} queries", expressions.len());
    // Grafana's own interval variable stands for a range promtool can parse.
    let rules = expressions
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            let expr = expr.replace("$__rate_interval", "5m");
            format!(
                "      - record: uplink:dashboard_{i}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            )
        })
        .collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    let checked = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
