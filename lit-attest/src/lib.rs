#![doc = include_str!("../README.md")]

pub mod attester;
pub mod binding;
pub mod certs;
pub mod error;
pub mod evidence;
pub mod kds;
pub mod policy;
pub mod report;
pub mod sealing;
pub mod verify;

pub use attester::{Attester, ConfigfsTsm, SimulatedAttester, SnpAttester, VekSource};
pub use binding::{Binding, Nonce, NonceIssuer, BINDING_DOMAIN};
pub use certs::TrustAnchors;
pub use error::{AttestError, CertRole, ReportError, VerifyError};
pub use evidence::{Evidence, SimulatedEvidence, SnpEvidence, SIMULATED_FORMAT};
pub use policy::{
    Clock, FixedClock, MinTcb, Policy, Release, SystemClock, RELEASE_FLAG_DEBUG,
    RELEASE_FLAG_VCEK_ONLY,
};
pub use report::{Generation, Report, SigningKey, TcbComponent, TcbVersion};
pub use sealing::{
    FakeKeyDevice, GuestFields, KeyRefusal, KeyRequest, KeyRequester, LaunchFacts, RootKey,
    SnpKeyRequester,
};
pub use verify::{Signer, Verified, Verifier};
