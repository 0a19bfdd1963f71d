//! Epochs: the node's key shares per epoch ([`keys`]) and the protocols that create them
//! ([`dkg`]: the distributed key generation of the first epoch of a static network;
//! [`handover`]: epochs that follow the staking contract, with a reshare at each change).

pub mod dkg;
pub mod handover;
pub mod keys;
pub mod peers;

pub use keys::{KeysError, NodeKeys};

/// The epoch the first DKG creates.
pub const FIRST_EPOCH: u64 = 1;
