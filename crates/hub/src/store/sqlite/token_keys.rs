//! The token-keys room on SQLite: keys older hubs kept here, read once and then wiped.

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::Result;
use crate::store::rows::token_keys::KeyRow;
use crate::store::{TokenKeyRecord, TokenKeyStore};

#[async_trait]
impl TokenKeyStore for SqliteStore {
    async fn token_keys(&self) -> Result<Vec<TokenKeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, key_bytes, created_at FROM token_keys ORDER BY created_at DESC, rowid DESC",
        )
        .fetch_all(&self.reader)
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
        sqlx::query("INSERT INTO token_keys (id, key_bytes, created_at) VALUES (?, ?, ?)")
            .bind(&key.id)
            .bind(&key.key_bytes)
            .bind(key.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn forget_token_keys(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        // Deleted rows are zeroed in place, the file is rebuilt without free pages that might
        // still hold old bytes, and the WAL (which held the pages before) is emptied.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM token_keys")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
