//! Challenges (チャレンジ, the center's single-use nonce that a card signs to prove it is
//! in the reader now): stateless until used.
//!
//! A nonce is 32 bytes, opaque to the kiosk: its expiry (8 bytes, big-endian unix ms),
//! 8 random bytes, and a 16-byte HMAC-SHA-256 tag over both and the operator and kiosk
//! it was issued to, keyed with a secret derived from the center key (which every
//! replica holds). Issuing one therefore writes nothing; the database learns of a
//! challenge only when it is used, as a row in `challenges` whose primary key is the
//! nonce, inserted in the same transaction as what it authorizes (a card session, an
//! issuance's `authorized` record) or on its own (a 利用登録, a replay). Single use
//! is that primary key: of two uses on any replicas, exactly one inserts it.
//!
//! Invariant: a used nonce's row outlives the nonce's validity (the sweep keeps rows
//! `lifecycle::CHALLENGE_RETENTION_MS`, far longer than the longest allowed TTL), so a
//! deleted row can never let a nonce be used twice.

use hmac::{Hmac, Mac};
use rand::RngCore as _;
use schemas::{KeyPair, KioskId, OperatorId};

type HmacSha256 = Hmac<sha2::Sha256>;

/// Bytes in a nonce (the contract in `schemas::ChallengeResponse`).
pub const NONCE_BYTES: usize = 32;
const EXPIRY_BYTES: usize = 8;
const RANDOM_BYTES: usize = 8;
const TAG_BYTES: usize = 16;
const _: () = assert!(EXPIRY_BYTES + RANDOM_BYTES + TAG_BYTES == NONCE_BYTES);

/// Why a presented nonce cannot authorize anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeRejection {
    /// Not minted by this center for this operator and kiosk (or malformed).
    Unknown,
    /// Minted here, but its validity has passed.
    Expired,
    /// Already used once.
    Used,
}

/// A nonce minted by this center for the kiosk presenting it, not yet known to be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedChallenge {
    /// Lower-case hex of the nonce: the `challenges` primary key once used.
    pub nonce_hex: String,
    pub expires_at_unix_ms: i64,
}

/// The center's challenge key: mints nonces and recognises its own.
pub struct ChallengeKey {
    mac_key: [u8; 32],
}

impl std::fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeKey(..)")
    }
}

impl ChallengeKey {
    /// Derived from the center key, so every replica recognises every replica's nonces.
    pub fn derive(center_key: &KeyPair) -> Self {
        Self {
            mac_key: center_key.derive_secret("center-challenge-mac"),
        }
    }

    /// A fresh nonce for `kiosk` of `operator`, valid until `expires_at_unix_ms`.
    pub fn mint(
        &self,
        operator: &OperatorId,
        kiosk: &KioskId,
        expires_at_unix_ms: i64,
    ) -> [u8; NONCE_BYTES] {
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[..EXPIRY_BYTES].copy_from_slice(&expires_at_unix_ms.to_be_bytes());
        rand::rngs::OsRng.fill_bytes(&mut nonce[EXPIRY_BYTES..EXPIRY_BYTES + RANDOM_BYTES]);
        let tag = self
            .mac(operator, kiosk, &nonce[..EXPIRY_BYTES + RANDOM_BYTES])
            .finalize()
            .into_bytes();
        nonce[EXPIRY_BYTES + RANDOM_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
        nonce
    }

    /// Recognises a nonce this center minted for `kiosk` of `operator` and reads its
    /// expiry; says nothing about use or whether it has expired (the caller decides,
    /// after looking for its use, so a used nonce is reported used).
    pub fn open(
        &self,
        operator: &OperatorId,
        kiosk: &KioskId,
        nonce: &[u8],
    ) -> Result<OpenedChallenge, ChallengeRejection> {
        if nonce.len() != NONCE_BYTES {
            return Err(ChallengeRejection::Unknown);
        }
        let (body, tag) = nonce.split_at(EXPIRY_BYTES + RANDOM_BYTES);
        self.mac(operator, kiosk, body)
            .verify_truncated_left(tag)
            .map_err(|_| ChallengeRejection::Unknown)?;
        let mut expiry = [0u8; EXPIRY_BYTES];
        expiry.copy_from_slice(&body[..EXPIRY_BYTES]);
        Ok(OpenedChallenge {
            nonce_hex: hex::encode(nonce),
            expires_at_unix_ms: i64::from_be_bytes(expiry),
        })
    }

    fn mac(&self, operator: &OperatorId, kiosk: &KioskId, body: &[u8]) -> HmacSha256 {
        // HMAC accepts a key of any length; a 32-byte one cannot fail.
        let mut mac =
            HmacSha256::new_from_slice(&self.mac_key).expect("HMAC takes a key of any length");
        // Length-prefixed, so no two (operator, kiosk) pairs share an input.
        for part in [operator.as_str(), kiosk.as_str()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(body);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(operator: &str, kiosk: &str) -> (OperatorId, KioskId) {
        (operator.parse().unwrap(), kiosk.parse().unwrap())
    }

    #[test]
    fn a_minted_nonce_opens_only_for_its_kiosk_and_key() {
        let key = ChallengeKey::derive(&KeyPair::from_seed([7; 32]));
        let (seven, kiosk) = ids("seven", "seven-0001");
        let nonce = key.mint(&seven, &kiosk, 1_700_000_123_456);
        let opened = key.open(&seven, &kiosk, &nonce).unwrap();
        assert_eq!(opened.expires_at_unix_ms, 1_700_000_123_456);
        assert_eq!(opened.nonce_hex, hex::encode(nonce));

        let (_, other_kiosk) = ids("seven", "seven-0002");
        assert_eq!(
            key.open(&seven, &other_kiosk, &nonce),
            Err(ChallengeRejection::Unknown)
        );
        let (lawson, same_name) = ids("lawson", "seven-0001");
        assert_eq!(
            key.open(&lawson, &same_name, &nonce),
            Err(ChallengeRejection::Unknown)
        );
        let other_center = ChallengeKey::derive(&KeyPair::from_seed([8; 32]));
        assert_eq!(
            other_center.open(&seven, &kiosk, &nonce),
            Err(ChallengeRejection::Unknown)
        );
    }

    #[test]
    fn any_changed_byte_or_length_is_unknown() {
        let key = ChallengeKey::derive(&KeyPair::from_seed([7; 32]));
        let (seven, kiosk) = ids("seven", "seven-0001");
        let nonce = key.mint(&seven, &kiosk, 1_700_000_000_000);
        for index in 0..NONCE_BYTES {
            let mut changed = nonce;
            changed[index] ^= 1;
            assert_eq!(
                key.open(&seven, &kiosk, &changed),
                Err(ChallengeRejection::Unknown),
                "byte {index}"
            );
        }
        assert_eq!(
            key.open(&seven, &kiosk, &nonce[..NONCE_BYTES - 1]),
            Err(ChallengeRejection::Unknown)
        );
        let mut longer = nonce.to_vec();
        longer.push(0);
        assert_eq!(
            key.open(&seven, &kiosk, &longer),
            Err(ChallengeRejection::Unknown)
        );
    }

    #[test]
    fn two_nonces_for_the_same_kiosk_and_expiry_differ() {
        let key = ChallengeKey::derive(&KeyPair::from_seed([7; 32]));
        let (seven, kiosk) = ids("seven", "seven-0001");
        let first = key.mint(&seven, &kiosk, 1_700_000_000_000);
        let second = key.mint(&seven, &kiosk, 1_700_000_000_000);
        assert_ne!(first, second);
    }
}
