//! Evaluation of access control conditions against EVM chains.
//!
//! The list is evaluated left to right with no operator precedence, as Lit does:
//! `a or b and c` is `(a or b) and c`; groups (nested lists) are evaluated first. Evaluation
//! stops as soon as the rest cannot change the result.
//!
//! What a list is evaluated for is an [`EvalContext`]: the caller's address (`:userAddress`),
//! the running Lit Action's CID when an action checks the conditions (`:currentActionIpfsId`)
//! and the request's `litParams` (`:litParam:<name>`). A placeholder is replaced where a
//! parameter or a `returnValueTest.value` is exactly it (and in each element of
//! `balanceOfBatch`'s comma-separated lists). A condition that names `:currentActionIpfsId`
//! outside an action is false, whatever its comparator; a `:litParam:<name>` the request does
//! not give is an `invalid_conditions` error. See `lit_api::conditions` for the shapes.

pub mod abi;
pub mod rpc;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lit_api::conditions::{
    BoolOp, Comparator, Condition, ConditionItem, EvmBasicCondition, EvmContractCondition,
    ReturnValueTest, CURRENT_ACTION_IPFS_ID, LIT_PARAM_PREFIX,
};
use lit_api::ErrorCode;

use crate::config::ChainConfig;
use abi::{DynSolType, DynSolValue};
use alloy_primitives::U256;
use alloy_rpc_types_eth::BlockId;
use lit_crypto::eth::Address;
use rpc::ChainRpc;

pub use lit_api::conditions::USER_ADDRESS;

/// The most `:litParam` values one request may give.
pub const MAX_LIT_PARAMS: usize = 32;

/// The longest `:litParam` name or value, in bytes.
pub const MAX_LIT_PARAM_LEN: usize = 1024;

/// Why conditions could not be evaluated (a condition that is simply false is `Ok(false)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionError {
    /// The condition is well-formed JSON but cannot be evaluated as written.
    #[error("invalid condition: {0}")]
    Invalid(String),
    /// The condition names a chain this node has no RPC endpoint for.
    #[error("chain {0:?} is not configured on this node")]
    UnknownChain(String),
    /// The chain's RPC failed or timed out.
    #[error("chain RPC failed: {0}")]
    Rpc(String),
}

impl ConditionError {
    /// The API error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConditionError::Invalid(_) => ErrorCode::InvalidConditions,
            ConditionError::UnknownChain(_) | ConditionError::Rpc(_) => ErrorCode::ChainUnavailable,
        }
    }
}

static NO_PARAMS: BTreeMap<String, String> = BTreeMap::new();

/// `standardContractType` of Lit's Lit Action conditions: `contractAddress` is
/// `ipfs://<CID>` of an action in the node's store, `method` a function the action defines,
/// `parameters` its arguments (placeholders resolved), and `returnValueTest` compares what it
/// returns (a string as itself, any other value as its JSON).
pub const LIT_ACTION: &str = "LitAction";

/// Runs the action of a [`LIT_ACTION`] condition (the node's action store and engine).
#[async_trait::async_trait]
pub trait ConditionActions: Send + Sync + std::fmt::Debug {
    /// Runs the stored action `cid`, calls its function `method` with `params` and answers
    /// what the function returned, as text.
    async fn call(
        &self,
        cid: &str,
        method: &str,
        params: &[String],
    ) -> Result<String, ConditionError>;
}

/// What a condition list is evaluated for: the values of its placeholders.
#[derive(Clone, Copy, Debug)]
pub struct EvalContext<'a> {
    /// The address the caller authenticated as (`:userAddress`).
    pub user: &'a Address,
    /// The CID of the Lit Action checking the conditions (`:currentActionIpfsId`); `None`
    /// outside an action, where a condition naming it is false.
    pub action_ipfs_id: Option<&'a str>,
    /// The request's `litParams` (`:litParam:<name>`).
    pub lit_params: &'a BTreeMap<String, String>,
    /// What runs [`LIT_ACTION`] conditions; `None` where they cannot be evaluated.
    pub actions: Option<&'a dyn ConditionActions>,
}

