//! Ethereum transactions a PKP signs: EIP-1559 (type 2) and legacy with EIP-155 replay
//! protection, their signing hashes and their signed encodings (RLP, per the Ethereum yellow
//! paper appendix B, EIP-155 and EIP-1559), ready for `eth_sendRawTransaction`.

use lit_crypto::ecdsa::RecoverableSignature;
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Keccak256};

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
    pub chain_id: u128,
    /// The sender's nonce.
    #[serde(with = "quantity")]
    pub nonce: u128,
    /// Priority fee per gas (wei).
    #[serde(with = "quantity")]
    pub max_priority_fee_per_gas: u128,
    /// Fee cap per gas (wei).
    #[serde(with = "quantity")]
    pub max_fee_per_gas: u128,
    /// Gas limit.
    #[serde(with = "quantity")]
    pub gas_limit: u128,
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
    pub chain_id: u128,
    /// The sender's nonce.
    #[serde(with = "quantity")]
    pub nonce: u128,
    /// Gas price (wei).
    #[serde(with = "quantity")]
    pub gas_price: u128,
    /// Gas limit.
    #[serde(with = "quantity")]
    pub gas_limit: u128,
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

/// RLP encoding.
mod rlp {
    fn length_prefix(out: &mut Vec<u8>, len: usize, short: u8, long: u8) {
        if len < 56 {
            out.push(short + len as u8);
        } else {
            let be = (len as u64).to_be_bytes();
            let skip = be.iter().take_while(|b| **b == 0).count();
            out.push(long + (8 - skip) as u8);
            out.extend_from_slice(&be[skip..]);
        }
    }

    /// A byte string.
    pub fn bytes(b: &[u8]) -> Vec<u8> {
        if b.len() == 1 && b[0] < 0x80 {
            return vec![b[0]];
        }
        let mut out = Vec::with_capacity(b.len() + 9);
        length_prefix(&mut out, b.len(), 0x80, 0xb7);
        out.extend_from_slice(b);
        out
    }

    /// An unsigned integer: big-endian without leading zeros (zero is the empty string).
    pub fn uint(v: u128) -> Vec<u8> {
        let be = v.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        bytes(&be[skip..])
    }

    /// A 32-byte big-endian scalar as an integer.
    pub fn scalar(b: &[u8; 32]) -> Vec<u8> {
        let skip = b.iter().take_while(|x| **x == 0).count();
        bytes(&b[skip..])
    }

    /// A list of encoded items.
    pub fn list(items: &[Vec<u8>]) -> Vec<u8> {
        let len: usize = items.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(len + 9);
        length_prefix(&mut out, len, 0xc0, 0xf7);
        for i in items {
            out.extend_from_slice(i);
        }
        out
    }
}

fn to_field(to: &Option<[u8; 20]>) -> Vec<u8> {
    match to {
        Some(a) => rlp::bytes(a),
        None => rlp::bytes(&[]),
    }
}

impl Eip1559Transaction {
    fn fields(&self) -> Vec<Vec<u8>> {
        vec![
            rlp::uint(self.chain_id),
            rlp::uint(self.nonce),
            rlp::uint(self.max_priority_fee_per_gas),
            rlp::uint(self.max_fee_per_gas),
            rlp::uint(self.gas_limit),
            to_field(&self.to),
            rlp::uint(self.value),
            rlp::bytes(&self.data),
            rlp::list(&[]), // access list
        ]
    }
}

impl LegacyTransaction {
    fn fields(&self) -> Vec<Vec<u8>> {
        vec![
            rlp::uint(self.nonce),
            rlp::uint(self.gas_price),
            rlp::uint(self.gas_limit),
            to_field(&self.to),
            rlp::uint(self.value),
            rlp::bytes(&self.data),
        ]
    }
}

impl EthTransaction {
    /// The hash the sender signs.
    pub fn signing_hash(&self) -> [u8; 32] {
        let payload = match self {
            EthTransaction::Eip1559(tx) => {
                let mut p = vec![0x02];
                p.extend(rlp::list(&tx.fields()));
                p
            }
            EthTransaction::Legacy(tx) => {
                let mut f = tx.fields();
                f.extend([rlp::uint(tx.chain_id), rlp::uint(0), rlp::uint(0)]);
                rlp::list(&f)
            }
        };
        Keccak256::digest(payload).into()
    }

    /// The signed transaction, as `eth_sendRawTransaction` takes it.
    pub fn encode_signed(&self, sig: &RecoverableSignature) -> Result<Vec<u8>, ClientError> {
        if sig.recovery_id > 1 {
            // R.x >= n: cannot be expressed in Ethereum's v
            return Err(ClientError::Config(
                "signature recovery id cannot be encoded in an Ethereum transaction".into(),
            ));
        }
        let parity = u128::from(sig.recovery_id);
        Ok(match self {
            EthTransaction::Eip1559(tx) => {
                let mut f = tx.fields();
                f.extend([rlp::uint(parity), rlp::scalar(&sig.r), rlp::scalar(&sig.s)]);
                let mut out = vec![0x02];
                out.extend(rlp::list(&f));
                out
            }
            EthTransaction::Legacy(tx) => {
                let v = tx
                    .chain_id
                    .checked_mul(2)
                    .and_then(|c| c.checked_add(35 + parity))
                    .ok_or_else(|| ClientError::Config("chain id too large".into()))?;
                let mut f = tx.fields();
                f.extend([rlp::uint(v), rlp::scalar(&sig.r), rlp::scalar(&sig.s)]);
                rlp::list(&f)
            }
        })
    }
}

mod quantity {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{v:x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Q {
            N(u64),
            S(String),
        }
        match Q::deserialize(d)? {
            Q::N(n) => Ok(u128::from(n)),
            Q::S(s) => match s.strip_prefix("0x") {
                Some(h) => u128::from_str_radix(h, 16),
                None => s.parse(),
            }
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a quantity"))),
        }
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
    use k256::ecdsa::SigningKey;

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
        let (sig, recid) = key.sign_prehash_recoverable(&tx.signing_hash()).unwrap();
        let sig = RecoverableSignature {
            r: sig.r().to_bytes().into(),
            s: sig.s().to_bytes().into(),
            recovery_id: recid.to_byte(),
        };
        assert_eq!(
            hex::encode(tx.encode_signed(&sig).unwrap()),
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        );
    }

    #[test]
    fn rlp_basics_and_json_format() {
        assert_eq!(rlp::uint(0), vec![0x80]);
        assert_eq!(rlp::uint(15), vec![0x0f]);
        assert_eq!(rlp::uint(1024), vec![0x82, 0x04, 0x00]);
        assert_eq!(rlp::bytes(b"dog"), b"\x83dog".to_vec());
        assert_eq!(
            rlp::list(&[rlp::bytes(b"cat"), rlp::bytes(b"dog")]),
            b"\xc8\x83cat\x83dog".to_vec()
        );
        let long = vec![0xaa; 60];
        assert_eq!(&rlp::bytes(&long)[..2], &[0xb8, 60]);
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
    }
}
