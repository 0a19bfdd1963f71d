//! Access control conditions in Lit's JSON shapes.
//!
//! A condition list is an array whose items are conditions, boolean operators
//! (`{"operator": "and"}` / `{"operator": "or"}`) between them, or nested arrays (groups). Lit
//! evaluates it left to right with no precedence: `a or b and c` means `(a or b) and c`.
//!
//! ```json
//! [
//!   {"contractAddress": "", "standardContractType": "", "chain": "anvil", "method": "",
//!    "parameters": [":userAddress"],
//!    "returnValueTest": {"comparator": "=", "value": "0x5b38da6a701c568545dcfcb03fcb875f56beddc4"}},
//!   {"operator": "or"},
//!   [ {"conditionType": "evmContract", "...": "..."} ]
//! ]
//! ```
//!
//! # The three request shapes
//!
//! A request carries its list under exactly one of Lit's keys ([`ConditionsKind`]; the JSON
//! schemas are `MultipleAccessControlConditionsSchema` in Lit's JS SDK,
//! `packages/access-control-conditions-schemas`):
//!
//! | key | items | `conditionType` |
//! |---|---|---|
//! | `accessControlConditions` | Lit's "basic" EVM conditions (and, here, contract calls too) | optional: inferred when absent |
//! | `evmContractConditions` | contract calls by ABI only | optional; every leaf must be `evmContract` |
//! | `unifiedAccessControlConditions` | any kind | required on every leaf |
//! | `solRpcConditions` | Solana | refused: [`ConditionsError::UnknownType`] |
//!
//! A leaf without `conditionType` is classified by its fields: `functionAbi`, `functionName`
//! or `functionParams` make it `evmContract`; `standardContractType`, `method`, `parameters` or
//! `contractAddress` make it `evmBasic`; Solana's (`pdaInterface`, `pdaKey`, `pdaParams`,
//! `params`) and Cosmos's (`path`) fields name kinds this node does not evaluate, refused as
//! [`ConditionsError::UnknownType`] like a `conditionType` of `"solRpc"` or `"cosmos"`. Fields
//! outside a kind's shape are refused (Lit's schemas are `.strict()` too); the fields Lit's
//! schemas allow are all accepted, including `internalType`, `type`, `constant` and
//! `stateMutability` in `functionAbi` and `key` in `returnValueTest`.
//!
//! The key only decides which lists a request may carry; it never changes what a list means:
//! the same list under two keys is evaluated the same. That is why the identity of encrypted
//! data hashes the list alone (`lit_crypto::identity`), exactly as the client sent it (with or
//! without `conditionType`, in its order), and not the key.
//!
//! # Parameters
//!
//! Where a parameter (or a `returnValueTest.value`) is exactly one of these, the evaluating node
//! replaces it (Lit's `substitute_special_params`, `lit-peer` `access_control/mod.rs`):
//!
//! - `:userAddress`: the address the caller authenticated as;
//! - `:currentActionIpfsId`: the CID of the Lit Action checking the conditions (inside
//!   `Lit.Actions.checkConditions` and `decryptAndCombine`). Outside an action there is none,
//!   and a condition that names it is false whatever its comparator (Lit substitutes `""`, which
//!   a condition could match; here it matches nothing);
//! - `:litParam:<name>`: the value the request gives for `<name>` in its `litParams`. Lit reads
//!   these from resources `litParam:<name>:<base64url value>` of the SIWE message; here they come
//!   with the request. Either way the requester chooses them: they select, they never prove.
//!
//! [`parse_as`] turns untrusted JSON into these types with a typed [`ConditionsError`], so an
//! unknown kind is told apart from a malformed one; serialising gives back the same JSON,
//! `conditionType` present exactly where it was.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most leaf conditions one list may hold.
pub const MAX_CONDITIONS: usize = 30;

/// The deepest nesting of groups accepted.
pub const MAX_DEPTH: usize = 8;

/// The placeholder for the authenticated caller's address.
pub const USER_ADDRESS: &str = ":userAddress";

/// The placeholder for the CID of the Lit Action checking the conditions.
pub const CURRENT_ACTION_IPFS_ID: &str = ":currentActionIpfsId";

/// The prefix of a placeholder for a request parameter: `:litParam:<name>`.
pub const LIT_PARAM_PREFIX: &str = ":litParam:";

