//! The node's identity: an ed25519 key that signs everything the node sends to peers and
//! clients (and that its attestation binds), and an X25519 key, derived from the same seed, to
//! which peers and clients seal private payloads. Created on first start, kept in the encrypted
//! store, the same on every restart.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hkdf::Hkdf;
use lit_crypto::seal::{SealPublicKey, SealSecretKey};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError, Table};

const SEED_KEY: &str = "identity/seed";
const SEAL_INFO: &[u8] = b"lit-node/identity/seal-key/v1";
const DKG_INFO: &[u8] = b"lit-node/identity/dkg-key/v1";

/// The node's secret identity. `Debug` prints only the public keys.
pub struct NodeIdentity {
    signing: SigningKey,
    seal: SealSecretKey,
    seal_public: SealPublicKey,
    dkg: k256::ecdsa::SigningKey,
}

/// Identity failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored seed has the wrong size.
    #[error("stored identity seed is corrupt")]
    CorruptSeed,
}

impl NodeIdentity {
    /// Loads the identity from the store, creating and persisting a new one on first start.
    pub fn load_or_create(store: &Store) -> Result<Self, IdentityError> {
        if let Some(seed) = store.get(Table::Meta, SEED_KEY)? {
            let seed: &[u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::CorruptSeed)?;
            return Ok(Self::from_seed(seed));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        store.put(Table::Meta, SEED_KEY, seed.as_ref())?;
        Ok(Self::from_seed(&seed))
    }

    /// The identity of a 32-byte seed (ed25519 secret key; the X25519 key is derived from it by
    /// HKDF-SHA256 with a fixed label).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let mut ikm = Zeroizing::new([0u8; 32]);
        // A 32-byte output is always within HKDF-SHA256's limit.
        let _ = Hkdf::<Sha256>::new(None, seed).expand(SEAL_INFO, ikm.as_mut());
        let (seal, seal_public) = SealSecretKey::derive(ikm.as_ref());
        Self {
            signing,
            seal,
            seal_public,
            dkg: derive_secp256k1(seed, DKG_INFO),
        }
    }

    /// The public signing key (32 bytes).
    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public sealing key.
    pub fn seal_public_key(&self) -> &SealPublicKey {
        &self.seal_public
    }

    /// The secret sealing key, to open what peers and clients sealed to this node.
    pub fn seal_key(&self) -> &SealSecretKey {
        &self.seal
    }

    /// The secp256k1 key that signs this node's DKG broadcasts (`lit_dkg` identity key).
    pub fn dkg_key(&self) -> &k256::ecdsa::SigningKey {
        &self.dkg
    }

    /// The node's TLS certificate: self-signed, of its identity key ([`lit_api::tls`]). The
    /// TLS 1.3 handshake signs with the identity key; its signed content begins with 64 spaces,
    /// never with a domain tag of [`NodeIdentity::sign`], so neither signature serves the other.
    pub fn tls_certificate(&self) -> Result<lit_api::tls::NodeCertificate, String> {
        let seed = Zeroizing::new(self.signing.to_bytes());
        lit_api::tls::NodeCertificate::new(&seed, &self.public_key().to_bytes())
            .map_err(|e| format!("TLS certificate: {e}"))
    }

    /// Signs `message` under a domain tag (so a signature for one purpose never serves another).
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Signature {
        self.signing.sign(&tagged(domain, message))
    }
}

/// The DKG key: HKDF-SHA256(seed, info ‖ counter) read as a secp256k1 scalar, taking the first
/// counter whose output is a valid non-zero scalar (all but a 2^-128 fraction of the first).
/// The node's staker account: the secp256k1 key that stakes, joins, leaves, votes and signals
/// on the chain. It lives in `staker.key` in the data directory (hex, owner-only permissions),
/// outside the store, so that the operator's commands (`lit-node stake`, `join`, `leave`,
/// `status`) work while the node runs; fund its [`StakerKey::address`] to run a node.
pub struct StakerKey(k256::ecdsa::SigningKey);

