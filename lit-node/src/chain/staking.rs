//! Staking and epochs: who is in the network, who joins and leaves at the next epoch, and the
//! handover between epochs (lock the next set, the next set reshares and signals it is ready,
//! the epoch advances).
//!
//! The [`Staking`] trait is the view of one account (the node's staker, an operator, the
//! network's admin) on the network's staking contract; `contracts/SPEC.md` says what every call
//! does and refuses, with the exact refusal reasons. Two backends implement it and pass one
//! conformance suite (`tests/chain_conformance.rs`): [`super::embedded`] for one-machine
//! devnets and `evm` for the Solidity contracts on any EVM chain.

use async_trait::async_trait;
use lit_crypto::eth::Address;
use serde::{Deserialize, Serialize};

use super::ChainError;

/// Token amounts in base units (18 decimals: 1 tstLPX = 10¹⁸).
pub type Amount = u128;

/// One whole token in base units.
pub const TOKEN: Amount = 1_000_000_000_000_000_000;

/// The threshold of a set of `n` members: `⌈2n/3⌉`, more than half and at least two thirds.
pub fn threshold_for(n: usize) -> u32 {
    (2 * n as u32).div_ceil(3)
}

/// A validator as the staking contract records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The staker's address (the account that staked and joined).
    pub staker: Address,
    /// Its party id: assigned at its first join, never reused.
    pub party_id: u32,
    /// Its base URL.
    pub url: String,
    /// Its ed25519 identity key.
    pub identity_key: [u8; 32],
    /// Its X25519 sealing key.
    pub seal_key: [u8; 32],
    /// Its secp256k1 DKG key, SEC1 compressed (33 bytes).
    pub dkg_key: Vec<u8>,
}

/// What a node announces when it asks to join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// Its base URL.
    pub url: String,
    /// Its ed25519 identity key.
    pub identity_key: [u8; 32],
    /// Its X25519 sealing key.
    pub seal_key: [u8; 32],
    /// Its secp256k1 DKG key, SEC1 compressed (33 bytes).
    pub dkg_key: Vec<u8>,
}

/// Whether the next set is open to changes or locked for the handover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EpochState {
    /// Operators may join and leave; the next set follows.
    Active,
    /// The next set is fixed; its members reshare and signal.
    Locked,
}

/// The network's state on the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkState {
    /// The current epoch (0 before the genesis DKG).
    pub epoch: u64,
    /// Whether the next set is locked.
    pub state: EpochState,
    /// When the current epoch began (Unix seconds).
    pub epoch_start: u64,
    /// How long an epoch lasts before anyone may lock the next set (seconds).
    pub epoch_length: u64,
    /// How long a locked handover may take before anyone may abandon it (seconds).
    pub reshare_timeout: u64,
    /// When the next set was locked (Unix seconds; 0 if never).
    pub locked_at: u64,
    /// The current set's threshold (0 at epoch 0).
    pub threshold: u32,
    /// The next set's threshold.
    pub next_threshold: u32,
    /// The current members, by party id.
    pub current: Vec<Validator>,
    /// The next set, by party id (the locked list while locked).
    pub next: Vec<Validator>,
    /// The hash of the root public keys the network was created with (zero before genesis).
    pub root_keys_hash: [u8; 32],
}

impl NetworkState {
    /// The current member with this party id.
    pub fn member(&self, party_id: u32) -> Option<&Validator> {
        self.current.iter().find(|v| v.party_id == party_id)
    }

    /// The current member staked by `staker`.
    pub fn member_by_staker(&self, staker: &Address) -> Option<&Validator> {
        self.current.iter().find(|v| &v.staker == staker)
    }

    /// Whether anyone may lock the next set at `now` (the admin may lock at any time).
    pub fn epoch_over(&self, now: u64) -> bool {
        self.epoch >= 1 && now >= self.epoch_start.saturating_add(self.epoch_length)
    }

    /// Whether anyone may abandon the locked handover at `now`.
    pub fn reshare_timed_out(&self, now: u64) -> bool {
        self.state == EpochState::Locked
            && now >= self.locked_at.saturating_add(self.reshare_timeout)
    }
}