impl<'a> EvalContext<'a> {
    /// Outside any action, with no `litParams`.
    pub fn for_user(user: &'a Address) -> Self {
        Self {
            user,
            action_ipfs_id: None,
            lit_params: &NO_PARAMS,
            actions: None,
        }
    }

    /// With `actions` running [`LIT_ACTION`] conditions.
    pub fn with_actions(self, actions: &'a dyn ConditionActions) -> Self {
        Self {
            actions: Some(actions),
            ..self
        }
    }

    /// With the request's `litParams`, checked against [`MAX_LIT_PARAMS`] and
    /// [`MAX_LIT_PARAM_LEN`].
    pub fn with_lit_params(
        self,
        lit_params: &'a BTreeMap<String, String>,
    ) -> Result<Self, ConditionError> {
        if lit_params.len() > MAX_LIT_PARAMS {
            return Err(ConditionError::Invalid(format!(
                "{} litParams, at most {MAX_LIT_PARAMS} allowed",
                lit_params.len()
            )));
        }
        if let Some((name, _)) = lit_params.iter().find(|(k, v)| {
            k.is_empty() || k.len() > MAX_LIT_PARAM_LEN || v.len() > MAX_LIT_PARAM_LEN
        }) {
            return Err(ConditionError::Invalid(format!(
                "litParams {name:?}: names must be 1 to {MAX_LIT_PARAM_LEN} bytes and values \
                 at most {MAX_LIT_PARAM_LEN}"
            )));
        }
        Ok(Self { lit_params, ..self })
    }

    /// Inside the action `cid`.
    pub fn in_action(self, cid: &'a str) -> Self {
        Self {
            action_ipfs_id: Some(cid),
            ..self
        }
    }

    /// The value of `s` if it is a placeholder, else `s`; `None` for `:currentActionIpfsId`
    /// outside an action (the condition is then false).
    pub fn resolve(&self, s: &str) -> Result<Option<String>, ConditionError> {
        if s == USER_ADDRESS {
            Ok(Some(format!("0x{}", hex::encode(self.user.0))))
        } else if s == CURRENT_ACTION_IPFS_ID {
            Ok(self.action_ipfs_id.map(str::to_string))
        } else if let Some(name) = s.strip_prefix(LIT_PARAM_PREFIX) {
            self.lit_params.get(name).cloned().map(Some).ok_or_else(|| {
                ConditionError::Invalid(format!(
                    "the condition uses {s} but the request gives no litParams {name:?}"
                ))
            })
        } else {
            Ok(Some(s.to_string()))
        }
    }

