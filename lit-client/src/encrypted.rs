//! Encrypted data (the `lit encrypt` file format) and the purely local encryption to the
//! network key.

use lit_api::conditions::ConditionsKind;
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
///
/// The conditions come under the key they were given under (`accessControlConditions`,
/// `evmContractConditions` or `unifiedAccessControlConditions`, exactly one), and are sent to
/// the nodes under it. The identity hashes the list alone (see `lit_crypto::identity`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EncryptedDataWire", into = "EncryptedDataWire")]
pub struct EncryptedData {
    /// [`ENCRYPTED_DATA_VERSION`].
    pub version: u32,
    /// The identity-based ciphertext (`lit_crypto::ibe::Ciphertext::to_bytes`).
    pub ciphertext: Bytes,
    /// The request key the conditions were given under.
    pub conditions_kind: ConditionsKind,
    /// The condition list as given at encryption, whichever key it came under.
    pub access_control_conditions: serde_json::Value,
    /// SHA-256 of the plaintext.
    pub data_to_encrypt_hash: Bytes32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EncryptedDataWire {
    version: u32,
    ciphertext: Bytes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_control_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evm_contract_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unified_access_control_conditions: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sol_rpc_conditions: Option<serde_json::Value>,
    data_to_encrypt_hash: Bytes32,
}

impl TryFrom<EncryptedDataWire> for EncryptedData {
    type Error = lit_api::conditions::ConditionsError;
    fn try_from(w: EncryptedDataWire) -> Result<Self, Self::Error> {
        let (conditions_kind, access_control_conditions) = ConditionsKind::pick([
            w.access_control_conditions,
            w.evm_contract_conditions,
            w.unified_access_control_conditions,
            w.sol_rpc_conditions,
        ])?;
        Ok(Self {
            version: w.version,
            ciphertext: w.ciphertext,
            conditions_kind,
            access_control_conditions,
            data_to_encrypt_hash: w.data_to_encrypt_hash,
        })
    }
}

impl From<EncryptedData> for EncryptedDataWire {
    fn from(d: EncryptedData) -> Self {
        let [access_control_conditions, evm_contract_conditions, unified_access_control_conditions, sol_rpc_conditions] =
            d.conditions_kind.spread(d.access_control_conditions);
        Self {
            version: d.version,
            ciphertext: d.ciphertext,
            access_control_conditions,
            evm_contract_conditions,
            unified_access_control_conditions,
            sol_rpc_conditions,
            data_to_encrypt_hash: d.data_to_encrypt_hash,
        }
    }
}

/// Access control conditions as Lit's SDK takes them: a list under one of its request keys.
///
/// In JSON ([`Conditions::from_json`]) a bare list is `accessControlConditions`
/// (`conditionType` optional, as in Lit's examples), and an object with exactly one of the keys
/// (`{"unifiedAccessControlConditions": [...]}`) names its key, as in the parameters of Lit's
/// `encrypt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    /// The request key.
    pub kind: ConditionsKind,
    /// The list.
    pub list: serde_json::Value,
}

impl Conditions {
    /// `list` under `kind`.
    pub fn new(kind: ConditionsKind, list: serde_json::Value) -> Self {
        Self { kind, list }
    }

    /// A bare list (`accessControlConditions`) or an object with exactly one of the keys of
    /// [`ConditionsKind`].
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ClientError> {
        let Some(map) = value.as_object() else {
            return Ok(Self::new(ConditionsKind::AccessControl, value.clone()));
        };
        if let Some(key) = map.keys().find(|k| ConditionsKind::from_key(k).is_none()) {
            return Err(ClientError::Conditions(format!(
                "{key:?} is not one of accessControlConditions, evmContractConditions, \
                 unifiedAccessControlConditions"
            )));
        }
        let lists = ConditionsKind::ALL.map(|k| map.get(k.key()).cloned());
        let (kind, list) =
            ConditionsKind::pick(lists).map_err(|e| ClientError::Conditions(e.to_string()))?;
        Ok(Self { kind, list })
    }
}

impl From<&serde_json::Value> for Conditions {
    /// A list given as `accessControlConditions`.
    fn from(list: &serde_json::Value) -> Self {
        Self::new(ConditionsKind::AccessControl, list.clone())
    }
}

