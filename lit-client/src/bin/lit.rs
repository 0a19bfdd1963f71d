//! `lit`: the command-line client of the Lit network (a thin layer over the `lit_client` crate).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lit_api::ledger::LedgerOp;
use lit_client::{
    Bootstrap, ClientError, Conditions, ConnectOptions, EncryptedData, LitClient, Policy, Wallet,
};
use serde_json::json;

/// Command-line client of the Lit network: wallets, handshakes, encryption and decryption under
/// access control conditions.
#[derive(Debug, Parser)]
#[command(name = "lit", version)]
struct Cli {
    /// The network file (`lit-node devnet` writes one).
    #[arg(
        long,
        global = true,
        env = "LIT_NETWORK",
        default_value = "network.json"
    )]
    network: PathBuf,
    /// The wallet file (`lit wallet new` writes one).
    #[arg(long, global = true, env = "LIT_WALLET", default_value = "wallet.json")]
    wallet: PathBuf,
    /// Machine-readable JSON output on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Timeout of one request to one node, in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    /// An attestation policy (lit-attest JSON) that the network's release register is added
    /// to; default: the strict policy, so the register alone decides which software is approved.
    #[arg(long, global = true, env = "LIT_POLICY")]
    policy: Option<PathBuf>,
    /// The network is a development network: accept its nodes' simulated attestation (it
    /// proves nothing about their software). Never implied by the network file.
    #[arg(long, global = true, env = "LIT_DEVNET")]
    devnet: bool,
    /// The most one node may charge for one request, in base units of the ledger's token,
    /// signed into every request: a node whose price is higher refuses with `price_too_high`.
    /// `auto`: twice the dearest request at the network's current prices (an action counted at
    /// 30 s and 100 host calls); nothing on a network without a ledger.
    #[arg(long, global = true, env = "LIT_MAX_PRICE", default_value = "auto")]
    max_price: String,
    /// Charge another account that delegated to the wallet (`lit delegate`), not the wallet.
    #[arg(long, global = true, env = "LIT_PAYER")]
    payer: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or inspect a wallet.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Handshake with every node and show who answered, with their verified attestation.
    Handshake,
    /// Show the network as the chain records it (as the nodes read it, checked to agree): the
    /// epoch and its state, the current members with their stakes, the next set, and when the
    /// epoch ends.
    Network,
    /// Encrypt a file under access control conditions (locally, to the network key).
    Encrypt {
        /// The access control conditions (JSON), as Lit writes them: a list
        /// (`accessControlConditions`, `conditionType` optional) or an object with exactly one of
        /// `accessControlConditions`, `evmContractConditions`, `unifiedAccessControlConditions`.
        #[arg(long)]
        conditions: PathBuf,
        /// The plaintext (`-` for stdin).
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the encrypted data (JSON; `-` for stdout).
        #[arg(long)]
        out: PathBuf,
    },
    /// Decrypt encrypted data with shares from a threshold of nodes.
    Decrypt {
        /// The encrypted data (JSON, as written by `lit encrypt`; `-` for stdin).
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the plaintext (`-` for stdout).
        #[arg(long)]
        out: PathBuf,
        /// A value for the conditions' `:litParam:<name>` placeholder, as `name=value`
        /// (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Programmable Key Pairs: mint, inspect, permit, sign.
    #[command(subcommand)]
    Pkp(PkpCommand),
    /// Lit Actions: upload code to the nodes, run it on a group of T nodes.
    #[command(subcommand)]
    Action(ActionCommand),
    /// Show an account's deposit in the network's ledger (default: the wallet's), the tokens
    /// it can deposit, and the network's prices.
    Balance {
        /// The account (default: the wallet's address).
        address: Option<String>,
        /// Also show this payer's delegation to the account.
        #[arg(long)]
        payer: Option<String>,
    },
    /// Get test tokens from a development network's faucet (and ETH for gas on an EVM devnet).
    Faucet {
        /// Who gets them (default: the wallet's address).
        address: Option<String>,
    },
    /// Deposit the wallet's tokens in the network's ledger, to pay for requests.
    Deposit {
        /// Base units of the token (18 decimals).
        amount: String,
        #[command(flatten)]
        chain: LedgerChain,
    },
    /// Withdraw from the wallet's deposit: `lit withdraw AMOUNT` asks, and `lit withdraw
    /// --complete` pays what was asked once the ledger's delay has passed.
    Withdraw {
        /// Base units to ask for.
        #[arg(required_unless_present = "complete", conflicts_with = "complete")]
        amount: Option<String>,
        /// Pay the pending withdrawal.
        #[arg(long)]
        complete: bool,
        #[command(flatten)]
        chain: LedgerChain,
    },
    /// Let another wallet spend from this wallet's deposit (a dApp paying for its users; the
    /// user signs `--payer` with this wallet's address).
    Delegate {
        /// The user.
        #[arg(long)]
        to: String,
        /// The most the user may spend in all (base units; 0 removes the delegation).
        #[arg(long)]
        limit: String,
        /// Requests the user may make per period (0: no limit).
        #[arg(long, default_value_t = 0)]
        requests: u32,
        /// The period of --requests, in seconds.
        #[arg(long, default_value_t = 86_400)]
        period: u64,
        #[command(flatten)]
        chain: LedgerChain,
    },
}

