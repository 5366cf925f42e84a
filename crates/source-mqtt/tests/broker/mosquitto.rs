//! A real mosquitto broker for the tests: started on loopback ports of its own with a
//! configuration written by the test (plain and TLS listeners, anonymous or a password file),
//! restartable on the same ports, killed when dropped.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uplink_tls::LoopbackCa;

/// How the broker is set up.
#[derive(Default)]
pub struct Setup {
    /// `(user, password)` pairs; anonymous clients are refused when any is given.
    pub users: Vec<(&'static str, &'static str)>,
    /// A TLS listener with a leaf certificate signed by a CA of the test's own.
    pub tls: bool,
    /// The TLS listener asks for client certificates signed by another CA of the test's own
    /// (`client.pem` and `client-key.pem` in the broker's folder).
    pub client_certificates: bool,
    /// Persistent sessions queue without limit, QoS 0 messages included (for the bench).
    pub bench_queues: bool,
    /// Sessions, subscriptions and queued messages saved to disk at a clean shutdown
    /// ([`Mosquitto::shut_down`]) and read back at the next start.
    pub persistence: bool,
}

pub struct Mosquitto {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub tls_port: u16,
}

fn binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    if let Ok(output) = Command::new("which").arg("mosquitto").output()
        && output.status.success()
    {
        return String::from_utf8_lossy(&output.stdout).trim().into();
    }
    panic!(
        "mosquitto is not installed, and the MQTT source's tests need a real broker: \
         install it with `sudo apt-get install mosquitto` (./scripts/test installs it through \
         scripts/lib/setup.sh)"
    );
}

/// A client CA (`client-ca.pem`) and a client certificate it signed (`client.pem`,
/// `client-key.pem`).
fn client_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "test client CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "connector");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("client-ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("client-key.pem"), key.serialize_pem()).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("a free loopback port")
        .local_addr()
        .unwrap()
        .port()
}

impl Mosquitto {
    pub fn start(setup: Setup) -> Self {
        let binary = binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let tls_port = free_port();
        let mut config = format!(
            "user root\nper_listener_settings false\npersistence {}\nlog_dest file {log}\n\
             log_type error\nlog_type warning\nlog_type notice\nallow_anonymous {}\nlistener {port} 127.0.0.1\n",
            setup.persistence,
            setup.users.is_empty(),
            log = dir.path().join("mosquitto.log").display(),
        );
        if setup.persistence {
            config.push_str(&format!("persistence_location {}/\n", dir.path().display()));
        }
        if setup.bench_queues {
            config.push_str("max_queued_messages 0\nmax_queued_bytes 0\nqueue_qos0_messages true\nmax_inflight_messages 0\n");
        }
        if !setup.users.is_empty() {
            let file = dir.path().join("passwords");
            std::fs::write(&file, "").unwrap();
            for (user, password) in &setup.users {
                let status = Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&file)
                    .arg(user)
                    .arg(password)
                    .status()
                    .expect("mosquitto_passwd (from the mosquitto package) runs");
                assert!(status.success(), "mosquitto_passwd failed");
            }
            config.push_str(&format!("password_file {}\n", file.display()));
        }
        if setup.tls {
            let ca = LoopbackCa::generate(&["localhost", "127.0.0.1"]).unwrap();
            ca.write_to_dir(dir.path()).unwrap();
            config.push_str(&format!(
                "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            ));
            if setup.client_certificates {
                client_certificates(dir.path());
                config.push_str(&format!(
                    "require_certificate true\ncafile {}\n",
                    dir.path().join("client-ca.pem").display()
                ));
            }
        }
        let config_path = dir.path().join("mosquitto.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut broker = Self {
            dir,
            config: config_path,
            child: None,
            port,
            tls_port,
        };
        broker.spawn(&binary);
        broker
    }

    fn spawn(&mut self, binary: &Path) {
        let child = Command::new(binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.path().join("mosquitto.log"))
                    .unwrap_or_default();
                panic!("mosquitto exited at start ({status}); its log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {} in time",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker cleanly (SIGTERM), as a service manager does: with persistence, it
    /// saves its sessions first.
    pub fn shut_down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .expect("kill runs");
            assert!(status.success(), "SIGTERM to mosquitto");
            let _ = child.wait();
        }
    }

    /// Starts it again after [`Mosquitto::shut_down`] or [`Mosquitto::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is stopped first");
        self.spawn(&binary());
    }

    /// Starts it again on the same ports with the same configuration.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&binary());
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn tls_url(&self) -> String {
        format!("mqtts://localhost:{}", self.tls_port)
    }

    /// What the broker logged (errors, warnings, notices such as each client's connect).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// A file in the broker's folder.
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The CA certificate file clients should trust.
    pub fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
