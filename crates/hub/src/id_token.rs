//! OpenID Connect ID tokens: JWTs signed with Ed25519 (`alg: EdDSA`), made with the
//! `jsonwebtoken` crate on `ring` (the TLS stack's own crypto, so no OpenSSL). Access tokens stay
//! PASETO ([`crate::token`]); an ID token only tells the app who signed in.
//!
//! The signing keys live in their own 0600 file ([`ID_KEY_FILE`]), beside the access-token
//! keys and kept the same way (written atomically, never in the store). Rotation follows the
//! access-token keyring's pattern: the newest key signs; a key that stopped signing stays
//! published in the JWKS until every token it signed has expired (its retirement time plus
//! the ID-token lifetime and [`crate::token::RETIREMENT_MARGIN`]), never after. A running hub
//! re-reads the file when the change feed says a key was rotated, when the file changed (the
//! JWKS looks at every request; the feed follower every 10 s), so a rotation made by another
//! replica or an admin command takes effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{HubError, Result};

/// The ID-token signing keys' file name in the data folder.
pub const ID_KEY_FILE: &str = "id-token-keys.json";

/// The ID-token lifetime in seconds when the config says nothing else.
pub const DEFAULT_TTL: i64 = 600;

/// How long retired keys stay in the file, whatever the ID-token lifetime of the process that
/// rotates (an admin command does not know the serving hub's): publication applies the hub's
/// own, shorter, bound.
const KEEP_RETIRED: i64 = 7 * 24 * 3600;

/// One signing key as the file keeps it.
#[derive(Clone, Serialize, Deserialize)]
struct KeyEntry {
    /// RFC 7638 JWK thumbprint of the public key.
    kid: String,
    /// The PKCS#8 document of the Ed25519 key pair, base64.
    pkcs8: String,
    created_at: i64,
    /// When a newer key took over signing; None for the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct FileContents {
    /// Newest first.
    keys: Vec<KeyEntry>,
}

struct Loaded {
    entry: KeyEntry,
    public: Vec<u8>,
    encoding: EncodingKey,
}

fn unreadable(path: &Path, what: &str) -> HubError {
    HubError::TokenIssue(format!(
        "the ID-token key file {} is not readable: {what}",
        path.display()
    ))
}

fn load_entry(entry: KeyEntry, path: &Path) -> Result<Loaded> {
    let der = STANDARD
        .decode(entry.pkcs8.as_bytes())
        .map_err(|_| unreadable(path, "a key is not base64"))?;
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|_| unreadable(path, "a key is not an Ed25519 key"))?;
    let public = pair.public_key().as_ref().to_vec();
    if thumbprint(&public) != entry.kid {
        return Err(unreadable(path, "a key does not match its id"));
    }
    Ok(Loaded {
        encoding: EncodingKey::from_ed_der(&der),
        public,
        entry,
    })
}

/// The RFC 7638 thumbprint of an Ed25519 public key: the key id the JWKS and tokens carry.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn new_entry(now: i64) -> Result<KeyEntry> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| HubError::TokenIssue("cannot make an ID-token signing key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|_| HubError::TokenIssue("cannot make an ID-token signing key".into()))?;
    Ok(KeyEntry {
        kid: thumbprint(pair.public_key().as_ref()),
        pkcs8: STANDARD.encode(doc.as_ref()),
        created_at: now,
        retired_at: None,
    })
}

/// What goes into an ID token besides the times.
#[derive(Debug, Clone)]
pub struct IdTokenSubject<'a> {
    /// The `sub` claim: the user's stable public id.
    pub subject: &'a str,
    /// The app (`aud`, and `azp`).
    pub audience: &'a str,
    /// When the user signed in.
    pub auth_time: i64,
    /// The nonce of the authorization request, if it sent one.
    pub nonce: Option<&'a str>,
    /// The access token issued beside it (for `at_hash`).
    pub access_token: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
}

/// `at_hash` for EdDSA with Ed25519: the left half of the access token's SHA-512 digest,
/// base64url (OpenID Connect Core §3.1.3.6; Ed25519 signs with SHA-512).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha512::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..32])
}

