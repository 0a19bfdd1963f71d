//! The network file (`network.json`): who the members of a network are and how to reach them.
//!
//! `lit-node devnet` writes it; every node reads it to find its peers (and itself), and clients
//! read it to find the nodes. Keys are pinned here, so a node or client refuses a peer whose
//! envelope or handshake is signed by another key.
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "devnet",
//!   "threshold": 4,
//!   "attestation": "simulated",
//!   "releases": {"kind": "embedded", "path": "/tmp/devnet/chain.sqlite"},
//!   "nodes": [
//!     {"partyId": 1, "url": "http://127.0.0.1:7471",
//!      "identityKey": "<ed25519, 32 bytes hex>", "sealKey": "<x25519, 32 bytes hex>",
//!      "dkgKey": "<secp256k1 SEC1 compressed, 33 bytes hex>"}
//!   ]
//! }
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Bytes, Bytes32};

/// The only network-file version this crate reads and writes.
pub const NETWORK_FILE_VERSION: u32 = 1;

/// How the members of a network attest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttestationMode {
    /// Development networks: evidence that says it is not hardware.
    Simulated,
    /// AMD SEV-SNP guests.
    SevSnp,
}

/// Where a network's approved software releases are: its release register. Clients build
/// their attestation policy from it (`lit_attest::Policy::with_releases`); a node that runs a
/// release not listed there, or revoked, is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum ReleaseSource {
    /// The `ReleaseRegister` contract on an EVM chain.
    #[serde(rename_all = "camelCase")]
    Evm {
        /// A JSON-RPC endpoint of the chain.
        rpc_url: String,
        /// The contract's address (hex).
        contract: String,
    },
    /// The embedded chain of a one-machine devnet: the SQLite file its nodes share.
    Embedded {
        /// The file (absolute, or relative to the network file's folder).
        path: String,
    },
    /// A static network (no chain): the network file itself lists the approved releases.
    Listed {
        /// The releases.
        releases: Vec<lit_attest::Release>,
    },
}

/// One member of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkNode {
    /// Its party id (Shamir evaluation point), unique and non-zero.
    pub party_id: u32,
    /// Its base URL, e.g. `http://127.0.0.1:7471`.
    pub url: String,
    /// Its ed25519 identity key (signs envelopes and handshakes).
    pub identity_key: Bytes32,
    /// Its X25519 key (peers seal private payloads to it).
    pub seal_key: Bytes32,
    /// Its secp256k1 key for the DKG's signed broadcasts (SEC1 compressed, 33 bytes).
    pub dkg_key: Bytes,
}

/// The network file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkFile {
    /// [`NETWORK_FILE_VERSION`].
    pub version: u32,
    /// A name for humans and for domain separation of the network's sessions.
    pub name: String,
    /// The SIWE `domain` that wallets sign in to (an RFC 3986 authority, e.g. `lit.example.org`);
    /// absent: `<name>.lit`. Nodes accept only capabilities for this domain, so a sign-in made
    /// for another website or another network is worthless here. See [`NetworkFile::domain`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Shares needed to combine (the epoch-1 DKG threshold).
    pub threshold: u32,
    /// How members attest.
    pub attestation: AttestationMode,
    /// The release register (absent: a client accepts only the releases or measurements its
    /// own policy lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleaseSource>,
    /// The members.
    pub nodes: Vec<NetworkNode>,
}

/// Why a network file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkFileError {
    /// Not JSON of the expected shape.
    #[error("network file is malformed: {0}")]
    Malformed(String),
    /// Well-formed but inconsistent.
    #[error("network file is invalid: {0}")]
    Invalid(String),
}

