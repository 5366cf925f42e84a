//! The OS keyring as a home for the connector's one secret: the Secret Service (GNOME Keyring,
//! KWallet) over D-Bus on Linux and the BSDs.
//!
//! Each call first probes: is a session bus there, does a Secret Service answer on it, and is its
//! default collection unlocked? Only then is a secret written or read. A locked keyring is reported
//! as unreachable rather than unlocked, so no unlock prompt ever appears from a background token
//! rotation. Every D-Bus exchange runs on its own thread, one at a time, and is given up after
//! [`DEADLINE`]: a hung keyring daemon costs a caller a few seconds, never a stuck link, and a late
//! write can never overtake a newer one (the next call waits for the late one's lock or gives up).
//!
//! Errors name what failed; they never carry the secret (the keyring's own errors are reduced to
//! their kind before they leave this module).

use std::path::Path;
use std::time::Duration;

/// The service name the connector's secret is filed under in the keyring.
pub const SERVICE: &str = "Uplink connector";

/// How long one keyring exchange may take before the caller gives up on it.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Why the keyring cannot be used right now, in words for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a keyring read found.
#[derive(PartialEq, Eq)]
pub enum Found {
    /// The secret.
    Secret(String),
    /// The keyring answered and holds nothing for this connector.
    Nothing,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Found::Secret(_) => "Secret(<redacted>)",
            Found::Nothing => "Nothing",
        })
    }
}

/// The keyring entry of the connector whose data dir is `data_dir`.
///
/// The account is derived from the data dir's absolute path, so two connectors on one machine
/// never share an entry, and the same connector finds its entry after a restart.
#[derive(Debug, Clone)]
pub struct KeyringEntry {
    account: String,
    label: String,
}

impl KeyringEntry {
    /// The entry for `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        let absolute = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        // Canonical when it exists, so `./data` and `/home/me/data` are one connector.
        let stable = absolute.canonicalize().unwrap_or(absolute);
        Self {
            account: account_for(&stable),
            label: format!("Uplink connector ({})", stable.display()),
        }
    }

    /// The keyring account name (`data-dir-` and 32 hex digits).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Stores `secret`, replacing what the entry held.
    ///
    /// # Errors
    /// [`Unreachable`] when there is no usable keyring or the write failed.
    pub fn set(&self, secret: &str) -> Result<(), Unreachable> {
        let (entry, secret) = (self.clone(), secret.to_owned());
        on_keyring_thread(move || platform::set(&entry, &secret))
    }

    /// Reads the entry.
    ///
    /// # Errors
    /// [`Unreachable`] when there is no usable keyring or the read failed.
    pub fn get(&self) -> Result<Found, Unreachable> {
        let entry = self.clone();
        on_keyring_thread(move || platform::get(&entry))
    }

    /// Deletes the entry; `Ok(false)` when it held nothing.
    ///
    /// # Errors
    /// [`Unreachable`] when there is no usable keyring or the delete failed.
    pub fn delete(&self) -> Result<bool, Unreachable> {
        let entry = self.clone();
        on_keyring_thread(move || platform::delete(&entry))
    }
}

/// Whether a usable keyring is reachable now (the probe every operation starts with).
///
/// # Errors
/// [`Unreachable`] saying why not.
pub fn probe() -> Result<(), Unreachable> {
    on_keyring_thread(platform::probe)
}

fn account_for(path: &Path) -> String {
    #[cfg(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ))]
    {
        use sha2::{Digest, Sha256};
        use std::os::unix::ffi::OsStrExt;
        let digest = Sha256::digest(path.as_os_str().as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("data-dir-{hex}")
    }
    #[cfg(not(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    )))]
    {
        format!("data-dir-{}", path.display())
    }
}

/// Runs `work` on a thread of its own (no async runtime context, so the D-Bus client's blocking
/// calls are safe from any caller), one exchange at a time, giving up after [`DEADLINE`].
fn on_keyring_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Unreachable> + Send + 'static,
) -> Result<T, Unreachable> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (done, outcome) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("uplink-keyring".into())
        .spawn(move || {
            let _turn = ONE_AT_A_TIME
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The caller may have given up: then nobody listens, which is fine.
            let _ = done.send(work());
        });
    if spawned.is_err() {
        return Err(Unreachable("could not start the keyring thread".into()));
    }
    match outcome.recv_timeout(DEADLINE) {
        Ok(outcome) => outcome,
        Err(_) => Err(Unreachable(format!(
            "the keyring did not answer within {} s",
            DEADLINE.as_secs()
        ))),
    }
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
mod platform {
    use keyring_core::Error as KeyringError;
    use keyring_core::api::CredentialStoreApi;
    use secret_service::EncryptionType;
    use secret_service::blocking::SecretService;

