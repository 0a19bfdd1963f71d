//! The `ethers` v5 global on every engine, loaded from the npm package's browser bundle that
//! `./test.sh` installs. The actions are written the way Lit's documentation writes them; every
//! result is checked in Rust by an independent implementation: keccak256 from `sha3`, SHA-256 from
//! `sha2`, addresses, EIP-191 hashes and signatures from `lit_crypto::eth` over `k256`, and RLP
//! (for transactions) written here from the Ethereum Yellow Paper's definition (appendix B).
//! Also: `ethers` is loaded only when used, and a node without the bundle answers a use of it
//! with an error naming the missing package.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use k256::ecdsa::SigningKey;
use lit_actions::engine::ethers::{find_ethers, ETHERS_ENV};
use lit_actions::{
    Action, ActionError, DenoConfig, DenoEngine, EngineConfig, EthersSource, QuickJsEngine,
};
use lit_crypto::eth::{eip191_hash, personal_sign, recover_address, Address};
use rand_core::RngCore as _;
use serde_json::{json, Value};
use sha2::Sha256;
use sha3::{Digest as _, Keccak256};
use support::{limits, MakeEngine, RecordingHost};

/// A configuration with the installed bundle (found as a node finds it).
fn config() -> EngineConfig {
    let bundle = find_ethers().unwrap_or_else(|| {
        panic!(
            "the ethers bundle is not installed: run ./test.sh once (it installs ethers@5.7.2 into \
             .tools/npm-ethers), or set {ETHERS_ENV} to its dist/ethers.umd.min.js"
        )
    });
    // QuickJS interprets ethers' elliptic-curve code: a wallet's key and signature take seconds
    EngineConfig::new(limits().with_time(std::time::Duration::from_secs(60)))
        .with_ethers(EthersSource::File(bundle))
}

/// Runs `action` and parses its JSON response.
async fn response(make: MakeEngine, config: EngineConfig, action: Action) -> Value {
    let out = make(config)
        .run(&action, RecordingHost::new())
        .await
        .unwrap_or_else(|e| panic!("action failed: {e}"));
    serde_json::from_str(out.response.as_deref().expect("no response")).unwrap()
}

fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A secp256k1 key from the test's seeded RNG (`LIT_TEST_SEED` replays a run).
fn key(label: &str) -> SigningKey {
    let (mut rng, _) = lit_crypto::testing::seeded_rng(label, rand_core::OsRng.next_u64());
    SigningKey::random(&mut rng)
}

// ---- utils: hashing, bytes, numbers --------------------------------------------------------------

async fn hashes_and_bytes(make: MakeEngine) {
    let v = response(
        make,
        config(),
        Action::new(
            r#"
            const message = "Hello World";
            const hash = ethers.utils.keccak256(ethers.utils.toUtf8Bytes(message));
            const bytes = ethers.utils.arrayify(hash);
            Lit.Actions.setResponse({ response: JSON.stringify({
              hash,
              bytes: Array.from(bytes),
              isUint8Array: bytes instanceof Uint8Array,
              utf8: Array.from(ethers.utils.toUtf8Bytes("héllo ✓")),
              utf8Back: ethers.utils.toUtf8String(ethers.utils.toUtf8Bytes("héllo ✓")),
              hexlify: ethers.utils.hexlify([1, 2, 255]),
              random: (() => {
                const a = ethers.utils.randomBytes(32), b = ethers.utils.randomBytes(32);
                return a.length === 32 && ethers.utils.hexlify(a) !== ethers.utils.hexlify(b);
              })(),
              id: ethers.utils.id(message),
              sha256: ethers.utils.sha256(ethers.utils.toUtf8Bytes(message)),
              packed: ethers.utils.solidityKeccak256(["address", "uint256"],
                ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 42]),
            }) });
            "#,
        ),
    )
    .await;
    let hash = keccak(b"Hello World");
    let mut packed = hex::decode("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
    packed.extend_from_slice(&[0u8; 31]);
    packed.push(42);
    assert_eq!(
        v,
        json!({
            "hash": hex0x(&hash),
            "bytes": hash.to_vec(),
            "isUint8Array": true,
            "utf8": "héllo ✓".as_bytes(),
            "utf8Back": "héllo ✓",
            "hexlify": "0x0102ff",
            "random": true,
            "id": hex0x(&hash),
            "sha256": hex0x(&Sha256::digest(b"Hello World")),
            "packed": hex0x(&keccak(&packed)),
        })
    );
}

