//! The release register decides which software clients accept, on real node processes: a
//! devnet approves the releases its nodes run; the admin revokes one with `lit-node release`;
//! clients then refuse the node that runs it, by name, and the network keeps serving with the
//! others. A client accepts simulated evidence only when it is told it talks to a devnet. The
//! client reads the register where the network file says it is: the embedded chain here, the
//! `ReleaseRegister` contract on anvil below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lit_api::network::ReleaseSource;
use lit_attest::{MinTcb, Release};
use lit_client::{Bootstrap, ClientError, ConnectOptions, LitClient, NodeFailureReason, Wallet};
use lit_node::chain::evm;
use lit_node::chain::evm_releases::EvmReleases;
use lit_node::chain::releases::ReleaseRegister;
use lit_node::chain::staking::{StakingParams, Validator};
use lit_node::devnet::{DevnetStaking, LayoutOptions};
use lit_node::epoch::peers::{PeerChecker, Verdict};
use std::time::Duration;

mod support;

use support::chain::{account_key, Anvil};
use support::net::{code, post_raw, testnet, user_is};

/// `lit-node release ARGS --dir DIR`: success, stdout, stderr.
fn release_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lit-node"))
        .arg("release")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_release_is_refused_by_clients_and_the_network_serves_with_the_others() {
    // node 5 runs another release than nodes 1 to 4 (T = 4 of 5)
    let other = [0x5e; 48];
    let options = LayoutOptions {
        staking: Some(DevnetStaking::default()),
        ..LayoutOptions::default()
    };
    let mut net = testnet(5)
        .options(options)
        .simulated_measurement(5, other)
        .start()
        .await;
    let file = net.network_file();

    // the devnet approved both releases on its embedded chain, and the network file says where
    // clients read the register
    assert!(matches!(
        net.network().releases,
        Some(ReleaseSource::Embedded { .. })
    ));
    let (ok, out, err) = release_cli(net.dir(), &["list", "--json"]);
    assert!(ok, "{err}");
    let listed: Vec<Release> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 2, "{out}");
    assert!(listed.iter().all(|r| !r.revoked));
    assert!(listed.iter().any(|r| r.measurement == other));

    // without being told it is a devnet, a client refuses the network file outright
    let err = LitClient::connect(Bootstrap::NetworkFile(file.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Config(m) if m.contains("development network") && m.contains("devnet")),
        "{err}"
    );
    // nor does an explicit policy without simulated evidence accept the nodes
    let strict = ConnectOptions::default().with_policy(lit_attest::Policy::default());
    assert!(
        LitClient::connect_with(Bootstrap::NetworkFile(file.clone()), strict)
            .await
            .is_err()
    );

    let before = LitClient::connect_with(
        Bootstrap::NetworkFile(file.clone()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    assert!(
        before.handshake_failures().is_empty(),
        "{:?}",
        before.handshake_failures()
    );
    let alice = Wallet::random();
    let encrypted = before
        .encrypt(&user_is(&alice.address()), b"approved")
        .unwrap();

    // the admin revokes node 5's release
    let (ok, out, err) = release_cli(net.dir(), &["revoke", &hex::encode(other)]);
    assert!(ok, "{err}");
    assert!(out.contains("Revoked release"), "{out}");
    let (ok, out, _) = release_cli(net.dir(), &["list"]);
    assert!(ok);
    assert!(
        out.contains(&format!("{}  revoked", hex::encode(other))),
        "{out}"
    );
    // revocation is final: the release cannot be added again, nor revoked twice
    let (ok, _, err) = release_cli(net.dir(), &["add", &hex::encode(other)]);
    assert!(!ok && err.contains("release exists"), "{err}");
    let (ok, _, err) = release_cli(net.dir(), &["revoke", &hex::encode(other)]);
    assert!(!ok && err.contains("release revoked"), "{err}");
    let (ok, _, err) = release_cli(net.dir(), &["add", "abcd"]);
    assert!(!ok && err.contains("48 bytes"), "{err}");

    // a new client refuses node 5, naming it and the revocation, and decrypts with 1 to 4
    let after = LitClient::connect_with(
        Bootstrap::NetworkFile(file.clone()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    let failures = after.handshake_failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].party_id, Some(5));
    assert!(
        matches!(&failures[0].reason, NodeFailureReason::Attestation(m) if m.contains("revoked release") && m.contains(&hex::encode(other))),
        "{}",
        failures[0]
    );
    assert_eq!(
        after.decrypt(&encrypted, &alice).await.unwrap(),
        b"approved"
    );
    // the client that connected before reads the register again at its next handshake
    before.refresh().await.unwrap();
    assert_eq!(
        before
            .handshake_failures()
            .iter()
            .map(|f| f.party_id)
            .collect::<Vec<_>>(),
        vec![Some(5)]
    );
    assert_eq!(
        before.decrypt(&encrypted, &alice).await.unwrap(),
        b"approved"
    );

    // the peers check each other the same way (`/v1/peer/attest`, against the register)
    let admin = net.devnet().staking_admin().await.unwrap();
    let members = admin.network().await.unwrap().current;
    let checker = PeerChecker::new(
        Some(net.devnet().layout().release_admin().await.unwrap()),
        None,
        true,
    )
    .unwrap();
    let verifier = lit_attest::Verifier::new(checker.policy().await.unwrap());
    let member = |id: u32| members.iter().find(|v| v.party_id == id).unwrap().clone();
    assert_eq!(
        checker.check(&verifier, &member(1)).await,
        Verdict::Accepted
    );
    match checker.check(&verifier, &member(5)).await {
        Verdict::Refused(r) => assert!(r.contains("revoked release"), "{r}"),
        other => panic!("{other:?}"),
    }
    // node 1's answer passed off as node 2's (a proxy at node 2's address): refused
    let impostor = Validator {
        url: member(1).url,
        ..member(2)
    };
    match checker.check(&verifier, &impostor).await {
        Verdict::Refused(r) => assert!(r.contains("identity key"), "{r}"),
        other => panic!("{other:?}"),
    }
    // malformed challenges are refused with a clear code
    for bad in [
        "{}".to_string(),
        r#"{"challenge": "abcd"}"#.to_string(),
        format!(r#"{{"challenge": "{}", "extra": 1}}"#, "00".repeat(32)),
        "not json".to_string(),
    ] {
        let (status, body) = post_raw(&net.url(1), "/v1/peer/attest", bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "malformed_request"),
            "{bad}: {body}"
        );
    }
    // node 1's keys with another sealing key (what peers seal shares to): refused
    let swapped = Validator {
        seal_key: member(2).seal_key,
        ..member(1)
    };
    assert!(matches!(
        checker.check(&verifier, &swapped).await,
        Verdict::Refused(_)
    ));

    // nodes 1 to 4 refuse node 5 on their own and vote it out: it is not in the next set
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state = admin.network().await.unwrap();
        if !state.next.iter().any(|v| v.party_id == 5) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            net.logs("node 5 was not voted out")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // the next epoch runs without it, and the ciphertext still decrypts
    net.devnet().lock_next_epoch().await.unwrap();
    let serving = net
        .devnet()
        .wait_epoch(2, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(serving, vec![1, 2, 3, 4]);
    let epoch2 = LitClient::connect_with(
        Bootstrap::NetworkFile(file.clone()),
        ConnectOptions::devnet(),
    )
    .await
    .unwrap();
    assert_eq!(epoch2.epoch(), 2);
    assert_eq!(
        epoch2.decrypt(&encrypted, &alice).await.unwrap(),
        b"approved"
    );

    // a release with a TCB floor above what the simulated nodes report refuses them all
    let strict_tcb = Release {
        min_tcb: MinTcb {
            snp: 1,
            ..MinTcb::default()
        },
        ..Release::new(
            listed
                .iter()
                .find(|r| r.measurement != other)
                .unwrap()
                .measurement,
        )
    };
    let policy = lit_attest::Policy::default().with_releases([strict_tcb]);
    let err = LitClient::connect_with(
        Bootstrap::Urls(vec![net.url(1), net.url(2), net.url(3), net.url(4)]),
        ConnectOptions::devnet().with_policy(policy),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TCB"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_reads_the_release_register_contract_as_the_nodes_do() {
    let chain = Anvil::start().await;
    let admin_key = account_key(0);
    chain.fund_account(&admin_key).await;
    let deployed = evm::deploy(
        &chain.url,
        &admin_key,
        &StakingParams::default(),
        &Default::default(),
        1_000,
    )
    .await
    .unwrap();
    let admin = EvmReleases::connect(&chain.url, deployed.release_register, &admin_key).unwrap();
    let mut a = Release::new([0xa1; 48]);
    a.min_tcb.snp = 22;
    a.vcek_only = true;
    let b = Release::new([0xb2; 48]);
    admin.add_release(&a).await.unwrap();
    admin.add_release(&b).await.unwrap();
    admin.revoke_release(&b.measurement).await.unwrap();
    let source = ReleaseSource::Evm {
        rpc_url: chain.url.clone(),
        contract: deployed.release_register.to_checksum(),
    };
    let read = lit_client::releases::read_releases(&source, std::path::Path::new("."))
        .await
        .unwrap();
    assert_eq!(read, admin.releases().await.unwrap());
    assert_eq!(read, vec![a, Release { revoked: true, ..b }]);
    // another contract (no register there): a clear chain error, not an empty register
    let wrong = ReleaseSource::Evm {
        rpc_url: chain.url.clone(),
        contract: deployed.staking.to_checksum(),
    };
    let err = lit_client::releases::read_releases(&wrong, std::path::Path::new("."))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Chain { .. }), "{err}");
}
