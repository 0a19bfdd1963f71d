//! Passkeys (WebAuthn, Lit's auth method type 3) through a network of real node processes.
//!
//! The passkeys are made and used by 1Password's passkey-rs: its CTAP2 authenticator in software
//! (`passkey-authenticator`, keys in memory) behind its WebAuthn client (`passkey-client`, which
//! builds the client data and enforces the origin / relying party rules a browser enforces).
//! Nothing is mocked but the user's touch: a user who is present and verified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use lit_api::v1::{IdTokenPurpose, PkpInfo, PkpScope, ToSign};
use lit_api::webauthn::PasskeyCredential;
use lit_api::{Bytes, ErrorCode};
use lit_client::{ClientError, NodeInfo, PasskeyResponse};
use lit_crypto::eth::{eip191_hash, recover_address};
use lit_node::devnet::LayoutOptions;
use passkey_authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, DefaultClientData};
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use passkey_types::webauthn;
use passkey_types::Passkey;
use url::Url;

const RP_ID: &str = "wallet.example";
const ORIGIN: &str = "https://wallet.example";

/// The user at the authenticator: present and verified (PIN or biometrics) every time.
struct PresentUser;

#[async_trait::async_trait]
impl UserValidationMethod for PresentUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

type SoftClient = Client<MemoryStore, PresentUser, public_suffix::PublicSuffixList, ()>;

/// A software authenticator behind a WebAuthn client.
fn authenticator() -> SoftClient {
    Client::new(Authenticator::new(
        Aaguid::new_empty(),
        MemoryStore::new(),
        PresentUser,
    ))
}

/// Registers a new ES256 passkey for `rp_id` from `origin` and returns it as a PKP names it (the
/// public key taken from the registration's SubjectPublicKeyInfo).
async fn register(client: &mut SoftClient, origin: &str, rp_id: &str) -> PasskeyCredential {
    use p256::pkcs8::DecodePublicKey as _;
    let options = webauthn::CredentialCreationOptions {
        public_key: webauthn::PublicKeyCredentialCreationOptions {
            rp: webauthn::PublicKeyCredentialRpEntity {
                id: Some(rp_id.into()),
                name: rp_id.into(),
            },
            user: webauthn::PublicKeyCredentialUserEntity {
                id: rand::random::<[u8; 16]>().to_vec().into(),
                display_name: "Wendy".into(),
                name: "wendy".into(),
            },
            challenge: rand::random::<[u8; 32]>().to_vec().into(),
            // ES256, the first of the defaults
            pub_key_cred_params: webauthn::PublicKeyCredentialParameters::default_algorithms()
                .into_iter()
                .take(1)
                .collect(),
            timeout: None,
            exclude_credentials: None,
            authenticator_selection: None,
            hints: None,
            attestation: Default::default(),
            attestation_formats: None,
            extensions: None,
        },
    };
    let created = client
        .register(&Url::parse(origin).unwrap(), options, DefaultClientData)
        .await
        .unwrap();
    let spki = created.response.public_key.unwrap();
    let key = p256::PublicKey::from_public_key_der(&spki).unwrap();
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    PasskeyCredential {
        rp_id: rp_id.into(),
        credential_id: Bytes(created.raw_id.to_vec()),
        public_key: Bytes(key.to_encoded_point(false).as_bytes().to_vec()),
    }
}