async fn big_numbers_and_units(make: MakeEngine) {
    let v = response(
        make,
        config(),
        Action::new(
            r#"
            const a = ethers.BigNumber.from("123456789012345678901234567890");
            const b = ethers.BigNumber.from(2).pow(100);
            Lit.Actions.setResponse({ response: JSON.stringify({
              mul: a.mul(3).toString(),
              sumHex: a.add(b).toHexString(),
              div: a.div(b).toNumber(),
              gt: a.gt(b),
              isBigNumber: ethers.BigNumber.isBigNumber(a),
              wei: ethers.utils.parseEther("1.5").toString(),
              gwei: ethers.utils.parseUnits("20", "gwei").toString(),
              formatted: ethers.utils.formatUnits("1234567", 6),
              ether: ethers.utils.formatEther(ethers.constants.WeiPerEther.mul(7).div(4)),
            }) });
            "#,
        ),
    )
    .await;
    let a: u128 = 123_456_789_012_345_678_901_234_567_890;
    let b: u128 = 1 << 100;
    assert_eq!(
        v,
        json!({
            "mul": (a * 3).to_string(),
            "sumHex": format!("{:#x}", a + b),
            "div": a / b,
            "gt": a > b,
            "isBigNumber": true,
            "wei": "1500000000000000000",
            "gwei": "20000000000",
            "formatted": "1.234567",
            "ether": "1.75",
        })
    );
}

// ---- wallets and signatures ----------------------------------------------------------------------

async fn wallet_signs_and_recovers(make: MakeEngine) {
    let key = key("wallet_signs_and_recovers");
    let address = Address::from_public_key(key.verifying_key());
    let message = "Sign in to Lit ✓ 42";
    // a signature made outside ethers, for ethers to verify
    let foreign_message = "made by lit_crypto";
    let foreign = personal_sign(&key, foreign_message.as_bytes()).unwrap();
    let action = Action::new(
        r#"
        const go = async () => {
          const wallet = new ethers.Wallet(privateKey);
          const signature = await wallet.signMessage(message);
          const sig = ethers.utils.splitSignature(signature);
          Lit.Actions.setResponse({ response: JSON.stringify({
            address: wallet.address,
            computed: ethers.utils.computeAddress(wallet.publicKey),
            signature,
            v: sig.v,
            hashMessage: ethers.utils.hashMessage(message),
            verified: ethers.utils.verifyMessage(message, signature),
            recovered: ethers.utils.recoverAddress(ethers.utils.hashMessage(message), signature),
            foreign: ethers.utils.verifyMessage(foreignMessage, foreignSignature),
            bytesMessage: await wallet.signMessage(ethers.utils.arrayify(ethers.utils.keccak256("0x01"))),
          }) });
        };
        go();
        "#,
    )
    .with_param("privateKey", hex0x(&key.to_bytes()).into())
    .with_param("message", message.into())
    .with_param("foreignMessage", foreign_message.into())
    .with_param("foreignSignature", hex0x(&foreign).into());
    let v = response(make, config(), action).await;

    let expected = personal_sign(&key, message.as_bytes()).unwrap();
    let hash = eip191_hash(message.as_bytes());
    assert_eq!(
        recover_address(&hash, &expected).unwrap(),
        address,
        "independent check of the independent implementation"
    );
    let digest = keccak(&[1]);
    let checksum = address.to_checksum();
    assert_eq!(
        v,
        json!({
            "address": checksum,
            "computed": checksum,
            // both sides sign deterministically (RFC 6979) with a low s: the same bytes
            "signature": hex0x(&expected),
            "v": expected[64],
            "hashMessage": hex0x(&hash),
            "verified": checksum,
            "recovered": checksum,
            "foreign": checksum,
            "bytesMessage": hex0x(&personal_sign(&key, &digest).unwrap()),
        })
    );
}

