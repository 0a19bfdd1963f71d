//! Contract calls in conditions, on alloy's dynamic ABI: a condition names its function and the
//! types of its inputs and outputs at run time (`functionAbi`), so calls are encoded and return
//! data decoded by `alloy-dyn-abi` (Solidity ABI specification, "Formal Specification of the
//! Encoding").
//!
//! What stays here is the conditions' own format: parameters and expected values are strings
//! (decimal or `0x` hexadecimal numbers, `0x` addresses and bytes, `true`/`false`), and only the
//! elementary types `address`, `bool`, `uint<M>`, `int<M>`, `bytes<M>`, `bytes` and `string` are
//! allowed, since a `returnValueTest` compares one such value. Arrays and tuples are refused with
//! a clear error.

use alloy_dyn_abi::{FunctionExt as _, JsonAbiExt as _};
use alloy_json_abi::{Function, Param, StateMutability};
use alloy_primitives::{Address, B256, I256, U256};

pub use alloy_dyn_abi::{DynSolType, DynSolValue};

use super::ConditionError;

fn invalid(msg: impl Into<String>) -> ConditionError {
    ConditionError::Invalid(msg.into())
}

/// Parses a Solidity type name of a condition's input or output (`uint` is `uint256`).
pub fn parse_type(name: &str) -> Result<DynSolType, ConditionError> {
    let ty =
        DynSolType::parse(name).map_err(|e| invalid(format!("invalid ABI type {name:?}: {e}")))?;
    match ty {
        DynSolType::Address
        | DynSolType::Bool
        | DynSolType::Int(_)
        | DynSolType::Uint(_)
        | DynSolType::FixedBytes(_)
        | DynSolType::Bytes
        | DynSolType::String => Ok(ty),
        _ => Err(invalid(format!(
            "ABI type {name:?} is not supported in conditions (arrays and tuples are not)"
        ))),
    }
}

/// The view function `name(inputs…) returns (outputs…)` with canonical type names, so that its
/// selector is that of the canonical signature (`uint` written as `uint256`).
pub fn function(name: &str, inputs: &[DynSolType], outputs: &[DynSolType]) -> Function {
    let params = |types: &[DynSolType]| {
        types
            .iter()
            .map(|ty| Param {
                ty: ty.sol_type_name().into_owned(),
                name: String::new(),
                components: Vec::new(),
                internal_type: None,
            })
            .collect()
    };
    Function {
        name: name.to_string(),
        inputs: params(inputs),
        outputs: params(outputs),
        state_mutability: StateMutability::View,
    }
}

/// The 4-byte selector of `name(inputs…)`.
pub fn selector(name: &str, inputs: &[DynSolType]) -> [u8; 4] {
    function(name, inputs, &[]).selector().0
}

/// Encodes a call of `name(inputs…)` with string arguments.
pub fn encode_call(
    name: &str,
    inputs: &[DynSolType],
    args: &[String],
) -> Result<Vec<u8>, ConditionError> {
    if inputs.len() != args.len() {
        return Err(invalid(format!(
            "{name} takes {} parameters, {} given",
            inputs.len(),
            args.len()
        )));
    }
    let values = inputs
        .iter()
        .zip(args)
        .map(|(ty, arg)| parse_value(ty, arg))
        .collect::<Result<Vec<_>, _>>()?;
    function(name, inputs, &[])
        .abi_encode_input(&values)
        .map_err(|e| invalid(format!("cannot encode a call of {name}: {e}")))
}

/// Encodes a call of `name(inputs…)` with already-typed arguments (arrays included, for the
/// standard calls such as ERC-1155 `balanceOfBatch`).
pub fn encode_values(
    name: &str,
    inputs: &[DynSolType],
    values: &[DynSolValue],
) -> Result<Vec<u8>, ConditionError> {
    function(name, inputs, &[])
        .abi_encode_input(values)
        .map_err(|e| invalid(format!("cannot encode a call of {name}: {e}")))
}

/// Decodes a call's return data. Data that does not hold `outputs` is the chain's fault.
pub fn decode_outputs(
    outputs: &[DynSolType],
    data: &[u8],
) -> Result<Vec<DynSolValue>, ConditionError> {
    function("", &[], outputs)
        .abi_decode_output(data)
        .map_err(|e| ConditionError::Rpc(format!("cannot decode the call's return data: {e}")))
}

