//! The subset of the Solidity ABI that view calls in conditions need: encoding a call from
//! string parameters and decoding its outputs, for the elementary types `address`, `bool`,
//! `uint<M>`, `int<M>`, `bytes<M>`, `bytes` and `string` (Solidity ABI specification, "Formal
//! Specification of the Encoding"). Arrays and tuples are refused with a clear error.

use ruint::aliases::U256;
use sha3::{Digest as _, Keccak256};

use super::ConditionError;

/// An elementary ABI type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiType {
    /// `address`.
    Address,
    /// `bool`.
    Bool,
    /// `uint<bits>`.
    Uint(usize),
    /// `int<bits>`.
    Int(usize),
    /// `bytes<len>` (1..=32).
    FixedBytes(usize),
    /// `bytes`.
    Bytes,
    /// `string`.
    String,
}

/// A decoded ABI value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbiValue {
    /// An address.
    Address([u8; 20]),
    /// A boolean.
    Bool(bool),
    /// An unsigned integer.
    Uint(U256),
    /// A signed integer: (negative, magnitude).
    Int(bool, U256),
    /// Fixed or dynamic bytes.
    Bytes(Vec<u8>),
    /// A string.
    String(String),
}

fn invalid(msg: impl Into<String>) -> ConditionError {
    ConditionError::Invalid(msg.into())
}

impl AbiType {
    /// Parses a Solidity type name.
    pub fn parse(name: &str) -> Result<Self, ConditionError> {
        let bits = |s: &str, default: usize| -> Result<usize, ConditionError> {
            if s.is_empty() {
                return Ok(default);
            }
            match s.parse::<usize>() {
                Ok(b) if b > 0 && b <= 256 && b % 8 == 0 => Ok(b),
                _ => Err(invalid(format!("invalid ABI type {name:?}"))),
            }
        };
        Ok(match name {
            "address" => AbiType::Address,
            "bool" => AbiType::Bool,
            "string" => AbiType::String,
            "bytes" => AbiType::Bytes,
            _ if name.contains('[') || name.starts_with('(') || name.starts_with("tuple") => {
                return Err(invalid(format!(
                    "ABI type {name:?} is not supported in conditions (arrays and tuples are not)"
                )))
            }
            _ if name.starts_with("uint") => AbiType::Uint(bits(&name[4..], 256)?),
            _ if name.starts_with("int") => AbiType::Int(bits(&name[3..], 256)?),
            _ if name.starts_with("bytes") => match name[5..].parse::<usize>() {
                Ok(n) if (1..=32).contains(&n) => AbiType::FixedBytes(n),
                _ => return Err(invalid(format!("invalid ABI type {name:?}"))),
            },
            _ => return Err(invalid(format!("unknown ABI type {name:?}"))),
        })
    }

    fn canonical(self) -> String {
        match self {
            AbiType::Address => "address".into(),
            AbiType::Bool => "bool".into(),
            AbiType::Uint(b) => format!("uint{b}"),
            AbiType::Int(b) => format!("int{b}"),
            AbiType::FixedBytes(n) => format!("bytes{n}"),
            AbiType::Bytes => "bytes".into(),
            AbiType::String => "string".into(),
        }
    }

    fn is_dynamic(self) -> bool {
        matches!(self, AbiType::Bytes | AbiType::String)
    }
}