impl NetworkFile {
    /// Parses and checks a network file: known version, at least one node, distinct non-zero
    /// party ids, URLs and keys, and a threshold with `n/2 < T <= n` (or `T = n = 1`).
    pub fn parse(text: &str) -> Result<Self, NetworkFileError> {
        let file: NetworkFile =
            serde_json::from_str(text).map_err(|e| NetworkFileError::Malformed(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    /// The checks of [`NetworkFile::parse`].
    pub fn check(&self) -> Result<(), NetworkFileError> {
        let invalid = |m: String| Err(NetworkFileError::Invalid(m));
        if self.version != NETWORK_FILE_VERSION {
            return invalid(format!("version {} is not supported", self.version));
        }
        let domain = self.domain();
        if !crate::siwe::is_authority(&domain) {
            return invalid(format!(
                "the SIWE domain {domain:?} is not a host name (name the network with letters, \
                 digits and dashes, or set `domain`)"
            ));
        }
        let n = self.nodes.len();
        if n == 0 {
            return invalid("no nodes".into());
        }
        let t = self.threshold as usize;
        if t == 0 || t > n || (n > 1 && 2 * t <= n) {
            return invalid(format!("threshold {t} is not valid for {n} nodes"));
        }
        let mut ids = BTreeSet::new();
        let mut urls = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for node in &self.nodes {
            if node.party_id == 0 || !ids.insert(node.party_id) {
                return invalid(format!("party id {} is zero or repeated", node.party_id));
            }
            if !(node.url.starts_with("http://") || node.url.starts_with("https://")) {
                return invalid(format!("url {:?} is not http(s)", node.url));
            }
            if !urls.insert(node.url.trim_end_matches('/').to_string()) {
                return invalid(format!("url {} is repeated", node.url));
            }
            if !keys.insert(node.identity_key) {
                return invalid(format!(
                    "identity key of node {} is repeated",
                    node.party_id
                ));
            }
            if node.dkg_key.0.len() != 33 {
                return invalid(format!("dkg key of node {} is not 33 bytes", node.party_id));
            }
        }
        Ok(())
    }

    /// The SIWE `domain` of the network's sign-ins: `domain`, or `<name>.lit`.
    pub fn domain(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None => format!("{}.lit", self.name),
        }
    }

    /// The node with this party id.
    pub fn node(&self, party_id: u32) -> Option<&NetworkNode> {
        self.nodes.iter().find(|n| n.party_id == party_id)
    }

    /// The base URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u32, t: u32) -> NetworkFile {
        NetworkFile {
            version: 1,
            name: "test".into(),
            domain: None,
            threshold: t,
            attestation: AttestationMode::Simulated,
            releases: None,
            nodes: (1..=n)
                .map(|i| NetworkNode {
                    party_id: i,
                    url: format!("http://127.0.0.1:{}", 7000 + i),
                    identity_key: Bytes32([i as u8; 32]),
                    seal_key: Bytes32([i as u8; 32]),
                    dkg_key: Bytes(vec![2; 33]),
                })
                .collect(),
        }
    }

    #[test]
    fn release_sources_round_trip_and_unknown_kinds_are_refused() {
        let sources = [
            ReleaseSource::Evm {
                rpc_url: "http://127.0.0.1:8545".into(),
                contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
            },
            ReleaseSource::Embedded {
                path: "chain.sqlite".into(),
            },
            ReleaseSource::Listed {
                releases: vec![lit_attest::Release::new([7; 48])],
            },
        ];
        for source in sources {
            let mut f = file(5, 4);
            f.releases = Some(source);
            let text = serde_json::to_string(&f).unwrap();
            assert_eq!(NetworkFile::parse(&text).unwrap(), f, "{text}");
        }
        let text = serde_json::to_string(&file(5, 4)).unwrap().replacen(
            '{',
            r#"{"releases":{"kind":"ipfs","cid":"Qm"},"#,
            1,
        );
        assert!(matches!(
            NetworkFile::parse(&text),
            Err(NetworkFileError::Malformed(_))
        ));
    }

    #[test]
    fn roundtrip_and_checks() {
        let f = file(5, 4);
        let text = serde_json::to_string_pretty(&f).unwrap();
        assert_eq!(NetworkFile::parse(&text).unwrap(), f);
        assert!(text.contains("\"partyId\": 1"));
        for (bad, why) in [
            (file(5, 2), "threshold"),
            (file(5, 6), "threshold"),
            (file(0, 1), "no nodes"),
        ] {
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let mut dup = file(3, 2);
        dup.nodes[1].party_id = 1;
        assert!(dup.check().is_err());
        let mut dup = file(3, 2);
        dup.nodes[2].url = dup.nodes[0].url.clone();
        assert!(dup.check().is_err());
        let mut extra = serde_json::to_value(file(1, 1)).unwrap();
        extra["surprise"] = serde_json::json!(1);
        assert!(matches!(
            NetworkFile::parse(&extra.to_string()),
            Err(NetworkFileError::Malformed(_))
        ));
    }
}