/// On an EVM chain: where the wallet sends its transactions.
#[derive(Debug, clap::Args)]
struct LedgerChain {
    /// The chain's JSON-RPC URL (default: the one the nodes name).
    #[arg(long)]
    rpc_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ActionCommand {
    /// Run a Lit Action on a group of T nodes; prints its response, logs, signatures and usage
    /// (exit status 1 if the nodes' responses differ).
    Run {
        /// The action's JavaScript file (`-` for stdin).
        #[arg(required_unless_present = "ipfs_id", conflicts_with = "ipfs_id")]
        file: Option<PathBuf>,
        /// Run code uploaded before (`lit action upload`) by its id (IPFS CIDv0).
        #[arg(long)]
        ipfs_id: Option<String>,
        /// Parameters: a JSON object (or `@FILE`), available to the code as `jsParams` and as
        /// globals.
        #[arg(long)]
        params: Option<String>,
        /// Who calls: `wallet` (a session of --wallet for this action) or `none` (anonymous).
        /// Default: the wallet if its file exists, else anonymous.
        #[arg(long, value_enum)]
        auth: Option<ActionAuthMode>,
        /// Let the action sign with this PKP of the wallet (its token id, hex; repeatable):
        /// the wallet's session grants `pkp-signing` on it. Without it, the action signs only
        /// with PKPs that permit the action itself.
        #[arg(long = "grant-pkp", value_name = "TOKEN_ID")]
        grant_pkp: Vec<String>,
    },
    /// Upload an action's code to every node's action store; prints its id (IPFS CIDv0).
    Upload {
        /// The action's JavaScript file (`-` for stdin).
        file: PathBuf,
    },
}

/// `lit action run --auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ActionAuthMode {
    /// A session of the wallet (--wallet), signed for each node.
    Wallet,
    /// Anonymous.
    None,
}

#[derive(Debug, Subcommand)]
enum PkpCommand {
    /// Mint a PKP owned by the wallet; prints its token id, public key and address.
    Mint {
        #[command(flatten)]
        chain: OnChain,
    },
    /// Show a PKP's record.
    Info {
        /// The PKP's token id (hex).
        #[arg(long)]
        pkp: String,
    },
    /// Sign with a PKP (as its owner or a permitted address, with the wallet).
    Sign {
        /// The PKP's token id (hex).
        #[arg(long)]
        pkp: String,
        /// A 32-byte digest (hex).
        #[arg(long, group = "what")]
        hash: Option<String>,
        /// A message, signed as EIP-191 `personal_sign`.
        #[arg(long, group = "what")]
        message: Option<String>,
        /// An Ethereum transaction (JSON: `{"type": "eip1559"|"legacy", …}`); prints the signed
        /// raw transaction for `eth_sendRawTransaction`.
        #[arg(long, group = "what")]
        tx: Option<PathBuf>,
    },
    /// Change who may use a PKP (the wallet must own it).
    Permit {
        /// The PKP's token id (hex).
        #[arg(long)]
        pkp: String,
        /// A wallet address to permit.
        #[arg(long, group = "who")]
        address: Option<String>,
        /// An auth method `TYPE:ID_HEX[:SCOPE,…]` (scopes: sign-anything, personal-sign).
        #[arg(long, group = "who")]
        auth_method: Option<String>,
        /// A Lit Action id (IPFS CIDv0).
        #[arg(long, group = "who")]
        action: Option<String>,
        /// Revoke instead of permit.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        chain: OnChain,
    },
}

/// On a network whose PKPs are on an EVM chain (`staking.pkp_registry` in the nodes'
/// configurations), the wallet mints and permits with its own transactions.
#[derive(clap::Args, Debug)]
struct OnChain {
    /// The chain's JSON-RPC URL (with --pkp-registry).
    #[arg(long, requires = "pkp_registry")]
    rpc_url: Option<String>,
    /// The PkpRegistry contract (with --rpc-url).
    #[arg(long, requires = "rpc_url")]
    pkp_registry: Option<String>,
}

impl OnChain {
    fn chain(&self) -> Result<Option<lit_client::PkpChain>, ClientError> {
        match (&self.rpc_url, &self.pkp_registry) {
            (Some(url), Some(registry)) => lit_client::PkpChain::new(url, registry).map(Some),
            _ => Ok(None),
        }
    }
}

fn token_id(s: &str) -> Result<[u8; 32], ClientError> {
    let bytes = hex::decode(s.trim_start_matches("0x"))
        .map_err(|_| ClientError::Config(format!("--pkp {s:?} is not hex")))?;
    bytes
        .try_into()
        .map_err(|_| ClientError::Config("--pkp must be a 32-byte token id".into()))
}

fn pkp_json(info: &lit_api::v1::PkpInfo) -> serde_json::Value {
    serde_json::to_value(info).unwrap_or_default()
}

