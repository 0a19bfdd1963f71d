//! What an operator does with a node's staker account (`lit-node stake`, `join`, `leave`,
//! `status`) and with a running devnet (`lit-node devnet add-node`, `next-epoch`). Each
//! command reads the node's configuration and its `staker.key`, so it works while the node
//! runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::chain::evm_releases::EvmReleases;
use crate::chain::payments::{Prices, Product};
use crate::chain::releases::ReleaseRegister;
use crate::chain::staking::{Amount, JoinRequest, Staking, TOKEN};
use crate::config::Config;
use crate::devnet::{self, Devnet, LayoutOptions, NodeProgram};
use crate::identity::StakerKey;
use crate::node::{self, open_staking};
use lit_attest::{MinTcb, Release};

async fn staking(config: &Path) -> Result<(Config, Arc<dyn Staking>), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let chain = open_staking(&config)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "{}: the configuration has no [staking] section, so the network's members are \
                 its network file",
                config.network_file.display()
            )
        })?;
    Ok((config, chain))
}

/// Formats base units as tokens (`1000.5`).
pub fn tokens(amount: Amount) -> String {
    let whole = amount / TOKEN;
    let frac = amount % TOKEN;
    if frac == 0 {
        return format!("{whole}.0");
    }
    let digits = format!("{frac:018}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `lit-node stake --amount N`: stakes `amount` whole tokens.
pub async fn stake(config: &Path, amount: u64) -> Result<(), String> {
    let (_, chain) = staking(config).await?;
    let base = Amount::from(amount) * TOKEN;
    if let Err(e) = chain.stake(base).await {
        let balance = chain.token_balance(chain.caller()).await.unwrap_or(0);
        return Err(format!(
            "stake: {e} (the staker {} holds {} tokens)",
            chain.caller().to_checksum(),
            tokens(balance)
        ));
    }
    let total = chain
        .stake_of(chain.caller())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "Staked {amount} tokens from {}; its stake is now {}.",
        chain.caller().to_checksum(),
        tokens(total)
    );
    Ok(())
}

/// `lit-node join`: asks to join at the next epoch with the node's URL and keys.
pub async fn join(config_path: &Path) -> Result<(), String> {
    let (config, chain) = staking(config_path).await?;
    if config.listen.port() == 0 && config.url.is_none() {
        return Err(
            "the node's URL is not known before it runs (listen port 0): give `listen` a port \
             or set `url`"
                .into(),
        );
    }
    let entry = node::init(&config).map_err(|e| e.to_string())?;
    chain
        .request_to_join(&JoinRequest {
            url: entry.url.clone(),
            identity_key: entry.identity_key.0,
            seal_key: entry.seal_key.0,
            dkg_key: entry.dkg_key.0.clone(),
        })
        .await
        .map_err(|e| format!("join: {e}"))?;
    let net = chain.network().await.map_err(|e| e.to_string())?;
    let party = net
        .next
        .iter()
        .find(|v| v.staker == chain.caller())
        .map(|v| v.party_id)
        .unwrap_or(0);
    println!(
        "{} asked to join as party {party} at {}: it becomes a member at epoch {} (the next \
         set is locked when the epoch ends).",
        chain.caller().to_checksum(),
        entry.url,
        net.epoch + 1
    );
    Ok(())
}

/// `lit-node leave`: asks to leave at the next epoch.
pub async fn leave(config: &Path) -> Result<(), String> {
    let (_, chain) = staking(config).await?;
    chain
        .request_to_leave()
        .await
        .map_err(|e| format!("leave: {e}"))?;
    let net = chain.network().await.map_err(|e| e.to_string())?;
    println!(
        "{} leaves at epoch {}; withdraw its stake after that (`lit-node status` shows it).",
        chain.caller().to_checksum(),
        net.epoch + 1
    );
    Ok(())
}

/// `lit-node status`: the staker, its balance, stake and membership, and the epoch.
pub async fn status(config: &Path) -> Result<(), String> {
    let (_, chain) = staking(config).await?;
    let me = chain.caller();
    let net = chain.network().await.map_err(|e| e.to_string())?;
    let balance = chain.token_balance(me).await.map_err(|e| e.to_string())?;
    let stake = chain.stake_of(me).await.map_err(|e| e.to_string())?;
    let current = net.member_by_staker(&me).map(|v| v.party_id);
    let next = net.next.iter().find(|v| v.staker == me).map(|v| v.party_id);
    println!("staker     {}", me.to_checksum());
    println!("balance    {} tokens", tokens(balance));
    println!(
        "stake      {} tokens (minimum {})",
        tokens(stake),
        tokens(chain.min_stake().await.map_err(|e| e.to_string())?)
    );
    let role = match (current, next) {
        (Some(p), Some(_)) => format!("member (party {p}), staying"),
        (Some(p), None) => format!("member (party {p}), leaving at the next epoch"),
        (None, Some(p)) => format!("joining at the next epoch as party {p}"),
        (None, None) => "not a validator".to_string(),
    };
    println!("role       {role}");
    println!(
        "epoch      {} ({:?}), {} members, threshold {}; next set {} members, threshold {}",
        net.epoch,
        net.state,
        net.current.len(),
        net.threshold,
        net.next.len(),
        net.next_threshold
    );
    Ok(())
}

/// `lit-node rewards [--claim]`: what the node's staker earned by serving paid requests, and
/// what it settled; `claim` transfers the rewards to the staker.
pub async fn rewards(config_path: &Path, claim: bool) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let ledger = node::open_payments(&config)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            "the configuration names no ledger (an EVM network needs staking.ledger): its \
             requests are free"
                .to_string()
        })?;
    let me = ledger.caller();
    let earned = ledger.rewards(me).await.map_err(|e| e.to_string())?;
    let batches = ledger.settled_batch(me).await.map_err(|e| e.to_string())?;
    println!("staker     {}", me.to_checksum());
    println!("rewards    {earned} base units ({} tokens)", tokens(earned));
    println!("settled    {batches} batches of charges");
    if claim {
        ledger
            .claim_rewards()
            .await
            .map_err(|e| format!("claim: {e}"))?;
        println!("Claimed {earned} base units to {}.", me.to_checksum());
    }
    Ok(())
}

