//! PKP records on an EVM chain: the `PkpRegistry` contract (`contracts/src/PkpRegistry.sol`)
//! read through alloy.
//!
//! On such a network nodes only read: the owner mints a PKP with its own transaction
//! (`mint(salt, publicKey)`, the key derived by the client from the root key and
//! `keyId = keccak256(owner ‖ salt)`) and changes its permissions with its own transactions, so
//! no node can mint for a user or change a user's permissions. A node still never trusts the
//! record's public key: `service::pkp::check_record` re-derives it from the key id, so a record
//! minted with another key is refused at signing. The mint quota does not apply (gas prices the
//! mints) and owner approvals are not used (the chain orders the owner's transactions).
//!
//! The [`PkpRegistry`] trait is synchronous (its callers run it on blocking threads, see
//! `service::pkp::blocking`); this backend runs each call on the runtime it was opened in.

use std::collections::BTreeSet;

use alloy_primitives::U256;
use alloy_provider::RootProvider;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use lit_api::v1::{PkpScope, SCOPE_BIT_PERSONAL_SIGN, SCOPE_BIT_SIGN_ANYTHING};
use lit_api::{Bytes, Bytes32};
use lit_crypto::eth::Address;

use super::evm::bindings::PkpRegistry as Contract;
use super::evm::{contract_error, from_evm, latest_block, read_only, to_evm};
use super::{Approval, ChainError, Permissions, PermittedAuthMethod, PkpRecord, PkpRegistry};

/// The `PkpRegistry` contract at one address, read-only.
#[derive(Debug)]
pub struct EvmRegistry {
    contract: Contract::PkpRegistryInstance<RootProvider>,
    runtime: tokio::runtime::Handle,
}

impl EvmRegistry {
    /// The registry at `contract` through `rpc_url`, served on the current tokio runtime.
    pub fn open(rpc_url: &str, contract: Address) -> Result<Self, ChainError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ChainError::Backend("the EVM registry must be opened inside a tokio runtime".into())
        })?;
        Ok(Self {
            contract: Contract::new(to_evm(contract), read_only(rpc_url)?),
            runtime,
        })
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        from_evm(*self.contract.address())
    }

    fn by_owner_transaction(&self) -> ChainError {
        ChainError::OwnerTransactions {
            contract: self.address().to_checksum(),
        }
    }

    async fn record(&self, token_id: U256) -> Result<Option<PkpRecord>, ChainError> {
        // both views at one block: an owner's transaction in between cannot mix two states
        let at = latest_block(self.contract.provider()).await?;
        let pkp = match self
            .contract
            .pkp(token_id)
            .block(at)
            .call()
            .await
            .map_err(contract_error)
        {
            Ok(pkp) => pkp,
            Err(ChainError::Refused(reason)) if reason == "no such PKP" => return Ok(None),
            Err(e) => return Err(e),
        };
        let perms = self
            .contract
            .getPermissions(token_id)
            .block(at)
            .call()
            .await
            .map_err(contract_error)?;
        let id = hex::encode(token_id.to_be_bytes::<32>());
        let corrupt = |what: &str| ChainError::Corrupt(format!("{id} ({what})"));
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(4);
        sec1.extend_from_slice(&pkp.publicKey);
        let public = k256::PublicKey::from_sec1_bytes(&sec1)
            .map_err(|_| corrupt("its public key is not a secp256k1 point"))?;
        let mut auth_methods = Vec::with_capacity(perms.methods.len());
        for m in perms.methods {
            auth_methods.push(PermittedAuthMethod {
                method_type: m.methodType,
                id: hex::encode(&m.id),
                scopes: scopes(m.scopes).ok_or_else(|| corrupt("an auth method has no scope"))?,
            });
        }
        Ok(Some(PkpRecord {
            token_id: Bytes32(token_id.to_be_bytes::<32>()),
            key_id: Bytes32(pkp.keyId.0),
            public_key: Bytes(public.to_encoded_point(true).as_bytes().to_vec()),
            eth_address: Address::from_point(public.as_affine()).to_checksum(),
            owner: from_evm(pkp.owner).to_checksum(),
            permissions: Permissions {
                addresses: perms
                    .addresses
                    .into_iter()
                    .map(|a| from_evm(a).to_checksum())
                    .collect(),
                auth_methods,
                actions: perms.actions.into_iter().collect(),
            },
        }))
    }
}

/// The scopes of the contract's bit set (bit 0 sign anything, bit 1 personal-sign); `None` if
/// none is known.
fn scopes(bits: u8) -> Option<BTreeSet<PkpScope>> {
    let mut out = BTreeSet::new();
    if bits & SCOPE_BIT_SIGN_ANYTHING != 0 {
        out.insert(PkpScope::SignAnything);
    }
    if bits & SCOPE_BIT_PERSONAL_SIGN != 0 {
        out.insert(PkpScope::PersonalSign);
    }
    (!out.is_empty()).then_some(out)
}

fn token(token_id: &str) -> Result<U256, ChainError> {
    let bytes: [u8; 32] = hex::decode(token_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ChainError::NotFound(token_id.to_string()))?;
    Ok(U256::from_be_bytes(bytes))
}

impl PkpRegistry for EvmRegistry {
    fn insert(
        &self,
        _record: &PkpRecord,
        _approval: &Approval,
        _mints_per_hour: u32,
    ) -> Result<(), ChainError> {
        Err(self.by_owner_transaction())
    }

    fn get(&self, token_id: &str) -> Result<Option<PkpRecord>, ChainError> {
        let id = token(token_id)?;
        self.runtime.block_on(self.record(id))
    }

    fn update_permissions(
        &self,
        _token_id: &str,
        _approval: &Approval,
        _f: &mut dyn FnMut(&mut Permissions),
    ) -> Result<PkpRecord, ChainError> {
        Err(self.by_owner_transaction())
    }

    fn by_owner(&self, owner: &Address) -> Result<Vec<PkpRecord>, ChainError> {
        self.runtime.block_on(async {
            let ids = self
                .contract
                .tokensOf(to_evm(*owner))
                .call()
                .await
                .map_err(contract_error)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                // a token transferred away in between is no longer the owner's
                if let Some(r) = self.record(id).await? {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }
}
