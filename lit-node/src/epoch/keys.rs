//! The node's key shares for the current epoch: its share of the network BLS key (encryption,
//! network signatures) and of the secp256k1 root key (PKPs), with their public key sets.
//!
//! Shares are written to the encrypted store in one transaction together with the epoch marker,
//! so after a crash a node holds either the complete result of a DKG or none of it.

use ff::PrimeField;
use lit_crypto::bls;
use lit_crypto::ecdsa;
use lit_crypto::shamir::{Commitment, SecretShare};
use lit_crypto::PartyId;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError, Table};

const CURRENT: &str = "current-epoch";

/// Key-share failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored key material does not decode or is inconsistent.
    #[error("stored key material is corrupt: {0}")]
    Corrupt(String),
    /// A DKG output is unusable (e.g. no share for this node).
    #[error("unusable key material: {0}")]
    Invalid(String),
}

/// The shares a node serves with.
#[derive(Clone, Debug)]
pub struct NodeKeys {
    /// The epoch the shares belong to.
    pub epoch: u64,
    /// This node's BLS key share.
    pub bls: bls::KeyShare,
    /// The BLS public key set (every node's public key share follows from it).
    pub bls_set: bls::PublicKeySet,
    /// This node's share of the secp256k1 root key.
    pub ecdsa: ecdsa::KeyShare,
}

impl NodeKeys {
    /// Builds the keys from the two DKG outputs.
    pub fn from_dkg(
        epoch: u64,
        bls_out: &lit_dkg::KeyGenOutput<blstrs::G1Projective>,
        ecdsa_out: &lit_dkg::KeyGenOutput<k256::ProjectivePoint>,
    ) -> Result<Self, KeysError> {
        let bls_share = bls_out
            .share
            .as_ref()
            .ok_or_else(|| KeysError::Invalid("no BLS share for this node".into()))?;
        let ecdsa_share = ecdsa_out
            .share
            .as_ref()
            .ok_or_else(|| KeysError::Invalid("no secp256k1 share for this node".into()))?;
        let participants: Vec<PartyId> = bls_out.public.shares.keys().copied().collect();
        let commitment = Commitment::from_points(bls_out.public.commitment.clone())
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
        let bls_set = bls::PublicKeySet::new(commitment, &participants)
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
        let bls = bls::KeyShare::new(bls_share.secret.clone(), &bls_set)
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
        let ecdsa_commitment = Commitment::from_points(ecdsa_out.public.commitment.clone())
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
        let ecdsa = ecdsa::KeyShare::new(&ecdsa_share.secret, ecdsa_commitment)
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
        Ok(Self {
            epoch,
            bls,
            bls_set,
            ecdsa,
        })
    }

    /// Persists the keys and makes their epoch current, atomically.
    pub fn save(&self, store: &Store) -> Result<(), KeysError> {
        self.write(store, true)
    }

    /// Persists the keys of an epoch that is not current yet (the result of a handover, before
    /// the chain advances); [`NodeKeys::make_current`] switches to them.
    pub fn save_pending(&self, store: &Store) -> Result<(), KeysError> {
        self.write(store, false)
    }

    /// Makes the stored keys of `epoch` current.
    pub fn make_current(store: &Store, epoch: u64) -> Result<(), KeysError> {
        store.put(Table::Shares, CURRENT, &epoch.to_be_bytes())?;
        Ok(())
    }

    /// Erases the shares of `epoch` (after its grace period, or on leaving the network).
    pub fn erase(store: &Store, epoch: u64) -> Result<(), KeysError> {
        for name in ["bls-share", "bls-set", "ecdsa-share"] {
            store.remove(Table::Shares, &format!("epoch/{epoch}/{name}"))?;
        }
        Ok(())
    }

    /// The epochs whose shares are stored.
    pub fn stored_epochs(store: &Store) -> Result<Vec<u64>, KeysError> {
        let mut epochs: Vec<u64> = store
            .keys(Table::Shares, "epoch/")?
            .iter()
            .filter_map(|k| k.strip_prefix("epoch/")?.split('/').next()?.parse().ok())
            .collect();
        epochs.sort_unstable();
        epochs.dedup();
        Ok(epochs)
    }

    /// The public key sets of this epoch's sharings in `lit-dkg`'s form (the `old` of a
    /// reshare), over its holders.
    pub fn dkg_public(
        &self,
    ) -> (
        lit_dkg::PublicKeySet<blstrs::G1Projective>,
        lit_dkg::PublicKeySet<k256::ProjectivePoint>,
    ) {
        let holders: Vec<PartyId> = self.bls_set.participants().collect();
        (
            dkg_public_set(self.bls_set.commitment(), &holders),
            dkg_public_set(self.ecdsa.commitment(), &holders),
        )
    }

    /// This node's shares in `lit-dkg`'s form (what it deals in a reshare).
    pub fn dkg_shares(
        &self,
    ) -> (
        lit_dkg::KeyShare<blstrs::G1Projective>,
        lit_dkg::KeyShare<k256::ProjectivePoint>,
    ) {
        let (bls_public, ecdsa_public) = self.dkg_public();
        (
            lit_dkg::KeyShare {
                secret: self.bls.secret_share().clone(),
                public: bls_public,
            },
            lit_dkg::KeyShare {
                secret: self.ecdsa.secret_share(),
                public: ecdsa_public,
            },
        )
    }

    /// The root public keys: BLS (G1, compressed) and secp256k1 (SEC1 compressed).
    pub fn root_keys(&self) -> (Vec<u8>, Vec<u8>) {
        root_keys_of(self.bls_set.commitment(), self.ecdsa.commitment())
    }

