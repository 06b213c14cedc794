//! The node key in the TLS handshake: RFC 7250 raw public keys on both sides.
//!
//! Each side presents the `SubjectPublicKeyInfo` of its ed25519 node key as its "certificate"
//! and signs the TLS 1.3 handshake with that key. The verifiers here accept exactly one form
//! (the 44-byte DER of an ed25519 key, compared byte for byte, no X.509 parser involved),
//! derive the peer's `node:did:key:…` from it, refuse weak and non-canonical keys, and check the
//! handshake signature with rustls' own `verify_tls13_signature_with_raw_key`. A dialer's
//! verifier also compares the proven node id with the one it dialled.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use orbi_types::{KeyPair, NodeId};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error as TlsError,
    SignatureAlgorithm, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key},
    pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    sign::{CertifiedKey, Signer, SigningKey},
};

/// DER of `SubjectPublicKeyInfo { algorithm: id-Ed25519 (1.3.101.112), key: BIT STRING }`
/// up to the 32 key bytes (RFC 8410 §4).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a peer's handshake proof does not name a usable node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The presented key is not the DER of one ed25519 public key.
    #[error("peer key is not an ed25519 SubjectPublicKeyInfo ({len} bytes)")]
    NotEd25519 {
        /// Length of what was presented.
        len: usize,
    },
    /// The 32 key bytes are not a canonical curve point.
    #[error("peer key is not a canonical ed25519 point")]
    NotCanonical,
    /// The key has small order: anyone could sign for it.
    #[error("peer key is a weak (small-order) ed25519 point")]
    Weak,
    /// The handshake finished without a peer key (cannot happen with these verifiers).
    #[error("the handshake proved no peer key")]
    Missing,
    /// The peer proved a different node than the one dialled.
    #[error("peer proved {proven}, expected {expected}")]
    Unexpected {
        /// Who was dialled.
        expected: NodeId,
        /// Who answered.
        proven: NodeId,
    },
}

/// The `SubjectPublicKeyInfo` DER of `key`'s public half (what this node presents).
pub fn spki_of(key: &KeyPair) -> Vec<u8> {
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&ED25519_SPKI_PREFIX);
    der.extend_from_slice(key.verifying_key().as_bytes());
    der
}

/// The node id proven by a raw-public-key `spki`, with every strictness check.
///
/// ```
/// use orbi_inac::quic::identity::{node_id_from_spki, spki_of};
/// use orbi_types::KeyPair;
///
/// let key = KeyPair::from_seed(&[7; 32]);
/// assert_eq!(node_id_from_spki(&spki_of(&key))?, key.node_id());
/// assert!(node_id_from_spki(&spki_of(&key)[1..]).is_err());
/// # Ok::<(), orbi_inac::quic::identity::IdentityError>(())
/// ```
pub fn node_id_from_spki(spki: &[u8]) -> Result<NodeId, IdentityError> {
    let raw: [u8; 32] = spki
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|key| key.try_into().ok())
        .ok_or(IdentityError::NotEd25519 { len: spki.len() })?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| IdentityError::NotCanonical)?;
    if key.is_weak() {
        return Err(IdentityError::Weak);
    }
    let node = NodeId::from_verifying_key(&key);
    // The strict did:key decode rejects a non-canonical y coordinate.
    node.verifying_key()
        .map_err(|_| IdentityError::NotCanonical)?;
    Ok(node)
}

/// The node id a finished handshake proved for the peer of `connection`.
pub fn peer_node_id(connection: &quinn::Connection) -> Result<NodeId, IdentityError> {
    let identity = connection.peer_identity().ok_or(IdentityError::Missing)?;
    let keys = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| IdentityError::Missing)?;
    match keys.as_slice() {
        [key] => node_id_from_spki(key.as_ref()),
        _ => Err(IdentityError::Missing),
    }
}

/// `key` as the raw public key rustls presents and signs with.
pub fn certified_key(key: &KeyPair) -> Arc<CertifiedKey> {
    let signing = NodeSigningKey(Arc::new(key.clone()));
    Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(spki_of(key))],
        Arc::new(signing),
    ))
}

/// Signs handshakes with the node key (the one ed25519 implementation of `orbi-types`).
#[derive(Debug)]
struct NodeSigningKey(Arc<KeyPair>);

impl SigningKey for NodeSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(NodeSigner(self.0.clone())) as Box<dyn Signer>)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(spki_of(&self.0)))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