fn parse_auth_method(s: &str, remove: bool) -> Result<lit_api::v1::PermissionChange, ClientError> {
    use lit_api::v1::{PermissionChange, PermittedAuthMethod, PkpScope};
    let bad = || ClientError::Config(format!("--auth-method {s:?} is not TYPE:ID_HEX[:SCOPES]"));
    let mut parts = s.splitn(3, ':');
    let method_type: u32 = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    let id = parts
        .next()
        .ok_or_else(bad)?
        .trim_start_matches("0x")
        .to_lowercase();
    if remove {
        return Ok(PermissionChange::RemoveAuthMethod { method_type, id });
    }
    let scopes = parts
        .next()
        .unwrap_or("sign-anything")
        .split(',')
        .map(|x| match x {
            "sign-anything" => Ok(PkpScope::SignAnything),
            "personal-sign" => Ok(PkpScope::PersonalSign),
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    Ok(PermissionChange::AddAuthMethod {
        method: PermittedAuthMethod {
            method_type,
            id,
            scopes,
        },
    })
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Create a new random wallet (refuses to overwrite a file) and print its address.
    New {
        /// Where to write it (default: the global --wallet).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the wallet's address.
    Address,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn read_input(path: &Path) -> Result<Vec<u8>, ClientError> {
    if is_stdio(path) {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| ClientError::io("reading stdin", e))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| ClientError::io(format!("reading {}", path.display()), e))
}

fn write_output(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    if is_stdio(path) {
        return std::io::stdout()
            .write_all(bytes)
            .map_err(|e| ClientError::io("writing stdout", e));
    }
    std::fs::write(path, bytes)
        .map_err(|e| ClientError::io(format!("writing {}", path.display()), e))
}

async fn connect(cli: &Cli) -> Result<LitClient, ClientError> {
    let mut options = ConnectOptions::default()
        .with_request_timeout(Duration::from_secs(cli.timeout))
        .with_devnet(cli.devnet);
    if let Some(path) = &cli.policy {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
        let policy = Policy::from_json(&text)
            .map_err(|e| ClientError::Config(format!("policy {}: {e}", path.display())))?;
        options = options.with_policy(policy);
    }
    if let Some(payer) = &cli.payer {
        options = options.with_payer(parse_address("--payer", payer)?);
    }
    LitClient::connect_with(Bootstrap::NetworkFile(cli.network.clone()), options).await
}

/// An action's run counted by `--max-price auto`: 30 s (Lit's limit) and 100 host calls.
const AUTO_ACTION_MS: u64 = 30_000;
const AUTO_ACTION_HOST_CALLS: u64 = 100;

/// [`connect`], for a command whose requests are charged: signs `--max-price` into them.
async fn connect_paying(cli: &Cli) -> Result<LitClient, ClientError> {
    let mut client = connect(cli).await?;
    let max_price = if cli.max_price == "auto" {
        match client.ledger().await {
            Ok(info) => Some(
                info.prices
                    .max_price(AUTO_ACTION_MS, AUTO_ACTION_HOST_CALLS),
            )
            .filter(|p| *p > 0),
            // a network without a ledger is free
            Err(ClientError::NodesFailed { failures })
                if failures
                    .iter()
                    .all(|f| f.reason.code() == Some(lit_api::ErrorCode::NotFound)) =>
            {
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        Some(
            lit_api::ledger::parse_amount("--max-price", &cli.max_price)
                .map_err(ClientError::Config)?,
        )
    };
    client.set_max_price(max_price);
    Ok(client)
}

/// Prints a line for humans, or nothing in JSON mode.
fn say(cli: &Cli, text: impl std::fmt::Display) {
    if !cli.json {
        eprintln!("{text}");
    }
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

async fn run(cli: &Cli) -> Result<(), ClientError> {
    match &cli.command {
        Command::Wallet(WalletCommand::New { out }) => {
            let path = out.as_ref().unwrap_or(&cli.wallet);
            let wallet = Wallet::random();
            wallet.save(path)?;
            if cli.json {
                print_json(&json!({"address": wallet.address().to_checksum(),
                                   "path": path.display().to_string()}));
            } else {
                println!("{}", wallet.address());
            }
        }
        Command::Wallet(WalletCommand::Address) => {
            let wallet = Wallet::load(&cli.wallet)?;
            if cli.json {
                print_json(&json!({"address": wallet.address().to_checksum()}));
            } else {
                println!("{}", wallet.address());
            }
        }
        Command::Handshake => {
            let client = connect(cli).await?;
            if cli.json {
                let nodes: Vec<_> = client
                    .nodes()
                    .iter()
                    .map(|n| {
                        json!({"partyId": n.party_id, "url": n.url, "epoch": n.epoch,
                               "attestation": n.attestation, "hardware": n.hardware,
                               "latencyMs": n.latency.as_secs_f64() * 1000.0})
                    })
                    .collect();
                let failures: Vec<_> = client
                    .handshake_failures()
                    .iter()
                    .map(|f| {
                        json!({"partyId": f.party_id, "url": f.url,
                                    "reason": f.reason.to_string()})
                    })
                    .collect();
                print_json(&json!({
                    "epoch": client.epoch(),
                    "threshold": client.threshold(),
                    "nodeCount": client.node_count(),
                    "networkPublicKey": hex::encode(client.network_public_key().to_bytes()),
                    "nodes": nodes,
                    "failures": failures,
                }));
            } else {
                println!(
                    "epoch {}, threshold {} of {}, network key {}",
                    client.epoch(),
                    client.threshold(),
                    client.node_count(),
                    hex::encode(client.network_public_key().to_bytes())
                );
                println!(
                    "{:>5}  {:<28}  {:>5}  {:<12}  {:>10}",
                    "party", "url", "epoch", "attestation", "latency"
                );
                for n in client.nodes() {
                    let kind = serde_json::to_value(n.attestation)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    println!(
                        "{:>5}  {:<28}  {:>5}  {:<12}  {:>8.1}ms",
                        n.party_id,
                        n.url,
                        n.epoch,
                        kind,
                        n.latency.as_secs_f64() * 1000.0
                    );
                }
                for f in client.handshake_failures() {
                    println!("failed: {f}");
                }
            }
        }
        Command::Network => {
            let client = connect(cli).await?;
            let report = client.network_status().await?;
            if cli.json {
                print_json(&network_json(&report));
            } else {
                print_network(&report, std::time::SystemTime::now());
            }
        }
        Command::Encrypt {
            conditions,
            input,
            out,
        } => {
            let text = std::fs::read_to_string(conditions)
                .map_err(|e| ClientError::io(format!("reading {}", conditions.display()), e))?;
            let conditions: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                ClientError::Conditions(format!("{} is not JSON: {e}", conditions.display()))
            })?;
            let plaintext = zeroize::Zeroizing::new(read_input(input)?);
            let client = connect(cli).await?;
            let data =
                client.encrypt_conditions(&Conditions::from_json(&conditions)?, &plaintext)?;
            write_output(out, format!("{}\n", data.to_json()).as_bytes())?;
            if cli.json && !is_stdio(out) {
                print_json(&json!({"out": out.display().to_string(),
                                   "dataToEncryptHash": data.data_to_encrypt_hash}));
            } else {
                say(
                    cli,
                    format!("encrypted {} bytes to {}", plaintext.len(), out.display()),
                );
            }
        }
        Command::Decrypt { input, out, params } => {
            let lit_params = lit_params(params)?;
            let bytes = read_input(input)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ClientError::EncryptedData("not UTF-8".into()))?;
            let data = EncryptedData::from_json(&text)?;
            let wallet = Wallet::load(&cli.wallet)?;
            let client = connect_paying(cli).await?;
            let plaintext = zeroize::Zeroizing::new(
                client
                    .decrypt_with_params(&data, &wallet, &lit_params)
                    .await?,
            );
            write_output(out, &plaintext)?;
            if cli.json && !is_stdio(out) {
                print_json(&json!({"out": out.display().to_string(), "bytes": plaintext.len()}));
            } else {
                say(
                    cli,
                    format!("decrypted {} bytes to {}", plaintext.len(), out.display()),
                );
            }
        }
        Command::Pkp(cmd) => run_pkp(cli, cmd).await?,
        Command::Action(cmd) => run_action(cli, cmd).await?,
        Command::Balance { address, payer } => {
            let who = match address {
                Some(a) => parse_address("address", a)?,
                None => Wallet::load(&cli.wallet)?.address(),
            };
            let payer = payer
                .as_deref()
                .map(|p| parse_address("--payer", p))
                .transpose()?;
            let client = connect(cli).await?;
            let info = client.ledger().await?;
            let account = client.ledger_account(who, payer).await?;
            print_account(cli, &account, Some(&info));
        }
        Command::Faucet { address } => {
            let who = match address {
                Some(a) => parse_address("address", a)?,
                None => Wallet::load(&cli.wallet)?.address(),
            };
            let client = connect(cli).await?;
            let got = client.faucet(who).await?;
            if cli.json {
                print_json(&serde_json::to_value(&got).unwrap_or_default());
            } else {
                println!(
                    "{}: given {}, now holds {} tokens",
                    got.address,
                    tokens(&got.given),
                    tokens(&got.tokens)
                );
            }
        }
        Command::Deposit { amount, chain } => {
            let op = LedgerOp::Deposit {
                amount: parse_amount("amount", amount)?,
            };
            ledger_op(cli, op, chain).await?;
        }
        Command::Withdraw {
            amount,
            complete,
            chain,
        } => {
            let op = match (amount, complete) {
                (Some(a), false) => LedgerOp::RequestWithdraw {
                    amount: parse_amount("amount", a)?,
                },
                _ => LedgerOp::Withdraw {},
            };
            ledger_op(cli, op, chain).await?;
        }
        Command::Delegate {
            to,
            limit,
            requests,
            period,
            chain,
        } => {
            let op = LedgerOp::Delegate {
                user: parse_address("--to", to)?.to_checksum(),
                total_limit: parse_amount("--limit", limit)?,
                requests_per_period: *requests,
                period: *period,
            };
            ledger_op(cli, op, chain).await?;
        }
    }
    Ok(())
}

fn parse_address(what: &str, text: &str) -> Result<lit_crypto::eth::Address, ClientError> {
    lit_crypto::eth::Address::parse(text)
        .map_err(|e| ClientError::Config(format!("{what} {text:?}: {e}")))
}

/// A decimal amount of base units, checked (kept as text for the request).
fn parse_amount(what: &str, text: &str) -> Result<String, ClientError> {
    lit_api::ledger::parse_amount(what, text)
        .map(|a| a.to_string())
        .map_err(ClientError::Config)
}

/// Base units as tokens for people (`12.5`), or the raw text.
fn tokens(base_units: &str) -> String {
    lit_client::format_tokens(base_units).unwrap_or_else(|| base_units.to_string())
}

async fn ledger_op(cli: &Cli, op: LedgerOp, chain: &LedgerChain) -> Result<(), ClientError> {
    let wallet = Wallet::load(&cli.wallet)?;
    let client = connect(cli).await?;
    let account = client
        .ledger_op(&wallet, op.clone(), chain.rpc_url.as_deref())
        .await?;
    say(
        cli,
        match &op {
            LedgerOp::Deposit { amount } => format!("deposited {}", tokens(amount)),
            LedgerOp::RequestWithdraw { amount } => format!(
                "asked to withdraw {} (`lit withdraw --complete` once the delay is over)",
                tokens(amount)
            ),
            LedgerOp::Withdraw {} => "withdrawn".to_string(),
            LedgerOp::Delegate {
                user, total_limit, ..
            } if total_limit == "0" => format!("removed the delegation to {user}"),
            LedgerOp::Delegate {
                user,
                total_limit,
                requests_per_period,
                period,
            } => format!(
                "{user} may spend up to {} of this deposit{}",
                tokens(total_limit),
                if *requests_per_period > 0 {
                    format!(", {requests_per_period} requests per {period} s")
                } else {
                    String::new()
                }
            ),
        },
    );
    print_account(cli, &account, None);
    Ok(())
}

fn print_account(
    cli: &Cli,
    account: &lit_api::ledger::LedgerAccount,
    info: Option<&lit_client::LedgerInfo>,
) {
    if cli.json {
        let mut value = serde_json::to_value(account).unwrap_or_default();
        if let Some(info) = info {
            value["prices"] = json!(lit_api::ledger::PRODUCTS
                .iter()
                .zip(info.prices.0)
                .map(|(name, p)| (name.to_string(), json!(p.to_string())))
                .collect::<serde_json::Map<_, _>>());
            value["backend"] = json!(info.status.backend);
        }
        print_json(&value);
        return;
    }
    println!("account     {}", account.address);
    println!(
        "deposit     {} ({} base units)",
        tokens(&account.balance),
        account.balance
    );
    if account.withdrawal != "0" {
        println!(
            "withdrawal  {} asked at {}",
            tokens(&account.withdrawal),
            rfc3339(account.withdrawal_requested_at)
        );
    }
    println!("unsettled   {} (at the answering node)", account.unsettled);
    println!("tokens      {}", tokens(&account.tokens));
    if let Some(d) = &account.delegation {
        println!(
            "delegation  from {}: {} of {} spent, {} of {} requests this period ({} s)",
            d.payer, d.spent, d.total_limit, d.period_requests, d.requests_per_period, d.period
        );
    }
    if let Some(info) = info {
        let prices: Vec<String> = lit_api::ledger::PRODUCTS
            .iter()
            .zip(info.prices.0)
            .map(|(name, p)| format!("{name} {p}"))
            .collect();
        println!("prices      {} (base units per node)", prices.join(", "));
    }
}

/// A stake for people: tokens (`1000.0`), or the raw amount if it is not a number.
fn stake_tokens(stake: &str) -> String {
    lit_client::format_tokens(stake).unwrap_or_else(|| format!("{stake:?} (not a number)"))
}

/// A Unix time as RFC 3339 (UTC).
fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

/// `in 4m 10s` / `5s ago`.
fn relative(to: u64, now: std::time::SystemTime) -> String {
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let span = |s: u64| match (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, h, _, _) => format!("{d}d {h}h"),
    };
    if to >= now {
        format!("in {}", span(to - now))
    } else {
        format!("{} ago", span(now - to))
    }
}

fn members_json(set: &[lit_api::v1::MemberStatus]) -> Vec<serde_json::Value> {
    set.iter()
        .map(|m| {
            json!({"partyId": m.party_id, "url": m.url, "staker": m.staker,
                   "stake": m.stake, "stakeTokens": lit_client::format_tokens(&m.stake)})
        })
        .collect()
}

fn network_json(report: &lit_client::NetworkReport) -> serde_json::Value {
    let s = &report.status;
    let serving: serde_json::Map<String, serde_json::Value> = report
        .serving
        .iter()
        .map(|(p, e)| (p.to_string(), json!(e)))
        .collect();
    let other: Vec<_> = report
        .serving_other_epoch()
        .iter()
        .map(|(p, e)| json!({"partyId": p, "epoch": e}))
        .collect();
    let failures: Vec<_> = report
        .failures
        .iter()
        .map(|f| json!({"partyId": f.party_id, "url": f.url, "reason": f.reason.to_string()}))
        .collect();
    json!({
        "epoch": s.epoch,
        "state": s.state,
        "threshold": s.threshold,
        "epochStart": s.epoch_start,
        "epochLength": s.epoch_length,
        "epochEnd": report.epoch_end(),
        "epochEndTime": rfc3339(report.epoch_end()),
        "current": members_json(&s.current),
        "next": members_json(&s.next),
        "nextThreshold": s.next_threshold,
        "serving": serving,
        "servingOtherEpoch": other,
        "failures": failures,
    })
}

fn print_members(set: &[lit_api::v1::MemberStatus]) {
    println!(
        "  {:>5}  {:<28}  {:<42}  {:>14}",
        "party", "url", "staker", "stake"
    );
    let mut set = set.to_vec();
    set.sort_by_key(|m| m.party_id);
    for m in &set {
        println!(
            "  {:>5}  {:<28}  {:<42}  {:>14}",
            m.party_id,
            m.url,
            m.staker,
            stake_tokens(&m.stake)
        );
    }
}

fn print_network(report: &lit_client::NetworkReport, now: std::time::SystemTime) {
    let s = &report.status;
    println!(
        "epoch {} ({}), threshold {} of {}",
        s.epoch,
        s.state,
        s.threshold,
        s.current.len()
    );
    for (party, epoch) in report.serving_other_epoch() {
        match epoch {
            0 => println!("node {party} serves no epoch yet"),
            _ => println!("node {party} serves epoch {epoch}"),
        }
    }
    println!("current members:");
    print_members(&s.current);
    println!(
        "next set: threshold {} of {}",
        s.next_threshold,
        s.next.len()
    );
    print_members(&s.next);
    println!(
        "epoch {} began {}, ends {} ({})",
        s.epoch,
        rfc3339(s.epoch_start),
        rfc3339(report.epoch_end()),
        relative(report.epoch_end(), now)
    );
    for f in &report.failures {
        println!("failed: {f}");
    }
}

fn read_text(path: &Path) -> Result<String, ClientError> {
    String::from_utf8(read_input(path)?)
        .map_err(|_| ClientError::Config(format!("{} is not UTF-8", path.display())))
}

/// `--params`: a JSON object, inline or `@FILE`.
/// `--param name=value` arguments as the `litParams` of a decryption.
fn lit_params(args: &[String]) -> Result<std::collections::BTreeMap<String, String>, ClientError> {
    let mut params = std::collections::BTreeMap::new();
    for arg in args {
        let (name, value) = arg
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| {
                ClientError::Conditions(format!("--param {arg:?}: expected NAME=VALUE"))
            })?;
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(ClientError::Conditions(format!(
                "--param {name:?} given twice"
            )));
        }
    }
    Ok(params)
}