/// Why a condition list was refused before evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionsError {
    /// A condition's kind is not one this node evaluates (`solRpc`, `cosmos`, …).
    #[error("unknown conditionType {0:?} (supported: evmBasic, evmContract)")]
    UnknownType(String),
    /// A condition or operator is not well-formed.
    #[error("malformed condition at {path}: {reason}")]
    Malformed {
        /// Where, as a JSON path like `[2][0]`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Operators and conditions do not alternate (`a and b`), or a group is empty.
    #[error("bad structure at {path}: {reason}")]
    Structure {
        /// Where.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A leaf of another kind than the request key allows (an `evmBasic` condition under
    /// `evmContractConditions`).
    #[error("{path}: a {found} condition under {key} (only {expected} conditions go there)")]
    WrongKind {
        /// Where.
        path: String,
        /// The request key.
        key: &'static str,
        /// The kind that key takes.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// Not exactly one of the request keys of [`ConditionsKind`] was given.
    #[error(
        "give exactly one of accessControlConditions, evmContractConditions, \
         unifiedAccessControlConditions; got {}",
        if .0.is_empty() { "none".to_string() } else { .0.join(", ") }
    )]
    NotExactlyOneList(Vec<&'static str>),
    /// More than [`MAX_CONDITIONS`] conditions.
    #[error("{0} conditions, at most {MAX_CONDITIONS} allowed")]
    TooMany(usize),
    /// Groups nested deeper than [`MAX_DEPTH`].
    #[error("groups nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// The request key a condition list comes under (Lit's names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConditionsKind {
    /// `accessControlConditions`: `conditionType` optional, inferred from the fields.
    #[default]
    AccessControl,
    /// `evmContractConditions`: only `evmContract` leaves.
    EvmContract,
    /// `unifiedAccessControlConditions`: every leaf names its `conditionType`.
    Unified,
    /// `solRpcConditions`: accepted as a request shape, refused as
    /// [`ConditionsError::UnknownType`] (`"solRpc"`).
    SolRpc,
}

impl ConditionsKind {
    /// Every kind, in the order of the request keys.
    pub const ALL: [ConditionsKind; 4] = [
        ConditionsKind::AccessControl,
        ConditionsKind::EvmContract,
        ConditionsKind::Unified,
        ConditionsKind::SolRpc,
    ];

    /// The request key (JSON field name).
    pub const fn key(self) -> &'static str {
        match self {
            ConditionsKind::AccessControl => "accessControlConditions",
            ConditionsKind::EvmContract => "evmContractConditions",
            ConditionsKind::Unified => "unifiedAccessControlConditions",
            ConditionsKind::SolRpc => "solRpcConditions",
        }
    }

    /// The kind of a request key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Picks the one list given among a request's optional lists (in the order of
    /// [`ConditionsKind::ALL`]): exactly one must be present.
    pub fn pick(lists: [Option<Value>; 4]) -> Result<(ConditionsKind, Value), ConditionsError> {
        let mut given: Vec<(ConditionsKind, Value)> = Self::ALL
            .into_iter()
            .zip(lists)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        if given.len() == 1 {
            if let Some(one) = given.pop() {
                return Ok(one);
            }
        }
        Err(ConditionsError::NotExactlyOneList(
            given.iter().map(|(k, _)| k.key()).collect(),
        ))
    }

    /// The optional lists of a request carrying `list` under this kind (the inverse of
    /// [`ConditionsKind::pick`]).
    pub fn spread(self, list: Value) -> [Option<Value>; 4] {
        let mut lists = [None, None, None, None];
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        if let Some(slot) = lists.get_mut(i) {
            *slot = Some(list);
        }
        lists
    }
}

/// One item of a condition list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConditionItem {
    /// A leaf condition.
    Condition(Box<Condition>),
    /// A boolean operator combining the items before and after it.
    Operator(Operator),
    /// A parenthesised group.
    Group(Vec<ConditionItem>),
}

/// `{"operator": "and"}` or `{"operator": "or"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// Which operator.
    pub operator: BoolOp,
}

/// A boolean operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoolOp {
    /// Both.
    And,
    /// Either.
    Or,
}

/// A leaf condition. Serialised without a tag: each kind carries its own optional
/// `conditionType`, so a list serialises back to the JSON it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Condition {
    /// A standard check: native balance, ERC20/721/1155, timestamp, the user's address…
    EvmBasic(EvmBasicCondition),
    /// Any view function of any contract, called by ABI.
    EvmContract(EvmContractCondition),
}

