//! Action ids against an independent CIDv0 implementation (`ipfs-only-hash`, the js
//! ipfs-unixfs-importer): the checked-in vectors always, and a live re-computation when
//! `./test.sh` has installed it into `.tools`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use lit_api::cid::ActionId;
use serde_json::Value;

/// Byte `i` of a generated file is `(i*31+7) mod 251` (the same rule as the vectors).
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn vectors() -> Vec<(usize, String)> {
    let v: Value = serde_json::from_str(include_str!("vectors/cid_v0.json")).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["len"].as_u64().unwrap() as usize,
                x["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn checked_in_vectors() {
    // Sizes: empty, small, exactly one chunk, one chunk + 1 byte, ~1 MiB, exactly 174 chunks (one
    // full parent) and 174 chunks + 1 byte (a second tree level).
    for (len, cid) in vectors() {
        assert_eq!(
            ActionId::of(&file(len)).to_string(),
            cid,
            "file of {len} bytes"
        );
    }
}

#[test]
fn live_ipfs_only_hash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let module = root.join(".tools/npm/node_modules/ipfs-only-hash/index.js");
    assert!(
        module.is_file(),
        "ipfs-only-hash is not installed: run ./test.sh once (it installs it into .tools)"
    );
    // Sizes other than the vectors', and real action code.
    let sizes = [1usize, 1000, 262_143, 2 * 262_144, 3 * 262_144 + 17];
    let code = "Lit.Actions.setResponse({ response: \"hi\" });\n";
    let script = format!(
        r#"const Hash = require({module:?});
           const gen = (n) => {{ const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) % 251; return b; }};
           (async () => {{
             for (const n of {sizes:?}) console.log(await Hash.of(gen(n)));
             console.log(await Hash.of(Buffer.from({code:?})));
           }})();"#,
        module = module.to_str().unwrap(),
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(script)
        .output()
        .expect("node is needed to run ipfs-only-hash (installed with npm by ./test.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), sizes.len() + 1);
    for (len, cid) in sizes.iter().zip(&lines) {
        assert_eq!(
            &ActionId::of(&file(*len)).to_string(),
            cid,
            "file of {len} bytes"
        );
    }
    assert_eq!(
        &ActionId::of(code.as_bytes()).to_string(),
        lines.last().unwrap()
    );
}