/// Parses a condition's string as a value of the elementary type `ty`, refusing what does not
/// fit it (the encoder itself only checks the kind of a value, not its range).
pub fn parse_value(ty: &DynSolType, s: &str) -> Result<DynSolValue, ConditionError> {
    Ok(match *ty {
        DynSolType::Address => DynSolValue::Address(parse_address(s)?),
        DynSolType::Bool => DynSolValue::Bool(match s {
            "true" => true,
            "false" => false,
            _ => return Err(invalid(format!("{s:?} is not true/false"))),
        }),
        DynSolType::Uint(bits) => {
            let v = parse_uint(s)?;
            if bits < 256 && v >= (U256::from(1u8) << bits) {
                return Err(invalid(format!("{s} does not fit uint{bits}")));
            }
            DynSolValue::Uint(v, bits)
        }
        DynSolType::Int(bits) => {
            let (negative, magnitude) = parse_int(s)?;
            let limit = U256::from(1u8) << (bits - 1);
            if (!negative && magnitude >= limit) || (negative && magnitude > limit) {
                return Err(invalid(format!("{s} does not fit int{bits}")));
            }
            let twos = if negative {
                U256::ZERO.wrapping_sub(magnitude)
            } else {
                magnitude
            };
            DynSolValue::Int(I256::from_raw(twos), bits)
        }
        DynSolType::FixedBytes(n) => {
            let b = parse_hex(s)?;
            if b.len() != n {
                return Err(invalid(format!("{s:?} is not {n} bytes")));
            }
            let mut word = B256::ZERO;
            word[..n].copy_from_slice(&b);
            DynSolValue::FixedBytes(word, n)
        }
        DynSolType::Bytes => DynSolValue::Bytes(parse_hex(s)?),
        DynSolType::String => DynSolValue::String(s.to_string()),
        _ => {
            return Err(invalid(format!(
                "{} is not supported in conditions",
                ty.sol_type_name()
            )))
        }
    })
}

fn parse_hex(s: &str) -> Result<Vec<u8>, ConditionError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{s:?} must be 0x-prefixed hex")))?;
    hex::decode(digits).map_err(|_| invalid(format!("{s:?} is not hex")))
}

/// Parses `0x` + 40 hex digits (any case) as an address.
pub fn parse_address(s: &str) -> Result<Address, ConditionError> {
    let b = parse_hex(s)?;
    Address::try_from(b.as_slice()).map_err(|_| invalid(format!("{s:?} is not a 20-byte address")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_known_values() {
        // well-known selectors from the ERC20/ERC721 standards
        assert_eq!(
            selector("balanceOf", &[DynSolType::Address]),
            [0x70, 0xa0, 0x82, 0x31]
        );
        assert_eq!(
            selector("ownerOf", &[DynSolType::Uint(256)]),
            [0x63, 0x52, 0x21, 0x1e]
        );
        assert_eq!(
            selector("transfer", &[DynSolType::Address, DynSolType::Uint(256)]),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        // `uint` is `uint256` in the signature
        let uint = parse_type("uint").unwrap();
        assert_eq!(uint, DynSolType::Uint(256));
        assert_eq!(selector("ownerOf", &[uint]), [0x63, 0x52, 0x21, 0x1e]);
    }

    #[test]
    fn encode_decode_roundtrip_with_dynamic_types() {
        let types = [
            DynSolType::Address,
            DynSolType::String,
            DynSolType::Int(256),
            DynSolType::Bool,
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
        assert_eq!(values[0], DynSolValue::Address(Address::repeat_byte(0x11)));
        assert_eq!(values[1], DynSolValue::String("hello".into()));
        assert_eq!(
            values[2],
            DynSolValue::Int(I256::try_from(-5).unwrap(), 256)
        );
        assert_eq!(values[3], DynSolValue::Bool(true));
    }

    #[test]
    fn bad_types_and_values_are_refused() {
        for t in [
            "uint7",
            "uint264",
            "bytes0",
            "bytes33",
            "uint256[]",
            "(uint256,bool)",
            "tuple",
            "function",
            "float",
        ] {
            assert!(parse_type(t).is_err(), "{t}");
        }
        let err = parse_type("uint256[2]").unwrap_err();
        assert!(err.to_string().contains("arrays and tuples"), "{err}");
        let f = |ty: DynSolType, arg: &str| encode_call("f", &[ty], &[arg.into()]);
        assert!(f(DynSolType::Uint(8), "256").is_err());
        assert!(f(DynSolType::Uint(8), "255").is_ok());
        assert!(f(DynSolType::Int(8), "-129").is_err());
        assert!(f(DynSolType::Int(8), "-128").is_ok());
        assert!(f(DynSolType::Int(8), "128").is_err());
        assert!(f(DynSolType::Address, "0x12").is_err());
        assert!(f(DynSolType::Address, &"11".repeat(20)).is_err());
        assert!(f(DynSolType::Bool, "yes").is_err());
        assert!(f(DynSolType::FixedBytes(2), "0x0102").is_ok());
        assert!(f(DynSolType::FixedBytes(2), "0x01").is_err());
        assert!(encode_call("f", &[DynSolType::Bool], &[]).is_err());
        // truncated and lying return data
        assert!(decode_outputs(&[DynSolType::Uint(256)], &[0u8; 31]).is_err());
        let mut lying = vec![0u8; 64];
        lying[31] = 32;
        lying[63] = 200; // length 200 but no data
        let err = decode_outputs(&[DynSolType::String], &lying).unwrap_err();
        assert!(matches!(err, ConditionError::Rpc(_)), "{err}");
    }

    #[test]
    fn negative_ints_encode_as_twos_complement() {
        let call = encode_call("f", &[DynSolType::Int(8)], &["-1".into()]).unwrap();
        assert_eq!(&call[4..], &[0xff; 32]);
        let call = encode_call("f", &[DynSolType::Uint(256)], &["0x10".into()]).unwrap();
        assert_eq!(call[4 + 31], 0x10);
    }
}
