//! The hub's files are the owner's alone: a local user who could read `hub.db` once read the
//! token key in it and minted tokens the hub accepted. Now the folder is 0700, the files 0600,
//! a looser one stops the hub from starting, and the key lives in its own file.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use uplink_hub::data_dir::{KEY_FILE, KeyFile, STORE_FILE};
use uplink_hub::store::{SqliteStore, prelude::*};
use uplink_hub::token::{Keyring, TokenSubject};
use uplink_hub::{Hub, HubConfig};

const ISSUER: &str = "https://hub.test";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fresh folder for a hub, 0700 (`tempdir` makes it as the umask says, often 0755).
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o700);
    dir
}

async fn open(dir: &Path) -> uplink_hub::Result<Hub> {
    Hub::open(dir, HubConfig::new(ISSUER)).await
}

/// Whether `needle` occurs in any of the store's files.
fn store_files_contain(dir: &Path, needle: &[u8]) -> bool {
    ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
        std::fs::read(dir.join(format!("{STORE_FILE}{suffix}")))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

fn subject() -> TokenSubject {
    TokenSubject {
        user_id: "usr_1".into(),
        app_id: "app".into(),
        scopes: vec!["data.read".into()],
        family_id: "fam_1".into(),
    }
}

#[tokio::test]
async fn the_data_folder_and_every_hub_file_are_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("hub-data");
    let hub = open(&dir).await.unwrap();
    hub.add_user("ada", "correct horse battery staple".into())
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    for name in [STORE_FILE, "hub.db-wal", "hub.db-shm", KEY_FILE] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn a_store_or_folder_others_can_read_stops_the_hub_from_starting() {
    let dir = private_dir();
    drop(open(dir.path()).await.unwrap());
    chmod(&dir.path().join(STORE_FILE), 0o644);
    let err = open(dir.path()).await.unwrap_err();
    assert_eq!(err.code(), "insecure_permissions");
    let message = err.to_string();
    assert!(message.contains("hub.db has mode 644"), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
    chmod(&dir.path().join(STORE_FILE), 0o600);
    chmod(dir.path(), 0o755);
    let err = open(dir.path()).await.unwrap_err();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    chmod(dir.path(), 0o700);
    open(dir.path())
        .await
        .expect("private again: the hub starts");
}

#[tokio::test]
async fn a_key_file_others_can_read_stops_the_hub_from_starting() {
    let dir = private_dir();
    drop(open(dir.path()).await.unwrap());
    chmod(&dir.path().join(KEY_FILE), 0o640);
    let err = open(dir.path()).await.unwrap_err();
    assert_eq!(err.code(), "insecure_permissions");
    assert!(err.to_string().contains(KEY_FILE), "{err}");
}

#[tokio::test]
async fn the_token_key_is_never_readable_from_hub_db() {
    let dir = private_dir();
    let hub = open(dir.path()).await.unwrap();
    let token = hub.keys.issue(&subject(), 600).unwrap();
    let keys = KeyFile::new(dir.path().join(KEY_FILE)).load().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(hub.keys.verify(token.expose()).is_ok());
    assert!(!store_files_contain(dir.path(), &keys[0].key_bytes));
    assert!(hub.store.token_keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn keys_an_older_hub_kept_in_hub_db_move_out_and_its_tokens_stay_valid() {
    let dir = private_dir();
    uplink_hub::data_dir::prepare(dir.path()).unwrap();
    // A store as older hubs left it: the key in hub.db, and a token made with it.
    let key_bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let legacy = Keyring::key_record(&key_bytes, 1).unwrap();
    let store = SqliteStore::open(&dir.path().join(STORE_FILE))
        .await
        .unwrap();
    store.add_token_key(&legacy).await.unwrap();
    store.close().await;
    assert!(
        store_files_contain(dir.path(), &key_bytes),
        "the old layout"
    );
    let old_token = Keyring::from_records(
        std::slice::from_ref(&legacy),
        ISSUER,
        &format!("{ISSUER}/api"),
    )
    .unwrap()
    .issue(&subject(), 600)
    .unwrap();

    let hub = open(dir.path()).await.unwrap();
    assert!(
        hub.keys.verify(old_token.expose()).is_ok(),
        "a token made before the move is still accepted"
    );
    assert!(
        !store_files_contain(dir.path(), &key_bytes),
        "no trace of the key in hub.db or its WAL"
    );
    assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
    drop(hub);
    let again = open(dir.path()).await.unwrap();
    assert!(
        again.keys.verify(old_token.expose()).is_ok(),
        "kept in the key file"
    );
}
