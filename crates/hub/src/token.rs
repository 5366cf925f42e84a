//! Access tokens: PASETO v4.local (encrypted and authenticated), time-limited, naming the key
//! that made them in the footer so keys can rotate. They carry who (user), which app, what
//! (scopes), until when, and the token family they belong to — never the data sources: those
//! are looked up in the store on every request.
//!
//! The keys live in their own 0600 file ([`crate::data_dir::KeyFile`]), never in the store.
//! A rotation retires the current key: it keeps verifying the tokens it made for one token
//! lifetime ([`Keyring::retire_after`]), never longer. A running hub re-reads the file when the
//! change feed says a key was rotated, and when a token names a key it does not hold (at most
//! once a second), so a rotation made by another replica or an admin command takes effect
//! without a restart.
//!
//! ```no_run
//! # async fn example(store: &dyn uplink_hub::store::Store) -> uplink_hub::Result<()> {
//! use uplink_hub::data_dir::KeyFile;
//! use uplink_hub::token::{Keyring, TokenSubject};
//! let file = KeyFile::new("/var/lib/uplink-hub/token-keys.json");
//! let keys = Keyring::open(file, store, "https://hub.example", "https://hub.example/api").await?;
//! let subject = TokenSubject { user_id: "usr_1".into(), app_id: "app".into(),
//!     scopes: vec!["data.read".into()], family_id: "fam_1".into() };
//! let token = keys.issue(&subject, 600)?;
//! let claims = keys.verify(token.expose()).unwrap();
//! assert_eq!(claims.user_id, "usr_1");
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::footer::Footer;
use pasetors::keys::{Generate as _, SymmetricKey};
use pasetors::paserk::Id;
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{Local, local};

use crate::data_dir::KeyFile;
use crate::error::{HubError, Result};
use crate::secret::{Secret, public_id};
use crate::store::{Store, TokenKeyRecord, split_scopes};

/// Who and what a token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    /// The user who consented.
    pub user_id: String,
    /// The app (client id) holding the token.
    pub app_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The token family (one per authorization code), revocable as a whole.
    pub family_id: String,
}

/// The verified contents of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user who consented.
    pub user_id: String,
    /// The app the token was issued to.
    pub app_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Token family.
    pub family_id: String,
    /// Unique id of this token.
    pub token_id: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

impl AccessClaims {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a presented access token was refused. Deliberately coarse: a caller learns only that
/// the token is not acceptable, the log learns which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a v4.local PASETO, or no key id in its footer.
    #[error("the access token is malformed")]
    Malformed,
    /// Its key id names no key this hub holds.
    #[error("the access token was made with an unknown key")]
    UnknownKey,
    /// Authentication failed, or issuer, audience or validity times are wrong.
    #[error("the access token is invalid or expired")]
    Invalid,
}

struct Keys {
    /// Key id of the key that encrypts new tokens.
    current: String,
    /// Every key that verifies, with when it was retired (None for the current one).
    by_id: HashMap<String, (Arc<SymmetricKey<V4>>, Option<i64>)>,
    /// Every key as kept, newest first: what the key file is rewritten with.
    records: Vec<TokenKeyRecord>,
}

/// The hub's access-token keys: the newest encrypts, every kept key verifies.
pub struct Keyring {
    keys: RwLock<Keys>,
    /// Where the keys are kept; none for a keyring that lives in memory only.
    file: Option<KeyFile>,
    issuer: String,
    audience: String,
    /// How long after its retirement a key still verifies (seconds): one token lifetime and
    /// a margin for replicas that heard of the rotation a moment late.
    retired_grace: i64,
    /// When the file was last re-read for a token naming an unknown key.
    reloaded_for_unknown: Mutex<Option<Instant>>,
    /// The key file's modification time when it was last read.
    file_modified: Mutex<Option<std::time::SystemTime>>,
}

