//! One conformance suite, run against every engine: each test body is written once and
//! instantiated for QuickJS, Deno (cold) and, where it matters, Deno with a warm pool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use lit_actions::{Action, ActionError, AuthContext, Budget, EngineConfig, NetPolicy};
use serde_json::{json, Value};
use support::{limits, MakeEngine, RecordingHost};

fn config() -> EngineConfig {
    EngineConfig::new(limits())
}

async fn run(
    make: MakeEngine,
    config: EngineConfig,
    code: &str,
) -> (
    Result<lit_actions::ActionOutcome, ActionError>,
    Arc<RecordingHost>,
) {
    let host = RecordingHost::new();
    let engine = make(config);
    let r = engine.run(&Action::new(code), host.clone()).await;
    (r, host)
}

async fn response(make: MakeEngine, code: &str) -> Value {
    let (r, _) = run(make, config(), code).await;
    let out = r.unwrap_or_else(|e| panic!("action failed: {e}"));
    serde_json::from_str(out.response.as_deref().expect("no response")).unwrap()
}

// ---- responses, params, logs, auth -------------------------------------------------------------

async fn responses_params_and_auth(make: MakeEngine) {
    let engine = make(config());
    let host = RecordingHost::new();
    let action = Action::new(
        r#"
        const r = { a, b, nested: nested.x, same: jsParams.a === a,
                    auth: Lit.Auth.authSigAddress, ids: Lit.Auth.actionIpfsIdStack };
        Lit.Actions.setResponse({ response: "first" });
        Lit.Actions.setResponse({ response: JSON.stringify(r) });
        "#,
    )
    .with_param("a", json!(1))
    .with_param("b", json!("two"))
    .with_param("nested", json!({"x": [1, 2, 3]}))
    .with_auth(AuthContext::with_address("0xabc"));
    let id = action.id().to_string();
    let out = engine.run(&action, host).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"a": 1, "b": "two", "nested": [1, 2, 3], "same": true, "auth": "0xabc", "ids": [id]})
    );
}

async fn no_response_is_none(make: MakeEngine) {
    let (r, _) = run(make, config(), "const x = 1 + 1;").await;
    assert_eq!(r.unwrap().response, None);
}

async fn logs_are_captured(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"console.log("hello", 1, {a: [true, null]}, undefined);
           console.error("err"); console.warn("warn"); console.info("info");
           console.log(new Error("boom").message);"#,
    )
    .await;
    let out = r.unwrap();
    assert_eq!(
        out.logs,
        "hello 1 {\"a\":[true,null]} undefined\nerr\nwarn\ninfo\nboom\n"
    );
    assert_eq!(out.response, None);
}

async fn lit_style_iife_and_timers(make: MakeEngine) {
    // Lit's usual shape: an un-awaited async IIFE; the action lasts until it is done.
    let v = response(
        make,
        r#"(async () => {
              await new Promise((r) => setTimeout(r, 20));
              const url = await Lit.Actions.getRpcUrl({ chain: "ethereum" });
              let ticks = 0;
              await new Promise((r) => { const h = setInterval(() => { if (++ticks === 3) { clearInterval(h); r(); } }, 5); });
              const cancelled = setTimeout(() => Lit.Actions.setResponse({ response: "wrong" }), 10);
              clearTimeout(cancelled);
              Lit.Actions.setResponse({ response: JSON.stringify({ url, ticks }) });
           })();"#,
    )
    .await;
    assert_eq!(v, json!({"url": "https://eth.example/rpc", "ticks": 3}));
}

async fn cleared_timers_do_not_keep_the_action_alive(make: MakeEngine) {
    // a library that arms a long timeout around each request (ethers does, 120 s) and clears
    // it when the answer comes must not hold the action until the timeout would have fired:
    // the limit here is 5 s, so a held action ends with `Timeout`
    let (r, _) = run(
        make,
        config(),
        r#"const t = setTimeout(() => Lit.Actions.setResponse({ response: "fired" }), 600000);
           await new Promise((r) => setTimeout(r, 5));
           clearTimeout(t);
           clearTimeout(t);
           const i = setInterval(() => {}, 600000);
           clearInterval(i);
           Lit.Actions.setResponse({ response: "cleared" });"#,
    )
    .await;
    let out = r.unwrap_or_else(|e| panic!("a cleared timer held the action: {e}"));
    assert_eq!(out.response.as_deref(), Some("cleared"));
}

async fn text_encoding(make: MakeEngine) {
    let v = response(
        make,
        r#"const s = "h\u00e9llo \u20ac \ud834\udd1e";
           const bytes = new TextEncoder().encode(s);
           Lit.Actions.setResponse({ response: JSON.stringify({ bytes: Array.from(bytes), back: new TextDecoder().decode(bytes) === s }) });"#,
    )
    .await;
    let expected: Vec<u8> = "h\u{e9}llo \u{20ac} \u{1d11e}".bytes().collect();
    assert_eq!(v, json!({"bytes": expected, "back": true}));
}

/// `atob`/`btoa` (native in Deno, the prelude's in QuickJS, the same answers) and Lit's
/// `uint8arrayToString`/`uint8arrayFromString` with multibase encoding names; expected values are
/// computed independently in Rust.
async fn bytes_and_strings(make: MakeEngine) {
    let v = response(
        make,
        r#"const L = Lit.Actions;
           const bytes = new Uint8Array([0, 0, 1, 2, 250, 255, 104, 105]);
           const enc = ["base16", "base16upper", "base64", "base64pad", "base64url", "base64urlpad", "base58btc", "latin1"];
           const out = {};
           for (const e of enc) {
             const s = L.uint8arrayToString(bytes, e);
             out[e] = s;
             if (Array.from(L.uint8arrayFromString(s, e)).join() !== Array.from(bytes).join()) throw new Error("round trip " + e);
           }
           out.utf8 = L.uint8arrayToString(L.uint8arrayFromString("héllo €"));
           out.utf8Bytes = Array.from(L.uint8arrayFromString("€", "utf-8"));
           out.btoa = btoa("hiÿ");
           out.atob = Array.from(atob(" aGk/ Pw== "), (c) => c.charCodeAt(0));
           out.atobNoPad = atob("aGk");
           const errors = [];
           for (const f of [() => atob("a"), () => atob("aGk=a"), () => btoa("€"),
                            () => L.uint8arrayFromString("zz", "base16"), () => L.uint8arrayFromString("0OIl", "base58btc"),
                            () => L.uint8arrayToString(bytes, "base32"), () => L.uint8arrayToString("not bytes")]) {
             try { f(); errors.push(null); } catch (e) { errors.push(e.name); }
           }
           out.errors = errors;
           Lit.Actions.setResponse({ response: JSON.stringify(out) });"#,
    )
    .await;
    use base64::Engine as _;
    let bytes = [0u8, 0, 1, 2, 250, 255, 104, 105];
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE;
    let unpadded = |s: String| s.trim_end_matches('=').to_string();
    let latin1: String = bytes.iter().map(|&b| b as char).collect();
    assert_eq!(
        v,
        json!({
            "base16": hex::encode(bytes),
            "base16upper": hex::encode_upper(bytes),
            "base64": unpadded(b64.encode(bytes)),
            "base64pad": b64.encode(bytes),
            "base64url": unpadded(b64url.encode(bytes)),
            "base64urlpad": b64url.encode(bytes),
            "base58btc": bs58::encode(bytes).into_string(),
            "latin1": latin1,
            "utf8": "h\u{e9}llo \u{20ac}",
            "utf8Bytes": "\u{20ac}".as_bytes(),
            "btoa": b64.encode([b'h', b'i', 0xff]),
            "atob": [b'h', b'i', b'?', b'?'],
            "atobNoPad": "hi",
            "errors": ["InvalidCharacterError", "InvalidCharacterError", "InvalidCharacterError",
                       "InvalidCharacterError", "InvalidCharacterError", "TypeError", "TypeError"],
        })
    );
}

