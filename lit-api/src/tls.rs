//! Attested TLS: how nodes, peers and clients authenticate the connection itself.
//!
//! A node serves HTTPS (TLS 1.3 only) with a self-signed certificate whose key **is its ed25519
//! identity key**. That key is what the node's attestation binds (its report data covers the
//! identity key, see [`crate::v1::HandshakeResponse::attested_digest`]), what the network file
//! and the chain pin, and what peers check envelopes with. So a client that verified a node's
//! attestation and then sees the same key in the TLS handshake knows that the connection ends in
//! that enclave, not in a proxy in front of it (the RA-TLS idea, with the evidence fetched per
//! challenge rather than frozen into the certificate):
//!
//! - **Clients** handshake over a connection that accepts any node certificate
//!   ([`NodeKeyVerifier::any_node`]), verify the attestation, and refuse the node unless the
//!   connection's certificate key equals the attested identity key. Every later request to the
//!   node goes through a connection pinned to that key ([`NodeKeyVerifier::pinned`]).
//! - **Peers** use mutual TLS: a node presents its certificate as a client certificate, accepts
//!   a server only when its key is a current peer's identity key ([`TrustedKeys`]), and the
//!   server side checks that a peer message's sender is the key of the client certificate.
//!
//! Certificate names, dates and signatures are not used: the key is the identity. The TLS 1.3
//! handshake proves possession of it (`CertificateVerify`), whose signed content starts with 64
//! spaces and a TLS context string, so it never collides with a node's own signatures, which all
//! start with a `lit/` domain tag. TLS 1.2, where the signed content starts with the client's
//! random bytes, is refused for that reason.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The object identifier of Ed25519 keys (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// What the message of a certificate refused by a [`NodeKeyVerifier::pinned`] connection
/// says (callers that only see the TLS error as text tell a refusal from an outage by it).
pub const NOT_THE_ATTESTED_KEY: &str = "is not the node's attested identity key";

/// The ALPN protocol nodes and clients speak over TLS.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a certificate is not a node certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    NotX509(String),
    /// The certificate's key is not an Ed25519 key.
    #[error("the certificate's key is not an Ed25519 key (algorithm {0}); a node's TLS key is its ed25519 identity key")]
    NotEd25519(String),
    /// The key is not one this connection accepts.
    #[error("{0}")]
    KeyNotAccepted(String),
}

/// The Ed25519 public key of a certificate (DER).
pub fn ed25519_key_of(cert_der: &[u8]) -> Result<[u8; 32], CertError> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| CertError::NotX509(e.to_string()))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let oid = spki.algorithm.oid.to_string();
    if oid != ED25519_OID || spki.algorithm.parameters.is_some() {
        return Err(CertError::NotEd25519(oid));
    }
    spki.subject_public_key
        .as_bytes()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| CertError::NotEd25519("a malformed Ed25519 key".into()))
}

/// A node's TLS certificate and key: a self-signed certificate of its identity key.
pub struct NodeCertificate {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for NodeCertificate {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCertificate").finish_non_exhaustive()
    }
}

impl NodeCertificate {
    /// The certificate of the ed25519 key with secret `seed` and public key `public`.
    pub fn new(seed: &[u8; 32], public: &[u8; 32]) -> Result<Self, rcgen::Error> {
        let key = PrivatePkcs8KeyDer::from(ed25519_pkcs8_v2(seed, public));
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)?;
        let mut params = rcgen::CertificateParams::new(vec!["lit-node".to_string()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("lit-node {}", hex::encode(&public[..8])),
        );
        let cert = params.self_signed(&pair)?;
        Ok(Self {
            cert: cert.der().clone(),
            key,
        })
    }

    /// The certificate (DER).
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// PKCS #8 v2 (RFC 5958) of an Ed25519 key, as RFC 8410 §7 lays it out: version 1, the
/// algorithm, the 32-byte seed as an OCTET STRING inside the private key OCTET STRING, and the
/// public key as `[1]` BIT STRING.
fn ed25519_pkcs8_v2(seed: &[u8; 32], public: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x53, // SEQUENCE, 83 bytes
        0x02, 0x01, 0x01, // version 1 (v2)
        0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier id-Ed25519
        0x04, 0x22, 0x04, 0x20, // privateKey OCTET STRING { OCTET STRING (32) }
    ];
    der.extend_from_slice(seed);
    der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]); // [1] publicKey BIT STRING
    der.extend_from_slice(public);
    der
}

/// A set of identity keys a connection accepts, shared and replaced as membership changes (a
/// node's current peers).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(Arc<RwLock<BTreeSet<[u8; 32]>>>);

impl TrustedKeys {
    /// A set of `keys`.
    pub fn new(keys: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self(Arc::new(RwLock::new(keys.into_iter().collect())))
    }

    /// Replaces the set.
    pub fn replace(&self, keys: impl IntoIterator<Item = [u8; 32]>) {
        let mut set = self.0.write().unwrap_or_else(|p| p.into_inner());
        *set = keys.into_iter().collect();
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }
}

