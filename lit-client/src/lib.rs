#![doc = include_str!("../README.md")]

pub mod action;
pub mod chain;
pub mod client;
pub mod encrypted;
pub mod error;
pub mod eth_tx;
pub mod ledger;
pub mod owner;
pub mod passkey;
pub mod pkp;
pub mod releases;
pub mod session;
pub mod shares;
pub mod status;
pub mod wallet;

pub use action::{
    action_execution_grant, ActionAuth, ActionResponse, ActionSignature, ActionUpload, ExecuteJs,
    ExecuteJsResult, DEFAULT_EXECUTE_TIMEOUT,
};
pub use chain::PkpChain;
pub use client::{collect_shares, Bootstrap, ConnectOptions, EpochView, LitClient, NodeInfo};
pub use encrypted::{
    encrypt_conditions_to, encrypt_to, identity_of, identity_of_kind, Conditions, EncryptedData,
    ENCRYPTED_DATA_VERSION,
};
pub use error::{ClientError, NodeFailure, NodeFailureReason};
pub use eth_tx::{Eip1559Transaction, EthTransaction, LegacyTransaction};
pub use ledger::{LedgerInfo, LedgerPrices};
pub use passkey::{PasskeyChallenge, PasskeyResponse};
pub use pkp::{pkp_grant, PkpSignature, Signer, SIGN_ATTEMPTS};
pub use session::{Session, SessionKey, DEFAULT_SESSION_TTL};
pub use shares::{combine_and_decrypt, open_share, NodeRef, ShareCollector};
pub use status::{format_tokens, NetworkReport};
pub use wallet::{Wallet, DEFAULT_AUTH_TTL};

pub use lit_attest::{Policy, Release};
