//! Ethereum transactions a PKP signs: EIP-1559 (type 2) and legacy with EIP-155 replay
//! protection. This module holds their JSON format (`lit pkp sign --tx FILE`); their signing
//! hashes and signed encodings (EIP-2718 envelopes, ready for `eth_sendRawTransaction`) are
//! alloy's (`alloy-consensus`).

use alloy_consensus::{SignableTransaction as _, TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{Signature, TxKind, U256};
use lit_crypto::ecdsa::RecoverableSignature;
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// An Ethereum transaction (the `--tx FILE` format of `lit pkp sign`): numbers are decimal or
/// `0x` hex strings, addresses and data `0x` hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EthTransaction {
    /// EIP-1559 (type 2).
    Eip1559(Eip1559Transaction),
    /// Legacy with EIP-155 (`v = 35 + 2·chainId + parity`).
    Legacy(LegacyTransaction),
}

/// An EIP-1559 transaction without access list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Eip1559Transaction {
    /// EIP-155 chain id.
    #[serde(with = "quantity")]
    pub chain_id: u64,
    /// The sender's nonce.
    #[serde(with = "quantity")]
    pub nonce: u64,
    /// Priority fee per gas (wei).
    #[serde(with = "quantity")]
    pub max_priority_fee_per_gas: u128,
    /// Fee cap per gas (wei).
    #[serde(with = "quantity")]
    pub max_fee_per_gas: u128,
    /// Gas limit.
    #[serde(with = "quantity")]
    pub gas_limit: u64,
    /// Recipient (`None`: contract creation).
    #[serde(default, with = "opt_address")]
    pub to: Option<[u8; 20]>,
    /// Value (wei).
    #[serde(with = "quantity")]
    pub value: u128,
    /// Call data.
    #[serde(default, with = "hex_data")]
    pub data: Vec<u8>,
}

/// A legacy transaction signed with EIP-155.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyTransaction {
    /// EIP-155 chain id.
    #[serde(with = "quantity")]
    pub chain_id: u64,
    /// The sender's nonce.
    #[serde(with = "quantity")]
    pub nonce: u64,
    /// Gas price (wei).
    #[serde(with = "quantity")]
    pub gas_price: u128,
    /// Gas limit.
    #[serde(with = "quantity")]
    pub gas_limit: u64,
    /// Recipient (`None`: contract creation).
    #[serde(default, with = "opt_address")]
    pub to: Option<[u8; 20]>,
    /// Value (wei).
    #[serde(with = "quantity")]
    pub value: u128,
    /// Call data.
    #[serde(default, with = "hex_data")]
    pub data: Vec<u8>,
}

fn kind(to: &Option<[u8; 20]>) -> TxKind {
    match to {
        Some(a) => TxKind::Call(a.into()),
        None => TxKind::Create,
    }
}

impl Eip1559Transaction {
    /// The transaction as alloy's EIP-1559 transaction (with an empty access list).
    pub fn to_alloy(&self) -> TxEip1559 {
        TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: kind(&self.to),
            value: U256::from(self.value),
            access_list: Default::default(),
            input: self.data.clone().into(),
        }
    }
}

impl LegacyTransaction {
    /// The transaction as alloy's legacy transaction, replay-protected by its chain id
    /// (EIP-155).
    pub fn to_alloy(&self) -> TxLegacy {
        TxLegacy {
            chain_id: Some(self.chain_id),
            nonce: self.nonce,
            gas_price: self.gas_price,
            gas_limit: self.gas_limit,
            to: kind(&self.to),
            value: U256::from(self.value),
            input: self.data.clone().into(),
        }
    }
}

impl EthTransaction {
    /// The hash the sender signs.
    pub fn signing_hash(&self) -> [u8; 32] {
        match self {
            EthTransaction::Eip1559(tx) => tx.to_alloy().signature_hash().0,
            EthTransaction::Legacy(tx) => tx.to_alloy().signature_hash().0,
        }
    }

    /// The signed transaction, as `eth_sendRawTransaction` takes it.
    pub fn encode_signed(&self, sig: &RecoverableSignature) -> Result<Vec<u8>, ClientError> {
        let y_parity = match sig.recovery_id {
            0 => false,
            1 => true,
            // R.x >= n: cannot be expressed in Ethereum's v
            _ => {
                return Err(ClientError::Config(
                    "signature recovery id cannot be encoded in an Ethereum transaction".into(),
                ))
            }
        };
        let signature = Signature::new(
            U256::from_be_bytes(sig.r),
            U256::from_be_bytes(sig.s),
            y_parity,
        );
        Ok(match self {
            EthTransaction::Eip1559(tx) => tx.to_alloy().into_signed(signature).encoded_2718(),
            EthTransaction::Legacy(tx) => tx.to_alloy().into_signed(signature).encoded_2718(),
        })
    }
}