#[derive(Debug)]
enum Accept {
    AnyNode,
    Pinned([u8; 32]),
    Keys(TrustedKeys),
}

/// Verifies the other side of a TLS connection by its certificate's Ed25519 key (servers for a
/// client, clients for a node that asks for client certificates).
#[derive(Debug)]
pub struct NodeKeyVerifier {
    accept: Accept,
    provider: Arc<CryptoProvider>,
}

impl NodeKeyVerifier {
    /// Accepts any Ed25519 certificate (that its holder proves it has the key of). The caller
    /// checks the key afterwards (a client's handshake compares it with the attested key).
    pub fn any_node() -> Arc<Self> {
        Self::with(Accept::AnyNode)
    }

    /// Accepts only the certificate of `identity_key`.
    pub fn pinned(identity_key: [u8; 32]) -> Arc<Self> {
        Self::with(Accept::Pinned(identity_key))
    }

    /// Accepts the certificates of the keys in `keys` (as it is at each connection).
    pub fn trusting(keys: TrustedKeys) -> Arc<Self> {
        Self::with(Accept::Keys(keys))
    }

    fn with(accept: Accept) -> Arc<Self> {
        Arc::new(Self {
            accept,
            provider: provider(),
        })
    }

    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let refuse = |e: CertError| {
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        };
        let key = ed25519_key_of(cert).map_err(refuse)?;
        match &self.accept {
            Accept::AnyNode => Ok(()),
            Accept::Pinned(pinned) if *pinned == key => Ok(()),
            Accept::Pinned(pinned) => Err(refuse(CertError::KeyNotAccepted(format!(
                "the TLS certificate's key {} {NOT_THE_ATTESTED_KEY} {}",
                hex::encode(key),
                hex::encode(pinned)
            )))),
            Accept::Keys(keys) if keys.contains(&key) => Ok(()),
            Accept::Keys(_) => Err(refuse(CertError::KeyNotAccepted(format!(
                "the TLS certificate's key {} is not the identity key of a current peer",
                hex::encode(key)
            )))),
        }
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("nodes speak TLS 1.3 only".into())
}

impl ServerCertVerifier for NodeKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for NodeKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Users' clients have no certificate; peers present theirs, and the peer endpoint
    /// requires it (`lit-node`'s `PeerNet::deliver` checks that it is the envelope's signer).
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS 1.3 client configuration that checks servers with `verifier` and, for a node talking
/// to its peers, presents `identity` as its client certificate.
pub fn client_config(
    verifier: Arc<NodeKeyVerifier>,
    identity: Option<&NodeCertificate>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(vec![id.cert.clone()], id.key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// A node's TLS 1.3 server configuration: its certificate, and client certificates asked for
/// (peers present theirs) but not required (users' clients have none).
pub fn server_config(identity: &NodeCertificate) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(NodeKeyVerifier::any_node())
        .with_single_cert(vec![identity.cert.clone()], identity.key())?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(seed: u8) -> ([u8; 32], [u8; 32]) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        ([seed; 32], sk.verifying_key().to_bytes())
    }

    #[test]
    fn a_node_certificate_carries_the_identity_key() {
        let (seed, public) = key(7);
        let cert = NodeCertificate::new(&seed, &public).unwrap();
        assert_eq!(ed25519_key_of(cert.der()).unwrap(), public);
        // the configurations accept it
        server_config(&cert).unwrap();
        client_config(NodeKeyVerifier::pinned(public), Some(&cert)).unwrap();
    }

    #[test]
    fn the_verifier_accepts_only_the_keys_it_is_given() {
        let (s1, p1) = key(1);
        let (_, p2) = key(2);
        let cert = NodeCertificate::new(&s1, &p1).unwrap();
        assert!(NodeKeyVerifier::any_node().check(cert.der()).is_ok());
        assert!(NodeKeyVerifier::pinned(p1).check(cert.der()).is_ok());
        let err = NodeKeyVerifier::pinned(p2).check(cert.der()).unwrap_err();
        assert!(
            err.to_string()
                .contains("not the node's attested identity key"),
            "{err}"
        );
        let keys = TrustedKeys::new([p2]);
        let v = NodeKeyVerifier::trusting(keys.clone());
        assert!(v.check(cert.der()).is_err());
        keys.replace([p1, p2]);
        assert!(v.check(cert.der()).is_ok());
    }

    #[test]
    fn certificates_of_other_key_types_and_garbage_are_refused() {
        assert!(matches!(
            ed25519_key_of(b"not a certificate"),
            Err(CertError::NotX509(_))
        ));
        let p256 = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        assert!(matches!(
            ed25519_key_of(p256.cert.der()),
            Err(CertError::NotEd25519(_))
        ));
        assert!(NodeKeyVerifier::any_node().check(p256.cert.der()).is_err());
    }
}
