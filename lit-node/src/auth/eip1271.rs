//! Contract wallets (EIP-1271, "Standard Signature Validation Method for Contracts").
//!
//! A contract wallet (a multisig, a smart account) has no private key: it signs by saying so.
//! EIP-1271 has the contract implement
//!
//! ```solidity
//! function isValidSignature(bytes32 hash, bytes memory signature) public view returns (bytes4);
//! ```
//!
//! which returns the magic value `0x1626ba7e` (the selector of that very function) when
//! `signature` is valid for `hash` and anything else (or reverts) when it is not. An `AuthSig`
//! with `derivedVia: "EIP1271"` (the Lit SDK's value for contract-wallet auth sigs) names the
//! contract as its `address`; [`verify_contract_auth_sig`] parses its SIWE message, checks the
//! validity window, and asks the contract, with an `eth_call`, about the EIP-191 hash of the
//! message. The call is encoded from the `sol!` interface below.

use alloy_sol_types::SolCall as _;
use lit_api::v1::AuthSig;
use lit_api::ErrorCode;
use time::OffsetDateTime;

use crate::auth::siwe::{check_validity, eip191_hash, Address, AuthError, SiweMessage};
use crate::conditions::rpc::{CallOutcome, ChainRpc};
use crate::conditions::ConditionError;

/// The wallet side of EIP-1271 ("Specification").
mod wallet {
    alloy_sol_types::sol! {
        interface IERC1271 {
            function isValidSignature(bytes32 hash, bytes memory signature)
                external view returns (bytes4 magicValue);
        }
    }
}
use wallet::IERC1271::isValidSignatureCall;

/// The `derivedVia` of a contract-wallet `AuthSig` (as the Lit SDK writes it).
pub const DERIVED_VIA_EIP1271: &str = "EIP1271";

/// What `isValidSignature` returns for a valid signature: `bytes4(keccak256(
/// "isValidSignature(bytes32,bytes)"))` (EIP-1271, "Specification").
pub const MAGIC_VALUE: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// Why a contract-wallet signature was refused (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Eip1271Error {
    /// The `AuthSig` or its message is malformed, expired or not yet valid.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The address has no code: it is not a contract (an EOA signs with `personal_sign`).
    #[error("{address} is not a contract (it has no code), so it cannot validate signatures")]
    NotAContract {
        /// The address.
        address: String,
    },
    /// The contract answered but not as an EIP-1271 wallet: no data, or data too short to be a
    /// `bytes4` (for example a contract without `isValidSignature` whose fallback accepts calls).
    #[error("{contract} does not implement EIP-1271 isValidSignature: {reason}")]
    NotEip1271 {
        /// The contract.
        contract: String,
        /// What it returned.
        reason: String,
    },
    /// The contract did not accept the signature (it returned another value than the magic
    /// value, or reverted).
    #[error("contract wallet {contract} refused the signature: {reason}")]
    Rejected {
        /// The contract.
        contract: String,
        /// What it answered.
        reason: String,
    },
    /// The message is for another chain than the RPC endpoint serves.
    #[error("the message is for chain {message} but the RPC endpoint serves chain {rpc}")]
    WrongChain {
        /// The message's `Chain ID`.
        message: u64,
        /// The endpoint's `eth_chainId`.
        rpc: u64,
    },
    /// The chain's RPC failed or timed out.
    #[error(transparent)]
    Rpc(#[from] ConditionError),
}

impl Eip1271Error {
    /// The API error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Eip1271Error::Auth(AuthError::Expired(_) | AuthError::NotYetValid(_)) => {
                ErrorCode::AuthExpired
            }
            Eip1271Error::Rpc(e) => e.code(),
            _ => ErrorCode::InvalidAuth,
        }
    }
}

/// The contract's verdict.
enum Verdict {
    Valid,
    Invalid(String),
}

async fn ask_contract(
    rpc: &ChainRpc,
    contract: &Address,
    hash: [u8; 32],
    signature: &[u8],
) -> Result<Verdict, Eip1271Error> {
    let to = alloy_primitives::Address::from(contract.0);
    let call = isValidSignatureCall {
        hash: hash.into(),
        signature: signature.to_vec().into(),
    };
    let answer = match rpc.try_call(to, call.abi_encode().into()).await? {
        CallOutcome::Returned(answer) => answer,
        CallOutcome::Reverted(message) => {
            if has_no_code(rpc, to).await? {
                return Err(Eip1271Error::NotAContract {
                    address: contract.to_checksum(),
                });
            }
            return Ok(Verdict::Invalid(format!(
                "isValidSignature reverted ({message})"
            )));
        }
    };
    if answer.len() < 32 {
        if has_no_code(rpc, to).await? {
            return Err(Eip1271Error::NotAContract {
                address: contract.to_checksum(),
            });
        }
        return Err(Eip1271Error::NotEip1271 {
            contract: contract.to_checksum(),
            reason: format!(
                "it returned {} bytes (0x{})",
                answer.len(),
                hex::encode(&answer)
            ),
        });
    }
    // the whole first word must be the ABI encoding of the magic `bytes4`, left-aligned and the
    // rest zero (the same test as OpenZeppelin's SignatureChecker)
    let expected = isValidSignatureCall::abi_encode_returns(&MAGIC_VALUE.into());
    if answer.get(..32) == Some(expected.as_slice()) {
        Ok(Verdict::Valid)
    } else {
        let word = answer.get(..32).map(hex::encode).unwrap_or_default();
        Ok(Verdict::Invalid(format!(
            "isValidSignature returned 0x{word}"
        )))
    }
}

