//! One test network of real node processes on loopback, for the tests, benchmarks and examples
//! of every crate (feature `test-util`): a [`crate::devnet`] in a temporary folder, started,
//! waited for, and inspected, killed and restarted node by node.
//!
//! ```no_run
//! # async fn example() {
//! use lit_node::devnet::{LayoutOptions, NodeProgram};
//! use lit_node::testnet::TestNet;
//!
//! // lit-node's own tests run `env!("CARGO_BIN_EXE_lit-node")`; other programs re-execute
//! // themselves (`NodeProgram::this_program()`, with `lit_node::devnet::run_self_node()` first
//! // thing in `main`)
//! let node = NodeProgram::lit_node("target/debug/lit-node");
//! let mut net = TestNet::builder(node, 5)
//!     .options(LayoutOptions { threshold: Some(3), ..LayoutOptions::default() })
//!     .fault(2, "wrong-decryption-share")
//!     .absent(5)
//!     .start()
//!     .await;
//! let url = net.url(1);
//! net.kill(3);
//! net.restart(3).await;
//! assert!(net.log(3).contains("loaded key shares"));
//! # }
//! ```
//!
//! A test network is a test helper: what goes wrong panics, with every node's log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lit_api::network::NetworkFile;

use crate::devnet::{self, Devnet, LayoutOptions, NodeProgram};
use crate::node::DEV_FAULT_ENV;

/// How long a test network may take to finish its DKG or load its shares.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// What to start: see [`TestNet::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start`"]
pub struct Builder {
    program: NodeProgram,
    n: usize,
    options: LayoutOptions,
    faults: BTreeMap<u32, String>,
    envs: BTreeMap<u32, Vec<(String, String)>>,
    absent: BTreeSet<u32>,
    log_level: String,
}

impl Builder {
    /// Sets an environment variable of node `party_id`'s process.
    pub fn env(mut self, party_id: u32, key: &str, value: &str) -> Self {
        self.envs
            .entry(party_id)
            .or_default()
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Node `party_id` claims `measurement` in its simulated attestation: another release than
    /// the other nodes' (see [`crate::node::SIMULATED_MEASUREMENT_ENV`]). The devnet approves it
    /// in its release register at the start, like every release it runs.
    pub fn simulated_measurement(self, party_id: u32, measurement: [u8; 48]) -> Self {
        self.env(
            party_id,
            crate::node::SIMULATED_MEASUREMENT_ENV,
            &hex::encode(measurement),
        )
    }

    /// The layout: threshold, chains, presignature pool, DKG round timeout, extra configuration.
    /// A test network runs no background presignature pools unless `presignature_pool` asks for
    /// them (they load the CPU and fill the logs).
    pub fn options(mut self, options: LayoutOptions) -> Self {
        self.options = options;
        self
    }

    /// Makes node `party_id` misbehave as `fault` says (see [`DEV_FAULT_ENV`]). The network
    /// does not wait for a faulty node to become ready (it may abort).
    pub fn fault(mut self, party_id: u32, fault: impl Into<String>) -> Self {
        self.faults.insert(party_id, fault.into());
        self
    }

    /// Lists node `party_id` in the network file but does not start it (connections to it are
    /// refused); [`TestNet::restart`] starts it later.
    pub fn absent(mut self, party_id: u32) -> Self {
        self.absent.insert(party_id);
        self
    }

    /// The nodes' `RUST_LOG` (default `info`: tests read the logs).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// Lays out the network in a temporary folder, starts its nodes and waits until every node
    /// that runs without a fault serves.
    pub async fn start(self) -> TestNet {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary folder: {e}"));
        let options = LayoutOptions {
            presignature_pool: Some(self.options.presignature_pool.unwrap_or(0)),
            ..self.options
        };
        let layout = devnet::layout(dir.path(), self.n, &options)
            .unwrap_or_else(|e| panic!("cannot lay out the test network: {e}"));
        let (program, faults, log_level) = (self.program, self.faults.clone(), self.log_level);
        let envs = self.envs;
        let command = move |id: u32| {
            let mut c = program.command();
            c.env("RUST_LOG", &log_level);
            match faults.get(&id) {
                Some(f) => c.env(DEV_FAULT_ENV, f),
                None => c.env_remove(DEV_FAULT_ENV),
            };
            c.env_remove(crate::node::SIMULATED_MEASUREMENT_ENV);
            for (k, v) in envs.get(&id).into_iter().flatten() {
                c.env(k, v);
            }
            c
        };
        let devnet = match Devnet::start(layout, command, &self.absent).await {
            Ok(devnet) => devnet,
            Err(e) => panic!("{}", logs_of(dir.path(), self.n, &e.to_string())),
        };
        let mut net = TestNet {
            devnet,
            faults: self.faults,
            dir,
        };
        net.wait_ready().await;
        net
    }
}

/// A running test network; dropping it kills the nodes and removes the folder.
#[derive(Debug)]
pub struct TestNet {
    /// Declared before `dir`: the nodes are killed before their folder is removed.
    devnet: Devnet,
    faults: BTreeMap<u32, String>,
    dir: tempfile::TempDir,
}

impl TestNet {
    /// A network of `n` nodes, each run by `program`; configure it, then
    /// [`start`](Builder::start) it.
    pub fn builder(program: NodeProgram, n: usize) -> Builder {
        Builder {
            program,
            n,
            options: LayoutOptions::default(),
            faults: BTreeMap::new(),
            envs: BTreeMap::new(),
            absent: BTreeSet::new(),
            log_level: "info".into(),
        }
    }