/// `crypto.getRandomValues`, `randomUUID` and `subtle.digest` (native in Deno, the prelude's
/// over the engine's CSPRNG and SHA-2 in QuickJS); digests checked against the `sha2` crate.
async fn web_crypto(make: MakeEngine) {
    let v = response(
        make,
        r#"const a = crypto.getRandomValues(new Uint8Array(32));
           const b = crypto.getRandomValues(new Uint32Array(8));
           const c = crypto.getRandomValues(new Uint8Array(32));
           const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, "0")).join("");
           const data = new TextEncoder().encode("abc");
           const names = async (f) => { try { await f(); return null; } catch (e) { return e.name; } };
           Lit.Actions.setResponse({ response: JSON.stringify({
             random: a.some((x) => x !== 0) && b.some((x) => x !== 0) && a.join() !== c.join(),
             uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),
             sha256: hex(await crypto.subtle.digest("SHA-256", data)),
             sha384: hex(await crypto.subtle.digest({ name: "sha-384" }, data.buffer)),
             sha512: hex(await crypto.subtle.digest("SHA-512", new DataView(data.buffer))),
             quota: await names(() => crypto.getRandomValues(new Uint8Array(65537))),
             float: await names(() => crypto.getRandomValues(new Float64Array(2))),
             unsupported: await names(() => crypto.subtle.digest("MD5", data)),
           }) });"#,
    )
    .await;
    use sha2::Digest as _;
    assert_eq!(
        v,
        json!({
            "random": true,
            "uuid": true,
            "sha256": hex::encode(sha2::Sha256::digest(b"abc")),
            "sha384": hex::encode(sha2::Sha384::digest(b"abc")),
            "sha512": hex::encode(sha2::Sha512::digest(b"abc")),
            "quota": "QuotaExceededError",
            "float": "TypeMismatchError",
            "unsupported": "NotSupportedError",
        })
    );
}

// ---- host calls --------------------------------------------------------------------------------

async fn every_host_call_round_trips(make: MakeEngine) {
    let host = RecordingHost::new();
    let engine = make(config());
    let action = Action::new(
        r#"
        const toSign = new Uint8Array([1, 2, 3, 255]);
        const out = {};
        out.sign = await Lit.Actions.signEcdsa({ toSign, publicKey: "0x04aa", sigName: "sig1" });
        out.combined = JSON.parse(await Lit.Actions.signAndCombineEcdsa({ toSign: [9, 8], publicKey: "0x04aa", sigName: "sig2" }));
        out.cond = await Lit.Actions.checkConditions({ conditions: [{ k: 1 }], authSig: { sig: "s" }, chain: "ethereum" });
        out.condOther = await Lit.Actions.checkConditions({ conditions: [], chain: "polygon" });
        out.plain = await Lit.Actions.decryptAndCombine({ accessControlConditions: [{ c: 2 }], ciphertext: "Y3Q=", dataToEncryptHash: "ab", authSig: null, chain: "ethereum" });
        out.enc = await Lit.Actions.encrypt({ accessControlConditions: [], to_encrypt: new TextEncoder().encode("hi") });
        out.rpc = await Lit.Actions.getRpcUrl({ chain: "ethereum" });
        out.once = await Lit.Actions.runOnce({ waitForResponse: true, name: "tx" }, async () => ({ hash: "0x1" }));
        out.all = await Lit.Actions.broadcastAndCollect({ name: "round", value: "v" });
        Lit.Actions.setResponse({ response: JSON.stringify(out) });
        "#,
    );
    let id = action.id().to_string();
    let out = engine.run(&action, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({
            "sign": "success",
            "combined": {"sig": support::digest_hex(&[9, 8]), "name": "sig2"},
            "cond": true,
            "condOther": false,
            "plain": "plain:Y3Q=",
            "enc": {"ciphertext": "6869", "dataToEncryptHash": support::digest_hex(b"hi")},
            "rpc": "https://eth.example/rpc",
            "once": "{\"hash\":\"0x1\"}",
            "all": ["v", "v-peer1", "v-peer2"],
        })
    );
    let a = id.as_str();
    assert_eq!(
        host.calls(),
        vec![
            json!({"call": "signEcdsa", "action": a, "toSign": [1, 2, 3, 255], "publicKey": "0x04aa", "sigName": "sig1"}),
            json!({"call": "signAndCombineEcdsa", "action": a, "toSign": [9, 8], "publicKey": "0x04aa", "sigName": "sig2"}),
            json!({"call": "checkConditions", "action": a, "conditions": [{"k": 1}], "authSig": {"sig": "s"}, "chain": "ethereum"}),
            json!({"call": "checkConditions", "action": a, "conditions": [], "authSig": null, "chain": "polygon"}),
            json!({"call": "decryptAndCombine", "action": a, "accessControlConditions": [{"c": 2}], "ciphertext": "Y3Q=", "dataToEncryptHash": "ab", "authSig": null, "chain": "ethereum"}),
            json!({"call": "encrypt", "action": a, "accessControlConditions": [], "to_encrypt": [104, 105]}),
            json!({"call": "getRpcUrl", "action": a, "chain": "ethereum"}),
            json!({"call": "runOnce", "action": a, "name": "tx", "waitForResponse": true}),
            json!({"call": "runOnceResult", "action": a, "name": "tx", "result": "{\"hash\":\"0x1\"}"}),
            json!({"call": "broadcastAndCollect", "action": a, "name": "round", "value": "v"}),
        ]
    );
}

async fn run_once_on_another_node(make: MakeEngine) {
    let host = Arc::new(RecordingHost {
        run_once_result: Some("leader-result".into()),
        ..RecordingHost::default()
    });
    let engine = make(config());
    let action = Action::new(
        r#"
        let ran = false;
        const waited = await Lit.Actions.runOnce({ waitForResponse: true, name: "a" }, async () => { ran = true; return "mine"; });
        const notWaited = await Lit.Actions.runOnce({ name: "b" }, async () => { ran = true; return "mine"; });
        Lit.Actions.setResponse({ response: JSON.stringify({ waited, notWaited, ran }) });
        "#,
    );
    let out = engine.run(&action, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"waited": "leader-result", "notWaited": null, "ran": false})
    );
    assert!(host.calls().iter().all(|c| c["call"] != "runOnceResult"));
}

async fn concurrent_host_calls(make: MakeEngine) {
    let host = Arc::new(RecordingHost {
        delay: Some(Duration::from_millis(100)),
        ..RecordingHost::default()
    });
    let engine = make(config());
    // 60 calls of 100 ms each inside a 5 s limit: they must run concurrently.
    let action = Action::new(
        r#"const urls = await Promise.all(Array.from({ length: 60 }, () => Lit.Actions.getRpcUrl({ chain: "ethereum" })));
           Lit.Actions.setResponse({ response: String(urls.length) });"#,
    );
    let out = engine.run(&action, host.clone()).await.unwrap();
    assert_eq!(out.response.as_deref(), Some("60"));
    assert_eq!(host.calls().len(), 60);
}

async fn host_errors_are_catchable(make: MakeEngine) {
    let v = response(
        make,
        r#"const errs = [];
           try { await Lit.Actions.getRpcUrl({ chain: "nowhere" }); } catch (e) { errs.push(e.message); }
           try { await Lit.Actions.signEcdsa({ toSign: [1], publicKey: "0xbad", sigName: "s" }); } catch (e) { errs.push(e.message); }
           Lit.Actions.setResponse({ response: JSON.stringify(errs) });"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "Lit.Actions.getRpcUrl: no RPC for chain nowhere",
            "Lit.Actions.signEcdsa: unknown PKP 0xbad"
        ])
    );
}

