//! Passkeys (WebAuthn) as a PKP auth method (Lit's type 3): registering one on a PKP, and signing
//! in with an assertion over the nodes' challenges (see [`lit_api::webauthn`] for what is bound).
//!
//! A sign-in takes three steps, the middle one at the user's authenticator:
//! 1. [`LitClient::passkey_challenge`]: the challenges of the nodes the request goes to, and the
//!    WebAuthn challenge of the request ([`PasskeyChallenge::challenge`], which names the
//!    request's purpose);
//! 2. the authenticator signs it (`navigator.credentials.get` in a browser, any CTAP2
//!    authenticator elsewhere) for the relying party the passkey belongs to;
//! 3. [`PasskeyChallenge::auth`] packs the assertion as the request's auth (a
//!    [`PkpAuth::AuthMethod`] of type 3), which every node of the request checks and uses up.
//!
//! [`LitClient::pkp_sign_with_passkey`] does the three for a PKP signature.

use lit_api::v1::{
    AuthMethod, IdTokenPurpose, PermissionChange, PermittedAuthMethod, PkpAuth, PkpInfo, PkpScope,
    ToSign,
};
use lit_api::webauthn::{
    assertion_challenge, NodeChallenge, PasskeyAssertion, PasskeyCredential,
    AUTH_METHOD_TYPE_WEBAUTHN, CHALLENGE_PATH,
};
use lit_api::Bytes;

use crate::client::get_json;
use crate::error::{ClientError, NodeFailure};
use crate::{LitClient, NodeInfo, PkpSignature, Wallet};

/// The challenges of a sign-in, before the authenticator signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyChallenge {
    purpose: String,
    challenges: Vec<NodeChallenge>,
    challenge: [u8; 32],
}

/// What the authenticator returned (an `AuthenticatorAssertionResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyResponse {
    /// `clientDataJSON`.
    pub client_data_json: Vec<u8>,
    /// `authenticatorData`.
    pub authenticator_data: Vec<u8>,
    /// `signature` (ASN.1 DER for ES256).
    pub signature: Vec<u8>,
}

impl PasskeyChallenge {
    /// The WebAuthn challenge the authenticator must sign (the `challenge` of the
    /// `PublicKeyCredentialRequestOptions`).
    pub fn challenge(&self) -> [u8; 32] {
        self.challenge
    }

    /// The node challenges it is made of.
    pub fn node_challenges(&self) -> &[NodeChallenge] {
        &self.challenges
    }

    /// The auth of the request: `credential`'s assertion `response` over
    /// [`PasskeyChallenge::challenge`].
    pub fn auth(&self, credential: &PasskeyCredential, response: PasskeyResponse) -> PkpAuth {
        let assertion = PasskeyAssertion {
            credential: credential.clone(),
            purpose: self.purpose.clone(),
            challenges: self.challenges.clone(),
            client_data_json: Bytes(response.client_data_json),
            authenticator_data: Bytes(response.authenticator_data),
            signature: Bytes(response.signature),
        };
        PkpAuth::AuthMethod(AuthMethod {
            auth_method_type: AUTH_METHOD_TYPE_WEBAUTHN,
            // a struct of strings and hex: serializing it cannot fail
            access_token: serde_json::to_string(&assertion).unwrap_or_default(),
        })
    }
}

impl LitClient {
    /// Registers a passkey on a PKP: its owner `wallet` permits the auth method
    /// `(3, credential.auth_method_id())` with `scopes`, the way every permission changes.
    pub async fn passkey_register(
        &self,
        wallet: &Wallet,
        pkp: &PkpInfo,
        credential: &PasskeyCredential,
        scopes: std::collections::BTreeSet<PkpScope>,
    ) -> Result<PkpInfo, ClientError> {
        let change = PermissionChange::AddAuthMethod {
            method: PermittedAuthMethod {
                method_type: AUTH_METHOD_TYPE_WEBAUTHN,
                id: hex::encode(credential.auth_method_id()),
                scopes,
            },
        };
        self.pkp_permit(wallet, pkp.token_id.0, change).await
    }

    /// Asks each node of `nodes` (the group the request will go to, and no other: a node whose
    /// challenge is in the assertion accepts it once) for a challenge, and makes the WebAuthn
    /// challenge of a request for `purpose` (the same [`IdTokenPurpose`] an ID token would
    /// name). Fails if a node does not answer.
    pub async fn passkey_challenge(
        &self,
        purpose: IdTokenPurpose<'_>,
        nodes: &[NodeInfo],
    ) -> Result<PasskeyChallenge, ClientError> {
        let view = self.view();
        let mut challenges = Vec::new();
        let mut failures = Vec::new();
        for node in nodes {
            let http = self.http_to(&view, &node.url);
            let url = format!("{}{CHALLENGE_PATH}", node.url.trim_end_matches('/'));
            match get_json::<NodeChallenge>(&http, &url).await {
                Ok(c) => challenges.push(c),
                Err(reason) => failures.push(NodeFailure {
                    party_id: Some(node.party_id),
                    url: node.url.clone(),
                    reason,
                }),
            }
        }
        if !failures.is_empty() {
            return Err(ClientError::NodesFailed { failures });
        }
        challenges.sort_by(|a, b| a.node.cmp(&b.node));
        challenges.dedup_by(|a, b| a.node == b.node);
        let purpose = purpose.nonce();
        let challenge = assertion_challenge(&self.network_id(), &purpose, &challenges);
        Ok(PasskeyChallenge {
            purpose,
            challenges,
            challenge,
        })
    }

    /// Signs `to_sign` with a PKP as the passkey `credential`: picks a signing group, gets its
    /// nodes' challenges, has `sign` (the user's authenticator) sign the WebAuthn challenge it is
    /// given, and sends the assertion to that group (once: another group would need another
    /// assertion).
    pub async fn pkp_sign_with_passkey<F, Fut>(
        &self,
        pkp: &PkpInfo,
        to_sign: ToSign,
        credential: &PasskeyCredential,
        sign: F,
    ) -> Result<PkpSignature, ClientError>
    where
        F: FnOnce([u8; 32]) -> Fut,
        Fut: std::future::Future<Output = Result<PasskeyResponse, ClientError>>,
    {
        let view = self.view();
        let group: Vec<NodeInfo> = self
            .signing_group(&view, &Default::default())
            .ok_or_else(|| ClientError::Config("too few nodes for a signing group".into()))?
            .into_iter()
            .cloned()
            .collect();
        let challenge = self
            .passkey_challenge(IdTokenPurpose::PkpSign(&to_sign), &group)
            .await?;
        let response = sign(challenge.challenge()).await?;
        let ids: Vec<u32> = group.iter().map(|n| n.party_id).collect();
        self.pkp_sign_in_group(pkp, to_sign, &ids, challenge.auth(credential, response))
            .await
    }
}