    /// Node `party_id`'s base URL.
    pub fn url(&self, party_id: u32) -> String {
        match self.devnet.url(party_id) {
            Some(url) => url.to_string(),
            None => panic!("the test network has no node {party_id}"),
        }
    }

    /// Node `party_id`'s process id (to read its memory in `/proc/<pid>/status`).
    pub fn pid(&self, party_id: u32) -> u32 {
        match self.devnet.pid(party_id) {
            Some(pid) => pid,
            None => panic!("node {party_id} of the test network is not running"),
        }
    }

    /// The network file.
    pub fn network_file(&self) -> PathBuf {
        self.devnet.network_file()
    }

    /// The network file's contents.
    pub fn network(&self) -> &NetworkFile {
        self.devnet.network()
    }

    /// The network's temporary folder (tests may write their own files there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Presignatures the network's nodes have generated into their pools so far (each lead logs
    /// one line per pool entry).
    pub fn presignatures_refilled(&self) -> usize {
        self.network()
            .nodes
            .iter()
            .map(|n| {
                self.log(n.party_id)
                    .matches("presignature pool refilled")
                    .count()
            })
            .sum()
    }

    /// The devnet underneath (membership changes on a staking contract: add, leave, lock,
    /// wait for an epoch).
    pub fn devnet(&mut self) -> &mut Devnet {
        &mut self.devnet
    }

    /// Every node's log, after `what` (for a failing test's message).
    pub fn logs(&self, what: &str) -> String {
        logs_of(self.dir.path(), self.devnet.layout().configs.len(), what)
    }

    /// Node `party_id`'s log so far.
    pub fn log(&self, party_id: u32) -> String {
        self.devnet.log(party_id)
    }

    /// Kills node `party_id` (no clean shutdown, like a crash).
    pub fn kill(&mut self, party_id: u32) {
        self.devnet.kill(party_id);
    }

    /// Starts node `party_id` again with its data folder (or for the first time, if it was
    /// [`absent`](Builder::absent)) and waits until the network serves.
    pub async fn restart(&mut self, party_id: u32) {
        if let Err(e) = self.devnet.restart(party_id) {
            panic!(
                "{}",
                self.logs(&format!("cannot restart node {party_id}: {e}"))
            );
        }
        self.wait_ready().await;
    }

    /// Waits until every running node without an injected fault serves.
    pub async fn wait_ready(&mut self) {
        let ids: Vec<u32> = self
            .devnet
            .running()
            .into_iter()
            .filter(|id| !self.faults.contains_key(id))
            .collect();
        if let Err(e) = self.devnet.wait_ready(&ids, READY_TIMEOUT, |_, _| {}).await {
            panic!(
                "{}",
                self.logs(&format!("the test network is not ready: {e}"))
            );
        }
    }
}

/// `what`, then every node's log.
fn logs_of(dir: &Path, n: usize, what: &str) -> String {
    let mut out = String::new();
    for id in 1..=n {
        let log = std::fs::read_to_string(dir.join(format!("node-{id}")).join("node.log"))
            .unwrap_or_default();
        out.push_str(&format!("--- node {id} log ---\n{log}\n"));
    }
    out.push_str(what);
    out
}