/// The 4-byte selector of `name(types…)`.
pub fn selector(name: &str, inputs: &[AbiType]) -> [u8; 4] {
    let signature = format!(
        "{name}({})",
        inputs
            .iter()
            .map(|t| t.canonical())
            .collect::<Vec<_>>()
            .join(",")
    );
    let hash = Keccak256::digest(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

fn parse_hex(s: &str) -> Result<Vec<u8>, ConditionError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{s:?} must be 0x-prefixed hex")))?;
    hex::decode(digits).map_err(|_| invalid(format!("{s:?} is not hex")))
}

/// Parses a decimal or `0x` hexadecimal unsigned integer.
pub fn parse_uint(s: &str) -> Result<U256, ConditionError> {
    let parsed = match s.strip_prefix("0x") {
        Some(h) => U256::from_str_radix(h, 16),
        None => U256::from_str_radix(s, 10),
    };
    parsed.map_err(|_| invalid(format!("{s:?} is not an unsigned integer")))
}

/// Parses a possibly negative integer as (negative, magnitude).
pub fn parse_int(s: &str) -> Result<(bool, U256), ConditionError> {
    match s.strip_prefix('-') {
        Some(m) => Ok((true, parse_uint(m)?)),
        None => Ok((false, parse_uint(s)?)),
    }
}

fn word_from_value(t: AbiType, s: &str) -> Result<[u8; 32], ConditionError> {
    let mut word = [0u8; 32];
    match t {
        AbiType::Address => {
            let b = parse_hex(s)?;
            if b.len() != 20 {
                return Err(invalid(format!("{s:?} is not a 20-byte address")));
            }
            word[12..].copy_from_slice(&b);
        }
        AbiType::Bool => {
            word[31] = match s {
                "true" => 1,
                "false" => 0,
                _ => return Err(invalid(format!("{s:?} is not true/false"))),
            }
        }
        AbiType::Uint(bits) => {
            let v = parse_uint(s)?;
            if bits < 256 && v >= (U256::from(1u8) << bits) {
                return Err(invalid(format!("{s} does not fit uint{bits}")));
            }
            word = v.to_be_bytes();
        }
        AbiType::Int(bits) => {
            let (neg, mag) = parse_int(s)?;
            let limit = U256::from(1u8) << (bits - 1);
            if (!neg && mag >= limit) || (neg && mag > limit) {
                return Err(invalid(format!("{s} does not fit int{bits}")));
            }
            let v = if neg {
                U256::ZERO.wrapping_sub(mag)
            } else {
                mag
            };
            word = v.to_be_bytes();
        }
        AbiType::FixedBytes(n) => {
            let b = parse_hex(s)?;
            if b.len() != n {
                return Err(invalid(format!("{s:?} is not {n} bytes")));
            }
            word[..n].copy_from_slice(&b);
        }
        AbiType::Bytes | AbiType::String => {
            return Err(invalid("dynamic types have no head word"));
        }
    }
    Ok(word)
}

/// Encodes a call of `name(inputs…)` with string arguments.
pub fn encode_call(
    name: &str,
    inputs: &[AbiType],
    args: &[String],
) -> Result<Vec<u8>, ConditionError> {
    if inputs.len() != args.len() {
        return Err(invalid(format!(
            "{name} takes {} parameters, {} given",
            inputs.len(),
            args.len()
        )));
    }
    let mut head = Vec::with_capacity(32 * inputs.len());
    let mut tail = Vec::new();
    for (t, a) in inputs.iter().zip(args) {
        if t.is_dynamic() {
            let offset = U256::from(32 * inputs.len() + tail.len());
            head.extend_from_slice(&offset.to_be_bytes::<32>());
            let data = match t {
                AbiType::String => a.as_bytes().to_vec(),
                _ => parse_hex(a)?,
            };
            tail.extend_from_slice(&U256::from(data.len()).to_be_bytes::<32>());
            tail.extend_from_slice(&data);
            tail.resize(tail.len() + (32 - data.len() % 32) % 32, 0);
        } else {
            head.extend_from_slice(&word_from_value(*t, a)?);
        }
    }
    let mut out = selector(name, inputs).to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&tail);
    Ok(out)
}

fn word(data: &[u8], offset: usize) -> Result<&[u8], ConditionError> {
    data.get(offset..offset + 32)
        .ok_or_else(|| ConditionError::Rpc("call returned too little data".into()))
}

fn small(v: U256, what: &str) -> Result<usize, ConditionError> {
    usize::try_from(v).map_err(|_| ConditionError::Rpc(format!("returned {what} is too large")))
}

