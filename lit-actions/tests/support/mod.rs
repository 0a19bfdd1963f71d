//! Shared test support: a recording `ActionHost`, engine constructors, a local HTTP server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lit_actions::host::{
    action_key_id, ActionSignature, BroadcastAndCollect, CallAction, CalledAction, CheckConditions,
    DecryptAndCombine, Encrypt, Encrypted, EthPersonalSign, RunOnce, RunOnceRole, SignAsAction,
    SignEcdsa, SigningScheme,
};
use lit_actions::{
    ActionContext, ActionHost, DenoConfig, DenoEngine, Engine, EngineConfig, HostError, Limits,
    QuickJsEngine,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One call the host received, as JSON `{"call": name, ...args}`.
pub type Record = Value;

/// A host that records every call and answers deterministically from the arguments.
#[derive(Default)]
pub struct RecordingHost {
    pub calls: Mutex<Vec<Record>>,
    /// `runOnce`: `None` = this node runs it; `Some(r)` = another node did, with result `r`.
    pub run_once_result: Option<String>,
    /// Delay of every call (to exercise concurrency and time limits).
    pub delay: Option<Duration>,
    /// What `Lit.Actions.call` runs: an engine and uploaded code, shared with child hosts.
    pub children: Arc<Children>,
}

/// The engine and the code store behind `Lit.Actions.call` in tests.
#[derive(Default)]
pub struct Children {
    pub engine: std::sync::OnceLock<Arc<dyn Engine>>,
    pub code: Mutex<std::collections::BTreeMap<String, String>>,
}

/// The test host's root secp256k1 key, from which action keys are derived as the node derives
/// them (`sk = sk_root + H(key_id)`).
pub fn root_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
}

/// The secret key of an action's own key under [`root_key`].
pub fn action_key(id: &lit_actions::ActionId) -> k256::ecdsa::SigningKey {
    let tweak = lit_crypto::ecdsa::pkp_tweak(&action_key_id(id)).unwrap();
    let sk = *root_key().as_nonzero_scalar().as_ref() + tweak;
    k256::ecdsa::SigningKey::from_bytes(&sk.to_bytes()).unwrap()
}

impl RecordingHost {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Uploads child code for `Lit.Actions.call` (run with `engine`); returns its id.
    pub fn upload(&self, engine: &Arc<dyn Engine>, code: &str) -> String {
        let _ = self.children.engine.set(engine.clone());
        let id = lit_actions::ActionId::of(code.as_bytes()).to_string();
        self.children
            .code
            .lock()
            .unwrap()
            .insert(id.clone(), code.to_owned());
        id
    }

    pub fn calls(&self) -> Vec<Record> {
        self.calls.lock().unwrap().clone()
    }

    async fn record(&self, call: &str, ctx: &ActionContext, args: Value) {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let mut rec = json!({ "call": call, "action": ctx.action_id.to_string() });
        if let (Some(r), Value::Object(a)) = (rec.as_object_mut(), args) {
            r.extend(a);
        }
        self.calls.lock().unwrap().push(rec);
    }
}

