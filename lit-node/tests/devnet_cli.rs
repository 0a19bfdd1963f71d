//! `lit-node devnet` as an operator runs it: it lays out the folder, starts the nodes, reports
//! the DKG's progress, stops every node on Ctrl-C (SIGINT), and on a second run restarts the same
//! nodes with their stored shares.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use lit_api::network::NetworkFile;

/// Runs `lit-node devnet` until it says it is serving, then interrupts it; returns its output.
fn run_until_ready_then_interrupt(dir: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lit-node"))
        .args(["devnet", "--nodes", "3", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // the rest of the output, read on a thread so that a devnet that ignores the signal fails
    // the test instead of hanging it
    let rest = std::thread::spawn(move || {
        let mut out = String::new();
        for line in lines {
            out.push_str(&line.unwrap_or_default());
            out.push('\n');
        }
        out
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("lit-node devnet did not stop within 60 s of SIGINT:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    out.push_str(&rest.join().unwrap());
    assert!(exit.success(), "{out}");
    out
}

fn answers(url: &str) -> bool {
    std::net::TcpStream::connect_timeout(
        &url.trim_start_matches("https://").parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

#[test]
fn devnet_starts_reports_progress_stops_on_ctrl_c_and_restarts_with_its_shares() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_until_ready_then_interrupt(dir.path());
    assert!(
        first.contains("Created a devnet") && first.contains("running the DKG: 3/3 nodes ready"),
        "{first}"
    );
    assert!(first.contains("Stopped."), "{first}");
    let network =
        NetworkFile::parse(&std::fs::read_to_string(dir.path().join("network.json")).unwrap())
            .unwrap();
    assert_eq!((network.nodes.len(), network.threshold), (3, 2));
    // every node stopped with the devnet (within the 500 ms this test always allowed)
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    for node in &network.nodes {
        while answers(&node.url) {
            assert!(
                std::time::Instant::now() < deadline,
                "node {} still answers 500 ms after the devnet stopped",
                node.party_id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let second = run_until_ready_then_interrupt(dir.path());
    assert!(
        second.contains("Restarting the devnet") && second.contains("loading shares: 3/3"),
        "{second}"
    );
    let again =
        NetworkFile::parse(&std::fs::read_to_string(dir.path().join("network.json")).unwrap())
            .unwrap();
    assert_eq!(again, network);
    for i in 1..=3 {
        let log = std::fs::read_to_string(dir.path().join(format!("node-{i}/node.log"))).unwrap();
        // the genesis DKG ran once: it is the handover to epoch 1 on the devnet's staking
        // contract
        assert_eq!(
            log.matches("handover to the next epoch starts epoch=1")
                .count(),
            1,
            "node {i}: {log}"
        );
        assert!(
            log.contains("loaded key shares; serving without a new DKG"),
            "node {i}"
        );
    }
}
