//! Encrypted data (the `lit encrypt` file format) and the purely local encryption to the
//! network key.

use lit_api::{Bytes, Bytes32};
use lit_crypto::bls::PublicKey;
use lit_crypto::ibe::{self, Ciphertext};
use lit_crypto::identity::AccessControlIdentity;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::ClientError;

/// The only [`EncryptedData::version`] this crate reads and writes.
pub const ENCRYPTED_DATA_VERSION: u32 = 1;

/// Data encrypted under access control conditions: what `lit encrypt` writes and `lit decrypt`
/// reads.
///
/// ```json
/// {"version": 1, "ciphertext": "4c495445…", "accessControlConditions": [...],
///  "dataToEncryptHash": "<sha256 of the plaintext, hex>"}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptedData {
    /// [`ENCRYPTED_DATA_VERSION`].
    pub version: u32,
    /// The identity-based ciphertext (`lit_crypto::ibe::Ciphertext::to_bytes`).
    pub ciphertext: Bytes,
    /// The conditions as given at encryption.
    pub access_control_conditions: serde_json::Value,
    /// SHA-256 of the plaintext.
    pub data_to_encrypt_hash: Bytes32,
}

impl EncryptedData {
    /// Parses the JSON file format.
    pub fn from_json(text: &str) -> Result<Self, ClientError> {
        let data: EncryptedData =
            serde_json::from_str(text).map_err(|e| ClientError::EncryptedData(e.to_string()))?;
        if data.version != ENCRYPTED_DATA_VERSION {
            return Err(ClientError::EncryptedData(format!(
                "version {} is not supported",
                data.version
            )));
        }
        Ok(data)
    }

    /// The JSON file format (pretty-printed).
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and a JSON value always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The identity the data was encrypted to (checks the conditions).
    pub fn identity(&self) -> Result<AccessControlIdentity, ClientError> {
        identity_of(&self.access_control_conditions, self.data_to_encrypt_hash.0)
    }

    /// Decodes the ciphertext and checks that it was encrypted to this data's identity and
    /// (when given) to the network key `expected_key`.
    pub fn ciphertext(&self, expected_key: Option<&PublicKey>) -> Result<Ciphertext, ClientError> {
        let ct = Ciphertext::from_bytes(self.ciphertext.as_slice())
            .map_err(|e| ClientError::EncryptedData(e.to_string()))?;
        if ct.identity() != self.identity()?.to_bytes() {
            return Err(ClientError::EncryptedData(
                "the ciphertext was encrypted to another identity than its conditions and data hash"
                    .into(),
            ));
        }
        if let Some(pk) = expected_key {
            if ct.public_key() != pk {
                return Err(ClientError::EncryptedData(
                    "the ciphertext was encrypted to another network's key".into(),
                ));
            }
        }
        Ok(ct)
    }
}

/// Validates conditions (with `lit_api::conditions::parse`) and returns the identity of data
/// with this hash under them.
pub fn identity_of(
    conditions: &serde_json::Value,
    data_hash: [u8; 32],
) -> Result<AccessControlIdentity, ClientError> {
    lit_api::conditions::parse(conditions).map_err(|e| ClientError::Conditions(e.to_string()))?;
    AccessControlIdentity::for_conditions(conditions, data_hash)
        .map_err(|e| ClientError::Conditions(e.to_string()))
}

/// Encrypts `plaintext` under `conditions` to the network key `network_key`, locally: no node
/// is contacted. This is what [`crate::LitClient::encrypt`] does with the connected network's key.
pub fn encrypt_to(
    network_key: &PublicKey,
    conditions: &serde_json::Value,
    plaintext: &[u8],
) -> Result<EncryptedData, ClientError> {
    let data_hash: [u8; 32] = Sha256::digest(plaintext).into();
    let identity = identity_of(conditions, data_hash)?;
    let ct = ibe::encrypt(network_key, &identity.to_bytes(), plaintext)
        .map_err(|e| ClientError::Encrypt(e.to_string()))?;
    Ok(EncryptedData {
        version: ENCRYPTED_DATA_VERSION,
        ciphertext: Bytes(ct.to_bytes()),
        access_control_conditions: conditions.clone(),
        data_to_encrypt_hash: Bytes32(data_hash),
    })
}
