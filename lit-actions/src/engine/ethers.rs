//! The `ethers` global that most Lit Actions use: ethers v5, evaluated from the npm package's own
//! browser bundle ([`ETHERS_PACKAGE`], file [`ETHERS_BUNDLE`]). The bundle is installed beside
//! the node (`./test.sh` puts it in `.tools/npm-ethers`), never copied into this repository.
//!
//! Each engine reads the bundle once, when it is built, and defines `ethers` before user code as
//! a getter (`js/ethers.js`) that evaluates the bundle on first use and then becomes a plain
//! global: an action that never touches `ethers` pays nothing for it. The bundle is a UMD module;
//! it is evaluated in a function that gives it CommonJS's `module` and `exports`, so it returns
//! its exports rather than looking for a global object to attach to, and with its own `fetch`
//! (`js/ethers_fetch.js`) adapted to the engine's. Loading on first use also means the bundle
//! runs after the prelude has defined the globals it needs as it loads (on QuickJS, `atob` for
//! its ENS tables, `crypto.getRandomValues` and `console`). On a node without the bundle, any
//! use of `ethers` throws a `ReferenceError` naming the package and how to install it
//! ([`MISSING`]).
//!
//! What a first use costs (2 shared cores): about 0.2 s on Deno (a `Wallet` signing adds 0.1 s)
//! and 0.3 to 0.5 s on QuickJS (a `Wallet` signing adds about 1 s there: elliptic-curve code
//! interpreted); an action that does not use `ethers` starts as fast as without the bundle on
//! QuickJS, and a Deno process starts about 20 ms later (hidden by the warm pool).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ActionError;

/// The environment variable naming the bundle file.
pub const ETHERS_ENV: &str = "LIT_ETHERS";
/// The npm package (name and version) whose bundle is loaded.
pub const ETHERS_PACKAGE: &str = "ethers@5.7.2";
/// The self-contained browser bundle inside the package.
pub const ETHERS_BUNDLE: &str = "dist/ethers.umd.min.js";
/// The version string the bundle must contain (ethers v5; v6 has another API).
const VERSION_MARK: &str = "\"ethers/5.";

/// The message of the `ReferenceError` a use of `ethers` throws on a node without the bundle.
pub const MISSING: &str = "ethers is not available on this node: it needs the ethers v5 browser \
    bundle (npm package ethers@5, file dist/ethers.umd.min.js of ethers@5.7.2); install it with \
    ./test.sh (into .tools/npm-ethers) or `npm install ethers@5.7.2`, and point LIT_ETHERS (or \
    the node's [actions] ethers) at that file";

/// `js/ethers.js`: an expression, the function that defines the `ethers` getter.
pub(crate) const INSTALL: &str = include_str!("../../js/ethers.js");
/// `js/ethers_fetch.js`: an expression, the function giving the `fetch` the bundle sees.
const FETCH: &str = include_str!("../../js/ethers_fetch.js");

/// Finds the bundle: `$LIT_ETHERS` (when set, only there), then the workspace's
/// `.tools/npm-ethers/node_modules/ethers/dist/ethers.umd.min.js` (installed by `./test.sh`).
pub fn find_ethers() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ETHERS_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/npm-ethers/node_modules/ethers")
        .join(ETHERS_BUNDLE);
    tools.is_file().then_some(tools)
}

/// Where an engine gets the `ethers` bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EthersSource {
    /// Found by [`find_ethers`] when the engine is built; where none is found, a use of `ethers`
    /// throws [`MISSING`].
    #[default]
    Find,
    /// This file (an engine refuses to start if it cannot read it or it is not ethers v5).
    File(PathBuf),
    /// No bundle: a use of `ethers` throws [`MISSING`].
    Off,
}

impl EthersSource {
    /// Reads the bundle this source names, if any.
    pub(crate) fn load(
        &self,
        engine: &'static str,
        text_fetch: bool,
    ) -> Result<Option<EthersBundle>, ActionError> {
        let path = match self {
            Self::Find => match find_ethers() {
                Some(p) => p,
                None => return Ok(None),
            },
            Self::File(p) => p.clone(),
            Self::Off => return Ok(None),
        };
        EthersBundle::read(&path, text_fetch)
            .map(Some)
            .map_err(|reason| ActionError::EngineUnavailable { engine, reason })
    }
}

/// A bundle read from disk, ready to be evaluated.
#[derive(Clone)]
pub(crate) struct EthersBundle {
    /// A JavaScript expression whose value is the bundle's exports (the `ethers` object).
    expression: Arc<str>,
}

impl std::fmt::Debug for EthersBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthersBundle")
            .field("bytes", &self.expression.len())
            .finish()
    }
}

impl EthersBundle {
    /// Reads the bundle, for an engine whose `fetch` sends and reads text only (`text_fetch`) or
    /// not.
    fn read(path: &Path, text_fetch: bool) -> Result<Self, String> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the ethers bundle {}: {e} (install {ETHERS_PACKAGE} and use its \
                 {ETHERS_BUNDLE})",
                path.display()
            )
        })?;
        if !source.contains(VERSION_MARK) {
            return Err(format!(
                "{} is not the ethers v5 browser bundle ({ETHERS_BUNDLE} of {ETHERS_PACKAGE})",
                path.display()
            ));
        }
        // The UMD wrapper takes its CommonJS branch (`module.exports = factory()`); the newline
        // ends a trailing line comment, if the file has one.
        let expression = format!(
            "(function () {{ var module = {{ exports: {{}} }}; var exports = module.exports;\n\
             var fetch = {FETCH}({text_fetch});\n\
             {source}\n;return module.exports; }})()"
        );
        Ok(Self {
            expression: expression.into(),
        })
    }

    /// The expression whose value is the `ethers` object.
    pub(crate) fn expression(&self) -> &str {
        &self.expression
    }
}

/// The JavaScript statements that define the `ethers` global in the Deno bootstrap: the bundle
/// is kept as a string (cheap to parse when the process starts) and evaluated on first use, or
/// at once with `preload`.
pub(crate) fn deno_install(bundle: Option<&EthersBundle>, preload: bool) -> String {
    let missing = js_string(MISSING);
    let load = match bundle {
        Some(b) => format!(
            "((Fn, source) => () => new Fn(\"return \" + source)())(Function, {})",
            js_string(b.expression())
        ),
        None => "null".to_owned(),
    };
    let preload = if preload && bundle.is_some() {
        // a failure here leaves the getter, which reports it on the action's first use
        "try { void globalThis.ethers; } catch (_) {}\n"
    } else {
        ""
    };
    format!(";{INSTALL}({load}, {missing});\n{preload}")
}

/// A JavaScript string literal (JSON's string syntax is a subset of JavaScript's).
fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
