//! `lit-node`: run a node, prepare its identity, or run a development network on loopback.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use lit_node::chain::staking::StakingParams;
use lit_node::config::Config;
use lit_node::devnet::{self, Devnet, DevnetChain, DevnetStaking, LayoutOptions, NodeProgram};
use lit_node::{node, operator};

#[derive(Parser, Debug)]
#[command(name = "lit-node", version, about = "A node of the Lit network")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node with a configuration file.
    Run {
        /// The node's configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Exit when this process (the devnet that started the node) exits.
        #[arg(long, hide = true)]
        parent_pid: Option<u32>,
    },
    /// Create the node's identity (if needed) and print its entry for a network file.
    Init {
        /// The node's configuration (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Stake test tokens from the node's staker account (`status` shows its address).
    Stake {
        /// The node's configuration (TOML, with a `[staking]` section).
        #[arg(long)]
        config: PathBuf,
        /// Tokens to stake (whole tokens; 18 decimals underneath).
        #[arg(long)]
        amount: u64,
    },
    /// Ask to join the validator set at the next epoch (stake first).
    Join {
        /// The node's configuration (TOML, with a `[staking]` section and a fixed port).
        #[arg(long)]
        config: PathBuf,
    },
    /// Ask to leave the validator set at the next epoch.
    Leave {
        /// The node's configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Show the node's staker, stake and membership, and the network's epoch.
    Status {
        /// The node's configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Show the fees the node's staker earned on the ledger, and claim them with `--claim`.
    Rewards {
        /// The node's configuration (with a `[staking]` section and a ledger).
        #[arg(long)]
        config: PathBuf,
        /// Transfer them to the staker.
        #[arg(long)]
        claim: bool,
    },
    /// List, approve or revoke the network's software releases (the release register that
    /// clients and nodes build their attestation policy from).
    Release {
        #[command(subcommand)]
        action: ReleaseAction,
        /// The register of the devnet in this folder, as its admin.
        #[arg(long, global = true, conflicts_with_all = ["rpc_url", "contract"])]
        dir: Option<PathBuf>,
        /// With --contract: a JSON-RPC endpoint of the chain.
        #[arg(long, global = true, requires = "contract")]
        rpc_url: Option<String>,
        /// With --rpc-url: the `ReleaseRegister` contract.
        #[arg(long, global = true, requires = "rpc_url")]
        contract: Option<String>,
        /// With --rpc-url: the folder holding the admin's `staker.key` (to add and revoke).
        #[arg(long, global = true)]
        key_dir: Option<PathBuf>,
    },
    /// Run an N-node development network on loopback until Ctrl-C.
    Devnet {
        /// What to do with the devnet in DIR (default: start it, or restart it).
        #[command(subcommand)]
        action: Option<DevnetAction>,
        /// Number of nodes.
        #[arg(long, default_value_t = 5)]
        nodes: usize,
        /// Folder for the network file, configurations, data and logs (reused on restart).
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        /// Threshold (default: two thirds of the nodes, rounded up).
        #[arg(long)]
        threshold: Option<usize>,
        /// Presignatures each node keeps per signing group it leads (default 4; 0 disables).
        #[arg(long)]
        presignature_pool: Option<usize>,
        /// A chain the nodes may query, as NAME=RPC_URL (repeatable).
        #[arg(long = "chain", value_parser = parse_chain)]
        chains: Vec<(String, String)>,
        /// Where membership and epochs live: `embedded` (a staking contract in DIR/chain.sqlite:
        /// nodes join, leave and reshare at each epoch), `anvil` (the Solidity contracts on an
        /// anvil this command runs, or the one at --rpc-url) or `none` (the network file's
        /// nodes, epoch 1 forever).
        #[arg(long, default_value = "embedded")]
        chain_backend: ChainBackend,
        /// With `--chain-backend anvil`: a running anvil (or another development chain that
        /// answers `anvil_setBalance`) instead of one this command starts.
        #[arg(long)]
        rpc_url: Option<String>,
        /// Epoch length in seconds (with a chain backend; `next-epoch` ends one at once).
        #[arg(long, default_value_t = 3600)]
        epoch_length: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ReleaseAction {
    /// Every release, active and revoked.
    List {
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Approve a release (the network's admin).
    Add {
        /// The image's SHA-384 launch measurement (96 hex digits).
        measurement: String,
        /// Minimum TCB of its guests, e.g. `snp=22,microcode=210` (fmc, bootloader, tee, snp,
        /// microcode).
        #[arg(long, default_value = "")]
        min_tcb: String,
        /// Its guests may allow debugging (a test image; never in production).
        #[arg(long)]
        debug: bool,
        /// Only VCEK-signed reports (no cloud provider's VLEK).
        #[arg(long)]
        vcek_only: bool,
    },
    /// Revoke a release (the network's admin; final).
    Revoke {
        /// The release's measurement (96 hex digits).
        measurement: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ChainBackend {
    Embedded,
    /// The Solidity contracts on an anvil the devnet runs (state kept in DIR/anvil-state.json)
    Anvil,
    None,
}

#[derive(Subcommand, Debug)]
enum DevnetAction {
    /// Lay out one more node in DIR, stake and join for it, and run it until Ctrl-C (it becomes
    /// a member at the next epoch).
    AddNode,
    /// Lock the next validator set now (as the devnet's admin): the nodes reshare and the epoch
    /// advances.
    NextEpoch,
    /// Set the ledger's prices (as the devnet's admin), per node and unit in base units, as
    /// `decryption=7,pkp-sign=11,action=0,action-ms=0,action-host-call=0` (products left out
    /// keep their price); without a value, show them.
    Prices {
        /// The new prices.
        set: Option<String>,
    },
}

/// The chain of the devnet in `dir` and the anvil this command runs for it, if any. A folder
/// laid out on an EVM chain stays on it (its `evm-chain.json` names the chain). Only the
/// command that runs the devnet (`starts`) starts anvil: on the port the record names when the
/// chain there does not answer, else on a free one; `add-node` and `next-epoch` use the chain
/// the devnet runs on.
async fn devnet_chain(
    dir: &std::path::Path,
    backend: ChainBackend,
    rpc_url: Option<String>,
    starts: bool,
) -> Result<(Option<DevnetChain>, Option<devnet::AnvilProcess>), String> {
    let record = devnet::evm_record(dir).map_err(|e| e.to_string())?;
    if record.is_none() && backend != ChainBackend::Anvil {
        let chain = (backend == ChainBackend::Embedded).then_some(DevnetChain::Embedded);
        return Ok((chain, None));
    }
    let explicit = record.is_none() && rpc_url.is_some();
    let running = match record.as_ref().map(|r| r.rpc_url.clone()).or(rpc_url) {
        Some(url) => lit_node::chain::evm::has_code(&url, lit_crypto::eth::Address([0; 20]))
            .await
            .is_ok()
            .then_some(url),
        None => None,
    };
    match running {
        Some(rpc_url) => Ok((Some(DevnetChain::Evm { rpc_url }), None)),
        None if explicit => Err("the chain at --rpc-url does not answer".into()),
        None if starts => {
            let process = devnet::AnvilProcess::start(dir)
                .await
                .map_err(|e| e.to_string())?;
            println!("anvil runs at {}", process.url);
            let rpc_url = process.url.clone();
            Ok((Some(DevnetChain::Evm { rpc_url }), Some(process)))
        }
        None => Err(format!(
            "the chain of the devnet in {} does not answer: start the devnet first",
            dir.display()
        )),
    }
}

fn parse_chain(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=RPC_URL"))?;
    Ok((name.to_string(), url.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    node::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Cmd::Run { config, parent_pid } => run(config, parent_pid).await,
            Cmd::Init { config } => {
                let config = Config::load(&config).map_err(|e| e.to_string())?;
                let entry = node::init(&config).map_err(|e| e.to_string())?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&entry).map_err(|e| e.to_string())?
                );
                Ok(())
            }
            Cmd::Stake { config, amount } => operator::stake(&config, amount).await,
            Cmd::Join { config } => operator::join(&config).await,
            Cmd::Leave { config } => operator::leave(&config).await,
            Cmd::Status { config } => operator::status(&config).await,
            Cmd::Rewards { config, claim } => operator::rewards(&config, claim).await,
            Cmd::Release {
                action,
                dir,
                rpc_url,
                contract,
                key_dir,
            } => {
                let at = match (dir, rpc_url, contract) {
                    (Some(dir), _, _) => operator::RegisterAt::Devnet(dir),
                    (None, Some(rpc_url), Some(contract)) => operator::RegisterAt::Evm {
                        rpc_url,
                        contract,
                        key_dir,
                    },
                    _ => operator::RegisterAt::Devnet(PathBuf::from(".devnet")),
                };
                match action {
                    ReleaseAction::List { json } => operator::release_list(&at, json).await,
                    ReleaseAction::Add {
                        measurement,
                        min_tcb,
                        debug,
                        vcek_only,
                    } => {
                        let mut release =
                            lit_attest::Release::new(operator::parse_measurement(&measurement)?);
                        release.min_tcb = operator::parse_min_tcb(&min_tcb)?;
                        release.allow_debug = debug;
                        release.vcek_only = vcek_only;
                        operator::release_add(&at, &release).await
                    }
                    ReleaseAction::Revoke { measurement } => {
                        let m = operator::parse_measurement(&measurement)?;
                        operator::release_revoke(&at, &m).await
                    }
                }
            }
            Cmd::Devnet {
                action,
                nodes,
                dir,
                threshold,
                chains,
                presignature_pool,
                chain_backend,
                rpc_url,
                epoch_length,
            } => {
                let (chain, anvil) =
                    devnet_chain(&dir, chain_backend, rpc_url, action.is_none()).await?;
                let staking = chain.map(|chain| DevnetStaking {
                    params: StakingParams {
                        epoch_length,
                        ..DevnetStaking::default().params
                    },
                    chain,
                    ..DevnetStaking::default()
                });
                let options = LayoutOptions {
                    threshold,
                    chains,
                    dkg_round_timeout_ms: None,
                    presignature_pool,
                    extra_config: String::new(),
                    staking,
                    plaintext_http: false,
                };
                let _anvil = anvil;
                match action {
                    None => run_devnet(nodes, dir, options).await,
                    Some(DevnetAction::AddNode) => {
                        operator::devnet_add_node(&dir, nodes, &options).await
                    }
                    Some(DevnetAction::NextEpoch) => {
                        operator::devnet_next_epoch(&dir, nodes, &options).await
                    }
                    Some(DevnetAction::Prices { set }) => {
                        operator::devnet_prices(&dir, nodes, &options, set.as_deref()).await
                    }
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: PathBuf, parent_pid: Option<u32>) -> Result<(), String> {
    let config = Config::load(&config).map_err(|e| e.to_string())?;
    let stop = listen_for_stop().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let shutdown = async move {
        let parent = async {
            match parent_pid {
                Some(p) => devnet::parent_exit(p).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => tracing::info!("interrupted or terminated; shutting down"),
            _ = parent => tracing::info!("the devnet that started this node exited; shutting down"),
        }
    };
    node::run(config, shutdown).await.map_err(|e| e.to_string())
}

/// A future that resolves on SIGINT or SIGTERM; the handlers are registered when this is
/// called, so a signal that arrives before the future is polled is not lost.
fn listen_for_stop() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

async fn run_devnet(n: usize, dir: PathBuf, options: LayoutOptions) -> Result<(), String> {
    let layout = devnet::layout(&dir, n, &options).map_err(|e| e.to_string())?;
    let existed = layout.network.is_some();
    println!(
        "{} devnet in {}: {} nodes, threshold {}",
        if existed {
            "Restarting the"
        } else {
            "Created a"
        },
        layout.dir.display(),
        layout.configs.len(),
        layout.threshold
    );
    // a devnet on a staking contract that ran before: the chain says who is a member now (a
    // node that left is not started again, one still joining starts but serves later)
    let mut absent = BTreeSet::new();
    let mut serving: Vec<u32> = layout.configs.keys().copied().collect();
    if existed && layout.staking.is_some() {
        let chain = layout.staking_admin().await.map_err(|e| e.to_string())?;
        let state = chain.network().await.map_err(|e| e.to_string())?;
        let members: BTreeSet<u32> = state
            .current
            .iter()
            .chain(&state.next)
            .map(|v| v.party_id)
            .collect();
        absent = layout
            .configs
            .keys()
            .copied()
            .filter(|id| !members.contains(id))
            .collect();
        serving = state.current.iter().map(|v| v.party_id).collect();
        if !absent.is_empty() {
            println!("  not started (no longer members): {absent:?}");
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let program = NodeProgram::lit_node(exe);
    let started = Instant::now();
    let mut net = Devnet::start(layout, move |_| program.command(), &absent)
        .await
        .map_err(|e| e.to_string())?;
    let what = if existed {
        "loading shares"
    } else {
        "running the DKG"
    };
    let all = serving;
    net.wait_ready(&all, Duration::from_secs(180), |ready, total| {
        println!(
            "  {what}: {ready}/{total} nodes ready ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    })
    .await
    .map_err(|e| e.to_string())?;
    // listen for Ctrl-C / SIGTERM before telling the user to press it, and keep one listener
    // for the whole wait: a signal between two polls must not be lost
    let stop_signal = listen_for_stop().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let epoch = match net.layout().staking {
        Some(_) => {
            let chain = net.staking_admin().await.map_err(|e| e.to_string())?;
            chain.network().await.map_err(|e| e.to_string())?.epoch
        }
        None => 1,
    };
    println!("All {} nodes serve epoch {epoch}:", all.len());
    for node in &net.network().nodes {
        if all.contains(&node.party_id) {
            println!("  node {}  {}", node.party_id, node.url);
        }
    }
    println!(
        "Network file: {}\nLogs: {}/node-*/node.log\nPress Ctrl-C to stop.",
        net.network_file().display(),
        net.layout().dir.display()
    );
    let mut stop = Box::pin(stop_signal);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for id in net.exited() {
                    eprintln!("warning: node {id} exited; see its node.log");
                }
            }
        }
    }
    let running = net.running().len();
    println!("Stopping {running} nodes…");
    drop(net);
    println!("Stopped. Run the same command again to restart with the same keys.");
    Ok(())
}
