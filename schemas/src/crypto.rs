//! Canonical encoding and application-layer signatures.
//!
//! Every message that carries a decision is signed, so the record proves who said what
//! even after TLS is gone. The one canonical byte encoding for signed JSON messages is
//! RFC 8785 (JSON Canonicalization Scheme) of the payload, prefixed by a per-message
//! domain tag so a signature made for one message type can never verify as another:
//!
//! ```text
//! signed_bytes = "konbini-kofu/v1/" DOMAIN 0x00 JCS(payload)
//! ```
//!
//! Keys are Ed25519; a key is named by its kid, the first 8 bytes of SHA-256 of the
//! 32-byte public key.

use crate::b64::Base64Bytes;
use ed25519_dalek::Signer as _;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("payload cannot be canonicalised: {0}")]
    Canonical(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("signed by key {actual}, expected {expected}")]
    WrongKey { expected: Kid, actual: Kid },
    #[error("public key is not a valid Ed25519 point")]
    BadPublicKey,
    #[error("key material is malformed: {0}")]
    BadKeyMaterial(String),
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// RFC 8785 canonical JSON of `value`.
pub fn canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, SigningError> {
    serde_jcs::to_vec(value).map_err(|e| SigningError::Canonical(e.to_string()))
}

/// Digest binding a card to one request (the binding guard's card half):
/// `SHA-256("konbini-kofu/v1/card-binding" 0x00 request_id(16 bytes) card_serial)`.
///
/// Salting with the request id means the digest identifies the card only within this
/// request: it cannot be used to link two requests of the same resident.
pub fn card_binding_digest(request_id: &crate::RequestId, serial: &crate::CardSerial) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"konbini-kofu/v1/card-binding\0");
    hasher.update(request_id.as_bytes());
    hasher.update(serial.as_str().as_bytes());
    hasher.finalize().into()
}

/// Key id: the first 8 bytes of SHA-256 of the public key, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kid(pub [u8; 8]);

impl Kid {
    pub fn of(public_key: &PublicKey) -> Self {
        let digest = sha256(&public_key.0);
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&digest[..8]);
        Self(kid)
    }
}
impl TryFrom<String> for Kid {
    type Error = SigningError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bytes = hex::decode(&value).map_err(|e| SigningError::BadKeyMaterial(e.to_string()))?;
        let kid: [u8; 8] = bytes
            .try_into()
            .map_err(|_| SigningError::BadKeyMaterial("kid must be 8 bytes".into()))?;
        Ok(Self(kid))
    }
}
impl From<Kid> for String {
    fn from(value: Kid) -> String {
        hex::encode(value.0)
    }
}
impl std::fmt::Display for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl std::fmt::Debug for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kid({self})")
    }
}
impl JsonSchema for Kid {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Kid".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[0-9a-f]{16}$"})
    }
}

/// An Ed25519 public key (32 bytes, base64 on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Base64Bytes", into = "Base64Bytes")]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn kid(&self) -> Kid {
        Kid::of(self)
    }
    pub fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey, SigningError> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| SigningError::BadPublicKey)
    }
    /// Verifies `signature` over `message` (strict: rejects small-order and non-canonical points).
    pub fn verify(&self, message: &[u8], signature: &SignatureBytes) -> Result<(), SigningError> {
        let key = self.verifying_key()?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature)
            .map_err(|_| SigningError::BadSignature)
    }
}
impl TryFrom<Base64Bytes> for PublicKey {
    type Error = SigningError;
    fn try_from(value: Base64Bytes) -> Result<Self, Self::Error> {
        let bytes: [u8; 32] = value
            .0
            .try_into()
            .map_err(|_| SigningError::BadKeyMaterial("public key must be 32 bytes".into()))?;
        Ok(Self(bytes))
    }
}
impl From<PublicKey> for Base64Bytes {
    fn from(value: PublicKey) -> Self {
        Base64Bytes(value.0.to_vec())
    }
}
impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(kid {})", self.kid())
    }
}
impl JsonSchema for PublicKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PublicKey".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "contentEncoding": "base64", "description": "Ed25519 public key, 32 bytes"})
    }
}

/// An Ed25519 signature (64 bytes, base64 on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Base64Bytes", into = "Base64Bytes")]
pub struct SignatureBytes(pub [u8; 64]);

impl TryFrom<Base64Bytes> for SignatureBytes {
    type Error = SigningError;
    fn try_from(value: Base64Bytes) -> Result<Self, Self::Error> {
        let bytes: [u8; 64] = value
            .0
            .try_into()
            .map_err(|_| SigningError::BadKeyMaterial("signature must be 64 bytes".into()))?;
        Ok(Self(bytes))
    }
}
impl From<SignatureBytes> for Base64Bytes {
    fn from(value: SignatureBytes) -> Self {
        Base64Bytes(value.0.to_vec())
    }
}
impl std::fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureBytes({}…)", hex::encode(&self.0[..4]))
    }
}
impl JsonSchema for SignatureBytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Signature".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "contentEncoding": "base64", "description": "Ed25519 signature, 64 bytes"})
    }
}

