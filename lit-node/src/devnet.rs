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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lit_api::network::{AttestationMode, NetworkFile, NETWORK_FILE_VERSION};
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
        .unwrap_or_else(|| lit_crypto::protocol::default_threshold(n));
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
    let network = NetworkFile {
        version: NETWORK_FILE_VERSION,
        name: format!("devnet-{}", hex::encode(&nodes[0].identity_key.0[..4])),
        threshold: threshold as u32,
        attestation: AttestationMode::Simulated,
        nodes,
    };
    network
        .check()
        .map_err(|e| NodeError::Network(e.to_string()))?;
    let text = serde_json::to_string_pretty(&network).map_err(|e| NodeError::Io(e.to_string()))?;
    // write then rename, so a reader never sees half a file
    let tmp = dir.join(format!("{NETWORK_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| io("network file", e))?;
    std::fs::rename(&tmp, &network_path).map_err(|e| io("network file", e))?;
    Ok(Layout {
        dir,
        network,
        configs,
    })
}

/// One node process of a devnet.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its party id.
    pub party_id: u32,
    /// Its base URL.
    pub url: String,
    child: Option<Child>,
}

impl NodeProcess {
    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the process (as a crash would: no clean shutdown).
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

/// Starts node `party_id` of `layout` with `command` (the program and leading arguments that run
/// one node; `--config FILE --parent-pid PID` are appended), logging to `node-<i>/node.log`.
pub fn spawn_node(
    layout: &Layout,
    party_id: u32,
    command: &dyn Fn() -> Command,
) -> Result<NodeProcess, NodeError> {
    let config = layout
        .configs
        .get(&party_id)
        .ok_or_else(|| NodeError::Network(format!("no node {party_id}")))?;
    let url = layout
        .network
        .node(party_id)
        .map(|n| n.url.clone())
        .unwrap_or_default();
    let log_path = layout.node_dir(party_id).join("node.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| NodeError::Io(format!("{}: {e}", log_path.display())))?;
    let log2 = log.try_clone().map_err(|e| NodeError::Io(e.to_string()))?;
    let child = command()
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
        url,
        child: Some(child),
    })
}

/// Starts every node of `layout`.
pub fn spawn_all(
    layout: &Layout,
    command: &dyn Fn() -> Command,
) -> Result<Vec<NodeProcess>, NodeError> {
    layout
        .configs
        .keys()
        .map(|id| spawn_node(layout, *id, command))
        .collect()
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

/// Waits until every node in `procs` reports ready, calling `progress(ready, total)` when the
/// count changes. Fails if a process exits or `timeout` passes.
pub async fn wait_ready(
    procs: &mut [NodeProcess],
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
        for p in procs.iter_mut() {
            if !p.is_running() {
                return Err(NodeError::Io(format!(
                    "node {} exited during start-up; see its node.log",
                    p.party_id
                )));
            }
            if matches!(health(&http, &p.url).await, Some(h) if h.ready) {
                ready += 1;
            }
        }
        if ready != last {
            progress(ready, procs.len());
            last = ready;
        }
        if ready == procs.len() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(NodeError::Io(format!(
                "only {ready} of {} nodes ready after {timeout:?}",
                procs.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// The command that re-executes this program as a devnet node (`<this program> node`), for
/// programs that bring their own nodes: examples, benchmarks, tests. Such a program calls
/// [`run_self_node`] first thing in `main`.
pub fn self_command() -> Result<impl Fn() -> Command, NodeError> {
    let exe = std::env::current_exe().map_err(|e| NodeError::Io(format!("current exe: {e}")))?;
    Ok(move || {
        let mut c = Command::new(&exe);
        c.arg("node");
        c
    })
}

/// If this process was started by [`self_command`] (arguments `node --config FILE --parent-pid
/// PID`), runs that node until its parent exits and returns its result; otherwise `None`.
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
