//! Password hashing with Argon2id, off the async threads and bounded: hashing is deliberately
//! slow, so at most a few run at once and a burst of sign-ins cannot starve the server.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{HubError, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Hashes and verifies passwords with a bounded number of concurrent Argon2id runs.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    params: Params,
    /// A hash of a random password, verified against when the username is unknown so that a
    /// wrong name takes as long as a wrong password. Made on first need.
    decoy: Arc<OnceLock<String>>,
}

impl Passwords {
    /// Up to `concurrency` hashes at once, with OWASP's recommended Argon2id parameters
    /// (19 MiB, 2 passes, 1 lane).
    pub fn new(concurrency: usize) -> Self {
        Self::with_cost(concurrency, 19 * 1024, 2)
    }

    /// With explicit Argon2id memory (KiB, at least 8) and passes (at least 1). Tests use cheap
    /// ones; production keeps the defaults of [`Passwords::new`].
    pub fn with_cost(concurrency: usize, memory_kib: u32, passes: u32) -> Self {
        let params = Params::new(memory_kib.max(8), passes.max(1), 1, None)
            .expect("memory and passes were clamped to valid values");
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            params,
            decoy: Arc::new(OnceLock::new()),
        }
    }

    /// Argon2id PHC string for `password`, after checking it is long enough.
    pub async fn hash(&self, password: String) -> Result<String> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(HubError::Invalid(format!(
                "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, &password))
            .await
            .map_err(|e| HubError::PasswordHashing(e.to_string()))?
    }

    /// Whether `password` matches `stored` (a PHC string); with `None`, checks against a decoy
    /// and answers false, taking the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let known = stored.is_some();
        let decoy = self.decoy.clone();
        let params = self.params.clone();
        let matches = tokio::task::spawn_blocking(move || {
            let stored = match stored {
                Some(s) => s,
                None => decoy
                    .get_or_init(|| {
                        hash_blocking(&params, crate::secret::Secret::generate().expose())
                            .unwrap_or_default()
                    })
                    .clone(),
            };
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| HubError::PasswordHashing(format!("stored hash unreadable: {e}")))?;
            Ok::<_, HubError>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(|e| HubError::PasswordHashing(e.to_string()))??;
        Ok(known && matches)
    }
}

fn hash_blocking(params: &Params, password: &str) -> Result<String> {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| HubError::PasswordHashing(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HubError::PasswordHashing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::with_cost(2, 256, 1)
    }

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let p = cheap();
        let hash = p.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct"));
        assert!(
            p.verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !p.verify("wrong horse battery".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !p.verify("correct horse battery".into(), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn short_passwords_are_refused_with_a_reason() {
        let err = cheap().hash("short".into()).await.unwrap_err();
        assert!(err.to_string().contains("at least 10"));
    }
}
