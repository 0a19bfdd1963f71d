#![doc = include_str!("../README.md")]

pub mod byzantine;
pub mod group;
pub mod joint;
pub mod keygen;
pub mod sim;
mod wire;

pub use group::DkgGroup;
pub use joint::Joint;
pub use keygen::{
    Fault, IdentityKey, IdentitySecret, KeyGen, KeyGenOutput, KeyShare, Kind, PublicKeySet, Session,
};
pub use lit_crypto::protocol::{Action, Outgoing, PartyId, Protocol, ProtocolError};
