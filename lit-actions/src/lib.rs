#![doc = include_str!("../README.md")]

pub mod action;
mod aes_cbc;
pub mod engine;
pub mod error;
pub mod host;
pub mod limits;
pub mod net;
mod session;

pub use action::{Action, ActionOutcome, Usage};
pub use engine::deno::{DenoConfig, DenoEngine};
pub use engine::quickjs::QuickJsEngine;
pub use engine::{default_engine, Engine, EngineConfig, EthersSource};
pub use error::{ActionError, HostError};
pub use host::{ActionContext, ActionHost, AuthContext};
pub use limits::{Budget, Limits};
/// Content addressing of action code (the type lives in `lit-api`, shared with the client).
pub use lit_api::cid;
pub use lit_api::cid::ActionId;
pub use net::NetPolicy;