async fn unknown_calls_and_wrong_types_throw(make: MakeEngine) {
    let v = response(
        make,
        r#"const errs = [];
           const attempt = async (f) => { try { await f(); errs.push("no error"); } catch (e) { errs.push(`${e.name}: ${e.message}`); } };
           await attempt(() => Lit.Actions.signEverything({}));
           await attempt(() => Lit.Actions.signEcdsa({ toSign: "abc", publicKey: "0x04", sigName: "s" }));
           await attempt(() => Lit.Actions.signEcdsa({ toSign: [1, 300], publicKey: "0x04", sigName: "s" }));
           await attempt(() => Lit.Actions.signEcdsa({ toSign: [1], publicKey: 4, sigName: "s" }));
           await attempt(() => Lit.Actions.getRpcUrl("ethereum"));
           await attempt(() => Lit.Actions.checkConditions({ chain: "ethereum" }));
           await attempt(() => Lit.Actions.setResponse({ response: 42 }));
           await attempt(() => Lit.Actions.runOnce({ name: "x", waitForResponse: "yes" }, () => 1));
           await attempt(() => Lit.Actions.runOnce({ name: "x" }, "not a function"));
           await attempt(() => Lit.Actions.broadcastAndCollect({ name: "n", value: 5 }));
           await attempt(() => { Lit.Actions.setResponse = null; });
           Lit.Actions.setResponse({ response: JSON.stringify(errs) });"#,
    )
    .await;
    let got: Vec<String> = serde_json::from_value(v).unwrap();
    let expected_prefixes = [
        "TypeError: Lit.Actions.signEverything is not a Lit Actions function (there are: setResponse, signEcdsa,",
        "TypeError: Lit.Actions.signEcdsa: toSign must be a Uint8Array or an array of bytes, got a string",
        "TypeError: Lit.Actions.signEcdsa: toSign must be a Uint8Array or an array of bytes, got an array",
        "TypeError: Lit.Actions.signEcdsa: publicKey must be a string, got a number",
        "TypeError: Lit.Actions.getRpcUrl takes one object argument, got a string",
        "TypeError: Lit.Actions.checkConditions: conditions is required",
        "TypeError: Lit.Actions.setResponse: response must be a string, got a number",
        "TypeError: Lit.Actions.runOnce: waitForResponse must be a boolean, got a string",
        "TypeError: Lit.Actions.runOnce: the second argument must be a function",
        "TypeError: Lit.Actions.broadcastAndCollect: value must be a string, got a number",
        "TypeError: Lit.Actions.setResponse cannot be assigned",
    ];
    assert_eq!(got.len(), expected_prefixes.len(), "{got:?}");
    for (g, e) in got.iter().zip(expected_prefixes) {
        assert!(g.starts_with(e), "{g:?} does not start with {e:?}");
    }
}

async fn uncaught_exception_is_a_script_error(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"Lit.Actions.setResponse({ response: "partial" }); throw new Error("bad thing");"#,
    )
    .await;
    match r {
        Err(ActionError::Script { message }) => {
            assert!(message.contains("Error: bad thing"), "{message}");
            // the user's frame is kept, the engines' own frames and paths are not
            assert!(
                message.contains("<anonymous>") || message.contains("<input>"),
                "{message}"
            );
            for internal in ["bootstrap.js", "eval_script", "/tmp/"] {
                assert!(!message.contains(internal), "{message}");
            }
        }
        other => panic!("expected a script error, got {other:?}"),
    }
    let (r, _) = run(make, config(), "this is not javascript").await;
    assert!(
        matches!(&r, Err(ActionError::Script { message }) if message.contains("SyntaxError")),
        "{r:?}"
    );
    let (r, _) = run(make, config(), "throw 42;").await;
    assert!(
        matches!(&r, Err(ActionError::Script { message }) if message.contains("42")),
        "{r:?}"
    );
}

async fn errors_in_callbacks_and_unhandled_rejections(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"setTimeout(() => { throw new Error("thrown in a timer"); }, 1);
           await new Promise((r) => setTimeout(r, 200));
           Lit.Actions.setResponse({ response: "not reached" });"#,
    )
    .await;
    assert!(
        matches!(&r, Err(ActionError::Script { message }) if message.contains("thrown in a timer")),
        "{r:?}"
    );
    let (r, _) = run(
        make,
        config(),
        r#"Promise.reject(new Error("nobody catches this"));
           await new Promise((r) => setTimeout(r, 200));
           Lit.Actions.setResponse({ response: "not reached" });"#,
    )
    .await;
    assert!(
        matches!(&r, Err(ActionError::Script { message }) if message.contains("nobody catches this")),
        "{r:?}"
    );
    // Handled within the same turn: not an error.
    let (r, _) = run(
        make,
        config(),
        r#"const p = Promise.reject(new Error("late"));
           await Promise.resolve();
           const m = await p.catch((e) => e.message);
           Lit.Actions.setResponse({ response: m });"#,
    )
    .await;
    assert_eq!(r.unwrap().response.as_deref(), Some("late"));
}

// ---- fetch -------------------------------------------------------------------------------------

async fn fetch_allowed_host(make: MakeEngine) {
    let port = support::http_server("hello from the server");
    let config = config().with_net(NetPolicy::allow([format!("127.0.0.1:{port}")]));
    let (r, _) = run(
        make,
        config,
        &format!(
            r#"const r = await fetch("http://127.0.0.1:{port}/price?x=1");
               const text = await r.text();
               Lit.Actions.setResponse({{ response: JSON.stringify({{ status: r.status, ok: r.ok, h: r.headers.get("X-Test"), text }}) }});"#
        ),
    )
    .await;
    let v: Value = serde_json::from_str(r.unwrap().response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"status": 200, "ok": true, "h": "yes", "text": "hello from the server /price?x=1"})
    );
}

async fn fetch_not_allowed_host(make: MakeEngine) {
    let allowed = support::http_server("allowed");
    let other = support::http_server("secret");
    let config = config().with_net(NetPolicy::allow([format!("127.0.0.1:{allowed}")]));
    let (r, _) = run(
        make,
        config.clone(),
        &format!(r#"const r = await fetch("http://127.0.0.1:{other}/"); Lit.Actions.setResponse({{ response: await r.text() }});"#),
    )
    .await;
    match r {
        Err(ActionError::Script { message }) => {
            assert!(
                message.contains(&format!("127.0.0.1:{other} is not allowed")),
                "{message}"
            );
            assert!(!message.contains("secret"));
        }
        other => panic!("expected a script error, got {other:?}"),
    }
    // No network at all by default.
    let (r, _) = run(
        make,
        self::config(),
        &format!(r#"await fetch("http://127.0.0.1:{allowed}/");"#),
    )
    .await;
    assert!(
        matches!(&r, Err(ActionError::Script { message }) if message.contains("is not allowed")),
        "{r:?}"
    );
}

async fn fetch_limit(make: MakeEngine) {
    let port = support::http_server("ok");
    let config = EngineConfig::new(limits().with_fetches(3))
        .with_net(NetPolicy::allow([format!("127.0.0.1:{port}")]));
    let (r, _) = run(
        make,
        config,
        &format!(r#"for (let i = 0; i < 5; i++) {{ await (await fetch("http://127.0.0.1:{port}/" + i)).text(); }}"#),
    )
    .await;
    assert_eq!(r, Err(ActionError::TooManyFetches { limit: 3 }));
}

// ---- limits and hostile code -------------------------------------------------------------------

async fn infinite_loop_times_out(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_time(Duration::from_millis(500)));
    let (r, _) = run(make, config, "while (true) {}").await;
    assert_eq!(r, Err(ActionError::Timeout { limit_ms: 500 }));
}

async fn never_resolving_promise_times_out(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_time(Duration::from_millis(500)));
    let (r, _) = run(
        make,
        config,
        r#"Lit.Actions.setResponse({ response: "early" }); await new Promise(() => {});"#,
    )
    .await;
    assert_eq!(r, Err(ActionError::Timeout { limit_ms: 500 }));
}

async fn memory_bomb_hits_memory_limit(make: MakeEngine) {
    let config = EngineConfig::new(
        limits()
            .with_memory_bytes(64 * 1024 * 1024)
            .with_time(Duration::from_secs(10)),
    );
    let (r, _) = run(
        make,
        config,
        r#"const hog = []; while (true) { hog.push(new Array(100000).fill(hog.length)); }"#,
    )
    .await;
    assert_eq!(
        r,
        Err(ActionError::MemoryLimit {
            limit_bytes: 64 * 1024 * 1024
        })
    );
}

async fn array_buffer_bomb_hits_memory_limit(make: MakeEngine) {
    // Memory outside the JavaScript heap (V8's heap limit does not cover it).
    let config = EngineConfig::new(
        limits()
            .with_memory_bytes(64 * 1024 * 1024)
            .with_time(Duration::from_secs(10)),
    );
    let (r, _) = run(
        make,
        config,
        r#"const hog = []; while (true) { hog.push(new Uint8Array(8 * 1024 * 1024).fill(7)); }"#,
    )
    .await;
    assert_eq!(
        r,
        Err(ActionError::MemoryLimit {
            limit_bytes: 64 * 1024 * 1024
        })
    );
}

async fn huge_response_is_rejected(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"Lit.Actions.setResponse({ response: "x".repeat(100 * 1024 + 1) });"#,
    )
    .await;
    assert_eq!(
        r,
        Err(ActionError::ResponseTooLarge {
            size: 100 * 1024 + 1,
            limit: 100 * 1024
        })
    );
}

