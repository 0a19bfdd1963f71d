//! Epochs: the node's key shares per epoch ([`keys`]) and the protocols that create them
//! ([`dkg`]: the distributed key generation of the first epoch; reshare at each epoch change
//! lands here next).

pub mod dkg;
pub mod keys;

pub use keys::{KeysError, NodeKeys};

/// The epoch the first DKG creates.
pub const FIRST_EPOCH: u64 = 1;
