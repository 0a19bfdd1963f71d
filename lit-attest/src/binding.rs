//! Binding of the node identity key and the verifier's nonce into `REPORT_DATA`, and the
//! single-use nonce registry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::VerifyError;

/// Domain-separation tag hashed first into every `REPORT_DATA`.
pub const BINDING_DOMAIN: &[u8] = b"LIT-ATTEST-REPORT-DATA-v1";

/// A 32-byte challenge issued by a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nonce(#[serde(with = "hex::serde")] pub [u8; 32]);

impl Nonce {
    /// A fresh random nonce.
    pub fn random() -> Nonce {
        let mut n = [0u8; 32];
        OsRng.fill_bytes(&mut n);
        Nonce(n)
    }
}

/// What a report must be bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The node's identity public key (encoded as the node publishes it).
    #[serde(with = "hex::serde")]
    pub identity_public_key: Vec<u8>,
    /// The verifier's nonce.
    pub nonce: Nonce,
    /// The network epoch the node attests for.
    pub epoch: u64,
    /// Further context (e.g. the network id); may be empty.
    #[serde(with = "hex::serde")]
    pub context: Vec<u8>,
}

impl Binding {
    /// A binding of an identity key and nonce at an epoch, no further context.
    pub fn new(identity_public_key: &[u8], nonce: Nonce, epoch: u64) -> Binding {
        Binding {
            identity_public_key: identity_public_key.to_vec(),
            nonce,
            epoch,
            context: Vec::new(),
        }
    }

    /// `SHA-512(tag ‖ len(pk) ‖ pk ‖ nonce ‖ epoch ‖ len(ctx) ‖ ctx)`, lengths as u32 big-endian,
    /// epoch as u64 big-endian: each field is length-delimited so no two bindings collide.
    pub fn report_data(&self) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(BINDING_DOMAIN);
        h.update((self.identity_public_key.len() as u32).to_be_bytes());
        h.update(&self.identity_public_key);
        h.update(self.nonce.0);
        h.update(self.epoch.to_be_bytes());
        h.update((self.context.len() as u32).to_be_bytes());
        h.update(&self.context);
        h.finalize().into()
    }

    /// Constant-time comparison of `report_data` with this binding.
    pub fn matches(&self, report_data: &[u8; 64]) -> bool {
        bool::from(self.report_data().ct_eq(report_data))
    }
}

#[derive(Debug, Clone, Copy)]
struct NonceState {
    expires: SystemTime,
    used: bool,
}

/// Issues nonces and accepts each one once, before it expires.
#[derive(Debug)]
pub struct NonceIssuer {
    ttl: Duration,
    issued: Mutex<HashMap<[u8; 32], NonceState>>,
}

impl Default for NonceIssuer {
    fn default() -> Self {
        NonceIssuer::new(Duration::from_secs(300))
    }
}

impl NonceIssuer {
    /// Nonces valid for `ttl` after issue.
    pub fn new(ttl: Duration) -> NonceIssuer {
        NonceIssuer {
            ttl,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Issue a fresh nonce at time `now`; forgets nonces that expired.
    pub fn issue(&self, now: SystemTime) -> Nonce {
        let nonce = Nonce::random();
        let mut map = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(
            nonce.0,
            NonceState {
                expires: now + self.ttl,
                used: false,
            },
        );
        nonce
    }

    /// Check that `nonce` is outstanding (issued, unexpired, unused) without consuming it.
    pub fn check(&self, nonce: &Nonce, now: SystemTime) -> Result<(), VerifyError> {
        let map = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        Self::state_ok(map.get(&nonce.0), now)
    }

    fn state_ok(s: Option<&NonceState>, now: SystemTime) -> Result<(), VerifyError> {
        match s {
            None => Err(VerifyError::UnknownNonce),
            Some(s) if s.used => Err(VerifyError::NonceReplayed),
            Some(s) if s.expires <= now => Err(VerifyError::NonceExpired),
            Some(_) => Ok(()),
        }
    }

    /// Consume `nonce`: succeeds once per issued, unexpired nonce.
    pub fn redeem(&self, nonce: &Nonce, now: SystemTime) -> Result<(), VerifyError> {
        let mut map = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(&nonce.0);
        Self::state_ok(s.as_deref(), now)?;
        if let Some(s) = s {
            s.used = true;
        }
        Ok(())
    }
}