fn parse_params(arg: &str) -> Result<serde_json::Map<String, serde_json::Value>, ClientError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => read_text(Path::new(path))?,
        None => arg.to_string(),
    };
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ClientError::Config("--params must be a JSON object".into())),
        Err(e) => Err(ClientError::Config(format!("--params is not JSON: {e}"))),
    }
}

fn signature_json(sig: &lit_client::ActionSignature) -> serde_json::Value {
    let s = &sig.signature;
    json!({
        "r": format!("0x{}", hex::encode(s.r)),
        "s": format!("0x{}", hex::encode(s.s)),
        "v": 27 + s.recovery_id,
        "recoveryId": s.recovery_id,
        "signature": format!("0x{}", hex::encode(s.to_ethereum_bytes())),
        "publicKey": format!("0x{}", hex::encode(&sig.public_key)),
        "ethAddress": sig.eth_address.to_checksum(),
        "keyId": format!("0x{}", hex::encode(sig.key_id)),
        "digest": format!("0x{}", hex::encode(sig.digest)),
    })
}

fn execute_json(result: &lit_client::ExecuteJsResult) -> serde_json::Value {
    use lit_client::ActionResponse;
    let by_node = |m: &std::collections::BTreeMap<u32, String>| -> serde_json::Value {
        m.iter().map(|(p, v)| (p.to_string(), json!(v))).collect()
    };
    let (response, responses) = match &result.response {
        ActionResponse::Agreed(r) => (json!(r), serde_json::Value::Null),
        ActionResponse::Divergent(m) => (
            serde_json::Value::Null,
            m.iter().map(|(p, r)| (p.to_string(), json!(r))).collect(),
        ),
    };
    let signatures: serde_json::Map<_, _> = result
        .signatures
        .iter()
        .map(|(name, sig)| (name.clone(), signature_json(sig)))
        .collect();
    let usage: serde_json::Map<_, _> = result
        .usage
        .iter()
        .map(|(p, u)| (p.to_string(), serde_json::to_value(u).unwrap_or_default()))
        .collect();
    json!({
        "ipfsId": result.ipfs_id,
        "group": result.group,
        "agreed": !result.response.is_divergent(),
        "response": response,
        "responses": responses,
        "logs": result.logs(),
        "logsByNode": by_node(&result.logs),
        "signatures": signatures,
        "usage": usage,
    })
}

