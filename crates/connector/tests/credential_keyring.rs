//! Where the connector's secret lives, against the real thing on each side: a real Secret Service
//! (GNOME Keyring on a private session bus) for the keyring, and a process with no session bus at
//! all for the owner-only file.
//!
//! The keyring test needs a session bus with an unlocked keyring: it re-runs itself inside
//! `dbus-run-session` with `gnome-keyring-daemon` started on private folders (Debian packages
//! `dbus-daemon` and `gnome-keyring`) and `UPLINK_TEST_KEYRING=1`; a keyring that does not answer
//! there fails the test, and so does a missing daemon. The file test re-runs itself in a child
//! process whose environment has no session bus.

use std::path::Path;
use std::process::Command;

use uplink_connector::credentials::keyring_store::{self, Found, KeyringEntry};
use uplink_connector::credentials::{
    CredentialStore, LinkCredentials, LinkSecret, SecretHome, generate_connector_id,
};

/// Set by `scripts/test` when a Secret Service is there to be used.
const KEYRING_EXPECTED: &str = "UPLINK_TEST_KEYRING";
/// Set in the child process of the file test.
const NO_BUS_CHILD: &str = "UPLINK_TEST_NO_BUS_CHILD";

fn credentials(secret: LinkSecret) -> LinkCredentials {
    LinkCredentials {
        hub_url: "https://hub.example".into(),
        connector_id: generate_connector_id(),
        ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        secret,
    }
}

fn refresh_token(value: &str) -> LinkSecret {
    LinkSecret::RefreshToken {
        refresh_token: value.into(),
    }
}

fn file_bytes(store: &CredentialStore) -> String {
    std::fs::read_to_string(store.path()).unwrap()
}

#[cfg(unix)]
fn assert_owner_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
}

#[cfg(not(unix))]
fn assert_owner_only(_: &Path) {}

/// Runs `test` of this binary again inside a private session bus with an unlocked GNOME
/// Keyring, and fails unless it passed there.
fn rerun_inside_a_keyring_session(test: &str) {
    let home = tempfile::tempdir().unwrap();
    let (data, run) = (home.path().join("data"), home.path().join("run"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let script = r#"eval "$(printf %s pass | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null && exec "$0" "$1" --exact --nocapture --test-threads=1"#;
    let output = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(std::env::current_exe().unwrap())
        .arg(test)
        .env("XDG_DATA_HOME", &data)
        .env("XDG_RUNTIME_DIR", &run)
        .env(KEYRING_EXPECTED, "1")
        .output()
        .expect("dbus-run-session runs (Debian package dbus-daemon; gnome-keyring for the daemon)");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("1 passed"),
        "the keyring test failed inside its session:\n{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn with_a_keyring_the_secret_lives_there_and_the_file_keeps_only_a_marker() {
    if std::env::var_os(KEYRING_EXPECTED).is_none() {
        rerun_inside_a_keyring_session(
            "with_a_keyring_the_secret_lives_there_and_the_file_keeps_only_a_marker",
        );
        return;
    }
    if let Err(why) = keyring_store::probe() {
        panic!("a keyring was expected but is not reachable: {why}");
    }

    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path());
    let entry = KeyringEntry::for_data_dir(dir.path());
    let first = credentials(refresh_token("rt-first-0123456789"));

    // Saved from async code, as the link does at each rotation.
    store.save_async(&first).await.unwrap();
    assert_eq!(store.secret_home().unwrap(), SecretHome::Keyring);
    let on_disk = file_bytes(&store);
    assert!(!on_disk.contains("rt-first"), "{on_disk}");
    assert!(on_disk.contains(&first.connector_id), "{on_disk}");
    assert!(on_disk.contains("\"kind\": \"keyring\""), "{on_disk}");
    assert_owner_only(store.path());
    assert_eq!(
        entry.get().unwrap(),
        Found::Secret("rt-first-0123456789".into())
    );
    assert_eq!(store.load().unwrap().unwrap(), first);

    // Rotation overwrites the one entry.
    let rotated = LinkCredentials {
        secret: refresh_token("rt-second-9876543210"),
        ..first.clone()
    };
    store.save(&rotated).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), rotated);
    assert_eq!(
        entry.get().unwrap(),
        Found::Secret("rt-second-9876543210".into())
    );
    let on_disk = file_bytes(&store);
    assert!(!on_disk.contains("rt-first") && !on_disk.contains("rt-second"));

    // A second connector on the same machine keeps its own secret.
    let other_dir = tempfile::tempdir().unwrap();
    let other = CredentialStore::new(other_dir.path());
    let issued = credentials(LinkSecret::ClientCredential {
        credential: "issued-credential-abcdef".into(),
    });
    other.save(&issued).unwrap();
    assert_eq!(other.load().unwrap().unwrap(), issued);
    assert_eq!(store.load().unwrap().unwrap(), rotated);

    // A file from before the keyring moves its secret into the keyring at the next save.
    let legacy_dir = tempfile::tempdir().unwrap();
    let legacy = CredentialStore::new(legacy_dir.path());
    let old = credentials(refresh_token("rt-legacy-old"));
    std::fs::write(legacy.path(), serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(legacy.secret_home().unwrap(), SecretHome::File);
    assert_eq!(legacy.load().unwrap().unwrap(), old);
    let new = LinkCredentials {
        secret: refresh_token("rt-legacy-new"),
        ..old.clone()
    };
    legacy.save(&new).unwrap();
    assert_eq!(legacy.secret_home().unwrap(), SecretHome::Keyring);
    assert!(!file_bytes(&legacy).contains("rt-legacy"));
    assert_owner_only(legacy.path());
    assert_eq!(legacy.load().unwrap().unwrap(), new);

    // An entry gone from the keyring is an error that says so, never an empty secret.
    assert!(entry.delete().unwrap());
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("holds no secret"), "{err}");
    assert!(!err.contains("rt-"), "{err}");
    store.save(&rotated).unwrap();

    // Debug output never shows a secret.
    let shown = format!("{store:?} {rotated:?} {:?}", entry.get());
    assert!(!shown.contains("rt-second"), "{shown}");

    // Sign out clears both homes.
    for (store, dir) in [
        (&store, dir.path()),
        (&other, other_dir.path()),
        (&legacy, legacy_dir.path()),
    ] {
        store.remove().unwrap();
        assert!(store.load().unwrap().is_none());
        assert!(!store.path().exists());
        assert_eq!(
            KeyringEntry::for_data_dir(dir).get().unwrap(),
            Found::Nothing
        );
    }
}

