//! The node's embedded transactional store, encrypted at rest.
//!
//! One `redb` database file in the data directory holds everything the node must not lose: its
//! identity seed, its key shares per epoch, and (later) presignatures and protocol state. redb
//! commits are atomic and durable (copy-on-write B-trees with a checksummed commit slot), so a
//! crash leaves either the old or the new state, never a mix.
//!
//! Every value is sealed with ChaCha20-Poly1305 under the node's storage key, with a fresh random
//! nonce and the table and key as associated data: a value copied to another slot, a flipped bit
//! or a database opened with another key is refused ([`StoreError::Tampered`]) rather than
//! returned. The storage key comes from a [`StorageKeySource`]: on an SNP guest [`SealedKey`], a
//! key derived by the AMD secure processor and bound to the image's measurement and policy, of
//! which nothing is written to disk; on development networks [`KeyFile`], a key file in the data
//! directory.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use lit_attest::sealing::{GuestFields, KeyRequest, KeyRequester};
use lit_attest::AttestError;
use rand_core::{OsRng, RngCore};
use redb::{Database, ReadableTable, TableDefinition};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Names of the tables the node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Node metadata: identity seed, current epoch, network description.
    Meta,
    /// Key shares and public key material per epoch.
    Shares,
    /// Presignatures and triples (consumed exactly once).
    Presignatures,
    /// Lit Action code by content id (the action store).
    Actions,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Shares => "shares",
            Table::Presignatures => "presignatures",
            Table::Actions => "actions",
        }
    }

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("storage I/O: {0}")]
    Io(String),
    /// A stored value does not decrypt: tampered, moved, or a wrong storage key (on SNP: the
    /// store was sealed by another release, under another guest policy, or on another machine).
    #[error(
        "stored value {table}/{key} failed authentication (tampered, or wrong storage key: on \
         SNP, sealed by another release or on another machine)"
    )]
    Tampered {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
    },
    /// The storage key is unavailable: the key file is unreadable or of the wrong size, or the
    /// secure processor refused the key request.
    #[error("storage key: {0}")]
    Key(String),
}

macro_rules! io_err {
    ($e:expr) => {
        $e.map_err(|e| StoreError::Io(e.to_string()))
    };
}

/// Where the 256-bit storage key comes from.
pub trait StorageKeySource {
    /// The key; the same on every start of the same node.
    fn storage_key(&self) -> Result<Zeroizing<[u8; 32]>, StoreError>;
}

/// Development networks: a random key kept in a file (mode 0600) in the data directory, created
/// on first start. It protects against a copied database file, not against whoever can read the
/// data directory; on SNP hardware the key is derived by the secure processor instead.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    /// The key file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl StorageKeySource for KeyFile {
    fn storage_key(&self) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        match fs::read(&self.path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != 32 {
                    return Err(StoreError::Key(format!(
                        "{} holds {} bytes, expected 32",
                        self.path.display(),
                        bytes.len()
                    )));
                }
                key.copy_from_slice(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                OsRng.fill_bytes(key.as_mut());
                write_private_file(&self.path, key.as_ref())
                    .map_err(|e| StoreError::Key(format!("{}: {e}", self.path.display())))?;
            }
            Err(e) => return Err(StoreError::Key(format!("{}: {e}", self.path.display()))),
        }
        Ok(key)
    }
}

/// SEV-SNP guests: the storage key is derived by the AMD secure processor (`MSG_KEY_REQ`, see
/// [`lit_attest::sealing`]) on every start, and never written anywhere. The request is
/// [`SealedKey::REQUEST`]:
///
/// - **root key VCEK**: the chip's own key, so the store opens only on this machine;
/// - **`GUEST_FIELD_SELECT` = measurement + guest policy**: the key belongs to this image run
///   under this policy. Another release (another measurement), or the same image launched with
///   debugging allowed (another policy), derives another key and reads nothing;
/// - **VMPL 0**: only code at VMPL 0, where the node runs (the attestation policy requires it),
///   can request it;
/// - **not the guest SVN nor the TCB version.** Binding the TCB would make each firmware update
///   lock the node out of its store (the new TCB derives another key) unless the node kept asking
///   for the old TCB's key, which only defers the problem; binding the SVN does the same at each
///   release that raises it (and the measurement already names the release). The cost: a key
///   derived under a firmware later found vulnerable is the same key after the update, so a key
///   leaked through that flaw keeps opening the store. The network bounds this by refusing
///   vulnerable TCBs in its attestation policy (`MinTcb`) and by resharing every epoch, after
///   which old shares are worthless; to bind the TCB instead, select
///   [`GuestFields::TCB_VERSION`] and accept that a firmware update behaves like a release.
///
/// A new release therefore cannot read the previous release's store: an upgraded node is dealt
/// new shares at the next epoch (see `SECURITY.md`, "Sealed storage").
///
/// What is stored under this key is a further derivation (HKDF-SHA256 with a label), so that
/// another component asking the secure processor the same question never holds the store key.
pub struct SealedKey {
    requester: Box<dyn KeyRequester>,
}

