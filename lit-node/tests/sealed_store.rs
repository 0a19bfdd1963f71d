//! Sealed storage on a node's data directory: a store sealed by the secure processor (here a
//! [`FakeKeyDevice`], NOT HARDWARE, which follows the firmware's key-derivation rules) holds the
//! node's identity and shares, leaves no key in the data directory, and opens only on its chip
//! under its release. What the host can do with the directory alone (open it as a simulated node
//! does, or with a key file of its own) gives an error, never the data and never a new identity
//! silently put in place of the old one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lit_attest::sealing::{FakeKeyDevice, LaunchFacts};
use lit_node::config::{AttestationMode, Config};
use lit_node::node::{self, open_data_dir, open_data_dir_with, NodeError};
use lit_node::store::{KeyFile, SealedKey, StoreError, Table};

/// The fake chip's secret (fixed: nothing here depends on its value).
const CHIP: [u8; 32] = [0x5e; 32];
/// Launch measurements of two releases.
const RELEASE_A: [u8; 48] = [0xaa; 48];
const RELEASE_B: [u8; 48] = [0xbb; 48];
const SHARE: &[u8] = b"the node's key share for epoch 1";

fn sealed(chip: [u8; 32], measurement: [u8; 48]) -> SealedKey {
    SealedKey::new(Box::new(FakeKeyDevice::new(
        chip,
        LaunchFacts::new(measurement),
    )))
}

/// The data directory's files, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_tampered(result: Result<impl std::fmt::Debug, NodeError>, what: &str) {
    match result {
        Err(NodeError::Store(StoreError::Tampered { table, key })) => {
            assert_eq!((table, key.as_str()), ("meta", "identity/seed"), "{what}");
        }
        other => panic!("{what}: expected the identity to fail authentication, got {other:?}"),
    }
}

#[test]
fn a_sealed_data_directory_opens_only_on_its_chip_under_its_release() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node-1").join("data");

    // lay out the node: its identity and a share, sealed under release A
    let (store, identity) = open_data_dir_with(&data, &sealed(CHIP, RELEASE_A)).unwrap();
    let identity_key = identity.public_key();
    store.put(Table::Shares, "epoch/1/bls", SHARE).unwrap();
    drop(store);
    // no key in the data directory: the database is all there is
    assert_eq!(files(&data), ["node.redb"]);
    let raw = std::fs::read(data.join("node.redb")).unwrap();
    assert!(!raw.windows(SHARE.len()).any(|w| w == SHARE));

    // (a) the data directory alone. A simulated node (key file) refuses a store without its key
    // file, and writes none
    match open_data_dir(&data, AttestationMode::Simulated) {
        Err(NodeError::Store(StoreError::Key(message))) => {
            assert!(message.contains("no storage.key"), "{message}");
        }
        other => panic!("expected a missing key file, got {other:?}"),
    }
    assert_eq!(files(&data), ["node.redb"]);
    // given a key file (the host's guess), the identity does not decrypt: an error, not a new
    // identity over the old one
    std::fs::write(data.join("storage.key"), [0x11; 32]).unwrap();
    assert_tampered(
        open_data_dir(&data, AttestationMode::Simulated),
        "simulated node with a planted storage.key",
    );
    std::fs::remove_file(data.join("storage.key")).unwrap();
    assert_tampered(
        open_data_dir_with(&data, &KeyFile::new(tmp.path().join("host.key"))),
        "a key file of the host's own",
    );

    // (b) the same chip and release: the same identity and the share, after all of the above
    for _ in 0..2 {
        let (store, again) = open_data_dir_with(&data, &sealed(CHIP, RELEASE_A)).unwrap();
        assert_eq!(again.public_key(), identity_key);
        assert_eq!(
            store
                .get(Table::Shares, "epoch/1/bls")
                .unwrap()
                .unwrap()
                .as_slice(),
            SHARE
        );
    }

    // (c) a new release (another measurement) on the same chip cannot open it, nor the same
    // release on another chip (the data directory copied to another machine)
    assert_tampered(
        open_data_dir_with(&data, &sealed(CHIP, RELEASE_B)),
        "release B on the same chip",
    );
    assert_tampered(
        open_data_dir_with(&data, &sealed([0x77; 32], RELEASE_A)),
        "release A on another chip",
    );
    // and none of these attempts left a key behind or replaced the identity
    assert_eq!(files(&data), ["node.redb"]);
    let (_, again) = open_data_dir_with(&data, &sealed(CHIP, RELEASE_A)).unwrap();
    assert_eq!(again.public_key(), identity_key);
}

#[test]
fn an_sev_snp_node_needs_the_secure_processor_and_writes_no_key() {
    if Path::new("/dev/sev-guest").exists() {
        eprintln!("/dev/sev-guest exists: this is an SNP guest; nothing to check here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nnetwork_file = \"network.json\"\n\
         attestation = \"sev-snp\"\n",
        tmp.path(),
    )
    .unwrap();
    let err = node::init(&config).unwrap_err();
    assert!(
        matches!(&err, NodeError::Store(StoreError::Key(m)) if m.contains("only inside an SEV-SNP guest")),
        "{err:?}"
    );
    assert!(
        files(&config.data_dir).is_empty(),
        "{:?}",
        files(&config.data_dir)
    );
}