impl Condition {
    /// Lit's name of the condition's kind (`evmBasic` or `evmContract`).
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::EvmBasic(_) => EVM_BASIC,
            Condition::EvmContract(_) => EVM_CONTRACT,
        }
    }
}

const EVM_BASIC: &str = "evmBasic";
const EVM_CONTRACT: &str = "evmContract";

/// The `conditionType` of an `evmBasic` condition (the only value it takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvmBasicTag {
    /// `"evmBasic"`.
    #[serde(rename = "evmBasic")]
    EvmBasic,
}

/// The `conditionType` of an `evmContract` condition (the only value it takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvmContractTag {
    /// `"evmContract"`.
    #[serde(rename = "evmContract")]
    EvmContract,
}

/// Lit's `evmBasic` condition.
///
/// | check | `standardContractType` | `method` | `parameters` | compared |
/// |---|---|---|---|---|
/// | the user's address | `""` | `""` | `[":userAddress"]` | the address |
/// | a parameter's value | `""` | `""` | `[":currentActionIpfsId"]` or `[":litParam:<name>"]` | the string |
/// | native balance | `""` | `"eth_getBalance"` | `[":userAddress", "latest"]` | wei |
/// | ERC20 balance | `"ERC20"` | `"balanceOf"` | `[":userAddress"]` | the balance |
/// | ERC721 owner | `"ERC721"` | `"ownerOf"` | `["<token id>"]` | the owner |
/// | ERC721 balance | `"ERC721"` | `"balanceOf"` | `[":userAddress"]` | the balance |
/// | ERC721 collection name | `"ERC721MetadataName"` | `"name"` | `[]` | the `name()` string |
/// | ERC1155 balance | `"ERC1155"` | `"balanceOf"` | `[":userAddress", "<token id>"]` | the balance |
/// | ERC1155 batch | `"ERC1155"` | `"balanceOfBatch"` | `["<addr>,<addr>…", "<id>,<id>…"]` | true if **any** balance passes |
/// | latest block time | `"timestamp"` | `"eth_getBlockByNumber"` | `["latest"]` | seconds |
/// | a Lit Action's answer | `"LitAction"` | the function's name | its arguments | the returned value |
///
/// `LitAction` (Lit's "Lit Action conditions"): `contractAddress` is `ipfs://<CID>` of an action
/// in the node's store; each node runs it, calls the function `method` (a plain JavaScript
/// identifier) with `parameters` (placeholders resolved) and compares what it returns: a string
/// as itself, any other value as its JSON (`true` → `"true"`). The action has no `Lit.Actions`
/// capability and runs under the node's action limits; one that throws or runs out of time is
/// `invalid_conditions`, never met.
///
/// `balanceOfBatch` follows Lit's documentation ("Must posess at least one ERC1155 token from a
/// batch of token ids") and node: the two parameters are comma-separated lists of equal length
/// (addresses, each may be `:userAddress`; decimal token ids), the contract's
/// `balanceOfBatch(address[],uint256[])` is called once, and the condition holds if any returned
/// balance passes the `returnValueTest`. Lists of different lengths are refused here (Lit
/// answers false).
///
/// `ERC721MetadataName` is in Lit's SDK schema (`StandardContractTypeEnum`) but Lit's node has
/// no rule for it (`lit-peer` loads the ERC-721 ABI for it and then answers false). Here it
/// means what its name says: the collection's `name()` of the ERC-721 metadata extension
/// (EIP-721), compared as a string (`=`, `!=`, `contains`, `!contains`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvmBasicCondition {
    /// `"evmBasic"` where the client wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_type: Option<EvmBasicTag>,
    /// The contract, or `""`.
    pub contract_address: String,
    /// `""`, `"ERC20"`, `"ERC721"`, `"ERC721MetadataName"`, `"ERC1155"`, `"timestamp"` or
    /// `"LitAction"`.
    pub standard_contract_type: String,
    /// The chain name, looked up in the node's RPC configuration.
    pub chain: String,
    /// The method (see the table).
    pub method: String,
    /// Parameters; placeholders (see the module docs) are replaced.
    pub parameters: Vec<String>,
    /// How the result is compared.
    pub return_value_test: ReturnValueTest,
}