fn print_execute(result: &lit_client::ExecuteJsResult) {
    use lit_client::ActionResponse;
    match &result.response {
        ActionResponse::Agreed(Some(r)) => println!("response: {r}"),
        ActionResponse::Agreed(None) => println!("response: (none)"),
        ActionResponse::Divergent(m) => {
            println!("responses differ:");
            for (p, r) in m {
                match r {
                    Some(r) => println!("  node {p}: {r}"),
                    None => println!("  node {p}: (none)"),
                }
            }
        }
    }
    let first = result.logs.keys().next().copied().unwrap_or_default();
    let logs = result.logs();
    if !logs.is_empty() {
        println!("logs (node {first}):");
        for line in logs.lines() {
            println!("  {line}");
        }
    }
    for (name, sig) in &result.signatures {
        let s = &sig.signature;
        println!("signature {name:?}:");
        println!("  r           0x{}", hex::encode(s.r));
        println!("  s           0x{}", hex::encode(s.s));
        println!("  v           {}", 27 + s.recovery_id);
        println!("  signature   0x{}", hex::encode(s.to_ethereum_bytes()));
        println!("  public key  0x{}", hex::encode(&sig.public_key));
        println!("  address     {}", sig.eth_address);
    }
    println!(
        "usage (group {:?}, action {}):",
        result.group, result.ipfs_id
    );
    for (p, u) in &result.usage {
        let calls: Vec<String> = u
            .host_calls
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "  node {p}: {} {:.1} ms, {} signature(s), {} fetch(es), {} B response, {} B logs{}",
            u.engine,
            u.duration_ms,
            u.signatures,
            u.fetches,
            u.response_bytes,
            u.log_bytes,
            if calls.is_empty() {
                String::new()
            } else {
                format!(", {}", calls.join(", "))
            }
        );
    }
}

