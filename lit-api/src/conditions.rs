//! Access control conditions in Lit's JSON shapes (the "unified" form, where every condition
//! names its `conditionType`).
//!
//! A condition list is an array whose items are conditions, boolean operators
//! (`{"operator": "and"}` / `{"operator": "or"}`) between them, or nested arrays (groups). Lit
//! evaluates it left to right with no precedence: `a or b and c` means `(a or b) and c`.
//!
//! ```json
//! [
//!   {"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
//!    "chain": "anvil", "method": "", "parameters": [":userAddress"],
//!    "returnValueTest": {"comparator": "=", "value": "0x5b38da6a701c568545dcfcb03fcb875f56beddc4"}},
//!   {"operator": "or"},
//!   [ {"conditionType": "evmBasic", "...": "..."} ]
//! ]
//! ```
//!
//! [`parse`] turns untrusted JSON into these types with a typed [`ConditionsError`], so an unknown
//! `conditionType` is told apart from a malformed one; serialising gives back the same shape,
//! which is what the canonical hash of the conditions is computed over.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most leaf conditions one list may hold.
pub const MAX_CONDITIONS: usize = 30;

/// The deepest nesting of groups accepted.
pub const MAX_DEPTH: usize = 8;

/// Why a condition list was refused before evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionsError {
    /// A condition's `conditionType` is not one this node evaluates.
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
    /// More than [`MAX_CONDITIONS`] conditions.
    #[error("{0} conditions, at most {MAX_CONDITIONS} allowed")]
    TooMany(usize),
    /// Groups nested deeper than [`MAX_DEPTH`].
    #[error("groups nested deeper than {MAX_DEPTH}")]
    TooDeep,
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

/// A leaf condition, tagged by `conditionType`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "conditionType", rename_all = "camelCase")]
pub enum Condition {
    /// A standard check: native balance, ERC20/721/1155, timestamp, or the user's address.
    EvmBasic(EvmBasicCondition),
    /// Any view function of any contract, called by ABI.
    EvmContract(EvmContractCondition),
}

/// Lit's `evmBasic` condition.
///
/// | check | `standardContractType` | `method` | `parameters` |
/// |---|---|---|---|
/// | the user's address | `""` | `""` | `[":userAddress"]` |
/// | native balance | `""` | `"eth_getBalance"` | `[":userAddress", "latest"]` |
/// | ERC20 balance | `"ERC20"` | `"balanceOf"` | `[":userAddress"]` |
/// | ERC721 owner | `"ERC721"` | `"ownerOf"` | `["<token id>"]` |
/// | ERC721 balance | `"ERC721"` | `"balanceOf"` | `[":userAddress"]` |
/// | ERC1155 balance | `"ERC1155"` | `"balanceOf"` | `[":userAddress", "<token id>"]` |
/// | latest block time | `"timestamp"` | `"eth_getBlockByNumber"` | `["latest"]` |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvmBasicCondition {
    /// The contract, or `""`.
    pub contract_address: String,
    /// `""`, `"ERC20"`, `"ERC721"`, `"ERC1155"` or `"timestamp"`.
    pub standard_contract_type: String,
    /// The chain name, looked up in the node's RPC configuration.
    pub chain: String,
    /// The method (see the table).
    pub method: String,
    /// Parameters; `:userAddress` is replaced by the authenticated address.
    pub parameters: Vec<String>,
    /// How the result is compared.
    pub return_value_test: ReturnValueTest,
}

/// Lit's `evmContract` condition: a call of `functionName` on `contractAddress` described by
/// `functionAbi`, whose output (or the output named `returnValueTest.key`) is compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvmContractCondition {
    /// The contract.
    pub contract_address: String,
    /// The function's name; must equal `functionAbi.name`.
    pub function_name: String,
    /// Parameters as strings; `:userAddress` is replaced by the authenticated address.
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

/// Parses an untrusted condition list (the JSON array of a request).
pub fn parse(value: &Value) -> Result<Vec<ConditionItem>, ConditionsError> {
    let mut count = 0;
    let items = parse_list(value, "", 0, &mut count)?;
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
        let item = parse_item(v, &here, depth, count)?;
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
        Value::Array(_) => Ok(ConditionItem::Group(parse_list(v, path, depth + 1, count)?)),
        Value::Object(map) if map.contains_key("operator") => {
            serde_json::from_value::<Operator>(v.clone())
                .map(ConditionItem::Operator)
                .map_err(|e| malformed(e.to_string()))
        }
        Value::Object(map) => {
            let kind = match map.get("conditionType") {
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(malformed("conditionType must be a string".into())),
                None => return Err(malformed("missing conditionType".into())),
            };
            if !matches!(kind, "evmBasic" | "evmContract") {
                return Err(ConditionsError::UnknownType(kind.to_string()));
            }
            *count += 1;
            serde_json::from_value::<Condition>(v.clone())
                .map(|c| ConditionItem::Condition(Box::new(c)))
                .map_err(|e| malformed(e.to_string()))
        }
        _ => Err(malformed(
            "expected a condition object, an operator or a group".into(),
        )),
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
}
