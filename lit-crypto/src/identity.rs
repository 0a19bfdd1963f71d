//! Identities of access-controlled data and the canonical JSON of access control conditions.
//!
//! Data encrypted under access control conditions is encrypted (see [`crate::ibe`]) to the
//! identity
//!
//! ```text
//! lit-accesscontrolcondition://<hex sha256(canonical conditions JSON)>/<hex sha256(plaintext)>
//! ```
//!
//! with both hashes in lowercase hex (64 characters each). The network signs that identity
//! (its UTF-8 bytes) only for a caller who satisfies the conditions, and the signature is the
//! decryption key; binding the hash of the plaintext lets a decryptor check that it got the
//! data the encryptor meant.
//!
//! # What is hashed
//!
//! `conditions` is the condition **list** exactly as the client sent it: the JSON array that a
//! request carries under `accessControlConditions`, `evmContractConditions` or
//! `unifiedAccessControlConditions` (Lit's three request keys; see `lit_api::conditions`),
//! with every leaf, operator and group, in its order, and with `conditionType` present exactly
//! where the client wrote it (Lit's `accessControlConditions` usually omit it; nothing is
//! inserted or normalised before hashing, beyond the canonical form below). The request key is
//! **not** hashed: a key only restricts which lists it may carry and never changes what a list
//! means, so the same list is the same identity under any key. Any change to the list — a
//! field of a leaf, a field added or removed (`conditionType` included), an operator, the
//! order of items — is another identity, whose decryption key does not open the data.
//!
//! This differs from Lit's own SDK, which hashes a re-serialised form of each kind
//! (`hashAccessControlConditions`, `hashEVMContractConditions`,
//! `hashUnifiedAccessControlConditions` in `@lit-protocol/access-control-conditions`); ciphertexts
//! are not exchanged between the two networks (they are encrypted to different keys), so only
//! the principle is shared: the identity binds the conditions the nodes evaluate.
//!
//! # Canonical JSON
//!
//! Two encodings of the same conditions must hash the same, so the conditions are hashed in a
//! canonical form. It is the JSON Canonicalization Scheme of RFC 8785 restricted to the values
//! conditions need, and every input outside that subset is **refused** rather than guessed at:
//!
//! - **No whitespace** between tokens.
//! - **Objects**: members sorted by key, comparing keys as sequences of UTF-16 code units
//!   (RFC 8785 §3.2.3; this equals code point order except for characters above U+FFFF).
//!   Duplicate keys are refused (RFC 8785 requires unique keys; JSON parsers disagree on which
//!   duplicate wins).
//! - **Arrays** keep their order (order is meaningful in conditions).
//! - **Strings** are written as UTF-8, *not* Unicode-normalized (`"é"` as U+00E9 and as
//!   `e` + U+0301 are different strings, as in RFC 8785). Only `"`, `\` and the control
//!   characters U+0000–U+001F are escaped: `\b \t \n \f \r` where they exist, `\u00xx` with
//!   lowercase hex otherwise; every other character, including non-ASCII ones, is written
//!   literally. Escapes in the input (`"\u00e9"`) are decoded first, so they hash like the
//!   literal character.
//! - **Numbers** must be integers of magnitude at most 2^53 − 1 (JavaScript's safe integers) and
//!   are written in plain decimal (`1.0` and `1e2` become `1` and `100`, as RFC 8785 does).
//!   Fractions and larger magnitudes are refused: conditions carry big values (wei amounts,
//!   token ids) as strings, and refusing them here keeps every implementation in agreement.
//! - `true`, `false` and `null` as themselves.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

/// The scheme prefix of an access-control identity.
pub const ACCESS_CONTROL_SCHEME: &str = "lit-accesscontrolcondition://";

/// The largest integer magnitude allowed in canonical JSON (JavaScript's
/// `Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Errors of canonicalization and identity parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The input is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// An object has the same key twice.
    #[error("duplicate object key {0:?}")]
    DuplicateKey(String),
    /// A number that is not an integer within ±(2^53 − 1).
    #[error("number {0} is not allowed in canonical JSON (integers up to 2^53-1 only)")]
    UnsupportedNumber(String),
    /// An identity string that is not `lit-accesscontrolcondition://<64 hex>/<64 hex>`.
    #[error("malformed access control identity: {0}")]
    MalformedIdentity(&'static str),
    /// The plaintext does not hash to the identity's data hash.
    #[error("the plaintext does not match the identity's data hash")]
    DataHashMismatch,
}

