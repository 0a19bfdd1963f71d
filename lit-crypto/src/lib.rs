#![doc = include_str!("../README.md")]

pub mod bls;
pub mod ecdsa;
pub mod eth;
pub mod ibe;
pub mod identity;
pub mod protocol;
pub mod seal;
pub mod shamir;
pub mod testing;

pub use protocol::PartyId;
