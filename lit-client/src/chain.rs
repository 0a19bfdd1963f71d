//! PKPs on an EVM chain: on a network whose nodes read their PKPs from the `PkpRegistry`
//! contract (`contracts/src/PkpRegistry.sol`), the owner mints a PKP and changes its
//! permissions with its own transactions; nodes never do it for anyone.
//!
//! The client derives the PKP's key itself, from the network's secp256k1 root key (from the
//! handshake) and `keyId = keccak256(owner ‖ salt)` (the contract computes the same id from the
//! sender), sends `mint(salt, publicKey)`, and reads the record back through the nodes, which
//! re-derive the key before they accept it.
//!
//! ```no_run
//! # async fn run(client: &lit_client::LitClient, owner: &lit_client::Wallet) -> Result<(), lit_client::ClientError> {
//! use lit_client::PkpChain;
//! let chain = PkpChain::new("http://127.0.0.1:8545", "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")?;
//! let pkp = client.mint_pkp_on_chain(owner, &chain).await?;
//! println!("PKP {} at {}", hex::encode(pkp.token_id.0), pkp.eth_address);
//! # Ok(()) }
//! ```

use alloy_network::EthereumWallet;
use alloy_primitives::{Bytes, FixedBytes, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Revert, SolError};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::v1::PkpScope;
use lit_api::v1::{PermissionChange, PkpInfo, SCOPE_BIT_PERSONAL_SIGN, SCOPE_BIT_SIGN_ANYTHING};
use lit_crypto::eth::Address;
use rand_core::{OsRng, RngCore};
use sha3::{Digest, Keccak256};

use crate::{ClientError, LitClient, Wallet};

alloy_sol_types::sol! {
    /// The owner's side of `contracts/src/PkpRegistry.sol` (see `contracts/SPEC.md`).
    #[sol(rpc)]
    interface PkpRegistry {
        function mint(bytes32 salt, bytes publicKey) external returns (uint256 tokenId);
        function addPermittedAddress(uint256 tokenId, address user) external;
        function removePermittedAddress(uint256 tokenId, address user) external;
        function addPermittedAuthMethod(uint256 tokenId, uint32 methodType, bytes id, uint8 scopes) external;
        function removePermittedAuthMethod(uint256 tokenId, uint32 methodType, bytes id) external;
        function addPermittedAction(uint256 tokenId, string cid) external;
        function removePermittedAction(uint256 tokenId, string cid) external;
        function transferFrom(address from, address to, uint256 tokenId) external;
    }
}

/// Where a network's PKPs are: a JSON-RPC endpoint of the chain and the `PkpRegistry` contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkpChain {
    rpc_url: String,
    registry: Address,
}

impl PkpChain {
    /// The registry at `registry` (EIP-55 or lowercase hex) through `rpc_url`.
    pub fn new(rpc_url: &str, registry: &str) -> Result<Self, ClientError> {
        rpc_url
            .parse::<reqwest_alloy::Url>()
            .map_err(|e| ClientError::Config(format!("RPC URL: {e}")))?;
        let registry = Address::parse(registry)
            .map_err(|e| ClientError::Config(format!("PKP registry address: {e}")))?;
        Ok(Self {
            rpc_url: rpc_url.to_string(),
            registry,
        })
    }

    /// The registry contract.
    pub fn registry(&self) -> Address {
        self.registry
    }

    /// The contract as `wallet`, whose transactions it signs (and pays for).
    fn contract(
        &self,
        wallet: &Wallet,
    ) -> Result<PkpRegistry::PkpRegistryInstance<DynProvider>, ClientError> {
        let provider = wallet_provider(&self.rpc_url, wallet)?;
        Ok(PkpRegistry::new(self.registry.0.into(), provider))
    }
}

