//! Threshold ECDSA on secp256k1 for Programmable Key Pairs (PKPs), secure against up to `T - 1`
//! colluding nodes (dishonest majority of the signing set).
//!
//! # Protocol and where each step comes from
//!
//! The protocol is cait-sith (Lúcás Meier, <https://github.com/cronokirby/cait-sith>, `docs/`),
//! the OT-based family used in production by Lit's earlier network and by NEAR's chain
//! signatures. We run the `cait-sith` 0.8 crate's protocol objects, wrapped in our own types
//! and our sans-I/O [`Protocol`](crate::protocol::Protocol) interface:
//!
//! | step | ours | follows |
//! |---|---|---|
//! | committed Beaver triples `([a],[b],[c]), (A,B,C)`, `c = ab`, from random OT + OT extension (key independent, pooled ahead) | [`TripleGeneration`] → [`Triple`] | cait-sith `docs/triples.md` (Beaver 1991; random OT of Chou–Orlandi "Simplest OT" 2015; OT extension of Keller–Orsini–Scholl 2015; MtA from OT) |
//! | presignature `R = k⁻¹·G`, shares of `k` and `σ = k·x` (per signing set, consumed once) | [`Presign`] → [`Presignature`] | cait-sith `docs/signing.md` "Presigning", steps 1.1–2.8 |
//! | PKP key derivation `x' = x + t`, `t = H(key_id)` | [`pkp_tweak`], [`pkp_public_key`] | additive key derivation as analysed by Groth–Shoup, EUROCRYPT 2022 (ePrint 2021/1330) |
//! | re-randomised presignature `R' = δ·R`, `δ = H(presignature, X', m)` | inside [`sign_share`] / [`combine`] | the re-randomised-presignature mitigation of Groth–Shoup §"re-randomized presignatures", in multiplicative form (see below) |
//! | one round of signature shares `s_i = δ⁻¹(h·k_i + r·(σ_i + t·k_i))` | [`sign_share`] | cait-sith `docs/signing.md` "Signing" 1.1–1.3, without the node-to-node round: the client combines |
//! | combination, low-`s` normalisation, recovery id, verification | [`combine`] | SEC 1 v2 §4.1 (ECDSA), Ethereum yellow paper App. F (`v`, low `s` per EIP-2) |
//!
//! Only the *message-independent* cait-sith protocols (triples and presigning) run between nodes.
//! The final signing step is done locally by every node and combined by the client, so a node
//! never sees the other nodes' signature shares.
//!
//! # Identifiers
//!
//! Our [`PartyId`] `i` evaluates Shamir shares at `x = i`; cait-sith's `Participant(p)` evaluates
//! at `p + 1` (`Participant::scalar`). We map `PartyId(i) ↔ Participant(i - 1)`, so a share dealt
//! by [`crate::shamir`] or produced by `lit-dkg` is used unchanged.
//!
//! # PKP key derivation, and why one presignature serves every PKP
//!
//! `t = hash_to_scalar(key_id)` (RFC 9380 `hash_to_field` with `expand_message_xmd(SHA-256)` and
//! the DST [`PKP_TWEAK_DST`]), `x_pkp = x_root + t`, `X_pkp = X_root + t·G`. A node derives its
//! share `x_i + t` locally (the constant `t` shifts the whole sharing polynomial). A cait-sith
//! presignature for the root key holds shares of `k` and of `σ = k·x_root`; since
//! `k·x_pkp = σ + t·k`, each node adjusts its share linearly: `σ_i' = σ_i + t·k_i`.
//!
//! Soundness: additive derivation combined with presignatures whose `R` is known *before* the
//! message and the tweak are fixed is weaker than plain ECDSA: Groth and Shoup (EUROCRYPT 2022)
//! show a cube-root attack (an adversary that sees `R` can search for two (message, tweak) pairs
//! with the same `h + r·t` offset, so one signature also verifies for another message and PKP).
//! Their mitigation is to re-randomise the presignature with a public `δ` that becomes known
//! only once the message and tweak are fixed (they take `R' = R + δ·G` with a random `δ`, as
//! from a random beacon). We apply it in the multiplicative form that keeps every share
//! linear: `R' = δ·R` (nonce `δ·k⁻¹`), `k' = k/δ`, `σ' = k'·x_pkp`, so
//! `s = k'·(h + r'·x_pkp) = δ⁻¹·(h·k + r'·(σ + t·k))` with `r' = x(R') mod n`, and we derive
//! `δ` = [`rerandomizer`] by hashing (presignature id, `R`, `X_pkp`, digest) with the DST
//! [`RERANDOMIZE_DST`], so the client recomputes it from public data and needs no beacon.
//! Our argument (not covered by their theorem, which is for the additive form with a random
//! `δ`): in the random-oracle model `R'` is an independent point for every (message, PKP), and
//! a signature for one pair also verifies for another under the same presignature only if
//! `x(δ·R) = x(δ*·R)`, i.e. `δ* = ±δ`, a 256-bit hash collision (~2^128 work), so the
//! presignature-specific attack is reduced to the generic birthday bound.
//! `key_id` is hashed (never chosen as a raw scalar) so tweaks are not adversarially structured.
//!
//! # Safety contract for callers (`lit-node`)
//!
//! * A [`Triple`] is consumed by value by [`Presign::new`]; a [`Presignature`] by value by
//!   [`sign_share`]. A reused presignature reveals the key. Because stored presignatures can be
//!   loaded twice, [`sign_share`] also takes a [`UsedPresignatures`] ledger and calls
//!   [`UsedPresignatures::mark_used`] **before** it computes the share: the node's implementation
//!   must mark the id used *durably* (committed transaction) before returning `Ok`, and the
//!   share must only leave the node after that. A second use is refused with
//!   [`EcdsaError::PresignatureReused`].
//! * A triple, a presignature and a signature all involve exactly the same group of `T`
//!   nodes ([`Presign::new`] explains why a larger group would let `2T - n` colluders use a
//!   presignature twice and recover the key). "Any `T` of `n`" is obtained by forming groups.
//! * Presignatures are bound to the key-share epoch ([`KeyShare::fingerprint`]): after a refresh
//!   or reshare, presignatures made with the old shares are refused and must be deleted together
//!   with the old shares.
//! * Secrets ([`KeyShare`], [`Triple`], [`Presignature`]) zeroize on drop and print
//!   `<redacted>`. (Copies that cait-sith makes internally while a protocol runs are outside our
//!   control and are not zeroized.)
//! * Runs cannot be resumed after a crash (cait-sith's protocol objects are in-memory state
//!   machines that cannot be persisted). A crashed triple or presign run is abandoned; the
//!   triples it consumed are gone with it (they may have been partly opened, so they must never
//!   be retried).
//!
//! # Aborts and culprits
//!
//! Header-level faults (outsider, wrong session, wrong recipient, duplicate, equivocation,
//! malformed header) are refused by [`Protocol::message`](crate::protocol::Protocol::message)
//! naming the sender, before cait-sith sees the bytes. After the driver's deadline
//! ([`Protocol::timeout`](crate::protocol::Protocol::timeout)) a run that cannot progress
//! aborts naming the parties that are behind. cait-sith itself has no identifiable abort (its
//! README says so): a failed consistency check inside triple generation or presigning aborts
//! with [`ProtocolError::Aborted`] naming nobody.
//!
//! # Checking signature shares
//!
//! cait-sith publishes no per-party commitments to the shares of `k` and `σ`, so a single
//! signature share cannot be checked on its own against public data, and with exactly `T`
//! signers (required above) there is no redundancy to locate a bad share by interpolation
//! either. [`combine`] checks everything that is checkable before combining — every share
//! comes from a participant of the same presignature, once, all `T` are present (else
//! [`EcdsaError::PresignatureMismatch`], [`EcdsaError::NotAParticipant`],
//! [`EcdsaError::DuplicateShare`] or [`EcdsaError::NotEnoughShares`], naming the sender) —
//! and always verifies the combined signature, returning
//! [`EcdsaError::CombinedSignatureInvalid`] (no culprit) if a share was wrong. Attributing a
//! wrong share would need per-party commitments `k_i·G`, `σ_i·G` bound to the triple
//! transcript, which cait-sith 0.8 does not expose (known limitation).

