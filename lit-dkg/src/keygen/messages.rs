//! The messages of the key-generation protocols: one struct per round, one enum for all, and
//! their strict binary encoding.
//!
//! Wire format of every message: `"LDKG" ‖ version ‖ protocol ‖ session id (32) ‖ round ‖ type ‖
//! body`, and for broadcasts `‖ signature (64)`: the sender's identity key signs (ECDSA on
//! secp256k1, RFC 6979) the SHA-256 digest of everything before the signature, so that a
//! broadcast can be echoed by digest and two different broadcasts for the same round are a
//! transferable proof of equivocation.

use std::collections::BTreeSet;

use ff::PrimeField;
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::Signature;
use lit_crypto::protocol::{PartyId, ProtocolError};
use lit_crypto::shamir::SecretShare;
use sha2::{Digest, Sha256};

use crate::group::DkgGroup;
use crate::wire::{scalar_width, Reader, WireError, Writer};

use super::{IdentityKey, IdentitySecret};

/// Protocol version carried in every header.
pub const VERSION: u8 = 1;
pub(crate) const MAGIC: &[u8; 4] = b"LDKG";
pub(crate) const HEADER_LEN: usize = 4 + 1 + 1 + 32 + 1 + 1;
pub(crate) const SIG_LEN: usize = 64;
const ECHO_LEN: usize = 4 + 32 + SIG_LEN;

/// Message types; each belongs to exactly one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MsgType {
    Commit = 1,
    Share = 2,
    Complain = 3,
    Justify = 4,
    Confirm = 5,
}

impl MsgType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Commit,
            2 => Self::Share,
            3 => Self::Complain,
            4 => Self::Justify,
            5 => Self::Confirm,
            _ => return None,
        })
    }
    pub fn round(self) -> u8 {
        match self {
            Self::Commit | Self::Share => 1,
            Self::Complain => 2,
            Self::Justify => 3,
            Self::Confirm => 4,
        }
    }
    pub fn is_broadcast(self) -> bool {
        self != Self::Share
    }
}

/// The echo of one broadcast of the previous round: its sender, digest and signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Echo {
    pub from: PartyId,
    pub digest: [u8; 32],
    pub sig: [u8; SIG_LEN],
}

/// Round 1, broadcast by dealer `i` (Pedersen 1991 / GJKR 2007 step 1a, with the proof of
/// knowledge of Komlo–Goldberg 2020, FROST KeyGen round 1).
#[derive(Clone, Debug)]
pub(crate) struct Round1Commit<G: DkgGroup> {
    /// `C_{i,k} = a_{i,k} · G` for `k = 0..T'`, the Feldman commitment to `f_i`.
    pub c: Vec<G>,
    /// `σ_i = (R_i, μ_i)`: Schnorr proof of knowledge of `a_{i,0}` (DKG only; in a refresh
    /// `C_{i,0}` must be the identity and in a reshare the old public key share of `i`).
    pub pok: Option<(G, G::Scalar)>,
}

/// Round 1, private from dealer `i` to receiver `j`: `s_{i,j} = f_i(j)` (GJKR step 1b).
pub(crate) struct Round1Share<F: PrimeField> {
    pub s: SecretShare<F>,
}

/// Round 2, broadcast by everyone: the echo of every round-1 broadcast received, and the
/// dealers it holds no valid `(C_i, s_{i,j})` from (GJKR step 1c).
#[derive(Clone, Debug)]
pub(crate) struct Round2Complain {
    pub echo: Vec<Echo>,
    pub complaints: Vec<PartyId>,
}

/// Round 3, broadcast by everyone: the echo of round 2, and, from an accused dealer, its signed
/// round-1 commitment message and the disputed shares `s_{i,k}` in the clear (GJKR step 1d).
pub(crate) struct Round3Justify<F: PrimeField> {
    pub echo: Vec<Echo>,
    pub commit: Option<Vec<u8>>,
    pub shares: Vec<(PartyId, SecretShare<F>)>,
}

/// Round 4, broadcast by everyone: the echo of round 3 and the hash of the result (qualified
/// set and aggregated commitment); outputs are released only if all of them agree.
#[derive(Clone, Debug)]
pub(crate) struct Round4Confirm {
    pub echo: Vec<Echo>,
    pub result: [u8; 32],
}

/// Every message of the protocol.
pub(crate) enum Message<G: DkgGroup> {
    Commit(Round1Commit<G>),
    Share(Round1Share<G::Scalar>),
    Complain(Round2Complain),
    Justify(Round3Justify<G::Scalar>),
    Confirm(Round4Confirm),
}