/// HKDF label of the store key derived from the secure processor's key.
const SEALED_STORE_INFO: &[u8] = b"lit-node/store/sealed-storage-key/v1";

impl SealedKey {
    /// The key request: from the VCEK, measurement + guest policy, VMPL 0, SVN and TCB 0.
    pub const REQUEST: KeyRequest =
        KeyRequest::vcek(GuestFields::MEASUREMENT.union(GuestFields::GUEST_POLICY), 0);

    /// Storage keys from `requester` ([`lit_attest::SnpKeyRequester`] on hardware).
    pub fn new(requester: Box<dyn KeyRequester>) -> Self {
        Self { requester }
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedKey")
            .field("request", &Self::REQUEST)
            .finish_non_exhaustive()
    }
}

impl StorageKeySource for SealedKey {
    fn storage_key(&self) -> Result<Zeroizing<[u8; 32]>, StoreError> {
        let derived = self
            .requester
            .derived_key(&Self::REQUEST)
            .map_err(|e| match &e {
                AttestError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    StoreError::Key(format!(
                        "no AMD secure processor to derive the storage key from ({e}); sealed \
                     storage runs only inside an SEV-SNP guest"
                    ))
                }
                _ => StoreError::Key(format!("the secure processor refused the key request: {e}")),
            })?;
        let mut key = Zeroizing::new([0u8; 32]);
        // A 32-byte output is always within HKDF-SHA256's limit.
        let _ = Hkdf::<Sha256>::new(None, derived.as_ref()).expand(SEALED_STORE_INFO, key.as_mut());
        Ok(key)
    }
}

/// Writes a new file readable only by its owner, durably (data synced before returning).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The encrypted store.
pub struct Store {
    db: Database,
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Store(<encrypted>)")
    }
}

const NONCE_LEN: usize = 12;

impl Store {
    /// Opens (or creates) the database at `path` with the key from `keys`.
    pub fn open(path: &Path, keys: &dyn StorageKeySource) -> Result<Self, StoreError> {
        let key = keys.storage_key()?;
        let db = io_err!(Database::create(path))?;
        // create every table once so that readers never see "table does not exist"
        let tx = io_err!(db.begin_write())?;
        for table in [
            Table::Meta,
            Table::Shares,
            Table::Presignatures,
            Table::Actions,
        ] {
            io_err!(tx.open_table(table.definition()))?;
        }
        io_err!(tx.commit())?;
        Ok(Self {
            db,
            cipher: ChaCha20Poly1305::new(&Key::from(*key)),
        })
    }

    fn aad(table: Table, key: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(table.name().len() + key.len() + 1);
        aad.extend_from_slice(table.name().as_bytes());
        aad.push(0);
        aad.extend_from_slice(key.as_bytes());
        aad
    }