impl From<serde_json::Value> for Conditions {
    /// A list given as `accessControlConditions`.
    fn from(list: serde_json::Value) -> Self {
        Self::new(ConditionsKind::AccessControl, list)
    }
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
        identity_of_kind(
            self.conditions_kind,
            &self.access_control_conditions,
            self.data_to_encrypt_hash.0,
        )
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

/// Validates conditions given as `accessControlConditions` (with `lit_api::conditions::parse`)
/// and returns the identity of data with this hash under them.
pub fn identity_of(
    conditions: &serde_json::Value,
    data_hash: [u8; 32],
) -> Result<AccessControlIdentity, ClientError> {
    identity_of_kind(ConditionsKind::AccessControl, conditions, data_hash)
}

/// Validates a condition list given under `kind` and returns the identity of data with this
/// hash under it: the list's own canonical hash, whatever the key.
pub fn identity_of_kind(
    kind: ConditionsKind,
    conditions: &serde_json::Value,
    data_hash: [u8; 32],
) -> Result<AccessControlIdentity, ClientError> {
    lit_api::conditions::parse_as(kind, conditions)
        .map_err(|e| ClientError::Conditions(e.to_string()))?;
    AccessControlIdentity::for_conditions(conditions, data_hash)
        .map_err(|e| ClientError::Conditions(e.to_string()))
}

/// Encrypts `plaintext` under `conditions` (a list given as `accessControlConditions`) to the
/// network key `network_key`, locally: no node is contacted. This is what
/// [`crate::LitClient::encrypt`] does with the connected network's key.
pub fn encrypt_to(
    network_key: &PublicKey,
    conditions: &serde_json::Value,
    plaintext: &[u8],
) -> Result<EncryptedData, ClientError> {
    encrypt_conditions_to(network_key, &Conditions::from(conditions), plaintext)
}

/// [`encrypt_to`] with conditions under any of Lit's request keys.
pub fn encrypt_conditions_to(
    network_key: &PublicKey,
    conditions: &Conditions,
    plaintext: &[u8],
) -> Result<EncryptedData, ClientError> {
    let data_hash: [u8; 32] = Sha256::digest(plaintext).into();
    let identity = identity_of_kind(conditions.kind, &conditions.list, data_hash)?;
    let ct = ibe::encrypt(network_key, &identity.to_bytes(), plaintext)
        .map_err(|e| ClientError::Encrypt(e.to_string()))?;
    Ok(EncryptedData {
        version: ENCRYPTED_DATA_VERSION,
        ciphertext: Bytes(ct.to_bytes()),
        conditions_kind: conditions.kind,
        access_control_conditions: conditions.list.clone(),
        data_to_encrypt_hash: Bytes32(data_hash),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn user_is() -> serde_json::Value {
        json!([{"contractAddress": "", "standardContractType": "", "chain": "ethereum",
                "method": "", "parameters": [":userAddress"],
                "returnValueTest": {"comparator": "=", "value": "0x01"}}])
    }

    #[test]
    fn conditions_as_lit_writes_them() {
        let list = user_is();
        assert_eq!(
            Conditions::from_json(&list).unwrap(),
            Conditions::new(ConditionsKind::AccessControl, list.clone())
        );
        for kind in [ConditionsKind::EvmContract, ConditionsKind::Unified] {
            let c = Conditions::from_json(&json!({kind.key(): list})).unwrap();
            assert_eq!(c, Conditions::new(kind, list.clone()));
        }
        assert!(Conditions::from_json(&json!({})).is_err());
        assert!(Conditions::from_json(&json!({"conditions": list})).is_err());
        assert!(Conditions::from_json(
            &json!({"accessControlConditions": list, "evmContractConditions": list})
        )
        .is_err());
    }

    #[test]
    fn the_file_keeps_the_key_and_the_identity_ignores_it() {
        let key = lit_crypto::bls::SecretKey::random(&mut rand_core::OsRng).public_key();
        let list = user_is();
        let basic = encrypt_to(&key, &list, b"x").unwrap();
        let text = basic.to_json();
        assert!(text.contains("\"accessControlConditions\""), "{text}");
        assert_eq!(EncryptedData::from_json(&text).unwrap(), basic);
        // the same list under unified needs conditionType on its leaves
        let unified = Conditions::new(ConditionsKind::Unified, list.clone());
        assert!(matches!(
            encrypt_conditions_to(&key, &unified, b"x"),
            Err(ClientError::Conditions(_))
        ));
        let mut tagged = list.clone();
        tagged[0]["conditionType"] = json!("evmBasic");
        let u = encrypt_conditions_to(
            &key,
            &Conditions::new(ConditionsKind::Unified, tagged.clone()),
            b"x",
        )
        .unwrap();
        let text = u.to_json();
        assert!(
            text.contains("\"unifiedAccessControlConditions\""),
            "{text}"
        );
        assert_eq!(EncryptedData::from_json(&text).unwrap(), u);
        // identities hash the list: same list, same identity, under either key
        let b = encrypt_to(&key, &tagged, b"x").unwrap();
        assert_eq!(b.identity().unwrap(), u.identity().unwrap());
        assert_ne!(basic.identity().unwrap(), u.identity().unwrap());
    }
}
