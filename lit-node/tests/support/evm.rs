//! A real EVM node for tests: `anvil` (installed into `.tools` by `./test.sh`) on a free
//! loopback port, Solidity compiled by `solcjs`, and an alloy provider to deploy, transact and
//! read.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, TxHash, U256};
use alloy_provider::{Provider as _, RootProvider};
use alloy_rpc_types_eth::{TransactionInput, TransactionReceipt, TransactionRequest};
use alloy_sol_types::{sol, SolCall};
use serde_json::{json, Value};

/// Finds a tool the test script installs: `$LIT_<NAME>`, then `<workspace>/.tools/bin`, then
/// `PATH`. Panics with instructions when it is missing (the test must not silently pass).
pub fn tool(name: &str) -> PathBuf {
    let env = format!("LIT_{}", name.to_ascii_uppercase());
    if let Ok(p) = std::env::var(&env) {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/bin")
        .join(name);
    if local.exists() {
        return local;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    }) {
        return found;
    }
    panic!(
        "`{name}` not found: run ./test.sh once (it installs {name} into .tools/bin) or set {env}"
    );
}

/// Compiles a Solidity file; returns contract name → creation bytecode.
pub fn compile(source: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(tool("solcjs"))
        .arg("--bin")
        .arg("--optimize")
        .arg("-o")
        .arg(out.path())
        .arg("--base-path")
        .arg(source.parent().unwrap())
        .arg(source)
        .status()
        .expect("run solcjs");
    assert!(status.success(), "solcjs failed on {}", source.display());
    let mut contracts = BTreeMap::new();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = file.strip_suffix(".bin") {
            let name = stem.rsplit('_').next().unwrap().to_string();
            let code = hex::decode(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
            contracts.insert(name, code);
        }
    }
    contracts
}

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
    /// Its first (unlocked, funded) account.
    pub deployer: String,
    provider: RootProvider,
}

impl Anvil {
    /// Starts anvil on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
        // alloy's reqwest has no TLS provider of its own (see the workspace manifest)
        lit_node::chain::evm::install_tls_provider();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(tool("anvil"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start anvil");
        let url = format!("http://127.0.0.1:{port}");
        let mut anvil = Anvil {
            child,
            provider: RootProvider::new_http(url.parse().unwrap()),
            url,
            deployer: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(accounts) = anvil.provider.get_accounts().await {
                anvil.deployer = accounts[0].to_checksum(None);
                return anvil;
            }
            assert!(Instant::now() < deadline, "anvil did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An alloy provider for anvil.
    pub fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// Its EIP-155 chain id.
    pub async fn chain_id(&self) -> u64 {
        self.provider.get_chain_id().await.unwrap()
    }

    /// The balance of `address` (`0x…`) on the latest block.
    pub async fn balance(&self, address: &str) -> U256 {
        self.provider
            .get_balance(address.parse().unwrap())
            .latest()
            .await
            .unwrap()
    }

    /// The receipt of `hash` once it is mined (anvil mines at once).
    async fn receipt(&self, hash: TxHash) -> TransactionReceipt {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(receipt) = self.provider.get_transaction_receipt(hash).await.unwrap() {
                return receipt;
            }
            assert!(
                Instant::now() < deadline,
                "transaction {hash} was not mined"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a transaction from the deployer and returns its receipt, asserting that it
    /// succeeded.
    pub async fn send(&self, tx: TransactionRequest) -> TransactionReceipt {
        let tx = tx.from(self.deployer.parse().unwrap());
        let pending = self.provider.send_transaction(tx).await.unwrap();
        let receipt = self.receipt(*pending.tx_hash()).await;
        assert!(receipt.status(), "transaction failed: {receipt:?}");
        receipt
    }

    /// Sends a signed transaction (`eth_sendRawTransaction`) and returns its receipt once mined,
    /// whether it succeeded or not.
    pub async fn send_raw(&self, raw: &[u8]) -> TransactionReceipt {
        let pending = self.provider.send_raw_transaction(raw).await.unwrap();
        self.receipt(*pending.tx_hash()).await
    }

    /// Deploys creation code and returns the contract address.
    pub async fn deploy(&self, code: &[u8]) -> String {
        let receipt = self
            .send(
                TransactionRequest::default()
                    .input(TransactionInput::new(code.to_vec().into()))
                    .gas_limit(0x1000000),
            )
            .await;
        receipt.contract_address.unwrap().to_checksum(None)
    }

    /// Makes `call` on `to` in a transaction.
    pub async fn transact(&self, to: &str, call: impl SolCall) {
        let to: Address = to.parse().unwrap();
        self.send(
            TransactionRequest::default()
                .to(to)
                .input(TransactionInput::new(call.abi_encode().into()))
                .gas_limit(0x100000),
        )
        .await;
    }

    /// Sends `wei` (a `0x` hex quantity) to `to`.
    pub async fn fund(&self, to: &str, wei_hex: &str) {
        let wei: U256 = wei_hex.parse().unwrap();
        self.send(
            TransactionRequest::default()
                .to(to.parse().unwrap())
                .value(wei),
        )
        .await;
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The state-changing functions of `tests/contracts/Conditions.sol` the tests call.
sol! {
    interface TestToken {
        function mint(address to, uint256 amount) external;
    }
    interface TestNft {
        function mint(address to, uint256 id) external;
    }
    interface TestMulti {
        function mint(address to, uint256 id, uint256 amount) external;
    }
    interface Membership {
        function join(address who, uint256 p) external;
    }
}

/// The contracts of `tests/contracts/Conditions.sol`, deployed, with one user (`rich`) holding
/// something of each: 1 ETH, 500 tokens, NFT #7, 2 of multi-token #3, and a membership with
/// score 150 ("gold").
pub struct ConditionContracts {
    pub token: String,
    pub nft: String,
    pub multi: String,
    pub membership: String,
}

/// Compiles and deploys the condition contracts on `anvil` and endows `rich` (`0x…` address).
pub async fn deploy_condition_contracts(anvil: &Anvil, rich: &str) -> ConditionContracts {
    let contracts =
        compile(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/Conditions.sol"));
    let c = ConditionContracts {
        token: anvil.deploy(&contracts["TestToken"]).await,
        nft: anvil.deploy(&contracts["TestNft"]).await,
        multi: anvil.deploy(&contracts["TestMulti"]).await,
        membership: anvil.deploy(&contracts["Membership"]).await,
    };
    let to: Address = rich.parse().unwrap();
    let n = |v: u64| U256::from(v);
    anvil.fund(rich, "0xde0b6b3a7640000").await; // 1 ETH
    anvil
        .transact(&c.token, TestToken::mintCall { to, amount: n(500) })
        .await;
    anvil
        .transact(&c.nft, TestNft::mintCall { to, id: n(7) })
        .await;
    anvil
        .transact(
            &c.multi,
            TestMulti::mintCall {
                to,
                id: n(3),
                amount: n(2),
            },
        )
        .await;
    anvil
        .transact(&c.membership, Membership::joinCall { who: to, p: n(150) })
        .await;
    c
}

/// An `evmBasic` condition on the chain named `anvil`.
pub fn basic(
    contract: &str,
    kind: &str,
    method: &str,
    params: &[&str],
    cmp: &str,
    value: &str,
) -> Value {
    json!({"conditionType": "evmBasic", "contractAddress": contract, "standardContractType": kind,
           "chain": "anvil", "method": method, "parameters": params,
           "returnValueTest": {"comparator": cmp, "value": value}})
}
