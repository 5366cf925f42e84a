//! A PostgreSQL server of the test run's own, for the hub's PostgreSQL store: the Debian server
//! binaries run as the `postgres` user (they refuse root) on a loopback port, with password
//! authentication and fsync off, in a folder of their own. Missing binaries fail loudly.
//!
//! The server runs under a small shell that stops it (fast shutdown) and removes its folder as
//! soon as its standard input closes, which happens when the [`PgServer`] is dropped or the
//! test process ends in any way — so a server shared by a whole test binary ([`shared`]) never
//! outlives it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The password of the server's superuser role, `uplink`.
pub const PASSWORD: &str = "hub-pg-s3cret";

/// One running server; dropping it stops it.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Closing it stops the server.
    stdin: Mutex<Option<ChildStdin>>,
    shell: Mutex<Child>,
}

static SHARED: OnceLock<PgServer> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);
static FOLDERS: AtomicU32 = AtomicU32::new(0);

/// The server this test binary shares (started on first use; each test takes a fresh
/// database with [`PgServer::fresh_database`]).
pub fn shared() -> &'static PgServer {
    SHARED.get_or_init(PgServer::start)
}

impl PgServer {
    /// Starts a server of its own.
    ///
    /// # Panics
    /// The PostgreSQL server binaries are missing (`scripts/lib/setup.sh` installs the
    /// `postgresql` package), or the server does not start.
    pub fn start() -> Self {
        let bin = server_binaries();
        let dir = std::env::temp_dir().join(format!(
            "uplink-pg-{}-{}",
            std::process::id(),
            FOLDERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the server's folder");
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir));
        }
        run(as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["--auth=scram-sha-256", "-U", "uplink", "--no-sync"])
            .arg(format!("--pwfile={}", dir.join("pw").display())));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = "\"$0\" -D \"$1/data\" -c listen_addresses=127.0.0.1 -p \"$2\" -k \"$1\" \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 \
             >\"$1/log\" 2>&1 & pid=$!; read _; kill -INT $pid; wait $pid; rm -rf \"$1\"";
        let mut shell = as_postgres(Path::new("sh"))
            .arg("-c")
            .arg(script)
            .arg(bin.join("postgres"))
            .arg(&dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .spawn()
            .expect("the server's shell starts");
        let stdin = shell.stdin.take();
        let server = Self {
            bin,
            dir,
            port,
            stdin: Mutex::new(stdin),
            shell: Mutex::new(shell),
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let started = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            let exited = self.shell.lock().unwrap().try_wait().ok().flatten();
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(60),
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` for the `uplink` role, password included.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://uplink:{PASSWORD}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Creates an empty database of a new name and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "hub_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "uplink", "-p"])
            .arg(self.port.to_string())
            .arg(&name)
            .env("PGPASSWORD", PASSWORD));
        self.url(&name)
    }

    /// Runs one SQL command on `database` as the superuser (for set-up a test needs: a role
    /// with fewer rights, a database dropped under a running hub).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
            ])
            .args(["uplink", "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.lock().unwrap().take() {
            let _ = stdin.flush();
        }
        let _ = self.shell.lock().unwrap().wait();
    }
}

/// The newest installed server's binaries.
fn server_binaries() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                .filter(|b| b.join("initdb").exists() && b.join("postgres").exists())
                .max()
        })
        .expect(
            "PostgreSQL server binaries are missing: run scripts/lib/setup.sh (postgresql package)",
        )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program` run as the `postgres` user when this process is root (the server refuses root),
/// as this user otherwise.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
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