mod keys;
mod preprocess;
mod session;
mod signing;

pub use keys::{pkp_public_key, pkp_tweak, KeyShare};
pub use preprocess::{Presign, Presignature, PresignatureId, Triple, TripleGeneration};
pub use session::{SessionId, HEADER_LEN};
pub use signing::{
    combine, rerandomizer, sign_share, InMemoryUsedPresignatures, MessageDigest,
    RecoverableSignature, SignatureShare, SigningContext, UsedPresignatures,
};

use crate::protocol::{PartyId, ProtocolError};

/// Domain-separation tag of the PKP tweak `t = H(key_id)`.
pub const PKP_TWEAK_DST: &[u8] = b"LIT-PKP-TWEAK-V1_SECP256K1_XMD:SHA-256";
/// Domain-separation tag of the presignature re-randomiser `δ`.
pub const RERANDOMIZE_DST: &[u8] = b"LIT-ECDSA-RERANDOMIZE-V1_SECP256K1_XMD:SHA-256";

/// Errors of the threshold ECDSA module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EcdsaError {
    /// A multi-party protocol refused a message or aborted.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Invalid parameters (threshold, participant lists, mismatched triples…).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// A key share does not match its public commitment.
    #[error("key share of party {0} does not match the public commitment")]
    InvalidKeyShare(PartyId),
    /// This party is not in the participant set of the presignature / protocol.
    #[error("party {0} is not a participant of this presignature or protocol")]
    NotAParticipant(PartyId),
    /// Fewer signature shares than the threshold.
    #[error("need {needed} signature shares, got {got}")]
    NotEnoughShares {
        /// The threshold `T`.
        needed: usize,
        /// Shares given.
        got: usize,
    },
    /// Two shares from the same party.
    #[error("two signature shares from party {0}")]
    DuplicateShare(PartyId),
    /// These parties' shares were made with another presignature than the others'.
    #[error("signature shares of {culprits:?} were made with a different presignature")]
    PresignatureMismatch {
        /// The senders of the shares that disagree with the majority.
        culprits: Vec<PartyId>,
    },
    /// The shares combine to an invalid signature: some sender's share is wrong, and cait-sith
    /// gives no public data to tell whose (see the module documentation).
    #[error("the signature shares combine to an invalid signature")]
    CombinedSignatureInvalid,
    /// This presignature was already used to sign: it is refused.
    #[error("presignature {0} was already used")]
    PresignatureReused(PresignatureId),
    /// The presignature was made for another key or another key-share epoch.
    #[error("presignature was made for another key or key-share epoch")]
    KeyMismatch,
    /// A derived value was degenerate (probability ~2^-256: zero tweaked key, zero `r`, …).
    #[error("degenerate value: {0}")]
    Degenerate(&'static str),
    /// Bytes that do not decode.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

impl EcdsaError {
    /// The parties this error blames, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            EcdsaError::Protocol(e) => e.culprits(),
            EcdsaError::InvalidKeyShare(p)
            | EcdsaError::NotAParticipant(p)
            | EcdsaError::DuplicateShare(p) => vec![*p],
            EcdsaError::PresignatureMismatch { culprits } => culprits.clone(),
            // No party to blame: a caller's mistake, a bad encoding, a reused presignature, or
            // a wrong share that cait-sith gives no data to attribute (module documentation).
            EcdsaError::InvalidParameters(_)
            | EcdsaError::NotEnoughShares { .. }
            | EcdsaError::CombinedSignatureInvalid
            | EcdsaError::PresignatureReused(_)
            | EcdsaError::KeyMismatch
            | EcdsaError::Degenerate(_)
            | EcdsaError::Malformed(_) => vec![],
        }
    }
}
