//! Test accounts of the `evm` chain backend's tests on [`Anvil`]: their own secp256k1 keys,
//! funded with ETH for gas.

use alloy_primitives::U256;
use alloy_provider::Provider;
use lit_crypto::eth::Address;
use lit_node::chain::evm;

pub use super::evm::Anvil;

impl Anvil {
    /// Gives the account of `key` 1000 ETH for gas; returns its address.
    pub async fn fund_account(&self, key: &k256::ecdsa::SigningKey) -> Address {
        let (provider, address) = evm::connect(&self.url, key).unwrap();
        let wei = U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64));
        provider
            .raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (address, wei))
            .await
            .unwrap();
        evm::from_evm(address)
    }
}

/// The secp256k1 key of test account `i`: fixed (keccak256 of a label), so every run uses the
/// same accounts and nothing random needs replaying.
pub fn account_key(i: u32) -> k256::ecdsa::SigningKey {
    use sha3::{Digest, Keccak256};
    let seed = Keccak256::digest(format!("lit-node chain tests: account {i}"));
    k256::ecdsa::SigningKey::from_slice(&seed).expect("a keccak256 output is a valid key")
}
