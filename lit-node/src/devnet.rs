//! Development networks on loopback: lay out N nodes in a folder (a configuration file and data
//! directory per node, and the shared `network.json`), start one process per node, wait for the
//! DKG, stop them. Re-using a folder restarts the same nodes with their stored shares.
//!
//! ```text
//! DIR/network.json          the network file (every node's URL and keys)
//! DIR/registry.sqlite       the PKP registry the nodes share
//! DIR/node-<i>/config.toml  node i's configuration
//! DIR/node-<i>/data/        node i's identity, encrypted store and storage key
//! DIR/node-<i>/node.log     node i's log
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lit_api::network::{AttestationMode, NetworkFile, NetworkNode, NETWORK_FILE_VERSION};
use lit_api::v1::{paths, Health};

use crate::config::Config;
use crate::node::{init, read_network_file, NodeError};

/// The network file's name inside a devnet folder.
pub const NETWORK_FILE: &str = "network.json";

/// The PKP registry's file name inside a devnet folder (shared by its nodes).
pub const REGISTRY_FILE: &str = "registry.sqlite";

/// A laid-out devnet folder.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The folder.
    pub dir: PathBuf,
    /// The network file.
    pub network: NetworkFile,
    /// Node configuration files, by party id.
    pub configs: BTreeMap<u32, PathBuf>,
}

impl Layout {
    /// `DIR/network.json`.
    pub fn network_file(&self) -> PathBuf {
        self.dir.join(NETWORK_FILE)
    }

    /// Node `i`'s folder.
    pub fn node_dir(&self, party_id: u32) -> PathBuf {
        self.dir.join(format!("node-{party_id}"))
    }

    /// Node `i`'s log file.
    pub fn log_file(&self, party_id: u32) -> PathBuf {
        self.node_dir(party_id).join("node.log")
    }
}

/// Options for a new devnet folder.
#[derive(Clone, Debug, Default)]
pub struct LayoutOptions {
    /// Threshold (default: two thirds, rounded up, as `lit_crypto::protocol::default_threshold`).
    pub threshold: Option<usize>,
    /// Chains the nodes may query for conditions: `(name, rpc url)`.
    pub chains: Vec<(String, String)>,
    /// The nodes' `dkg_round_timeout_ms` (default: the node's default).
    pub dkg_round_timeout_ms: Option<u64>,
    /// The nodes' `presignature_pool` (default: the node's default).
    pub presignature_pool: Option<usize>,
    /// TOML appended to every node's configuration (e.g. `[oidc.<name>]` sections).
    pub extra_config: String,
}

