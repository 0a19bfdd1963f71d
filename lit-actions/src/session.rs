//! The engine-neutral host side of one running action: every message the sandbox sends goes
//! through [`Session::receive`], which checks arguments and limits and calls the [`ActionHost`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::action::{total_host_calls, Action, ActionOutcome, Usage};
use crate::error::{ActionError, HostError};
use crate::host::{
    ActionContext, ActionHost, ActionSignature, BroadcastAndCollect, CallAction, CheckConditions,
    DecryptAndCombine, Encrypt, EthPersonalSign, RunOnce, RunOnceRole, SignAsAction, SignEcdsa,
    SigningScheme, MAX_CALL_DEPTH,
};
use crate::limits::{Budget, Limits};
use crate::net::{Fetcher, NetPolicy};

/// What the engine does after a message.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing to answer (a notification).
    Continue,
    /// Answer call `id` (`Ok` resolves the promise, `Err` rejects it with that message).
    Reply(u64, Result<Value, String>),
    /// The action finished (`Ok`) or threw (`Err`).
    Done(Result<ActionOutcome, ActionError>),
    /// A limit was hit or the protocol broken: end the action now.
    Fatal(ActionError),
}

#[derive(Default)]
struct State {
    response: Option<String>,
    logs: String,
    /// Per kind, with the calls of child actions (`Lit.Actions.call`) added.
    calls: BTreeMap<String, u32>,
    signatures: u32,
    fetches: u32,
    run_once_granted: BTreeSet<String>,
}

impl State {
    /// The billable host calls so far ([`Usage::total_host_calls`]).
    fn total_host_calls(&self) -> u64 {
        total_host_calls(self.signatures, self.fetches, self.calls.values().copied())
    }
}

/// A message from the sandbox, read.
pub(crate) enum Received {
    /// Handled; what to do next.
    Step(Step),
    /// A call to answer.
    Call {
        /// The call's id.
        id: u64,
        /// The operation.
        op: String,
        /// Its arguments.
        args: Value,
    },
}

/// What a sandbox sends to the driver.
pub(crate) enum FromSandbox {
    /// One message (JSON).
    Message(Vec<u8>),
    /// The sandbox ended without sending `done`.
    Exited(ActionError),
}

/// Runs the host side of an action until it finishes: reads messages from `rx`, answers calls
/// concurrently through `reply` (one JSON text per answer), enforces [`Session::deadline`].
pub(crate) async fn drive(
    session: Arc<Session>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<FromSandbox>,
    mut reply: impl FnMut(String) -> bool,
    engine: &'static str,
) -> Result<ActionOutcome, ActionError> {
    let mut calls = tokio::task::JoinSet::new();
    let deadline = tokio::time::Instant::now()
        + session
            .deadline()
            .saturating_duration_since(std::time::Instant::now());
    let timeout = session.time_up();
    loop {
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(deadline) => return Err(timeout),
            Some(done) = calls.join_next(), if !calls.is_empty() => match done {
                Ok(Step::Reply(id, result)) => {
                    let text = match result {
                        Ok(value) => json!({"id": id, "ok": true, "value": value}),
                        Err(error) => json!({"id": id, "ok": false, "error": error}),
                    };
                    // A closed channel means the sandbox is gone; its exit message follows.
                    let _ = reply(text.to_string());
                }
                Ok(Step::Fatal(e)) => return Err(e),
                Ok(_) => {}
                Err(e) => {
                    return Err(ActionError::Engine { engine, reason: format!("host call failed: {e}") })
                }
            },
            msg = rx.recv() => match msg {
                None => {
                    return Err(ActionError::Engine {
                        engine,
                        reason: "the sandbox ended without finishing".into(),
                    })
                }
                Some(FromSandbox::Exited(e)) => return Err(e),
                Some(FromSandbox::Message(bytes)) => match session.receive(&bytes) {
                    Received::Step(Step::Continue) | Received::Step(Step::Reply(..)) => {}
                    Received::Step(Step::Done(result)) => return result,
                    Received::Step(Step::Fatal(e)) => return Err(e),
                    Received::Call { id, op, args } => {
                        let s = session.clone();
                        calls.spawn(async move { s.answer(id, &op, args).await });
                    }
                },
            },
        }
    }
}