    fn write(&self, store: &Store, current: bool) -> Result<(), KeysError> {
        let e = self.epoch;
        let bls_key = format!("epoch/{e}/bls-share");
        let set_key = format!("epoch/{e}/bls-set");
        let ecdsa_key = format!("epoch/{e}/ecdsa-share");
        let bls_bytes = self.bls.to_bytes();
        let set_bytes = self.bls_set.to_bytes();
        let ecdsa_bytes = encode_ecdsa(&self.ecdsa);
        let epoch_bytes = e.to_be_bytes();
        let mut batch: Vec<(Table, &str, &[u8])> = vec![
            (Table::Shares, &bls_key, &bls_bytes),
            (Table::Shares, &set_key, &set_bytes),
            (Table::Shares, &ecdsa_key, &ecdsa_bytes),
        ];
        if current {
            batch.push((Table::Shares, CURRENT, &epoch_bytes));
        }
        store.put_batch(&batch)?;
        Ok(())
    }

    /// Loads the keys of the current epoch, if a DKG has completed.
    pub fn load(store: &Store) -> Result<Option<Self>, KeysError> {
        let Some(epoch) = store.get(Table::Shares, CURRENT)? else {
            return Ok(None);
        };
        let epoch = u64::from_be_bytes(
            epoch
                .as_slice()
                .try_into()
                .map_err(|_| KeysError::Corrupt("epoch marker".into()))?,
        );
        Self::load_epoch(store, epoch)?
            .map(Some)
            .ok_or_else(|| KeysError::Corrupt(format!("epoch {epoch} lacks its shares")))
    }

    /// Loads the keys of `epoch`, if stored.
    pub fn load_epoch(store: &Store, epoch: u64) -> Result<Option<Self>, KeysError> {
        if store
            .get(Table::Shares, &format!("epoch/{epoch}/bls-share"))?
            .is_none()
        {
            return Ok(None);
        }
        let get = |name: &str| -> Result<Zeroizing<Vec<u8>>, KeysError> {
            store
                .get(Table::Shares, &format!("epoch/{epoch}/{name}"))?
                .ok_or_else(|| KeysError::Corrupt(format!("epoch {epoch} lacks {name}")))
        };
        let corrupt = |what: &str, e: String| KeysError::Corrupt(format!("{what}: {e}"));
        let bls_set = bls::PublicKeySet::from_bytes(&get("bls-set")?)
            .map_err(|e| corrupt("bls-set", e.to_string()))?;
        let bls = bls::KeyShare::from_bytes(&get("bls-share")?)
            .map_err(|e| corrupt("bls-share", e.to_string()))?;
        bls_set
            .check_key_share(&bls)
            .map_err(|e| corrupt("bls-share", e.to_string()))?;
        let ecdsa = decode_ecdsa(&get("ecdsa-share")?)?;
        Ok(Some(Self {
            epoch,
            bls,
            bls_set,
            ecdsa,
        }))
    }
}

/// The root public keys of two sharings: BLS (G1, compressed) and secp256k1 (SEC1 compressed).
pub fn root_keys_of(
    bls: &Commitment<blstrs::G1Projective>,
    ecdsa: &Commitment<k256::ProjectivePoint>,
) -> (Vec<u8>, Vec<u8>) {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    (
        blstrs::G1Affine::from(bls.public_key())
            .to_compressed()
            .to_vec(),
        k256::AffinePoint::from(ecdsa.public_key())
            .to_encoded_point(true)
            .as_bytes()
            .to_vec(),
    )
}

/// `lit-dkg`'s public key set of a sharing with this commitment over `holders`.
pub(crate) fn dkg_public_set<G: lit_dkg::DkgGroup>(
    commitment: &Commitment<G>,
    holders: &[PartyId],
) -> lit_dkg::PublicKeySet<G> {
    lit_dkg::PublicKeySet {
        threshold: commitment.threshold(),
        group_key: commitment.public_key(),
        commitment: commitment.points().to_vec(),
        shares: holders
            .iter()
            .map(|p| (*p, commitment.public_share(*p)))
            .collect(),
    }
}

/// `id (u32 BE) ‖ secret (32 B) ‖ commitment`.
fn encode_ecdsa(share: &ecdsa::KeyShare) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    out.extend_from_slice(&share.id().get().to_be_bytes());
    out.extend_from_slice(share.secret_bytes().as_ref());
    out.extend_from_slice(&share.commitment().to_bytes());
    out
}

fn decode_ecdsa(bytes: &[u8]) -> Result<ecdsa::KeyShare, KeysError> {
    let corrupt = |m: &str| KeysError::Corrupt(format!("ecdsa-share: {m}"));
    if bytes.len() < 36 {
        return Err(corrupt("too short"));
    }
    let (id, rest) = bytes.split_at(4);
    let (secret, commitment) = rest.split_at(32);
    let id = PartyId::new(u32::from_be_bytes(
        id.try_into().map_err(|_| corrupt("id"))?,
    ))
    .ok_or_else(|| corrupt("zero id"))?;
    let mut repr = k256::FieldBytes::default();
    repr.copy_from_slice(secret);
    let value = Option::<k256::Scalar>::from(k256::Scalar::from_repr(repr))
        .ok_or_else(|| corrupt("secret"))?;
    let commitment = Commitment::<k256::ProjectivePoint>::from_bytes(commitment)
        .map_err(|_| corrupt("commitment"))?;
    ecdsa::KeyShare::new(&SecretShare { id, value }, commitment)
        .map_err(|e| corrupt(&e.to_string()))
}
