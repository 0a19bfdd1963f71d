//! `lit`: the command-line client of the Lit network (a thin layer over the `lit_client` crate).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lit_client::{
    Bootstrap, ClientError, ConnectOptions, EncryptedData, LitClient, Policy, Wallet,
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
    /// An attestation policy (lit-attest JSON) instead of the one the network file implies.
    #[arg(long, global = true, env = "LIT_POLICY")]
    policy: Option<PathBuf>,
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
    /// Encrypt a file under access control conditions (locally, to the network key).
    Encrypt {
        /// The access control conditions (JSON).
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
    },
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
    let mut options =
        ConnectOptions::default().with_request_timeout(Duration::from_secs(cli.timeout));
    if let Some(path) = &cli.policy {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
        let policy = Policy::from_json(&text)
            .map_err(|e| ClientError::Config(format!("policy {}: {e}", path.display())))?;
        options = options.with_policy(policy);
    }
    LitClient::connect_with(Bootstrap::NetworkFile(cli.network.clone()), options).await
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
            let data = client.encrypt(&conditions, &plaintext)?;
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
        Command::Decrypt { input, out } => {
            let bytes = read_input(input)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ClientError::EncryptedData("not UTF-8".into()))?;
            let data = EncryptedData::from_json(&text)?;
            let wallet = Wallet::load(&cli.wallet)?;
            let client = connect(cli).await?;
            let plaintext = zeroize::Zeroizing::new(client.decrypt(&data, &wallet).await?);
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
        assert!(matches!(cli.command, Command::Decrypt { .. }));
        let cli = Cli::try_parse_from(["lit", "wallet", "address"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Wallet(WalletCommand::Address)
        ));
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