/// A number as a decimal or `0x` hexadecimal string, or a JSON number; written as `0x` hex.
mod quantity {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: std::fmt::LowerHex, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{v:x}"))
    }

    pub fn deserialize<'de, T: TryFrom<u128>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Q {
            N(u64),
            S(String),
        }
        let wide = match Q::deserialize(d)? {
            Q::N(n) => u128::from(n),
            Q::S(s) => match s.strip_prefix("0x") {
                Some(h) => u128::from_str_radix(h, 16),
                None => s.parse(),
            }
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a quantity")))?,
        };
        T::try_from(wide).map_err(|_| serde::de::Error::custom(format!("{wide} is too large")))
    }
}

mod hex_data {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

mod opt_address {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<[u8; 20]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&format!("0x{}", hex::encode(a))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 20]>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(&s))
                .map_err(serde::de::Error::custom)?;
            <[u8; 20]>::try_from(bytes)
                .map_err(|_| serde::de::Error::custom("an address is 20 bytes"))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::TxEnvelope;
    use alloy_eips::eip2718::Decodable2718 as _;
    use k256::ecdsa::SigningKey;
    use lit_crypto::eth::{recover_address, Address};

    fn sign(key: &SigningKey, tx: &EthTransaction) -> RecoverableSignature {
        let (sig, recid) = key.sign_prehash_recoverable(&tx.signing_hash()).unwrap();
        RecoverableSignature {
            r: sig.r().to_bytes().into(),
            s: sig.s().to_bytes().into(),
            recovery_id: recid.to_byte(),
        }
    }

    /// The EIP-155 example transaction (from the EIP text): nonce 9, gas price 20 gwei, gas
    /// 21000, to 0x3535…35, value 1 ether, chain id 1, signed with the key 0x4646…46.
    #[test]
    fn eip155_example_vector() {
        let tx = EthTransaction::Legacy(LegacyTransaction {
            chain_id: 1,
            nonce: 9,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: Some([0x35; 20]),
            value: 1_000_000_000_000_000_000,
            data: vec![],
        });
        assert_eq!(
            hex::encode(tx.signing_hash()),
            "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
        );
        let key = SigningKey::from_bytes(&[0x46; 32].into()).unwrap();
        assert_eq!(
            hex::encode(tx.encode_signed(&sign(&key, &tx)).unwrap()),
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        );
    }

    /// A signed EIP-1559 transaction decodes as the same transaction, and its signature
    /// recovers (with our own recovery, over the signing hash) to the signer.
    #[test]
    fn eip1559_signed_encoding_decodes_and_recovers() {
        let key = SigningKey::from_bytes(&[0x46; 32].into()).unwrap();
        let inner = Eip1559Transaction {
            chain_id: 31337,
            nonce: 3,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 20_000_000_000,
            gas_limit: 60_000,
            to: None,
            value: 5,
            data: vec![0x60, 0x00],
        };
        let tx = EthTransaction::Eip1559(inner.clone());
        let sig = sign(&key, &tx);
        let raw = tx.encode_signed(&sig).unwrap();
        assert_eq!(raw[0], 0x02);
        let TxEnvelope::Eip1559(signed) = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap()
        else {
            panic!("not an EIP-1559 envelope")
        };
        assert_eq!(*signed.tx(), inner.to_alloy());
        assert_eq!(signed.signature_hash().0, tx.signing_hash());
        let signer = recover_address(&tx.signing_hash(), &sig.to_ethereum_bytes()).unwrap();
        assert_eq!(signer, Address::from_public_key(key.verifying_key()));
        // a recovery id that Ethereum cannot express is refused
        let bad = RecoverableSignature {
            recovery_id: 2,
            ..sig
        };
        assert!(tx.encode_signed(&bad).is_err());
    }

    #[test]
    fn json_format() {
        let tx: EthTransaction = serde_json::from_value(serde_json::json!({
            "type": "eip1559", "chainId": 31337, "nonce": "0x0", "maxPriorityFeePerGas": "1000000000",
            "maxFeePerGas": "0x77359400", "gasLimit": 21000,
            "to": "0x1111111111111111111111111111111111111111", "value": "1000"
        }))
        .unwrap();
        let EthTransaction::Eip1559(inner) = &tx else {
            panic!()
        };
        assert_eq!(
            (inner.max_fee_per_gas, inner.value, inner.data.len()),
            (2_000_000_000, 1000, 0)
        );
        let back: EthTransaction =
            serde_json::from_value(serde_json::to_value(&tx).unwrap()).unwrap();
        assert_eq!(back, tx);
        assert!(
            serde_json::from_value::<EthTransaction>(serde_json::json!({"type": "eip1559"}))
                .is_err()
        );
        // a nonce is at most 2^64 - 1 (EIP-2681)
        assert!(serde_json::from_value::<EthTransaction>(serde_json::json!({
            "type": "legacy", "chainId": 1, "nonce": "0x10000000000000000", "gasPrice": 1,
            "gasLimit": 21000, "value": 0
        }))
        .is_err());
    }
}
