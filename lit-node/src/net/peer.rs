//! Node-to-node messages: protocol bytes (from `lit-dkg` protocol objects) in envelopes signed
//! by the sender's identity key, with private payloads sealed to the recipient's identity.
//!
//! The signature covers a domain tag, the session, the sender, the recipient and the (sealed)
//! payload, so an envelope cannot be replayed into another session, re-addressed, or claimed by
//! another node; the seal's associated data repeats the session, sender and recipient, so a
//! sealed payload lifted into another envelope does not open. Duplicates inside a session are
//! refused by the protocols themselves (they reject a second message for the same round).

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, VerifyingKey};
use lit_api::v1::{PeerMessage, PeerPayload, SealedBox};
use lit_api::{Bytes, Bytes32};
use lit_crypto::seal::{SealPublicKey, Sealed};
use lit_crypto::PartyId;
use rand_core::{CryptoRng, RngCore};

use crate::identity::{self, NodeIdentity};

const SIGN_DOMAIN: &[u8] = b"lit-node/peer-envelope/v1";
const SEAL_INFO: &[u8] = b"lit-node/peer-payload/v1";

/// What a node knows of a peer.
#[derive(Clone, Debug)]
pub struct PeerKeys {
    /// Its identity (signing) key.
    pub identity: VerifyingKey,
    /// Its sealing key.
    pub seal: SealPublicKey,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The claimed sender is not a member of the network.
    #[error("sender {0} is not a member of the network")]
    UnknownSender(u32),
    /// The envelope is for another node.
    #[error("envelope addressed to {to}, this node is {me}")]
    NotForMe {
        /// The addressee.
        to: u32,
        /// This node.
        me: u32,
    },
    /// The envelope is for another session than the caller expects.
    #[error("envelope from {0} belongs to another session")]
    WrongSession(u32),
    /// The signature does not verify under the sender's identity key.
    #[error("envelope from {0} has an invalid signature")]
    BadSignature(u32),
    /// A private payload does not open, or a broadcast carries a sealed payload.
    #[error("payload from {0} does not open")]
    BadPayload(u32),
    /// Bytes of the wrong length.
    #[error("malformed envelope from {0}")]
    Malformed(u32),
    /// The envelope did not come over a mutual-TLS connection of its sender (no client
    /// certificate, or another node's): someone else replayed it.
    #[error("envelope from {0} did not come over its sender's mutual-TLS connection (peer messages need the sender's client certificate)")]
    NotOverPeerTls(u32),
}

impl EnvelopeError {
    /// The peer to blame.
    pub fn culprit(&self) -> Option<u32> {
        match self {
            EnvelopeError::NotForMe { .. } => None,
            EnvelopeError::UnknownSender(p)
            | EnvelopeError::WrongSession(p)
            | EnvelopeError::BadSignature(p)
            | EnvelopeError::BadPayload(p)
            | EnvelopeError::Malformed(p) => Some(*p),
            // whoever replayed it is not the signer
            EnvelopeError::NotOverPeerTls(_) => None,
        }
    }
}

fn seal_aad(session: &Bytes32, from: u32, to: u32) -> Vec<u8> {
    let mut aad = session.0.to_vec();
    aad.extend_from_slice(&from.to_be_bytes());
    aad.extend_from_slice(&to.to_be_bytes());
    aad
}

fn signed_bytes(session: &Bytes32, from: u32, to: Option<u32>, payload: &PeerPayload) -> Vec<u8> {
    let mut m = session.0.to_vec();
    m.extend_from_slice(&from.to_be_bytes());
    match to {
        Some(t) => {
            m.push(1);
            m.extend_from_slice(&t.to_be_bytes());
        }
        None => m.push(0),
    }
    let mut field = |bytes: &[u8]| {
        m.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        m.extend_from_slice(bytes);
    };
    match payload {
        PeerPayload::Plain(b) => {
            field(b"plain");
            field(b.as_slice());
        }
        PeerPayload::Sealed(s) => {
            field(b"sealed");
            field(s.enc.as_slice());
            field(s.ciphertext.as_slice());
        }
    }
    m
}