/// One running action's host side.
pub(crate) struct Session {
    ctx: ActionContext,
    host: Arc<dyn ActionHost>,
    limits: Limits,
    /// The action's budget, which lowers `limits`.
    budget: Budget,
    net: NetPolicy,
    fetcher: Option<Fetcher>,
    state: Mutex<State>,
    started: std::time::Instant,
    /// `Lit.Headers`: what the caller passed.
    headers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Message {
    op: String,
    #[serde(default)]
    id: u64,
    #[serde(default)]
    args: Value,
}

#[derive(Deserialize)]
struct ScriptFailure {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    stack: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainArg {
    chain: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublicKeyArg {
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenIdArg {
    /// 64 hex digits (the prelude normalises Lit's decimal and `0x` forms).
    token_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ActionKeyArg {
    signing_scheme: String,
    action_ipfs_cid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignAsActionArg {
    to_sign: Vec<u8>,
    sig_name: String,
    signing_scheme: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyActionSignatureArg {
    signing_scheme: String,
    action_ipfs_cid: String,
    to_sign: Vec<u8>,
    sign_output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatestNonceArg {
    address: String,
    chain: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AesDecryptArg {
    symmetric_key: Vec<u8>,
    ciphertext: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CallArg {
    ipfs_id: String,
    #[serde(default)]
    params: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClaimKeyArg {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOnceResultArg {
    name: String,
    result: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SleepArg {
    ms: u64,
}

impl Session {
    pub(crate) fn new(
        action: &Action,
        host: Arc<dyn ActionHost>,
        limits: Limits,
        net: NetPolicy,
        fetcher: Option<Fetcher>,
    ) -> Self {
        Self {
            ctx: ActionContext {
                action_id: action.id().clone(),
                auth: action.auth(),
            },
            host,
            limits,
            budget: action.budget().clone(),
            net,
            fetcher,
            state: Mutex::new(State::default()),
            started: std::time::Instant::now(),
            headers: action.headers().clone(),
        }
    }

    /// When the action must have ended: the session's start plus the engine's time limit, lowered
    /// by the budget. Each engine stops the action then, with [`Session::time_up`].
    pub(crate) fn deadline(&self) -> std::time::Instant {
        self.started + self.budget.time_allowed(&self.limits)
    }

    /// The error of an action still running at the deadline.
    pub(crate) fn time_up(&self) -> ActionError {
        self.budget.time_up(&self.limits)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The outcome so far (used when the action ends, `duration` after the session started).
    fn outcome(&self, duration: Duration) -> ActionOutcome {
        let st = self.state();
        ActionOutcome {
            response: st.response.clone(),
            logs: st.logs.clone(),
            usage: Usage {
                duration,
                signatures: st.signatures,
                fetches: st.fetches,
                host_calls: st.calls.clone(),
                response_bytes: st.response.as_ref().map_or(0, String::len),
                log_bytes: st.logs.len(),
            },
        }
    }

    /// Reads one raw message from the sandbox: notifications are handled at once (in order);
    /// calls are returned to be answered, possibly concurrently, with [`Session::answer`].
    pub(crate) fn receive(&self, bytes: &[u8]) -> Received {
        if bytes.len() > self.limits.message_bytes {
            return Received::Step(Step::Fatal(ActionError::MessageTooLarge {
                size: bytes.len(),
                limit: self.limits.message_bytes,
            }));
        }
        let msg = match serde_json::from_slice::<Message>(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                return Received::Step(Step::Fatal(ActionError::SandboxViolation {
                    reason: format!("unreadable message: {e}"),
                }))
            }
        };
        match msg.op.as_str() {
            "log" => Received::Step(self.log(msg.args)),
            "setResponse" => Received::Step(self.set_response(msg.args)),
            "done" => Received::Step(self.done(msg.args)),
            _ if msg.id == 0 => Received::Step(Step::Fatal(ActionError::SandboxViolation {
                reason: format!("call {:?} without an id", msg.op),
            })),
            _ => Received::Call {
                id: msg.id,
                op: msg.op,
                args: msg.args,
            },
        }
    }

    /// Answers one call.
    pub(crate) async fn answer(&self, id: u64, op: &str, args: Value) -> Step {
        match self.call(op, args).await {
            Ok(v) => Step::Reply(id, Ok(v)),
            Err(CallError::Js(m)) => Step::Reply(id, Err(m)),
            Err(CallError::Fatal(e)) => Step::Fatal(e),
        }
    }

    fn log(&self, args: Value) -> Step {
        let text = match args.get("text").and_then(Value::as_str) {
            Some(t) => t,
            None => {
                return Step::Fatal(ActionError::SandboxViolation {
                    reason: "log message without text".into(),
                })
            }
        };
        let mut st = self.state();
        if st.logs.len() + text.len() + 1 > self.limits.log_bytes {
            return Step::Fatal(ActionError::LogsTooLarge {
                limit: self.limits.log_bytes,
            });
        }
        st.logs.push_str(text);
        st.logs.push('\n');
        Step::Continue
    }

    fn set_response(&self, args: Value) -> Step {
        let response = match args.get("response").and_then(Value::as_str) {
            Some(r) => r,
            None => {
                return Step::Fatal(ActionError::SandboxViolation {
                    reason: "setResponse message without a string response".into(),
                })
            }
        };
        if response.len() > self.limits.response_bytes {
            return Step::Fatal(ActionError::ResponseTooLarge {
                size: response.len(),
                limit: self.limits.response_bytes,
            });
        }
        self.state().response = Some(response.to_owned());
        Step::Continue
    }

    fn done(&self, args: Value) -> Step {
        let error = args.get("error").cloned().unwrap_or(Value::Null);
        if error.is_null() {
            let duration = self.started.elapsed();
            // The deadline may pass while this message waits to be read: with a time budget, an
            // action reported done has a duration below it (the caller is never charged more time
            // than it paid for). Without one, the engine's limit is enforced as it always was.
            if self.budget.time.is_some() && duration >= self.budget.time_allowed(&self.limits) {
                return Step::Fatal(self.time_up());
            }
            return Step::Done(Ok(self.outcome(duration)));
        }
        let f: ScriptFailure = serde_json::from_value(error).unwrap_or(ScriptFailure {
            name: String::new(),
            message: "an exception that is not an Error".into(),
            stack: String::new(),
        });
        Step::Done(Err(script_error(
            &f.name,
            &f.message,
            &f.stack,
            &self.limits,
        )))
    }

    // The three counters below count the billable host calls (`Budget::host_calls`): a call is
    // counted by one of them, after its arguments are read and before the host performs it.

    /// Counts a host call of `kind` (its JavaScript name).
    fn count(&self, kind: &'static str) -> Result<(), CallError> {
        let mut st = self.state();
        let n = st.calls.entry(kind.to_owned()).or_insert(0);
        *n += 1;
        if *n > self.limits.host_calls_per_kind {
            return Err(CallError::Fatal(ActionError::TooManyHostCalls {
                kind: kind.to_owned(),
                limit: self.limits.host_calls_per_kind,
            }));
        }
        self.within_budget(&st)
    }

    /// Counts a signature.
    fn count_signature(&self) -> Result<(), CallError> {
        let mut st = self.state();
        st.signatures += 1;
        if st.signatures > self.limits.signatures {
            return Err(CallError::Fatal(ActionError::TooManySignatures {
                limit: self.limits.signatures,
            }));
        }
        self.within_budget(&st)
    }

    /// Counts a `fetch`.
    fn count_fetch(&self) -> Result<(), CallError> {
        let mut st = self.state();
        st.fetches += 1;
        if st.fetches > self.limits.fetches {
            return Err(CallError::Fatal(ActionError::TooManyFetches {
                limit: self.limits.fetches,
            }));
        }
        self.within_budget(&st)
    }

    /// Adds what a child action used (`Lit.Actions.call`) to this action's usage, and checks the
    /// budget (the child ran under what was left of it, so only the `call` itself can tip it).
    fn absorb(&self, child: &Usage) -> Result<(), CallError> {
        let mut st = self.state();
        st.signatures = st.signatures.saturating_add(child.signatures);
        st.fetches = st.fetches.saturating_add(child.fetches);
        for (kind, n) in &child.host_calls {
            let total = st.calls.entry(kind.clone()).or_insert(0);
            *total = total.saturating_add(*n);
        }
        self.within_budget(&st)
    }

    /// What is left of the budget for a child action: the time to this action's deadline and
    /// the billable host calls not yet made.
    fn budget_left(&self) -> Budget {
        let mut left = Budget::unlimited().with_time(
            self.deadline()
                .saturating_duration_since(std::time::Instant::now()),
        );
        if let Some(calls) = self.budget.host_calls {
            let used = self.state().total_host_calls();
            left = left.with_host_calls(
                u32::try_from(u64::from(calls).saturating_sub(used)).unwrap_or(u32::MAX),
            );
        }
        left
    }

    /// Checks the billable host calls counted so far (the one just counted included) against the
    /// budget; called by each counter after its engine limit, under the same lock, so concurrent
    /// calls are counted one at a time and an engine limit reached at the same call is named first.
    fn within_budget(&self, st: &State) -> Result<(), CallError> {
        match self.budget.host_calls_exceeded(st.total_host_calls()) {
            Some(e) => Err(CallError::Fatal(e)),
            None => Ok(()),
        }
    }

    async fn call(&self, op: &str, args: Value) -> Result<Value, CallError> {
        let ctx = &self.ctx;
        let host = &self.host;
        match op {
            "signEcdsa" => {
                let req: SignEcdsa = parse(op, args)?;
                self.count_signature()?;
                host.sign_ecdsa(ctx, req).await.map_err(host_err(op))?;
                Ok(json!("success"))
            }
            "signAndCombineEcdsa" => {
                let req: SignEcdsa = parse(op, args)?;
                self.count_signature()?;
                let sig = host
                    .sign_and_combine_ecdsa(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(sig))
            }
            "checkConditions" => {
                let req: CheckConditions = parse(op, args)?;
                self.count("checkConditions")?;
                let ok = host
                    .check_conditions(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(ok))
            }
            "decryptAndCombine" => {
                let req: DecryptAndCombine = parse(op, args)?;
                self.count("decryptAndCombine")?;
                let plain = host
                    .decrypt_and_combine(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(plain))
            }
            "encrypt" => {
                let req: Encrypt = parse(op, args)?;
                self.count("encrypt")?;
                let enc = host.encrypt(ctx, req).await.map_err(host_err(op))?;
                Ok(json!(enc))
            }
            "getRpcUrl" => {
                let req: ChainArg = parse(op, args)?;
                self.count("getRpcUrl")?;
                let url = host
                    .get_rpc_url(ctx, &req.chain)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(url))
            }
            "pkpInfo" => {
                let req: TokenIdArg = parse(op, args)?;
                self.count("pkpInfo")?;
                let token_id = hex::decode(&req.token_id)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        CallError::Js(format!(
                            "Lit.Actions.{op}: a PKP token id is 32 bytes, got {:?}",
                            req.token_id
                        ))
                    })?;
                let info = host.pkp_info(ctx, token_id).await.map_err(host_err(op))?;
                Ok(json!(info))
            }
            "pubkeyToTokenId" => {
                let req: PublicKeyArg = parse(op, args)?;
                self.count("pubkeyToTokenId")?;
                let id = lit_crypto::eth::pkp_token_id_of_hex(&req.public_key)
                    .map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {e}")))?;
                Ok(json!(format!("0x{}", hex::encode(id))))
            }
            "runOnce" => {
                let req: RunOnce = parse(op, args)?;
                self.count("runOnce")?;
                let name = req.name.clone();
                if self.state().run_once_granted.contains(&name) {
                    return Err(CallError::Js(format!(
                        "Lit.Actions.runOnce: a section named {name:?} already ran"
                    )));
                }
                let role = host.run_once(ctx, req).await.map_err(host_err(op))?;
                if role == RunOnceRole::Run {
                    self.state().run_once_granted.insert(name);
                }
                Ok(json!(role))
            }
            "runOnceResult" => {
                let req: RunOnceResultArg = parse("runOnce", args)?;
                if !self.state().run_once_granted.contains(&req.name) {
                    return Err(CallError::Js(format!(
                        "Lit.Actions.runOnce: this node was not chosen to run {:?}",
                        req.name
                    )));
                }
                host.run_once_result(ctx, &req.name, &req.result)
                    .await
                    .map_err(host_err("runOnce"))?;
                Ok(Value::Null)
            }
            "broadcastAndCollect" => {
                let req: BroadcastAndCollect = parse(op, args)?;
                self.count("broadcastAndCollect")?;
                let all = host
                    .broadcast_and_collect(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(all))
            }
            "ethPersonalSignMessageEcdsa" => {
                let req: EthPersonalSign = parse(op, args)?;
                self.count_signature()?;
                host.eth_personal_sign(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!("success"))
            }
            "signAsAction" => {
                let req: SignAsActionArg = parse(op, args)?;
                let scheme = scheme_of(op, &req.signing_scheme)?;
                if req.to_sign.len() != 32 {
                    return Err(CallError::Js(format!(
                        "Lit.Actions.{op}: toSign must be a 32-byte hash for {}, got {} bytes",
                        scheme.name(),
                        req.to_sign.len()
                    )));
                }
                self.count_signature()?;
                let sig = host
                    .sign_as_action(
                        ctx,
                        SignAsAction {
                            to_sign: req.to_sign,
                            sig_name: req.sig_name,
                            scheme,
                        },
                    )
                    .await
                    .map_err(host_err(op))?;
                // Lit returns the signature as JSON text
                let text = serde_json::to_string(&sig)
                    .map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {e}")))?;
                Ok(json!(text))
            }
            "getActionPublicKey" => {
                let req: ActionKeyArg = parse(op, args)?;
                let scheme = scheme_of(op, &req.signing_scheme)?;
                let id = cid_of(op, "actionIpfsCid", &req.action_ipfs_cid)?;
                self.count(op_name(op))?;
                let key = host
                    .action_public_key(ctx, scheme, &id)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(hex::encode(key)))
            }
            "verifyActionSignature" => {
                let req: VerifyActionSignatureArg = parse(op, args)?;
                let scheme = scheme_of(op, &req.signing_scheme)?;
                let id = cid_of(op, "actionIpfsCid", &req.action_ipfs_cid)?;
                let output: ActionSignature =
                    serde_json::from_str(&req.sign_output).map_err(|e| {
                        CallError::Js(format!(
                            "Lit.Actions.{op}: signOutput is not the output of signAsAction: {e}"
                        ))
                    })?;
                self.count(op_name(op))?;
                let key = host
                    .action_public_key(ctx, scheme, &id)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(verify_action_signature(&key, &req.to_sign, &output)))
            }
            "getLatestNonce" => {
                let req: LatestNonceArg = parse(op, args)?;
                self.count(op_name(op))?;
                let nonce = host
                    .get_latest_nonce(ctx, &req.address, &req.chain)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(nonce))
            }
            "aesDecrypt" => {
                let req: AesDecryptArg = parse(op, args)?;
                self.count(op_name(op))?;
                let plain = crate::aes_cbc::decrypt(&req.symmetric_key, &req.ciphertext)
                    .map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {e}")))?;
                // Lit answers with the plaintext as lower-case hex
                Ok(json!(hex::encode(plain)))
            }
            "call" => {
                let req: CallArg = parse(op, args)?;
                let id = cid_of(op, "ipfsId", &req.ipfs_id)?;
                let depth = ctx.auth.action_ipfs_ids.len();
                if depth > MAX_CALL_DEPTH {
                    return Err(CallError::Js(format!(
                        "Lit.Actions.call: the recursion limit of a child action is \
                         {MAX_CALL_DEPTH}: calling {id} would run it at depth {depth}"
                    )));
                }
                self.count(op_name(op))?;
                let mut auth = ctx.auth.clone();
                auth.action_ipfs_ids.push(id.to_string());
                let child = host
                    .call_action(
                        ctx,
                        CallAction {
                            ipfs_id: id,
                            params: req.params,
                            auth,
                            budget: self.budget_left(),
                            headers: self.headers.clone(),
                        },
                    )
                    .await
                    .map_err(host_err(op))?;
                self.absorb(&child.usage)?;
                // Lit answers with the child's response, an empty string when it set none
                Ok(json!(child.response.unwrap_or_default()))
            }
            "decryptToSingleNode" => {
                let req: DecryptAndCombine = parse(op, args)?;
                self.count(op_name(op))?;
                let plain = host
                    .decrypt_to_single_node(ctx, req)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!(plain))
            }
            "claimKey" => {
                let req: ClaimKeyArg = parse(op, args)?;
                self.count(op_name(op))?;
                host.claim_key(ctx, &req.key_id)
                    .await
                    .map_err(host_err(op))?;
                Ok(json!("success"))
            }
            // `Lit.Headers`, read once by the prelude before the action starts: not billable
            "headers" => Ok(json!(self.headers)),
            "fetch" => self.fetch(args).await,
            "sleep" => {
                let req: SleepArg = parse("setTimeout", args)?;
                tokio::time::sleep(Duration::from_millis(req.ms)).await;
                Ok(Value::Null)
            }
            other => Err(CallError::Js(format!(
                "Lit.Actions.{other} is not a Lit Actions function"
            ))),
        }
    }

    async fn fetch(&self, args: Value) -> Result<Value, CallError> {
        let url = args
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| CallError::Js("fetch: the url must be a string".into()))?
            .to_owned();
        self.count_fetch()?;
        self.net
            .check(&url)
            .map_err(|e| CallError::Js(format!("fetch: {e}")))?;
        match &self.fetcher {
            // Deno fetches itself (under its own --allow-net); the host only counts and checks.
            None => Ok(Value::Null),
            Some(fetcher) => fetcher
                .fetch(&self.net, args, self.limits.memory_bytes)
                .await
                .map_err(|e| CallError::Js(format!("fetch: {e}"))),
        }
    }
}

/// Maps a JavaScript exception to the error the action ends with.
pub(crate) fn script_error(name: &str, message: &str, stack: &str, limits: &Limits) -> ActionError {
    let full = if name.is_empty() {
        message.to_owned()
    } else {
        format!("{name}: {message}")
    };
    if message.contains("Maximum call stack size exceeded")
        || (name == "InternalError" && message.contains("stack overflow"))
        || (name == "RangeError" && message.contains("stack overflow"))
    {
        return ActionError::StackOverflow { message: full };
    }
    if name == "InternalError" && message.contains("out of memory") {
        return ActionError::MemoryLimit {
            limit_bytes: limits.memory_bytes,
        };
    }
    let stack = user_frames(stack);
    let stack = stack.as_str();
    // V8's stack repeats `Name: message` first; QuickJS's holds only the frames.
    let message = if stack.is_empty() {
        full
    } else if stack.starts_with(&full) {
        stack.to_owned()
    } else {
        format!("{full}\n{stack}")
    };
    ActionError::Script { message }
}

/// The stack without the engines' own frames (the prelude, Deno's bootstrap module and its
/// temporary path): Deno's frame of the user's code `at eval (eval at run (file:///…/
/// bootstrap.js:N:M), <anonymous>:L:C)` becomes `at <anonymous>:L:C`.
fn user_frames(stack: &str) -> String {
    stack
        .lines()
        .filter_map(|line| {
            if let Some((_, at)) = line.split_once(", <anonymous>") {
                let indent = &line[..line.len() - line.trim_start().len()];
                return Some(format!(
                    "{indent}at <anonymous>{}",
                    at.trim_end_matches(')')
                ));
            }
            let internal = line.contains("bootstrap.js") || line.contains("eval_script");
            (!internal).then(|| line.to_owned())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) enum CallError {
    /// Thrown into the action.
    Js(String),
    /// Ends the action.
    Fatal(ActionError),
}

fn parse<T: DeserializeOwned>(op: &str, args: Value) -> Result<T, CallError> {
    serde_json::from_value(args).map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {e}")))
}

/// The `&'static` name of a host call counted per kind (the ones dispatched by name above).
fn op_name(op: &str) -> &'static str {
    match op {
        "getActionPublicKey" => "getActionPublicKey",
        "verifyActionSignature" => "verifyActionSignature",
        "getLatestNonce" => "getLatestNonce",
        "aesDecrypt" => "aesDecrypt",
        "call" => "call",
        "decryptToSingleNode" => "decryptToSingleNode",
        "claimKey" => "claimKey",
        _ => "other",
    }
}

fn scheme_of(op: &str, name: &str) -> Result<SigningScheme, CallError> {
    SigningScheme::parse(name).map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {e}")))
}

fn cid_of(op: &str, what: &str, id: &str) -> Result<crate::ActionId, CallError> {
    id.parse()
        .map_err(|e| CallError::Js(format!("Lit.Actions.{op}: {what} {id:?}: {e}")))
}

/// Whether `output` (from `signAsAction`) is a valid signature of `to_sign` by the action key
/// `key` (uncompressed SEC1): the key it names must be `key`, the data it names `to_sign`, and
/// the signature must verify (low `s`, as every Ethereum verifier requires).
fn verify_action_signature(key: &[u8], to_sign: &[u8], output: &ActionSignature) -> bool {
    use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let named_key = hex::decode(output.verifying_key.trim_start_matches("0x")).ok();
    let named_data = hex::decode(output.signed_data.trim_start_matches("0x")).ok();
    if named_key.as_deref() != Some(key) || named_data.as_deref() != Some(to_sign) {
        return false;
    }
    let rs = serde_json::from_str::<String>(&output.signature)
        .ok()
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok());
    let (Some(rs), Ok(vk)) = (rs, k256::ecdsa::VerifyingKey::from_sec1_bytes(key)) else {
        return false;
    };
    match k256::ecdsa::Signature::from_slice(&rs) {
        Ok(sig) if sig.normalize_s().is_none() => vk.verify_prehash(to_sign, &sig).is_ok(),
        _ => false,
    }
}

fn host_err(op: &str) -> impl Fn(HostError) -> CallError + '_ {
    move |e| CallError::Js(format!("Lit.Actions.{op}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::NoCapabilities;

    fn session(budget: Budget) -> Session {
        Session::new(
            &Action::new("").with_budget(budget),
            Arc::new(NoCapabilities),
            Limits::default(),
            NetPolicy::default(),
            None,
        )
    }

    #[test]
    fn every_counter_bills_one_budget_and_usage_reports_what_was_compared() {
        let s = session(Budget::unlimited().with_host_calls(3));
        assert!(s.count("getRpcUrl").is_ok());
        assert!(s.count_signature().is_ok());
        assert!(s.count_fetch().is_ok());
        assert_eq!(s.state().total_host_calls(), 3);
        assert_eq!(s.outcome(Duration::ZERO).usage.total_host_calls(), 3);
        match s.count("getRpcUrl") {
            Err(CallError::Fatal(e)) => assert_eq!(
                e,
                ActionError::BudgetExhausted {
                    resource: "host calls".into(),
                    limit: 3
                }
            ),
            _ => panic!("the 4th billable call was not refused"),
        }
        // the refused call is counted, as an engine limit counts the call over it
        assert_eq!(s.state().total_host_calls(), 4);
        assert_eq!(s.outcome(Duration::ZERO).usage.total_host_calls(), 4);
    }

    #[test]
    fn done_after_the_time_budget_is_not_a_result() {
        let done = br#"{"op":"done","args":{}}"#;
        let spent = session(Budget::unlimited().with_time(Duration::ZERO));
        match spent.receive(done) {
            Received::Step(Step::Fatal(e)) => assert_eq!(
                e,
                ActionError::BudgetExhausted {
                    resource: "time".into(),
                    limit: 0
                }
            ),
            _ => panic!("an action done after its time budget got a result"),
        }
        let unlimited = session(Budget::unlimited());
        assert!(matches!(
            unlimited.receive(done),
            Received::Step(Step::Done(Ok(_)))
        ));
    }

    #[test]
    fn engine_frames_are_dropped_and_the_users_kept() {
        // stacks as the two engines printed them for `throw new Error("no luck")`
        let deno = "Error: no luck\n    at eval (eval at run (file:///tmp/lit-actions-deno-SDF6JE/bootstrap.js:509:22), <anonymous>:3:7)\n    at Object.run (file:///tmp/lit-actions-deno-SDF6JE/bootstrap.js:510:15)\n    at file:///tmp/lit-actions-deno-SDF6JE/bootstrap.js:607:15";
        assert_eq!(user_frames(deno), "Error: no luck\n    at <anonymous>:3:7");
        let quickjs = "    at anonymous (<input>:3:11)\n    at run (eval_script:510:15)\n";
        assert_eq!(user_frames(quickjs), "    at anonymous (<input>:3:11)");
        let limits = Limits::default();
        let e = script_error("Error", "no luck", deno, &limits);
        assert_eq!(
            e,
            ActionError::Script {
                message: "Error: no luck\n    at <anonymous>:3:7".into()
            }
        );
    }
}
