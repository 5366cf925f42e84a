//! The token-keys room on PostgreSQL: the keys live in their file (`data_dir::KeyFile`); this
//! room exists so every backend answers the same trait, and holds nothing in practice.

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::Result;
use crate::store::rows::token_keys::KeyRow;
use crate::store::{TokenKeyRecord, TokenKeyStore};

#[async_trait]
impl TokenKeyStore for PostgresStore {
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, key_bytes, created_at FROM token_keys ORDER BY created_at DESC, seq DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TokenKeyRecord {
                id: r.id,
                key_bytes: r.key_bytes,
                created_at: r.created_at,
                retired_at: None,
            })
            .collect())
    }

    async fn add_token_key(&self, key: &TokenKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO token_keys (id, key_bytes, created_at) VALUES ($1, $2, $3)")
            .bind(&key.id)
            .bind(&key.key_bytes)
            .bind(key.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn forget_token_keys(&self) -> Result<()> {
        sqlx::query("DELETE FROM token_keys")
            .execute(&self.pool)
            .await?;
        // The table is rewritten without the dead rows (their bytes leave the live files;
        // the write-ahead log keeps them until its segments are recycled).
        sqlx::raw_sql("VACUUM FULL token_keys")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
