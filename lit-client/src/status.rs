//! The network as the chain records it ([`LitClient::network_status`], `lit network`): the
//! epoch, its state and timing, the current members and the next set, with their stakes, as
//! every healthy node reads them (`GET /v1/network`), checked to agree.

use std::collections::BTreeMap;

use futures_util::stream::{FuturesUnordered, StreamExt};
use lit_api::v1::{paths, MemberStatus, NetworkStatus};

use crate::client::{agree, endpoint, get_json, short_hex, LitClient};
use crate::error::{ClientError, NodeFailure};

/// The decimals of the staking token (stakes are in base units: `10^18` is one token).
pub const TOKEN_DECIMALS: usize = 18;

/// What the nodes said of the network, checked: they agree on everything the chain records
/// and differ at most in the epoch each serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkReport {
    /// The chain's state as the nodes agree on it. Its `serving_epoch` is the first answering
    /// node's; [`NetworkReport::serving`] has each node's.
    pub status: NetworkStatus,
    /// The epoch each answering node serves, by party id.
    pub serving: BTreeMap<u32, u64>,
    /// The nodes that did not answer, and why.
    pub failures: Vec<NodeFailure>,
}

impl NetworkReport {
    /// When the epoch ends (Unix seconds): its start plus its length.
    pub fn epoch_end(&self) -> u64 {
        self.status
            .epoch_start
            .saturating_add(self.status.epoch_length)
    }

    /// The answering nodes that serve another epoch than the chain's current one (party id,
    /// epoch served): lagging behind, or not switched yet.
    pub fn serving_other_epoch(&self) -> Vec<(u32, u64)> {
        self.serving
            .iter()
            .filter(|(_, e)| **e != self.status.epoch)
            .map(|(p, e)| (*p, *e))
            .collect()
    }
}

impl LitClient {
    /// Asks every healthy node for the network's status (`GET /v1/network`) and checks that
    /// the answers agree on the chain's epoch, state, thresholds, timing and both member sets
    /// ([`ClientError::Disagreement`] naming the field and the nodes behind each value). Needs
    /// `T` answers ([`ClientError::NodesFailed`] naming every node that failed otherwise).
    pub async fn network_status(&self) -> Result<NetworkReport, ClientError> {
        let view = self.view();
        let pending: FuturesUnordered<_> = view
            .nodes()
            .iter()
            .map(|node| {
                let url = endpoint(&node.url, paths::NETWORK_STATUS);
                let http = self.http_to(&view, &node.url);
                async move {
                    let answer: Result<NetworkStatus, _> = get_json(&http, &url).await;
                    (node, answer)
                }
            })
            .collect();
        let mut answers: Vec<(u32, String, NetworkStatus)> = Vec::new();
        let mut failures = Vec::new();
        for (node, answer) in pending.collect::<Vec<_>>().await {
            match answer {
                Ok(status) => answers.push((node.party_id, node.url.clone(), status)),
                Err(reason) => failures.push(NodeFailure {
                    party_id: Some(node.party_id),
                    url: node.url.clone(),
                    reason,
                }),
            }
        }
        answers.sort_by_key(|(p, _, _)| *p);
        failures.sort_by_key(|f| f.party_id);
        if answers.is_empty() || answers.len() < view.threshold() {
            return Err(ClientError::NodesFailed { failures });
        }
        let status = check_status_agreement(&answers)?;
        Ok(NetworkReport {
            status,
            serving: answers
                .iter()
                .map(|(p, _, s)| (*p, s.serving_epoch))
                .collect(),
            failures,
        })
    }
}

/// The status the nodes agree on, or which field differs and who said what.
pub(crate) fn check_status_agreement(
    answers: &[(u32, String, NetworkStatus)],
) -> Result<NetworkStatus, ClientError> {
    let node = |(p, url, _): &(u32, String, NetworkStatus)| format!("{p} ({url})");
    let each =
        |value: fn(&NetworkStatus) -> String| answers.iter().map(move |a| (node(a), value(&a.2)));
    agree("epoch", answers.iter().map(|a| (node(a), a.2.epoch)))?;
    agree("state", each(|s| format!("{:?}", s.state)))?;
    agree(
        "threshold",
        answers.iter().map(|a| (node(a), a.2.threshold)),
    )?;
    agree("current members", each(|s| describe_set(&s.current)))?;
    agree("next set", each(|s| describe_set(&s.next)))?;
    agree(
        "next threshold",
        answers.iter().map(|a| (node(a), a.2.next_threshold)),
    )?;
    agree(
        "epoch start",
        answers.iter().map(|a| (node(a), a.2.epoch_start)),
    )?;
    agree(
        "epoch length",
        answers.iter().map(|a| (node(a), a.2.epoch_length)),
    )?;
    answers
        .first()
        .map(|(_, _, s)| s.clone())
        .ok_or_else(|| ClientError::NodesFailed {
            failures: Vec::new(),
        })
}