/// Decodes a call's return data.
pub fn decode_outputs(outputs: &[AbiType], data: &[u8]) -> Result<Vec<AbiValue>, ConditionError> {
    let mut values = Vec::with_capacity(outputs.len());
    for (i, t) in outputs.iter().enumerate() {
        let w = word(data, 32 * i)?;
        let as_uint = U256::from_be_slice(w);
        let value =
            match t {
                AbiType::Address => {
                    let mut a = [0u8; 20];
                    a.copy_from_slice(&w[12..]);
                    AbiValue::Address(a)
                }
                AbiType::Bool => AbiValue::Bool(as_uint != U256::ZERO),
                AbiType::Uint(_) => AbiValue::Uint(as_uint),
                AbiType::Int(_) => {
                    if w[0] & 0x80 != 0 {
                        AbiValue::Int(true, U256::ZERO.wrapping_sub(as_uint))
                    } else {
                        AbiValue::Int(false, as_uint)
                    }
                }
                AbiType::FixedBytes(n) => AbiValue::Bytes(w[..*n].to_vec()),
                AbiType::Bytes | AbiType::String => {
                    let start = small(as_uint, "offset")?;
                    let len = small(U256::from_be_slice(word(data, start)?), "length")?;
                    let bytes = data
                        .get(start + 32..start + 32 + len)
                        .ok_or_else(|| ConditionError::Rpc("call returned too little data".into()))?
                        .to_vec();
                    if *t == AbiType::String {
                        AbiValue::String(String::from_utf8(bytes).map_err(|_| {
                            ConditionError::Rpc("returned string is not UTF-8".into())
                        })?)
                    } else {
                        AbiValue::Bytes(bytes)
                    }
                }
            };
        values.push(value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_known_values() {
        // well-known selectors from the ERC20/ERC721 standards
        assert_eq!(
            selector("balanceOf", &[AbiType::Address]),
            [0x70, 0xa0, 0x82, 0x31]
        );
        assert_eq!(
            selector("ownerOf", &[AbiType::Uint(256)]),
            [0x63, 0x52, 0x21, 0x1e]
        );
        assert_eq!(
            selector("transfer", &[AbiType::Address, AbiType::Uint(256)]),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
    }

    #[test]
    fn encode_decode_roundtrip_with_dynamic_types() {
        let types = [
            AbiType::Address,
            AbiType::String,
            AbiType::Int(256),
            AbiType::Bool,
        ];
        let args = [
            format!("0x{}", "11".repeat(20)),
            "hello".to_string(),
            "-5".to_string(),
            "true".to_string(),
        ];
        let call = encode_call("f", &types, &args).unwrap();
        // selector + 4 head words + length word + one padded data word
        assert_eq!(call.len(), 4 + 32 * 6);
        let values = decode_outputs(&types, &call[4..]).unwrap();
        assert_eq!(values[0], AbiValue::Address([0x11; 20]));
        assert_eq!(values[1], AbiValue::String("hello".into()));
        assert_eq!(values[2], AbiValue::Int(true, U256::from(5u8)));
        assert_eq!(values[3], AbiValue::Bool(true));
    }

    #[test]
    fn bad_types_and_values_are_refused() {
        for t in [
            "uint7",
            "uint264",
            "bytes0",
            "bytes33",
            "uint256[]",
            "tuple",
            "float",
        ] {
            assert!(AbiType::parse(t).is_err(), "{t}");
        }
        assert_eq!(AbiType::parse("uint").unwrap(), AbiType::Uint(256));
        assert!(encode_call("f", &[AbiType::Uint(8)], &["256".into()]).is_err());
        assert!(encode_call("f", &[AbiType::Int(8)], &["-129".into()]).is_err());
        assert!(encode_call("f", &[AbiType::Int(8)], &["-128".into()]).is_ok());
        assert!(encode_call("f", &[AbiType::Address], &["0x12".into()]).is_err());
        assert!(encode_call("f", &[AbiType::Bool], &["yes".into()]).is_err());
        assert!(encode_call("f", &[AbiType::Bool], &[]).is_err());
        // truncated and lying return data
        assert!(decode_outputs(&[AbiType::Uint(256)], &[0u8; 31]).is_err());
        let mut lying = vec![0u8; 64];
        lying[31] = 32;
        lying[63] = 200; // length 200 but no data
        assert!(decode_outputs(&[AbiType::String], &lying).is_err());
    }
}
