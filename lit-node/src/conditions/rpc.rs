//! A minimal Ethereum JSON-RPC client: the three read calls conditions need, with a timeout on
//! every call.

use std::time::Duration;

use ruint::aliases::U256;
use serde_json::{json, Value};

use super::ConditionError;

/// A JSON-RPC endpoint of one chain.
#[derive(Clone, Debug)]
pub struct ChainRpc {
    url: String,
    client: reqwest::Client,
}

impl ChainRpc {
    /// A client for `url` whose calls give up after `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, ConditionError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ConditionError::Rpc(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            url: url.into(),
            client,
        })
    }

    /// One JSON-RPC call; the `result`, or the node's error as [`ConditionError::Rpc`].
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ConditionError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ConditionError::Rpc(format!("{method} to {}: {e}", self.url)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ConditionError::Rpc(format!("{method}: reading the answer: {e}")))?;
        if !status.is_success() {
            return Err(ConditionError::Rpc(format!("{method}: HTTP {status}")));
        }
        let mut answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ConditionError::Rpc(format!("{method}: answer is not JSON: {e}")))?;
        if let Some(err) = answer.get("error") {
            return Err(ConditionError::Rpc(format!("{method}: {err}")));
        }
        answer
            .get_mut("result")
            .map(Value::take)
            .ok_or_else(|| ConditionError::Rpc(format!("{method}: answer has no result")))
    }

    /// `eth_getBalance(address, block)`.
    pub async fn balance(&self, address: &str, block: &str) -> Result<U256, ConditionError> {
        quantity(&self.call("eth_getBalance", json!([address, block])).await?)
    }

    /// `eth_call({to, data}, "latest")`, returning the raw return data.
    pub async fn call_contract(&self, to: &str, data: &[u8]) -> Result<Vec<u8>, ConditionError> {
        let result = self
            .call(
                "eth_call",
                json!([{"to": to, "data": format!("0x{}", hex::encode(data))}, "latest"]),
            )
            .await?;
        let s = result
            .as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .ok_or_else(|| ConditionError::Rpc("eth_call result is not hex".into()))?;
        hex::decode(s).map_err(|_| ConditionError::Rpc("eth_call result is not hex".into()))
    }

    /// The timestamp of the latest block.
    pub async fn latest_timestamp(&self) -> Result<U256, ConditionError> {
        let block = self
            .call("eth_getBlockByNumber", json!(["latest", false]))
            .await?;
        quantity(
            block
                .get("timestamp")
                .ok_or_else(|| ConditionError::Rpc("block has no timestamp".into()))?,
        )
    }
}

fn quantity(v: &Value) -> Result<U256, ConditionError> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| U256::from_str_radix(h, 16).ok())
        .ok_or_else(|| ConditionError::Rpc(format!("{v} is not a hex quantity")))
}
