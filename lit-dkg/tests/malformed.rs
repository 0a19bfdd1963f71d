//! Malformed, out-of-session, wrong-round, duplicate and equivocating messages are refused with
//! a clear error naming the sender, never a panic, and leave the party's state unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use lit_crypto::testing::seeded_rng;
use lit_dkg::sim::{setup, Simulation};
use lit_dkg::*;

fn p(n: u32) -> PartyId {
    PartyId::new(n).unwrap()
}

struct Fixture {
    secrets: BTreeMap<PartyId, IdentitySecret>,
    parties: Vec<(PartyId, KeyGen<Secp>)>,
    /// Party 1's round-1 messages: the broadcast commitment, then private shares.
    round1: Vec<Outgoing>,
}

fn fixture(seed: u64) -> Fixture {
    let sim = Simulation::new(seed);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(4), &mut rng);
    let mut parties = setup::dkg::<Secp>("root", 7, &secrets, 3, &mut rng).unwrap();
    let Action::Send(round1) = parties[0].1.poke().unwrap() else {
        panic!()
    };
    Fixture {
        secrets,
        parties,
        round1,
    }
}

fn commit(f: &Fixture) -> Vec<u8> {
    f.round1
        .iter()
        .find(|o| o.to.is_none())
        .unwrap()
        .bytes
        .clone()
}

fn share_to(f: &Fixture, to: u32) -> Vec<u8> {
    f.round1
        .iter()
        .find(|o| o.to == Some(p(to)))
        .unwrap()
        .bytes
        .clone()
}

#[test]
fn garbage_and_truncations_are_malformed() {
    let mut f = fixture(1);
    let c = commit(&f);
    let target = &mut f.parties[1].1;
    for bad in [
        vec![],
        vec![0u8; 10],
        b"XXXX".repeat(20),
        c[..c.len() - 1].to_vec(),
        c[..40].to_vec(),
    ] {
        let e = target.message(p(1), &bad).unwrap_err();
        assert!(
            matches!(e, ProtocolError::Malformed { from, .. } if from == p(1)),
            "{e:?}"
        );
    }
    // A flipped bit in the body breaks the signature; in the header, the session.
    let mut flipped = c.clone();
    flipped[60] ^= 1;
    let e = target.message(p(1), &flipped).unwrap_err();
    assert!(
        e.to_string().contains("signature") || e.to_string().contains("point"),
        "{e}"
    );
    let mut flipped = c.clone();
    flipped[10] ^= 1;
    assert_eq!(
        target.message(p(1), &flipped),
        Err(ProtocolError::WrongSession { from: p(1) })
    );
    // A trailing byte is refused (the signature no longer sits at the end).
    let mut longer = c.clone();
    longer.push(0);
    assert!(target.message(p(1), &longer).is_err());
    // Unknown message type.
    let mut t = c.clone();
    t[39] = 9;
    assert!(matches!(
        target.message(p(1), &t),
        Err(ProtocolError::Malformed { .. })
    ));
    // After all that, the genuine message is still accepted: refusals changed nothing.
    target.message(p(1), &c).unwrap();
}

#[test]
fn every_bit_flip_and_truncation_is_refused_without_panic() {
    let f = fixture(2);
    let c = commit(&f);
    let (_, target) = fixture(2).parties.into_iter().nth(1).unwrap();
    let snapshot = target.snapshot();
    for i in 0..c.len() {
        for bit in [0u8, 7] {
            let mut m = c.clone();
            m[i] ^= 1 << bit;
            let mut t = KeyGen::<Secp>::restore(&snapshot).unwrap();
            assert!(t.message(p(1), &m).is_err(), "flip at {i} accepted");
        }
        let mut t = KeyGen::<Secp>::restore(&snapshot).unwrap();
        assert!(t.message(p(1), &c[..i]).is_err());
    }
}

#[test]
fn out_of_session_messages_are_refused() {
    let mut f = fixture(3);
    // The same parties, another epoch: another session id.
    let (mut rng, _) = seeded_rng("out_of_session_messages_are_refused", 9);
    let mut other = setup::dkg::<Secp>("root", 8, &f.secrets, 3, &mut rng).unwrap();
    let Action::Send(out) = other[0].1.poke().unwrap() else {
        panic!()
    };
    let target = &mut f.parties[1].1;
    for o in &out {
        assert_eq!(
            target.message(p(1), &o.bytes),
            Err(ProtocolError::WrongSession { from: p(1) })
        );
    }
    // Another group (a BLS DKG with the same label and epoch) is another session too.
    let mut bls = setup::dkg::<Bls>("root", 7, &f.secrets, 3, &mut rng).unwrap();
    let Action::Send(out) = bls[0].1.poke().unwrap() else {
        panic!()
    };
    assert_eq!(
        target.message(p(1), &out[0].bytes),
        Err(ProtocolError::WrongSession { from: p(1) })
    );
    // Another threshold.
    let mut t2 = setup::dkg::<Secp>("root", 7, &f.secrets, 2, &mut rng).unwrap();
    let Action::Send(out) = t2[0].1.poke().unwrap() else {
        panic!()
    };
    assert_eq!(
        target.message(p(1), &out[0].bytes),
        Err(ProtocolError::WrongSession { from: p(1) })
    );
}