impl<G: DkgGroup> Message<G> {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Commit(_) => MsgType::Commit,
            Message::Share(_) => MsgType::Share,
            Message::Complain(_) => MsgType::Complain,
            Message::Justify(_) => MsgType::Justify,
            Message::Confirm(_) => MsgType::Confirm,
        }
    }
}

/// A decoded message with what identifies it.
pub(crate) struct Parsed<G: DkgGroup> {
    pub msg: Message<G>,
    /// SHA-256 of the signed part (broadcasts), zero for private messages.
    pub digest: [u8; 32],
    pub sig: [u8; SIG_LEN],
}

/// What a decoder needs to know about the session.
pub(crate) struct Context<'a> {
    pub kind: u8,
    pub sid: &'a [u8; 32],
    pub threshold: usize,
}

fn write_echo(w: &mut Writer, echo: &[Echo]) {
    w.len(echo.len());
    for e in echo {
        w.party(e.from).raw(&e.digest).raw(&e.sig);
    }
}

fn read_echo(r: &mut Reader<'_>) -> Result<Vec<Echo>, WireError> {
    let n = r.len(ECHO_LEN)?;
    let mut out: Vec<Echo> = Vec::with_capacity(n);
    for _ in 0..n {
        let from = r.party()?;
        if out.last().is_some_and(|e| e.from >= from) {
            return Err(WireError("echo list not strictly increasing"));
        }
        out.push(Echo {
            from,
            digest: r.array()?,
            sig: r.array()?,
        });
    }
    Ok(out)
}

/// An encoded message with its digest and signature (zero for private messages).
pub(crate) type Encoded = (Vec<u8>, [u8; 32], [u8; SIG_LEN]);

/// Encodes and (for broadcasts) signs a message.
pub(crate) fn encode<G: DkgGroup>(
    ctx: &Context<'_>,
    msg: &Message<G>,
    identity: &IdentitySecret,
) -> Result<Encoded, ProtocolError> {
    let t = msg.msg_type();
    let mut w = Writer::default();
    w.raw(MAGIC)
        .u8(VERSION)
        .u8(ctx.kind)
        .raw(ctx.sid)
        .u8(t.round())
        .u8(t as u8);
    match msg {
        Message::Commit(m) => {
            w.len(m.c.len());
            for c in &m.c {
                w.wire_point(c);
            }
            match &m.pok {
                Some((r, mu)) => {
                    w.u8(1).wire_point(r).scalar(mu);
                }
                None => {
                    w.u8(0);
                }
            }
        }
        Message::Share(m) => {
            w.scalar(&m.s.value);
        }
        Message::Complain(m) => {
            write_echo(&mut w, &m.echo);
            w.len(m.complaints.len());
            for p in &m.complaints {
                w.party(*p);
            }
        }
        Message::Justify(m) => {
            write_echo(&mut w, &m.echo);
            match &m.commit {
                Some(c) => {
                    w.u8(1).bytes(c);
                }
                None => {
                    w.u8(0);
                }
            }
            w.len(m.shares.len());
            for (p, s) in &m.shares {
                w.party(*p).scalar(&s.value);
            }
        }
        Message::Confirm(m) => {
            write_echo(&mut w, &m.echo);
            w.raw(&m.result);
        }
    }
    let mut bytes = w.buf;
    if !t.is_broadcast() {
        return Ok((bytes, [0; 32], [0; SIG_LEN]));
    }
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let sig: Signature = identity
        .sign_prehash(&digest)
        .map_err(|_| ProtocolError::InvalidParameters("identity key cannot sign".into()))?;
    let sig: [u8; SIG_LEN] = sig.to_bytes().into();
    bytes.extend_from_slice(&sig);
    Ok((bytes, digest, sig))
}

/// The header of a message, checked for magic, version, protocol and session.
pub(crate) fn header(
    ctx: &Context<'_>,
    from: PartyId,
    bytes: &[u8],
) -> Result<(MsgType, u8), ProtocolError> {
    let malformed = |reason: &str| ProtocolError::Malformed {
        from,
        reason: reason.to_string(),
    };
    if bytes.len() < HEADER_LEN {
        return Err(malformed("shorter than the header"));
    }
    let mut r = Reader::new(bytes);
    let magic = r.take(4).map_err(|e| malformed(e.0))?;
    if magic != MAGIC {
        return Err(malformed("not a lit-dkg message"));
    }
    let version = r.u8().map_err(|e| malformed(e.0))?;
    let kind = r.u8().map_err(|e| malformed(e.0))?;
    let sid: [u8; 32] = r.array().map_err(|e| malformed(e.0))?;
    if version != VERSION || kind != ctx.kind || &sid != ctx.sid {
        return Err(ProtocolError::WrongSession { from });
    }
    let round = r.u8().map_err(|e| malformed(e.0))?;
    let t = r.u8().map_err(|e| malformed(e.0))?;
    let t = MsgType::from_u8(t).ok_or_else(|| malformed("unknown message type"))?;
    if t.round() != round {
        return Err(malformed("message type does not belong to its round"));
    }
    Ok((t, round))
}

