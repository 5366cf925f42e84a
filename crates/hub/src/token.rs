//! Access tokens: PASETO v4.local (encrypted and authenticated), time-limited, naming the key
//! that made them in the footer so keys can rotate. They carry who (user), which app, what
//! (scopes), until when, and the token family they belong to — never the data sources: those
//! are looked up in the store on every request.
//!
//! The keys live in their own 0600 file ([`crate::data_dir::KeyFile`]), never in the store.
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
use std::sync::{Arc, RwLock};

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
    by_id: HashMap<String, Arc<SymmetricKey<V4>>>,
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
        let current = records
            .first()
            .ok_or_else(|| HubError::TokenIssue("no token key".into()))?
            .id
            .clone();
        let mut by_id = HashMap::new();
        for record in records {
            by_id.insert(record.id.clone(), Arc::new(key_from_record(record)?));
        }
        Ok(Self {
            keys: RwLock::new(Keys {
                current,
                by_id,
                records: records.to_vec(),
            }),
            file: None,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
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
        })
    }

    /// Makes a new key current, keeping the old ones so tokens already issued stay valid until
    /// they expire; the key file is rewritten (atomically) before the new key is used. Returns
    /// the new key's id.
    ///
    /// # Errors
    /// The key file cannot be written.
    pub async fn rotate(&self) -> Result<String> {
        let record = new_key_record(crate::clock::now())?;
        let key = Arc::new(key_from_record(&record)?);
        let mut keys = self.keys.write().expect("keyring lock poisoned");
        let mut records = vec![record.clone()];
        records.extend(keys.records.iter().cloned());
        if let Some(file) = &self.file {
            file.save(&records)?;
        }
        keys.by_id.insert(record.id.clone(), key);
        keys.current = record.id.clone();
        keys.records = records;
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
            (keys.current.clone(), keys.by_id[&keys.current].clone())
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
        let key = self
            .keys
            .read()
            .expect("keyring lock poisoned")
            .by_id
            .get(kid)
            .cloned()
            .ok_or(TokenRejection::UnknownKey)?;
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