/// The authenticator's assertion over `challenge` with `credential`, from `origin`.
async fn assert(
    client: &mut SoftClient,
    origin: &str,
    credential: &PasskeyCredential,
    challenge: [u8; 32],
) -> PasskeyResponse {
    let options = webauthn::CredentialRequestOptions {
        public_key: webauthn::PublicKeyCredentialRequestOptions {
            challenge: challenge.to_vec().into(),
            timeout: None,
            rp_id: Some(credential.rp_id.clone()),
            allow_credentials: Some(vec![webauthn::PublicKeyCredentialDescriptor {
                ty: webauthn::PublicKeyCredentialType::PublicKey,
                id: credential.credential_id.0.clone().into(),
                transports: None,
            }]),
            user_verification: webauthn::UserVerificationRequirement::Required,
            hints: None,
            attestation: Default::default(),
            attestation_formats: None,
            extensions: None,
        },
    };
    let got = client
        .authenticate(&Url::parse(origin).unwrap(), options, DefaultClientData)
        .await
        .unwrap();
    PasskeyResponse {
        client_data_json: got.response.client_data_json.to_vec(),
        authenticator_data: got.response.authenticator_data.to_vec(),
        signature: got.response.signature.to_vec(),
    }
}

fn code_of(e: &ClientError) -> Vec<Option<ErrorCode>> {
    e.failures().iter().map(|f| f.reason.code()).collect()
}

fn signs(pkp: &PkpInfo, message: &[u8], sig: &lit_client::PkpSignature) -> bool {
    recover_address(&eip191_hash(message), &sig.signature.to_ethereum_bytes())
        .unwrap()
        .to_checksum()
        == pkp.eth_address
}