/// How long retired keys stay in the file, whatever the token lifetime of the process that
/// rotates (an admin command does not know the serving hub's): verification applies the
/// hub's own, shorter, bound.
const KEEP_RETIRED: i64 = 7 * 24 * 3600;

/// Re-reading the key file for an unknown key id happens at most this often, so tokens made
/// up with random key ids cannot turn into a file read per request.
const UNKNOWN_KEY_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Margin past a token lifetime during which a retired key still verifies: replicas that
/// heard of a rotation late may have issued with it a moment after it was retired.
pub const RETIREMENT_MARGIN: i64 = 60;

impl Keys {
    /// The keys of `records` (newest first): the newest one not retired encrypts.
    fn from_records(records: &[TokenKeyRecord]) -> Result<Self> {
        let current = records
            .iter()
            .find(|r| r.retired_at.is_none())
            .or_else(|| records.first())
            .ok_or_else(|| HubError::TokenIssue("no token key".into()))?
            .id
            .clone();
        let mut by_id = HashMap::new();
        for record in records {
            by_id.insert(
                record.id.clone(),
                (Arc::new(key_from_record(record)?), record.retired_at),
            );
        }
        Ok(Self {
            current,
            by_id,
            records: records.to_vec(),
        })
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The footer as this hub writes it. Parsed before the token is authenticated (to pick the
/// key), so it is size-capped and strict; decryption then authenticates it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFooter<'a> {
    #[serde(borrow)]
    kid: &'a str,
}

/// The key id in a token footer. (pasetors' own footer parser compiles a regular expression
/// on every call, which cost ~180 µs per verification.)
fn key_id_of(footer: &[u8]) -> Option<&str> {
    if footer.len() > 256 {
        return None;
    }
    serde_json::from_slice::<KeyFooter<'_>>(footer)
        .ok()
        .map(|f| f.kid)
}

fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The key file's modification time, if it can be read.
fn modified(file: &KeyFile) -> Option<std::time::SystemTime> {
    std::fs::metadata(file.path())
        .and_then(|m| m.modified())
        .ok()
}

fn key_from_record(record: &TokenKeyRecord) -> Result<SymmetricKey<V4>> {
    SymmetricKey::<V4>::from(&record.key_bytes)
        .map_err(|e| HubError::TokenIssue(format!("stored key {} unusable: {e}", record.id)))
}

fn new_key_record(now: i64) -> Result<TokenKeyRecord> {
    let key = SymmetricKey::<V4>::generate().map_err(|e| HubError::TokenIssue(e.to_string()))?;
    Keyring::key_record(key.as_bytes(), now)
}

fn key_id(key: &SymmetricKey<V4>) -> String {
    use pasetors::paserk::FormatAsPaserk as _;
    let mut id = String::new();
    Id::from(key)
        .fmt(&mut id)
        .expect("writing to a String cannot fail");
    id
}

impl Keyring {
    /// Loads the keys from their file, creating the first one on a fresh hub. Keys an older
    /// hub kept in the store are moved into the file (written and synced first, then removed
    /// from the store), so tokens they made stay valid.
    ///
    /// # Errors
    /// A key file others may read, or one that cannot be read or written; store errors.
    pub async fn open(
        file: KeyFile,
        store: &dyn Store,
        issuer: &str,
        audience: &str,
    ) -> Result<Self> {
        let mut records = file.load()?;
        let legacy = store.token_keys().await?;
        let moving = !legacy.is_empty();
        for record in legacy {
            if !records.iter().any(|r| r.id == record.id) {
                records.push(record);
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        if records.is_empty() {
            records.push(new_key_record(crate::clock::now())?);
            file.save(&records)?;
        } else if moving {
            file.save(&records)?;
            store.forget_token_keys().await?;
            tracing::info!(
                keys = records.len(),
                file = %file.path().display(),
                "moved the access-token keys out of the store into their own file"
            );
        }
        let mut keyring = Self::from_records(&records, issuer, audience)?;
        *keyring
            .file_modified
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = modified(&file);
        keyring.file = Some(file);
        Ok(keyring)
    }

    /// A keyring of one fresh key, kept in memory only: tokens it makes die with it. For
    /// hubs built in tests and benchmarks ([`crate::Hub::new`] without a key file).
    ///
    /// # Errors
    /// The system's random source failed.
    pub fn generate(issuer: &str, audience: &str) -> Result<Self> {
        Self::from_records(&[new_key_record(crate::clock::now())?], issuer, audience)
    }

    /// A keyring of these keys, the first one current, without a store (the token fuzz target
    /// and tests use a fixed key).
    ///
    /// # Errors
    /// No records, or a record whose bytes are not a v4.local key.
    pub fn from_records(records: &[TokenKeyRecord], issuer: &str, audience: &str) -> Result<Self> {
        Ok(Self {
            keys: RwLock::new(Keys::from_records(records)?),
            file: None,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            retired_grace: 600 + RETIREMENT_MARGIN,
            reloaded_for_unknown: Mutex::new(None),
            file_modified: Mutex::new(None),
        })
    }

    /// Sets how long a retired key keeps verifying (`seconds` past its retirement): the
    /// hub's access-token lifetime plus [`RETIREMENT_MARGIN`]. Tokens it made cannot outlive
    /// it; a token it sealed later (a leaked key) dies with it.
    #[must_use]
    pub fn retire_after(mut self, seconds: i64) -> Self {
        self.retired_grace = seconds;
        self
    }

    /// Re-reads the key file (the authority): a key rotated by another replica or an admin
    /// command becomes current here, retired ones are marked. Returns whether the current key
    /// changed. A keyring without a file, or a file with no key, stays as it is.
    ///
    /// # Errors
    /// The key file cannot be read (the keys in memory are kept).
    pub fn reload(&self) -> Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let modified_before = modified(file);
        let records = file.load()?;
        *self
            .file_modified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = modified_before;
        if records.is_empty() {
            return Ok(false);
        }
        let fresh = Keys::from_records(&records)?;
        let mut keys = self.keys.write().expect("keyring lock poisoned");
        let changed = keys.current != fresh.current;
        *keys = fresh;
        Ok(changed)
    }

    /// Re-reads the key file if it was modified since it was last read (an operator copied a
    /// rotated file in). Returns whether the current key changed.
    ///
    /// # Errors
    /// As [`Keyring::reload`].
    pub fn reload_if_changed(&self) -> Result<bool> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let now = modified(file);
        let mut seen = self
            .file_modified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.is_none() || *seen == now {
            return Ok(false);
        }
        *seen = now;
        drop(seen);
        self.reload()
    }

    /// The key `kid` names and when it was retired, if this keyring holds it.
    fn key(&self, kid: &str) -> Option<(Arc<SymmetricKey<V4>>, Option<i64>)> {
        self.keys
            .read()
            .expect("keyring lock poisoned")
            .by_id
            .get(kid)
            .cloned()
    }

    /// The key `kid` names, re-reading the file once (at most every
    /// [`UNKNOWN_KEY_RELOAD_EVERY`]) when it is not held: another replica may have rotated.
    fn key_or_reload(&self, kid: &str) -> Option<(Arc<SymmetricKey<V4>>, Option<i64>)> {
        if let Some(found) = self.key(kid) {
            return Some(found);
        }
        self.file.as_ref()?;
        {
            let mut last = self
                .reloaded_for_unknown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_RELOAD_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match self.reload() {
            Ok(changed) => {
                tracing::info!(
                    changed,
                    "re-read the access-token keys for a token naming an unknown key"
                );
            }
            Err(e) => tracing::warn!(error = %e, "the access-token key file cannot be re-read"),
        }
        self.key(kid)
    }

    /// The record of a key made from `key_bytes` (32 bytes), with its PASERK id.
    ///
    /// # Errors
    /// Bytes that are not a v4.local key.
    pub fn key_record(key_bytes: &[u8], created_at: i64) -> Result<TokenKeyRecord> {
        let key = SymmetricKey::<V4>::from(key_bytes)
            .map_err(|e| HubError::TokenIssue(format!("unusable key: {e}")))?;
        Ok(TokenKeyRecord {
            id: key_id(&key),
            key_bytes: key_bytes.to_vec(),
            created_at,
            retired_at: None,
        })
    }

    /// Makes a new key current, keeping the old ones so tokens already issued stay valid until
    /// they expire; the key file is rewritten (atomically) before the new key is used. Returns
    /// the new key's id.
    ///
    /// # Errors
    /// The key file cannot be written.
    pub async fn rotate(&self) -> Result<String> {
        let now = crate::clock::now();
        let record = new_key_record(now)?;
        let mut keys = self.keys.write().expect("keyring lock poisoned");
        // The file is the authority: a rotation another process made since this one read it
        // is kept.
        let on_file = match &self.file {
            Some(file) => file.load()?,
            None => Vec::new(),
        };
        let before = if on_file.is_empty() {
            keys.records.clone()
        } else {
            on_file
        };
        let mut records = vec![record.clone()];
        for mut old in before {
            let retired_at = *old.retired_at.get_or_insert(now);
            if retired_at + KEEP_RETIRED >= now {
                records.push(old);
            }
        }
        if let Some(file) = &self.file {
            file.save(&records)?;
            *self
                .file_modified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = modified(file);
        }
        *keys = Keys::from_records(&records)?;
        Ok(record.id)
    }

    /// The id of the key that encrypts new tokens.
    pub fn current_key_id(&self) -> String {
        self.keys
            .read()
            .expect("keyring lock poisoned")
            .current
            .clone()
    }

    /// The issuer tokens are checked against.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A token for `subject`, valid from now for `ttl_seconds`.
    pub fn issue(&self, subject: &TokenSubject, ttl_seconds: i64) -> Result<Secret> {
        let now = crate::clock::now();
        self.issue_with_times(subject, now, now, now + ttl_seconds)
    }

    /// A token with explicit issue, not-before and expiry times (Unix seconds). Tests use it to
    /// make expired and not-yet-valid tokens.
    pub fn issue_with_times(
        &self,
        subject: &TokenSubject,
        issued_at: i64,
        not_before: i64,
        expires_at: i64,
    ) -> Result<Secret> {
        let err = |e: pasetors::errors::Error| HubError::TokenIssue(e.to_string());
        let mut claims = Claims::new().map_err(err)?;
        claims.issuer(&self.issuer).map_err(err)?;
        claims.audience(&self.audience).map_err(err)?;
        claims.subject(&subject.user_id).map_err(err)?;
        claims.issued_at(&rfc3339(issued_at)).map_err(err)?;
        claims.not_before(&rfc3339(not_before)).map_err(err)?;
        claims.expiration(&rfc3339(expires_at)).map_err(err)?;
        claims.token_identifier(&public_id("at")).map_err(err)?;
        claims
            .add_additional("client_id", subject.app_id.as_str())
            .map_err(err)?;
        claims
            .add_additional("scope", subject.scopes.join(" "))
            .map_err(err)?;
        claims
            .add_additional("fam", subject.family_id.as_str())
            .map_err(err)?;
        let (kid, key) = {
            let keys = self.keys.read().expect("keyring lock poisoned");
            (keys.current.clone(), keys.by_id[&keys.current].0.clone())
        };
        let mut footer = Footer::new();
        footer.key_id(&Id::try_from(kid.as_str()).map_err(err)?);
        local::encrypt(&key, &claims, Some(&footer), None)
            .map(Secret::from_received)
            .map_err(err)
    }

    /// Decrypts and checks a token: authentic, made by one of our keys, our issuer and
    /// audience, not expired, already valid.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenRejection> {
        let untrusted =
            UntrustedToken::<Local, V4>::try_from(token).map_err(|_| TokenRejection::Malformed)?;
        let kid = key_id_of(untrusted.untrusted_footer()).ok_or(TokenRejection::Malformed)?;
        let (key, retired_at) = self.key_or_reload(kid).ok_or(TokenRejection::UnknownKey)?;
        if retired_at.is_some_and(|at| crate::clock::now() > at + self.retired_grace) {
            // Past its retirement a key is no longer one of ours, whatever its tokens claim.
            return Err(TokenRejection::UnknownKey);
        }
        let mut rules = ClaimsValidationRules::new();
        rules.validate_issuer_with(&self.issuer);
        rules.validate_audience_with(&self.audience);
        let trusted = local::decrypt(&key, &untrusted, &rules, None, None)
            .map_err(|_| TokenRejection::Invalid)?;
        let claims = trusted.payload_claims().ok_or(TokenRejection::Invalid)?;
        let text = |name: &str| {
            claims
                .get_claim(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or(TokenRejection::Invalid)
        };
        let expires_at = DateTime::parse_from_rfc3339(&text("exp")?)
            .map_err(|_| TokenRejection::Invalid)?
            .timestamp();
        Ok(AccessClaims {
            user_id: text("sub")?,
            app_id: text("client_id")?,
            scopes: split_scopes(&text("scope")?),
            family_id: text("fam")?,
            token_id: text("jti")?,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::store::prelude::*;

    fn subject() -> TokenSubject {
        TokenSubject {
            user_id: "usr_1".into(),
            app_id: "app".into(),
            scopes: vec!["data.read".into()],
            family_id: "fam_1".into(),
        }
    }

    async fn keyring() -> (tempfile::TempDir, SqliteStore, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
        let keys = open(&dir, &store).await;
        (dir, store, keys)
    }

    async fn open(dir: &tempfile::TempDir, store: &SqliteStore) -> Keyring {
        let file = KeyFile::new(dir.path().join(crate::data_dir::KEY_FILE));
        Keyring::open(file, store, "https://hub.test", "https://hub.test/api")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn round_trip_carries_no_data_sources() {
        let (_d, _s, keys) = keyring().await;
        let token = keys.issue(&subject(), 600).unwrap();
        assert!(token.expose().starts_with("v4.local."));
        let claims = keys.verify(token.expose()).unwrap();
        assert_eq!(claims.app_id, "app");
        assert!(claims.has_scope("data.read"));
        assert_eq!(claims.family_id, "fam_1");
    }

    #[test]
    fn footers_are_read_strictly() {
        assert_eq!(key_id_of(br#"{"kid":"k4.lid.x"}"#), Some("k4.lid.x"));
        assert_eq!(key_id_of(br#"{"kid":"k4.lid.x","x":1}"#), None);
        assert_eq!(key_id_of(br#"{"kid":1}"#), None);
        assert_eq!(key_id_of(&[b' '; 300]), None);
        assert_eq!(key_id_of(b""), None);
    }

    #[tokio::test]
    async fn rotation_keeps_old_tokens_valid_and_persists() {
        let (d, store, keys) = keyring().await;
        let old = keys.issue(&subject(), 600).unwrap();
        let first = keys.current_key_id();
        let second = keys.rotate().await.unwrap();
        assert_ne!(first, second);
        let new = keys.issue(&subject(), 600).unwrap();
        assert!(keys.verify(old.expose()).is_ok());
        assert!(keys.verify(new.expose()).is_ok());
        let reloaded = open(&d, &store).await;
        assert_eq!(reloaded.current_key_id(), second);
        assert!(reloaded.verify(old.expose()).is_ok());
    }

    #[tokio::test]
    async fn a_rotation_by_another_process_is_seen_without_a_restart() {
        let (d, store, here) = keyring().await;
        let elsewhere = open(&d, &store).await;
        let before = here.issue(&subject(), 600).unwrap();
        let new_id = elsewhere.rotate().await.unwrap();
        let sealed_elsewhere = elsewhere.issue(&subject(), 600).unwrap();
        // A token naming a key this keyring does not hold yet: the file is re-read at once.
        assert!(here.verify(sealed_elsewhere.expose()).is_ok());
        assert_eq!(
            here.current_key_id(),
            new_id,
            "it now issues with the new key"
        );
        assert!(
            here.verify(before.expose()).is_ok(),
            "the retired key still verifies"
        );
        let third = elsewhere.rotate().await.unwrap();
        let sealed_third = elsewhere.issue(&subject(), 600).unwrap();
        assert!(
            here.reload().unwrap(),
            "an explicit re-read (the change feed's) finds it"
        );
        assert_eq!(here.current_key_id(), third);
        assert!(here.verify(sealed_third.expose()).is_ok());
    }

    #[test]
    fn a_retired_key_verifies_for_one_token_lifetime_and_never_after() {
        let now = crate::clock::now();
        let old = Keyring::key_record(&[1; 32], now - 2000).unwrap();
        let new = Keyring::key_record(&[2; 32], now - 1000).unwrap();
        let token = Keyring::from_records(
            std::slice::from_ref(&old),
            "https://hub.test",
            "https://hub.test/api",
        )
        .unwrap()
        .issue_with_times(&subject(), now, now, now + 3600)
        .unwrap();
        let retired_at = |at: i64| {
            let mut retired = old.clone();
            retired.retired_at = Some(at);
            Keyring::from_records(
                &[new.clone(), retired],
                "https://hub.test",
                "https://hub.test/api",
            )
            .unwrap()
            .retire_after(660)
        };
        let recent = retired_at(now - 100);
        assert_eq!(
            recent.current_key_id(),
            new.id,
            "the retired key no longer encrypts"
        );
        assert!(recent.verify(token.expose()).is_ok(), "within its grace");
        assert_eq!(
            retired_at(now - 661).verify(token.expose()),
            Err(TokenRejection::UnknownKey),
            "past its retirement, even for a token claiming a later expiry"
        );
    }

    #[tokio::test]
    async fn keys_an_older_hub_kept_in_the_store_move_to_the_file_and_stay_valid() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
        let legacy = Keyring::key_record(&[9u8; 32], 1).unwrap();
        store.add_token_key(&legacy).await.unwrap();
        let before = Keyring::from_records(
            std::slice::from_ref(&legacy),
            "https://hub.test",
            "https://hub.test/api",
        )
        .unwrap()
        .issue(&subject(), 600)
        .unwrap();
        let keys = open(&dir, &store).await;
        assert!(
            keys.verify(before.expose()).is_ok(),
            "old tokens stay valid"
        );
        assert_eq!(keys.current_key_id(), legacy.id);
        assert!(
            store.token_keys().await.unwrap().is_empty(),
            "the store holds no key"
        );
        let again = open(&dir, &store).await;
        assert!(again.verify(before.expose()).is_ok(), "kept in the file");
    }

    #[tokio::test]
    async fn expired_future_and_foreign_tokens_are_refused() {
        let (_d, _s, keys) = keyring().await;
        let now = crate::clock::now();
        let expired = keys
            .issue_with_times(&subject(), now - 700, now - 700, now - 100)
            .unwrap();
        assert_eq!(keys.verify(expired.expose()), Err(TokenRejection::Invalid));
        let future = keys
            .issue_with_times(&subject(), now, now + 300, now + 900)
            .unwrap();
        assert_eq!(keys.verify(future.expose()), Err(TokenRejection::Invalid));
        let (_d2, _s2, other) = keyring().await;
        let foreign = other.issue(&subject(), 600).unwrap();
        assert_eq!(
            keys.verify(foreign.expose()),
            Err(TokenRejection::UnknownKey)
        );
        assert_eq!(
            keys.verify("v4.local.garbage"),
            Err(TokenRejection::Malformed)
        );
    }
}
