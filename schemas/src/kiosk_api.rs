//! kiosk ↔ center (the chain operator's dedicated line, mTLS with an operator
//! client certificate).
//!
//! ```text
//! POST /v1/challenges             ChallengeRequest  -> ChallengeResponse
//! POST /v1/card-sessions           CardSessionRequest -> CardSessionResponse | ErrorBody
//! POST /v1/issuances               IssuanceRequest   -> IssuanceResponse | ErrorBody
//! GET  /v1/municipalities          -> MunicipalityDirectory      (see crate::catalogue)
//! GET  /v1/menu?municipality=&route= -> Menu                     (see crate::catalogue)
//! POST /v1/domicile-registrations  DomicileRegistrationRequest -> DomicileRegistrationResponse
//! POST /v1/issuances/{id}/payment  PaymentReport -> OutcomeAck       (see crate::outcome)
//! POST /v1/issuances/{id}/print    PrintReport   -> OutcomeAck       (see crate::outcome)
//! ```
//!
//! The card proves the resident's PIN approval in one of two ways ([`CardProof`]):
//! - `signed`: the card signs this very order (challenge nonce and [`order_digest`]);
//!   the card stays in the reader until the order is sent (the one-call kiosk CLI);
//! - `session`: right after the PIN the card signs a card-session opening (challenge
//!   nonce and [`card_session_digest`]) and is returned at once, as at the real
//!   kiosks (DESIGN.md §1); the visit's orders then name the card session, which the
//!   center honours only for that kiosk, for a bounded time and a bounded number of
//!   orders, re-checking the card's validity and revocation at each order.
//!
//! Retries: a challenge is single use, so a kiosk that got no answer fetches a fresh
//! challenge, has the card sign again, and re-sends under the **same idempotency
//! key** with the same order. The center then answers the same request again (same
//! request id, same document); the same key with another order or card is
//! `idempotency_conflict`, and a retry while the first is still being processed is
//! `request_in_progress`.

use crate::b64::Base64Bytes;
use crate::card::CardCertificate;
use crate::certificate::{CertificateKind, Route};
use crate::crypto::{canonical_bytes, sha256, SignatureBytes, SigningError};
use crate::error::RefusalReason;
use crate::ids::{CardSessionId, IdempotencyKey, KioskId, MunicipalityCode, RequestId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A SHA-256 digest, lower-case hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha256(bytes))
    }
}
impl TryFrom<String> for Digest32 {
    type Error = SigningError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bytes = hex::decode(&value).map_err(|e| SigningError::BadKeyMaterial(e.to_string()))?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SigningError::BadKeyMaterial("digest must be 32 bytes".into()))?;
        Ok(Self(digest))
    }
}
impl From<Digest32> for String {
    fn from(value: Digest32) -> String {
        hex::encode(value.0)
    }
}
impl std::fmt::Display for Digest32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl std::fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest32({self})")
    }
}
impl JsonSchema for Digest32 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Digest32".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256, lower-case hex"})
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub kiosk_id: KioskId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeResponse {
    /// 32 bytes, opaque to the kiosk (the center reads its own); single use, until
    /// `expires_at_unix_s`.
    pub nonce: Base64Bytes,
    pub expires_at_unix_s: i64,
}

/// Upper bound on copies of one certificate in one request.
pub const MAX_COPIES: u8 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateOrder {
    pub route: Route,
    pub certificate: CertificateKind,
    /// 1..=MAX_COPIES.
    pub copies: u8,
}

impl CertificateOrder {
    /// Shape checks that need neither register nor catalogue (the catalogue narrows
    /// copies further per type).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_COPIES).contains(&self.copies) {
            return Err(format!(
                "copies must be 1..={MAX_COPIES}, got {}",
                self.copies
            ));
        }
        self.certificate.validate()
    }
}

/// The digest the card signs together with the nonce: it binds the card holder's PIN
/// approval to this kiosk, this idempotency key and exactly this order.
pub fn order_digest(
    kiosk_id: &KioskId,
    idempotency_key: &IdempotencyKey,
    order: &CertificateOrder,
) -> Result<Digest32, SigningError> {
    #[derive(Serialize)]
    struct OrderDigestInput<'a> {
        kiosk_id: &'a KioskId,
        idempotency_key: &'a IdempotencyKey,
        order: &'a CertificateOrder,
    }
    let bytes = canonical_bytes(&OrderDigestInput {
        kiosk_id,
        idempotency_key,
        order,
    })?;
    Ok(Digest32::of(&bytes))
}

/// Longest a card session lives (the center may configure it shorter): a visit at
/// the kiosk, not a login.
pub const MAX_CARD_SESSION_TTL_S: i64 = 900;
/// Most orders one card session may carry (a resident may print several types in one
/// visit).
pub const MAX_ORDERS_PER_CARD_SESSION: u8 = 10;