async fn huge_logs_are_rejected(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"for (let i = 0; i < 100000; i++) console.log("line " + i);"#,
    )
    .await;
    assert_eq!(r, Err(ActionError::LogsTooLarge { limit: 100 * 1024 }));
}

async fn deep_recursion_overflows_the_stack(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"function down(n) { return down(n + 1) + 1; } down(0);"#,
    )
    .await;
    assert!(matches!(r, Err(ActionError::StackOverflow { .. })), "{r:?}");
}

async fn code_too_large_and_id_checked(make: MakeEngine) {
    let engine = make(EngineConfig::new(limits().with_code_bytes(1000)));
    let big = Action::new(format!("// {}", "x".repeat(1000)));
    assert_eq!(
        engine.run(&big, RecordingHost::new()).await,
        Err(ActionError::CodeTooLarge {
            size: 1003,
            limit: 1000
        })
    );
    let code = r#"Lit.Actions.setResponse({ response: "ok" });"#;
    let id = Action::new(code).id().to_string();
    let ok = Action::with_id(&id, code).unwrap();
    assert_eq!(
        engine
            .run(&ok, RecordingHost::new())
            .await
            .unwrap()
            .response
            .as_deref(),
        Some("ok")
    );
    let other = Action::new("1").id().clone();
    assert!(matches!(
        Action::with_id(&other.to_string(), code),
        Err(ActionError::IdMismatch { expected, .. }) if expected == other
    ));
}

async fn signature_and_call_limits(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_signatures(2).with_host_calls_per_kind(3));
    let (r, host) = run(
        make,
        config.clone(),
        r#"for (let i = 0; i < 3; i++) await Lit.Actions.signEcdsa({ toSign: [i], publicKey: "0x04", sigName: "s" + i });"#,
    )
    .await;
    assert_eq!(r, Err(ActionError::TooManySignatures { limit: 2 }));
    assert_eq!(host.calls().len(), 2);
    let (r, _) = run(
        make,
        config,
        r#"for (let i = 0; i < 4; i++) await Lit.Actions.getRpcUrl({ chain: "ethereum" });"#,
    )
    .await;
    assert_eq!(
        r,
        Err(ActionError::TooManyHostCalls {
            kind: "getRpcUrl".into(),
            limit: 3
        })
    );
}

/// Every way of reaching the machine fails inside the action, and nothing leaks out. On Deno the
/// refusals come from Deno's permissions (not from missing globals).
async fn no_files_env_processes_or_remote_modules(make: MakeEngine) {
    let engine = make(config()).name();
    let v = response(
        make,
        r#"const results = {};
           const attempt = async (name, f) => {
             try { results[name] = "LEAK: " + String(await f()).slice(0, 40); }
             catch (e) { results[name] = "denied: " + String(e && e.message); }
           };
           await attempt("Deno.readTextFile", () => Deno.readTextFile("/etc/passwd"));
           await attempt("node:fs", async () => (await import("node:fs")).readFileSync("/etc/passwd", "utf8"));
           await attempt("import file", async () => JSON.stringify(await import("file:///etc/passwd")));
           await attempt("Deno.env", () => Deno.env.get("HOME"));
           await attempt("process.env", () => { const h = process.env.HOME; if (h === undefined) throw 1; return h; });
           await attempt("node:process env", async () => { const h = (await import("node:process")).env.PATH; if (h === undefined) throw 1; return h; });
           await attempt("Deno.Command", () => new Deno.Command("/usr/bin/id").outputSync());
           await attempt("node:child_process", async () => (await import("node:child_process")).execFileSync("/usr/bin/id", [], { env: {} }));
           await attempt("remote import", async () => JSON.stringify(await import("https://deno.land/std@0.224.0/fmt/colors.ts")));
           await attempt("npm import", async () => JSON.stringify(await import("npm:left-pad")));
           await attempt("require", () => require("fs").readFileSync("/etc/passwd"));
           Lit.Actions.setResponse({ response: JSON.stringify(results) });"#,
    )
    .await;
    let results = v.as_object().unwrap();
    assert_eq!(results.len(), 11);
    for (name, result) in results {
        let result = result.as_str().unwrap();
        assert!(
            result.starts_with("denied: "),
            "{name} was not denied: {result}"
        );
        assert!(!result.contains("root:"), "{name} leaked: {result}");
        if engine == "deno" && name != "require" {
            assert!(
                result.contains("Requires") || result.contains("--no-npm"),
                "{name} was not refused by a Deno permission: {result}"
            );
        }
    }
}

/// An action cannot write frames of its own to the host channel (Deno: fd 1 via node:fs).
async fn forged_frames_are_not_accepted(make: MakeEngine) {
    let (r, _) = run(
        make,
        config(),
        r#"const body = new TextEncoder().encode(JSON.stringify({ op: "setResponse", args: { response: "forged" } }));
           const frame = new Uint8Array(20 + body.length);
           new DataView(frame.buffer).setUint32(0, body.length);
           frame.set(body, 20);
           let fs = null;
           try { fs = await import("node:fs"); } catch (_e) {}
           if (fs) { fs.writeSync(1, frame); await new Promise((r) => setTimeout(r, 50)); }
           Lit.Actions.setResponse({ response: fs ? "wrote" : "no fs" });"#,
    )
    .await;
    match r {
        // QuickJS: no way to reach any file descriptor.
        Ok(out) => assert_eq!(out.response.as_deref(), Some("no fs")),
        // Deno: the write happens, and the host ends the action instead of believing it.
        Err(e) => assert!(matches!(e, ActionError::SandboxViolation { .. }), "{e:?}"),
    }
}

/// An action that ends its own process (Deno) gets an error, never a result.
async fn exiting_the_process_is_an_error(make: MakeEngine) {
    for exit in ["Deno.exit(0)", "process.exit(0)"] {
        let (r, _) = run(
            make,
            config(),
            &format!(r#"Lit.Actions.setResponse({{ response: "before exit" }}); {exit};"#),
        )
        .await;
        assert!(
            matches!(
                &r,
                Err(ActionError::SandboxViolation { .. }) | Err(ActionError::Script { .. })
            ),
            "{exit}: {r:?}"
        );
    }
}

/// Actions run one after the other on the same engine share nothing.
async fn prototype_pollution_does_not_leak(make: MakeEngine) {
    let engine = make(config());
    let first = Action::new(
        r#"Object.prototype.polluted = "yes"; Array.prototype.map = () => "evil";
           JSON.stringify = () => "evil"; globalThis.leak = 1;
           Lit.Actions.setResponse({ response: "polluted" });"#,
    );
    assert_eq!(
        engine
            .run(&first, RecordingHost::new())
            .await
            .unwrap()
            .response
            .as_deref(),
        Some("polluted")
    );
    let second = Action::new(
        r#"Lit.Actions.setResponse({ response: JSON.stringify({ p: ({}).polluted === undefined,
              m: [1].map((x) => x + 1)[0], g: typeof leak }) });"#,
    );
    let out = engine.run(&second, RecordingHost::new()).await.unwrap();
    assert_eq!(
        out.response.as_deref(),
        Some(r#"{"p":true,"m":2,"g":"undefined"}"#)
    );
}

