//! PKPs from the client: mint, read, permit, and sign (a digest, an EIP-191 message, or an
//! Ethereum transaction) with a group of `T` nodes, combining and verifying the signature.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{FuturesUnordered, StreamExt};

use lit_api::owner::OwnerAction;
use lit_api::v1::{
    paths, pkp_share_aad, rotation_groups, PermissionChange, PkpAuth, PkpInfo, PkpInfoRequest,
    PkpMintRequest, PkpPermissionsRequest, PkpSignRequest, PkpSignResponse, PresignatureSource,
    ToSign, PKP_SHARE_SEAL_INFO,
};
use lit_api::{Bytes32, ErrorCode};
use lit_crypto::ecdsa::{
    combine, MessageDigest, RecoverableSignature, SignatureShare, SigningContext,
};
use lit_crypto::eth::eip191_hash;
use lit_crypto::seal::SealSecretKey;
use rand_core::{OsRng, RngCore};

use crate::client::{endpoint, post_json, shuffle, EpochView, LitClient};
use crate::eth_tx::EthTransaction;
use crate::owner::APPROVAL_TTL;
use crate::{ClientError, NodeFailure, NodeFailureReason, Wallet};

/// How many signing groups [`LitClient::pkp_sign`] tries before giving up.
pub const SIGN_ATTEMPTS: usize = 3;

/// How long a node that failed for itself is left out of signing groups (while enough others
/// remain).
pub const SUSPECT_FOR: Duration = Duration::from_secs(30);

/// A combined PKP signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkpSignature {
    /// The signature, low-`s`, with its recovery id; it recovers to the PKP's key.
    pub signature: RecoverableSignature,
    /// The digest that was signed.
    pub digest: [u8; 32],
    /// The nodes that signed.
    pub group: Vec<u32>,
    /// Where the group's presignature came from (the slowest answer's, if they differ).
    pub presignature: PresignatureSource,
    /// The id of the presignature used (each is used for one signature only).
    pub presignature_id: [u8; 32],
}

/// One node's answer to a signing request, opened and checked.
fn open_sign_share(
    seal_key: &SealSecretKey,
    party_id: u32,
    epoch: u64,
    request_id: &Bytes32,
    digest: &[u8; 32],
    response: &PkpSignResponse,
) -> Result<SignatureShare, NodeFailureReason> {
    if response.party_id != party_id || response.epoch != epoch {
        return Err(NodeFailureReason::InvalidShare(format!(
            "answer labelled party {} epoch {}",
            response.party_id, response.epoch
        )));
    }
    let bytes = crate::shares::open_sealed(
        seal_key,
        &response.share,
        PKP_SHARE_SEAL_INFO,
        &pkp_share_aad(party_id, epoch, request_id, digest),
    )
    .map_err(|_| NodeFailureReason::InvalidShare("the sealed share does not open".into()))?;
    let share: SignatureShare = serde_json::from_slice(&bytes)
        .map_err(|e| NodeFailureReason::InvalidShare(format!("share: {e}")))?;
    if share.party.get() != party_id {
        return Err(NodeFailureReason::InvalidShare(format!(
            "share is party {}'s",
            share.party
        )));
    }
    Ok(share)
}

