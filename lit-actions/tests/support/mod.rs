//! Shared test support: a recording `ActionHost`, engine constructors, a local HTTP server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lit_actions::host::{
    BroadcastAndCollect, CheckConditions, DecryptAndCombine, Encrypt, Encrypted, RunOnce,
    RunOnceRole, SignEcdsa,
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
}

impl RecordingHost {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
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
