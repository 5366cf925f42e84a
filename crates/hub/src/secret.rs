//! Secrets the hub hands out (codes, refresh tokens, client secrets, session ids): random,
//! URL-safe, stored only as SHA-256 digests, compared in constant time, never printed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A secret value in transit. Its `Debug` never shows the value, so it cannot leak into a
/// log line or a panic message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret of 32 random bytes (256 bits), URL-safe base64 without padding.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a secret received from outside.
    pub fn from_received(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 digest kept at rest instead of the value.
    pub fn digest(&self) -> Vec<u8> {
        digest(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SHA-256 of `value`. Secrets are 256-bit random, so a fast hash is enough at rest (no
/// dictionary to attack); passwords use Argon2id instead.
pub fn digest(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A random public identifier such as `src_3f9a…`: not secret, just unguessable and unique.
pub fn public_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(prefix.len() + 21);
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// `BASE64URL(SHA256(verifier))`, the PKCE S256 transform (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_differ_and_hide_in_debug() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn digest_is_stable_and_compares_in_constant_time() {
        let s = Secret::from_received("abc");
        assert!(equal(&s.digest(), &digest("abc")));
        assert!(!equal(&s.digest(), &digest("abd")));
    }

    #[test]
    fn pkce_matches_an_independent_computation() {
        // Expected value computed with Python's hashlib and base64 modules.
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K9uhvLBFJ6wWEjq1JoaiTeJiRLc"),
            "CEQc70m17y7pntQG3CkEf2EvCW6P0eo8RsOruUiW8tw"
        );
    }

    #[test]
    fn public_ids_carry_their_prefix() {
        let id = public_id("src");
        assert!(id.starts_with("src_"));
        assert_eq!(id.len(), 24);
    }
}
