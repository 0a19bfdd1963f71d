#![doc = include_str!("../README.md")]

pub mod cid;
pub mod conditions;
pub mod error;
pub mod hex_bytes;
pub mod ledger;
pub mod network;
pub mod owner;
pub mod session;
pub mod siwe;
pub mod tls;
pub mod v1;
pub mod webauthn;

pub use cid::ActionId;
pub use error::{ApiError, ErrorCode, ErrorEnvelope};
pub use hex_bytes::{Bytes, Bytes32};

/// The API version this crate describes; every path starts with `/v{API_VERSION}`.
pub const API_VERSION: u32 = 1;

/// The largest request body a node accepts, in bytes (larger bodies get
/// [`ErrorCode::BodyTooLarge`]).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
