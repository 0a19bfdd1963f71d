//! The members of an epoch as handshakes list them ([`HandshakeResponse::members`]), on
//! networks whose membership is on a chain: operators join and leave between epochs, so a
//! client's bootstrap (a network file, URLs) names nodes that may have left and misses nodes
//! that joined.
//!
//! Pure functions over handshake answers; [`super::establish`] drives them:
//!
//! 1. [`split_departed`]: a bootstrap node that answered for an epoch older than the newest one
//!    answered, and that the newest epoch's list does not name, has left the network: it is a
//!    failure ([`NodeFailureReason::NotMember`]), not a disagreement.
//! 2. The remaining answers must agree, their member lists included ([`describe`] is what is
//!    compared).
//! 3. [`missing_members`]: the listed members no answer came from are handshaken, pinned to the
//!    listed keys; all answers must agree again.
//! 4. [`keep_members`]: only members' answers are kept; `T` of them must be there.
//!
//! Each node's own list is checked on arrival ([`check_own_list`]): well-formed, naming the node
//! as it presented itself, and holding exactly the parties of the key set it reported.

use std::collections::BTreeSet;

use lit_api::network::NetworkNode;
use lit_api::v1::HandshakeResponse;
use lit_crypto::bls::PublicKeySet;

use super::{short_hex, NodeInfo};
use crate::error::{NodeFailure, NodeFailureReason};

/// A node to handshake with: its URL and, when known, its pinned keys.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    /// From the network file or the member list: the node must present this identity key.
    pub(crate) pin: Option<NetworkNode>,
}

/// A node's checked handshake.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub(crate) info: NodeInfo,
    pub(crate) response: HandshakeResponse,
    pub(crate) key_set: PublicKeySet,
}

/// `members`, by party id.
pub(crate) fn sorted(members: &[NetworkNode]) -> Vec<NetworkNode> {
    let mut list = members.to_vec();
    list.sort_by_key(|m| m.party_id);
    list
}