/// A passkey registered to a PKP (by its owner) signs through the network; a replayed assertion
/// (at the same nodes, and at a node it was not made for), a wrong origin, a wrong relying party
/// and another credential are refused, each with its own error.
#[tokio::test]
async fn a_passkey_registered_to_a_pkp_signs_and_nothing_else_does() {
    let options = LayoutOptions {
        extra_config: format!("[webauthn]\nrp_id = \"{RP_ID}\"\norigins = [\"{ORIGIN}\"]\n"),
        ..LayoutOptions::default()
    };
    let started = std::time::Instant::now();
    let net = support::net::testnet(3).options(options).start().await;
    let (client, owner, pkp) = support::net::client_and_pkp(&net).await;
    eprintln!("network up and PKP minted in {:?}", started.elapsed());

    let mut user = authenticator();
    let passkey = register(&mut user, ORIGIN, RP_ID).await;
    let message = b"signed with a passkey".to_vec();
    let to_sign = ToSign::Message(Bytes(message.clone()));

    // before registration: verified, but not permitted
    let assertion_for = |group: &[NodeInfo]| {
        let group = group.to_vec();
        let client = &client;
        let to_sign = to_sign.clone();
        async move {
            client
                .passkey_challenge(IdTokenPurpose::PkpSign(&to_sign), &group)
                .await
                .unwrap()
        }
    };
    let nodes = client.nodes();
    let (group, outsider) = (&nodes[..2], &nodes[2]);
    let ids = |g: &[NodeInfo]| g.iter().map(|n| n.party_id).collect::<Vec<_>>();
    let challenge = assertion_for(group).await;
    let response = assert(&mut user, ORIGIN, &passkey, challenge.challenge()).await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&passkey, response),
        )
        .await
        .unwrap_err();
    assert!(
        code_of(&err).contains(&Some(ErrorCode::NotPermitted)),
        "{err}"
    );

    // registration: the owner permits the passkey (its credential id and public key)
    let updated = client
        .passkey_register(&owner, &pkp, &passkey, [PkpScope::PersonalSign].into())
        .await
        .unwrap();
    assert!(updated
        .permissions
        .auth_methods
        .iter()
        .any(|m| m.method_type == 3 && m.id == hex::encode(passkey.auth_method_id())));

    // sign-in: one assertion over the group's challenges and the request signs
    let (user_ref, passkey_ref) = (&mut user, &passkey);
    let sig = client
        .pkp_sign_with_passkey(&pkp, to_sign.clone(), &passkey, |challenge| async move {
            Ok(assert(user_ref, ORIGIN, passkey_ref, challenge).await)
        })
        .await
        .unwrap();
    assert!(signs(&pkp, &message, &sig));

    // an assertion the client used at nodes {1, 2} ...
    let challenge = assertion_for(group).await;
    let response = assert(&mut user, ORIGIN, &passkey, challenge.challenge()).await;
    let auth = challenge.auth(&passkey, response);
    let sig = client
        .pkp_sign_in_group(&pkp, to_sign.clone(), &ids(group), auth.clone())
        .await
        .unwrap();
    assert!(signs(&pkp, &message, &sig));
    // ... replayed there: each node used its challenge up
    let err = client
        .pkp_sign_in_group(&pkp, to_sign.clone(), &ids(group), auth.clone())
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&err),
        [
            Some(ErrorCode::NonceReplayed),
            Some(ErrorCode::NonceReplayed)
        ],
        "{err}"
    );
    // ... replayed at the node it was not made for: no challenge of that node in it
    let other_group = [nodes[0].clone(), outsider.clone()];
    let err = client
        .pkp_sign_in_group(&pkp, to_sign.clone(), &ids(&other_group), auth.clone())
        .await
        .unwrap_err();
    let outsider_failure = err
        .failures()
        .iter()
        .find(|f| f.party_id == Some(outsider.party_id))
        .unwrap();
    assert_eq!(
        outsider_failure.reason.code(),
        Some(ErrorCode::InvalidAuth),
        "{err}"
    );
    assert!(
        format!("{err:?}").contains("carries no challenge of this node"),
        "{err:?}"
    );
    // an assertion for one message signs no other (the purpose is in the challenge)
    let challenge = assertion_for(group).await;
    let response = assert(&mut user, ORIGIN, &passkey, challenge.challenge()).await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            ToSign::Message(Bytes(b"send everything to the operator".to_vec())),
            &ids(group),
            challenge.auth(&passkey, response),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("not bound to this request"),
        "{err:?}"
    );

    // a wrong origin: a page on a subdomain, which the relying party id allows a browser to
    // use, but which is not one of the relying party's origins
    let challenge = assertion_for(group).await;
    let response = assert(
        &mut user,
        "https://evil.wallet.example",
        &passkey,
        challenge.challenge(),
    )
    .await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&passkey, response),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err)[0], Some(ErrorCode::InvalidAuth), "{err}");
    assert!(
        format!("{err:?}").contains("is not an origin of this relying party"),
        "{err:?}"
    );

    // a wrong relying party: a passkey of another site, permitted on the PKP all the same
    let foreign = register(&mut user, "https://other.example", "other.example").await;
    client
        .passkey_register(&owner, &pkp, &foreign, [PkpScope::PersonalSign].into())
        .await
        .unwrap();
    let challenge = assertion_for(group).await;
    let response = assert(
        &mut user,
        "https://other.example",
        &foreign,
        challenge.challenge(),
    )
    .await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&foreign, response.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("this node accepts \\\"wallet.example\\\""),
        "{err:?}"
    );
    // ... and the same assertion passed off as one for this relying party's passkey: its client
    // data names the other site (a browser signs for the page it is on), refused before its
    // rpIdHash is even read
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&passkey, response),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&err)[0], Some(ErrorCode::InvalidAuth), "{err}");
    assert!(
        format!("{err:?}").contains("\\\"https://other.example\\\" is not an origin"),
        "{err:?}"
    );

    // another credential: a second passkey of the same site, never registered on the PKP ...
    let other = register(&mut user, ORIGIN, RP_ID).await;
    let challenge = assertion_for(group).await;
    let response = assert(&mut user, ORIGIN, &other, challenge.challenge()).await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&other, response.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        code_of(&err).contains(&Some(ErrorCode::NotPermitted)),
        "{err}"
    );
    // ... whose assertion, presented as the registered passkey's, does not verify
    let challenge = assertion_for(group).await;
    let response = assert(&mut user, ORIGIN, &other, challenge.challenge()).await;
    let err = client
        .pkp_sign_in_group(
            &pkp,
            to_sign.clone(),
            &ids(group),
            challenge.auth(&passkey, response),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("signature is invalid"),
        "{err:?}"
    );
    eprintln!("done in {:?}", started.elapsed());
}