impl LitClient {
    /// Asks the nodes one by one (in random order) until one answers; non-retryable refusals
    /// (e.g. `not_permitted`) end the search. Handshakes again and asks once more if the
    /// network moved to another epoch.
    pub(crate) async fn ask_any<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        path: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        self.with_epoch_retry(what, |view| self.ask_any_in(view, path, body))
            .await
    }

    async fn ask_any_in<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        view: std::sync::Arc<EpochView>,
        path: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        let mut order: Vec<_> = view.nodes().iter().collect();
        shuffle(&mut order);
        let mut failures = Vec::new();
        for node in order {
            let http = self.http_to(&view, &node.url);
            match post_json::<Req, Resp>(&http, &endpoint(&node.url, path), body).await {
                Ok(r) => return Ok(r),
                Err(reason) => {
                    let fatal = matches!(reason.code(), Some(c) if !c.is_retryable());
                    failures.push(NodeFailure {
                        party_id: Some(node.party_id),
                        url: node.url.clone(),
                        reason,
                    });
                    if fatal {
                        break;
                    }
                }
            }
        }
        Err(ClientError::NodesFailed { failures })
    }

    /// Mints a PKP owned by `wallet`.
    pub async fn mint_pkp(&self, wallet: &Wallet) -> Result<PkpInfo, ClientError> {
        let owner = wallet.address().to_checksum();
        let approval = wallet.approve(
            &self.network_id(),
            &OwnerAction::Mint { owner: &owner },
            SystemTime::now(),
            APPROVAL_TTL,
        )?;
        let info: PkpInfo = self
            .ask_any(
                "PKP mint",
                paths::PKP_MINT,
                &PkpMintRequest { owner, approval },
            )
            .await?;
        self.check_pkp(&info)?;
        Ok(info)
    }

    /// A PKP's record.
    pub async fn pkp(&self, token_id: [u8; 32]) -> Result<PkpInfo, ClientError> {
        let info: PkpInfo = self
            .ask_any(
                "PKP info",
                paths::PKP_INFO,
                &PkpInfoRequest {
                    token_id: Bytes32(token_id),
                },
            )
            .await?;
        self.check_pkp(&info)?;
        Ok(info)
    }

    /// Changes a PKP's permissions (the wallet must own it).
    pub async fn pkp_permit(
        &self,
        wallet: &Wallet,
        token_id: [u8; 32],
        change: PermissionChange,
    ) -> Result<PkpInfo, ClientError> {
        let token_id = Bytes32(token_id);
        let approval = wallet.approve(
            &self.network_id(),
            &OwnerAction::ChangePermissions {
                token_id: &token_id,
                change: &change,
            },
            SystemTime::now(),
            APPROVAL_TTL,
        )?;
        self.ask_any(
            "PKP permissions",
            paths::PKP_PERMISSIONS,
            &PkpPermissionsRequest {
                token_id,
                change,
                approval,
            },
        )
        .await
    }

    /// The network's identifier, which owner approvals name (see [`lit_api::owner::network_id`]).
    pub fn network_id(&self) -> String {
        lit_api::owner::network_id(&self.network_keys().bls.0)
    }

    /// Checks that a PKP record's public key is the network root key tweaked by its key id.
    fn check_pkp(&self, info: &PkpInfo) -> Result<(), ClientError> {
        let root = self.root_key()?;
        let derived = lit_crypto::ecdsa::pkp_public_key(&root, &info.key_id.0)
            .map_err(|e| ClientError::Config(format!("PKP key: {e}")))?;
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        if derived.to_encoded_point(true).as_bytes() != info.public_key.0.as_slice() {
            return Err(ClientError::Config(
                "the PKP's public key is not derived from the network root key".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn root_key(&self) -> Result<k256::AffinePoint, ClientError> {
        k256::PublicKey::from_sec1_bytes(&self.view().network_keys().ecdsa.0)
            .map(|k| *k.as_affine())
            .map_err(|_| ClientError::Config("the network's secp256k1 key is invalid".into()))
    }

    /// Signs with a PKP: `to_sign` is a digest or an EIP-191 message; `auth` proves the caller
    /// may. Asks a random group of `T` nodes; if a node fails, retries with another group
    /// without it (up to [`SIGN_ATTEMPTS`] groups). The combined signature is verified to
    /// recover to the PKP's key before it is returned.
    ///
    /// `auth` is a [`Signer`]: a wallet (the client makes a session granting `pkp-signing` on
    /// this PKP and signs it for each node), a session, or an auth method or Lit Action.
    pub async fn pkp_sign<'a>(
        &self,
        pkp: &PkpInfo,
        to_sign: ToSign,
        auth: impl Into<Signer<'a>>,
    ) -> Result<PkpSignature, ClientError> {
        match auth.into() {
            Signer::Fixed(auth) => {
                same_for_every_node(&auth)?;
                self.sign_with(pkp, to_sign, &|_| Ok(auth.clone())).await
            }
            Signer::Session(session) => self.pkp_sign_with_session(pkp, to_sign, session).await,
            Signer::Wallet(wallet) => {
                let session = self.session(wallet, vec![pkp_grant(pkp)?], self.options.auth_ttl)?;
                self.pkp_sign_with_session(pkp, to_sign, &session).await
            }
        }
    }

    /// Signs with a PKP under a session: each node gets a session signature made for it.
    pub async fn pkp_sign_with_session(
        &self,
        pkp: &PkpInfo,
        to_sign: ToSign,
        session: &crate::Session,
    ) -> Result<PkpSignature, ClientError> {
        self.sign_with(pkp, to_sign, &|url| {
            session
                .sign_for_node(url, SystemTime::now())
                .map(PkpAuth::SessionSig)
                .map_err(|e| ClientError::Config(format!("session: {e}")))
        })
        .await
    }

    /// A session that acts as the PKP: a fresh session key, a capability granting
    /// `pkp-signing` on this PKP for `ttl`, signed by the network (BLS, threshold) after each
    /// node checked that `auth` may sign anything with the PKP.
    pub async fn pkp_session<'a>(
        &self,
        pkp: &PkpInfo,
        auth: impl Into<Signer<'a>>,
        ttl: Duration,
    ) -> Result<crate::Session, ClientError> {
        match auth.into() {
            Signer::Fixed(auth) => {
                same_for_every_node(&auth)?;
                self.pkp_session_by(pkp, &|_| Ok(auth.clone()), ttl).await
            }
            Signer::Session(session) => self.pkp_session_from(pkp, session, ttl).await,
            Signer::Wallet(wallet) => {
                let session = self.session(wallet, vec![pkp_grant(pkp)?], self.options.auth_ttl)?;
                self.pkp_session_from(pkp, &session, ttl).await
            }
        }
    }

    /// Like [`LitClient::pkp_session`] with a wallet's session (one that grants `pkp-signing`
    /// on this PKP) as the auth: each node gets its own session signature.
    pub async fn pkp_session_from(
        &self,
        pkp: &PkpInfo,
        session: &crate::Session,
        ttl: Duration,
    ) -> Result<crate::Session, ClientError> {
        self.pkp_session_by(
            pkp,
            &|url| {
                session
                    .sign_for_node(url, SystemTime::now())
                    .map(PkpAuth::SessionSig)
                    .map_err(|e| ClientError::Config(format!("session: {e}")))
            },
            ttl,
        )
        .await
    }

    /// The first half of a PKP session for an auth method: a fresh session key and the
    /// capability the network will sign, from now for `ttl`. Ask the identity provider for an ID
    /// token whose `nonce` is `lit_api::v1::IdTokenPurpose::PkpSession(&capability).nonce()`, then
    /// call [`LitClient::pkp_session_with_capability`] with it.
    pub fn pkp_session_capability(
        &self,
        pkp: &PkpInfo,
        ttl: Duration,
    ) -> Result<(crate::SessionKey, String), ClientError> {
        let config = |e: String| ClientError::Config(format!("session: {e}"));
        let key = crate::SessionKey::random();
        let address =
            lit_crypto::eth::Address::parse(&pkp.eth_address).map_err(|e| config(e.to_string()))?;
        let message = crate::session::pkp_capability_message(
            self.domain(),
            &address,
            &key.public_key(),
            &[pkp_grant(pkp)?],
            SystemTime::now(),
            ttl,
        )
        .map_err(|e| config(e.to_string()))?;
        Ok((key, message))
    }

    /// The second half (see [`LitClient::pkp_session_capability`]): the network signs
    /// `capability` for `key` after checking `auth` (the same at every node: an ID token bound
    /// to this capability by its nonce, or a Lit Action).
    pub async fn pkp_session_with_capability(
        &self,
        pkp: &PkpInfo,
        key: crate::SessionKey,
        capability: String,
        auth: PkpAuth,
    ) -> Result<crate::Session, ClientError> {
        same_for_every_node(&auth)?;
        self.pkp_session_signed(pkp, key, capability, &|_| Ok(auth.clone()))
            .await
    }

    async fn pkp_session_by(
        &self,
        pkp: &PkpInfo,
        auth_for: &(dyn Fn(&str) -> Result<PkpAuth, ClientError> + Sync),
        ttl: Duration,
    ) -> Result<crate::Session, ClientError> {
        let (key, message) = self.pkp_session_capability(pkp, ttl)?;
        self.pkp_session_signed(pkp, key, message, auth_for).await
    }

    async fn pkp_session_signed(
        &self,
        pkp: &PkpInfo,
        key: crate::SessionKey,
        message: String,
        auth_for: &(dyn Fn(&str) -> Result<PkpAuth, ClientError> + Sync),
    ) -> Result<crate::Session, ClientError> {
        let config = |e: String| ClientError::Config(format!("session: {e}"));
        let request = pkp_grant(pkp)?;
        let address =
            lit_crypto::eth::Address::parse(&pkp.eth_address).map_err(|e| config(e.to_string()))?;
        let (grant, signature) = self
            .with_epoch_retry("PKP session", |view| {
                self.sign_capability(view, pkp, &message, auth_for)
            })
            .await?;
        let capability = crate::session::network_capability(grant, &signature, &address);
        crate::Session::from_network_capability(key, capability, vec![request])
            .map(|s| self.with_payment_terms(s))
            .map_err(|e| config(e.to_string()))
    }

    /// The network's BLS signature over a PKP session capability and the party that obtained
    /// it (`lit_api::session::network_grant_message`), with that message: `T` verified shares
    /// over the same party from nodes asked one by one (a node that names another party than
    /// the others cannot stop the session; its share counts for its party only).
    async fn sign_capability(
        &self,
        view: std::sync::Arc<EpochView>,
        pkp: &PkpInfo,
        message: &str,
        auth_for: &(dyn Fn(&str) -> Result<PkpAuth, ClientError> + Sync),
    ) -> Result<(String, lit_crypto::bls::Signature), ClientError> {
        let mut order: Vec<_> = view.nodes().iter().collect();
        shuffle(&mut order);
        let key_set = view.key_set();
        let threshold = view.threshold();
        let mut by_party: std::collections::BTreeMap<String, Vec<_>> = Default::default();
        let mut failures = Vec::new();
        for node in order {
            if by_party.values().any(|s| s.len() == threshold) {
                break;
            }
            let (seal_key, seal_public) = SealSecretKey::generate(&mut OsRng);
            let body = lit_api::v1::SessionSignRequest {
                epoch: view.epoch(),
                token_id: pkp.token_id,
                auth: auth_for(&node.url)?,
                capability: message.to_string(),
                client_public_key: Bytes32(seal_public.to_bytes()),
            };
            let http = self.http_to(&view, &node.url);
            let r: Result<lit_api::v1::SessionSignResponse, _> =
                post_json(&http, &endpoint(&node.url, paths::SESSION_SIGN), &body).await;
            let share = r.and_then(|resp| {
                let grant = lit_api::session::network_grant_message(message, &resp.party)
                    .ok_or_else(|| {
                        NodeFailureReason::InvalidShare(format!(
                            "the node names an impossible party {:?}",
                            resp.party
                        ))
                    })?;
                crate::shares::open_bls_share(
                    key_set,
                    &seal_key,
                    (node.party_id, view.epoch()),
                    (resp.party_id, resp.epoch),
                    lit_api::v1::SESSION_SHARE_SEAL_INFO,
                    grant.as_bytes(),
                    &resp.share,
                )
                .map(|share| (grant, share))
            });
            match share {
                Ok((grant, share)) => by_party.entry(grant).or_default().push(share),
                Err(reason) => {
                    let fatal = matches!(reason.code(), Some(c) if !c.is_retryable());
                    failures.push(NodeFailure {
                        party_id: Some(node.party_id),
                        url: node.url.clone(),
                        reason,
                    });
                    if fatal {
                        return Err(ClientError::NodesFailed { failures });
                    }
                }
            }
        }
        let Some((grant, shares)) = by_party.into_iter().max_by_key(|(_, s)| s.len()) else {
            return Err(ClientError::TooFewShares {
                needed: threshold,
                got: 0,
                failures,
            });
        };
        if shares.len() < threshold {
            return Err(ClientError::TooFewShares {
                needed: threshold,
                got: shares.len(),
                failures,
            });
        }
        let signature = key_set
            .combine(grant.as_bytes(), &shares)
            .map_err(|e| ClientError::Signature(e.to_string()))?;
        Ok((grant, signature))
    }

    async fn sign_with(
        &self,
        pkp: &PkpInfo,
        to_sign: ToSign,
        auth_for: &(dyn Fn(&str) -> Result<PkpAuth, ClientError> + Sync),
    ) -> Result<PkpSignature, ClientError> {
        self.check_pkp(pkp)?;
        self.with_epoch_retry("PKP signing", |view| {
            self.sign_in(view, pkp, to_sign.clone(), auth_for, BTreeSet::new())
        })
        .await
    }

    /// Signs with a PKP by exactly the group `group` (party ids of `T` nodes of the current
    /// view), once: for a credential bound to those nodes (a passkey assertion over their
    /// challenges, see [`crate::passkey`]), which another group would refuse.
    pub async fn pkp_sign_in_group(
        &self,
        pkp: &PkpInfo,
        to_sign: ToSign,
        group: &[u32],
        auth: PkpAuth,
    ) -> Result<PkpSignature, ClientError> {
        self.check_pkp(pkp)?;
        let view = self.view();
        let others: BTreeSet<u32> = view
            .nodes()
            .iter()
            .map(|n| n.party_id)
            .filter(|p| !group.contains(p))
            .collect();
        self.sign_in(view, pkp, to_sign, &|_| Ok(auth.clone()), others)
            .await
    }

    /// Signs in `view` with a group of nodes not in `excluded` (retrying with other such groups).
    async fn sign_in(
        &self,
        view: std::sync::Arc<EpochView>,
        pkp: &PkpInfo,
        to_sign: ToSign,
        auth_for: &(dyn Fn(&str) -> Result<PkpAuth, ClientError> + Sync),
        mut excluded: BTreeSet<u32>,
    ) -> Result<PkpSignature, ClientError> {
        let digest = match &to_sign {
            ToSign::Digest(d) => d.0,
            ToSign::Message(m) => eip191_hash(&m.0),
        };
        let context = SigningContext {
            root_public_key: self.root_key()?,
            key_id: pkp.key_id.0.to_vec(),
            digest: MessageDigest::prehashed(digest),
        };
        let mut failures: Vec<NodeFailure> = Vec::new();
        for _ in 0..SIGN_ATTEMPTS {
            // the group agrees on the presignature itself (its lead hands out a pooled one)
            let Some(group) = self.signing_group(&view, &excluded) else {
                break;
            };
            let ids: Vec<u32> = group.iter().map(|n| n.party_id).collect();
            let mut request_id = [0u8; 32];
            OsRng.fill_bytes(&mut request_id);
            let request_id = Bytes32(request_id);
            let mut bodies = Vec::with_capacity(group.len());
            for node in &group {
                bodies.push(auth_for(&node.url)?);
            }
            let mut pending: FuturesUnordered<_> = group
                .iter()
                .zip(bodies)
                .map(|(node, auth)| {
                    let (seal_key, seal_public) = SealSecretKey::generate(&mut OsRng);
                    let body = PkpSignRequest {
                        epoch: view.epoch(),
                        token_id: pkp.token_id,
                        to_sign: to_sign.clone(),
                        auth,
                        group: ids.clone(),
                        request_id,
                        client_public_key: Bytes32(seal_public.to_bytes()),
                    };
                    let url = endpoint(&node.url, paths::PKP_SIGN);
                    let http = self.http_to(&view, &node.url);
                    let epoch = view.epoch();
                    let party = node.party_id;
                    async move {
                        let r: Result<PkpSignResponse, _> = post_json(&http, &url, &body).await;
                        let r = r.and_then(|resp| {
                            open_sign_share(&seal_key, party, epoch, &request_id, &digest, &resp)
                                .map(|s| (s, resp.presignature))
                        });
                        (party, url, r)
                    }
                })
                .collect();
            let mut shares = Vec::new();
            let mut source = PresignatureSource::Pool;
            let mut round_failures = Vec::new();
            while let Some((party, url, r)) = pending.next().await {
                match r {
                    Ok((share, s)) => {
                        if s == PresignatureSource::Fresh {
                            source = s;
                        }
                        shares.push(share);
                    }
                    Err(reason) => {
                        // a member that failed for itself sinks the group: do not wait for
                        // the others to time out
                        let own_fault = !matches!(reason, NodeFailureReason::Api { .. });
                        round_failures.push(NodeFailure {
                            party_id: Some(party),
                            url,
                            reason,
                        });
                        if own_fault {
                            break;
                        }
                    }
                }
            }
            drop(pending);
            if round_failures.is_empty() {
                let signature = combine(&context, &shares)
                    .map_err(|e| ClientError::Signature(e.to_string()))?;
                let presignature_id = shares.first().map_or([0; 32], |s| s.presignature.0);
                return Ok(PkpSignature {
                    signature,
                    digest,
                    group: ids,
                    presignature: source,
                    presignature_id,
                });
            }
            // a refusal every node gives alike ends the attempts, and so does another epoch
            // (another group of this epoch would be refused alike: the caller handshakes again)
            if round_failures.iter().any(|f| {
                matches!(f.reason.code(), Some(c) if (!c.is_retryable() && c != ErrorCode::NonceReplayed) || c == ErrorCode::WrongEpoch)
            }) {
                failures.extend(round_failures);
                return Err(ClientError::NodesFailed { failures });
            }
            // nodes that failed for themselves are avoided from now on; if nobody did, at
            // least do not try the same group again
            let mut blamed = false;
            for f in &round_failures {
                if let (false, Some(p)) = (
                    matches!(f.reason, NodeFailureReason::Api { .. }),
                    f.party_id,
                ) {
                    excluded.insert(p);
                    self.suspect(p);
                    blamed = true;
                }
            }
            if !blamed {
                if let Some(p) = round_failures.first().and_then(|f| f.party_id) {
                    excluded.insert(p);
                }
            }
            failures.extend(round_failures);
        }
        Err(ClientError::NodesFailed { failures })
    }

    /// A signing group of `T` nodes without `excluded` (and, while possible, without recent
    /// suspects): a random rotation group (those have presignature pools) if one is available,
    /// else any `T` of the remaining nodes.
    pub(crate) fn signing_group<'v>(
        &self,
        view: &'v EpochView,
        excluded: &BTreeSet<u32>,
    ) -> Option<Vec<&'v crate::NodeInfo>> {
        let now = Instant::now();
        let suspects: BTreeSet<u32> = {
            let mut s = self.suspects.lock().unwrap_or_else(|e| e.into_inner());
            s.retain(|_, t| now.duration_since(*t) < SUSPECT_FOR);
            s.keys().copied().collect()
        };
        let members: Vec<u32> = view.member_ids();
        let nodes = view.nodes();
        let threshold = view.threshold();
        let usable = |p: &u32, avoid_suspects: bool| {
            !excluded.contains(p)
                && (!avoid_suspects || !suspects.contains(p))
                && nodes.iter().any(|n| n.party_id == *p)
        };
        for avoid_suspects in [true, false] {
            let mut rotations: Vec<Vec<u32>> = rotation_groups(&members, threshold)
                .into_iter()
                .filter(|g| g.iter().all(|p| usable(p, avoid_suspects)))
                .collect();
            shuffle(&mut rotations);
            if let Some(g) = rotations.first() {
                return Some(
                    g.iter()
                        .filter_map(|p| nodes.iter().find(|n| n.party_id == *p))
                        .collect(),
                );
            }
            let mut pool: Vec<_> = nodes
                .iter()
                .filter(|n| usable(&n.party_id, avoid_suspects))
                .collect();
            if pool.len() >= threshold {
                shuffle(&mut pool);
                let mut group: Vec<_> = pool.into_iter().take(threshold).collect();
                group.sort_by_key(|n| n.party_id);
                return Some(group);
            }
        }
        None
    }

    pub(crate) fn suspect(&self, party: u32) {
        self.suspects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(party, Instant::now());
    }

    /// Signs an Ethereum transaction with a PKP; returns the raw signed transaction for
    /// `eth_sendRawTransaction`, and the signature.
    pub async fn pkp_sign_transaction<'a>(
        &self,
        pkp: &PkpInfo,
        tx: &EthTransaction,
        auth: impl Into<Signer<'a>>,
    ) -> Result<(Vec<u8>, PkpSignature), ClientError> {
        let sig = self
            .pkp_sign(pkp, ToSign::Digest(Bytes32(tx.signing_hash())), auth)
            .await?;
        Ok((tx.encode_signed(&sig.signature)?, sig))
    }
}