#[test]
fn without_a_session_bus_the_secret_stays_in_the_owner_only_file() {
    if std::env::var_os(NO_BUS_CHILD).is_none() {
        // Re-run this very test in a process that has no session bus to find.
        let no_runtime_dir = tempfile::tempdir().unwrap();
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "without_a_session_bus_the_secret_stays_in_the_owner_only_file",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", no_runtime_dir.path())
            .env(NO_BUS_CHILD, "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{said}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(said.contains("1 passed"), "{said}");
        return;
    }

    let why = keyring_store::probe().expect_err("no session bus in this process");
    assert!(why.to_string().contains("D-Bus"), "{why}");

    let dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(dir.path());
    let first = credentials(refresh_token("rt-file-first"));
    store.save(&first).unwrap();
    assert_eq!(store.secret_home().unwrap(), SecretHome::File);
    assert_owner_only(store.path());
    assert!(file_bytes(&store).contains("rt-file-first"));
    assert_eq!(store.load().unwrap().unwrap(), first);

    let rotated = LinkCredentials {
        secret: refresh_token("rt-file-second"),
        ..first.clone()
    };
    store.save(&rotated).unwrap();
    assert_owner_only(store.path());
    assert_eq!(store.load().unwrap().unwrap(), rotated);
    assert!(!file_bytes(&store).contains("rt-file-first"));

    // A file that points at a keyring this process cannot reach: a plain error, no secret.
    let marked_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        marked_dir.path().join("credentials.json"),
        br#"{"hubUrl":"https://hub.example","connectorId":"con_x","secret":{"kind":"keyring","holds":"refreshToken"}}"#,
    )
    .unwrap();
    let err = CredentialStore::new(marked_dir.path())
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not reachable"), "{err}");
    assert!(err.contains("no D-Bus session bus"), "{err}");
    assert!(err.contains("sign in again"), "{err}");

    store.remove().unwrap();
    assert!(store.load().unwrap().is_none());
    assert!(!store.path().exists());
}
