//! Real node processes on loopback for tests: a devnet folder in a temporary directory, one
//! `lit-node run` process per node (the binary cargo built for this test), kill and restart.
//! Also raw wire helpers: wallets, auth signatures, and requests built by hand, so tests can
//! send exactly the bad input they mean to.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k256::ecdsa::SigningKey;
use lit_api::siwe::SiweMessage;
use lit_api::v1::{AuthSig, DERIVED_VIA_PERSONAL_SIGN};
use lit_crypto::eth::{personal_sign, Address};
use lit_node::devnet::{self, Layout, LayoutOptions, NodeProcess};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A running test network.
pub struct TestNet {
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    pub procs: BTreeMap<u32, NodeProcess>,
    faults: BTreeMap<u32, String>,
}

fn command(fault: Option<String>) -> impl Fn() -> Command {
    move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lit-node"));
        c.arg("run");
        c.env("RUST_LOG", "info");
        match &fault {
            Some(f) => c.env(lit_node::node::DEV_FAULT_ENV, f),
            None => c.env_remove(lit_node::node::DEV_FAULT_ENV),
        };
        c
    }
}

impl TestNet {
    /// Starts `n` nodes and waits until all have finished the DKG.
    pub async fn start(n: usize, options: LayoutOptions) -> Self {
        Self::start_with_faults(n, options, BTreeMap::new()).await
    }

    /// Like [`TestNet::start`], with development faults per node (see `DEV_FAULT_ENV`).
    pub async fn start_with_faults(
        n: usize,
        options: LayoutOptions,
        faults: BTreeMap<u32, String>,
    ) -> Self {
        Self::start_some(n, options, faults, &[]).await
    }

    /// Lays out `n` nodes but starts only those not in `absent`.
    pub async fn start_some(
        n: usize,
        options: LayoutOptions,
        faults: BTreeMap<u32, String>,
        absent: &[u32],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // background presignature pools only where a test asks for them
        let options = LayoutOptions {
            presignature_pool: Some(options.presignature_pool.unwrap_or(0)),
            ..options
        };
        let layout = devnet::layout(dir.path(), n, &options).unwrap();
        let mut net = TestNet {
            dir,
            layout,
            procs: BTreeMap::new(),
            faults,
        };
        let ids: Vec<u32> = net
            .layout
            .configs
            .keys()
            .copied()
            .filter(|id| !absent.contains(id))
            .collect();
        for id in ids {
            net.spawn(id);
        }
        net.wait_ready().await;
        net
    }

    fn spawn(&mut self, id: u32) {
        let cmd = command(self.faults.get(&id).cloned());
        let p = devnet::spawn_node(&self.layout, id, &cmd).unwrap();
        self.procs.insert(id, p);
    }

    /// Waits until every node without an injected fault serves (faulty nodes may abort).
    async fn wait_ready(&mut self) {
        let all = std::mem::take(&mut self.procs);
        let (mut procs, faulty): (Vec<NodeProcess>, Vec<NodeProcess>) = all
            .into_values()
            .partition(|p| !self.faults.contains_key(&p.party_id));
        let r = devnet::wait_ready(&mut procs, Duration::from_secs(120), |_, _| {}).await;
        self.procs = procs
            .into_iter()
            .chain(faulty)
            .map(|p| (p.party_id, p))
            .collect();
        if let Err(e) = r {
            for id in self.layout.configs.keys() {
                eprintln!("--- node {id} log ---\n{}", self.log(*id));
            }
            panic!("devnet did not become ready: {e}");
        }
    }

    /// Node `id`'s base URL.
    pub fn url(&self, id: u32) -> String {
        self.layout.network.node(id).unwrap().url.clone()
    }

    /// Kills node `id` (no clean shutdown, like a crash).
    pub fn kill(&mut self, id: u32) {
        if let Some(mut p) = self.procs.remove(&id) {
            p.kill();
        }
    }

    /// Restarts node `id` with its data folder and waits until it serves.
    pub async fn restart(&mut self, id: u32) {
        self.spawn(id);
        self.wait_ready().await;
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: u32) -> String {
        std::fs::read_to_string(self.layout.node_dir(id).join("node.log")).unwrap_or_default()
    }

    /// The network file.
    pub fn network_file(&self) -> std::path::PathBuf {
        self.layout.network_file()
    }
}

/// A wallet from a fixed seed byte.
pub fn wallet(seed: u8) -> (SigningKey, Address) {
    let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let address = Address::from_public_key(key.verifying_key());
    (key, address)
}

/// An EIP-4361 message for `address`, valid from `issued` until `expires`.
pub fn siwe(address: &Address, issued: OffsetDateTime, expires: OffsetDateTime) -> String {
    SiweMessage {
        statement: Some("Decrypt with Lit.".into()),
        expiration_time: Some(expires.try_into().unwrap()),
        ..SiweMessage::new(
            "localhost",
            *address,
            "lit:session:test",
            1,
            "abcdef123456",
            issued.try_into().unwrap(),
        )
    }
    .to_string()
}

/// A wallet-signed auth valid for `ttl` seconds from now (negative: already expired).
pub fn auth_sig(key: &SigningKey, ttl: i64) -> AuthSig {
    let address = Address::from_public_key(key.verifying_key());
    let now = OffsetDateTime::now_utc();
    let message = siwe(
        &address,
        now - time::Duration::minutes(10),
        now + time::Duration::seconds(ttl),
    );
    let sig = personal_sign(key, message.as_bytes()).unwrap();
    AuthSig {
        sig: format!("0x{}", hex::encode(sig)),
        derived_via: DERIVED_VIA_PERSONAL_SIGN.into(),
        signed_message: message,
        address: address.to_checksum(),
    }
}

/// `[:userAddress == address]`, a condition that needs no chain call.
pub fn user_is(address: &Address) -> Value {
    json!([{"conditionType": "evmBasic", "contractAddress": "", "standardContractType": "",
            "chain": "anvil", "method": "", "parameters": [":userAddress"],
            "returnValueTest": {"comparator": "=", "value": address.to_checksum()}}])
}

/// POSTs a raw body; returns the status and the parsed JSON (or the text as a JSON string).
pub async fn post_raw(url: &str, path: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// POSTs JSON.
pub async fn post(url: &str, path: &str, body: &Value) -> (u16, Value) {
    post_raw(url, path, body.to_string()).await
}

/// The error code of an error envelope.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error envelope: {body}"))
}