/// A JSON value in the canonical subset (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Canonical {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Array(Vec<Canonical>),
    /// Members in input order; sorted when written.
    Object(Vec<(String, Canonical)>),
}

impl Canonical {
    fn write(&self, out: &mut String) {
        match self {
            Canonical::Null => out.push_str("null"),
            Canonical::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Canonical::Int(i) => out.push_str(&i.to_string()),
            Canonical::Str(s) => write_string(s, out),
            Canonical::Array(items) => {
                out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Canonical::Object(members) => {
                let mut sorted: Vec<&(String, Canonical)> = members.iter().collect();
                sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                out.push('{');
                for (k, (key, value)) in sorted.into_iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    fn from_value(v: &serde_json::Value) -> Result<Self, IdentityError> {
        Ok(match v {
            serde_json::Value::Null => Canonical::Null,
            serde_json::Value::Bool(b) => Canonical::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    int(i)?
                } else if let Some(u) = n.as_u64() {
                    return Err(IdentityError::UnsupportedNumber(u.to_string()));
                } else {
                    float(n.as_f64().unwrap_or(f64::NAN))?
                }
            }
            serde_json::Value::String(s) => Canonical::Str(s.clone()),
            serde_json::Value::Array(a) => Canonical::Array(
                a.iter()
                    .map(Canonical::from_value)
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(m) => Canonical::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), Canonical::from_value(v)?)))
                    .collect::<Result<_, IdentityError>>()?,
            ),
        })
    }
}

fn int(i: i64) -> Result<Canonical, IdentityError> {
    if i.unsigned_abs() > MAX_SAFE_INTEGER {
        return Err(IdentityError::UnsupportedNumber(i.to_string()));
    }
    Ok(Canonical::Int(i))
}

fn float(f: f64) -> Result<Canonical, IdentityError> {
    // Integral values within the safe range are exactly representable, so the casts are exact.
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Canonical::Int(f as i64));
    }
    Err(IdentityError::UnsupportedNumber(f.to_string()))
}

/// Writes a JSON string with the escaping of RFC 8785 (which is serde_json's).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parses JSON into [`Canonical`], refusing duplicate keys and unsupported numbers. The first
/// such refusal is kept in `error`, so that it reaches the caller typed rather than as text.
#[derive(Clone, Copy)]
struct CanonicalSeed<'a> {
    error: &'a Cell<Option<IdentityError>>,
}

impl CanonicalSeed<'_> {
    fn refuse<E: de::Error>(&self, e: IdentityError) -> E {
        let msg = e.to_string();
        self.error.set(Some(e));
        E::custom(msg)
    }
}

