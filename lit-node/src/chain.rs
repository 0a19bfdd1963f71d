//! Where the network's shared state lives: PKP ownership and permissions (and, with them, the
//! approvals used and each owner's mints of the last hour for the
//! mint quota, see `service::quota`).
//!
//! Every node must read the same records, so they cannot live in a node's own store. The
//! [`PkpRegistry`] trait hides the backend: development networks use [`SqliteRegistry`], one
//! SQLite file next to the network file that every node of the devnet opens (SQLite's file
//! locking serialises writers across processes; WAL mode lets readers proceed); a production
//! network would implement the trait over its EVM contracts (JSON-RPC), as Lit does.
//!
//! A node never trusts a record's public key: it re-derives it from the root key and the
//! record's `key_id` before signing.

pub mod embedded;
pub mod evm;
pub mod evm_payments;
pub mod evm_registry;
pub mod evm_releases;
mod ledger_book;
pub mod payments;
pub mod releases;
pub mod staking;

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
    /// The contract refused the call; the reason is the contract's revert string
    /// (`contracts/SPEC.md`), the same on every backend.
    #[error("refused by the chain: {0}")]
    Refused(String),
    /// A record with this token id exists already.
    #[error("PKP {0} exists already")]
    Exists(String),
    /// No such PKP.
    #[error("no PKP {0}")]
    NotFound(String),
    /// A stored record does not decode.
    #[error("registry record {0} is corrupt")]
    Corrupt(String),
    /// The owner approval's nonce was used before: an approval takes effect once.
    #[error("this approval was already used")]
    ApprovalUsed,
    /// On this network the owner mints PKPs and changes their permissions with its own
    /// transactions to the registry contract; no node does it for anyone.
    #[error(
        "on this network the owner mints PKPs and changes their permissions with its own \
         transactions to the PkpRegistry contract at {contract}; nodes only read it"
    )]
    OwnerTransactions {
        /// The contract (EIP-55).
        contract: String,
    },
    /// The owner minted as many PKPs in the last hour as the quota allows.
    #[error("{owner} minted {limit} PKPs in the last hour")]
    MintQuota {
        /// The owner (EIP-55).
        owner: String,
        /// Mints per owner and hour.
        limit: u32,
        /// When the oldest of those mints leaves the hour (Unix seconds): the next is possible.
        resets_at: i64,
    },
}

/// How long mints count against their owner's quota: an hour (`quotas.mints_per_hour`).
pub const MINT_QUOTA_WINDOW_SECS: i64 = 3600;

/// An owner's approval the registry records with the action it approves, so that it takes
/// effect once across every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// Who approved (EIP-55).
    pub signer: String,
    /// The approval's nonce.
    pub nonce: [u8; 32],
    /// When it ends (Unix seconds); its record may be forgotten after that.
    pub expires: i64,
}