/// Parses `decryption=7,pkp-sign=11,…` onto `prices`.
pub fn parse_prices(text: &str, prices: &mut Prices) -> Result<(), String> {
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected PRODUCT=PRICE"))?;
        let product = PRODUCT_NAMES
            .iter()
            .find(|(n, _)| *n == name.trim())
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                format!(
                    "unknown product {name:?} (one of {})",
                    PRODUCT_NAMES.map(|(n, _)| n).join(", ")
                )
            })?;
        prices.0[product as usize] = value.trim().parse().map_err(|e| format!("{part:?}: {e}"))?;
    }
    Ok(())
}

/// The products by their command-line names.
pub const PRODUCT_NAMES: [(&str, Product); 5] = [
    ("decryption", Product::Decryption),
    ("pkp-sign", Product::PkpSign),
    ("action", Product::Action),
    ("action-ms", Product::ActionMs),
    ("action-host-call", Product::ActionHostCall),
];

/// `lit-node devnet prices [SET]`: shows the ledger's prices, or sets some as the admin.
pub async fn devnet_prices(
    dir: &Path,
    n: usize,
    options: &LayoutOptions,
    set: Option<&str>,
) -> Result<(), String> {
    let layout = devnet::layout(dir, n, options).map_err(|e| e.to_string())?;
    let admin = layout.payments_admin().await.map_err(|e| e.to_string())?;
    let mut prices = admin.prices().await.map_err(|e| e.to_string())?;
    if let Some(set) = set {
        parse_prices(set, &mut prices)?;
        admin
            .set_prices(&prices)
            .await
            .map_err(|e| format!("set prices: {e}"))?;
        println!("Set the prices; the nodes read them at their next settlement.");
    }
    for (name, product) in PRODUCT_NAMES {
        println!("{name:<17}{}", prices.of(product));
    }
    Ok(())
}

