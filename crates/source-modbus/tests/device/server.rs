//! The real Modbus device of these tests: tests/fixtures/modbus_server.py on pymodbus 3.16.1,
//! started on loopback by each test and killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running fixture server.
pub struct Device {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

const HOW_TO_INSTALL: &str = "the Modbus tests need pymodbus 3.16.1 in a Python venv: run \
    `source scripts/lib/setup.sh && ensure_pymodbus` (./scripts/test does it), which installs it \
    and exports UPLINK_PYMODBUS_PYTHON; or set UPLINK_PYMODBUS_PYTHON to a python that has \
    pymodbus==3.16.1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The python with pymodbus: `UPLINK_PYMODBUS_PYTHON`, else the venv setup.sh makes.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("UPLINK_PYMODBUS_PYTHON") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("neither XDG_CACHE_HOME nor HOME is set");
    cache.join("uplink/pymodbus-3.16.1/bin/python")
}

impl Device {
    /// Starts the fixture on any free port (`0`) or on `port`, and waits until it listens.
    pub fn start(port: u16) -> Self {
        let python = python();
        assert!(
            python.is_file(),
            "{} not found: {HOW_TO_INSTALL}",
            python.display()
        );
        let mut child = Command::new(&python)
            .arg(repo().join("tests/fixtures/modbus_server.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot run {}: {err}; {HOW_TO_INSTALL}", python.display())
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(port) = line.strip_prefix("PORT ") {
                        break port.trim().parse().expect("a port number");
                    }
                }
                _ => {
                    let status = child.wait().ok();
                    panic!(
                        "the Modbus fixture server exited before listening ({status:?}); is pymodbus 3.16.1 installed for {}? {HOW_TO_INSTALL}",
                        python.display()
                    );
                }
            }
        };
        Self { child, port }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .arg(which)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {which} failed");
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // A frozen process dies of SIGKILL too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