impl<'de> de::DeserializeSeed<'de> for CanonicalSeed<'_> {
    type Value = Canonical;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Canonical, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CanonicalSeed<'_> {
    type Value = Canonical;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Canonical, E> {
        Ok(Canonical::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Canonical, E> {
        Ok(Canonical::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Canonical, E> {
        int(v).map_err(|e| self.refuse(e))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Canonical, E> {
        match i64::try_from(v) {
            Ok(i) => int(i).map_err(|e| self.refuse(e)),
            Err(_) => Err(self.refuse(IdentityError::UnsupportedNumber(v.to_string()))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Canonical, E> {
        float(v).map_err(|e| self.refuse(e))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Canonical, E> {
        Ok(Canonical::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Canonical, E> {
        Ok(Canonical::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Canonical, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Canonical::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Canonical, A::Error> {
        let mut members: Vec<(String, Canonical)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(self.refuse(IdentityError::DuplicateKey(key)));
            }
            let value = map.next_value_seed(self)?;
            members.push((key, value));
        }
        Ok(Canonical::Object(members))
    }
}

/// The canonical form (see the module docs) of a JSON text. Refuses invalid JSON, duplicate
/// keys and numbers outside the canonical subset.
pub fn canonical_json(json: &str) -> Result<String, IdentityError> {
    let error = Cell::new(None);
    let seed = CanonicalSeed { error: &error };
    let mut de = serde_json::Deserializer::from_str(json);
    let value = de::DeserializeSeed::deserialize(seed, &mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            error
                .take()
                .unwrap_or(IdentityError::InvalidJson(e.to_string()))
        })?;
    let mut out = String::with_capacity(json.len());
    value.write(&mut out);
    Ok(out)
}

/// The canonical form of an already-parsed JSON value (which cannot hold duplicate keys).
pub fn canonical_json_value(value: &serde_json::Value) -> Result<String, IdentityError> {
    let mut out = String::new();
    Canonical::from_value(value)?.write(&mut out);
    Ok(out)
}

/// `SHA-256(canonical_json(conditions))`.
pub fn conditions_hash(conditions_json: &str) -> Result<[u8; 32], IdentityError> {
    Ok(Sha256::digest(canonical_json(conditions_json)?.as_bytes()).into())
}

/// The identity of data encrypted under access control conditions:
/// `lit-accesscontrolcondition://<hex sha256(canonical conditions)>/<hex sha256(data)>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccessControlIdentity {
    conditions_hash: [u8; 32],
    data_hash: [u8; 32],
}

impl AccessControlIdentity {
    /// The identity of `plaintext` under the conditions `conditions_json`.
    pub fn new(conditions_json: &str, plaintext: &[u8]) -> Result<Self, IdentityError> {
        Ok(Self {
            conditions_hash: conditions_hash(conditions_json)?,
            data_hash: Sha256::digest(plaintext).into(),
        })
    }

    /// The identity of data hashing to `data_hash` under the conditions `conditions` (a parsed
    /// JSON value, hashed in its canonical form): the one constructor the node (which signs the
    /// identity) and the client (which encrypts to it) both call. `conditions` is the condition
    /// list as sent, whichever request key carried it (see "What is hashed" in the module docs).
    pub fn for_conditions(
        conditions: &serde_json::Value,
        data_hash: [u8; 32],
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            conditions_hash: Sha256::digest(canonical_json_value(conditions)?.as_bytes()).into(),
            data_hash,
        })
    }

    /// An identity from its two hashes.
    pub fn from_hashes(conditions_hash: [u8; 32], data_hash: [u8; 32]) -> Self {
        Self {
            conditions_hash,
            data_hash,
        }
    }

    /// `SHA-256` of the canonical conditions.
    pub fn conditions_hash(&self) -> [u8; 32] {
        self.conditions_hash
    }

    /// `SHA-256` of the plaintext.
    pub fn data_hash(&self) -> [u8; 32] {
        self.data_hash
    }

    /// The identity string's UTF-8 bytes: what the network signs and what [`crate::ibe`]
    /// encrypts to.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Whether `conditions_json` are the conditions of this identity.
    pub fn matches_conditions(&self, conditions_json: &str) -> Result<bool, IdentityError> {
        Ok(conditions_hash(conditions_json)? == self.conditions_hash)
    }

    /// Checks that a decrypted plaintext is the data this identity names.
    pub fn verify_plaintext(&self, plaintext: &[u8]) -> Result<(), IdentityError> {
        let h: [u8; 32] = Sha256::digest(plaintext).into();
        if h == self.data_hash {
            Ok(())
        } else {
            Err(IdentityError::DataHashMismatch)
        }
    }
}

impl fmt::Display for AccessControlIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ACCESS_CONTROL_SCHEME}{}/{}",
            hex::encode(self.conditions_hash),
            hex::encode(self.data_hash)
        )
    }
}

impl fmt::Debug for AccessControlIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessControlIdentity({self})")
    }
}

impl FromStr for AccessControlIdentity {
    type Err = IdentityError;

    /// Parses the exact form written by `Display`: the scheme, then two 64-character
    /// lowercase hex hashes separated by `/`.
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        let rest = s
            .strip_prefix(ACCESS_CONTROL_SCHEME)
            .ok_or(IdentityError::MalformedIdentity("scheme"))?;
        let (c, d) = rest
            .split_once('/')
            .ok_or(IdentityError::MalformedIdentity("missing '/'"))?;
        Ok(Self {
            conditions_hash: parse_hash(c)?,
            data_hash: parse_hash(d)?,
        })
    }
}