fn free_port() -> Result<u16, NodeError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| NodeError::Io(format!("cannot find a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| NodeError::Io(e.to_string()))
}

/// Lays out an `n`-node devnet in `dir`, or reuses the one already there.
pub fn layout(dir: &Path, n: usize, options: &LayoutOptions) -> Result<Layout, NodeError> {
    let io = |what: &str, e: std::io::Error| NodeError::Io(format!("{what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| io(&dir.display().to_string(), e))?;
    let network_path = dir.join(NETWORK_FILE);
    if network_path.exists() {
        let network = read_network_file(&network_path)?;
        if network.nodes.len() != n {
            return Err(NodeError::Network(format!(
                "{} holds a {}-node network, not {n} nodes; use another folder",
                dir.display(),
                network.nodes.len()
            )));
        }
        let configs = network
            .nodes
            .iter()
            .map(|node| {
                (
                    node.party_id,
                    dir.join(format!("node-{}", node.party_id))
                        .join("config.toml"),
                )
            })
            .collect();
        return Ok(Layout {
            dir,
            network,
            configs,
        });
    }
    if n == 0 {
        return Err(NodeError::Network(
            "a network needs at least one node".into(),
        ));
    }
    let threshold = options
        .threshold
        .unwrap_or_else(|| lit_crypto::protocol::default_threshold(n)) as u32;
    let mut nodes = Vec::with_capacity(n);
    let mut configs = BTreeMap::new();
    for i in 1..=n as u32 {
        let node_dir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node_dir).map_err(|e| io("node folder", e))?;
        let port = free_port()?;
        let mut text = format!(
            "# node {i} of the devnet in {dir}\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\n\
             network_file = \"../{NETWORK_FILE}\"\nregistry = \"../{REGISTRY_FILE}\"\n\
             attestation = \"simulated\"\n",
            dir = dir.display()
        );
        if let Some(size) = options.presignature_pool {
            text.push_str(&format!("presignature_pool = {size}\n"));
        }
        if let Some(ms) = options.dkg_round_timeout_ms {
            text.push_str(&format!("dkg_round_timeout_ms = {ms}\n"));
        }
        for (name, url) in &options.chains {
            text.push_str(&format!("\n[chains.{name}]\nrpc_url = \"{url}\"\n"));
        }
        if !options.extra_config.is_empty() {
            text.push('\n');
            text.push_str(&options.extra_config);
            text.push('\n');
        }
        let config_path = node_dir.join("config.toml");
        std::fs::write(&config_path, text).map_err(|e| io("config", e))?;
        let config = Config::load(&config_path).map_err(|e| NodeError::Io(e.to_string()))?;
        let mut entry = init(&config)?;
        entry.party_id = i;
        nodes.push(entry);
        configs.insert(i, config_path);
    }
    let network = network_file(threshold, nodes);
    network
        .check()
        .map_err(|e| NodeError::Network(e.to_string()))?;
    let text = serde_json::to_string_pretty(&network).map_err(|e| NodeError::Io(e.to_string()))?;
    write_atomically(&network_path, &text)?;
    Ok(Layout {
        dir,
        network,
        configs,
    })
}

fn network_file(threshold: u32, nodes: Vec<NetworkNode>) -> NetworkFile {
    let name = match nodes.first() {
        Some(node) => format!("devnet-{}", hex::encode(&node.identity_key.0[..4])),
        None => "devnet".into(),
    };
    NetworkFile {
        version: NETWORK_FILE_VERSION,
        name,
        threshold,
        attestation: AttestationMode::Simulated,
        nodes,
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader sees the old
/// file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> Result<(), NodeError> {
    let io = |e: std::io::Error| NodeError::Io(format!("{}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The program a devnet runs as each of its nodes.
#[derive(Clone, Debug)]
pub struct NodeProgram {
    program: PathBuf,
    subcommand: &'static str,
}

impl NodeProgram {
    /// A `lit-node` binary, run as `<path> run --config FILE --parent-pid PID` (tests of this
    /// crate pass `env!("CARGO_BIN_EXE_lit-node")`).
    pub fn lit_node(path: impl Into<PathBuf>) -> Self {
        NodeProgram {
            program: path.into(),
            subcommand: "run",
        }
    }

    /// This program, re-executed as `<this program> node --config FILE --parent-pid PID`, for
    /// programs that bring their own nodes (examples, benchmarks, tests of other crates). Such a
    /// program calls [`run_self_node`] first thing in `main`.
    pub fn this_program() -> Result<Self, NodeError> {
        let program =
            std::env::current_exe().map_err(|e| NodeError::Io(format!("current exe: {e}")))?;
        Ok(NodeProgram {
            program,
            subcommand: "node",
        })
    }

    /// The program and its subcommand; the devnet appends `--config FILE --parent-pid PID`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.arg(self.subcommand);
        c
    }
}

/// One node process of a devnet; dropping it kills the process.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its party id.
    pub party_id: u32,
    child: Option<Child>,
}

impl NodeProcess {
    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the process (as a crash would: no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The command that starts one node: the program and its leading arguments (and environment)
/// for a party id.
type NodeCommand = Box<dyn Fn(u32) -> Command + Send + Sync>;

/// The running processes of a laid-out devnet; dropping it kills them.
pub struct Devnet {
    layout: Layout,
    network: NetworkFile,
    command: NodeCommand,
    nodes: BTreeMap<u32, NodeProcess>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("dir", &self.layout.dir)
            .field("running", &self.nodes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Devnet {
    /// Starts the nodes of `layout` except those in `absent` with `command(party id)` (the
    /// program and leading arguments that run one node, e.g. [`NodeProgram::command`];
    /// `--config FILE --parent-pid PID` are appended), logging to `node-<i>/node.log`. It does
    /// not wait for the DKG: see [`Devnet::wait_ready`].
    pub async fn start(
        layout: Layout,
        command: impl Fn(u32) -> Command + Send + Sync + 'static,
        absent: &BTreeSet<u32>,
    ) -> Result<Self, NodeError> {
        if let Some(id) = absent.iter().find(|id| !layout.configs.contains_key(id)) {
            return Err(NodeError::Network(format!(
                "there is no node {id} to leave out"
            )));
        }
        let command: NodeCommand = Box::new(command);
        let mut nodes = BTreeMap::new();
        for &id in layout.configs.keys().filter(|id| !absent.contains(id)) {
            nodes.insert(id, spawn(&layout, id, &command)?);
        }
        Ok(Devnet {
            network: layout.network.clone(),
            layout,
            command,
            nodes,
        })
    }

    /// The layout (folder, configurations).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The network file's contents.
    pub fn network(&self) -> &NetworkFile {
        &self.network
    }

    /// The network file.
    pub fn network_file(&self) -> PathBuf {
        self.layout.network_file()
    }

    /// Node `party_id`'s base URL.
    pub fn url(&self, party_id: u32) -> Option<&str> {
        self.network.node(party_id).map(|n| n.url.as_str())
    }

    /// Node `party_id`'s log so far (empty if it has none).
    pub fn log(&self, party_id: u32) -> String {
        std::fs::read_to_string(self.layout.log_file(party_id)).unwrap_or_default()
    }

    /// The nodes whose processes run, in party-id order.
    pub fn running(&mut self) -> Vec<u32> {
        self.nodes
            .iter_mut()
            .filter_map(|(id, p)| p.is_running().then_some(*id))
            .collect()
    }

    /// Forgets the processes that exited and returns their party ids.
    pub fn exited(&mut self) -> Vec<u32> {
        let gone: Vec<u32> = self
            .nodes
            .iter_mut()
            .filter_map(|(id, p)| (!p.is_running()).then_some(*id))
            .collect();
        for id in &gone {
            self.nodes.remove(id);
        }
        gone
    }

    /// Kills node `party_id` (as a crash would: no clean shutdown).
    pub fn kill(&mut self, party_id: u32) {
        if let Some(mut p) = self.nodes.remove(&party_id) {
            p.kill();
        }
    }

    /// Starts node `party_id` again (or for the first time, if it was left out), with its data
    /// folder, on the address the network file lists for it. Kills it first if it runs.
    pub fn restart(&mut self, party_id: u32) -> Result<(), NodeError> {
        self.kill(party_id);
        let p = spawn(&self.layout, party_id, &self.command)?;
        self.nodes.insert(party_id, p);
        Ok(())
    }

    /// Waits until the nodes `party_ids` report ready, calling `progress(ready, total)` when
    /// the count changes. Fails if one of them is not running or exits, or `timeout` passes.
    pub async fn wait_ready(
        &mut self,
        party_ids: &[u32],
        timeout: Duration,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), NodeError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| NodeError::Io(e.to_string()))?;
        let start = Instant::now();
        let mut last = usize::MAX;
        loop {
            let mut ready = 0;
            for id in party_ids {
                let running = self.nodes.get_mut(id).is_some_and(|p| p.is_running());
                if !running {
                    return Err(NodeError::Io(format!(
                        "node {id} is not running; see {}",
                        self.layout.log_file(*id).display()
                    )));
                }
                let url = self.url(*id).unwrap_or_default();
                if matches!(health(&http, url).await, Some(h) if h.ready) {
                    ready += 1;
                }
            }
            if ready != last {
                progress(ready, party_ids.len());
                last = ready;
            }
            if ready == party_ids.len() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(NodeError::Io(format!(
                    "only {ready} of {} nodes ready after {timeout:?}",
                    party_ids.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts node `party_id` of `layout` with `command`, logging to `node-<i>/node.log`.
fn spawn(layout: &Layout, party_id: u32, command: &NodeCommand) -> Result<NodeProcess, NodeError> {
    let config = layout
        .configs
        .get(&party_id)
        .ok_or_else(|| NodeError::Network(format!("no node {party_id}")))?;
    let log_path = layout.log_file(party_id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| NodeError::Io(format!("{}: {e}", log_path.display())))?;
    let log2 = log.try_clone().map_err(|e| NodeError::Io(e.to_string()))?;
    let child = command(party_id)
        .arg("--config")
        .arg(config)
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| NodeError::Io(format!("cannot start node {party_id}: {e}")))?;
    Ok(NodeProcess {
        party_id,
        child: Some(child),
    })
}

/// A node's `/v1/health`, or `None` if it does not answer.
pub async fn health(http: &reqwest::Client, url: &str) -> Option<Health> {
    let resp = http
        .get(format!("{}{}", url.trim_end_matches('/'), paths::HEALTH))
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&resp.bytes().await.ok()?).ok()
}

/// Resolves when the process whose id is `parent` is no longer this process's parent (it
/// exited), so devnet nodes never outlive the devnet or test that started them.
pub async fn parent_exit(parent: u32) {
    #[cfg(unix)]
    loop {
        if std::os::unix::process::parent_id() != parent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// If this process was started as a node by a devnet of [`NodeProgram::this_program`]
/// (arguments `node --config FILE --parent-pid PID`), runs that node until its parent exits and
/// returns its result; otherwise `None`.
pub fn run_self_node() -> Option<Result<(), NodeError>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("node") {
        return None;
    }
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .ok_or_else(|| NodeError::Io(format!("node: missing {flag}")))
    };
    let run = || -> Result<(), NodeError> {
        let config = Config::load(Path::new(value("--config")?))
            .map_err(|e| NodeError::Io(e.to_string()))?;
        let parent: u32 = value("--parent-pid")?
            .parse()
            .map_err(|_| NodeError::Io("node: --parent-pid is not a number".into()))?;
        crate::node::init_logging();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| NodeError::Io(format!("runtime: {e}")))?;
        rt.block_on(crate::node::run(config, parent_exit(parent)))
    };
    Some(run())
}
