//! A real EVM node for tests: `anvil` (installed into `.tools` by `./test.sh`) on a free
//! loopback port, Solidity compiled by `solcjs`, and the JSON-RPC calls to deploy and call.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lit_node::conditions::abi::{self, AbiType};
use lit_node::conditions::rpc::ChainRpc;
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
    rpc_client: ChainRpc,
}

impl Anvil {
    /// Starts anvil on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
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
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start anvil");
        let mut anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
            deployer: String::new(),
            rpc_client: ChainRpc::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(30))
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(accounts) = anvil.try_rpc("eth_accounts", json!([])).await {
                anvil.deployer = accounts[0].as_str().unwrap().to_string();
                return anvil;
            }
            assert!(Instant::now() < deadline, "anvil did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        self.rpc_client
            .call(method, params)
            .await
            .map_err(|e| e.to_string())
    }

    /// A JSON-RPC call that must succeed.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Sends a transaction from the deployer and returns its receipt (anvil mines at once).
    pub async fn send(&self, tx: Value) -> Value {
        let mut tx = tx;
        tx["from"] = json!(self.deployer);
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let receipt = loop {
            let r = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !r.is_null() {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "transaction {hash} was not mined"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(receipt["status"], "0x1", "transaction failed: {receipt}");
        receipt
    }

    /// Deploys creation code and returns the contract address.
    pub async fn deploy(&self, code: &[u8]) -> String {
        let receipt = self
            .send(json!({"data": format!("0x{}", hex::encode(code)), "gas": "0x1000000"}))
            .await;
        receipt["contractAddress"].as_str().unwrap().to_string()
    }

    /// Calls `function(inputs…)` on `to` in a transaction.
    pub async fn transact(&self, to: &str, function: &str, inputs: &[AbiType], args: &[&str]) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let data = abi::encode_call(function, inputs, &args).unwrap();
        self.send(json!({"to": to, "data": format!("0x{}", hex::encode(data)), "gas": "0x100000"}))
            .await;
    }

    /// Sends `wei` (hex quantity) to `to`.
    pub async fn fund(&self, to: &str, wei_hex: &str) {
        self.send(json!({"to": to, "value": wei_hex})).await;
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let (address, uint) = (AbiType::Address, AbiType::Uint(256));
    anvil.fund(rich, "0xde0b6b3a7640000").await; // 1 ETH
    anvil
        .transact(&c.token, "mint", &[address, uint], &[rich, "500"])
        .await;
    anvil
        .transact(&c.nft, "mint", &[address, uint], &[rich, "7"])
        .await;
    anvil
        .transact(&c.multi, "mint", &[address, uint, uint], &[rich, "3", "2"])
        .await;
    anvil
        .transact(&c.membership, "join", &[address, uint], &[rich, "150"])
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
