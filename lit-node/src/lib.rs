#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod chain;
pub mod conditions;
pub mod config;
pub mod devnet;
pub mod epoch;
pub mod error;
pub mod identity;
pub mod net;
pub mod node;
pub mod operator;
pub mod service;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testnet;