/// The staker key's file in the data directory.
pub const STAKER_KEY_FILE: &str = "staker.key";

impl StakerKey {
    /// Loads the data directory's staker key, creating it on first use.
    pub fn load_or_create(data_dir: &std::path::Path) -> Result<Self, std::io::Error> {
        let path = data_dir.join(STAKER_KEY_FILE);
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = Zeroizing::new(
                    hex::decode(text.trim()).map_err(|_| bad("staker.key is not hex"))?,
                );
                let key = k256::ecdsa::SigningKey::from_slice(&bytes)
                    .map_err(|_| bad("staker.key is not a secp256k1 key"))?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let key = k256::ecdsa::SigningKey::random(&mut OsRng);
                let text = Zeroizing::new(hex::encode(key.to_bytes()));
                let tmp = path.with_extension("tmp");
                {
                    use std::io::Write as _;
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create(true).truncate(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                    let mut file = options.open(&tmp)?;
                    file.write_all(text.as_bytes())?;
                    file.sync_all()?;
                }
                std::fs::rename(&tmp, &path)?;
                Ok(Self(key))
            }
            Err(e) => Err(e),
        }
    }

    /// The key.
    pub fn signing_key(&self) -> &k256::ecdsa::SigningKey {
        &self.0
    }

    /// The staker's address.
    pub fn address(&self) -> lit_crypto::eth::Address {
        lit_crypto::eth::Address::from_public_key(self.0.verifying_key())
    }
}

fn derive_secp256k1(seed: &[u8; 32], purpose: &[u8]) -> k256::ecdsa::SigningKey {
    let hk = Hkdf::<Sha256>::new(None, seed);
    let mut counter = 0u32;
    loop {
        let mut okm = Zeroizing::new([0u8; 32]);
        let mut info = purpose.to_vec();
        info.extend_from_slice(&counter.to_be_bytes());
        let _ = hk.expand(&info, okm.as_mut());
        if let Ok(key) = k256::ecdsa::SigningKey::from_slice(okm.as_ref()) {
            return key;
        }
        counter += 1;
    }
}

/// Verifies a signature made by [`NodeIdentity::sign`].
pub fn verify(
    key: &VerifyingKey,
    domain: &[u8],
    message: &[u8],
    signature: &Signature,
) -> Result<(), ed25519_dalek::SignatureError> {
    key.verify(&tagged(domain, message), signature)
}

fn tagged(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + domain.len() + message.len());
    out.extend_from_slice(&(domain.len() as u64).to_be_bytes());
    out.extend_from_slice(domain);
    out.extend_from_slice(message);
    out
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeIdentity(sign {}, seal {:?})",
            hex::encode(self.public_key().as_bytes()),
            self.seal_public
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyFile;

    #[test]
    fn identity_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyFile::new(dir.path().join("storage.key"));
        let db = dir.path().join("db.redb");
        let (pk, seal_pk) = {
            let store = Store::open(&db, &keys).unwrap();
            let id = NodeIdentity::load_or_create(&store).unwrap();
            (id.public_key(), id.seal_public_key().clone())
        };
        let store = Store::open(&db, &keys).unwrap();
        let again = NodeIdentity::load_or_create(&store).unwrap();
        assert_eq!(again.public_key(), pk);
        assert_eq!(again.seal_public_key(), &seal_pk);
    }

    #[test]
    fn signatures_are_domain_separated() {
        let id = NodeIdentity::from_seed(&[7u8; 32]);
        let sig = id.sign(b"peer", b"hello");
        verify(&id.public_key(), b"peer", b"hello", &sig).unwrap();
        assert!(verify(&id.public_key(), b"client", b"hello", &sig).is_err());
        assert!(verify(&id.public_key(), b"peer", b"hellO", &sig).is_err());
        // domain/message boundary cannot be shifted
        assert!(verify(&id.public_key(), b"pee", b"rhello", &sig).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let seed = [9u8; 32];
        let shown = format!("{:?}", NodeIdentity::from_seed(&seed));
        assert!(!shown.contains(&hex::encode(seed)));
    }
}