/// Hitting a limit in one action does not disturb actions running at the same time.
async fn limit_hit_does_not_affect_others(make: MakeEngine) {
    let engine = make(EngineConfig::new(
        limits().with_time(Duration::from_millis(1500)),
    ));
    let spin = Action::new("while (true) {}");
    let ok = Action::new(
        r#"await new Promise((r) => setTimeout(r, 50)); Lit.Actions.setResponse({ response: "fine" });"#,
    );
    let (a, b, c) = tokio::join!(
        engine.run(&spin, RecordingHost::new()),
        engine.run(&ok, RecordingHost::new()),
        engine.run(&ok, RecordingHost::new()),
    );
    assert_eq!(a, Err(ActionError::Timeout { limit_ms: 1500 }));
    assert_eq!(b.unwrap().response.as_deref(), Some("fine"));
    assert_eq!(c.unwrap().response.as_deref(), Some("fine"));
}

// ---- budgets: what the caller paid for, below the engine's limits ------------------------------
// Without a budget nothing changes: `infinite_loop_times_out`, `never_resolving_promise_times_out`,
// `signature_and_call_limits` and `limit_hit_does_not_affect_others` run without one.

async fn run_with_budget(
    make: MakeEngine,
    config: EngineConfig,
    code: &str,
    budget: Budget,
) -> (
    Result<lit_actions::ActionOutcome, ActionError>,
    Arc<RecordingHost>,
) {
    let host = RecordingHost::new();
    let engine = make(config);
    let action = Action::new(code).with_budget(budget);
    let r = engine.run(&action, host.clone()).await;
    (r, host)
}

fn time_exhausted(limit: u64) -> ActionError {
    ActionError::BudgetExhausted {
        resource: Budget::TIME.into(),
        limit,
    }
}

fn host_calls_exhausted(limit: u64) -> ActionError {
    ActionError::BudgetExhausted {
        resource: Budget::HOST_CALLS.into(),
        limit,
    }
}

/// A time budget below the limit stops the action, by name: busy (the engine interrupts it) or
/// idle (the host's deadline ends it).
async fn time_budget_ends_the_action(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_time(Duration::from_secs(30)));
    let budget = Budget::unlimited().with_time(Duration::from_millis(300));
    for code in [
        "while (true) {}",
        r#"Lit.Actions.setResponse({ response: "early" }); await new Promise(() => {});"#,
    ] {
        let (r, _) = run_with_budget(make, config.clone(), code, budget.clone()).await;
        assert_eq!(r, Err(time_exhausted(300)), "{code}");
    }
}

/// A budget at or above the limit does not raise it: the limit ends the action, as without one.
async fn time_budget_does_not_raise_the_limit(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_time(Duration::from_millis(500)));
    for time in [Duration::from_millis(500), Duration::from_secs(10)] {
        let budget = Budget::unlimited().with_time(time);
        let (r, _) = run_with_budget(make, config.clone(), "while (true) {}", budget).await;
        assert_eq!(r, Err(ActionError::Timeout { limit_ms: 500 }), "{time:?}");
    }
}

/// An action that ends within its time budget reports a duration below it.
async fn time_budget_is_not_spent_by_a_quick_action(make: MakeEngine) {
    let budget = Budget::unlimited().with_time(Duration::from_secs(3));
    let (r, _) = run_with_budget(
        make,
        config(),
        r#"await new Promise((r) => setTimeout(r, 20)); Lit.Actions.setResponse({ response: "in time" });"#,
        budget,
    )
    .await;
    let out = r.unwrap();
    assert_eq!(out.response.as_deref(), Some("in time"));
    assert!(out.usage.duration < Duration::from_secs(3));
}

/// A budget of 3 host calls: the 4th ends the action and the host never sees it.
async fn host_call_budget_stops_the_call_over_it(make: MakeEngine) {
    let budget = Budget::unlimited().with_host_calls(3);
    let (r, host) = run_with_budget(
        make,
        config(),
        r#"for (let i = 0; i < 4; i++) await Lit.Actions.getRpcUrl({ chain: "ethereum" });
           Lit.Actions.setResponse({ response: "not reached" });"#,
        budget.clone(),
    )
    .await;
    assert_eq!(r, Err(host_calls_exhausted(3)));
    let calls = host.calls();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c["call"] == "getRpcUrl"), "{calls:?}");

    // Exactly the budget is fine.
    let (r, host) = run_with_budget(
        make,
        config(),
        r#"for (let i = 0; i < 3; i++) await Lit.Actions.getRpcUrl({ chain: "ethereum" });
           Lit.Actions.setResponse({ response: "done" });"#,
        budget.clone(),
    )
    .await;
    let out = r.unwrap();
    assert_eq!(out.response.as_deref(), Some("done"));
    assert_eq!(out.usage.total_host_calls(), 3);
    assert_eq!(host.calls().len(), 3);

    // Calls made at once: those over the budget are refused before the host performs them.
    let (r, host) = run_with_budget(
        make,
        config(),
        r#"await Promise.all(Array.from({ length: 8 }, () => Lit.Actions.getRpcUrl({ chain: "ethereum" })));"#,
        budget,
    )
    .await;
    assert_eq!(r, Err(host_calls_exhausted(3)));
    assert!(host.calls().len() <= 3, "{:?}", host.calls());
}

/// Every billable kind counts against one budget (per-kind calls, signatures, fetches, a host call
/// the host fails); timers, logs, the response and a `runOnce` section's result do not.
async fn host_call_budget_counts_every_billable_call(make: MakeEngine) {
    let port = support::http_server("ok");
    let config = config().with_net(NetPolicy::allow([format!("127.0.0.1:{port}")]));
    let code = format!(
        r#"await Lit.Actions.getRpcUrl({{ chain: "ethereum" }});
           await (await fetch("http://127.0.0.1:{port}/")).text();
           await new Promise((r) => setTimeout(r, 5));
           console.log("free");
           await Lit.Actions.signEcdsa({{ toSign: [1], publicKey: "0x04", sigName: "s" }});
           try {{ await Lit.Actions.isPermittedAction({{ tokenId: "1", ipfsId: "Qm" }}); }} catch (_e) {{}}
           Lit.Actions.setResponse({{ response: "partial" }});
           const once = await Lit.Actions.runOnce({{ name: "tx" }}, async () => "r");
           Lit.Actions.setResponse({{ response: once }});"#
    );
    let (r, host) = run_with_budget(
        make,
        config.clone(),
        &code,
        Budget::unlimited().with_host_calls(5),
    )
    .await;
    let out = r.unwrap();
    assert_eq!(out.response.as_deref(), Some("r"));
    let usage = &out.usage;
    assert_eq!(usage.total_host_calls(), 5);
    assert_eq!((usage.signatures, usage.fetches), (1, 1));
    assert_eq!(
        usage.host_calls,
        [("getRpcUrl", 1), ("pkpInfo", 1), ("runOnce", 1)]
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect()
    );
    let names: Vec<Value> = host.calls().iter().map(|c| c["call"].clone()).collect();
    assert_eq!(
        names,
        ["getRpcUrl", "signEcdsa", "runOnce", "runOnceResult"]
    );

    // One fewer: `runOnce` is refused, and its section never runs.
    let (r, host) =
        run_with_budget(make, config, &code, Budget::unlimited().with_host_calls(4)).await;
    assert_eq!(r, Err(host_calls_exhausted(4)));
    let names: Vec<Value> = host.calls().iter().map(|c| c["call"].clone()).collect();
    assert_eq!(names, ["getRpcUrl", "signEcdsa"]);
}