async fn has_no_code(
    rpc: &ChainRpc,
    address: alloy_primitives::Address,
) -> Result<bool, Eip1271Error> {
    Ok(rpc.code(address).await?.is_empty())
}

/// Asks `contract` whether `signature` is valid for `hash` (EIP-1271 `isValidSignature`, with
/// an `eth_call` on the latest block).
///
/// `Ok(true)`: it returned the magic value `0x1626ba7e`. `Ok(false)`: it returned another value
/// or reverted. `Err`: the address is not a contract, the contract does not answer like an
/// EIP-1271 wallet, or the RPC failed.
pub async fn is_valid_signature(
    rpc: &ChainRpc,
    contract: &Address,
    hash: [u8; 32],
    signature: &[u8],
) -> Result<bool, Eip1271Error> {
    Ok(matches!(
        ask_contract(rpc, contract, hash, signature).await?,
        Verdict::Valid
    ))
}

/// Verifies a contract-wallet `AuthSig` (`derivedVia: "EIP1271"`) at time `now`, asking the
/// contract through `rpc`, and returns the contract's address with the parsed message.
///
/// `signedMessage` must be the SIWE (EIP-4361) message text and `address` the contract; the
/// message must name the same address, be within its validity window, and be for the chain
/// `rpc` serves (checked with `eth_chainId`). The contract is asked about the EIP-191 hash of the
/// message text, which is what a contract wallet's owners sign with `personal_sign`.
pub async fn verify_contract_auth_sig(
    auth: &AuthSig,
    now: OffsetDateTime,
    rpc: &ChainRpc,
) -> Result<(Address, SiweMessage), Eip1271Error> {
    if auth.derived_via != DERIVED_VIA_EIP1271 {
        return Err(AuthError::Malformed(format!(
            "derivedVia {:?} is not a contract-wallet auth sig (expected {DERIVED_VIA_EIP1271:?})",
            auth.derived_via
        ))
        .into());
    }
    let contract = Address::parse(&auth.address).map_err(AuthError::from)?;
    let message: SiweMessage = auth.signed_message.parse().map_err(AuthError::from)?;
    if message.address != contract {
        return Err(AuthError::Malformed(
            "the SIWE message names another address than the AuthSig".into(),
        )
        .into());
    }
    check_validity(&message, now)?;
    let sig_hex = auth.sig.strip_prefix("0x").unwrap_or(&auth.sig);
    let signature =
        hex::decode(sig_hex).map_err(|_| AuthError::Malformed("signature is not hex".into()))?;
    let served = rpc.chain_id().await?;
    if served != message.chain_id {
        return Err(Eip1271Error::WrongChain {
            message: message.chain_id,
            rpc: served,
        });
    }
    let hash = eip191_hash(auth.signed_message.as_bytes());
    match ask_contract(rpc, &contract, hash, &signature).await? {
        Verdict::Valid => Ok((contract, message)),
        Verdict::Invalid(reason) => Err(Eip1271Error::Rejected {
            contract: contract.to_checksum(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha3::{Digest as _, Keccak256};

    #[test]
    fn magic_value_is_the_selector_of_is_valid_signature() {
        let h = Keccak256::digest(b"isValidSignature(bytes32,bytes)");
        assert_eq!(h[..4], MAGIC_VALUE);
        assert_eq!(isValidSignatureCall::SELECTOR, MAGIC_VALUE);
        // the call's encoding: selector, the hash, the offset of the signature, its length, its
        // bytes padded to a word
        let call = isValidSignatureCall {
            hash: [0x11; 32].into(),
            signature: vec![0x22; 65].into(),
        }
        .abi_encode();
        assert_eq!(call.len(), 4 + 32 * 3 + 96);
        assert_eq!(call[..4], MAGIC_VALUE);
        assert_eq!(call[4..36], [0x11; 32]);
        assert_eq!(call[4 + 63], 0x40);
        assert_eq!(call[4 + 95], 65);
        let mut word = [0u8; 32];
        word[..4].copy_from_slice(&MAGIC_VALUE);
        assert_eq!(
            isValidSignatureCall::abi_encode_returns(&MAGIC_VALUE.into()),
            word
        );
    }

    /// Node endpoints (axum handlers) need `Send` futures.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let rpc = ChainRpc::new("http://127.0.0.1:1", std::time::Duration::from_secs(1)).unwrap();
        let auth = AuthSig {
            sig: String::new(),
            derived_via: String::new(),
            signed_message: String::new(),
            address: String::new(),
            algo: None,
        };
        send(&verify_contract_auth_sig(
            &auth,
            OffsetDateTime::UNIX_EPOCH,
            &rpc,
        ));
        send(&is_valid_signature(&rpc, &Address([0; 20]), [0; 32], &[]));
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            Eip1271Error::from(AuthError::Expired("t".into())).code(),
            ErrorCode::AuthExpired
        );
        assert_eq!(
            Eip1271Error::Rejected {
                contract: "c".into(),
                reason: "r".into()
            }
            .code(),
            ErrorCode::InvalidAuth
        );
        assert_eq!(
            Eip1271Error::from(ConditionError::Rpc("down".into())).code(),
            ErrorCode::ChainUnavailable
        );
    }
}