/// Lit's `evmContract` condition: a call of `functionName` on `contractAddress` described by
/// `functionAbi`, whose output (or the output named `returnValueTest.key`) is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvmContractCondition {
    /// `"evmContract"` where the client wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_type: Option<EvmContractTag>,
    /// The contract.
    pub contract_address: String,
    /// The function's name; must equal `functionAbi.name`.
    pub function_name: String,
    /// Parameters as strings; placeholders (see the module docs) are replaced.
    pub function_params: Vec<String>,
    /// The function's ABI entry.
    pub function_abi: FunctionAbi,
    /// The chain name.
    pub chain: String,
    /// How the result is compared; `key` names the output (`""` for the only one).
    pub return_value_test: ReturnValueTest,
}

/// A function's ABI entry (the Solidity JSON ABI shape, restricted to what a view call needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionAbi {
    /// Function name.
    pub name: String,
    /// Inputs.
    pub inputs: Vec<AbiParam>,
    /// Outputs.
    pub outputs: Vec<AbiParam>,
    /// `"view"` or `"pure"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_mutability: Option<String>,
    /// `"function"`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Legacy ABI flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<bool>,
}

/// One ABI parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AbiParam {
    /// Name (may be empty).
    #[serde(default)]
    pub name: String,
    /// Solidity type, e.g. `uint256`, `address`, `bool`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Internal type, as emitted by solc (ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_type: Option<String>,
}

/// How a returned value is compared with `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnValueTest {
    /// For `evmContract`: which output to compare (`""` for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The comparator.
    pub comparator: Comparator,
    /// The value compared against (a decimal number, an address, `true`/`false`…).
    pub value: String,
}

/// Comparators, with Lit's spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    /// Equal (numbers numerically, addresses case-insensitively).
    #[serde(rename = "=")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less or equal.
    #[serde(rename = "<=")]
    Le,
    /// The returned list or string contains the value.
    #[serde(rename = "contains")]
    Contains,
    /// It does not.
    #[serde(rename = "!contains")]
    NotContains,
}

/// Parses an untrusted condition list given as `accessControlConditions` (a leaf's
/// `conditionType` is optional and inferred; see the module docs).
pub fn parse(value: &Value) -> Result<Vec<ConditionItem>, ConditionsError> {
    parse_as(ConditionsKind::AccessControl, value)
}

/// Parses an untrusted condition list given under the request key of `kind`.
pub fn parse_as(
    kind: ConditionsKind,
    value: &Value,
) -> Result<Vec<ConditionItem>, ConditionsError> {
    if kind == ConditionsKind::SolRpc {
        return Err(ConditionsError::UnknownType("solRpc".into()));
    }
    let mut count = 0;
    let items = parse_list(kind, value, "", 0, &mut count)?;
    if count > MAX_CONDITIONS {
        return Err(ConditionsError::TooMany(count));
    }
    Ok(items)
}

/// The number of leaf conditions in a parsed list.
pub fn count(items: &[ConditionItem]) -> usize {
    items
        .iter()
        .map(|item| match item {
            ConditionItem::Condition(_) => 1,
            ConditionItem::Operator(_) => 0,
            ConditionItem::Group(g) => count(g),
        })
        .sum()
}

fn parse_list(
    kind: ConditionsKind,
    value: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<ConditionItem>, ConditionsError> {
    if depth > MAX_DEPTH {
        return Err(ConditionsError::TooDeep);
    }
    let array = value.as_array().ok_or_else(|| ConditionsError::Malformed {
        path: display_path(path),
        reason: "expected an array of conditions".into(),
    })?;
    if array.is_empty() {
        return Err(ConditionsError::Structure {
            path: display_path(path),
            reason: "empty condition list".into(),
        });
    }
    let mut items = Vec::with_capacity(array.len());
    for (i, v) in array.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let item = parse_item(kind, v, &here, depth, count)?;
        // conditions and groups at even positions, operators at odd ones
        let is_operator = matches!(item, ConditionItem::Operator(_));
        if is_operator != (i % 2 == 1) {
            let reason = if is_operator {
                "an operator must stand between two conditions"
            } else {
                "two conditions must be joined by an operator"
            };
            return Err(ConditionsError::Structure {
                path: here,
                reason: reason.into(),
            });
        }
        items.push(item);
        if *count > MAX_CONDITIONS {
            return Err(ConditionsError::TooMany(*count));
        }
    }
    if array.len() % 2 == 0 {
        return Err(ConditionsError::Structure {
            path: display_path(path),
            reason: "the list ends with an operator".into(),
        });
    }
    Ok(items)
}

