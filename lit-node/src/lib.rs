#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod chain;
pub mod conditions;
pub mod config;
pub mod devnet;
pub mod identity;
pub mod keys;
pub mod node;
pub mod peer;
pub mod pkp;
pub mod presign;
pub mod store;
pub mod transport;
