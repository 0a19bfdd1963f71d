//! The [`Engine`] trait and the engines behind it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::action::{Action, ActionOutcome};
use crate::error::ActionError;
use crate::host::ActionHost;
use crate::limits::Limits;
use crate::net::NetPolicy;

pub mod deno;
pub mod ethers;
pub mod quickjs;

pub use ethers::EthersSource;

/// The JavaScript both engines load before user code: `Lit.Actions`, argument checks,
/// `console`, `fetch`, timers. Each engine adds only its transport.
pub(crate) const PRELUDE: &str = include_str!("../js/prelude.js");

/// A JavaScript engine that runs actions in a sandbox.
#[async_trait]
pub trait Engine: Send + Sync {
    /// The engine's name (`"deno"`, `"quickjs"`).
    fn name(&self) -> &'static str;

    /// The limits actions run under.
    fn limits(&self) -> &Limits;

    /// Runs `action` to its end, with `host` serving its `Lit.Actions` calls, under the engine's
    /// limits lowered by the action's [`Budget`](crate::Budget).
    async fn run(
        &self,
        action: &Action,
        host: Arc<dyn ActionHost>,
    ) -> Result<ActionOutcome, ActionError>;
}

/// What every engine is configured with.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Limits of each action.
    pub limits: Limits,
    /// Hosts `fetch` may reach (none by default).
    pub net: NetPolicy,
    /// Where the `ethers` global comes from (by default the bundle [`ethers::find_ethers`]
    /// finds; none found, a use of `ethers` throws an error naming the missing package).
    pub ethers: EthersSource,
}

impl EngineConfig {
    /// A configuration with these limits and no network.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            net: NetPolicy::default(),
            ethers: EthersSource::default(),
        }
    }

    /// This configuration allowing `fetch` to these hosts.
    pub fn with_net(mut self, net: NetPolicy) -> Self {
        self.net = net;
        self
    }

    /// This configuration taking the `ethers` bundle from `source`.
    pub fn with_ethers(mut self, source: EthersSource) -> Self {
        self.ethers = source;
        self
    }
}

/// Checks what every engine checks before starting an action.
pub(crate) fn precheck(action: &Action, limits: &Limits) -> Result<(), ActionError> {
    let size = action.code().len();
    if size > limits.code_bytes {
        return Err(ActionError::CodeTooLarge {
            size,
            limit: limits.code_bytes,
        });
    }
    Ok(())
}

/// The Deno engine when a Deno binary is found, otherwise QuickJS.
pub fn default_engine(config: EngineConfig) -> Result<Arc<dyn Engine>, ActionError> {
    match deno::find_deno() {
        Some(binary) => Ok(Arc::new(deno::DenoEngine::new(
            deno::DenoConfig::new(config).with_binary(binary),
        )?)),
        None => Ok(Arc::new(quickjs::QuickJsEngine::new(config)?)),
    }
}