// ---- transactions --------------------------------------------------------------------------------

/// An RLP item (Yellow Paper, appendix B).
enum Rlp {
    Bytes(Vec<u8>),
    List(Vec<Rlp>),
}

impl Rlp {
    /// A scalar: big-endian without leading zeros (zero is the empty string).
    fn uint(n: u128) -> Self {
        let bytes = n.to_be_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Rlp::Bytes(bytes[first..].to_vec())
    }

    /// 32 bytes as a scalar (a signature's r or s).
    fn scalar(bytes: &[u8]) -> Self {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Rlp::Bytes(bytes[first..].to_vec())
    }

    fn encode(&self) -> Vec<u8> {
        fn with_length(offset: u8, payload: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            if payload.len() < 56 {
                out.push(offset + payload.len() as u8);
            } else {
                let len = payload.len().to_be_bytes();
                let first = len.iter().position(|b| *b != 0).unwrap();
                out.push(offset + 55 + (len.len() - first) as u8);
                out.extend_from_slice(&len[first..]);
            }
            out.extend_from_slice(payload);
            out
        }
        match self {
            Rlp::Bytes(b) if b.len() == 1 && b[0] < 0x80 => b.clone(),
            Rlp::Bytes(b) => with_length(0x80, b),
            Rlp::List(items) => {
                let payload: Vec<u8> = items.iter().flat_map(Rlp::encode).collect();
                with_length(0xc0, &payload)
            }
        }
    }
}