/// `lit-node devnet add-node`: one more node for the devnet in `dir`, run until Ctrl-C.
pub async fn devnet_add_node(dir: &Path, n: usize, options: &LayoutOptions) -> Result<(), String> {
    let layout = devnet::layout(dir, n, options).map_err(|e| e.to_string())?;
    if layout.staking.is_none() || layout.network.is_none() {
        return Err(format!(
            "{} holds no running devnet on a staking contract: start one with `lit-node devnet`",
            dir.display()
        ));
    }
    let all: BTreeSet<u32> = layout.configs.keys().copied().collect();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let program = NodeProgram::lit_node(exe);
    let mut net = Devnet::start(layout, move |_| program.command(), &all)
        .await
        .map_err(|e| e.to_string())?;
    let id = net.add_node().await.map_err(|e| e.to_string())?;
    println!(
        "Node {id} runs at {} and joins at the next epoch (`lit-node devnet --dir {} \
         next-epoch` ends this one now). Press Ctrl-C to stop it.",
        net.url(id).unwrap_or_default(),
        dir.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    drop(net);
    Ok(())
}

/// `lit-node devnet next-epoch`: the admin locks the next set now.
pub async fn devnet_next_epoch(
    dir: &Path,
    n: usize,
    options: &LayoutOptions,
) -> Result<(), String> {
    let layout = devnet::layout(dir, n, options).map_err(|e| e.to_string())?;
    let admin = layout.staking_admin().await.map_err(|e| e.to_string())?;
    admin
        .lock_next_epoch()
        .await
        .map_err(|e| format!("lock: {e}"))?;
    let net = admin.network().await.map_err(|e| e.to_string())?;
    println!(
        "Locked the next set for epoch {}: {} members, threshold {}. The nodes reshare and \
         advance the epoch.",
        net.epoch + 1,
        net.next.len(),
        net.next_threshold
    );
    Ok(())
}

/// Where `lit-node release` finds the release register.
#[derive(Clone, Debug)]
pub enum RegisterAt {
    /// The register of the devnet in this folder (on its embedded chain or anvil), as its
    /// admin.
    Devnet(std::path::PathBuf),
    /// A `ReleaseRegister` contract on an EVM chain; with `key_dir` (a folder holding the
    /// admin's `staker.key`) its transactions are signed, without it the view is read-only.
    Evm {
        /// A JSON-RPC endpoint of the chain.
        rpc_url: String,
        /// The contract.
        contract: String,
        /// The admin's key folder.
        key_dir: Option<std::path::PathBuf>,
    },
}

async fn release_register(at: &RegisterAt) -> Result<Arc<dyn ReleaseRegister>, String> {
    match at {
        RegisterAt::Devnet(dir) => {
            let layout =
                devnet::layout(dir, 0, &LayoutOptions::default()).map_err(|e| e.to_string())?;
            if layout.staking.is_none() {
                return Err(format!(
                    "the devnet in {} has no chain: its network file lists its releases \
                     (`releases`)",
                    dir.display()
                ));
            }
            layout.release_admin().await.map_err(|e| e.to_string())
        }
        RegisterAt::Evm {
            rpc_url,
            contract,
            key_dir,
        } => {
            let contract = lit_crypto::eth::Address::parse(contract)
                .map_err(|e| format!("--contract: {e}"))?;
            let register = match key_dir {
                Some(dir) => {
                    let key = StakerKey::load_or_create(dir)
                        .map_err(|e| format!("the admin's key in {}: {e}", dir.display()))?;
                    EvmReleases::connect(rpc_url, contract, key.signing_key())
                }
                None => EvmReleases::open(rpc_url, contract),
            }
            .map_err(|e| e.to_string())?;
            Ok(Arc::new(register))
        }
    }
}

/// `lit-node release list`: every release of the register, active and revoked.
pub async fn release_list(at: &RegisterAt, json: bool) -> Result<(), String> {
    let releases = release_register(at)
        .await?
        .releases()
        .await
        .map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&releases).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if releases.is_empty() {
        println!("No releases: nodes of this network are refused by every verifier.");
    }
    for r in &releases {
        let t = r.min_tcb;
        let mut flags = Vec::new();
        if r.allow_debug {
            flags.push("debug");
        }
        if r.vcek_only {
            flags.push("vcek-only");
        }
        println!(
            "{}  {:<7}  min TCB fmc={} bl={} tee={} snp={} ucode={}  {}",
            hex::encode(r.measurement),
            if r.revoked { "revoked" } else { "active" },
            t.fmc,
            t.bootloader,
            t.tee,
            t.snp,
            t.microcode,
            flags.join(",")
        );
    }
    Ok(())
}

