//! Byte strings on the wire: lowercase hex without prefix when written; an optional `0x`
//! prefix and either case accepted when read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn decode(s: &str) -> Result<Vec<u8>, String> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    hex::decode(digits).map_err(|e| format!("invalid hex: {e}"))
}

/// A byte string of any length.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode(&s).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// Exactly 32 bytes (hashes, nonces, public keys).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Bytes32(pub [u8; 32]);

impl fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Display for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let v = decode(&s).map_err(serde::de::Error::custom)?;
        let arr: [u8; 32] = v.try_into().map_err(|v: Vec<u8>| {
            serde::de::Error::custom(format!("expected 32 bytes, got {}", v.len()))
        })?;
        Ok(Bytes32(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_prefix() {
        let b = Bytes32([0xab; 32]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Bytes32>(&json).unwrap(), b);
        let prefixed = format!("\"0x{}\"", "AB".repeat(32));
        assert_eq!(serde_json::from_str::<Bytes32>(&prefixed).unwrap(), b);
        let any: Bytes = serde_json::from_str("\"0x0102\"").unwrap();
        assert_eq!(any.as_slice(), &[1, 2]);
    }

    #[test]
    fn bad_hex_and_lengths_are_refused() {
        assert!(serde_json::from_str::<Bytes32>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<Bytes32>(&format!("\"{}\"", "zz".repeat(32))).is_err());
        assert!(serde_json::from_str::<Bytes>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Bytes>("12").is_err());
    }
}
