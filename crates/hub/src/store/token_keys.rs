//! Access-token keys as hubs before the key file (`data_dir::KeyFile`) kept them.

use async_trait::async_trait;

use crate::error::Result;

/// An access-token encryption key as stored.
#[derive(Clone)]
pub struct TokenKeyRecord {
    /// PASERK id (`k4.lid.…`), also in every token's footer.
    pub id: String,
    /// The 32 key bytes.
    pub key_bytes: Vec<u8>,
    /// When it was made; the newest key that is not retired encrypts.
    pub created_at: i64,
    /// When a rotation retired it (Unix seconds): it then verifies only the tokens it made
    /// before, for at most one token lifetime more ([`crate::token::Keyring`]).
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for TokenKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeyRecord")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// The token-keys room. The keys live in their own file (`data_dir::KeyFile`); hubs before it
/// kept them here, and these methods exist to move such keys out, once.
#[async_trait]
pub trait TokenKeyStore: Send + Sync {
    /// Every access-token key an older hub kept in the store, newest first.
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>>;
    /// Stores an access-token key the way older hubs did. The hub never calls it; tests of
    /// the move to the key file do.
    async fn add_token_key(&self, key: &TokenKeyRecord) -> Result<()>;
    /// Removes every access-token key from the store so that no trace of one stays readable
    /// in its files (the key bytes are overwritten, not only unlinked).
    async fn forget_token_keys(&self) -> Result<()>;
}