fn parse_hash(s: &str) -> Result<[u8; 32], IdentityError> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(IdentityError::MalformedIdentity(
            "hash must be 64 lowercase hex characters",
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| IdentityError::MalformedIdentity("hash must be hex"))?;
    Ok(out)
}

impl serde::Serialize for AccessControlIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AccessControlIdentity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_examples() {
        let cases = [
            (
                r#" { "b" : 1 , "a" : [ true , null , "x" ] } "#,
                r#"{"a":[true,null,"x"],"b":1}"#,
            ),
            (
                r#"{"n": 1.0, "m": 1e2, "k": -0}"#,
                r#"{"k":0,"m":100,"n":1}"#,
            ),
            (
                r#""caf\u00e9 \n\u0001 \"q\" \\""#,
                "\"café \\n\\u0001 \\\"q\\\" \\\\\"",
            ),
            // UTF-16 order: U+1F600 (surrogates D83D..) sorts before U+FF21
            (
                "{\"\u{ff21}\":1,\"\u{1f600}\":2}",
                "{\"\u{1f600}\":2,\"\u{ff21}\":1}",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical_json(input).unwrap(), expected, "input {input}");
        }
    }

    /// The identity the node signs and the client encrypts to, against the canonical text
    /// written out by hand.
    #[test]
    fn identity_of_parsed_conditions_hashes_their_canonical_text() {
        let conditions = serde_json::json!([{"conditionType": "evmBasic", "contractAddress": "",
            "standardContractType": "", "chain": "ethereum", "method": "",
            "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": "0x0000000000000000000000000000000000000001"}}]);
        let canonical = concat!(
            r#"[{"chain":"ethereum","conditionType":"evmBasic","contractAddress":"","method":"","#,
            r#""parameters":[":userAddress"],"returnValueTest":{"comparator":"=","#,
            r#""value":"0x0000000000000000000000000000000000000001"},"standardContractType":""}]"#
        );
        let data_hash: [u8; 32] = Sha256::digest(b"the data").into();
        let identity = AccessControlIdentity::for_conditions(&conditions, data_hash).unwrap();
        assert_eq!(
            identity,
            AccessControlIdentity::from_hashes(Sha256::digest(canonical).into(), data_hash)
        );
        // the same as from the conditions' text, however it is laid out
        let pretty = serde_json::to_string_pretty(&conditions).unwrap();
        assert_eq!(
            identity,
            AccessControlIdentity::new(&pretty, b"the data").unwrap()
        );
        assert!(identity
            .matches_conditions(&conditions.to_string())
            .unwrap());
        // and refused where the text is
        assert!(matches!(
            AccessControlIdentity::for_conditions(&serde_json::json!([{"n": 0.5}]), data_hash),
            Err(IdentityError::UnsupportedNumber(_))
        ));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            canonical_json(r#"{"a":1,"a":2}"#),
            Err(IdentityError::DuplicateKey(k)) if k == "a"
        ));
        assert!(matches!(
            canonical_json("1.5"),
            Err(IdentityError::UnsupportedNumber(_))
        ));
        assert!(matches!(
            canonical_json("9007199254740992"),
            Err(IdentityError::UnsupportedNumber(_))
        ));
        assert!(canonical_json("9007199254740991").is_ok());
        assert_eq!(
            canonical_json(r#"[{"x":[{"a\"b":1,"a\"b":2}]}]"#),
            Err(IdentityError::DuplicateKey("a\"b".into()))
        );
        assert_eq!(
            canonical_json(r#"{"big":18446744073709551615}"#),
            Err(IdentityError::UnsupportedNumber(
                "18446744073709551615".into()
            ))
        );
        let value: serde_json::Value = serde_json::from_str("[0.5]").unwrap();
        assert!(matches!(
            canonical_json_value(&value),
            Err(IdentityError::UnsupportedNumber(_))
        ));
        assert!(matches!(
            canonical_json("{"),
            Err(IdentityError::InvalidJson(_))
        ));
        assert!(matches!(
            canonical_json("[] []"),
            Err(IdentityError::InvalidJson(_))
        ));
    }
}
