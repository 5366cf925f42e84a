//! A PostgreSQL server of a test's (or bench's) own: the Debian server binaries run as the
//! `postgres` user on a loopback port, a socket folder and data folder in a temporary directory,
//! password authentication, fsync off. Missing binaries fail loudly.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use sqlx::Connection;
use uplink_source::SourceConfig;

pub const PASSWORD: &str = "s3cret-pg-pass";

pub struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that also accepts TLS, with `ca`'s leaf certificate (for 127.0.0.1 and
    /// localhost).
    pub fn start_tls(ca: &uplink_tls::LoopbackCa) -> Self {
        Self::start_with(Some(ca))
    }

    fn start_with(tls: Option<&uplink_tls::LoopbackCa>) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            })
            .expect("PostgreSQL server binaries are missing: run scripts/lib/setup.sh (postgresql package)");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        let mut ssl = String::new();
        if let Some(ca) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::write(&cert, ca.cert_chain_pem()).unwrap();
            std::fs::write(&key, ca.key_pem()).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            ssl = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            );
        }
        run(Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path()));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["--auth=scram-sha-256", "-U", "uplink", "--no-sync"])
            .arg(format!("--pwfile={}", dir.path().join("pw").display())));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off{ssl}",
                dir.path().display()
            ))
            .arg("start"));
        Self { bin, dir, port }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://uplink:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    pub async fn admin(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url())
            .await
            .expect("admin connection")
    }

    pub fn config(&self, settings: serde_json::Value) -> SourceConfig {
        let mut all = json!({
            "host": "127.0.0.1", "port": self.port, "user": "uplink", "password": PASSWORD,
            "database": "postgres", "tls": "disable",
        });
        for (k, v) in settings.as_object().unwrap() {
            all[k] = v.clone();
        }
        SourceConfig {
            name: "pg".into(),
            kind: "postgres".into(),
            description: String::new(),
            settings: all.as_object().cloned().unwrap(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