/// The parameters a staking contract is created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StakingParams {
    /// The least stake that lets an operator join.
    pub min_stake: Amount,
    /// Epoch length (seconds).
    pub epoch_length: u64,
    /// How long a handover may take before anyone may abandon it (seconds).
    pub reshare_timeout: u64,
    /// The percentage of a kicked member's stake that is slashed.
    pub kick_slash_percent: u8,
}

impl Default for StakingParams {
    fn default() -> Self {
        Self {
            min_stake: 1_000 * TOKEN,
            epoch_length: 3600,
            reshare_timeout: 600,
            kick_slash_percent: 10,
        }
    }
}

/// One account's view of the network's staking contract and test token. Every call that
/// changes state is made by [`Staking::caller`]; a refusal is [`ChainError::Refused`] with the
/// contract's reason (`contracts/SPEC.md`).
#[async_trait]
pub trait Staking: Send + Sync {
    /// The account this view acts for.
    fn caller(&self) -> Address;

    /// The network's state: epoch, sets, thresholds, timing.
    async fn network(&self) -> Result<NetworkState, ChainError>;
    /// The least stake that lets an operator join.
    async fn min_stake(&self) -> Result<Amount, ChainError>;
    /// `who`'s stake.
    async fn stake_of(&self, who: Address) -> Result<Amount, ChainError>;
    /// `who`'s balance of the test token.
    async fn token_balance(&self, who: Address) -> Result<Amount, ChainError>;
    /// The votes for `hash` as the next epoch's root keys.
    async fn ready_count(&self, next_epoch: u64, hash: [u8; 32]) -> Result<u32, ChainError>;
    /// Whether `who` signalled readiness for `next_epoch`.
    async fn has_signalled(&self, next_epoch: u64, who: Address) -> Result<bool, ChainError>;

    /// Sends test tokens from the caller to `to` (the faucet is the token's first holder).
    async fn transfer_token(&self, to: Address, amount: Amount) -> Result<(), ChainError>;
    /// Stakes `amount` of the caller's tokens.
    async fn stake(&self, amount: Amount) -> Result<(), ChainError>;
    /// Asks to join the next set (or cancels a request to leave).
    async fn request_to_join(&self, request: &JoinRequest) -> Result<(), ChainError>;
    /// Asks to leave at the next epoch (or withdraws a pending join).
    async fn request_to_leave(&self) -> Result<(), ChainError>;
    /// Takes `amount` of the caller's stake back, once it is in no set.
    async fn withdraw(&self, amount: Amount) -> Result<(), ChainError>;
    /// Votes to remove `target` from the next set (current members only).
    async fn vote_to_kick(&self, target: Address) -> Result<(), ChainError>;
    /// Locks the next set for the handover.
    async fn lock_next_epoch(&self) -> Result<(), ChainError>;
    /// Signals that the caller holds its shares of the next epoch, whose root keys hash to
    /// `root_keys_hash`.
    async fn signal_ready(
        &self,
        next_epoch: u64,
        root_keys_hash: [u8; 32],
    ) -> Result<(), ChainError>;
    /// Makes the locked set current once enough of it signalled `root_keys_hash`.
    async fn advance_epoch(&self, root_keys_hash: [u8; 32]) -> Result<(), ChainError>;
    /// Gives up a handover that timed out; the current set keeps serving.
    async fn abandon_reshare(&self) -> Result<(), ChainError>;
    /// Sets the epoch length (admin).
    async fn set_epoch_length(&self, seconds: u64) -> Result<(), ChainError>;
}

/// The hash a node signals as the next epoch's root keys: SHA-256 over a tag, the BLS root key
/// (G1, compressed) and the secp256k1 root key (SEC1 compressed). Every member of the next set
/// must compute the same; it never changes after genesis.
pub fn root_keys_hash(bls_root: &[u8], ecdsa_root: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"lit-node/root-keys/v1");
    for part in [bls_root, ecdsa_root] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_two_thirds_rounded_up() {
        let t: Vec<u32> = (1..=10).map(threshold_for).collect();
        assert_eq!(t, [1, 2, 2, 3, 4, 4, 5, 6, 6, 7]);
        for n in 2..50 {
            let t = threshold_for(n) as usize;
            assert!(2 * t > n && 3 * t >= 2 * n && t <= n, "n={n} t={t}");
        }
    }
}
