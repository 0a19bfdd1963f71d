#![doc = include_str!("../README.md")]

pub mod action;
pub mod cid;
pub mod engine;
pub mod error;
pub mod host;
pub mod limits;
pub mod net;
mod session;

pub use action::{Action, ActionOutcome, Usage};
pub use cid::ActionId;
pub use engine::deno::{DenoConfig, DenoEngine};
pub use engine::quickjs::QuickJsEngine;
pub use engine::{default_engine, Engine, EngineConfig};
pub use error::{ActionError, HostError};
pub use host::{ActionContext, ActionHost, AuthContext};
pub use limits::Limits;
pub use net::NetPolicy;