    fn seal(&self, table: Table, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(table, key);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Io("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_value(
        &self,
        table: Table,
        key: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let tampered = || StoreError::Tampered {
            table: table.name(),
            key: key.to_string(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
        let aad = Self::aad(table, key);
        self.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }

    /// Stores `value` under `table/key`, durably, replacing any previous value.
    pub fn put(&self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_many(table, &[(key, value)])
    }

    /// Stores several values in one atomic transaction.
    pub fn put_many(&self, table: Table, entries: &[(&str, &[u8])]) -> Result<(), StoreError> {
        let sealed = entries
            .iter()
            .map(|(k, v)| Ok((*k, self.seal(table, k, v)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let tx = io_err!(self.db.begin_write())?;
        {
            let mut t = io_err!(tx.open_table(table.definition()))?;
            for (k, v) in &sealed {
                io_err!(t.insert(*k, v.as_slice()))?;
            }
        }
        io_err!(tx.commit())
    }

    /// Stores values in several tables in one atomic transaction.
    pub fn put_batch(&self, entries: &[(Table, &str, &[u8])]) -> Result<(), StoreError> {
        let sealed = entries
            .iter()
            .map(|(t, k, v)| Ok((*t, *k, self.seal(*t, k, v)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let tx = io_err!(self.db.begin_write())?;
        for (table, k, v) in &sealed {
            let mut t = io_err!(tx.open_table(table.definition()))?;
            io_err!(t.insert(*k, v.as_slice()))?;
        }
        io_err!(tx.commit())
    }

    /// Removes `table/key` if present.
    pub fn remove(&self, table: Table, key: &str) -> Result<(), StoreError> {
        let tx = io_err!(self.db.begin_write())?;
        {
            let mut t = io_err!(tx.open_table(table.definition()))?;
            io_err!(t.remove(key))?;
        }
        io_err!(tx.commit())
    }

    /// Stores `value` under `table/key` only if the key is absent, durably, in one
    /// transaction; returns whether it was stored. (How a node records a presignature as used.)
    pub fn insert_new(&self, table: Table, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let sealed = self.seal(table, key, value)?;
        let tx = io_err!(self.db.begin_write())?;
        {
            let mut t = io_err!(tx.open_table(table.definition()))?;
            if io_err!(t.get(key))?.is_some() {
                return Ok(false);
            }
            io_err!(t.insert(key, sealed.as_slice()))?;
        }
        io_err!(tx.commit())?;
        Ok(true)
    }

    /// The value under `table/key`, if any.
    pub fn get(&self, table: Table, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let tx = io_err!(self.db.begin_read())?;
        let t = io_err!(tx.open_table(table.definition()))?;
        match io_err!(t.get(key))? {
            Some(v) => self.open_value(table, key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Removes `table/key` and returns its value, durably, in one transaction: once this returns
    /// the value is gone from disk even if the node crashes right after. This is how a
    /// presignature is consumed before its share leaves the node.
    pub fn take(&self, table: Table, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let tx = io_err!(self.db.begin_write())?;
        let sealed = {
            let mut t = io_err!(tx.open_table(table.definition()))?;
            let removed = io_err!(t.remove(key))?;
            removed.map(|v| v.value().to_vec())
        };
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let value = self.open_value(table, key, &sealed)?;
        io_err!(tx.commit())?;
        Ok(Some(value))
    }

    /// The keys of `table` that start with `prefix`, in order.
    pub fn keys(&self, table: Table, prefix: &str) -> Result<Vec<String>, StoreError> {
        let tx = io_err!(self.db.begin_read())?;
        let t = io_err!(tx.open_table(table.definition()))?;
        let mut out = Vec::new();
        for entry in io_err!(t.range(prefix..))? {
            let (k, _) = io_err!(entry)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            out.push(k.to_string());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lit_attest::sealing::{FakeKeyDevice, LaunchFacts};

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn values_survive_reopen_and_take_is_once() {
        let dir = temp();
        let keys = KeyFile::new(dir.path().join("storage.key"));
        {
            let store = Store::open(&dir.path().join("db.redb"), &keys).unwrap();
            store.put(Table::Shares, "epoch/1/bls", b"share-1").unwrap();
            store
                .put_many(
                    Table::Presignatures,
                    &[("p/1", b"one".as_slice()), ("p/2", b"two".as_slice())],
                )
                .unwrap();
        }
        let store = Store::open(&dir.path().join("db.redb"), &keys).unwrap();
        assert_eq!(
            store
                .get(Table::Shares, "epoch/1/bls")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"share-1"
        );
        assert_eq!(
            store.keys(Table::Presignatures, "p/").unwrap(),
            ["p/1", "p/2"]
        );
        assert_eq!(
            store
                .take(Table::Presignatures, "p/1")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"one"
        );
        assert!(store.take(Table::Presignatures, "p/1").unwrap().is_none());
        assert!(store.get(Table::Meta, "missing").unwrap().is_none());
    }

    #[test]
    fn values_are_encrypted_on_disk() {
        let dir = temp();
        let keys = KeyFile::new(dir.path().join("storage.key"));
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, &keys).unwrap();
        let secret = b"a very recognisable secret share value";
        store.put(Table::Shares, "s", secret).unwrap();
        drop(store);
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(secret.len()).any(|w| w == secret));
    }

    #[test]
    fn wrong_key_and_moved_values_are_refused() {
        let dir = temp();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, &KeyFile::new(dir.path().join("k1"))).unwrap();
        store.put(Table::Shares, "a", b"value").unwrap();
        // copy the sealed bytes of `a` to slot `b`: must not open there
        let raw = {
            let tx = store.db.begin_read().unwrap();
            let t = tx.open_table(Table::Shares.definition()).unwrap();
            let v = t.get("a").unwrap().unwrap().value().to_vec();
            v
        };
        {
            let tx = store.db.begin_write().unwrap();
            {
                let mut t = tx.open_table(Table::Shares.definition()).unwrap();
                t.insert("b", raw.as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        assert!(matches!(
            store.get(Table::Shares, "b"),
            Err(StoreError::Tampered { .. })
        ));
        drop(store);
        let other = Store::open(&path, &KeyFile::new(dir.path().join("k2"))).unwrap();
        assert!(matches!(
            other.get(Table::Shares, "a"),
            Err(StoreError::Tampered { .. })
        ));
    }

    fn sealed(device: &FakeKeyDevice, measurement: u8) -> SealedKey {
        SealedKey::new(Box::new(
            device.relaunch(LaunchFacts::new([measurement; 48])),
        ))
    }

    const VALUES: [(Table, &str, &[u8]); 3] = [
        (Table::Meta, "identity/seed", b"seed"),
        (Table::Shares, "epoch/1/bls", b"share-1"),
        (Table::Presignatures, "p/1", b"presignature"),
    ];

    fn assert_all_tampered(store: &Store) {
        for (table, key, _) in VALUES {
            assert!(
                matches!(store.get(table, key), Err(StoreError::Tampered { .. })),
                "{key}"
            );
        }
    }

    #[test]
    fn a_sealed_store_opens_under_its_image_only_and_leaves_no_key_on_disk() {
        let dir = temp();
        let path = dir.path().join("node.redb");
        let chip = FakeKeyDevice::new([0x5e; 32], LaunchFacts::new([0xa; 48]));
        {
            let store = Store::open(&path, &sealed(&chip, 0xa)).unwrap();
            store.put_batch(&VALUES).unwrap();
        }
        // nothing but the database in the data directory
        let files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["node.redb"]);

        // the same chip and image reopen it, again and again
        for _ in 0..2 {
            let store = Store::open(&path, &sealed(&chip, 0xa)).unwrap();
            for (table, key, value) in VALUES {
                assert_eq!(store.get(table, key).unwrap().unwrap().as_slice(), value);
            }
        }
        // another image (measurement B) on the same chip reads nothing
        assert_all_tampered(&Store::open(&path, &sealed(&chip, 0xb)).unwrap());
        // the same image under another policy (debug allowed) reads nothing
        let mut debug = LaunchFacts::new([0xa; 48]);
        debug.guest_policy |= 1 << 19;
        assert_all_tampered(
            &Store::open(&path, &SealedKey::new(Box::new(chip.relaunch(debug)))).unwrap(),
        );
        // the same image on another chip reads nothing
        let other_chip = FakeKeyDevice::new([0x77; 32], LaunchFacts::new([0xa; 48]));
        assert_all_tampered(&Store::open(&path, &SealedKey::new(Box::new(other_chip))).unwrap());
        // a firmware update (committed TCB) or a higher guest SVN do not lock the node out
        let mut updated = LaunchFacts::new([0xa; 48]);
        updated.committed_tcb = u64::from_le_bytes([3, 0, 0, 0, 0, 0, 8, 115]);
        updated.guest_svn = 4;
        let store = Store::open(&path, &SealedKey::new(Box::new(chip.relaunch(updated)))).unwrap();
        assert_eq!(
            store
                .get(Table::Shares, "epoch/1/bls")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"share-1"
        );
        drop(store);

        // what a host that reads the data directory can do: open it with a key of its own
        // (`KeyFile` makes one): every value is refused, none returned
        let host = KeyFile::new(dir.path().join("host.key"));
        assert_all_tampered(&Store::open(&path, &host).unwrap());
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(7).any(|w| w == b"share-1"));
    }

    #[test]
    fn a_refused_key_request_is_a_clear_error() {
        let dir = temp();
        // the node runs at VMPL 1 (e.g. under an SVSM): a VMPL 0 key is not for it
        let device = FakeKeyDevice::new([1; 32], LaunchFacts::new([0xa; 48])).with_vmpl(1);
        let err = Store::open(
            &dir.path().join("node.redb"),
            &SealedKey::new(Box::new(device)),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Key(_)), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("the secure processor refused the key request")
                && shown.contains("VMPL"),
            "{shown}"
        );
        assert!(!dir.path().join("node.redb").exists());

        // off SNP hardware the real requester says so
        if !std::path::Path::new("/dev/sev-guest").exists() {
            let err = SealedKey::new(Box::new(lit_attest::SnpKeyRequester::new()))
                .storage_key()
                .unwrap_err();
            assert!(
                err.to_string().contains("only inside an SEV-SNP guest"),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_key_file_is_a_clear_error() {
        let dir = temp();
        let path = dir.path().join("short.key");
        fs::write(&path, [1u8; 5]).unwrap();
        let err = KeyFile::new(&path).storage_key().unwrap_err();
        assert!(err.to_string().contains("expected 32"), "{err}");
    }
}