async fn transactions_serialize_and_sign(make: MakeEngine) {
    let key = key("transactions_serialize_and_sign");
    let address = Address::from_public_key(key.verifying_key());
    let to = hex::decode("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
    let chain_id: u128 = 175_177;
    let (nonce, gas_price, gas_limit, value) =
        (7u128, 20_000_000_000u128, 21_000u128, 10u128.pow(16));
    let data = vec![0xde, 0xad, 0xbe, 0xef];
    // legacy with EIP-155 replay protection
    let fields = || {
        vec![
            Rlp::uint(nonce),
            Rlp::uint(gas_price),
            Rlp::uint(gas_limit),
            Rlp::Bytes(to.clone()),
            Rlp::uint(value),
            Rlp::Bytes(data.clone()),
        ]
    };
    let mut unsigned = fields();
    unsigned.extend([Rlp::uint(chain_id), Rlp::uint(0), Rlp::uint(0)]);
    let unsigned = Rlp::List(unsigned).encode();
    let (sig, rec) = key.sign_prehash_recoverable(&keccak(&unsigned)).unwrap();
    let (r, s) = sig.split_bytes();
    let mut signed = fields();
    signed.extend([
        Rlp::uint(chain_id * 2 + 35 + u128::from(rec.to_byte())),
        Rlp::scalar(&r),
        Rlp::scalar(&s),
    ]);
    let signed = Rlp::List(signed).encode();
    // EIP-1559 (type 2)
    let fields_1559 = || {
        vec![
            Rlp::uint(1),
            Rlp::uint(0),
            Rlp::uint(1_000_000_000),
            Rlp::uint(30_000_000_000),
            Rlp::uint(50_000),
            Rlp::Bytes(to.clone()),
            Rlp::uint(1),
            Rlp::Bytes(data.clone()),
            Rlp::List(vec![]),
        ]
    };
    let typed = |body: Vec<u8>| [vec![2u8], body].concat();
    let unsigned_1559 = typed(Rlp::List(fields_1559()).encode());
    let (sig2, rec2) = key
        .sign_prehash_recoverable(&keccak(&unsigned_1559))
        .unwrap();
    let (r2, s2) = sig2.split_bytes();
    let mut signed_1559 = fields_1559();
    signed_1559.extend([
        Rlp::uint(u128::from(rec2.to_byte())),
        Rlp::scalar(&r2),
        Rlp::scalar(&s2),
    ]);
    let signed_1559 = typed(Rlp::List(signed_1559).encode());

    // As Lit's docs do it: the hash to sign is keccak256 of the serialized unsigned transaction,
    // and the signature (here made in Rust, as a PKP's would be) is joined to it.
    let action = Action::new(
        r#"
        const go = async () => {
          const wallet = new ethers.Wallet(privateKey);
          const tx = {
            to: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            nonce: 7,
            gasLimit: ethers.BigNumber.from(21000),
            gasPrice: ethers.utils.parseUnits("20", "gwei"),
            value: ethers.utils.parseEther("0.01"),
            data: "0xdeadbeef",
            chainId: 175177,
          };
          const unsigned = ethers.utils.serializeTransaction(tx);
          const toSign = ethers.utils.arrayify(ethers.utils.keccak256(unsigned));
          const joined = ethers.utils.serializeTransaction(tx, ethers.utils.joinSignature(signature));
          const parsed = ethers.utils.parseTransaction(joined);
          const tx1559 = {
            type: 2, chainId: 1, nonce: 0, maxPriorityFeePerGas: 1000000000,
            maxFeePerGas: 30000000000, gasLimit: 50000, to: tx.to, value: 1, data: "0xdeadbeef",
            accessList: [],
          };
          Lit.Actions.setResponse({ response: JSON.stringify({
            unsigned,
            toSign: ethers.utils.hexlify(toSign),
            joined,
            signed: await wallet.signTransaction(tx),
            from: parsed.from,
            hash: parsed.hash,
            value: parsed.value.toString(),
            unsigned1559: ethers.utils.serializeTransaction(tx1559),
            signed1559: await wallet.signTransaction(tx1559),
          }) });
        };
        go();
        "#,
    )
    .with_param("privateKey", hex0x(&key.to_bytes()).into())
    .with_param(
        "signature",
        json!({ "r": hex0x(&r), "s": hex0x(&s), "recoveryParam": rec.to_byte() }),
    );
    let v = response(make, config(), action).await;
    assert_eq!(
        v,
        json!({
            "unsigned": hex0x(&unsigned),
            "toSign": hex0x(&keccak(&unsigned)),
            "joined": hex0x(&signed),
            "signed": hex0x(&signed),
            "from": address.to_checksum(),
            "hash": hex0x(&keccak(&signed)),
            "value": value.to_string(),
            "unsigned1559": hex0x(&unsigned_1559),
            "signed1559": hex0x(&signed_1559),
        })
    );
}

/// A JSON-RPC node on loopback answering `eth_chainId`, `net_version`, `eth_blockNumber` and
/// `eth_getBalance` with fixed values (one request per connection).
fn json_rpc_server() -> u16 {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let req: Value = serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&body)));
                let result = match req["method"].as_str().unwrap() {
                    "eth_chainId" => json!("0x2ac49"),
                    "net_version" => json!("175177"),
                    "eth_blockNumber" => json!("0x1234"),
                    "eth_getBalance" => json!("0xde0b6b3a7640000"),
                    other => panic!("unexpected JSON-RPC method {other}"),
                };
                let answer =
                    json!({ "jsonrpc": "2.0", "id": req["id"], "result": result }).to_string();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    port
}