#[test]
fn unknown_sender_self_and_roles_are_refused() {
    let mut f = fixture(4);
    let c = commit(&f);
    let target = &mut f.parties[1].1;
    assert_eq!(
        target.message(p(99), &c),
        Err(ProtocolError::UnknownSender { from: p(99) })
    );
    assert!(matches!(
        target.message(p(2), &c),
        Err(ProtocolError::Malformed { .. })
    ));
    // A genuine message of party 1 claimed by party 3 fails party 3's signature check.
    assert!(
        matches!(target.message(p(3), &c), Err(ProtocolError::Malformed { from, .. }) if from == p(3))
    );
}

#[test]
fn duplicates_and_equivocations_are_refused_and_attributed() {
    let mut f = fixture(5);
    let c = commit(&f);
    let s = share_to(&f, 2);
    // The same party 1 with another random polynomial: a second, validly signed round-1 message.
    let (mut rng, _) = seeded_rng("duplicates_and_equivocations_are_refused", 77);
    let mut twin = setup::dkg::<Secp>("root", 7, &f.secrets, 3, &mut rng).unwrap();
    let Action::Send(out2) = twin[0].1.poke().unwrap() else {
        panic!()
    };
    let c2 = out2.iter().find(|o| o.to.is_none()).unwrap().bytes.clone();
    let s2 = out2
        .iter()
        .find(|o| o.to == Some(p(2)))
        .unwrap()
        .bytes
        .clone();
    let target = &mut f.parties[1].1;
    target.message(p(1), &c).unwrap();
    assert_eq!(
        target.message(p(1), &c),
        Err(ProtocolError::Duplicate {
            from: p(1),
            round: 1
        })
    );
    assert_eq!(
        target.message(p(1), &c2),
        Err(ProtocolError::Equivocation {
            from: p(1),
            round: 1
        })
    );
    target.message(p(1), &s).unwrap();
    assert_eq!(
        target.message(p(1), &s),
        Err(ProtocolError::Duplicate {
            from: p(1),
            round: 1
        })
    );
    assert_eq!(
        target.message(p(1), &s2),
        Err(ProtocolError::Equivocation {
            from: p(1),
            round: 1
        })
    );
}

#[test]
fn wrong_round_after_the_round_closed() {
    // Run a whole DKG, keeping one late round-1 message back.
    let mut f = fixture(6);
    let c = commit(&f);
    let mut sim = Simulation::new(6);
    let parties = std::mem::take(&mut f.parties);
    let report = sim.run(parties);
    assert_eq!(report.outputs().len(), 4);
    // A fresh party that has closed round 1 refuses round-1 messages as wrong-round.
    let mut g = fixture(6);
    let mut msgs: Vec<(PartyId, Vec<u8>)> = Vec::new();
    for (id, party) in g.parties.iter_mut().skip(1) {
        let Action::Send(out) = party.poke().unwrap() else {
            panic!()
        };
        for o in out {
            if o.to.is_none() || o.to == Some(p(2)) {
                msgs.push((*id, o.bytes));
            }
        }
    }
    let target = &mut g.parties[1].1;
    for (from, b) in msgs.iter().filter(|(from, _)| *from != p(2)) {
        target.message(*from, b).unwrap();
    }
    for o in &g.round1 {
        if o.to.is_none() || o.to == Some(p(2)) {
            target.message(p(1), &o.bytes).unwrap();
        }
    }
    assert_eq!(target.round(), 2);
    assert_eq!(
        target.message(p(1), &c),
        Err(ProtocolError::WrongRound {
            from: p(1),
            expected: 2,
            got: 1
        })
    );
}

#[test]
fn invalid_parameters_are_refused() {
    let sim = Simulation::new(7);
    let mut rng = sim.rng("ids");
    let secrets = setup::identities(PartyId::range(3), &mut rng);
    assert!(matches!(
        setup::dkg::<Secp>("root", 1, &secrets, 4, &mut rng),
        Err(ProtocolError::InvalidParameters(_))
    ));
    assert!(setup::dkg::<Secp>("root", 1, &secrets, 0, &mut rng).is_err());
    // A party whose identity key does not match the session.
    let session = Session::<Secp>::dkg("root", 1, setup::public_identities(&secrets), 2);
    let wrong = secrets[&p(2)].clone();
    assert!(KeyGen::dkg(session, p(1), wrong, &mut rng).is_err());
    assert!(KeyGen::<Secp>::restore(b"not a snapshot").is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400), keep_header in proptest::prelude::any::<bool>()) {
        let mut f = fixture(8);
        let mut m = bytes;
        if keep_header {
            let c = commit(&f);
            let n = m.len().min(c.len()).min(40);
            m[..n].copy_from_slice(&c[..n]);
        }
        let target = &mut f.parties[1].1;
        proptest::prop_assert!(target.message(p(1), &m).is_err());
    }
}
