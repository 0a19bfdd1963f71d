//! The release register on an EVM chain: the `ReleaseRegister` contract
//! (`contracts/src/ReleaseRegister.sol`) through alloy, as a [`ReleaseRegister`].
//!
//! Reads are `eth_call`s; the admin's additions and revocations are transactions signed by the
//! admin's own key. A refusal is the contract's `require` reason ([`ChainError::Refused`], see
//! [`releases::reasons`](super::releases::reasons)), the same as on the embedded chain. Nodes
//! and clients only read the register: [`EvmReleases::open`] gives a view without a key, whose
//! transactions fail before anything is sent.

use std::fmt;
use std::sync::Arc;

use alloy_contract::{CallBuilder, CallDecoder};
use alloy_primitives::Bytes;
use alloy_provider::{DynProvider, Provider};
use async_trait::async_trait;
use lit_attest::{MinTcb, Release};
use lit_crypto::eth::Address;

use super::evm::bindings::ReleaseRegister as Contract;
use super::evm::{connect, from_evm, read_only, send_lock, to_evm, transact, view};
use super::releases::ReleaseRegister;
use super::ChainError;

/// One account's view of a deployed `ReleaseRegister` contract ([`ReleaseRegister`]).
#[derive(Clone)]
pub struct EvmReleases {
    /// The account that signs this view's transactions; `None` for a read-only view.
    signer: Option<Address>,
    /// One transaction at a time from this account, across its views in this process
    /// ([`send_lock`]): the next nonce is read from the chain, so two concurrent sends would
    /// pick the same.
    sending: Arc<tokio::sync::Mutex<()>>,
    contract: Contract::ReleaseRegisterInstance<DynProvider>,
}

impl fmt::Debug for EvmReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvmReleases")
            .field("signer", &self.signer)
            .field("contract", &self.address())
            .finish_non_exhaustive()
    }
}

impl EvmReleases {
    /// Connects to the `ReleaseRegister` contract at `contract` through the JSON-RPC endpoint
    /// `rpc_url`, acting as the account of `key` (which pays for its transactions; only the
    /// admin's are accepted).
    pub fn connect(
        rpc_url: &str,
        contract: Address,
        key: &k256::ecdsa::SigningKey,
    ) -> Result<Self, ChainError> {
        let (provider, signer) = connect(rpc_url, key)?;
        Ok(Self {
            signer: Some(from_evm(signer)),
            sending: send_lock(from_evm(signer)),
            contract: Contract::new(to_evm(contract), provider),
        })
    }

    /// The register at `contract` through `rpc_url`, read-only: its
    /// [`caller`](ReleaseRegister::caller) is the zero address and its transactions fail with
    /// [`ChainError::Backend`] before anything is sent.
    pub fn open(rpc_url: &str, contract: Address) -> Result<Self, ChainError> {
        Ok(Self {
            signer: None,
            sending: Arc::default(),
            contract: Contract::new(to_evm(contract), read_only(rpc_url)?.erased()),
        })
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        from_evm(*self.contract.address())
    }

    /// The contract's admin, the only account whose additions and revocations it accepts.
    pub async fn admin(&self) -> Result<Address, ChainError> {
        Ok(from_evm(view(self.contract.admin()).await?))
    }

    async fn send<D: CallDecoder>(
        &self,
        call: CallBuilder<&DynProvider, D>,
    ) -> Result<(), ChainError> {
        if self.signer.is_none() {
            return Err(ChainError::Backend(format!(
                "this view of the release register at {} is read-only: connect with the \
                 admin's key to add or revoke releases",
                self.address()
            )));
        }
        let _one_at_a_time = self.sending.lock().await;
        transact(call).await
    }
}

#[async_trait]
impl ReleaseRegister for EvmReleases {
    fn caller(&self) -> Address {
        self.signer.unwrap_or(Address([0; 20]))
    }

    async fn releases(&self) -> Result<Vec<Release>, ChainError> {
        view(self.contract.releases())
            .await?
            .into_iter()
            .map(release)
            .collect()
    }

    async fn add_release(&self, release: &Release) -> Result<(), ChainError> {
        let t = release.min_tcb;
        self.send(self.contract.addRelease(
            Bytes::copy_from_slice(&release.measurement),
            Contract::Tcb {
                fmc: t.fmc,
                bootloader: t.bootloader,
                tee: t.tee,
                snp: t.snp,
                microcode: t.microcode,
            },
            release.flags(),
        ))
        .await
    }

    async fn revoke_release(&self, measurement: &[u8; 48]) -> Result<(), ChainError> {
        self.send(
            self.contract
                .revokeRelease(Bytes::copy_from_slice(measurement)),
        )
        .await
    }
}

/// The contract's release as [`lit_attest::Release`] (the timestamps are not carried).
fn release(r: Contract::Release) -> Result<Release, ChainError> {
    let measurement: [u8; 48] = r.measurement.as_ref().try_into().map_err(|_| {
        ChainError::Corrupt(format!(
            "a release register entry has a {}-byte measurement (not 48)",
            r.measurement.len()
        ))
    })?;
    let t = r.minTcb;
    Ok(Release {
        measurement,
        min_tcb: MinTcb {
            fmc: t.fmc,
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
        },
        allow_debug: false,
        vcek_only: false,
        revoked: r.revoked,
    }
    .with_flags(r.flags))
}
