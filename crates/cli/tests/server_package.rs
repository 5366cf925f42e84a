//! The server package `scripts/package --server-only` builds, installed as an operator would:
//! the .deb with dpkg (into a root folder of the test's own, its maintainer script run there,
//! which creates the services' users) and the .rpm with rpm; each holds the `uplink` command,
//! the units, the configuration files (kept across upgrades) and the operations guide, and the
//! installed `uplink --version` runs.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 11] = [
    "/usr/bin/uplink",
    "/usr/lib/systemd/system/uplink-hub.service",
    "/usr/lib/systemd/system/uplink-connector.service",
    "/usr/lib/sysusers.d/uplink.conf",
    "/etc/uplink/hub.toml",
    "/etc/uplink/connector.toml",
    "/etc/default/uplink-hub",
    "/etc/default/uplink-connector",
    "/usr/share/doc/uplink/operations.md",
    "/usr/share/doc/uplink/README.md",
    "/usr/share/uplink/grafana/uplink.json",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed: {text}");
    text
}

/// Builds both packages from this build's `uplink` (stripped, compressed quickly).
fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let binary = dir.join("uplink");
    std::fs::copy(env!("CARGO_BIN_EXE_uplink"), &binary).unwrap();
    run(Command::new("strip").arg(&binary));
    let out = dir.join("out");
    run(Command::new(repo().join("scripts/package"))
        .args(["--server-only", "--binary"])
        .arg(&binary)
        .arg("--out")
        .arg(&out)
        .env("UPLINK_PACKAGE_FAST", "1"));
    let find = |suffix: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in {}", out.display()))
    };
    (find(".deb"), find(".rpm"))
}

fn version_of(installed: &Path) -> String {
    run(Command::new(installed.join("usr/bin/uplink")).arg("--version"))
}

#[test]
fn both_packages_install_the_command_the_units_and_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (deb, rpm) = build(dir.path());
    let version = format!("uplink {}", env!("CARGO_PKG_VERSION"));

    // dpkg, into a root folder of the test's own, maintainer scripts included.
    let root = dir.path().join("deb-root");
    for folder in ["var/lib/dpkg/updates", "var/lib/dpkg/info", "etc"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-not-root",
            "--force-depends",
            "--log=/dev/null",
            "-i",
        ])
        .arg(&deb));
    for file in FILES {
        assert!(root.join(&file[1..]).is_file(), "the .deb lacks {file}");
    }
    assert_eq!(version_of(&root).trim(), version);
    let users = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    for user in ["uplink-hub:", "uplink-connector:"] {
        assert!(
            users.contains(user),
            "postinst did not create {user}: {users}"
        );
    }
    let name = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package"));
    assert_eq!(name.trim(), "uplink");
    let kept = std::fs::read_to_string(root.join("var/lib/dpkg/info/uplink.conffiles")).unwrap();
    for file in FILES.iter().filter(|f| f.starts_with("/etc/")) {
        assert!(
            kept.lines().any(|l| l == *file),
            "{file} is not a conffile: {kept}"
        );
    }
    for unit in ["uplink-hub.service", "uplink-connector.service"] {
        assert_eq!(
            std::fs::read(root.join("usr/lib/systemd/system").join(unit)).unwrap(),
            std::fs::read(repo().join("packaging/systemd").join(unit)).unwrap(),
            "{unit} is installed as written"
        );
    }

    // rpm, into another root (scriptlets need a shell inside it, so they are left out here;
    // the .deb's run above).
    let rpm_root = dir.path().join("rpm-root");
    std::fs::create_dir_all(&rpm_root).unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(&rpm_root)
        .arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(&rpm_root)
        .args(["--nodeps", "--noscripts", "-i"])
        .arg(&rpm));
    let listed = run(Command::new("rpm")
        .arg("--root")
        .arg(&rpm_root)
        .args(["-ql", "uplink"]));
    for file in FILES {
        assert!(
            listed.lines().any(|l| l == file),
            "the .rpm lacks {file}: {listed}"
        );
    }
    let configs = run(Command::new("rpm")
        .arg("--root")
        .arg(&rpm_root)
        .args(["-qc", "uplink"]));
    assert!(configs.contains("/etc/uplink/hub.toml"), "{configs}");
    let scripts = run(Command::new("rpm").arg("-qp").arg("--scripts").arg(&rpm));
    assert!(scripts.contains("systemd-sysusers"), "{scripts}");
    assert_eq!(version_of(&rpm_root).trim(), version);
}
