//! A fresh EVM chain for the tests of the `evm` chain backend: `anvil` (installed into `.tools`
//! by `./test.sh`) on a free loopback port, killed on drop, and test accounts with their own
//! secp256k1 keys, funded with ETH for gas.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use alloy_provider::Provider;
use lit_crypto::eth::Address;
use lit_node::chain::evm;

use super::evm::tool;

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
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
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start anvil");
        let mut anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // any key will do to ask for the chain id
        let (provider, _) = evm::connect(&anvil.url, &account_key(0)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while provider.get_chain_id().await.is_err() {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                panic!("anvil exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "anvil did not answer in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anvil
    }

    /// Gives the account of `key` 1000 ETH for gas; returns its address.
    pub async fn fund(&self, key: &k256::ecdsa::SigningKey) -> Address {
        let (provider, address) = evm::connect(&self.url, key).unwrap();
        let wei = U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64));
        provider
            .raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (address, wei))
            .await
            .unwrap();
        evm::from_evm(address)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secp256k1 key of test account `i`: fixed (keccak256 of a label), so every run uses the
/// same accounts and nothing random needs replaying.
pub fn account_key(i: u32) -> k256::ecdsa::SigningKey {
    use sha3::{Digest, Keccak256};
    let seed = Keccak256::digest(format!("lit-node chain tests: account {i}"));
    k256::ecdsa::SigningKey::from_slice(&seed).expect("a keccak256 output is a valid key")
}
