//! Where the network's shared state lives: PKP ownership and permissions.
//!
//! Every node must read the same records, so they cannot live in a node's own store. The
//! [`PkpRegistry`] trait hides the backend: development networks use [`SqliteRegistry`], one
//! SQLite file next to the network file that every node of the devnet opens (SQLite's file
//! locking serialises writers across processes; WAL mode lets readers proceed); a production
//! network would implement the trait over its EVM contracts (JSON-RPC), as Lit does.
//!
//! A node never trusts a record's public key: it re-derives it from the root key and the
//! record's `key_id` before signing.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use lit_crypto::eth::Address;
use rusqlite::{params, Connection, OptionalExtension};

pub use lit_api::v1::{
    PermittedAuthMethod, PkpInfo as PkpRecord, PkpPermissions as Permissions, PkpScope as Scope,
};

/// Registry failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The backend failed.
    #[error("registry: {0}")]
    Backend(String),
    /// A record with this token id exists already.
    #[error("PKP {0} exists already")]
    Exists(String),
    /// No such PKP.
    #[error("no PKP {0}")]
    NotFound(String),
    /// A stored record does not decode.
    #[error("registry record {0} is corrupt")]
    Corrupt(String),
}

/// PKP ownership and permissions, shared by all nodes.
pub trait PkpRegistry: Send + Sync {
    /// Records a new PKP.
    fn insert(&self, record: &PkpRecord) -> Result<(), ChainError>;
    /// The PKP with `token_id` (hex), if any.
    fn get(&self, token_id: &str) -> Result<Option<PkpRecord>, ChainError>;
    /// Replaces the permissions of `token_id` with `f(current)`, atomically; returns the record.
    fn update_permissions(
        &self,
        token_id: &str,
        f: &mut dyn FnMut(&mut Permissions),
    ) -> Result<PkpRecord, ChainError>;
    /// The PKPs of `owner`.
    fn by_owner(&self, owner: &Address) -> Result<Vec<PkpRecord>, ChainError>;
}

/// The development registry: one SQLite file shared by the nodes of a devnet.
#[derive(Debug)]
pub struct SqliteRegistry {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> ChainError {
    ChainError::Backend(e.to_string())
}

impl SqliteRegistry {
    /// Opens (creating if needed) the registry file.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS pkps (
                token_id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS pkps_owner ON pkps(owner);",
        )
        .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn decode(token_id: &str, text: &str) -> Result<PkpRecord, ChainError> {
    serde_json::from_str(text).map_err(|_| ChainError::Corrupt(token_id.to_string()))
}

impl PkpRegistry for SqliteRegistry {
    fn insert(&self, record: &PkpRecord) -> Result<(), ChainError> {
        let text = serde_json::to_string(record).map_err(|e| ChainError::Backend(e.to_string()))?;
        let changed = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO pkps (token_id, owner, record) VALUES (?1, ?2, ?3)",
                params![hex::encode(record.token_id.0), record.owner, text],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(ChainError::Exists(hex::encode(record.token_id.0)));
        }
        Ok(())
    }

    fn get(&self, token_id: &str) -> Result<Option<PkpRecord>, ChainError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT record FROM pkps WHERE token_id = ?1",
                params![token_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        text.map(|t| decode(token_id, &t)).transpose()
    }

    fn update_permissions(
        &self,
        token_id: &str,
        f: &mut dyn FnMut(&mut Permissions),
    ) -> Result<PkpRecord, ChainError> {
        let mut conn = self.conn();
        // IMMEDIATE: take the write lock before reading, so concurrent updates from other
        // nodes serialise instead of overwriting each other
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let text: Option<String> = tx
            .query_row(
                "SELECT record FROM pkps WHERE token_id = ?1",
                params![token_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        let mut record = match text {
            Some(t) => decode(token_id, &t)?,
            None => return Err(ChainError::NotFound(token_id.to_string())),
        };
        f(&mut record.permissions);
        let text =
            serde_json::to_string(&record).map_err(|e| ChainError::Backend(e.to_string()))?;
        tx.execute(
            "UPDATE pkps SET record = ?2 WHERE token_id = ?1",
            params![token_id, text],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(record)
    }

    fn by_owner(&self, owner: &Address) -> Result<Vec<PkpRecord>, ChainError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT token_id, record FROM pkps WHERE owner = ?1 ORDER BY token_id")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![owner.to_checksum()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row.map_err(backend)?;
            out.push(decode(&id, &text)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8, owner: Address) -> PkpRecord {
        PkpRecord {
            token_id: lit_api::Bytes32([n; 32]),
            key_id: lit_api::Bytes32([n; 32]),
            public_key: lit_api::Bytes(vec![2; 33]),
            eth_address: Address([n; 20]).to_checksum(),
            owner: owner.to_checksum(),
            permissions: Permissions::default(),
        }
    }

    #[test]
    fn two_handles_on_one_file_see_each_other_and_updates_serialise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let a = SqliteRegistry::open(&path).unwrap();
        let b = SqliteRegistry::open(&path).unwrap();
        let owner = Address([9; 20]);
        a.insert(&record(1, owner)).unwrap();
        assert!(matches!(
            a.insert(&record(1, owner)),
            Err(ChainError::Exists(_))
        ));
        assert_eq!(
            b.get(&hex::encode([1u8; 32])).unwrap().unwrap().owner,
            owner.to_checksum()
        );
        assert!(b.get(&hex::encode([2u8; 32])).unwrap().is_none());
        // concurrent permission updates from two handles (two node processes) all land
        std::thread::scope(|s| {
            for (h, base) in [(&a, 0u8), (&b, 100u8)] {
                s.spawn(move || {
                    for i in 0..20u8 {
                        h.update_permissions(&hex::encode([1u8; 32]), &mut |p| {
                            p.addresses.insert(Address([base + i; 20]).to_checksum());
                        })
                        .unwrap();
                    }
                });
            }
        });
        let got = a.get(&hex::encode([1u8; 32])).unwrap().unwrap();
        assert_eq!(got.permissions.addresses.len(), 40);
        assert!(matches!(
            a.update_permissions("nope", &mut |_| {}),
            Err(ChainError::NotFound(_))
        ));
        a.insert(&record(3, owner)).unwrap();
        assert_eq!(b.by_owner(&owner).unwrap().len(), 2);
        assert!(b.by_owner(&Address([8; 20])).unwrap().is_empty());
    }
}
