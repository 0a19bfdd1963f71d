//! Decryption shares (`/v1/encryption/sign`): the node checks the epoch, parses the conditions,
//! verifies the caller's session signature for this node (sent in `authSig`, as Lit's SDK does)
//! granting decryption of exactly this identity, refuses a reused `clientPublicKey` (the
//! request nonce, counted against the wallet's bound), evaluates the conditions with
//! `:userAddress` = the wallet and `:litParam:<name>` from the request's `litParams` (outside an
//! action, a condition naming `:currentActionIpfsId` is false), and only then signs the identity
//! `lit-accesscontrolcondition://…` with its BLS share, sealed (HPKE) to the client's key.

use std::time::{Duration, Instant};

use lit_api::conditions::ConditionsError;
use lit_api::session::{LitAbility, LitResource};
use lit_api::v1::{
    encryption_share_aad, EncryptionSignRequest, EncryptionSignResponse, ENCRYPTION_SHARE_SEAL_INFO,
};
use lit_api::ErrorCode;
use lit_crypto::identity::AccessControlIdentity;

use super::{client_key, seal_reply, Node};
use crate::auth::session::CapabilitySigner;
use crate::auth::CallerKey;
use crate::chain::payments::Product;
use crate::conditions::EvalContext;
use crate::config::DevFault;
use crate::error::ApiError;

/// Where a decryption share's time went (reported in the `Server-Timing` header).
#[derive(Clone, Copy, Debug, Default)]
pub struct ShareTimings {
    /// Evaluating the conditions.
    pub conditions: Duration,
    /// Computing the BLS share.
    pub share: Duration,
    /// Sealing it to the client.
    pub seal: Duration,
    /// What the share costs the payer (base units; 0 on a free network).
    pub charged: u128,
}

impl From<ConditionsError> for ApiError {
    fn from(e: ConditionsError) -> Self {
        let code = match e {
            ConditionsError::UnknownType(_) => ErrorCode::UnknownConditionType,
            _ => ErrorCode::InvalidConditions,
        };
        ApiError::new(code, e.to_string())
    }
}

impl Node {
    /// This node's decryption share for a caller whose conditions hold.
    pub async fn decryption_share(
        &self,
        req: &EncryptionSignRequest,
    ) -> Result<(EncryptionSignResponse, ShareTimings), ApiError> {
        let keys = self.keys_for_epoch(req.epoch)?;
        let items =
            lit_api::conditions::parse_as(req.conditions_kind, &req.access_control_conditions)?;
        let identity = AccessControlIdentity::for_conditions(
            &req.access_control_conditions,
            req.data_to_encrypt_hash.0,
        )
        .map_err(|e| ApiError::new(ErrorCode::InvalidConditions, e.to_string()))?;
        let resource = LitResource::decryption_of(&identity);
        let session = self
            .auth
            .session_in_auth_sig(
                &req.auth_sig,
                resource,
                LitAbility::AccessControlConditionDecryption,
                &keys.bls_set.public_key(),
            )
            .await?;
        if session.authorized_by != CapabilitySigner::Wallet {
            return Err(ApiError::new(
                ErrorCode::NotPermitted,
                "a PKP session does not decrypt: sign in with the wallet",
            ));
        }
        let user = session.authorized_address;
        self.auth.fresh_nonce(
            &CallerKey::Address(user),
            req.client_public_key.0,
            session.expires_at,
            "clientPublicKey",
        )?;
        let identity = identity.to_bytes();
        let client_key = client_key(&req.client_public_key)?;
        let quote = self.quote(Some(&session), Product::Decryption).await?;

        let t0 = Instant::now();
        let runner = super::actions::ConditionActionRunner { node: self };
        let ctx = EvalContext::for_user(&user)
            .with_lit_params(&req.lit_params)?
            .with_actions(&runner);
        let met = self.evaluator.evaluate(&items, &ctx).await?;
        let conditions = t0.elapsed();
        if !met {
            return Err(ApiError::new(
                ErrorCode::ConditionsNotMet,
                format!("access control conditions are not met for {user}"),
            ));
        }

        let t1 = Instant::now();
        let share = if self.fault == Some(DevFault::WrongDecryptionShare) {
            keys.bls.sign(b"not the identity")
        } else {
            keys.bls.sign(&identity)
        };
        let share_time = t1.elapsed();
        let t2 = Instant::now();
        let sealed = seal_reply(
            &client_key,
            ENCRYPTION_SHARE_SEAL_INFO,
            &encryption_share_aad(self.me.get(), keys.epoch, &identity),
            &share.to_bytes(),
        )?;
        // the debit is durable before the share leaves the node
        let charged = self.record(quote.as_ref())?;
        let timings = ShareTimings {
            conditions,
            share: share_time,
            seal: t2.elapsed(),
            charged,
        };
        Ok((
            EncryptionSignResponse {
                party_id: self.me.get(),
                epoch: keys.epoch,
                share: sealed,
            },
            timings,
        ))
    }
}