/// An engine limit reached first, or at the same call, is named as without a budget.
async fn host_call_limits_come_before_the_budget(make: MakeEngine) {
    let config = EngineConfig::new(limits().with_host_calls_per_kind(3));
    for budget in [3, 10] {
        let (r, host) = run_with_budget(
            make,
            config.clone(),
            r#"for (let i = 0; i < 4; i++) await Lit.Actions.getRpcUrl({ chain: "ethereum" });"#,
            Budget::unlimited().with_host_calls(budget),
        )
        .await;
        assert_eq!(
            r,
            Err(ActionError::TooManyHostCalls {
                kind: "getRpcUrl".into(),
                limit: 3
            }),
            "budget {budget}"
        );
        assert_eq!(host.calls().len(), 3);
    }
}

// ---- the Lit.Actions functions added for Lit parity ----------------------------------------------

/// Keccak-256 of an Ethereum personal message, computed here with `sha3` (EIP-191 version 0x45).
fn eip191(message: &[u8]) -> [u8; 32] {
    use sha3::Digest as _;
    let mut h = sha3::Keccak256::new();
    h.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    h.update(message);
    h.finalize().into()
}

/// `ethPersonalSignMessageEcdsa` as Lit's docs write it: the host receives the UTF-8 bytes of the
/// message, whose EIP-191 hash is what the PKP signs; bad arguments are TypeErrors.
async fn eth_personal_sign_message(make: MakeEngine) {
    let host = RecordingHost::new();
    let engine = make(config());
    let action = Action::new(
        r#"
        const sigShare = await Lit.Actions.ethPersonalSignMessageEcdsa({ message: "Hello Wörld", publicKey, sigName: "sig1" });
        const errs = [];
        for (const a of [{ message: 1, publicKey, sigName: "s" }, { message: "m", sigName: "s" }, "m"]) {
          try { await Lit.Actions.ethPersonalSignMessageEcdsa(a); errs.push(null); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
        }
        Lit.Actions.setResponse({ response: JSON.stringify({ sigShare, errs }) });
        "#,
    )
    .with_param("publicKey", json!("0x04aa"));
    let id = action.id().to_string();
    let out = engine.run(&action, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"sigShare": "success", "errs": [
            "TypeError: Lit.Actions.ethPersonalSignMessageEcdsa: message must be a string, got a number",
            "TypeError: Lit.Actions.ethPersonalSignMessageEcdsa: publicKey must be a string, got undefined",
            "TypeError: Lit.Actions.ethPersonalSignMessageEcdsa takes one object argument, got a string",
        ]})
    );
    let message = "Hello Wörld".as_bytes().to_vec();
    assert_eq!(
        host.calls(),
        vec![
            json!({"call": "ethPersonalSignMessageEcdsa", "action": id, "message": message, "publicKey": "0x04aa", "sigName": "sig1"})
        ]
    );
    let req: lit_actions::host::EthPersonalSign = serde_json::from_value(json!({
        "message": message, "publicKey": "0x04aa", "sigName": "sig1"
    }))
    .unwrap();
    assert_eq!(req.digest(), eip191("Hello Wörld".as_bytes()));
    assert_eq!(out.usage.signatures, 1);
}