/// PKP ownership and permissions, shared by all nodes.
pub trait PkpRegistry: Send + Sync {
    /// Records a new PKP and the owner's approval of the mint, atomically, unless the owner
    /// minted `mints_per_hour` PKPs in the last [`MINT_QUOTA_WINDOW_SECS`] across the network
    /// ([`ChainError::MintQuota`]: nothing is recorded, the approval stays unused).
    fn insert(
        &self,
        record: &PkpRecord,
        approval: &Approval,
        mints_per_hour: u32,
    ) -> Result<(), ChainError>;
    /// The PKP with `token_id` (hex), if any.
    fn get(&self, token_id: &str) -> Result<Option<PkpRecord>, ChainError>;
    /// Replaces the permissions of `token_id` with `f(current)` and records the approval,
    /// atomically; returns the record.
    fn update_permissions(
        &self,
        token_id: &str,
        approval: &Approval,
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

/// Opens an SQLite file that the processes of a devnet share: writers wait for each other (up
/// to 10 s), and readers proceed while one writes (WAL).
pub(crate) fn open_shared(path: &Path) -> Result<Connection, ChainError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(backend)?;
    Ok(conn)
}

/// Runs `f` again while SQLite answers "database is locked" without waiting, for up to 10 s.
/// SQLite skips the busy handler where waiting could deadlock: switching a file that other
/// processes are opening at the same moment to WAL, or a schema statement whose read lock must
/// become a write lock while another process writes (several nodes of a devnet starting at once).
pub(crate) fn retry_busy<T>(
    mut f: impl FnMut() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl SqliteRegistry {
    /// Opens (creating if needed) the registry file.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let conn = open_shared(path)?;
        retry_busy(|| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS pkps (
                token_id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS pkps_owner ON pkps(owner);
            CREATE TABLE IF NOT EXISTS approvals (
                signer TEXT NOT NULL,
                nonce TEXT NOT NULL,
                expires INTEGER NOT NULL,
                PRIMARY KEY (signer, nonce)
            );
            CREATE INDEX IF NOT EXISTS approvals_expires ON approvals(expires);
            CREATE TABLE IF NOT EXISTS mints (
                owner TEXT NOT NULL,
                at INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS mints_owner_at ON mints(owner, at);
            CREATE INDEX IF NOT EXISTS mints_at ON mints(at);",
            )
        })
        .map_err(backend)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`PkpRegistry::insert`] at time `now` (Unix seconds).
    fn insert_at(
        &self,
        record: &PkpRecord,
        approval: &Approval,
        mints_per_hour: u32,
        now: i64,
    ) -> Result<(), ChainError> {
        let text = serde_json::to_string(record).map_err(|e| ChainError::Backend(e.to_string()))?;
        let mut conn = self.conn();
        // IMMEDIATE: the count and the insert see no other node's mint in between
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        record_approval(&tx, approval)?;
        count_mint(&tx, &record.owner, mints_per_hour, now)?;
        let changed = tx
            .execute(
                "INSERT OR IGNORE INTO pkps (token_id, owner, record) VALUES (?1, ?2, ?3)",
                params![hex::encode(record.token_id.0), record.owner, text],
            )
            .map_err(backend)?;
        if changed == 0 {
            return Err(ChainError::Exists(hex::encode(record.token_id.0)));
        }
        tx.commit().map_err(backend)?;
        Ok(())
    }
}

/// Counts a mint by `owner` at `now` inside `tx`, refusing it when the owner has `limit` mints
/// in the window ending at `now`; forgets the mints that left every window. The table holds one
/// row per mint of the last hour (the `pkps` table keeps every PKP anyway).
fn count_mint(
    tx: &rusqlite::Transaction<'_>,
    owner: &str,
    limit: u32,
    now: i64,
) -> Result<(), ChainError> {
    let since = now - MINT_QUOTA_WINDOW_SECS;
    tx.execute("DELETE FROM mints WHERE at <= ?1", params![since])
        .map_err(backend)?;
    let (count, oldest): (i64, Option<i64>) = tx
        .query_row(
            "SELECT COUNT(*), MIN(at) FROM mints WHERE owner = ?1 AND at > ?2",
            params![owner, since],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(backend)?;
    if count >= i64::from(limit) {
        return Err(ChainError::MintQuota {
            owner: owner.to_string(),
            limit,
            resets_at: oldest.unwrap_or(now) + MINT_QUOTA_WINDOW_SECS,
        });
    }
    tx.execute(
        "INSERT INTO mints (owner, at) VALUES (?1, ?2)",
        params![owner, now],
    )
    .map_err(backend)?;
    Ok(())
}

/// Records `approval` inside `tx`; refuses one recorded before, and forgets expired ones.
fn record_approval(tx: &rusqlite::Transaction<'_>, approval: &Approval) -> Result<(), ChainError> {
    // an approval past its expiry is refused by every node before it gets here, so its record
    // is no longer needed (a minute of slack for clocks)
    tx.execute(
        "DELETE FROM approvals WHERE expires < ?1",
        params![now_unix() - 60],
    )
    .map_err(backend)?;
    let inserted = tx
        .execute(
            "INSERT OR IGNORE INTO approvals (signer, nonce, expires) VALUES (?1, ?2, ?3)",
            params![
                approval.signer,
                hex::encode(approval.nonce),
                approval.expires
            ],
        )
        .map_err(backend)?;
    if inserted == 0 {
        return Err(ChainError::ApprovalUsed);
    }
    Ok(())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn decode(token_id: &str, text: &str) -> Result<PkpRecord, ChainError> {
    serde_json::from_str(text).map_err(|_| ChainError::Corrupt(token_id.to_string()))
}

impl PkpRegistry for SqliteRegistry {
    fn insert(
        &self,
        record: &PkpRecord,
        approval: &Approval,
        mints_per_hour: u32,
    ) -> Result<(), ChainError> {
        self.insert_at(record, approval, mints_per_hour, now_unix())
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
        approval: &Approval,
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
        record_approval(&tx, approval)?;
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

    /// Nodes of a devnet open the shared files at the same moment: none is refused "database
    /// is locked" (SQLite does not wait there by itself).
    #[test]
    fn many_processes_opening_a_new_shared_file_at_once_all_succeed() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("registry-{round}.sqlite"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteRegistry::open(&path).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        }
    }

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

    fn approval(n: u64) -> Approval {
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        Approval {
            signer: Address([9; 20]).to_checksum(),
            nonce,
            expires: now_unix() + 600,
        }
    }

    #[test]
    fn an_approval_takes_effect_once_across_handles_and_expired_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let (a, b) = (
            SqliteRegistry::open(&path).unwrap(),
            SqliteRegistry::open(&path).unwrap(),
        );
        let owner = Address([9; 20]);
        a.insert(&record(1, owner), &approval(1), 100).unwrap();
        // the mint's approval again (another token): refused, and nothing was inserted
        assert!(matches!(
            b.insert(&record(2, owner), &approval(1), 100),
            Err(ChainError::ApprovalUsed)
        ));
        assert!(a.get(&hex::encode([2u8; 32])).unwrap().is_none());
        let token = hex::encode([1u8; 32]);
        b.update_permissions(&token, &approval(2), &mut |p| {
            p.addresses.insert("0xA".into());
        })
        .unwrap();
        let replay = a.update_permissions(&token, &approval(2), &mut |p| {
            p.addresses.insert("0xB".into());
        });
        assert!(matches!(replay, Err(ChainError::ApprovalUsed)));
        let got = a.get(&token).unwrap().unwrap();
        assert_eq!(got.permissions.addresses.len(), 1);
        // the same nonce from another signer is another approval
        let other = Approval {
            signer: Address([8; 20]).to_checksum(),
            ..approval(2)
        };
        a.update_permissions(&token, &other, &mut |_| {}).unwrap();
        // records of approvals long expired are dropped by the next write
        let old = Approval {
            expires: now_unix() - 3600,
            ..approval(3)
        };
        a.update_permissions(&token, &old, &mut |_| {}).unwrap();
        a.update_permissions(&token, &approval(4), &mut |_| {})
            .unwrap();
        let left: i64 = a
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM approvals WHERE nonce = ?1",
                params![hex::encode(old.nonce)],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn mints_per_owner_are_capped_across_handles_in_a_sliding_hour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let (a, b) = (
            SqliteRegistry::open(&path).unwrap(),
            SqliteRegistry::open(&path).unwrap(),
        );
        let (alice, bob) = (Address([9; 20]), Address([8; 20]));
        let t0 = now_unix();
        // two mints at two nodes (handles) fill alice's quota of two
        a.insert_at(&record(1, alice), &approval(1), 2, t0).unwrap();
        b.insert_at(&record(2, alice), &approval(2), 2, t0 + 10)
            .unwrap();
        let refused = a.insert_at(&record(3, alice), &approval(3), 2, t0 + 20);
        match refused {
            Err(ChainError::MintQuota {
                owner,
                limit,
                resets_at,
            }) => {
                assert_eq!(owner, alice.to_checksum());
                assert_eq!((limit, resets_at), (2, t0 + MINT_QUOTA_WINDOW_SECS));
            }
            other => panic!("{other:?}"),
        }
        // nothing of the refused mint was recorded: no PKP, and its approval is still unused
        assert!(a.get(&hex::encode([3u8; 32])).unwrap().is_none());
        // bob is counted on his own
        b.insert_at(&record(4, bob), &approval(4), 2, t0 + 20)
            .unwrap();
        // the first mint leaves the hour at t0 + 3600: one more, then refused until t0 + 3610
        assert!(b
            .insert_at(&record(3, alice), &approval(3), 2, t0 + 3599)
            .is_err());
        b.insert_at(&record(3, alice), &approval(3), 2, t0 + 3600)
            .unwrap();
        assert!(matches!(
            a.insert_at(&record(5, alice), &approval(5), 2, t0 + 3601),
            Err(ChainError::MintQuota { resets_at, .. }) if resets_at == t0 + 3610
        ));
        // a node with a larger quota counts the same mints
        a.insert_at(&record(5, alice), &approval(5), 3, t0 + 3601)
            .unwrap();
        // rows that left the hour are forgotten by the next mint
        a.insert_at(&record(6, bob), &approval(6), 2, t0 + 10_000)
            .unwrap();
        let rows: i64 = a
            .conn()
            .query_row("SELECT COUNT(*) FROM mints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        assert_eq!(a.by_owner(&alice).unwrap().len(), 4);
    }

    #[test]
    fn two_handles_on_one_file_see_each_other_and_updates_serialise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let a = SqliteRegistry::open(&path).unwrap();
        let b = SqliteRegistry::open(&path).unwrap();
        let owner = Address([9; 20]);
        a.insert(&record(1, owner), &approval(1), 100).unwrap();
        assert!(matches!(
            a.insert(&record(1, owner), &approval(2), 100),
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
                        let n = 1000 + u64::from(base) + u64::from(i);
                        h.update_permissions(&hex::encode([1u8; 32]), &approval(n), &mut |p| {
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
            a.update_permissions("nope", &approval(5), &mut |_| {}),
            Err(ChainError::NotFound(_))
        ));
        a.insert(&record(3, owner), &approval(6), 100).unwrap();
        assert_eq!(b.by_owner(&owner).unwrap().len(), 2);
        assert!(b.by_owner(&Address([8; 20])).unwrap().is_empty());
    }
}
