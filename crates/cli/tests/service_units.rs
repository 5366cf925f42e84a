//! The systemd units the server package installs (`packaging/systemd/`): systemd itself checks
//! them (`systemd-analyze verify`), their hardening scores "OK" or better offline
//! (`systemd-analyze security --offline=true`, exposure ≤ 4.9), and the command line they
//! start is one this `uplink` accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 2] = ["uplink-hub.service", "uplink-connector.service"];

fn packaged(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(folder)
}

fn unit_file(name: &str) -> PathBuf {
    packaged("systemd").join(name)
}

/// The unit with `/usr/bin/uplink` replaced by the binary under test, written into `dir`:
/// `verify` insists the program exists.
fn unit_for_this_build(name: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(unit_file(name)).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        text.replace("/usr/bin/uplink", env!("CARGO_BIN_EXE_uplink"))
            .replace(
                "/etc/uplink/",
                &format!("{}/", packaged("config").display()),
            ),
    )
    .unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let output = Command::new("systemd-analyze").args(args).output().expect(
        "systemd-analyze is needed (Debian package systemd; scripts/lib/setup.sh installs it)",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn systemd_accepts_both_units() {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        let unit = unit_for_this_build(name, dir.path());
        let (ok, said) = systemd_analyze(&["verify", unit.to_str().unwrap()]);
        assert!(ok && said.trim().is_empty(), "{name}: {said}");
    }
}

#[test]
fn both_units_are_hardened_to_an_exposure_of_at_most_4_9() {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        let unit = unit_for_this_build(name, dir.path());
        let (_, said) = systemd_analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
        let exposure: f64 = said
            .lines()
            .find_map(|line| {
                line.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")
            })
            .and_then(|(_, score)| score.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no exposure level in {said}"));
        assert!(exposure <= 4.9, "{name} scores {exposure}: {said}");
    }
}

#[test]
fn the_units_start_a_command_line_this_uplink_accepts() {
    let state = tempfile::tempdir().unwrap();
    for name in UNITS {
        let text = std::fs::read_to_string(unit_file(name)).unwrap();
        let exec = text
            .lines()
            .find_map(|line| line.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{name} has no ExecStart"));
        let mut words = exec.split_whitespace();
        assert_eq!(words.next(), Some("/usr/bin/uplink"), "{name}");
        // The data folder is the unit's state folder; the settings file's extra arguments
        // (`$UPLINK_…_ARGS`) are empty by default.
        let state_dir = format!("/var/lib/{}", name.trim_end_matches(".service"));
        assert!(
            text.contains(&format!("StateDirectory={}", &state_dir[9..])),
            "{name}"
        );
        let args: Vec<String> = words
            .filter(|word| !word.starts_with("$UPLINK_"))
            .map(|word| {
                word.replace(&state_dir, state.path().to_str().unwrap())
                    .replace("/etc/uplink", packaged("config").to_str().unwrap())
            })
            .collect();
        assert!(text.contains("Type=notify"), "{name} waits for READY=1");
        let output = Command::new(env!("CARGO_BIN_EXE_uplink"))
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: uplink {args:?} is refused: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