/// The digest the card signs together with the nonce to open a card session: it binds
/// the card holder's PIN approval to this kiosk and this visit (`visit_key`, the
/// kiosk's id for the visit, also the idempotency key of the opening). Its canonical
/// input differs in shape from [`order_digest`]'s, so neither can stand for the other.
pub fn card_session_digest(
    kiosk_id: &KioskId,
    visit_key: &IdempotencyKey,
) -> Result<Digest32, SigningError> {
    #[derive(Serialize)]
    struct CardSessionDigestInput<'a> {
        purpose: &'static str,
        kiosk_id: &'a KioskId,
        visit_key: &'a IdempotencyKey,
    }
    let bytes = canonical_bytes(&CardSessionDigestInput {
        purpose: "card-session",
        kiosk_id,
        visit_key,
    })?;
    Ok(Digest32::of(&bytes))
}

/// `POST /v1/card-sessions`: the card authenticates once, right after the PIN.
/// Re-sent under the same `visit_key` (with a fresh challenge) after a lost answer,
/// it is answered with the same session.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSessionRequest {
    pub kiosk_id: KioskId,
    pub visit_key: IdempotencyKey,
    /// The nonce from `POST /v1/challenges`.
    pub challenge_nonce: Base64Bytes,
    pub card_certificate: CardCertificate,
    /// The card's signature over [`crate::CardAuthMessage`] {nonce,
    /// [`card_session_digest`]}.
    pub card_signature: SignatureBytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSessionResponse {
    pub card_session_id: CardSessionId,
    /// The residence municipality in the card certificate (住所地).
    pub card_municipality: MunicipalityCode,
    /// Center clock; the session's orders must reach the center before it.
    pub expires_at_unix_s: i64,
    /// Orders the session may still carry.
    pub orders_left: u8,
}

/// The card signs this very order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedByCard {
    /// The nonce from `POST /v1/challenges`.
    pub challenge_nonce: Base64Bytes,
    pub card_certificate: CardCertificate,
    /// The card's signature over [`crate::CardAuthMessage`] {nonce, order digest}.
    pub card_signature: SignatureBytes,
}

/// The order rides on a card session opened at this kiosk.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSessionRef {
    pub card_session_id: CardSessionId,
}

/// How the card approves an order (see the module docs).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CardProof {
    Signed(Box<SignedByCard>),
    Session(CardSessionRef),
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuanceRequest {
    pub idempotency_key: IdempotencyKey,
    pub kiosk_id: KioskId,
    pub order: CertificateOrder,
    pub card: CardProof,
}

/// The composed two-sided document.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentPdf {
    pub pdf: Base64Bytes,
    pub sha256: Digest32,
    /// Pages in the PDF (front and back sides of every copy).
    pub page_count: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum IssuanceResponse {
    /// The document is composed and bound to `request_id`; the kiosk may print it
    /// after checking that every page carries this request id.
    Prepared {
        request_id: RequestId,
        municipality_code: MunicipalityCode,
        municipality_name: String,
        certificate_title: String,
        copies: u8,
        fee_yen_per_copy: u32,
        total_fee_yen: u32,
        document: DocumentPdf,
    },
    /// The municipality (or the center, for a document it cannot print) declined.
    Refused {
        request_id: RequestId,
        reason: RefusalReason,
        /// Always [`RefusalReason::RESIDENT_MESSAGE_JA`].
        message_ja: String,
        message_en: String,
    },
}

/// The key under which every page of a composed PDF carries its request id (a
/// custom entry in each page dictionary, besides the visible text).
pub const PDF_PAGE_REQUEST_ID_KEY: &str = "KofuRequestId";

/// The key under which a composed PDF's document catalog carries its front data: a
/// FlateDecode stream holding exactly `canonical_bytes(FrontSide)`, whose SHA-256 every
/// page's seal signs (`front_digest`). With it a verifier checks the front data
/// against the seal by machine; without it only by eye.
pub const PDF_FRONT_DATA_KEY: &str = "KofuFrontData";

/// `Server-Timing` response header of `POST /v1/issuances` (W3C Server Timing:
/// `name;dur=MILLISECONDS`, comma separated): where the center spent the request's
/// time, so a kiosk or a load generator can report latency per phase without access to
/// the center's metrics. Absent phases did not run (a refusal before the municipality
/// has no `municipality` or `compose` entry). Informational only: no decision may rest
/// on it.
pub const SERVER_TIMING_HEADER: &str = "server-timing";
/// Card authentication: the card certificate, revocation, signature and challenge, or
/// the card session and the card's re-check.
pub const SERVER_TIMING_CARD: &str = "card";
/// The municipality's hop: the signed fetch, the adapter's answer, the binding guard.
pub const SERVER_TIMING_MUNICIPALITY: &str = "municipality";
/// Printability checks and PDF composition.
pub const SERVER_TIMING_COMPOSE: &str = "compose";
/// The whole request inside the center, from the body parsed to the answer ready.
pub const SERVER_TIMING_CENTER: &str = "center";