/// An Ed25519 key pair. Stored on disk as the base64 of its 32-byte seed. Clone: a job
/// that signs on another task (the center's audit seal) takes its own copy.
#[derive(Clone)]
pub struct KeyPair {
    signing: ed25519_dalek::SigningKey,
}

impl KeyPair {
    pub fn generate() -> Self {
        Self {
            signing: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }
    /// Parses the on-disk form (base64 of the seed, surrounding white space ignored).
    pub fn from_seed_base64(text: &str) -> Result<Self, SigningError> {
        let bytes = Base64Bytes::decode(text.trim())
            .map_err(|e| SigningError::BadKeyMaterial(e.to_string()))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SigningError::BadKeyMaterial("seed must be 32 bytes".into()))?;
        Ok(Self::from_seed(seed))
    }
    pub fn seed_base64(&self) -> String {
        Base64Bytes::encode(&self.signing.to_bytes())
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }
    pub fn kid(&self) -> Kid {
        self.public().kid()
    }
    pub fn sign(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.signing.sign(message).to_bytes())
    }
    /// A 32-byte secret for `purpose`, derived from the seed and separated from every
    /// other purpose: `SHA-256("konbini-kofu/v1/derived/" purpose 0x00 seed)`. Lets a
    /// party that holds one key file (and its replicas) key a MAC without a second
    /// secret to distribute; the signing key itself is never used for two things.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"konbini-kofu/v1/derived/");
        hasher.update(purpose.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.signing.to_bytes());
        hasher.finalize().into()
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair(kid {})", self.kid())
    }
}

/// A message type that may be signed; its domain tag separates it from every other.
pub trait SignedMessage: Serialize + DeserializeOwned {
    const DOMAIN: &'static str;

    /// The exact bytes a signature covers.
    fn signed_bytes(&self) -> Result<Vec<u8>, SigningError> {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(b"konbini-kofu/v1/");
        bytes.extend_from_slice(Self::DOMAIN.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&canonical_bytes(self)?);
        Ok(bytes)
    }
}

/// A payload with the signature of the key named by `kid`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    pub payload: T,
    pub kid: Kid,
    pub signature: SignatureBytes,
}

impl<T: SignedMessage> Signed<T> {
    pub fn sign(payload: T, key: &KeyPair) -> Result<Self, SigningError> {
        let signature = key.sign(&payload.signed_bytes()?);
        Ok(Self {
            payload,
            kid: key.kid(),
            signature,
        })
    }

    /// Verifies against `key` and returns the payload only if the signature holds.
    pub fn verify(&self, key: &PublicKey) -> Result<&T, SigningError> {
        let expected = key.kid();
        if self.kid != expected {
            return Err(SigningError::WrongKey {
                expected,
                actual: self.kid,
            });
        }
        key.verify(&self.payload.signed_bytes()?, &self.signature)?;
        Ok(&self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Clone, Debug)]
    struct Note {
        b: u32,
        a: String,
    }
    impl SignedMessage for Note {
        const DOMAIN: &'static str = "test-note";
    }

    #[test]
    fn canonical_form_sorts_keys() {
        let bytes = canonical_bytes(&Note {
            b: 1,
            a: "あ".into(),
        })
        .unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), r#"{"a":"あ","b":1}"#);
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = KeyPair::generate();
        let other = KeyPair::generate();
        let signed = Signed::sign(
            Note {
                b: 7,
                a: "x".into(),
            },
            &key,
        )
        .unwrap();
        assert_eq!(signed.verify(&key.public()).unwrap().b, 7);
        assert!(matches!(
            signed.verify(&other.public()),
            Err(SigningError::WrongKey { .. })
        ));
        let mut tampered = signed.clone();
        tampered.payload.b = 8;
        assert!(matches!(
            tampered.verify(&key.public()),
            Err(SigningError::BadSignature)
        ));
        let json = serde_json::to_string(&signed).unwrap();
        let back: Signed<Note> = serde_json::from_str(&json).unwrap();
        assert!(back.verify(&key.public()).is_ok());
    }

    #[test]
    fn key_round_trips_through_seed() {
        let key = KeyPair::generate();
        let again = KeyPair::from_seed_base64(&key.seed_base64()).unwrap();
        assert_eq!(key.public(), again.public());
        assert_eq!(key.kid().to_string().len(), 16);
    }
}