/// A member set for the agreement check and its messages: party ids and a fingerprint of every
/// entry (URL, staker, stake), whatever the order.
fn describe_set(set: &[MemberStatus]) -> String {
    if set.is_empty() {
        return "no members".into();
    }
    let mut list = set.to_vec();
    list.sort_by_key(|m| m.party_id);
    let ids: Vec<String> = list.iter().map(|m| m.party_id.to_string()).collect();
    // the JSON of a list of plain structs cannot fail to encode
    let bytes = serde_json::to_vec(&list).unwrap_or_default();
    format!("parties [{}] (list {})", ids.join(", "), short_hex(&bytes))
}

/// Formats an amount of token base units (a decimal integer string, as `MemberStatus::stake`)
/// in tokens of [`TOKEN_DECIMALS`] decimals, without trailing zeros but with at least one
/// decimal: `"1000000000000000000000"` is `"1000.0"`, `"1500000000000000000"` is `"1.5"`,
/// `"1"` is `"0.000000000000000001"`. `None` if it is not a decimal integer.
///
/// ```
/// use lit_client::status::format_tokens;
///
/// assert_eq!(format_tokens("1000000000000000000000").as_deref(), Some("1000.0"));
/// assert_eq!(format_tokens("0").as_deref(), Some("0.0"));
/// assert_eq!(format_tokens("12e3"), None);
/// ```
pub fn format_tokens(base_units: &str) -> Option<String> {
    if base_units.is_empty() || !base_units.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = base_units.trim_start_matches('0');
    // at least one integer digit: pad to TOKEN_DECIMALS + 1 digits
    let padded = format!("{digits:0>width$}", width = TOKEN_DECIMALS + 1);
    let (whole, fraction) = padded.split_at(padded.len() - TOKEN_DECIMALS);
    let fraction = fraction.trim_end_matches('0');
    Some(format!(
        "{whole}.{}",
        if fraction.is_empty() { "0" } else { fraction }
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn stakes_are_formatted_in_tokens() {
        for (units, tokens) in [
            ("1000000000000000000000", "1000.0"),
            ("1000000000000000000", "1.0"),
            ("1500000000000000000", "1.5"),
            ("32000000000000000000", "32.0"),
            ("123456789012345678901234", "123456.789012345678901234"),
            ("1", "0.000000000000000001"),
            ("100000000000000000", "0.1"),
            ("0", "0.0"),
            ("000", "0.0"),
            ("0001000000000000000000", "1.0"),
            // beyond u128: digits only
            (
                "1000000000000000000000000000000000000000000000000",
                "1000000000000000000000000000000.0",
            ),
        ] {
            assert_eq!(format_tokens(units).as_deref(), Some(tokens), "{units}");
        }
        for bad in ["", "-1", "1.5", "0x10", " 1", "1e18", "１"] {
            assert_eq!(format_tokens(bad), None, "{bad:?}");
        }
    }

    fn member(party: u32, stake: &str) -> MemberStatus {
        MemberStatus {
            party_id: party,
            url: format!("http://127.0.0.1:{}", 7470 + party),
            staker: format!("0x{:040x}", party),
            stake: stake.into(),
        }
    }

    fn status(serving: u64) -> NetworkStatus {
        NetworkStatus {
            epoch: 3,
            serving_epoch: serving,
            state: "active".into(),
            threshold: 2,
            next_threshold: 3,
            epoch_start: 1_800_000_000,
            epoch_length: 3600,
            current: vec![member(1, "1000"), member(2, "2000"), member(3, "3000")],
            next: vec![
                member(1, "1000"),
                member(2, "2000"),
                member(3, "3000"),
                member(4, "4000"),
            ],
        }
    }

    fn answers(statuses: Vec<NetworkStatus>) -> Vec<(u32, String, NetworkStatus)> {
        statuses
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let p = i as u32 + 1;
                (p, format!("http://127.0.0.1:{}", 7470 + p), s)
            })
            .collect()
    }

    #[test]
    fn statuses_agree_up_to_the_epoch_each_node_serves_and_the_order_of_sets() {
        let mut reordered = status(2);
        reordered.current.reverse();
        let agreed =
            check_status_agreement(&answers(vec![status(3), reordered, status(3)])).unwrap();
        assert_eq!(agreed, status(3));
        let report = NetworkReport {
            status: agreed,
            serving: BTreeMap::from([(1, 3), (2, 2), (3, 3)]),
            failures: Vec::new(),
        };
        assert_eq!(report.serving_other_epoch(), [(2, 2)]);
        assert_eq!(report.epoch_end(), 1_800_003_600);
    }

    #[test]
    fn a_status_that_differs_is_a_named_disagreement() {
        let mut staked = status(3);
        staked.next[3].stake = "5000".into();
        let mut later = status(4);
        later.epoch = 4;
        let mut locked = status(3);
        locked.state = "locked".into();
        for (other, field) in [(staked, "next set"), (later, "epoch"), (locked, "state")] {
            match check_status_agreement(&answers(vec![status(3), status(3), other])) {
                Err(ClientError::Disagreement { what, detail }) => {
                    assert_eq!(what, field);
                    assert!(
                        detail.contains("from nodes 1 (http://127.0.0.1:7471), 2 (")
                            && detail.contains("from nodes 3 (http://127.0.0.1:7473)"),
                        "{detail}"
                    );
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