/// Who signs with a PKP (or runs an action): how each node gets its own credential.
#[derive(Clone)]
#[non_exhaustive]
pub enum Signer<'a> {
    /// A wallet: the client makes a session granting exactly what the request needs (one
    /// wallet signature) and signs it for each node.
    Wallet(&'a crate::Wallet),
    /// A session that grants what the request needs: signed for each node.
    Session(&'a crate::Session),
    /// The same credential at every node: an auth method (an OpenID Connect ID token) or a
    /// Lit Action. A wallet's `AuthSig` is refused (see [`same_for_every_node`]).
    Fixed(PkpAuth),
}

impl<'a> From<&'a crate::Wallet> for Signer<'a> {
    fn from(w: &'a crate::Wallet) -> Self {
        Signer::Wallet(w)
    }
}

impl<'a> From<&'a crate::Session> for Signer<'a> {
    fn from(s: &'a crate::Session) -> Self {
        Signer::Session(s)
    }
}

impl From<PkpAuth> for Signer<'_> {
    fn from(a: PkpAuth) -> Self {
        Signer::Fixed(a)
    }
}

/// The session grant to sign with this PKP: `pkp-signing` on `lit-pkp://<token id>`.
pub fn pkp_grant(pkp: &PkpInfo) -> Result<lit_api::session::ResourceAbilityRequest, ClientError> {
    use lit_api::session::{LitAbility, LitResource, ResourceAbilityRequest};
    ResourceAbilityRequest::new(LitResource::pkp(&pkp.token_id.0), LitAbility::PkpSigning)
        .map_err(|e| ClientError::Config(format!("session: {e}")))
}

/// Refuses a wallet's `AuthSig` where the same auth would go to every node: nodes refuse it
/// (any of them could replay it at the others), so the client says so before asking.
pub(crate) fn same_for_every_node(auth: &PkpAuth) -> Result<(), ClientError> {
    if let PkpAuth::AuthSig(_) = auth {
        return Err(ClientError::Config(
            "a wallet's AuthSig would be the same at every node, which nodes refuse: use a \
             session (LitClient::session) so that each node gets its own signature"
                .into(),
        ));
    }
    Ok(())
}