/// `signAsAction` / `getActionPublicKey` / `verifyActionSignature` as Lit's sign-as-action guide
/// writes them; the signature is checked here by k256 public-key recovery against the key derived
/// publicly from the root key and the action's id; tampered data, another action and Lit's other
/// schemes are refused.
async fn action_identity(make: MakeEngine) {
    let host = RecordingHost::new();
    let engine = make(config());
    let digest: [u8; 32] = {
        use sha3::Digest as _;
        sha3::Keccak256::digest(b"an action signs as itself").into()
    };
    let action = Action::new(
        r#"
        const signingScheme = "EcdsaK256Sha256";
        const actionIpfsCid = Lit.Auth.actionIpfsIdStack[Lit.Auth.actionIpfsIdStack.length - 1];
        const signature = await Lit.Actions.signAsAction({ toSign, sigName: "sig", signingScheme });
        const publicKey = await Lit.Actions.getActionPublicKey({ signingScheme, actionIpfsCid });
        const verified = await Lit.Actions.verifyActionSignature({ signingScheme, actionIpfsCid, toSign, signOutput: signature });
        const tampered = await Lit.Actions.verifyActionSignature({ signingScheme, actionIpfsCid, toSign: toSign.map((b, i) => i === 0 ? b ^ 1 : b), signOutput: signature });
        const otherAction = await Lit.Actions.verifyActionSignature({ signingScheme, actionIpfsCid: otherCid, toSign, signOutput: signature });
        const otherKey = await Lit.Actions.getActionPublicKey({ signingScheme, actionIpfsCid: otherCid });
        const errs = [];
        for (const f of [
          () => Lit.Actions.signAsAction({ toSign, sigName: "s2", signingScheme: "SchnorrEd25519Sha512" }),
          () => Lit.Actions.getActionPublicKey({ signingScheme: "Bls12381G1ProofOfPossession", actionIpfsCid }),
          () => Lit.Actions.signAsAction({ toSign, sigName: "s3", signingScheme: "Rot13" }),
          () => Lit.Actions.signAsAction({ toSign: [1, 2, 3], sigName: "s4", signingScheme }),
          () => Lit.Actions.signAsAction({ toSign, sigName: "s5" }),
          () => Lit.Actions.getActionPublicKey({ signingScheme, actionIpfsCid: "QmNotACid" }),
          () => Lit.Actions.verifyActionSignature({ signingScheme, actionIpfsCid, toSign, signOutput: "not json" }),
        ]) {
          try { await f(); errs.push(null); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
        }
        Lit.Actions.setResponse({ response: JSON.stringify({ signature, publicKey, verified, tampered, otherAction, otherKey, errs }) });
        "#,
    )
    .with_param("toSign", json!(digest.to_vec()))
    .with_param("otherCid", json!(lit_actions::ActionId::of(b"another action").to_string()));
    let id = action.id().clone();
    let out = engine.run(&action, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();

    // the key: derived publicly from the root key with the action's key id
    let root = *support::root_key().verifying_key().as_affine();
    let expected = |id: &lit_actions::ActionId| {
        use k256::elliptic_curve::sec1::ToEncodedPoint as _;
        let p = lit_crypto::ecdsa::pkp_public_key(&root, &lit_actions::host::action_key_id(id))
            .unwrap();
        hex::encode(p.to_encoded_point(false).as_bytes())
    };
    assert_eq!(v["publicKey"], expected(&id));
    let other = lit_actions::ActionId::of(b"another action");
    assert_eq!(v["otherKey"], expected(&other));
    assert_ne!(v["otherKey"], v["publicKey"]);

    // the signature, in Lit's SignedDataOutput shape, recovers to that key
    let sig: Value = serde_json::from_str(v["signature"].as_str().unwrap()).unwrap();
    assert_eq!(sig["verifying_key"], v["publicKey"]);
    assert_eq!(sig["signed_data"], hex::encode(digest));
    let rs_hex: String = serde_json::from_str(sig["signature"].as_str().unwrap()).unwrap();
    assert_eq!(rs_hex, rs_hex.to_uppercase());
    let signature = k256::ecdsa::Signature::from_slice(&hex::decode(&rs_hex).unwrap()).unwrap();
    let rid =
        k256::ecdsa::RecoveryId::from_byte(sig["recovery_id"].as_u64().unwrap() as u8).unwrap();
    let recovered =
        k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &signature, rid).unwrap();
    assert_eq!(
        hex::encode(recovered.to_encoded_point(false).as_bytes()),
        v["publicKey"].as_str().unwrap()
    );

    assert_eq!(
        (&v["verified"], &v["tampered"], &v["otherAction"]),
        (&json!(true), &json!(false), &json!(false))
    );
    let errs: Vec<Option<String>> = serde_json::from_value(v["errs"].clone()).unwrap();
    let expected_prefixes = [
        "Error: Lit.Actions.signAsAction: signing scheme \"SchnorrEd25519Sha512\" is not supported by this network",
        "Error: Lit.Actions.getActionPublicKey: signing scheme \"Bls12381G1ProofOfPossession\" is not supported",
        "Error: Lit.Actions.signAsAction: unknown signing scheme \"Rot13\"",
        "Error: Lit.Actions.signAsAction: toSign must be a 32-byte hash for EcdsaK256Sha256, got 3 bytes",
        "TypeError: Lit.Actions.signAsAction: signingScheme must be a string, got undefined",
        "Error: Lit.Actions.getActionPublicKey: actionIpfsCid \"QmNotACid\"",
        "Error: Lit.Actions.verifyActionSignature: signOutput is not the output of signAsAction",
    ];
    assert_eq!(errs.len(), expected_prefixes.len());
    for (g, e) in errs.iter().zip(expected_prefixes) {
        let g = g.as_deref().unwrap_or("no error");
        assert!(g.starts_with(e), "{g:?} does not start with {e:?}");
    }
    // one signature; the refused ones are not counted or signed
    assert_eq!(out.usage.signatures, 1);
    assert_eq!(
        host.calls()
            .iter()
            .filter(|c| c["call"] == "signAsAction")
            .count(),
        1
    );
}

/// `getLatestNonce` as Lit's docs write it (with ethers, elsewhere, it becomes a transaction's
/// nonce): the host's answer, `0x` hex; its errors are catchable; bad arguments are TypeErrors.
async fn latest_nonce(make: MakeEngine) {
    let v = response(
        make,
        r#"const nonce = await Lit.Actions.getLatestNonce({ address: "0x9d1a5EC58232A894eBFcB5e466E3075b23101B89", chain: "ethereum" });
           const errs = [];
           try { await Lit.Actions.getLatestNonce({ address: "0x1", chain: "nowhere" }); } catch (e) { errs.push(e.message); }
           try { await Lit.Actions.getLatestNonce({ address: 7, chain: "ethereum" }); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
           Lit.Actions.setResponse({ response: JSON.stringify({ nonce, n: parseInt(nonce, 16), errs }) });"#,
    )
    .await;
    assert_eq!(
        v,
        json!({"nonce": "0x2a", "n": 42, "errs": [
            "Lit.Actions.getLatestNonce: no RPC for chain nowhere",
            "TypeError: Lit.Actions.getLatestNonce: address must be a string, got a number",
        ]})
    );
}

/// `aesDecrypt` with Lit's format (AES-256-CBC, the IV first, PKCS #7), on a ciphertext made by
/// `openssl enc -aes-256-cbc`; the answer is the plaintext in hex, as Lit's; a wrong key or
/// length is a clear error.
async fn aes_decrypt(make: MakeEngine) {
    let v = response(
        make,
        r#"const hex = (s) => Uint8Array.from(s.match(/../g), (b) => parseInt(b, 16));
           const symmetricKey = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
           const ciphertext = hex("f0e0d0c0b0a090807060504030201000" + "2787c3f5d46f78e822d3885652e308e78cdab85802c92334fbbdefc5ee49ade2");
           const plaintextHex = await Lit.Actions.aesDecrypt({ symmetricKey, ciphertext });
           const text = new TextDecoder().decode(hex(plaintextHex));
           const errs = [];
           for (const a of [{ symmetricKey: symmetricKey.map((b) => b ^ 0xff), ciphertext }, { symmetricKey: symmetricKey.slice(0, 16), ciphertext },
                            { symmetricKey, ciphertext: ciphertext.slice(0, 20) }, { symmetricKey: "key", ciphertext }]) {
             try { await Lit.Actions.aesDecrypt(a); errs.push(null); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
           }
           Lit.Actions.setResponse({ response: JSON.stringify({ plaintextHex, text, errs }) });"#,
    )
    .await;
    assert_eq!(
        v,
        json!({
            "plaintextHex": hex::encode("Hello from Lit, AES-256-CBC!"),
            "text": "Hello from Lit, AES-256-CBC!",
            "errs": [
                "Error: Lit.Actions.aesDecrypt: the ciphertext does not decrypt under this key (bad padding)",
                "Error: Lit.Actions.aesDecrypt: symmetricKey must be 32 bytes (AES-256), got 16",
                "Error: Lit.Actions.aesDecrypt: ciphertext must be a 16-byte IV followed by one or more 16-byte blocks, got 20 bytes",
                "TypeError: Lit.Actions.aesDecrypt: symmetricKey must be a Uint8Array or an array of bytes, got a string",
            ]
        })
    );
}

/// `Lit.Headers`: exactly the headers the caller passed (none: an empty object), frozen.
async fn lit_headers(make: MakeEngine) {
    let engine = make(config());
    let code = r#"let assigned = true;
        try { Lit.Headers["x-new"] = "1"; assigned = Lit.Headers["x-new"] === "1"; } catch (_e) { assigned = false; }
        Lit.Actions.setResponse({ response: JSON.stringify({ headers: Lit.Headers, key: Lit.Headers["x-api-key"] ?? null, assigned }) });"#;
    let headers = [("x-api-key", "k-123"), ("user-agent", "lit-test/1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let out = engine
        .run(
            &Action::new(code).with_headers(headers),
            RecordingHost::new(),
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"headers": {"user-agent": "lit-test/1", "x-api-key": "k-123"}, "key": "k-123", "assigned": false})
    );
    assert_eq!(out.usage.total_host_calls(), 0);
    let out = engine
        .run(&Action::new(code), RecordingHost::new())
        .await
        .unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(v, json!({"headers": {}, "key": null, "assigned": false}));
}

/// `Lit.Auth` has Lit's five fields on both engines.
async fn lit_auth_fields(make: MakeEngine) {
    let v = response(
        make,
        r#"Lit.Actions.setResponse({ response: JSON.stringify({ keys: Object.keys(Lit.Auth).sort(), same: LitAuth === Lit.Auth,
             types: [Array.isArray(Lit.Auth.actionIpfsIdStack), Array.isArray(Lit.Auth.authMethodContexts), Array.isArray(Lit.Auth.resources)] }) });"#,
    )
    .await;
    assert_eq!(
        v,
        json!({"keys": ["actionIpfsIdStack", "authMethodContexts", "authSigAddress", "customAuthResource", "resources"],
               "same": true, "types": [true, true, true]})
    );
}

/// The recursive action of the `call` tests: calls itself (its id in `self`) `depth` more times
/// and answers with the innermost stack.
const RECURSE: &str = r#"
const { self, depth } = jsParams;
if (depth === 0) {
  Lit.Actions.setResponse({ response: JSON.stringify({ stack: Lit.Auth.actionIpfsIdStack, x: jsParams.x ?? null }) });
} else {
  Lit.Actions.setResponse({ response: await Lit.Actions.call({ ipfsId: self, params: { self, depth: depth - 1, x: jsParams.x } }) });
}
"#;