/// Wraps protocol bytes for the network: broadcasts (`to = None`) travel signed in the clear,
/// private messages are sealed to the recipient.
pub fn seal_envelope(
    me: &NodeIdentity,
    my_id: PartyId,
    session: Bytes32,
    to: Option<(PartyId, &PeerKeys)>,
    bytes: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<PeerMessage, lit_crypto::seal::SealError> {
    let from = my_id.get();
    let (to_id, payload) = match to {
        None => (None, PeerPayload::Plain(Bytes(bytes.to_vec()))),
        Some((id, keys)) => {
            let sealed =
                keys.seal
                    .seal(SEAL_INFO, &seal_aad(&session, from, id.get()), bytes, rng)?;
            (
                Some(id.get()),
                PeerPayload::Sealed(SealedBox {
                    enc: Bytes(sealed.enc),
                    ciphertext: Bytes(sealed.ciphertext),
                }),
            )
        }
    };
    let signature = me.sign(SIGN_DOMAIN, &signed_bytes(&session, from, to_id, &payload));
    Ok(PeerMessage {
        session,
        from,
        to: to_id,
        payload,
        signature: Bytes(signature.to_bytes().to_vec()),
    })
}

/// Checks an envelope received by node `my_id` for session `session` and returns the sender
/// and the protocol bytes.
pub fn open_envelope(
    me: &NodeIdentity,
    my_id: PartyId,
    session: &Bytes32,
    peers: &BTreeMap<PartyId, PeerKeys>,
    msg: &PeerMessage,
) -> Result<(PartyId, Vec<u8>), EnvelopeError> {
    let from_raw = msg.from;
    let from = PartyId::new(from_raw).ok_or(EnvelopeError::UnknownSender(from_raw))?;
    let keys = peers
        .get(&from)
        .ok_or(EnvelopeError::UnknownSender(from_raw))?;
    let signature: [u8; 64] = msg
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::Malformed(from_raw))?;
    identity::verify(
        &keys.identity,
        SIGN_DOMAIN,
        &signed_bytes(&msg.session, from_raw, msg.to, &msg.payload),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| EnvelopeError::BadSignature(from_raw))?;
    if &msg.session != session {
        return Err(EnvelopeError::WrongSession(from_raw));
    }
    match (&msg.payload, msg.to) {
        (PeerPayload::Plain(b), None) => Ok((from, b.0.clone())),
        (PeerPayload::Sealed(s), Some(to)) => {
            if to != my_id.get() {
                return Err(EnvelopeError::NotForMe {
                    to,
                    me: my_id.get(),
                });
            }
            let sealed = Sealed {
                enc: s.enc.0.clone(),
                ciphertext: s.ciphertext.0.clone(),
            };
            me.seal_key()
                .open(&sealed, SEAL_INFO, &seal_aad(session, from_raw, to))
                .map(|plain| (from, plain))
                .map_err(|_| EnvelopeError::BadPayload(from_raw))
        }
        // a private message must be sealed and a broadcast must not be
        _ => Err(EnvelopeError::BadPayload(from_raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn node(seed: u8) -> (NodeIdentity, PeerKeys) {
        let id = NodeIdentity::from_seed(&[seed; 32]);
        let keys = PeerKeys {
            identity: id.public_key(),
            seal: id.seal_public_key().clone(),
        };
        (id, keys)
    }

    fn p(n: u32) -> PartyId {
        PartyId::new(n).unwrap()
    }

    #[test]
    fn broadcast_and_private_envelopes_open_only_where_they_should() {
        let (a, ka) = node(1);
        let (b, kb) = node(2);
        let (c, kc) = node(3);
        let peers = BTreeMap::from([(p(1), ka), (p(2), kb.clone()), (p(3), kc)]);
        let session = Bytes32([5; 32]);

        let broadcast = seal_envelope(&a, p(1), session, None, b"round 1", &mut OsRng).unwrap();
        let (from, bytes) = open_envelope(&b, p(2), &session, &peers, &broadcast).unwrap();
        assert_eq!((from, bytes.as_slice()), (p(1), b"round 1".as_slice()));

        let private =
            seal_envelope(&a, p(1), session, Some((p(2), &kb)), b"share", &mut OsRng).unwrap();
        assert_eq!(
            open_envelope(&b, p(2), &session, &peers, &private)
                .unwrap()
                .1,
            b"share"
        );
        // the JSON on the wire does not contain the private bytes
        let wire = serde_json::to_string(&private).unwrap();
        assert!(!wire.contains(&hex::encode(b"share")));
        // another node cannot open it, even by claiming to be the addressee
        assert!(matches!(
            open_envelope(&c, p(3), &session, &peers, &private),
            Err(EnvelopeError::NotForMe { .. })
        ));
        assert_eq!(
            open_envelope(&c, p(2), &session, &peers, &private),
            Err(EnvelopeError::BadPayload(1))
        );
    }

    #[test]
    fn forged_replayed_and_altered_envelopes_are_refused_with_the_culprit() {
        let (a, ka) = node(1);
        let (b, kb) = node(2);
        let (mallory, _) = node(9);
        let peers = BTreeMap::from([(p(1), ka), (p(2), kb.clone())]);
        let session = Bytes32([5; 32]);
        let msg = seal_envelope(&a, p(1), session, None, b"x", &mut OsRng).unwrap();

        // wrong session (replay into another run)
        let other = Bytes32([6; 32]);
        assert_eq!(
            open_envelope(&b, p(2), &other, &peers, &msg),
            Err(EnvelopeError::WrongSession(1))
        );
        // altered payload, re-attributed sender, re-addressed
        let mut altered = msg.clone();
        altered.payload = PeerPayload::Plain(Bytes(b"y".to_vec()));
        assert_eq!(
            open_envelope(&b, p(2), &session, &peers, &altered),
            Err(EnvelopeError::BadSignature(1))
        );
        let mut reattributed = msg.clone();
        reattributed.from = 2;
        assert_eq!(
            open_envelope(&b, p(2), &session, &peers, &reattributed),
            Err(EnvelopeError::BadSignature(2))
        );
        // signed by a non-member claiming to be node 1
        let forged = seal_envelope(&mallory, p(1), session, None, b"x", &mut OsRng).unwrap();
        assert_eq!(
            open_envelope(&b, p(2), &session, &peers, &forged),
            Err(EnvelopeError::BadSignature(1))
        );
        // unknown sender ids, including zero
        for from in [0, 7] {
            let mut m = msg.clone();
            m.from = from;
            assert_eq!(
                open_envelope(&b, p(2), &session, &peers, &m),
                Err(EnvelopeError::UnknownSender(from))
            );
        }
        // truncated signature
        let mut short = msg;
        short.signature.0.truncate(10);
        assert_eq!(
            open_envelope(&b, p(2), &session, &peers, &short),
            Err(EnvelopeError::Malformed(1))
        );
        // a private payload moved into a broadcast envelope is refused
        let private =
            seal_envelope(&a, p(1), session, Some((p(2), &kb)), b"s", &mut OsRng).unwrap();
        let mut as_broadcast = private;
        as_broadcast.to = None;
        assert!(open_envelope(&b, p(2), &session, &peers, &as_broadcast).is_err());
    }
}