/// Hex of sha256(data), the deterministic "result" of several calls.
pub fn digest_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl ActionHost for RecordingHost {
    async fn sign_ecdsa(&self, ctx: &ActionContext, req: SignEcdsa) -> Result<(), HostError> {
        if req.public_key == "0xbad" {
            return Err(HostError::Rejected("unknown PKP 0xbad".into()));
        }
        self.record("signEcdsa", ctx, serde_json::to_value(&req).unwrap())
            .await;
        Ok(())
    }
    async fn sign_and_combine_ecdsa(
        &self,
        ctx: &ActionContext,
        req: SignEcdsa,
    ) -> Result<String, HostError> {
        self.record(
            "signAndCombineEcdsa",
            ctx,
            serde_json::to_value(&req).unwrap(),
        )
        .await;
        Ok(json!({ "sig": digest_hex(&req.to_sign), "name": req.sig_name }).to_string())
    }
    async fn check_conditions(
        &self,
        ctx: &ActionContext,
        req: CheckConditions,
    ) -> Result<bool, HostError> {
        self.record("checkConditions", ctx, serde_json::to_value(&req).unwrap())
            .await;
        Ok(req.chain == "ethereum")
    }
    async fn decrypt_and_combine(
        &self,
        ctx: &ActionContext,
        req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        self.record(
            "decryptAndCombine",
            ctx,
            serde_json::to_value(&req).unwrap(),
        )
        .await;
        Ok(format!("plain:{}", req.ciphertext))
    }
    async fn encrypt(&self, ctx: &ActionContext, req: Encrypt) -> Result<Encrypted, HostError> {
        self.record("encrypt", ctx, serde_json::to_value(&req).unwrap())
            .await;
        Ok(Encrypted::new(
            hex(&req.to_encrypt),
            digest_hex(&req.to_encrypt),
        ))
    }
    async fn get_rpc_url(&self, ctx: &ActionContext, chain: &str) -> Result<String, HostError> {
        self.record("getRpcUrl", ctx, json!({ "chain": chain }))
            .await;
        match chain {
            "ethereum" => Ok("https://eth.example/rpc".into()),
            other => Err(HostError::Rejected(format!("no RPC for chain {other}"))),
        }
    }
    async fn run_once(&self, ctx: &ActionContext, req: RunOnce) -> Result<RunOnceRole, HostError> {
        self.record("runOnce", ctx, serde_json::to_value(&req).unwrap())
            .await;
        Ok(match &self.run_once_result {
            None => RunOnceRole::Run,
            Some(r) => RunOnceRole::Wait {
                result: req.wait_for_response.then(|| r.clone()),
            },
        })
    }
    async fn run_once_result(
        &self,
        ctx: &ActionContext,
        name: &str,
        result: &str,
    ) -> Result<(), HostError> {
        self.record(
            "runOnceResult",
            ctx,
            json!({ "name": name, "result": result }),
        )
        .await;
        Ok(())
    }
    async fn eth_personal_sign(
        &self,
        ctx: &ActionContext,
        req: EthPersonalSign,
    ) -> Result<(), HostError> {
        self.record(
            "ethPersonalSignMessageEcdsa",
            ctx,
            serde_json::to_value(&req).unwrap(),
        )
        .await;
        Ok(())
    }
    async fn action_public_key(
        &self,
        _ctx: &ActionContext,
        scheme: SigningScheme,
        action: &lit_actions::ActionId,
    ) -> Result<Vec<u8>, HostError> {
        assert_eq!(scheme, SigningScheme::EcdsaK256Sha256);
        Ok(action_key(action)
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec())
    }
    async fn sign_as_action(
        &self,
        ctx: &ActionContext,
        req: SignAsAction,
    ) -> Result<ActionSignature, HostError> {
        self.record(
            "signAsAction",
            ctx,
            json!({ "toSign": req.to_sign, "sigName": req.sig_name }),
        )
        .await;
        let key = action_key(&ctx.action_id);
        let (sig, rid) = key.sign_prehash_recoverable(&req.to_sign).unwrap();
        let digest: [u8; 32] = req.to_sign.as_slice().try_into().unwrap();
        let rs: [u8; 64] = sig.to_bytes().into();
        Ok(ActionSignature::new(
            &rs,
            rid.to_byte(),
            key.verifying_key().to_encoded_point(false).as_bytes(),
            &digest,
        ))
    }
    async fn get_latest_nonce(
        &self,
        ctx: &ActionContext,
        address: &str,
        chain: &str,
    ) -> Result<String, HostError> {
        self.record(
            "getLatestNonce",
            ctx,
            json!({ "address": address, "chain": chain }),
        )
        .await;
        match chain {
            "ethereum" => Ok("0x2a".into()),
            other => Err(HostError::Rejected(format!("no RPC for chain {other}"))),
        }
    }
    async fn call_action(
        &self,
        ctx: &ActionContext,
        req: CallAction,
    ) -> Result<CalledAction, HostError> {
        self.record(
            "call",
            ctx,
            json!({ "ipfsId": req.ipfs_id.to_string(), "params": req.params }),
        )
        .await;
        let id = req.ipfs_id.to_string();
        let code = self.children.code.lock().unwrap().get(&id).cloned();
        let code = code.ok_or_else(|| HostError::Rejected(format!("no action {id}")))?;
        let engine = self.children.engine.get().unwrap().clone();
        let child = lit_actions::Action::with_id(&id, code)
            .unwrap()
            .with_params(req.params)
            .with_auth(req.auth)
            .with_budget(req.budget)
            .with_headers(req.headers);
        let host = Arc::new(RecordingHost {
            children: self.children.clone(),
            ..RecordingHost::default()
        });
        let out = engine
            .run(&child, host)
            .await
            .map_err(|e| HostError::Rejected(format!("the child action failed: {e}")))?;
        Ok(CalledAction::new(out.response, out.usage))
    }
    async fn decrypt_to_single_node(
        &self,
        ctx: &ActionContext,
        req: DecryptAndCombine,
    ) -> Result<String, HostError> {
        self.record(
            "decryptToSingleNode",
            ctx,
            serde_json::to_value(&req).unwrap(),
        )
        .await;
        Ok(format!("single:{}", req.ciphertext))
    }
    async fn broadcast_and_collect(
        &self,
        ctx: &ActionContext,
        req: BroadcastAndCollect,
    ) -> Result<Vec<String>, HostError> {
        self.record(
            "broadcastAndCollect",
            ctx,
            serde_json::to_value(&req).unwrap(),
        )
        .await;
        Ok(vec![
            req.value.clone(),
            format!("{}-peer1", req.value),
            format!("{}-peer2", req.value),
        ])
    }
}

/// Test limits: everything default but a 5 s time limit and a 64 MB heap.
pub fn limits() -> Limits {
    Limits::default()
        .with_time(Duration::from_secs(5))
        .with_memory_bytes(64 * 1024 * 1024)
}

pub type MakeEngine = fn(EngineConfig) -> Arc<dyn Engine>;

pub fn quickjs(config: EngineConfig) -> Arc<dyn Engine> {
    Arc::new(QuickJsEngine::new(config).unwrap())
}

/// The Deno engine, cold (no pool). Fails loudly when Deno is not installed.
pub fn deno(config: EngineConfig) -> Arc<dyn Engine> {
    Arc::new(deno_engine(DenoConfig::new(config).with_pool_size(0)))
}

/// The Deno engine with a warm pool.
pub fn deno_pooled(config: EngineConfig) -> Arc<dyn Engine> {
    Arc::new(deno_engine(DenoConfig::new(config).with_pool_size(2)))
}

fn deno_engine(config: DenoConfig) -> DenoEngine {
    if lit_actions::engine::deno::find_deno().is_none() {
        panic!(
            "the deno binary is not installed: run ./test.sh once (it installs .tools/bin/deno), \
             or set LIT_DENO to a deno binary"
        );
    }
    DenoEngine::new(config).unwrap()
}

/// A tiny HTTP server on 127.0.0.1 answering every request with `body`; returns its port.
pub fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let first = String::from_utf8_lossy(&req);
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = format!("{body} {path}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-test: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = s.write_all(resp.as_bytes());
            });
        }
    });
    port
}