/// Decodes the body of a message whose header was accepted, checking the signature of
/// broadcasts against `key`.
pub(crate) fn decode<G: DkgGroup>(
    ctx: &Context<'_>,
    from: PartyId,
    bytes: &[u8],
    t: MsgType,
    key: &IdentityKey,
) -> Result<Parsed<G>, ProtocolError> {
    let malformed = |reason: &str| ProtocolError::Malformed {
        from,
        reason: reason.to_string(),
    };
    let (signed, digest, sig) = if t.is_broadcast() {
        if bytes.len() < HEADER_LEN + SIG_LEN {
            return Err(malformed("missing signature"));
        }
        let (signed, sig) = bytes.split_at(bytes.len() - SIG_LEN);
        let digest: [u8; 32] = Sha256::digest(signed).into();
        let sig_arr: [u8; SIG_LEN] = sig.try_into().map_err(|_| malformed("signature"))?;
        verify(key, &digest, &sig_arr)
            .then_some(())
            .ok_or_else(|| malformed("bad signature"))?;
        (signed, digest, sig_arr)
    } else {
        (bytes, [0; 32], [0; SIG_LEN])
    };
    let mut r = Reader::new(signed.get(HEADER_LEN..).unwrap_or_default());
    let msg = decode_body::<G>(ctx, &mut r, t).map_err(|e| malformed(e.0))?;
    r.finish().map_err(|e| malformed(e.0))?;
    Ok(Parsed { msg, digest, sig })
}

fn decode_body<G: DkgGroup>(
    ctx: &Context<'_>,
    r: &mut Reader<'_>,
    t: MsgType,
) -> Result<Message<G>, WireError> {
    let sw = scalar_width::<G::Scalar>();
    Ok(match t {
        MsgType::Commit => {
            let n = r.len(G::WIRE_LEN)?;
            if n != ctx.threshold {
                return Err(WireError("commitment has the wrong degree"));
            }
            let c = (0..n)
                .map(|_| r.wire_point::<G>())
                .collect::<Result<Vec<_>, _>>()?;
            let pok = match r.u8()? {
                0 => None,
                1 => Some((r.wire_point::<G>()?, r.scalar::<G::Scalar>()?)),
                _ => return Err(WireError("proof flag")),
            };
            Message::Commit(Round1Commit { c, pok })
        }
        MsgType::Share => Message::Share(Round1Share {
            s: SecretShare {
                id: PartyId::new(1).ok_or(WireError("id"))?,
                value: r.scalar()?,
            },
        }),
        MsgType::Complain => {
            let echo = read_echo(r)?;
            let complaints = r.parties()?;
            Message::Complain(Round2Complain { echo, complaints })
        }
        MsgType::Justify => {
            let echo = read_echo(r)?;
            let commit = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?.to_vec()),
                _ => return Err(WireError("commitment flag")),
            };
            let n = r.len(4 + sw)?;
            let mut shares: Vec<(PartyId, SecretShare<G::Scalar>)> = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.party()?;
                if shares.last().is_some_and(|(p, _)| *p >= id) {
                    return Err(WireError("shares not strictly increasing"));
                }
                shares.push((
                    id,
                    SecretShare {
                        id,
                        value: r.scalar()?,
                    },
                ));
            }
            Message::Justify(Round3Justify {
                echo,
                commit,
                shares,
            })
        }
        MsgType::Confirm => {
            let echo = read_echo(r)?;
            Message::Confirm(Round4Confirm {
                echo,
                result: r.array()?,
            })
        }
    })
}

/// Checks an identity signature over a digest.
pub(crate) fn verify(key: &IdentityKey, digest: &[u8; 32], sig: &[u8; SIG_LEN]) -> bool {
    match Signature::from_slice(sig) {
        Ok(sig) => key.verify_prehash(digest, &sig).is_ok(),
        Err(_) => false,
    }
}

/// The parties named in an echo list, as a set.
pub(crate) fn echoed(echo: &[Echo]) -> BTreeSet<PartyId> {
    echo.iter().map(|e| e.from).collect()
}