/// `lit-node release add`: approves a release (the admin).
pub async fn release_add(at: &RegisterAt, release: &Release) -> Result<(), String> {
    release_register(at)
        .await?
        .add_release(release)
        .await
        .map_err(|e| format!("add release {}: {e}", hex::encode(release.measurement)))?;
    println!(
        "Approved release {}: nodes running it are accepted from their next handshake.",
        hex::encode(release.measurement)
    );
    Ok(())
}

/// `lit-node release revoke`: revokes a release (the admin; final).
pub async fn release_revoke(at: &RegisterAt, measurement: &[u8; 48]) -> Result<(), String> {
    release_register(at)
        .await?
        .revoke_release(measurement)
        .await
        .map_err(|e| format!("revoke release {}: {e}", hex::encode(measurement)))?;
    println!(
        "Revoked release {}: clients and peers refuse nodes running it from their next \
         handshake.",
        hex::encode(measurement)
    );
    Ok(())
}

/// Parses a measurement given on the command line (96 hex digits, `0x` optional).
pub fn parse_measurement(s: &str) -> Result<[u8; 48], String> {
    let bytes = hex::decode(s.trim_start_matches("0x")).map_err(|e| format!("{s:?}: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("a measurement is 48 bytes (96 hex digits), not {}", b.len()))
}

/// Parses `--min-tcb snp=22,microcode=210` (components fmc, bootloader, tee, snp, microcode).
pub fn parse_min_tcb(s: &str) -> Result<MinTcb, String> {
    let mut tcb = MinTcb::default();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not COMPONENT=VALUE"))?;
        let value: u8 = value
            .parse()
            .map_err(|e| format!("{part:?}: {e} (a TCB component is 0 to 255)"))?;
        match name {
            "fmc" => tcb.fmc = value,
            "bootloader" | "bl" => tcb.bootloader = value,
            "tee" => tcb.tee = value,
            "snp" => tcb.snp = value,
            "microcode" | "ucode" => tcb.microcode = value,
            other => {
                return Err(format!(
                    "unknown TCB component {other:?} (fmc, bootloader, tee, snp, microcode)"
                ))
            }
        }
    }
    Ok(tcb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurements_and_tcbs_parse_with_clear_errors() {
        assert_eq!(parse_measurement(&"ab".repeat(48)).unwrap(), [0xab; 48]);
        assert_eq!(
            parse_measurement(&format!("0x{}", "01".repeat(48))).unwrap(),
            [1; 48]
        );
        assert!(parse_measurement("abcd").unwrap_err().contains("48 bytes"));
        assert!(parse_measurement("zz").is_err());
        let t = parse_min_tcb("snp=22,microcode=210,bl=3").unwrap();
        assert_eq!((t.snp, t.microcode, t.bootloader, t.fmc), (22, 210, 3, 0));
        assert!(parse_min_tcb("snp=300").unwrap_err().contains("0 to 255"));
        assert!(parse_min_tcb("gpu=1").unwrap_err().contains("unknown"));
    }

    #[test]
    fn prices_parse_by_product_name_and_keep_the_others() {
        let mut p = Prices([1, 2, 3, 4, 5]);
        parse_prices("decryption=7, pkp-sign=11,action-host-call=0", &mut p).unwrap();
        assert_eq!(p, Prices([7, 11, 3, 4, 0]));
        assert!(parse_prices("gpu=1", &mut p)
            .unwrap_err()
            .contains("unknown product"));
        assert!(parse_prices("decryption", &mut p)
            .unwrap_err()
            .contains("PRODUCT=PRICE"));
        assert!(parse_prices("decryption=-1", &mut p).is_err());
        assert_eq!(p, Prices([7, 11, 3, 4, 0]));
        // the names clients read prices by (`/v1/ledger`), in the ledger's order
        for (i, (name, product)) in PRODUCT_NAMES.iter().enumerate() {
            assert_eq!(
                (*product as usize, *name),
                (i, lit_api::ledger::PRODUCTS[i])
            );
        }
    }

    #[test]
    fn token_amounts_print_as_decimals() {
        assert_eq!(tokens(0), "0.0");
        assert_eq!(tokens(1000 * TOKEN), "1000.0");
        assert_eq!(tokens(TOKEN / 2 + 3 * TOKEN), "3.5");
        assert_eq!(tokens(1), "0.000000000000000001");
    }
}
