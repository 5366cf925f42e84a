//! Admin commands run in their own process beside a running `uplink hub serve` take effect on
//! it at once: the hub follows its store's change feed. A real hub process, a real connector
//! process linked with its administrator-given credential, and an app holding a real token.

mod common;
#[path = "../src/demo/consent.rs"]
#[allow(dead_code)]
mod consent;

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    add_connector, add_user, connector_status, field, free_port, hub_ca, register_connector,
    run_ok, serve_hub, start_connector, text, uplink, wait_until,
};

const PASSWORD: &str = "correct horse battery staple";
const APP: &str = "live-admin-app";
const REDIRECT: &str = "http://127.0.0.1/callback";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_remove_and_passwd_from_another_process_reach_the_running_hub() {
    uplink_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());

    add_user(hub, "ada", PASSWORD);
    let (connector_id, credential) = add_connector(hub, "ada", "Plant A");
    let app = run_ok(&[
        "hub",
        "app",
        "add",
        "--data-dir",
        hub,
        "--name",
        "Live admin app",
        "--client-id",
        APP,
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "data.read",
    ]);
    let client_secret = field(&app, "client_secret:");

    let listen = format!("127.0.0.1:{}", free_port());
    let issuer = format!("https://{listen}");
    let _hub = serve_hub(hub, &listen);
    register_connector(
        data,
        &issuer,
        &connector_id,
        &credential,
        &dir.path().join("credential"),
        &hub_ca(hub),
    );
    let _connector = start_connector(data);
    wait_until("the connector linked", Duration::from_secs(60), || {
        connector_status(data)["link"] == "connected"
    });
    let source_id = connector_status(data)["sources"][0]["hubId"]
        .as_str()
        .expect("the hub knows the source")
        .to_owned();

    let ca_pem = std::fs::read_to_string(hub_ca(hub)).unwrap();
    let client = uplink_testkit::client_builder(&ca_pem)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tokens = consent::ConsentFlow {
        client: &client,
        issuer: &issuer,
        username: "ada",
        password: PASSWORD,
        client_id: APP,
        client_secret: &client_secret,
        redirect_uri: REDIRECT,
        scope: "data.read",
        source_ids: std::slice::from_ref(&source_id),
    }
    .run()
    .await
    .unwrap();
    let url = format!(
        "{issuer}/api/v1/sources/{source_id}/raw?tag=sim.ramp.1&start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z"
    );
    let query = || client.get(&url).bearer_auth(&tokens.access_token).send();
    assert_eq!(query().await.unwrap().status(), 200);

    // The administrator removes the connector from another process: the running hub closes
    // its link at once, and the app's next query is refused.
    run_ok(&[
        "hub",
        "connector",
        "remove",
        "--data-dir",
        hub,
        &connector_id,
    ]);
    let removed = Instant::now();
    let took = wait_until("the link closed", Duration::from_secs(20), || {
        connector_status(data)["link"] != "connected"
    });
    eprintln!(
        "connector remove from another process: link closed within {took:?} (status polled by process)"
    );
    let refused = query().await.unwrap().status();
    assert!(
        refused == 403 || refused == 404,
        "the app's next query is refused: {refused}"
    );
    assert!(removed.elapsed() < Duration::from_secs(20));
    // It stays off: the connector's credential no longer opens a link.
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(connector_status(data)["link"], "connected");

    // A new password set from another process revokes the app's sign-in: its refresh token is
    // refused by the running hub.
    let mut passwd = uplink()
        .args(["hub", "user", "passwd", "--data-dir", hub, "ada"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(passwd.stdin.take().unwrap(), "a brand new password").unwrap();
    let out = passwd.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refresh = client
        .post(format!("{issuer}/oauth/token"))
        .basic_auth(APP, Some(&client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400, "the sign-in ended with the password");
    // The connector is gone from the store the hub and the commands share.
    let again = uplink()
        .args(["hub", "connector", "list", "--data-dir", hub])
        .output()
        .unwrap();
    assert!(!text(&again.stdout).contains(&connector_id));
}