/// A provider on the chain's RPC URL, as Lit actions read chain state: ethers' own `fetch` use.
///
/// On QuickJS a cleared timer still keeps the action alive until it would have fired (the
/// prelude's `clearTimeout` does not end the host's sleep), and ethers arms a 120 s timeout
/// around every request: there the provider is given a 1 s request timeout.
async fn json_rpc_provider(make: MakeEngine) {
    let port = json_rpc_server();
    let config = config().with_net(lit_actions::NetPolicy::allow([format!("127.0.0.1:{port}")]));
    let url = format!("http://127.0.0.1:{port}/");
    let connection = if make(config.clone()).name() == "quickjs" {
        json!({ "url": url, "timeout": 1000 })
    } else {
        json!(url)
    };
    let v = response(
        make,
        config,
        Action::new(
            r#"
            const provider = new ethers.providers.JsonRpcProvider(connection);
            const network = await provider.getNetwork();
            const block = await provider.getBlockNumber();
            const balance = await provider.getBalance("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
            Lit.Actions.setResponse({ response: JSON.stringify({
              chainId: network.chainId, block, balance: ethers.utils.formatEther(balance),
            }) });
            "#,
        )
        .with_param("connection", connection),
    )
    .await;
    assert_eq!(
        v,
        json!({"chainId": 175177, "block": 0x1234, "balance": "1.0"})
    );
}

/// Lit's documentation example: sign the keccak256 of a message with a PKP.
async fn lit_docs_sign_ecdsa(make: MakeEngine) {
    let host = RecordingHost::new();
    let action = Action::new(
        r#"
        const go = async () => {
          const toSign = ethers.utils.arrayify(ethers.utils.keccak256(
            ethers.utils.toUtf8Bytes("Hello World")));
          const sigShare = await LitActions.signEcdsa({ toSign, publicKey, sigName: "sig1" });
        };
        go();
        "#,
    )
    .with_param("publicKey", "0x04aa".into());
    make(config()).run(&action, host.clone()).await.unwrap();
    let calls = host.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["call"], "signEcdsa");
    assert_eq!(calls[0]["toSign"], json!(keccak(b"Hello World").to_vec()));
}

// ---- loading -------------------------------------------------------------------------------------

async fn loaded_on_first_use(make: MakeEngine) {
    let v = response(
        make,
        config(),
        Action::new(
            r#"
            const before = Object.getOwnPropertyDescriptor(globalThis, "ethers");
            const version = ethers.version;
            const after = Object.getOwnPropertyDescriptor(globalThis, "ethers");
            Lit.Actions.setResponse({ response: JSON.stringify({
              lazy: typeof before.get === "function" && !("value" in before),
              enumerable: before.enumerable,
              loaded: after.value === ethers && typeof after.get === "undefined",
              version,
              same: ethers.utils === globalThis.ethers.utils,
            }) });
            "#,
        ),
    )
    .await;
    assert_eq!(
        v,
        json!({"lazy": true, "enumerable": false, "loaded": true, "version": "ethers/5.7.2", "same": true})
    );
    // an action may set its own `ethers`, or be given one as a parameter
    let v = response(
        make,
        config(),
        Action::new(
            r#"const given = ethers; ethers = { mine: true };
               Lit.Actions.setResponse({ response: JSON.stringify({ given, mine: ethers.mine }) });"#,
        )
        .with_param("ethers", "param".into()),
    )
    .await;
    assert_eq!(v, json!({"given": "param", "mine": true}));
}

/// Asserts a run failed because the node has no bundle.
fn assert_missing(r: Result<lit_actions::ActionOutcome, ActionError>) {
    match r {
        Err(ActionError::Script { message }) => {
            for part in ["ReferenceError", "ethers@5", "./test.sh", ETHERS_ENV] {
                assert!(message.contains(part), "{part:?} not in {message:?}");
            }
        }
        other => panic!("expected the missing-ethers error, got {other:?}"),
    }
}

async fn missing_bundle_is_a_clear_error(make: MakeEngine, config: EngineConfig) {
    let engine = make(config);
    let r = engine
        .run(
            &Action::new(
                r#"const hash = ethers.utils.keccak256(ethers.utils.toUtf8Bytes("x"));
                   Lit.Actions.setResponse({ response: hash });"#,
            ),
            RecordingHost::new(),
        )
        .await;
    assert_missing(r);
    // catchable like any ReferenceError; actions without ethers are not affected
    let out = engine
        .run(
            &Action::new(
                r#"let name; try { ethers.BigNumber.from(1); } catch (e) { name = e.name; }
                   Lit.Actions.setResponse({ response: name });"#,
            ),
            RecordingHost::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.response.as_deref(), Some("ReferenceError"));
}