/// The hub's ID-token signing keys: the newest signs, retired ones stay published until the
/// tokens they signed have expired.
pub struct IdTokenKeys {
    /// The current key first, then the retired ones, newest first.
    keys: RwLock<Vec<Loaded>>,
    file: Option<PathBuf>,
    issuer: String,
    ttl: i64,
    /// The key file's modification time when it was last read.
    file_modified: Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for IdTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenKeys")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl IdTokenKeys {
    /// Loads the keys from `path`, making the first one on a fresh hub; keys whose tokens have
    /// all expired are dropped from the file.
    ///
    /// # Errors
    /// A file others may read, or one that cannot be read, parsed or written.
    pub fn open(path: PathBuf, issuer: &str, ttl: i64) -> Result<Self> {
        let now = crate::clock::now();
        let mut entries = read_file(&path)?;
        let before = entries.len();
        entries.retain(|e| e.retired_at.is_none_or(|at| at + KEEP_RETIRED >= now));
        if entries.is_empty() {
            entries.push(new_entry(now)?);
        }
        if entries.len() != before {
            write_file(&path, &entries)?;
        }
        let keys = load_all(entries, &path)?;
        Ok(Self {
            keys: RwLock::new(keys),
            file_modified: Mutex::new(modified(&path)),
            file: Some(path),
            issuer: issuer.to_owned(),
            ttl,
        })
    }

    /// Re-reads the key file (the authority): a key rotated by another replica or an admin
    /// command signs here from now on, and is published. Returns whether the signing key
    /// changed. Keys in memory only, or a file with no key, stay as they are.
    ///
    /// # Errors
    /// The key file cannot be read (the keys in memory are kept).
    pub fn reload(&self) -> Result<bool> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let modified_before = modified(path);
        let entries = read_file(path)?;
        *lock(&self.file_modified) = modified_before;
        if entries.is_empty() {
            return Ok(false);
        }
        let fresh = load_all(entries, path)?;
        let mut keys = self.keys.write().expect("ID-token keys lock poisoned");
        let changed = keys[0].entry.kid != fresh[0].entry.kid;
        *keys = fresh;
        Ok(changed)
    }

    /// Re-reads the key file if it was modified since it was last read (another replica
    /// sharing the folder rotated, or an operator copied a rotated file in): one `stat` when
    /// it was not. Returns whether the signing key changed.
    ///
    /// # Errors
    /// As [`IdTokenKeys::reload`].
    pub fn reload_if_changed(&self) -> Result<bool> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let now = modified(path);
        {
            let mut seen = lock(&self.file_modified);
            if now.is_none() || *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        self.reload()
    }

    /// One fresh key in memory only (hubs built in tests without a key file).
    ///
    /// # Errors
    /// The system's random source failed.
    pub fn generate(issuer: &str, ttl: i64) -> Result<Self> {
        let entry = new_entry(crate::clock::now())?;
        let loaded = load_entry(entry, Path::new("(memory)"))?;
        Ok(Self {
            keys: RwLock::new(vec![loaded]),
            file: None,
            issuer: issuer.to_owned(),
            ttl,
            file_modified: Mutex::new(None),
        })
    }

    /// How long an ID token is valid, in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Makes a new key current; the old one stops signing now and stays published until its
    /// last token expired. The file is the authority: a rotation another process made since
    /// this one read it is kept. Keys retired more than a week ago leave the file. The file
    /// is written before the new key signs anything. Returns the new key's id.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn rotate(&self) -> Result<String> {
        let now = crate::clock::now();
        let entry = new_entry(now)?;
        let path = self
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("(memory)"));
        let mut keys = self.keys.write().expect("ID-token keys lock poisoned");
        let on_file = match &self.file {
            Some(file) => read_file(file)?,
            None => Vec::new(),
        };
        let before = if on_file.is_empty() {
            keys.iter().map(|k| k.entry.clone()).collect()
        } else {
            on_file
        };
        let mut entries = vec![entry];
        for mut e in before {
            let retired_at = *e.retired_at.get_or_insert(now);
            if retired_at + KEEP_RETIRED >= now {
                entries.push(e);
            }
        }
        if let Some(file) = &self.file {
            write_file(file, &entries)?;
            *lock(&self.file_modified) = modified(file);
        }
        let kid = entries[0].kid.clone();
        *keys = load_all(entries, &path)?;
        Ok(kid)
    }

    /// The id of the key that signs new ID tokens.
    pub fn current_key_id(&self) -> String {
        self.keys.read().expect("ID-token keys lock poisoned")[0]
            .entry
            .kid
            .clone()
    }

    /// The JWK Set: every key whose tokens may still be valid at `now`, current first. A
    /// retired key is published for one ID-token lifetime past its retirement and
    /// [`crate::token::RETIREMENT_MARGIN`] (replicas that heard of the rotation a moment late
    /// may have signed with it since), never after.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let keys = self.keys.read().expect("ID-token keys lock poisoned");
        let published: Vec<serde_json::Value> = keys
            .iter()
            .filter(|k| {
                k.entry
                    .retired_at
                    .is_none_or(|at| at + self.ttl + crate::token::RETIREMENT_MARGIN >= now)
            })
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&k.public),
                    "kid": k.entry.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        serde_json::json!({ "keys": published })
    }

    /// An ID token for `who`, issued now.
    ///
    /// # Errors
    /// Signing failed.
    pub fn issue(&self, who: &IdTokenSubject<'_>) -> Result<String> {
        let now = crate::clock::now();
        self.issue_at(who, now, now + self.ttl)
    }

    /// An ID token with explicit issue and expiry times; tests make expired ones with it.
    ///
    /// # Errors
    /// Signing failed.
    pub fn issue_at(
        &self,
        who: &IdTokenSubject<'_>,
        issued_at: i64,
        expires: i64,
    ) -> Result<String> {
        let claims = Claims {
            iss: &self.issuer,
            sub: who.subject,
            aud: who.audience,
            azp: who.audience,
            exp: expires,
            iat: issued_at,
            auth_time: who.auth_time,
            nonce: who.nonce,
            at_hash: at_hash(who.access_token),
        };
        let keys = self.keys.read().expect("ID-token keys lock poisoned");
        let current = &keys[0];
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(current.entry.kid.clone());
        jsonwebtoken::encode(&header, &claims, &current.encoding)
            .map_err(|e| HubError::TokenIssue(format!("cannot sign the ID token: {e}")))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key file's modification time, if it can be read.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The keys of `entries`, the signing one first: the newest not retired (or, in a file where
/// every key was retired, the newest), then the others newest first.
fn load_all(mut entries: Vec<KeyEntry>, path: &Path) -> Result<Vec<Loaded>> {
    entries.sort_by_key(|e| (e.retired_at.is_some(), std::cmp::Reverse(e.created_at)));
    entries.into_iter().map(|e| load_entry(e, path)).collect()
}

fn read_file(path: &Path) -> Result<Vec<KeyEntry>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HubError::Io {
                context: format!("cannot read {}", path.display()),
                source,
            });
        }
    };
    crate::data_dir::refuse_loose_file(path)?;
    let contents: FileContents =
        serde_json::from_slice(&bytes).map_err(|_| unreadable(path, "not the expected JSON"))?;
    Ok(contents.keys)
}