    /// [`EvalContext::resolve`] of every string; `None` if any is unresolvable.
    fn resolve_all(&self, list: &[String]) -> Result<Option<Vec<String>>, ConditionError> {
        let mut out = Vec::with_capacity(list.len());
        for s in list {
            match self.resolve(s)? {
                Some(v) => out.push(v),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }
}

/// Evaluates conditions with one RPC client per configured chain.
#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    chains: BTreeMap<String, ChainRpc>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Evaluator {
    /// An evaluator for the chains of the node configuration.
    pub fn new(chains: &BTreeMap<String, ChainConfig>) -> Result<Self, ConditionError> {
        let chains = chains
            .iter()
            .map(|(name, c)| {
                Ok((
                    name.clone(),
                    ChainRpc::new(&c.rpc_url, Duration::from_millis(c.timeout_ms))?,
                ))
            })
            .collect::<Result<_, ConditionError>>()?;
        Ok(Self { chains })
    }

    /// Whether `items` hold in `ctx`.
    pub async fn evaluate(
        &self,
        items: &[ConditionItem],
        ctx: &EvalContext<'_>,
    ) -> Result<bool, ConditionError> {
        self.evaluate_list(items, ctx).await
    }

    fn evaluate_list<'a>(
        &'a self,
        items: &'a [ConditionItem],
        ctx: &'a EvalContext<'a>,
    ) -> BoxFuture<'a, Result<bool, ConditionError>> {
        Box::pin(async move {
            let mut iter = items.iter();
            let first = iter
                .next()
                .ok_or_else(|| ConditionError::Invalid("empty condition list".into()))?;
            let mut acc = self.evaluate_item(first, ctx).await?;
            while let Some(op) = iter.next() {
                let ConditionItem::Operator(op) = op else {
                    return Err(ConditionError::Invalid("expected an operator".into()));
                };
                let next = iter
                    .next()
                    .ok_or_else(|| ConditionError::Invalid("list ends with an operator".into()))?;
                acc = match (op.operator, acc) {
                    (BoolOp::And, false) => false,
                    (BoolOp::Or, true) => true,
                    _ => self.evaluate_item(next, ctx).await?,
                };
            }
            Ok(acc)
        })
    }

    async fn evaluate_item(
        &self,
        item: &ConditionItem,
        ctx: &EvalContext<'_>,
    ) -> Result<bool, ConditionError> {
        match item {
            ConditionItem::Condition(c) => match c.as_ref() {
                Condition::EvmBasic(c) => self.evm_basic(c, ctx).await,
                Condition::EvmContract(c) => self.evm_contract(c, ctx).await,
            },
            ConditionItem::Group(g) => self.evaluate_list(g, ctx).await,
            ConditionItem::Operator(_) => Err(ConditionError::Invalid(
                "an operator where a condition was expected".into(),
            )),
        }
    }

    fn chain(&self, name: &str) -> Result<&ChainRpc, ConditionError> {
        self.chains
            .get(name)
            .ok_or_else(|| ConditionError::UnknownChain(name.to_string()))
    }

    async fn evm_basic(
        &self,
        c: &EvmBasicCondition,
        ctx: &EvalContext<'_>,
    ) -> Result<bool, ConditionError> {
        let Some(expected) = ctx.resolve(&c.return_value_test.value)? else {
            return Ok(false);
        };
        let kind = (c.standard_contract_type.as_str(), c.method.as_str());
        if kind == ("ERC1155", "balanceOfBatch") {
            return self.balance_of_batch(c, ctx, &expected).await;
        }
        let Some(params) = ctx.resolve_all(&c.parameters)? else {
            return Ok(false);
        };
        let value = match kind {
            ("", "") => match (c.parameters.as_slice(), params.as_slice()) {
                ([raw], _) if raw == USER_ADDRESS => DynSolValue::Address(ctx.user.0.into()),
                ([_], [value]) => DynSolValue::String(value.clone()),
                _ => {
                    return Err(ConditionError::Invalid(format!(
                        "a condition with no method takes one parameter (:userAddress, \
                         {CURRENT_ACTION_IPFS_ID} or {LIT_PARAM_PREFIX}<name>), got {}",
                        params.len()
                    )))
                }
            },
            ("", "eth_getBalance") => {
                let (who, block) = match params.as_slice() {
                    [who] => (who.as_str(), "latest"),
                    [who, block] => (who.as_str(), block.as_str()),
                    _ => {
                        return Err(ConditionError::Invalid(
                            "eth_getBalance takes [address, block]".into(),
                        ))
                    }
                };
                let who = abi::parse_address(who)?;
                let block: BlockId = block.parse().map_err(|_| {
                    ConditionError::Invalid(format!("{block:?} is not a block number or tag"))
                })?;
                let balance = self.chain(&c.chain)?.balance(who, block).await?;
                DynSolValue::Uint(balance, 256)
            }
            ("timestamp", "eth_getBlockByNumber") => {
                let time = self.chain(&c.chain)?.latest_timestamp().await?;
                DynSolValue::Uint(U256::from(time), 256)
            }
            ("ERC20", "balanceOf") | ("ERC721", "balanceOf") => {
                one_param(&params, "address")?;
                self.view(
                    c,
                    "balanceOf",
                    &[DynSolType::Address],
                    &params,
                    DynSolType::Uint(256),
                )
                .await?
            }
            ("ERC721", "ownerOf") => {
                one_param(&params, "token id")?;
                self.view(
                    c,
                    "ownerOf",
                    &[DynSolType::Uint(256)],
                    &params,
                    DynSolType::Address,
                )
                .await?
            }
            (LIT_ACTION, method) => {
                let cid = c.contract_address.strip_prefix("ipfs://").ok_or_else(|| {
                    ConditionError::Invalid(format!(
                        "a {LIT_ACTION} condition's contractAddress is ipfs://<CID>, got {:?}",
                        c.contract_address
                    ))
                })?;
                if !is_js_identifier(method) {
                    return Err(ConditionError::Invalid(format!(
                        "a {LIT_ACTION} condition's method must name a JavaScript function, \
                         got {method:?}"
                    )));
                }
                let actions = ctx.actions.ok_or_else(|| {
                    ConditionError::Invalid(format!(
                        "{LIT_ACTION} conditions are not evaluated here"
                    ))
                })?;
                DynSolValue::String(actions.call(cid, method, &params).await?)
            }
            ("ERC721MetadataName", "name") => {
                self.view(c, "name", &[], &params, DynSolType::String)
                    .await?
            }
            ("ERC1155", "balanceOf") => {
                let inputs = [DynSolType::Address, DynSolType::Uint(256)];
                self.view(c, "balanceOf", &inputs, &params, DynSolType::Uint(256))
                    .await?
            }
            (kind, method) => {
                return Err(ConditionError::Invalid(format!(
                    "evmBasic standardContractType {kind:?} with method {method:?} is not supported"
                )))
            }
        };
        compare_with(&value, &c.return_value_test, &expected)
    }

    /// ERC-1155 `balanceOfBatch(address[],uint256[])`: true if any balance passes.
    async fn balance_of_batch(
        &self,
        c: &EvmBasicCondition,
        ctx: &EvalContext<'_>,
        expected: &str,
    ) -> Result<bool, ConditionError> {
        let [owners, ids] = c.parameters.as_slice() else {
            return Err(ConditionError::Invalid(
                "balanceOfBatch takes two parameters: comma-separated addresses and \
                 comma-separated token ids"
                    .into(),
            ));
        };
        let mut addresses = Vec::new();
        for owner in owners.split(',') {
            let Some(owner) = ctx.resolve(owner.trim())? else {
                return Ok(false);
            };
            addresses.push(DynSolValue::Address(abi::parse_address(&owner)?));
        }
        let mut token_ids = Vec::new();
        for id in ids.split(',') {
            let Some(id) = ctx.resolve(id.trim())? else {
                return Ok(false);
            };
            token_ids.push(DynSolValue::Uint(abi::parse_uint(&id)?, 256));
        }
        if addresses.len() != token_ids.len() {
            return Err(ConditionError::Invalid(format!(
                "balanceOfBatch: {} addresses but {} token ids",
                addresses.len(),
                token_ids.len()
            )));
        }
        let n = addresses.len();
        let inputs = [
            DynSolType::Array(Box::new(DynSolType::Address)),
            DynSolType::Array(Box::new(DynSolType::Uint(256))),
        ];
        let data = abi::encode_values(
            "balanceOfBatch",
            &inputs,
            &[DynSolValue::Array(addresses), DynSolValue::Array(token_ids)],
        )?;
        let contract = abi::parse_address(&c.contract_address)?;
        let returned = self
            .chain(&c.chain)?
            .call_contract(contract, data.into())
            .await?;
        let output = [DynSolType::Array(Box::new(DynSolType::Uint(256)))];
        let balances = match abi::decode_outputs(&output, &returned)?.pop() {
            Some(DynSolValue::Array(b)) if b.len() == n => b,
            _ => {
                return Err(ConditionError::Rpc(format!(
                    "balanceOfBatch did not return {n} balances"
                )))
            }
        };
        for balance in &balances {
            if compare_with(balance, &c.return_value_test, expected)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn view(
        &self,
        c: &EvmBasicCondition,
        function: &str,
        inputs: &[DynSolType],
        params: &[String],
        output: DynSolType,
    ) -> Result<DynSolValue, ConditionError> {
        let contract = abi::parse_address(&c.contract_address)?;
        let data = abi::encode_call(function, inputs, params)?;
        let returned = self
            .chain(&c.chain)?
            .call_contract(contract, data.into())
            .await?;
        abi::decode_outputs(&[output], &returned)?
            .pop()
            .ok_or_else(|| ConditionError::Rpc("empty return data".into()))
    }

    async fn evm_contract(
        &self,
        c: &EvmContractCondition,
        ctx: &EvalContext<'_>,
    ) -> Result<bool, ConditionError> {
        if c.function_abi.name != c.function_name {
            return Err(ConditionError::Invalid(format!(
                "functionName {:?} differs from functionAbi.name {:?}",
                c.function_name, c.function_abi.name
            )));
        }
        if let Some(m) = c.function_abi.state_mutability.as_deref() {
            if m != "view" && m != "pure" {
                return Err(ConditionError::Invalid(format!(
                    "{} is {m}; only view and pure functions can be conditions",
                    c.function_name
                )));
            }
        }
        let inputs = c
            .function_abi
            .inputs
            .iter()
            .map(|p| abi::parse_type(&p.kind))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = c
            .function_abi
            .outputs
            .iter()
            .map(|p| abi::parse_type(&p.kind))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(params) = ctx.resolve_all(&c.function_params)? else {
            return Ok(false);
        };
        let Some(expected) = ctx.resolve(&c.return_value_test.value)? else {
            return Ok(false);
        };
        let contract = abi::parse_address(&c.contract_address)?;
        let data = abi::encode_call(&c.function_name, &inputs, &params)?;
        let returned = self
            .chain(&c.chain)?
            .call_contract(contract, data.into())
            .await?;
        let values = abi::decode_outputs(&outputs, &returned)?;
        let key = c.return_value_test.key.as_deref().unwrap_or("");
        let index = if key.is_empty() {
            0
        } else {
            c.function_abi
                .outputs
                .iter()
                .position(|o| o.name == key)
                .ok_or_else(|| {
                    ConditionError::Invalid(format!("no output named {key:?} in the ABI"))
                })?
        };
        let value = values.get(index).ok_or_else(|| {
            ConditionError::Invalid(format!("{} has no outputs", c.function_name))
        })?;
        compare_with(value, &c.return_value_test, &expected)
    }
}

/// Whether `s` is a plain JavaScript identifier (ASCII letters, digits, `_`, `$`; not
/// starting with a digit): a [`LIT_ACTION`] condition's method is called by that name.
pub fn is_js_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && s.len() <= 64
}

