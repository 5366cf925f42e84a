//! `uplink hub serve --database postgres://…`: the hub keeps its state in PostgreSQL (a server
//! of the test's own on loopback), every admin verb takes the same flag, and a second hub
//! process on the same database and key files serves the same sign-ins — the store half of a
//! cluster. A real hub process, a real connector process, an app walking the real OAuth2 flow,
//! and a relayed query.

mod common;
#[path = "../src/demo/consent.rs"]
#[allow(dead_code)]
mod consent;

use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{
    Running, connector_status, field, free_port, hub_ca, register_connector, start_connector, text,
    uplink, wait_until,
};

const PASSWORD: &str = "correct horse battery staple";
const APP: &str = "pg-app";
const REDIRECT: &str = "http://127.0.0.1/callback";

/// `uplink hub ARGS… --data-dir DIR --database URL`, which must succeed.
fn admin(dir: &str, database: &str, args: &[&str]) -> Output {
    let output = uplink()
        .args(["hub"])
        .args(args)
        .args(["--data-dir", dir, "--database", database])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "uplink hub {args:?}: {}",
        text(&output.stderr)
    );
    output
}

/// `uplink hub serve` on the database, its standard error kept in `log`.
fn serve(dir: &str, database: &str, listen: &str, log: &Path) -> Running {
    let running = Running(
        uplink()
            .args(["hub", "serve", "--data-dir", dir, "--listen", listen])
            .args(["--database", database])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    let ca = hub_ca(dir);
    wait_until("the hub serving", Duration::from_secs(60), || {
        ca.exists() && std::net::TcpStream::connect(listen).is_ok()
    });
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_postgres_serves_the_oauth_flow_and_a_relayed_query() {
    uplink_tls::install_crypto_provider();
    let server = uplink_testkit::postgres::shared();
    let database = server.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());

    let mut add_user = uplink()
        .args([
            "hub",
            "user",
            "add",
            "--data-dir",
            hub,
            "--database",
            &database,
        ])
        .arg("ada")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add_user.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add_user.wait().unwrap().success());
    let added = admin(
        hub,
        &database,
        &["connector", "add", "--owner", "ada", "--name", "Plant A"],
    );
    let (connector_id, credential) = (field(&added, "connector_id:"), field(&added, "credential:"));
    let app = admin(
        hub,
        &database,
        &[
            "app",
            "add",
            "--name",
            "Postgres app",
            "--client-id",
            APP,
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "data.read",
        ],
    );
    let client_secret = field(&app, "client_secret:");
    assert!(
        !hub_dir.join("hub.db").exists(),
        "no SQLite store beside a PostgreSQL one"
    );
    let database_name = database
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap();
    assert_eq!(
        server.psql(database_name, "SELECT username FROM users"),
        "ada",
        "the user is in PostgreSQL"
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let issuer = format!("https://{listen}");
    let log = dir.path().join("hub.log");
    let _hub = serve(hub, &database, &listen, &log);
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
    let answer = client
        .get(&url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(body.contains("sim.ramp.1"), "a relayed answer: {body}");
    assert_eq!(
        server.psql(
            database_name,
            "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL"
        ),
        "1",
        "the consent is in PostgreSQL"
    );

    // A second hub process on the same database and the same key files: it honours the
    // sign-in the first one issued, and a refresh token is spent once across both.
    let second_dir = dir.path().join("hub2");
    std::fs::create_dir(&second_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&second_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for file in ["token-keys.json", "id-token-keys.json"] {
        std::fs::copy(hub_dir.join(file), second_dir.join(file)).unwrap();
    }
    let second_listen = format!("127.0.0.1:{}", free_port());
    let second_log = dir.path().join("hub2.log");
    let _second = serve(
        second_dir.to_str().unwrap(),
        &database,
        &second_listen,
        &second_log,
    );
    let second_ca = std::fs::read_to_string(hub_ca(second_dir.to_str().unwrap())).unwrap();
    let second_client = uplink_testkit::client_builder(&second_ca)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let refresh = |client: &reqwest::Client, origin: &str, token: &str| {
        client
            .post(format!("https://{origin}/oauth/token"))
            .basic_auth(APP, Some(&client_secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
    };
    let first_refresh = tokens.refresh_token.clone().unwrap();
    let rotated = refresh(&second_client, &second_listen, &first_refresh)
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200, "the other process rotates the token");
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    let new_access = rotated["access_token"].as_str().unwrap().to_owned();
    let reused = refresh(&client, &listen, &first_refresh).await.unwrap();
    assert_eq!(
        reused.status(),
        400,
        "a spent refresh token is spent everywhere"
    );
    // The reuse revoked the sign-in; the first process refuses the second's token at once.
    let refused = client
        .get(&url)
        .bearer_auth(&new_access)
        .send()
        .await
        .unwrap()
        .status();
    assert!(
        refused == 401 || refused == 403,
        "a revoked sign-in is refused on every process: {refused}"
    );

    let log_files: Vec<_> = [&hub_dir, &second_dir]
        .iter()
        .flat_map(|d| std::fs::read_dir(d.join("logs")).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        log_files.len(),
        2,
        "each process keeps its log: {log_files:?}"
    );
    for log in [&log, &second_log].into_iter().chain(&log_files) {
        let logged = std::fs::read_to_string(log).unwrap();
        assert!(
            !logged.contains(uplink_testkit::postgres::PASSWORD),
            "the database password never reaches the log"
        );
    }
}

#[test]
fn a_database_the_hub_cannot_reach_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let port = free_port();
    let output = uplink()
        .args(["hub", "user", "list", "--data-dir", hub.to_str().unwrap()])
        .arg("--database")
        .arg(format!(
            "postgres://uplink:Sw0rdf1sh-xyz@127.0.0.1:{port}/uplink?sslmode=disable&connect_timeout=5"
        ))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("Sw0rdf1sh-xyz"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}/uplink")),
        "{stderr}"
    );
    let bad = uplink()
        .args(["hub", "user", "list", "--data-dir", hub.to_str().unwrap()])
        .args(["--database", "mysql://root:Sw0rdf1sh-xyz@db/uplink"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = text(&bad.stderr);
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("Sw0rdf1sh-xyz"), "{stderr}");
    // The same key in a configuration file: named by its line, the password still unsaid.
    let file = dir.path().join("hub.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:8443\"\ndatabase = \"mysql://root:Sw0rdf1sh-xyz@db/uplink\"\n",
    )
    .unwrap();
    let checked = uplink()
        .args(["hub", "config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!checked.status.success());
    let said = text(&checked.stderr);
    assert!(said.contains("line 2: database:"), "{said}");
    assert!(!said.contains("Sw0rdf1sh-xyz"), "{said}");
    std::fs::write(
        &file,
        "database = \"postgres://hub:Sw0rdf1sh-xyz@db.internal/uplink\"\n",
    )
    .unwrap();
    let good = uplink()
        .args(["hub", "config", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(good.status.success(), "{}", text(&good.stderr));
}
