//! The resident card as the center sees it: its certificate (signed by the card
//! authority, JPKI-like), the authority's revocation list, and the message the card
//! signs after a correct PIN.

use crate::b64::Base64Bytes;
use crate::crypto::{PublicKey, Signed, SignedMessage};
use crate::ids::{CardSerial, MunicipalityCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the card authority certifies about one card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardCertificateBody {
    pub serial: CardSerial,
    /// 住所地: the residence municipality, used to route the request.
    pub municipality_code: MunicipalityCode,
    /// The card's own Ed25519 key; it signs only after the right PIN.
    pub public_key: PublicKey,
    pub not_before_unix_s: i64,
    pub not_after_unix_s: i64,
}

impl SignedMessage for CardCertificateBody {
    const DOMAIN: &'static str = "card-certificate";
}

/// A card certificate: the body signed by the card authority.
pub type CardCertificate = Signed<CardCertificateBody>;

/// The card authority's list of revoked cards (失効情報).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationListBody {
    pub issued_at_unix_s: i64,
    /// After this time the list is stale and the center refuses to rely on it.
    pub next_update_unix_s: i64,
    pub revoked: Vec<CardSerial>,
}

impl SignedMessage for RevocationListBody {
    const DOMAIN: &'static str = "card-revocation-list";
}

pub type RevocationList = Signed<RevocationListBody>;

/// What the card signs to answer a challenge: the center's single-use nonce and the
/// digest of the order it is asked to approve (see [`crate::order_digest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardAuthMessage {
    pub nonce: Base64Bytes,
    pub order_digest: crate::Digest32,
}

impl SignedMessage for CardAuthMessage {
    const DOMAIN: &'static str = "card-auth";
}

/// The personalisation file of a simulated resident card, as the card authority hands
/// it out in a sandbox. It holds the card's secrets (key seed and PIN) and its PIN
/// retry counter, so only the simulated card (kiosk-sim) ever reads it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardFile {
    /// Label for the kiosk UI's card picker (not the holder's name).
    pub label: String,
    pub certificate: CardCertificate,
    /// Base64 of the card key's 32-byte seed.
    pub key_seed: String,
    /// 4-digit PIN (暗証番号).
    pub pin: String,
    /// Wrong PINs left before the card locks (starts at 3).
    pub pin_attempts_left: u8,
}

/// Wrong PINs that lock a card.
pub const MAX_PIN_ATTEMPTS: u8 = 3;