fn one_param(params: &[String], what: &str) -> Result<(), ConditionError> {
    if params.len() == 1 {
        Ok(())
    } else {
        Err(ConditionError::Invalid(format!(
            "expected one parameter ({what}), got {}",
            params.len()
        )))
    }
}

/// Compares a returned value with a `returnValueTest` whose value's placeholders are resolved
/// in `ctx` (false if it names `:currentActionIpfsId` outside an action).
pub fn compare(
    value: &DynSolValue,
    test: &ReturnValueTest,
    ctx: &EvalContext<'_>,
) -> Result<bool, ConditionError> {
    match ctx.resolve(&test.value)? {
        Some(expected) => compare_with(value, test, &expected),
        None => Ok(false),
    }
}

/// Compares a returned value with a `returnValueTest` against `expected`, its resolved value.
fn compare_with(
    value: &DynSolValue,
    test: &ReturnValueTest,
    expected: &str,
) -> Result<bool, ConditionError> {
    use std::cmp::Ordering;
    let expected = expected.to_string();
    let by_order = |ord: Ordering| -> Result<bool, ConditionError> {
        Ok(match test.comparator {
            Comparator::Eq => ord == Ordering::Equal,
            Comparator::Ne => ord != Ordering::Equal,
            Comparator::Gt => ord == Ordering::Greater,
            Comparator::Ge => ord != Ordering::Less,
            Comparator::Lt => ord == Ordering::Less,
            Comparator::Le => ord != Ordering::Greater,
            Comparator::Contains | Comparator::NotContains => {
                return Err(ConditionError::Invalid(
                    "contains compares strings, not numbers".into(),
                ))
            }
        })
    };
    let equality = |equal: bool| -> Result<bool, ConditionError> {
        match test.comparator {
            Comparator::Eq => Ok(equal),
            Comparator::Ne => Ok(!equal),
            other => Err(ConditionError::Invalid(format!(
                "comparator {other:?} does not apply to this value"
            ))),
        }
    };
    match value {
        DynSolValue::Uint(v, _) => {
            let (neg, mag) = abi::parse_int(&expected)?;
            let ord = if neg && mag != U256::ZERO {
                Ordering::Greater
            } else {
                v.cmp(&mag)
            };
            by_order(ord)
        }
        DynSolValue::Int(v, _) => {
            let (vneg, vmag) = (v.is_negative(), v.unsigned_abs());
            let (eneg, emag) = abi::parse_int(&expected)?;
            let eneg = eneg && emag != U256::ZERO;
            let ord = match (vneg, eneg) {
                (false, false) => vmag.cmp(&emag),
                (true, true) => emag.cmp(&vmag),
                (false, true) => Ordering::Greater,
                (true, false) => Ordering::Less,
            };
            by_order(ord)
        }
        DynSolValue::Address(a) => {
            let e = Address::parse(&expected.to_ascii_lowercase())
                .map_err(|e| ConditionError::Invalid(e.to_string()))?;
            equality(e.0 == a.0 .0)
        }
        DynSolValue::Bool(b) => match expected.as_str() {
            "true" => equality(*b),
            "false" => equality(!*b),
            _ => Err(ConditionError::Invalid(format!(
                "{expected:?} is not true/false"
            ))),
        },
        DynSolValue::String(s) => match test.comparator {
            Comparator::Contains => Ok(s.contains(&expected)),
            Comparator::NotContains => Ok(!s.contains(&expected)),
            _ => equality(*s == expected),
        },
        DynSolValue::Bytes(b) => equality(*b == expected_bytes(&expected)?),
        DynSolValue::FixedBytes(word, size) => {
            let b = word.get(..*size).unwrap_or_default();
            equality(b == expected_bytes(&expected)?.as_slice())
        }
        other => Err(ConditionError::Invalid(format!(
            "a {} return value cannot be compared",
            other.sol_type_name().unwrap_or_else(|| "composite".into())
        ))),
    }
}