fn parse_item(
    kind: ConditionsKind,
    v: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<ConditionItem, ConditionsError> {
    let malformed = |reason: String| ConditionsError::Malformed {
        path: path.to_string(),
        reason,
    };
    match v {
        Value::Array(_) => Ok(ConditionItem::Group(parse_list(
            kind,
            v,
            path,
            depth + 1,
            count,
        )?)),
        Value::Object(map) if map.contains_key("operator") => {
            serde_json::from_value::<Operator>(v.clone())
                .map(ConditionItem::Operator)
                .map_err(|e| malformed(e.to_string()))
        }
        Value::Object(map) => {
            let leaf = match map.get("conditionType") {
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(malformed("conditionType must be a string".into())),
                None if kind == ConditionsKind::Unified => {
                    return Err(malformed(
                        "missing conditionType (every condition of \
                         unifiedAccessControlConditions names its conditionType)"
                            .into(),
                    ))
                }
                None => infer_kind(map).map_err(|e| match e {
                    Inferred::Unknown(k) => ConditionsError::UnknownType(k.into()),
                    Inferred::Nothing => malformed(
                        "no conditionType, and neither evmBasic fields (standardContractType, \
                         method, parameters) nor evmContract fields (functionAbi, functionName, \
                         functionParams)"
                            .into(),
                    ),
                })?,
            };
            *count += 1;
            let condition = match leaf {
                EVM_BASIC => serde_json::from_value(v.clone()).map(Condition::EvmBasic),
                EVM_CONTRACT => serde_json::from_value(v.clone()).map(Condition::EvmContract),
                other => return Err(ConditionsError::UnknownType(other.to_string())),
            }
            .map_err(|e| malformed(e.to_string()))?;
            if kind == ConditionsKind::EvmContract && condition.kind() != EVM_CONTRACT {
                return Err(ConditionsError::WrongKind {
                    path: path.to_string(),
                    key: kind.key(),
                    expected: EVM_CONTRACT,
                    found: condition.kind(),
                });
            }
            Ok(ConditionItem::Condition(Box::new(condition)))
        }
        _ => Err(malformed(
            "expected a condition object, an operator or a group".into(),
        )),
    }
}

enum Inferred {
    /// The fields of a kind this node does not evaluate.
    Unknown(&'static str),
    /// No field tells.
    Nothing,
}

/// The kind of a leaf without `conditionType`, from its fields (see the module docs).
fn infer_kind(map: &Map<String, Value>) -> Result<&'static str, Inferred> {
    let any = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
    if any(&["functionAbi", "functionName", "functionParams"]) {
        Ok(EVM_CONTRACT)
    } else if any(&["pdaInterface", "pdaKey", "pdaParams", "params"]) {
        Err(Inferred::Unknown("solRpc"))
    } else if map.contains_key("path") && !map.contains_key("contractAddress") {
        Err(Inferred::Unknown("cosmos"))
    } else if any(&[
        "standardContractType",
        "method",
        "parameters",
        "contractAddress",
    ]) {
        Ok(EVM_BASIC)
    } else {
        Err(Inferred::Nothing)
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user_is(addr: &str) -> Value {
        json!({"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
               "chain": "anvil", "method": "", "parameters": [":userAddress"],
               "returnValueTest": {"comparator": "=", "value": addr}})
    }

    fn erc20_balance() -> Value {
        json!({"conditionType": "evmContract", "contractAddress": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
               "functionName": "balanceOf", "functionParams": [":userAddress"],
               "functionAbi": {"name": "balanceOf", "inputs": [{"name": "who", "type": "address"}],
                               "outputs": [{"name": "", "type": "uint256"}],
                               "stateMutability": "view", "type": "function"},
               "chain": "anvil",
               "returnValueTest": {"key": "", "comparator": ">", "value": "0"}})
    }

    #[test]
    fn nested_lists_parse_and_serialise_back_to_the_same_json() {
        let input = json!([user_is("0xabc"), {"operator": "or"},
                           [erc20_balance(), {"operator": "and"}, user_is("0xdef")]]);
        let parsed = parse(&input).unwrap();
        assert_eq!(count(&parsed), 3);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), input);
    }

    #[test]
    fn unknown_type_is_told_apart_from_malformed() {
        let mut c = user_is("0xabc");
        c["conditionType"] = json!("solRpc");
        assert_eq!(
            parse(&json!([c])),
            Err(ConditionsError::UnknownType("solRpc".into()))
        );
        let mut c = user_is("0xabc");
        c["unexpected"] = json!(1);
        assert!(matches!(
            parse(&json!([c])),
            Err(ConditionsError::Malformed { .. })
        ));
        let mut c = user_is("0xabc");
        c["returnValueTest"]["comparator"] = json!("~=");
        assert!(matches!(
            parse(&json!([c])),
            Err(ConditionsError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&json!([{"operator": "xor"}])),
            Err(ConditionsError::Malformed { .. })
        ));
    }

    #[test]
    fn structure_is_checked() {
        let a = user_is("0xabc");
        for bad in [
            json!([]),
            json!([a, a]),
            json!([{"operator": "and"}, a]),
            json!([a, {"operator": "and"}]),
            json!([[]]),
        ] {
            assert!(
                matches!(parse(&bad), Err(ConditionsError::Structure { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(&json!({"not": "an array"})),
            Err(ConditionsError::Malformed { .. })
        ));
    }

    #[test]
    fn limits_on_count_and_depth() {
        let mut list = vec![user_is("0x1")];
        for _ in 0..MAX_CONDITIONS {
            list.push(json!({"operator": "and"}));
            list.push(user_is("0x1"));
        }
        assert_eq!(
            parse(&Value::Array(list)),
            Err(ConditionsError::TooMany(MAX_CONDITIONS + 1))
        );
        let mut deep = json!([user_is("0x1")]);
        for _ in 0..=MAX_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(parse(&deep), Err(ConditionsError::TooDeep));
    }

    /// Lit's documented `accessControlConditions` (no `conditionType`), as in its "Basic
    /// Examples" page and the JS SDK's `EvmBasicAccSchema`.
    fn lit_basic(kind: &str, method: &str, params: &[&str]) -> Value {
        json!({"contractAddress": "0x3110c39b428221012934A7F617913b095BC1078C",
               "standardContractType": kind, "chain": "ethereum", "method": method,
               "parameters": params, "returnValueTest": {"comparator": ">", "value": "0"}})
    }

    fn untagged_contract() -> Value {
        let mut c = erc20_balance();
        c.as_object_mut().unwrap().remove("conditionType");
        c
    }

    #[test]
    fn conditions_without_condition_type_are_inferred_and_serialise_back_unchanged() {
        let input = json!([
            lit_basic("ERC1155", "balanceOfBatch", &[":userAddress,:userAddress", "1,2"]),
            {"operator": "and"},
            [untagged_contract(), {"operator": "or"}, user_is("0xabc")]
        ]);
        let parsed = parse(&input).unwrap();
        let ConditionItem::Condition(first) = &parsed[0] else {
            panic!("{parsed:?}")
        };
        assert_eq!(first.kind(), "evmBasic");
        let ConditionItem::Group(group) = &parsed[2] else {
            panic!("{parsed:?}")
        };
        let ConditionItem::Condition(inner) = &group[0] else {
            panic!("{group:?}")
        };
        assert_eq!(inner.kind(), "evmContract");
        // serialising adds no conditionType where there was none
        assert_eq!(serde_json::to_value(&parsed).unwrap(), input);
    }

    #[test]
    fn a_wrong_condition_type_for_the_shape_is_malformed() {
        // evmBasic fields under "evmContract", and the reverse
        let mut c = user_is("0xabc");
        c["conditionType"] = json!("evmContract");
        assert!(matches!(
            parse(&json!([c])),
            Err(ConditionsError::Malformed { .. })
        ));
        let mut c = erc20_balance();
        c["conditionType"] = json!("evmBasic");
        assert!(matches!(
            parse(&json!([c])),
            Err(ConditionsError::Malformed { .. })
        ));
        // a leaf with nothing to tell its kind by
        assert!(matches!(
            parse(
                &json!([{"chain": "ethereum", "returnValueTest": {"comparator": "=", "value": "1"}}])
            ),
            Err(ConditionsError::Malformed { .. })
        ));
        // a field outside Lit's shapes is still refused without conditionType
        let mut c = lit_basic("ERC20", "balanceOf", &[":userAddress"]);
        c["functionNme"] = json!("typo");
        assert!(matches!(
            parse(&json!([c])),
            Err(ConditionsError::Malformed { .. })
        ));
    }

    #[test]
    fn solana_and_cosmos_keep_their_unknown_condition_type() {
        let sol = json!({"method": "getBalance", "params": [":userAddress"], "pdaParams": [],
                         "pdaInterface": {"offset": 0, "fields": {}}, "pdaKey": "",
                         "chain": "solana",
                         "returnValueTest": {"key": "", "comparator": ">=", "value": "1"}});
        let cosmos = json!({"path": "/cosmos/bank/v1beta1/balances/:userAddress",
                            "chain": "cosmos",
                            "returnValueTest": {"key": "$.balances[0].amount",
                                                "comparator": ">=", "value": "1"}});
        for kind in [ConditionsKind::AccessControl, ConditionsKind::Unified] {
            let mut s = sol.clone();
            let mut c = cosmos.clone();
            if kind == ConditionsKind::Unified {
                s["conditionType"] = json!("solRpc");
                c["conditionType"] = json!("cosmos");
            }
            assert_eq!(
                parse_as(kind, &json!([s])),
                Err(ConditionsError::UnknownType("solRpc".into()))
            );
            assert_eq!(
                parse_as(kind, &json!([c])),
                Err(ConditionsError::UnknownType("cosmos".into()))
            );
        }
        assert_eq!(
            parse_as(ConditionsKind::SolRpc, &json!([sol])),
            Err(ConditionsError::UnknownType("solRpc".into()))
        );
    }

    #[test]
    fn each_request_key_takes_its_own_lists() {
        let basic = lit_basic("ERC20", "balanceOf", &[":userAddress"]);
        let contract = untagged_contract();
        let list = json!([basic, {"operator": "or"}, [contract.clone()]]);
        assert!(parse_as(ConditionsKind::AccessControl, &list).is_ok());
        // unified: every leaf names its conditionType
        assert!(matches!(
            parse_as(ConditionsKind::Unified, &list),
            Err(ConditionsError::Malformed { .. })
        ));
        let tagged = json!([user_is("0x1"), {"operator": "or"}, [erc20_balance()]]);
        assert!(parse_as(ConditionsKind::Unified, &tagged).is_ok());
        // evmContractConditions: only evmContract leaves, nested ones included
        assert!(parse_as(
            ConditionsKind::EvmContract,
            &json!([contract, {"operator": "and"}, [erc20_balance()]])
        )
        .is_ok());
        for bad in [&list, &tagged] {
            assert!(
                matches!(
                    parse_as(ConditionsKind::EvmContract, bad),
                    Err(ConditionsError::WrongKind {
                        found: "evmBasic",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn exactly_one_request_list() {
        let l = json!([user_is("0x1")]);
        for kind in ConditionsKind::ALL {
            assert_eq!(ConditionsKind::from_key(kind.key()), Some(kind));
            assert_eq!(
                ConditionsKind::pick(kind.spread(l.clone())),
                Ok((kind, l.clone()))
            );
        }
        assert_eq!(
            ConditionsKind::pick([None, None, None, None]),
            Err(ConditionsError::NotExactlyOneList(vec![]))
        );
        let err = ConditionsKind::pick([Some(l.clone()), None, Some(l), None]).unwrap_err();
        assert_eq!(
            err,
            ConditionsError::NotExactlyOneList(vec![
                "accessControlConditions",
                "unifiedAccessControlConditions"
            ])
        );
        assert!(err
            .to_string()
            .contains("got accessControlConditions, unifiedAccessControlConditions"));
    }

    #[test]
    fn fields_lit_s_sdk_emits_are_accepted() {
        // EvmContractAccSchema: functionAbi with type, stateMutability, constant and
        // internalType on inputs and outputs; returnValueTest with key
        let mut c = erc20_balance();
        c["functionAbi"]["constant"] = json!(true);
        c["functionAbi"]["outputs"][0]["internalType"] = json!("uint256");
        assert!(parse_as(ConditionsKind::EvmContract, &json!([c])).is_ok());
        // EvmBasicAccSchema: conditionType optional, every standardContractType string
        for kind in [
            "",
            "ERC20",
            "ERC721",
            "ERC721MetadataName",
            "ERC1155",
            "timestamp",
            "LitAction",
        ] {
            assert!(parse(&json!([lit_basic(kind, "m", &[])])).is_ok(), "{kind}");
        }
    }
}