#[derive(Debug)]
struct NodeSigner(Arc<KeyPair>);

impl Signer for NodeSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TlsError> {
        Ok(self.0.sign_bytes(message).to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

fn bad_key(error: IdentityError) -> TlsError {
    tracing::debug!(%error, "peer key refused");
    TlsError::InvalidCertificate(CertificateError::BadEncoding)
}

/// Checks the TLS 1.3 handshake signature against the presented raw key. Only ed25519 is
/// offered, so nothing else is accepted.
fn verify_handshake(
    message: &[u8],
    key: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, TlsError> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(TlsError::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(key.as_ref()),
        dss,
        algorithms,
    )
}

/// The signature half every verifier here shares: TLS 1.3 only, ed25519 only, raw keys only.
macro_rules! raw_key_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, TlsError> {
            // Only TLS 1.3 is configured; a TLS 1.2 signature is never legitimate here.
            Err(TlsError::PeerIncompatible(
                rustls::PeerIncompatible::Tls13RequiredForQuic,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, TlsError> {
            verify_handshake(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }

        fn requires_raw_public_keys(&self) -> bool {
            true
        }
    };
}

/// A dialer's verifier: the server must prove the node it was dialled as.
#[derive(Debug)]
pub struct ExpectedNode {
    expected: NodeId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ExpectedNode {
    /// Accepts only a server proving `expected`.
    pub fn new(expected: NodeId) -> Self {
        ExpectedNode {
            expected,
            algorithms: algorithms(),
        }
    }
}

impl ServerCertVerifier for ExpectedNode {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        if !intermediates.is_empty() {
            return Err(bad_key(IdentityError::NotEd25519 {
                len: intermediates.len(),
            }));
        }
        let proven = node_id_from_spki(end_entity.as_ref()).map_err(bad_key)?;
        if proven != self.expected {
            let error = IdentityError::Unexpected {
                expected: self.expected.clone(),
                proven,
            };
            tracing::debug!(%error, "server refused");
            return Err(TlsError::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(error)),
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    raw_key_signatures!();
}

/// A listener's verifier: every dialer must prove some node key (mutual authentication); who
/// may do what is decided afterwards by the receiver's policy, from the proven id.
#[derive(Debug)]
pub struct AnyNode {
    algorithms: WebPkiSupportedAlgorithms,
}

impl Default for AnyNode {
    fn default() -> Self {
        AnyNode {
            algorithms: algorithms(),
        }
    }
}

impl ClientCertVerifier for AnyNode {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        if !intermediates.is_empty() {
            return Err(bad_key(IdentityError::NotEd25519 {
                len: intermediates.len(),
            }));
        }
        node_id_from_spki(end_entity.as_ref()).map_err(bad_key)?;
        Ok(ClientCertVerified::assertion())
    }

    raw_key_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trips_and_rejects_everything_else() {
        let key = KeyPair::from_seed(&[9; 32]);
        let spki = spki_of(&key);
        assert_eq!(spki.len(), 44);
        assert_eq!(node_id_from_spki(&spki).unwrap(), key.node_id());
        let mut longer = spki.clone();
        longer.push(0);
        assert_eq!(
            node_id_from_spki(&longer),
            Err(IdentityError::NotEd25519 { len: 45 })
        );
        let mut other_algorithm = spki.clone();
        other_algorithm[8] = 0x71; // id-Ed448
        assert!(matches!(
            node_id_from_spki(&other_algorithm),
            Err(IdentityError::NotEd25519 { .. })
        ));
    }

    #[test]
    fn weak_and_non_canonical_keys_are_refused() {
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&identity);
        assert_eq!(node_id_from_spki(&spki), Err(IdentityError::Weak));
        // y = p + 1 encodes the same point non-canonically (p = 2^255 - 19).
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&non_canonical);
        assert!(node_id_from_spki(&spki).is_err());
    }

    #[test]
    fn the_signer_signs_with_the_node_key() {
        let key = KeyPair::from_seed(&[4; 32]);
        let certified = certified_key(&key);
        let signer = certified
            .key
            .choose_scheme(&[
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ED25519,
            ])
            .unwrap();
        let signature = signer.sign(b"handshake").unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        key.verifying_key()
            .verify_strict(b"handshake", &signature)
            .unwrap();
        assert!(
            certified
                .key
                .choose_scheme(&[SignatureScheme::RSA_PSS_SHA256])
                .is_none()
        );
    }
}