async fn run_action(cli: &Cli, cmd: &ActionCommand) -> Result<(), ClientError> {
    match cmd {
        ActionCommand::Upload { file } => {
            let code = read_text(file)?;
            let client = connect(cli).await?;
            let upload = client.upload_action(&code).await?;
            for f in &upload.failures {
                say(cli, format!("warning: not stored at {f}"));
            }
            if cli.json {
                let failures: Vec<_> = upload
                    .failures
                    .iter()
                    .map(|f| {
                        json!({"partyId": f.party_id, "url": f.url,
                                    "reason": f.reason.to_string()})
                    })
                    .collect();
                print_json(&json!({"ipfsId": upload.ipfs_id, "size": upload.size,
                                   "stored": upload.stored, "failures": failures}));
            } else {
                println!("{}", upload.ipfs_id);
            }
        }
        ActionCommand::Run {
            file,
            ipfs_id,
            params,
            auth,
            grant_pkp,
        } => {
            let mut run = match (file, ipfs_id) {
                (Some(file), _) => lit_client::ExecuteJs::code(read_text(file)?),
                (None, Some(id)) => lit_client::ExecuteJs::ipfs_id(id.clone()),
                (None, None) => {
                    return Err(ClientError::Config("say what: FILE or --ipfs-id".into()))
                }
            };
            run.action_id()?;
            if let Some(params) = params {
                run = run.params(parse_params(params)?);
            }
            let use_wallet = match auth {
                Some(mode) => *mode == ActionAuthMode::Wallet,
                None => cli.wallet.exists(),
            };
            let wallet = if use_wallet {
                Some(Wallet::load(&cli.wallet)?)
            } else {
                None
            };
            if !grant_pkp.is_empty() && wallet.is_none() {
                return Err(ClientError::Config(
                    "--grant-pkp needs a wallet caller (--auth wallet)".into(),
                ));
            }
            for token in grant_pkp {
                let grant = lit_api::session::ResourceAbilityRequest::new(
                    lit_api::session::LitResource::pkp(&token_id(token)?),
                    lit_api::session::LitAbility::PkpSigning,
                )
                .map_err(|e| ClientError::Config(e.to_string()))?;
                run = run.grant(grant);
            }
            if let Some(wallet) = &wallet {
                run = run.wallet(wallet);
            }
            let client = connect_paying(cli).await?;
            let result = client.execute_js(run).await?;
            if cli.json {
                print_json(&execute_json(&result));
            } else {
                print_execute(&result);
            }
            // divergent responses: shown above, then the error (exit status 1)
            result.agreed_response()?;
        }
    }
    Ok(())
}