fn expected_bytes(expected: &str) -> Result<Vec<u8>, ConditionError> {
    expected
        .strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| ConditionError::Invalid(format!("{expected:?} is not hex")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::I256;

    fn test(comparator: Comparator, value: &str) -> ReturnValueTest {
        ReturnValueTest {
            key: None,
            comparator,
            value: value.into(),
        }
    }

    #[test]
    fn numeric_comparisons_are_numeric_not_lexical() {
        let user = Address([1; 20]);
        let nine = DynSolValue::Uint(U256::from(9u8), 256);
        assert!(compare(
            &nine,
            &test(Comparator::Lt, "10"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &nine,
            &test(Comparator::Ge, "0x9"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &nine,
            &test(Comparator::Gt, "-1"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(!compare(
            &nine,
            &test(Comparator::Eq, "90"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        let minus_two = DynSolValue::Int(I256::try_from(-2).unwrap(), 256);
        assert!(compare(
            &minus_two,
            &test(Comparator::Lt, "-1"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &minus_two,
            &test(Comparator::Gt, "-3"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &nine,
            &test(Comparator::Contains, "9"),
            &EvalContext::for_user(&user)
        )
        .is_err());
        assert!(compare(
            &nine,
            &test(Comparator::Eq, "nine"),
            &EvalContext::for_user(&user)
        )
        .is_err());
    }

    #[test]
    fn fixed_bytes_compare_by_their_size_and_bytes_by_their_content() {
        let user = Address([1; 20]);
        let mut word = alloy_primitives::B256::ZERO;
        word[..2].copy_from_slice(&[0xab, 0xcd]);
        let two = DynSolValue::FixedBytes(word, 2);
        assert!(compare(
            &two,
            &test(Comparator::Eq, "0xabcd"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(!compare(
            &two,
            &test(Comparator::Eq, "0xabcd00"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &two,
            &test(Comparator::Ne, "0xabce"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &two,
            &test(Comparator::Eq, "abcd"),
            &EvalContext::for_user(&user)
        )
        .is_err());
        let bytes = DynSolValue::Bytes(vec![1, 2, 3]);
        assert!(compare(
            &bytes,
            &test(Comparator::Eq, "0x010203"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &bytes,
            &test(Comparator::Gt, "0x010203"),
            &EvalContext::for_user(&user)
        )
        .is_err());
        let array = DynSolValue::Array(vec![bytes]);
        assert!(compare(
            &array,
            &test(Comparator::Eq, "0x"),
            &EvalContext::for_user(&user)
        )
        .is_err());
    }

    #[tokio::test]
    async fn malformed_addresses_and_blocks_are_the_condition_s_fault() {
        let chains = BTreeMap::from([(
            "anvil".to_string(),
            ChainConfig {
                rpc_url: "http://127.0.0.1:9".into(),
                timeout_ms: 100,
                chain_id: None,
            },
        )]);
        let e = Evaluator::new(&chains).unwrap();
        let me = Address([7; 20]);
        let balance = |params: serde_json::Value| {
            lit_api::conditions::parse(&serde_json::json!([
                {"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
                 "chain": "anvil", "method": "eth_getBalance", "parameters": params,
                 "returnValueTest": {"comparator": ">=", "value": "0"}}
            ]))
            .unwrap()
        };
        for params in [
            serde_json::json!(["0x1234", "latest"]),
            serde_json::json!([":userAddress", "yesterday"]),
        ] {
            let err = e
                .evaluate(&balance(params), &EvalContext::for_user(&me))
                .await
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConditions, "{err}");
        }
        // well-formed, but nothing listens: the chain is unavailable
        let err = e
            .evaluate(
                &balance(serde_json::json!([":userAddress", "0x10"])),
                &EvalContext::for_user(&me),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ConditionError::Rpc(_)), "{err}");
    }

    #[test]
    fn addresses_compare_case_insensitively_and_with_user_address() {
        let user = Address([0xab; 20]);
        let v = DynSolValue::Address([0xab; 20].into());
        assert!(compare(
            &v,
            &test(Comparator::Eq, ":userAddress"),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        let upper = format!("0x{}", "AB".repeat(20));
        assert!(compare(
            &v,
            &test(Comparator::Eq, &upper),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(!compare(
            &v,
            &test(Comparator::Ne, &upper),
            &EvalContext::for_user(&user)
        )
        .unwrap());
        assert!(compare(
            &v,
            &test(Comparator::Gt, &upper),
            &EvalContext::for_user(&user)
        )
        .is_err());
    }

    #[tokio::test]
    async fn unknown_chain_is_a_typed_error() {
        let evaluator = Evaluator::default();
        let items = lit_api::conditions::parse(&serde_json::json!([
            {"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "timestamp",
             "chain": "nowhere", "method": "eth_getBlockByNumber", "parameters": ["latest"],
             "returnValueTest": {"comparator": ">", "value": "0"}}
        ]))
        .unwrap();
        let err = evaluator
            .evaluate(&items, &EvalContext::for_user(&Address([0; 20])))
            .await
            .unwrap_err();
        assert_eq!(err, ConditionError::UnknownChain("nowhere".into()));
        assert_eq!(err.code(), ErrorCode::ChainUnavailable);
    }

    #[tokio::test]
    async fn user_address_conditions_need_no_chain_and_short_circuit() {
        let me = Address([7; 20]);
        let mine = format!("0x{}", hex::encode(me.0));
        let list = |op: &str| {
            serde_json::json!([
                {"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
                 "chain": "ethereum", "method": "", "parameters": [":userAddress"],
                 "returnValueTest": {"comparator": "=", "value": mine}},
                {"operator": op},
                // would fail (no chain configured) if it were evaluated
                {"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "timestamp",
                 "chain": "nowhere", "method": "eth_getBlockByNumber", "parameters": ["latest"],
                 "returnValueTest": {"comparator": ">", "value": "0"}}
            ])
        };
        let e = Evaluator::default();
        let or = lit_api::conditions::parse(&list("or")).unwrap();
        assert!(e.evaluate(&or, &EvalContext::for_user(&me)).await.unwrap());
        assert!(e
            .evaluate(&or, &EvalContext::for_user(&Address([8; 20])))
            .await
            .is_err());
        let and = lit_api::conditions::parse(&list("and")).unwrap();
        assert!(!e
            .evaluate(&and, &EvalContext::for_user(&Address([8; 20])))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn action_ids_and_lit_params_need_no_chain() {
        let me = Address([7; 20]);
        let cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
        let param = |p: &str, cmp: &str, v: &str| {
            lit_api::conditions::parse(&serde_json::json!([
                {"contractAddress": "", "standardContractType": "", "chain": "ethereum",
                 "method": "", "parameters": [p],
                 "returnValueTest": {"comparator": cmp, "value": v}}
            ]))
            .unwrap()
        };
        let e = Evaluator::default();
        let outside = EvalContext::for_user(&me);
        let inside = outside.in_action(cid);
        let this = param(CURRENT_ACTION_IPFS_ID, "=", cid);
        assert!(e.evaluate(&this, &inside).await.unwrap());
        assert!(!e
            .evaluate(&this, &inside.in_action("QmOther"))
            .await
            .unwrap());
        // outside an action nothing matches, not even "" or a negation
        for (cmp, v) in [("=", cid), ("=", ""), ("!=", cid), ("!contains", "x")] {
            assert!(
                !e.evaluate(&param(CURRENT_ACTION_IPFS_ID, cmp, v), &outside)
                    .await
                    .unwrap(),
                "{cmp} {v}"
            );
        }
        // litParams come from the request; a missing one is the condition's error
        let params = BTreeMap::from([("tier".to_string(), "gold".to_string())]);
        let with = outside.with_lit_params(&params).unwrap();
        assert!(e
            .evaluate(&param(":litParam:tier", "=", "gold"), &with)
            .await
            .unwrap());
        assert!(!e
            .evaluate(&param(":litParam:tier", "=", "basic"), &with)
            .await
            .unwrap());
        assert!(e
            .evaluate(&param(":litParam:tier", "contains", "ol"), &with)
            .await
            .unwrap());
        let err = e
            .evaluate(&param(":litParam:tier", "=", "gold"), &outside)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConditions, "{err}");
        // bounded
        let too_many: BTreeMap<String, String> = (0..=MAX_LIT_PARAMS)
            .map(|i| (i.to_string(), String::new()))
            .collect();
        assert!(outside.with_lit_params(&too_many).is_err());
        let empty_name = BTreeMap::from([(String::new(), "x".to_string())]);
        assert!(outside.with_lit_params(&empty_name).is_err());
    }
}
