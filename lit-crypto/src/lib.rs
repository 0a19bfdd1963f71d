#![doc = include_str!("../README.md")]

pub mod protocol;
pub mod seal;
pub mod shamir;

pub use protocol::PartyId;