async fn without_the_bundle(make: MakeEngine) {
    missing_bundle_is_a_clear_error(
        make,
        EngineConfig::new(limits()).with_ethers(EthersSource::Off),
    )
    .await;
}

macro_rules! ethers_suite {
    ($engine:ident, $make:path) => {
        mod $engine {
            ethers_suite!(@tests $make;
                hashes_and_bytes, big_numbers_and_units, wallet_signs_and_recovers,
                transactions_serialize_and_sign, lit_docs_sign_ecdsa, json_rpc_provider, loaded_on_first_use,
                without_the_bundle);
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

ethers_suite!(quickjs, crate::support::quickjs);
ethers_suite!(deno, crate::support::deno);

/// Deno evaluating the bundle when a process starts (before its action arrives) rather than on
/// first use: `ethers` is already a plain global when the action starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deno_preloads_ethers_when_asked() {
    support::deno(config()); // fails loudly without deno
    let engine = DenoEngine::new(
        DenoConfig::new(config())
            .with_pool_size(1)
            .with_preloaded_ethers(true),
    )
    .unwrap();
    engine.warm_up().await.unwrap();
    let out = lit_actions::Engine::run(
        &engine,
        &Action::new(
            r#"const d = Object.getOwnPropertyDescriptor(globalThis, "ethers");
               Lit.Actions.setResponse({ response: JSON.stringify({
                 preloaded: d.value === ethers && d.get === undefined,
                 hash: ethers.utils.keccak256(ethers.utils.toUtf8Bytes("Hello World")),
               }) });"#,
        ),
        RecordingHost::new(),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_str(out.response.as_deref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"preloaded": true, "hash": hex0x(&keccak(b"Hello World"))})
    );
}

/// A bundle configured explicitly but unreadable, or not ethers v5, stops the engine from
/// starting (a node operator's typo shows at start-up), naming the file.
#[test]
fn a_configured_bundle_that_cannot_be_used_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/ethers.umd.min.js");
    let other = dir.path().join("ethers.umd.min.js");
    std::fs::write(&other, "/* ethers v6 */ var version = \"6.13.0\";").unwrap();
    for (path, why) in [(&missing, "cannot read"), (&other, "is not the ethers v5")] {
        let config = EngineConfig::new(limits()).with_ethers(EthersSource::File(path.clone()));
        let errors = [
            QuickJsEngine::new(config.clone()).err(),
            DenoEngine::new(DenoConfig::new(config)).err(),
        ];
        for e in errors {
            match e {
                Some(ActionError::EngineUnavailable { reason, .. }) => {
                    assert!(reason.contains(why), "{reason}");
                    assert!(reason.contains(&path.display().to_string()), "{reason}");
                }
                other => panic!("expected EngineUnavailable, got {other:?}"),
            }
        }
    }
}

/// Set in the environment of the child run of [`env_naming_a_missing_file`].
const CHILD: &str = "LIT_ETHERS_TEST_CHILD";

/// `$LIT_ETHERS` naming a missing file: no bundle (the workspace's is not used instead), and a
/// use of `ethers` is the clear error on both engines. The environment is the process's, so the
/// test runs itself again as a child process with the variable set.
#[test]
fn env_naming_a_missing_file() {
    let missing = tempfile::tempdir()
        .unwrap()
        .path()
        .join("ethers.umd.min.js");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_with_missing_env_bundle", "--nocapture"])
        .env(ETHERS_ENV, &missing)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child of [`env_naming_a_missing_file`] (does nothing in a normal run).
#[test]
fn child_with_missing_env_bundle() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let named = PathBuf::from(std::env::var_os(ETHERS_ENV).unwrap());
    assert!(!named.exists());
    assert_eq!(find_ethers(), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for make in [support::quickjs as MakeEngine, support::deno] {
        // the default source: found by `find_ethers`
        rt.block_on(missing_bundle_is_a_clear_error(
            make,
            EngineConfig::new(limits()),
        ));
    }
}