/// A provider at `rpc_url` whose transactions `wallet` signs (and pays for).
pub(crate) fn wallet_provider(rpc_url: &str, wallet: &Wallet) -> Result<DynProvider, ClientError> {
    let url: reqwest_alloy::Url = rpc_url
        .parse()
        .map_err(|e| ClientError::Config(format!("RPC URL: {e}")))?;
    // alloy's reqwest has rustls without a provider (see the workspace manifest)
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let signer = PrivateKeySigner::from_signing_key(wallet.signing_key().clone());
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

/// The key id the contract records for `owner`'s mint with `salt`.
pub fn key_id(owner: &Address, salt: &[u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(owner.0);
    h.update(salt);
    h.finalize().into()
}

/// Sends a call and waits for it to be mined; a refusal is the contract's reason.
pub(crate) async fn send<D: alloy_contract::CallDecoder>(
    what: &str,
    call: alloy_contract::CallBuilder<&DynProvider, D>,
) -> Result<(), ClientError> {
    let failed = |e: alloy_contract::Error| {
        let refused = e
            .as_revert_data()
            .and_then(|d| Revert::abi_decode(&d).ok())
            .map(|r| r.reason);
        ClientError::Chain {
            message: match &refused {
                Some(reason) => format!("{what}: the contract refused: {reason}"),
                None => format!("{what}: {e}"),
            },
            refused,
        }
    };
    let receipt = call
        .send()
        .await
        .map_err(failed)?
        .get_receipt()
        .await
        .map_err(|e| ClientError::Chain {
            message: format!("{what}: waiting for the receipt: {e}"),
            refused: None,
        })?;
    if !receipt.status() {
        return Err(ClientError::Chain {
            message: format!("{what}: transaction {} reverted", receipt.transaction_hash),
            refused: None,
        });
    }
    Ok(())
}

fn scope_bits(scopes: &std::collections::BTreeSet<PkpScope>) -> u8 {
    scopes.iter().fold(0, |bits, s| {
        bits | match s {
            PkpScope::SignAnything => SCOPE_BIT_SIGN_ANYTHING,
            PkpScope::PersonalSign => SCOPE_BIT_PERSONAL_SIGN,
        }
    })
}

fn method_id(id: &str) -> Result<Bytes, ClientError> {
    hex::decode(id.strip_prefix("0x").unwrap_or(id))
        .map(Bytes::from)
        .map_err(|_| ClientError::Config(format!("auth method id {id:?} is not hex")))
}

fn address(a: &str) -> Result<alloy_primitives::Address, ClientError> {
    Address::parse(a)
        .map(|a| a.0.into())
        .map_err(|e| ClientError::Config(format!("address {a:?}: {e}")))
}

impl LitClient {
    /// Mints a PKP owned by `wallet` with the wallet's own transaction to the network's
    /// `PkpRegistry` (the wallet pays the gas), then reads it back through the nodes.
    pub async fn mint_pkp_on_chain(
        &self,
        wallet: &Wallet,
        chain: &PkpChain,
    ) -> Result<PkpInfo, ClientError> {
        let mut salt = [0u8; 32];
        OsRng.fill_bytes(&mut salt);
        let key_id = key_id(&wallet.address(), &salt);
        let public = lit_crypto::ecdsa::pkp_public_key(&self.root_key()?, &key_id)
            .map_err(|e| ClientError::Config(format!("PKP key: {e}")))?;
        let point = public.to_encoded_point(false);
        let token_id: [u8; 32] = Keccak256::digest(&point.as_bytes()[1..]).into();
        let contract = chain.contract(wallet)?;
        send(
            "mint",
            contract.mint(
                FixedBytes(salt),
                Bytes::copy_from_slice(&point.as_bytes()[1..]),
            ),
        )
        .await?;
        self.pkp(token_id).await
    }

    /// Changes a PKP's permissions with `wallet`'s own transaction (the contract refuses
    /// anyone but the owner: [`ClientError::Chain`] with `refused: Some("not owner")`), then
    /// reads the record back through the nodes.
    pub async fn pkp_permit_on_chain(
        &self,
        wallet: &Wallet,
        chain: &PkpChain,
        token_id: [u8; 32],
        change: PermissionChange,
    ) -> Result<PkpInfo, ClientError> {
        let contract = chain.contract(wallet)?;
        let token = U256::from_be_bytes(token_id);
        match &change {
            PermissionChange::AddAddress { address: a } => {
                send(
                    "add address",
                    contract.addPermittedAddress(token, address(a)?),
                )
                .await
            }
            PermissionChange::RemoveAddress { address: a } => {
                send(
                    "remove address",
                    contract.removePermittedAddress(token, address(a)?),
                )
                .await
            }
            PermissionChange::AddAuthMethod { method } => {
                send(
                    "add auth method",
                    contract.addPermittedAuthMethod(
                        token,
                        method.method_type,
                        method_id(&method.id)?,
                        scope_bits(&method.scopes),
                    ),
                )
                .await
            }
            PermissionChange::RemoveAuthMethod { method_type, id } => {
                send(
                    "remove auth method",
                    contract.removePermittedAuthMethod(token, *method_type, method_id(id)?),
                )
                .await
            }
            PermissionChange::AddAction { cid } => {
                send(
                    "add action",
                    contract.addPermittedAction(token, cid.clone()),
                )
                .await
            }
            PermissionChange::RemoveAction { cid } => {
                send(
                    "remove action",
                    contract.removePermittedAction(token, cid.clone()),
                )
                .await
            }
        }?;
        self.pkp(token_id).await
    }

    /// Transfers a PKP (and its permissions) from `wallet` to `to` with the wallet's own
    /// transaction.
    pub async fn pkp_transfer_on_chain(
        &self,
        wallet: &Wallet,
        chain: &PkpChain,
        token_id: [u8; 32],
        to: &Address,
    ) -> Result<PkpInfo, ClientError> {
        let contract = chain.contract(wallet)?;
        send(
            "transfer",
            contract.transferFrom(
                wallet.address().0.into(),
                to.0.into(),
                U256::from_be_bytes(token_id),
            ),
        )
        .await?;
        self.pkp(token_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_the_contracts_bits() {
        let all = [PkpScope::SignAnything, PkpScope::PersonalSign]
            .into_iter()
            .collect();
        assert_eq!(scope_bits(&all), 3);
        assert_eq!(
            scope_bits(&[PkpScope::PersonalSign].into_iter().collect()),
            2
        );
    }

    #[test]
    fn a_bad_registry_address_is_a_config_error() {
        assert!(matches!(
            PkpChain::new("http://127.0.0.1:8545", "0x12"),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            PkpChain::new("not a url", "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"),
            Err(ClientError::Config(_))
        ));
    }
}
