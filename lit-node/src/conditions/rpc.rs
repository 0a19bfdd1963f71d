//! The chain reads that conditions and contract-wallet checks need, through an alloy provider:
//! `eth_call`, `eth_getBalance`, `eth_getBlockByNumber`, `eth_getCode` and `eth_chainId`, each
//! bounded by the chain's timeout.

use std::time::Duration;

use alloy_primitives::{Address, Bytes, U256};
use alloy_provider::{Provider as _, RootProvider};
use alloy_rpc_client::RpcClient;
use alloy_rpc_types_eth::{BlockId, BlockNumberOrTag, TransactionInput, TransactionRequest};
use alloy_transport::TransportError;
use alloy_transport_http::reqwest;

use super::ConditionError;

/// A JSON-RPC endpoint of one chain.
#[derive(Clone, Debug)]
pub struct ChainRpc {
    provider: RootProvider,
}

/// What an `eth_call` came to: the contract either returned or reverted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call returned this data.
    Returned(Bytes),
    /// The call reverted; the node's message.
    Reverted(String),
}

impl ChainRpc {
    /// A client for `url` whose calls give up after `timeout`.
    pub fn new(url: impl AsRef<str>, timeout: Duration) -> Result<Self, ConditionError> {
        // the URL is not quoted in errors: hosted RPC URLs carry API keys
        let url = reqwest::Url::parse(url.as_ref())
            .map_err(|e| ConditionError::Rpc(format!("invalid RPC URL: {e}")))?;
        crate::chain::evm::install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ConditionError::Rpc(format!("cannot build HTTP client: {e}")))?;
        let client = RpcClient::new_http_with_client(http, url);
        Ok(Self {
            provider: RootProvider::new(client),
        })
    }

    /// `eth_getBalance(address, block)`.
    pub async fn balance(&self, address: Address, block: BlockId) -> Result<U256, ConditionError> {
        self.provider
            .get_balance(address)
            .block_id(block)
            .await
            .map_err(|e| failed("eth_getBalance", &e))
    }

    /// `eth_call({to, data}, "latest")`: what the contract returned or that it reverted.
    pub async fn try_call(&self, to: Address, data: Bytes) -> Result<CallOutcome, ConditionError> {
        let request = TransactionRequest::default()
            .to(to)
            .input(TransactionInput::new(data));
        match self.provider.call(request).block(BlockId::latest()).await {
            Ok(returned) => Ok(CallOutcome::Returned(returned)),
            Err(e) => match revert_message(&e) {
                Some(message) => Ok(CallOutcome::Reverted(message)),
                None => Err(failed("eth_call", &e)),
            },
        }
    }

    /// `eth_call({to, data}, "latest")`, returning the raw return data; a revert is an error.
    pub async fn call_contract(&self, to: Address, data: Bytes) -> Result<Bytes, ConditionError> {
        match self.try_call(to, data).await? {
            CallOutcome::Returned(returned) => Ok(returned),
            CallOutcome::Reverted(message) => {
                Err(ConditionError::Rpc(format!("eth_call reverted: {message}")))
            }
        }
    }

    /// The timestamp of the latest block (seconds since the Unix epoch).
    pub async fn latest_timestamp(&self) -> Result<u64, ConditionError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| failed("eth_getBlockByNumber", &e))?
            .ok_or_else(|| ConditionError::Rpc("eth_getBlockByNumber: no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// The code at `address` on the latest block (`eth_getCode`); empty for an account without
    /// code.
    pub async fn code(&self, address: Address) -> Result<Bytes, ConditionError> {
        self.provider
            .get_code_at(address)
            .latest()
            .await
            .map_err(|e| failed("eth_getCode", &e))
    }

    /// The chain id the endpoint serves (`eth_chainId`).
    pub async fn chain_id(&self) -> Result<u64, ConditionError> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|e| failed("eth_chainId", &e))
    }
}

fn failed(method: &str, e: &TransportError) -> ConditionError {
    ConditionError::Rpc(format!("{method}: {e}"))
}

/// The node's message when `e` is an EVM revert rather than a transport or node failure. Nodes
/// report reverts as JSON-RPC error code 3 with `execution reverted` (geth, anvil, erigon, reth);
/// some use another code but keep the message.
fn revert_message(e: &TransportError) -> Option<String> {
    let payload = e.as_error_resp()?;
    (payload.code == 3 || payload.message.contains("revert")).then(|| payload.message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_json_rpc::ErrorPayload;
    use alloy_transport::TransportErrorKind;

    fn error_response(code: i64, message: &'static str) -> TransportError {
        TransportError::ErrorResp(ErrorPayload {
            code,
            message: message.into(),
            data: None,
        })
    }

    #[test]
    fn reverts_are_told_from_failures() {
        assert_eq!(
            revert_message(&error_response(3, "execution reverted")).as_deref(),
            Some("execution reverted")
        );
        assert!(revert_message(&error_response(-32000, "execution reverted: nope")).is_some());
        assert!(revert_message(&error_response(-32000, "header not found")).is_none());
        assert!(
            revert_message(&TransportErrorKind::http_error(502, "bad gateway".into())).is_none()
        );
    }

    #[tokio::test]
    async fn calls_give_up_after_the_chain_s_timeout() {
        // a server that accepts connections and never answers
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let rpc = ChainRpc::new(format!("http://{address}"), Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let err = rpc.chain_id().await.unwrap_err();
        assert!(matches!(err, ConditionError::Rpc(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        server.abort();
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_it() {
        let err = ChainRpc::new("not a url/KEY-1234", Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&err, ConditionError::Rpc(m) if !m.contains("KEY-1234")),
            "{err}"
        );
    }
}