    use super::{Found, KeyringEntry, SERVICE, Unreachable};

    pub(super) fn probe() -> Result<(), Unreachable> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() && !session_bus_socket().exists()
        {
            return Err(Unreachable("no D-Bus session bus".into()));
        }
        // No secret crosses this session, so it skips the key exchange the secret's own takes.
        let service = SecretService::connect(EncryptionType::Plain).map_err(|error| {
            Unreachable(format!("no Secret Service on the session bus ({error})"))
        })?;
        let collection = service.get_default_collection().map_err(|error| {
            Unreachable(format!("the keyring has no default collection ({error})"))
        })?;
        match collection.is_locked() {
            Ok(false) => Ok(()),
            Ok(true) => Err(Unreachable("the keyring is locked".into())),
            Err(error) => Err(Unreachable(format!(
                "the keyring did not say whether it is locked ({error})"
            ))),
        }
    }

    /// Where the session bus listens when no address is in the environment.
    fn session_bus_socket() -> std::path::PathBuf {
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                // Without a runtime dir, the D-Bus client looks where systemd puts it.
                let uid = std::fs::metadata("/proc/self")
                    .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
                    .unwrap_or(u32::MAX);
                std::path::PathBuf::from(format!("/run/user/{uid}"))
            });
        runtime_dir.join("bus")
    }

    fn entry(entry: &KeyringEntry) -> Result<keyring_core::Entry, Unreachable> {
        probe()?;
        let store = zbus_secret_service_keyring_store::Store::new()
            .map_err(|error| Unreachable(describe("open the keyring", &error)))?;
        let modifiers = std::collections::HashMap::from([("label", entry.label.as_str())]);
        store
            .build(SERVICE, &entry.account, Some(&modifiers))
            .map_err(|error| Unreachable(describe("open the keyring entry", &error)))
    }

    pub(super) fn set(target: &KeyringEntry, secret: &str) -> Result<(), Unreachable> {
        entry(target)?
            .set_password(secret)
            .map_err(|error| Unreachable(describe("write to the keyring", &error)))
    }

    pub(super) fn get(target: &KeyringEntry) -> Result<Found, Unreachable> {
        match entry(target)?.get_password() {
            Ok(secret) => Ok(Found::Secret(secret)),
            Err(KeyringError::NoEntry) => Ok(Found::Nothing),
            Err(error) => Err(Unreachable(describe("read from the keyring", &error))),
        }
    }

    pub(super) fn delete(target: &KeyringEntry) -> Result<bool, Unreachable> {
        match entry(target)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(KeyringError::NoEntry) => Ok(false),
            Err(error) => Err(Unreachable(describe("delete from the keyring", &error))),
        }
    }

    /// The error's kind and platform cause, never a payload: some keyring errors carry the
    /// secret's bytes.
    fn describe(action: &str, error: &KeyringError) -> String {
        let cause = match error {
            KeyringError::PlatformFailure(cause) => format!("platform failure: {cause}"),
            KeyringError::NoStorageAccess(cause) => format!("no access: {cause}"),
            KeyringError::NoEntry => "no entry".into(),
            KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => {
                "the stored value is not a connector secret".into()
            }
            KeyringError::Ambiguous(entries) => {
                format!("{} entries match this connector", entries.len())
            }
            KeyringError::TooLong(name, limit) => format!("{name} is longer than {limit}"),
            KeyringError::Invalid(name, why) => format!("invalid {name}: {why}"),
            _ => "unexpected keyring error".into(),
        };
        format!("could not {action} ({cause})")
    }
}

#[cfg(not(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
)))]
mod platform {
    use super::{Found, KeyringEntry, Unreachable};

    fn unsupported() -> Unreachable {
        Unreachable("no supported OS keyring on this platform".into())
    }

    pub(super) fn probe() -> Result<(), Unreachable> {
        Err(unsupported())
    }

    pub(super) fn set(_: &KeyringEntry, _: &str) -> Result<(), Unreachable> {
        Err(unsupported())
    }

    pub(super) fn get(_: &KeyringEntry) -> Result<Found, Unreachable> {
        Err(unsupported())
    }

    pub(super) fn delete(_: &KeyringEntry) -> Result<bool, Unreachable> {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_data_dirs_get_two_accounts_and_one_dir_keeps_its_own() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let first = KeyringEntry::for_data_dir(one.path());
        assert_ne!(
            first.account(),
            KeyringEntry::for_data_dir(two.path()).account()
        );
        assert_eq!(
            first.account(),
            KeyringEntry::for_data_dir(&one.path().join(".")).account()
        );
        assert!(first.account().starts_with("data-dir-"));
    }
}