/// `call` as Lit's docs write it: the child's response comes back, `actionIpfsIdStack` grows by
/// one per call, Lit's depth limit of 5 holds (a sixth nested call is refused by name), the child's
/// usage is the parent's, and bad arguments are TypeErrors.
async fn call_child_actions(make: MakeEngine) {
    let host = RecordingHost::new();
    let engine = make(config());
    let child = host.upload(&engine, RECURSE);
    let parent = Action::new(
        r#"const r = await Lit.Actions.call({ ipfsId: child, params: { self: child, depth: 4, x: "hi" } });
           const errs = [];
           for (const a of [{ ipfsId: 5 }, { ipfsId: child, params: [1] }, { ipfsId: "QmNotACid" }, { ipfsId: missing }]) {
             try { await Lit.Actions.call(a); errs.push(null); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
           }
           Lit.Actions.setResponse({ response: JSON.stringify({ r: JSON.parse(r), errs }) });"#,
    )
    .with_param("child", json!(child))
    .with_param("missing", json!(lit_actions::ActionId::of(b"never uploaded").to_string()));
    let parent_id = parent.id().to_string();
    let out = engine.run(&parent, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    // the parent, then the child called 5 times (depth 4 → 0): depth 5 is allowed
    let mut stack = vec![parent_id.clone()];
    stack.extend(std::iter::repeat_n(child.clone(), 5));
    assert_eq!(v["r"], json!({"stack": stack, "x": "hi"}));
    let errs: Vec<String> = serde_json::from_value(v["errs"].clone()).unwrap();
    let expected_prefixes = [
        "TypeError: Lit.Actions.call: ipfsId must be a string, got a number",
        "TypeError: Lit.Actions.call: params must be an object, got an array",
        "Error: Lit.Actions.call: ipfsId \"QmNotACid\"",
        "Error: Lit.Actions.call: no action",
    ];
    for (g, e) in errs.iter().zip(expected_prefixes) {
        assert!(g.starts_with(e), "{g:?} does not start with {e:?}");
    }
    // 5 calls that ran and one refused by the host, all billed; the children's calls are the parent's
    assert_eq!(out.usage.host_calls.get("call"), Some(&6));

    // depth 6: the sixth nested call is refused by name, inside the fifth child
    let too_deep = Action::new(RECURSE)
        .with_param("self", json!(child))
        .with_param("depth", json!(6));
    let host = RecordingHost::new();
    host.upload(&engine, RECURSE);
    let err = engine.run(&too_deep, host).await.unwrap_err().to_string();
    assert!(
        err.contains("the recursion limit of a child action is 5") && err.contains("depth 6"),
        "{err}"
    );
}

/// The decryption and encryption calls take the condition list under any of Lit's request keys
/// (exactly one), and pass it on as it is.
async fn condition_lists_under_lit_s_request_keys(make: MakeEngine) {
    let host = RecordingHost::new();
    let engine = make(config());
    let action = Action::new(
        r#"
        const args = { ciphertext: "Y3Q=", dataToEncryptHash: "ab", chain: "ethereum" };
        const out = [];
        out.push(await Lit.Actions.decryptAndCombine({ ...args, evmContractConditions: [{ e: 1 }] }));
        out.push(await Lit.Actions.decryptToSingleNode({ ...args, unifiedAccessControlConditions: [{ u: 2 }] }));
        out.push((await Lit.Actions.encrypt({ unifiedAccessControlConditions: [{ u: 3 }], to_encrypt: [1] })).ciphertext);
        for (const extra of [{ accessControlConditions: [], evmContractConditions: [] }, {}]) {
          try { await Lit.Actions.decryptAndCombine({ ...args, ...extra }); out.push(null); }
          catch (e) { out.push(`${e.name}: ${e.message}`); }
        }
        Lit.Actions.setResponse({ response: JSON.stringify(out) });
        "#,
    );
    let id = action.id().to_string();
    let out = engine.run(&action, host.clone()).await.unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    let keys = "accessControlConditions, evmContractConditions, unifiedAccessControlConditions";
    assert_eq!(
        v,
        json!([
            "plain:Y3Q=",
            "single:Y3Q=",
            "01",
            format!("TypeError: Lit.Actions.decryptAndCombine: give exactly one of {keys}; got accessControlConditions, evmContractConditions"),
            format!("TypeError: Lit.Actions.decryptAndCombine: give exactly one of {keys}; got none"),
        ])
    );
    let a = id.as_str();
    let calls = host.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        calls[0],
        json!({"call": "decryptAndCombine", "action": a, "accessControlConditions": [{"e": 1}], "ciphertext": "Y3Q=", "dataToEncryptHash": "ab", "authSig": null, "chain": "ethereum"})
    );
    assert_eq!(calls[1]["accessControlConditions"], json!([{"u": 2}]));
    assert_eq!(calls[2]["accessControlConditions"], json!([{"u": 3}]));
}

/// `decryptToSingleNode` (arguments as `decryptAndCombine`'s) reaches the host; `claimKey` is
/// checked and refused by a host that does not offer it.
async fn single_node_decryption_and_claims(make: MakeEngine) {
    let v = response(
        make,
        r#"const plain = await Lit.Actions.decryptToSingleNode({ accessControlConditions: [{ c: 1 }], ciphertext: "Y3Q=", dataToEncryptHash: "ab", authSig: null, chain: "ethereum" });
           const errs = [];
           for (const f of [() => Lit.Actions.decryptToSingleNode({ ciphertext: "x", dataToEncryptHash: "ab", chain: "ethereum" }),
                            () => Lit.Actions.claimKey({ keyId: 1 }), () => Lit.Actions.claimKey({ keyId: "user-1" })]) {
             try { await f(); errs.push(null); } catch (e) { errs.push(`${e.name}: ${e.message}`); }
           }
           Lit.Actions.setResponse({ response: JSON.stringify({ plain, errs }) });"#,
    )
    .await;
    assert_eq!(
        v,
        json!({"plain": "single:Y3Q=", "errs": [
            "TypeError: Lit.Actions.decryptToSingleNode: give exactly one of accessControlConditions, evmContractConditions, unifiedAccessControlConditions; got none",
            "TypeError: Lit.Actions.claimKey: keyId must be a string, got a number",
            "Error: Lit.Actions.claimKey: claimKey is not supported by this node",
        ]})
    );
}

macro_rules! conformance {
    ($engine:ident, $make:path) => {
        mod $engine {
            conformance!(@tests $make;
                responses_params_and_auth, no_response_is_none, logs_are_captured,
                lit_style_iife_and_timers, cleared_timers_do_not_keep_the_action_alive, text_encoding, bytes_and_strings, web_crypto, every_host_call_round_trips, run_once_on_another_node,
                concurrent_host_calls, host_errors_are_catchable, unknown_calls_and_wrong_types_throw,
                uncaught_exception_is_a_script_error, errors_in_callbacks_and_unhandled_rejections, fetch_allowed_host, fetch_not_allowed_host,
                fetch_limit, infinite_loop_times_out, never_resolving_promise_times_out,
                memory_bomb_hits_memory_limit, array_buffer_bomb_hits_memory_limit, huge_response_is_rejected, huge_logs_are_rejected,
                deep_recursion_overflows_the_stack, code_too_large_and_id_checked,
                signature_and_call_limits, no_files_env_processes_or_remote_modules,
                forged_frames_are_not_accepted, exiting_the_process_is_an_error, prototype_pollution_does_not_leak,
                limit_hit_does_not_affect_others, time_budget_ends_the_action,
                time_budget_does_not_raise_the_limit, time_budget_is_not_spent_by_a_quick_action,
                host_call_budget_stops_the_call_over_it, host_call_budget_counts_every_billable_call,
                host_call_limits_come_before_the_budget, eth_personal_sign_message, action_identity,
                latest_nonce, aes_decrypt, lit_headers, lit_auth_fields, call_child_actions,
                single_node_decryption_and_claims, condition_lists_under_lit_s_request_keys);
        }
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($make).await
            }
        )*
    };
}

conformance!(quickjs, crate::support::quickjs);
conformance!(deno, crate::support::deno);

/// The warm pool: the cases where process reuse could matter.
mod deno_pooled {
    conformance!(@tests crate::support::deno_pooled;
        prototype_pollution_does_not_leak, responses_params_and_auth, limit_hit_does_not_affect_others);
}