/// A member list as the agreement check compares it and messages show it: its party ids and a
/// fingerprint of every entry (whatever the order the node listed them in).
pub(crate) fn describe(members: &[NetworkNode]) -> String {
    if members.is_empty() {
        return "no member list (a static network)".into();
    }
    let list = sorted(members);
    let ids: Vec<String> = list.iter().map(|m| m.party_id.to_string()).collect();
    // the JSON of a list of plain structs cannot fail to encode
    let bytes = serde_json::to_vec(&list).unwrap_or_default();
    format!("parties [{}] (list {})", ids.join(", "), short_hex(&bytes))
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Checks the member list a node sent: non-zero, distinct party ids; distinct URLs and identity
/// keys; the node itself listed with the party id and seal key it presented; and the listed
/// parties exactly the holders of the key set it reported.
pub(crate) fn check_own_list(
    response: &HandshakeResponse,
    key_set: &PublicKeySet,
) -> Result<(), String> {
    let members = &response.members;
    let mut ids = BTreeSet::new();
    let mut urls = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for m in members {
        if m.party_id == 0 {
            return Err("the member list has party id 0".into());
        }
        if !ids.insert(m.party_id) {
            return Err(format!("the member list has party {} twice", m.party_id));
        }
        if !urls.insert(m.url.trim_end_matches('/')) {
            return Err(format!("the member list has URL {} twice", m.url));
        }
        if !keys.insert(m.identity_key.0) {
            return Err(format!(
                "the member list has identity key {} twice",
                hex::encode(m.identity_key.0)
            ));
        }
    }
    let me = members
        .iter()
        .find(|m| m.identity_key.0.as_slice() == response.node.identity_key.as_slice())
        .ok_or("the node is not in its own member list")?;
    if me.party_id != response.node.party_id || me.seal_key != response.node.seal_key {
        return Err(format!(
            "the node presents itself as party {} but its member list has it as party {} with \
             another seal key",
            response.node.party_id, me.party_id
        ));
    }
    let holders: BTreeSet<u32> = key_set.participants().map(|p| p.get()).collect();
    if holders != ids {
        return Err(format!(
            "the members are parties {ids:?} but the key set's holders are {holders:?}"
        ));
    }
    Ok(())
}

/// Splits off the answers of nodes that left the network: for an epoch older than the newest
/// epoch answered with a member list, by a node no list of that newest epoch names.
pub(crate) fn split_departed(answers: Vec<Answer>) -> (Vec<Answer>, Vec<NodeFailure>) {
    let Some(newest) = answers
        .iter()
        .filter(|a| !a.response.members.is_empty())
        .map(|a| a.response.epoch)
        .max()
    else {
        return (answers, Vec::new());
    };
    let listed: BTreeSet<[u8; 32]> = answers
        .iter()
        .filter(|a| a.response.epoch == newest)
        .flat_map(|a| a.response.members.iter().map(|m| m.identity_key.0))
        .collect();
    let mut kept = Vec::new();
    let mut departed = Vec::new();
    for a in answers {
        let named =
            <[u8; 32]>::try_from(a.info.identity_key.as_slice()).is_ok_and(|k| listed.contains(&k));
        if a.response.epoch < newest && !named {
            departed.push(NodeFailure {
                party_id: Some(a.info.party_id),
                url: a.info.url,
                reason: NodeFailureReason::NotMember {
                    epoch: newest,
                    serving: a.response.epoch,
                },
            });
        } else {
            kept.push(a);
        }
    }
    (kept, departed)
}

/// The members to handshake with: those no answer came from (by identity key), except at a URL
/// that failed already for another reason than the node there having another key (that node
/// is down; a node with another key at a member's URL is tried with the member's key).
pub(crate) fn missing_members(
    members: &[NetworkNode],
    answers: &[Answer],
    failures: &[NodeFailure],
) -> Vec<Target> {
    let answered: BTreeSet<&[u8]> = answers
        .iter()
        .map(|a| a.info.identity_key.as_slice())
        .collect();
    members
        .iter()
        .filter(|m| !answered.contains(m.identity_key.0.as_slice()))
        .filter(|m| {
            !failures.iter().any(|f| {
                same_url(&f.url, &m.url)
                    && !matches!(
                        f.reason,
                        NodeFailureReason::IdentityMismatch { .. }
                            | NodeFailureReason::NotMember { .. }
                    )
            })
        })
        .map(|m| Target {
            url: m.url.clone(),
            pin: Some(m.clone()),
        })
        .collect()
}

/// Keeps the answers of listed members that presented themselves as listed (party id, seal
/// key); the others become failures.
pub(crate) fn keep_members(
    answers: Vec<Answer>,
    members: &[NetworkNode],
) -> (Vec<Answer>, Vec<NodeFailure>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for a in answers {
        let listed = members
            .iter()
            .find(|m| m.identity_key.0.as_slice() == a.info.identity_key.as_slice());
        let reason = match listed {
            None => Some(NodeFailureReason::NotMember {
                epoch: a.response.epoch,
                serving: a.response.epoch,
            }),
            Some(m) if m.party_id != a.info.party_id || m.seal_key.0 != a.info.seal_key => {
                Some(NodeFailureReason::Inconsistent(format!(
                    "presents itself as party {} but the members list it as party {} with \
                     another seal key",
                    a.info.party_id, m.party_id
                )))
            }
            Some(_) => None,
        };
        match reason {
            Some(reason) => dropped.push(NodeFailure {
                party_id: Some(a.info.party_id),
                url: a.info.url,
                reason,
            }),
            None => kept.push(a),
        }
    }
    (kept, dropped)
}

/// Whom a handshake made again asks: the current members (pinned to the listed keys), then the
/// bootstrap's nodes at other URLs (which may have joined again, or be all there is on a static
/// network).
pub(crate) fn rehandshake_targets(members: &[NetworkNode], bootstrap: Vec<Target>) -> Vec<Target> {
    let mut targets: Vec<Target> = members
        .iter()
        .map(|m| Target {
            url: m.url.clone(),
            pin: Some(m.clone()),
        })
        .collect();
    for t in bootstrap {
        if !members.iter().any(|m| same_url(&m.url, &t.url)) {
            targets.push(t);
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::time::Duration;

    use lit_api::v1::{Attestation, AttestationKind, NetworkKeys, NodeIdentity};
    use lit_api::{Bytes, Bytes32, API_VERSION};
    use lit_crypto::bls::deal_with_trusted_dealer;
    use lit_crypto::PartyId;
    use rand_core::{OsRng, RngCore};

    use super::*;
    use crate::client::{check_agreement, check_same_network, EpochView};
    use crate::ClientError;

    fn member(party: u32) -> NetworkNode {
        NetworkNode {
            party_id: party,
            url: format!("http://127.0.0.1:{}", 7470 + party),
            identity_key: Bytes32([party as u8; 32]),
            seal_key: Bytes32([100 + party as u8; 32]),
            dkg_key: Bytes(vec![2; 33]),
        }
    }

    fn key_set(t: usize, parties: &[u32]) -> PublicKeySet {
        let ids: Vec<PartyId> = parties.iter().map(|p| PartyId::new(*p).unwrap()).collect();
        let mut rng = lit_crypto::testing::seeded_rng("membership", OsRng.next_u64()).0;
        deal_with_trusted_dealer(t, &ids, &mut rng).unwrap().0
    }

    /// What node `party` answers at `epoch` listing `members` (all parties hold `set`).
    fn answer(party: u32, epoch: u64, members: &[u32], set: &PublicKeySet) -> Answer {
        let me = member(party);
        let info = NodeInfo {
            party_id: party,
            url: me.url.clone(),
            announced_url: me.url.clone(),
            identity_key: me.identity_key.0.to_vec(),
            seal_key: me.seal_key.0,
            epoch,
            attestation: AttestationKind::Simulated,
            hardware: false,
            latency: Duration::ZERO,
        };
        let response = HandshakeResponse {
            api_version: API_VERSION,
            node: NodeIdentity {
                party_id: party,
                url: me.url.clone(),
                identity_key: Bytes(me.identity_key.0.to_vec()),
                seal_key: me.seal_key,
            },
            epoch,
            threshold: set.threshold() as u32,
            node_count: set.participants().count() as u32,
            network_keys: NetworkKeys {
                bls: Bytes(set.public_key().to_bytes().to_vec()),
                ecdsa: Bytes(vec![2; 33]),
                bls_key_set: Bytes(set.to_bytes()),
            },
            domain: "devnet.lit".into(),
            attestation: Attestation {
                kind: AttestationKind::Simulated,
                evidence: Bytes(Vec::new()),
            },
            members: members.iter().map(|p| member(*p)).collect(),
        };
        Answer {
            info,
            response,
            key_set: set.clone(),
        }
    }

    fn parties(answers: &[Answer]) -> Vec<u32> {
        answers.iter().map(|a| a.info.party_id).collect()
    }

    #[test]
    fn a_member_list_is_described_whatever_its_order_and_down_to_each_key() {
        let list = [member(1), member(2), member(3)];
        let reversed = [member(3), member(2), member(1)];
        assert_eq!(describe(&list), describe(&reversed));
        assert!(describe(&list).starts_with("parties [1, 2, 3] (list "));
        let mut other_key = list.clone();
        other_key[1].seal_key = Bytes32([0xee; 32]);
        assert_ne!(describe(&list), describe(&other_key));
        assert!(describe(&[]).contains("static"));
    }

    #[test]
    fn nodes_listing_other_members_disagree_and_are_named() {
        let set = key_set(2, &[1, 2, 3]);
        let same = [
            answer(1, 2, &[1, 2, 3], &set),
            answer(2, 2, &[3, 2, 1], &set),
        ];
        check_agreement(&same).unwrap();
        // node 3 lists another node 3 (another URL): the lists differ
        let mut odd = answer(3, 2, &[1, 2, 3], &set);
        odd.response.members[0].url = "http://elsewhere:1".into();
        let answers = [same[0].clone(), same[1].clone(), odd];
        match check_agreement(&answers).unwrap_err() {
            ClientError::Disagreement { what, detail } => {
                assert_eq!(what, "members");
                assert!(
                    detail.contains("from nodes 1 (http://127.0.0.1:7471), 2 (")
                        && detail.contains("from nodes 3 (http://127.0.0.1:7473)"),
                    "{detail}"
                );
            }
            other => panic!("{other}"),
        }
        // a node without a list among nodes with one disagrees too
        let bare = answer(3, 2, &[], &set);
        let answers = [same[0].clone(), bare];
        assert!(matches!(
            check_agreement(&answers),
            Err(ClientError::Disagreement {
                what: "members",
                ..
            })
        ));
    }

    #[test]
    fn a_node_that_left_is_split_off_and_a_lagging_member_is_not() {
        let old = key_set(2, &[1, 2, 3]);
        let new = key_set(2, &[2, 3, 4]);
        let answers = vec![
            answer(1, 1, &[1, 2, 3], &old),
            answer(2, 2, &[2, 3, 4], &new),
            answer(3, 1, &[1, 2, 3], &old),
            answer(4, 2, &[2, 3, 4], &new),
        ];
        let (kept, departed) = split_departed(answers);
        assert_eq!(parties(&kept), [2, 3, 4]);
        assert_eq!(departed.len(), 1);
        assert_eq!(departed[0].party_id, Some(1));
        assert_eq!(
            departed[0].reason,
            NodeFailureReason::NotMember {
                epoch: 2,
                serving: 1
            }
        );
        assert!(departed[0].to_string().contains("not a member of epoch 2"));
        // node 3 is a member of epoch 2 that still serves epoch 1: a disagreement (it settles
        // once the node switches), not a departure
        match check_agreement(&kept).unwrap_err() {
            ClientError::Disagreement { what, .. } => assert_eq!(what, "epoch"),
            other => panic!("{other}"),
        }
        // a static network: nothing is split off
        let set = key_set(2, &[1, 2, 3]);
        let (kept, departed) =
            split_departed(vec![answer(1, 1, &[], &set), answer(2, 1, &[], &set)]);
        assert_eq!((parties(&kept), departed.len()), (vec![1, 2], 0));
    }

    #[test]
    fn members_the_bootstrap_missed_are_handshaken_pinned_to_their_listed_keys() {
        let set = key_set(3, &[1, 2, 3, 4, 5]);
        let members: Vec<NetworkNode> = (1..=5).map(member).collect();
        let answers = [
            answer(1, 3, &[1, 2, 3, 4, 5], &set),
            answer(2, 3, &[1, 2, 3, 4, 5], &set),
        ];
        let failures = [
            // down: not asked again
            NodeFailure {
                party_id: Some(3),
                url: format!("{}/", member(3).url),
                reason: NodeFailureReason::Timeout,
            },
            // another node was pinned at member 4's URL: member 4 is asked with its own key
            NodeFailure {
                party_id: Some(9),
                url: member(4).url,
                reason: NodeFailureReason::IdentityMismatch {
                    expected: "00".into(),
                    got: "04".into(),
                },
            },
        ];
        let missing = missing_members(&members, &answers, &failures);
        let urls: Vec<&str> = missing.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, [member(4).url.as_str(), member(5).url.as_str()]);
        assert_eq!(missing[0].pin.as_ref(), Some(&member(4)));
        assert_eq!(missing[1].pin.as_ref(), Some(&member(5)));
    }

    #[test]
    fn only_members_presenting_themselves_as_listed_are_kept() {
        let set = key_set(2, &[1, 2, 3]);
        let members: Vec<NetworkNode> = (1..=3).map(member).collect();
        let stranger = answer(7, 2, &[], &set);
        let mut odd = answer(3, 2, &[], &set);
        odd.info.seal_key = [0xaa; 32];
        let (kept, dropped) = keep_members(
            vec![
                answer(1, 2, &[], &set),
                stranger,
                answer(2, 2, &[], &set),
                odd,
            ],
            &members,
        );
        assert_eq!(parties(&kept), [1, 2]);
        assert_eq!(dropped.len(), 2);
        assert!(matches!(
            dropped[0].reason,
            NodeFailureReason::NotMember { epoch: 2, .. }
        ));
        assert!(matches!(
            dropped[1].reason,
            NodeFailureReason::Inconsistent(_)
        ));
    }

    #[test]
    fn a_node_s_own_list_must_be_well_formed_name_it_and_match_its_key_set() {
        let set = key_set(2, &[1, 2, 3]);
        check_own_list(&answer(1, 2, &[1, 2, 3], &set).response, &set).unwrap();
        type Break = fn(&mut HandshakeResponse);
        let cases: [(&str, Break); 6] = [
            ("twice", |r| r.members[1].party_id = r.members[0].party_id),
            ("party id 0", |r| r.members[2].party_id = 0),
            ("URL", |r| {
                r.members[1].url = format!("{}/", r.members[0].url)
            }),
            ("not in its own member list", |r| {
                r.members.remove(0);
            }),
            ("another seal key", |r| {
                r.members[0].seal_key = Bytes32([9; 32])
            }),
            ("holders", |r| r.members.push(member(4))),
        ];
        for (expected, break_it) in cases {
            let mut response = answer(1, 2, &[1, 2, 3], &set).response;
            break_it(&mut response);
            let err = check_own_list(&response, &set).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn a_handshake_made_again_asks_the_members_then_the_rest_of_the_bootstrap() {
        let bootstrap: Vec<Target> = [1, 2, 9]
            .iter()
            .map(|p| Target {
                url: member(*p).url,
                pin: None,
            })
            .collect();
        let targets = rehandshake_targets(&[member(2), member(3)], bootstrap.clone());
        let urls: Vec<String> = targets.iter().map(|t| t.url.clone()).collect();
        assert_eq!(
            urls,
            [member(2).url, member(3).url, member(1).url, member(9).url]
        );
        assert_eq!(targets[0].pin.as_ref(), Some(&member(2)));
        assert!(targets[2].pin.is_none());
        // a static network: the bootstrap as it is
        assert_eq!(rehandshake_targets(&[], bootstrap).len(), 3);
    }

    fn view(epoch: u64, answer: &Answer) -> EpochView {
        EpochView {
            clients: std::collections::BTreeMap::new(),
            nodes: vec![answer.info.clone()],
            failures: Vec::new(),
            epoch,
            threshold: answer.key_set.threshold(),
            node_count: answer.response.node_count,
            network_keys: answer.response.network_keys.clone(),
            key_set: Arc::new(answer.key_set.clone()),
            members: answer.response.members.clone(),
            domain: answer.response.domain.clone(),
        }
    }

    #[test]
    fn a_handshake_made_again_refuses_other_network_keys() {
        let set = key_set(2, &[1, 2, 3]);
        let before = view(1, &answer(1, 1, &[1, 2, 3], &set));
        // a reshare: another key set (other holders), the same public keys
        let mut reshared = answer(2, 2, &[2, 3, 4], &set);
        reshared.response.network_keys.bls_key_set = Bytes(vec![1, 2, 3]);
        check_same_network(&before, &view(2, &reshared)).unwrap();
        // another BLS key: another network
        let other = key_set(2, &[1, 2, 3]);
        let err =
            check_same_network(&before, &view(2, &answer(1, 2, &[1, 2, 3], &other))).unwrap_err();
        match err {
            ClientError::Disagreement { what, detail } => {
                assert_eq!(what, "network keys");
                assert!(
                    detail.contains("at epoch 1") && detail.contains("at epoch 2"),
                    "{detail}"
                );
            }
            other => panic!("{other}"),
        }
        // another secp256k1 root key: another network too
        let mut root = answer(1, 2, &[1, 2, 3], &set);
        root.response.network_keys.ecdsa = Bytes(vec![3; 33]);
        assert!(matches!(
            check_same_network(&before, &view(2, &root)),
            Err(ClientError::Disagreement {
                what: "network keys",
                ..
            })
        ));
        // another domain
        let mut moved = answer(1, 2, &[1, 2, 3], &set);
        moved.response.domain = "elsewhere.lit".into();
        assert!(matches!(
            check_same_network(&before, &view(2, &moved)),
            Err(ClientError::Disagreement { what: "domain", .. })
        ));
    }
}