async fn run_pkp(cli: &Cli, cmd: &PkpCommand) -> Result<(), ClientError> {
    use lit_api::v1::{PermissionChange, ToSign};
    let client = connect_paying(cli).await?;
    match cmd {
        PkpCommand::Mint { chain } => {
            let wallet = Wallet::load(&cli.wallet)?;
            let info = match chain.chain()? {
                Some(chain) => client.mint_pkp_on_chain(&wallet, &chain).await?,
                None => client.mint_pkp(&wallet).await?,
            };
            if cli.json {
                print_json(&pkp_json(&info));
            } else {
                println!("token id    {}", hex::encode(info.token_id.0));
                println!("public key  {}", hex::encode(&info.public_key.0));
                println!("address     {}", info.eth_address);
            }
        }
        PkpCommand::Info { pkp } => {
            let info = client.pkp(token_id(pkp)?).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&pkp_json(&info)).unwrap_or_default()
            );
        }
        PkpCommand::Permit {
            pkp,
            address,
            auth_method,
            action,
            remove,
            chain,
        } => {
            let wallet = Wallet::load(&cli.wallet)?;
            let change = match (address, auth_method, action) {
                (Some(a), _, _) if *remove => {
                    PermissionChange::RemoveAddress { address: a.clone() }
                }
                (Some(a), _, _) => PermissionChange::AddAddress { address: a.clone() },
                (_, Some(m), _) => parse_auth_method(m, *remove)?,
                (_, _, Some(c)) if *remove => PermissionChange::RemoveAction { cid: c.clone() },
                (_, _, Some(c)) => PermissionChange::AddAction { cid: c.clone() },
                _ => {
                    return Err(ClientError::Config(
                        "say whom: --address, --auth-method or --action".into(),
                    ))
                }
            };
            let info = match chain.chain()? {
                Some(chain) => {
                    client
                        .pkp_permit_on_chain(&wallet, &chain, token_id(pkp)?, change)
                        .await?
                }
                None => client.pkp_permit(&wallet, token_id(pkp)?, change).await?,
            };
            if cli.json {
                print_json(&pkp_json(&info));
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&info.permissions).unwrap_or_default()
                );
            }
        }
        PkpCommand::Sign {
            pkp,
            hash,
            message,
            tx,
        } => {
            let wallet = Wallet::load(&cli.wallet)?;
            let info = client.pkp(token_id(pkp)?).await?;
            let auth = &wallet;
            if let Some(path) = tx {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
                let tx: lit_client::EthTransaction = serde_json::from_str(&text)
                    .map_err(|e| ClientError::Config(format!("{}: {e}", path.display())))?;
                let (raw, sig) = client.pkp_sign_transaction(&info, &tx, auth).await?;
                if cli.json {
                    print_json(&json!({"rawTransaction": format!("0x{}", hex::encode(raw)),
                        "signature": format!("0x{}", hex::encode(sig.signature.to_ethereum_bytes())),
                        "from": info.eth_address}));
                } else {
                    println!("0x{}", hex::encode(raw));
                }
                return Ok(());
            }
            let to_sign = match (hash, message) {
                (Some(h), _) => {
                    let d: [u8; 32] = hex::decode(h.trim_start_matches("0x"))
                        .ok()
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| {
                            ClientError::Config("--hash must be 32 bytes of hex".into())
                        })?;
                    ToSign::Digest(lit_api::Bytes32(d))
                }
                (_, Some(m)) => ToSign::Message(lit_api::Bytes(m.as_bytes().to_vec())),
                _ => {
                    return Err(ClientError::Config(
                        "say what: --hash, --message or --tx".into(),
                    ))
                }
            };
            let sig = client.pkp_sign(&info, to_sign, auth).await?;
            let bytes = sig.signature.to_ethereum_bytes();
            if cli.json {
                print_json(&json!({"signature": format!("0x{}", hex::encode(bytes)),
                    "digest": format!("0x{}", hex::encode(sig.digest)),
                    "signer": info.eth_address,
                    "presignature": sig.presignature,
                    "group": sig.group}));
            } else {
                println!("0x{}", hex::encode(bytes));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_and_global_flags() {
        let cli = Cli::try_parse_from(["lit", "wallet", "new", "--out", "w.json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Wallet(WalletCommand::New { out: Some(ref p) }) if p == Path::new("w.json")
        ));
        let cli = Cli::try_parse_from([
            "lit",
            "--network",
            "net.json",
            "--wallet",
            "me.json",
            "--json",
            "handshake",
        ])
        .unwrap();
        assert_eq!(cli.network, PathBuf::from("net.json"));
        assert_eq!(cli.wallet, PathBuf::from("me.json"));
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Handshake));
        // global flags may come after the subcommand too
        let cli = Cli::try_parse_from([
            "lit",
            "encrypt",
            "--conditions",
            "c.json",
            "--in",
            "p.txt",
            "--out",
            "e.json",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        match cli.command {
            Command::Encrypt {
                conditions,
                input,
                out,
            } => {
                assert_eq!(conditions, PathBuf::from("c.json"));
                assert_eq!(input, PathBuf::from("p.txt"));
                assert_eq!(out, PathBuf::from("e.json"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["lit", "decrypt", "--in", "e.json", "--out", "-"]).unwrap();
        assert!(matches!(cli.command, Command::Decrypt { ref params, .. } if params.is_empty()));
        let cli = Cli::try_parse_from([
            "lit",
            "decrypt",
            "--in",
            "e.json",
            "--out",
            "-",
            "--param",
            "tier=gold",
            "--param",
            "note=a=b",
        ])
        .unwrap();
        let Command::Decrypt { params, .. } = cli.command else {
            panic!("not decrypt")
        };
        let params = lit_params(&params).unwrap();
        assert_eq!(params["tier"], "gold");
        assert_eq!(params["note"], "a=b");
        assert!(lit_params(&["x".into()]).is_err());
        assert!(lit_params(&["=x".into()]).is_err());
        assert!(lit_params(&["a=1".into(), "a=2".into()]).is_err());
        let cli = Cli::try_parse_from(["lit", "wallet", "address"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Wallet(WalletCommand::Address)
        ));
        let cli = Cli::try_parse_from(["lit", "network", "--json"]).unwrap();
        assert!(cli.json && matches!(cli.command, Command::Network));
    }

    fn report() -> lit_client::NetworkReport {
        use lit_api::v1::{MemberStatus, NetworkStatus};
        let member = |p: u32, stake: &str| MemberStatus {
            party_id: p,
            url: format!("http://127.0.0.1:{}", 7470 + p),
            staker: format!("0x{p:040x}"),
            stake: stake.into(),
        };
        lit_client::NetworkReport {
            status: NetworkStatus {
                epoch: 3,
                serving_epoch: 3,
                state: "locked".into(),
                threshold: 2,
                next_threshold: 3,
                epoch_start: 1_800_000_000,
                epoch_length: 3600,
                current: vec![
                    member(2, "2500000000000000000000"),
                    member(1, "1000000000000000000000"),
                ],
                next: vec![member(1, "1000000000000000000000"), member(3, "oops")],
            },
            serving: [(1, 3), (2, 2)].into_iter().collect(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn network_status_as_json_and_for_people() {
        let v = network_json(&report());
        assert_eq!(v["epoch"], 3);
        assert_eq!(v["state"], "locked");
        assert_eq!(v["epochEnd"], 1_800_003_600u64);
        assert_eq!(v["epochEndTime"], "2027-01-15T09:00:00Z");
        assert_eq!(v["current"][0]["stakeTokens"], "2500.0");
        assert_eq!(v["current"][1]["stake"], "1000000000000000000000");
        assert_eq!(v["next"][1]["stakeTokens"], serde_json::Value::Null);
        assert_eq!(v["nextThreshold"], 3);
        assert_eq!(v["serving"]["2"], 2);
        assert_eq!(v["servingOtherEpoch"], json!([{"partyId": 2, "epoch": 2}]));
        assert_eq!(stake_tokens("oops"), "\"oops\" (not a number)");
        let at = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(relative(1_800_003_600, at(1_800_003_350)), "in 4m 10s");
        assert_eq!(relative(1_800_003_600, at(1_800_003_605)), "5s ago");
        assert_eq!(
            relative(1_800_003_600, at(1_800_003_600 - 7200)),
            "in 2h 0m"
        );
        assert_eq!(relative(1_800_003_600, at(1_700_000_000)), "in 1157d 10h");
    }

    #[test]
    fn parses_action_commands() {
        let cli = Cli::try_parse_from([
            "lit",
            "action",
            "run",
            "a.js",
            "--params",
            "{\"x\":1}",
            "--auth",
            "none",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        match cli.command {
            Command::Action(ActionCommand::Run {
                file,
                ipfs_id,
                params,
                auth,
                grant_pkp,
            }) => {
                assert_eq!(file, Some(PathBuf::from("a.js")));
                assert_eq!(ipfs_id, None);
                assert_eq!(params.as_deref(), Some("{\"x\":1}"));
                assert_eq!(auth, Some(ActionAuthMode::None));
                assert!(grant_pkp.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "lit",
            "action",
            "run",
            "--ipfs-id",
            "Qm1",
            "--auth",
            "wallet",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Action(ActionCommand::Run { file: None, ipfs_id: Some(ref id), auth: Some(ActionAuthMode::Wallet), .. }) if id == "Qm1"
        ));
        let cli = Cli::try_parse_from(["lit", "action", "upload", "a.js"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Action(ActionCommand::Upload { ref file }) if file == Path::new("a.js")
        ));
        // --params: a JSON object, inline or from a file
        assert_eq!(parse_params("{\"a\": [1]}").unwrap()["a"], json!([1]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "{\"b\": true}").unwrap();
        assert_eq!(
            parse_params(&format!("@{}", path.display())).unwrap()["b"],
            true
        );
        for bad in ["[1]", "1", "{", "@/nonexistent/params.json"] {
            assert!(parse_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_bad_invocations() {
        for args in [
            &["lit"][..],
            &["lit", "encrypt", "--in", "p", "--out", "o"],
            &["lit", "decrypt", "--in", "e.json"],
            &["lit", "wallet"],
            &["lit", "frobnicate"],
            &["lit", "--timeout", "soon", "handshake"],
            &["lit", "action", "run"],
            &["lit", "action", "run", "a.js", "--ipfs-id", "Qm1"],
            &["lit", "action", "run", "a.js", "--auth", "someone"],
            &["lit", "action", "upload"],
            &["lit", "network", "extra"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