fn write_file(path: &Path, entries: &[KeyEntry]) -> Result<()> {
    let json = serde_json::to_vec_pretty(&FileContents {
        keys: entries.to_vec(),
    })
    .map_err(|e| HubError::TokenIssue(format!("cannot write the ID-token key file: {e}")))?;
    uplink_files::write_atomically(path, &json, uplink_files::Access::OwnerOnly).map_err(|e| {
        HubError::Io {
            context: format!("cannot {} the key file {}", e.action, e.path.display()),
            source: e.source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn who<'a>() -> IdTokenSubject<'a> {
        IdTokenSubject {
            subject: "usr_1",
            audience: "app1",
            auth_time: 5,
            nonce: Some("n-0S6"),
            access_token: "v4.local.x",
        }
    }

    fn verify_with_jwks(keys: &IdTokenKeys, token: &str) -> Result<serde_json::Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let jwks = keys.jwks(crate::clock::now());
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
            .ok_or("kid not published")?;
        let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["app1"]);
        validation.set_issuer(&["https://hub.test"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_token_verifies_against_the_published_key_and_carries_the_claims() {
        let keys = IdTokenKeys::generate("https://hub.test", 600).unwrap();
        let token = keys.issue(&who()).unwrap();
        let claims = verify_with_jwks(&keys, &token).unwrap();
        assert_eq!(claims["sub"], "usr_1");
        assert_eq!(claims["nonce"], "n-0S6");
        assert_eq!(claims["auth_time"], 5);
        assert_eq!(claims["at_hash"], at_hash("v4.local.x"));
    }

    #[test]
    fn rotation_keeps_the_old_key_published_until_its_tokens_expired_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ID_KEY_FILE);
        let keys = IdTokenKeys::open(path.clone(), "https://hub.test", 600).unwrap();
        let old_kid = keys.current_key_id();
        let old = keys.issue(&who()).unwrap();
        let new_kid = keys.rotate().unwrap();
        assert_ne!(old_kid, new_kid);
        let new = keys.issue(&who()).unwrap();
        assert!(
            verify_with_jwks(&keys, &old).is_ok(),
            "old key still published"
        );
        assert!(verify_with_jwks(&keys, &new).is_ok());
        let now = crate::clock::now();
        let published = |at| {
            keys.jwks(at)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(published(now), vec![new_kid.clone(), old_kid.clone()]);
        assert_eq!(
            published(now + 600 + crate::token::RETIREMENT_MARGIN + 1),
            vec![new_kid.clone()],
            "gone once its tokens expired (and the margin for late replicas passed)"
        );
        let reopened = IdTokenKeys::open(path.clone(), "https://hub.test", 600).unwrap();
        assert_eq!(reopened.current_key_id(), new_kid);
        assert!(verify_with_jwks(&reopened, &old).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // With a zero lifetime the retired key's tokens are already expired: it goes once the
        // margin for late replicas passed.
        let short = IdTokenKeys::open(path, "https://hub.test", -1).unwrap();
        assert_eq!(short.jwks(now)["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            short.jwks(now + crate::token::RETIREMENT_MARGIN)["keys"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    fn published(keys: &IdTokenKeys, at: i64) -> Vec<String> {
        keys.jwks(at)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_rotation_by_another_process_signs_and_is_published_here_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ID_KEY_FILE);
        // Two replicas on one data folder (or an admin command beside a serving hub).
        let here = IdTokenKeys::open(path.clone(), "https://hub.test", 600).unwrap();
        let there = IdTokenKeys::open(path.clone(), "https://hub.test", 600).unwrap();
        let old_kid = here.current_key_id();
        assert_eq!(there.current_key_id(), old_kid);
        assert!(!here.reload_if_changed().unwrap(), "nothing changed yet");
        let signed_before = here.issue(&who()).unwrap();
        let new_kid = there.rotate().unwrap();
        // A token the other replica signed with its new key is not yet verifiable here…
        let signed_there = there.issue(&who()).unwrap();
        assert!(verify_with_jwks(&here, &signed_there).is_err());
        // …until the file change (the JWKS looks) or the feed's news (a reload) is seen.
        assert!(here.reload_if_changed().unwrap(), "the signing key changed");
        assert!(!here.reload_if_changed().unwrap(), "read once per change");
        assert_eq!(here.current_key_id(), new_kid);
        assert!(verify_with_jwks(&here, &signed_there).is_ok());
        assert!(verify_with_jwks(&here, &signed_before).is_ok());
        let signed_here = here.issue(&who()).unwrap();
        let header = jsonwebtoken::decode_header(&signed_here).unwrap();
        assert_eq!(
            header.kid.as_deref(),
            Some(new_kid.as_str()),
            "signs with the new key"
        );
        // The retired key is published for one lifetime and the margin past its retirement,
        // never after; the file keeps it longer (an admin command's lifetime may be shorter).
        let now = crate::clock::now();
        let margin = crate::token::RETIREMENT_MARGIN;
        assert_eq!(
            published(&here, now + 600 + margin - 1),
            vec![new_kid.clone(), old_kid.clone()]
        );
        assert_eq!(
            published(&here, now + 600 + margin + 2),
            vec![new_kid.clone()]
        );
        // A rotation here reaches the other replica in turn; every earlier key stays published.
        let third = here.rotate().unwrap();
        assert!(there.reload().unwrap());
        assert_eq!(published(&there, now), vec![third, new_kid, old_kid]);
    }

    #[test]
    fn the_key_file_says_nothing_of_itself_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ID_KEY_FILE);
        std::fs::write(
            &path,
            b"{\"keys\":[{\"kid\":\"x\",\"pkcs8\":\"c2VjcmV0\",\"created_at\":1}]}",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = IdTokenKeys::open(path, "https://hub.test", 600).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }
}
