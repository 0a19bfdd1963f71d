//! The software a network approves: its release register, read where the network file says
//! it is ([`ReleaseSource`]), becomes the releases of the client's attestation policy.
//!
//! The register is read at every handshake (at [`crate::LitClient::connect`] and each time the
//! client handshakes again), so a release the admin revokes is refused from the next one on.

use std::path::Path;

use alloy_provider::{Provider, ProviderBuilder};
use lit_api::network::ReleaseSource;
use lit_attest::{MinTcb, Release};
use lit_crypto::eth::Address;

use crate::ClientError;

mod binding {
    #![allow(missing_docs)]
    alloy_sol_types::sol!(
        #[sol(rpc)]
        ReleaseRegister,
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../contracts/out/ReleaseRegister.json"
        )
    );
}

/// The releases of the register at `source` (`network_dir`: the network file's folder, for a
/// relative path), revoked ones included.
pub async fn read_releases(
    source: &ReleaseSource,
    network_dir: &Path,
) -> Result<Vec<Release>, ClientError> {
    match source {
        ReleaseSource::Listed { releases } => Ok(releases.clone()),
        ReleaseSource::Embedded { path } => {
            let path = network_dir.join(path);
            tokio::task::spawn_blocking(move || read_embedded(&path))
                .await
                .map_err(|e| chain_error(format!("reading the release register: {e}")))?
        }
        ReleaseSource::Evm { rpc_url, contract } => read_evm(rpc_url, contract).await,
    }
}

fn chain_error(message: String) -> ClientError {
    ClientError::Chain {
        message,
        refused: None,
    }
}

/// The embedded chain keeps the whole contract state as one JSON document in its `staking`
/// table (`lit_node::chain::embedded`); the register is its `releases` field.
fn read_embedded(path: &Path) -> Result<Vec<Release>, ClientError> {
    #[derive(serde::Deserialize)]
    struct Ledger {
        #[serde(default)]
        releases: Vec<Release>,
    }
    let failed = |e: String| {
        chain_error(format!(
            "the release register of the embedded chain {}: {e}",
            path.display()
        ))
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failed(e.to_string()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| failed(e.to_string()))?;
    let text: String = conn
        .query_row("SELECT ledger FROM staking WHERE id = 1", [], |r| r.get(0))
        .map_err(|e| failed(e.to_string()))?;
    let ledger: Ledger = serde_json::from_str(&text).map_err(|e| failed(e.to_string()))?;
    Ok(ledger.releases)
}

async fn read_evm(rpc_url: &str, contract: &str) -> Result<Vec<Release>, ClientError> {
    let url: reqwest_alloy::Url = rpc_url
        .parse()
        .map_err(|e| ClientError::Config(format!("release register RPC URL: {e}")))?;
    let contract = Address::parse(contract)
        .map_err(|e| ClientError::Config(format!("release register address: {e}")))?;
    // alloy's reqwest has rustls without a provider (see the workspace manifest)
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url)
        .erased();
    let register = binding::ReleaseRegister::new(contract.0.into(), provider);
    let list = register.releases().call().await.map_err(|e| {
        chain_error(format!(
            "reading the release register at {contract} (is the network file's RPC URL \
             right?): {e}"
        ))
    })?;
    list.into_iter()
        .map(|r| {
            let measurement: [u8; 48] = r.measurement.as_ref().try_into().map_err(|_| {
                chain_error(format!(
                    "the release register at {contract} holds a {}-byte measurement",
                    r.measurement.len()
                ))
            })?;
            let mut release = Release::new(measurement).with_flags(r.flags);
            release.min_tcb = MinTcb {
                fmc: r.minTcb.fmc,
                bootloader: r.minTcb.bootloader,
                tee: r.minTcb.tee,
                snp: r.minTcb.snp,
                microcode: r.minTcb.microcode,
            };
            release.revoked = r.revoked;
            Ok(release)
        })
        .collect()
}
