//! center ↔ municipal-adapter (the LGWAN-like closed link, mTLS with the center's
//! client certificate). Both directions are signed at the application layer.
//!
//! ```text
//! POST /v1/certificates           Signed<CertificateFetch> -> Signed<CertificateAnswer> | ErrorBody
//! POST /v1/catalogue              Signed<CatalogueRequest> -> Signed<Catalogue>   (crate::catalogue)
//! POST /v1/domicile-registrations Signed<DomicileRegistrationSubmit> -> Signed<DomicileRegistrationReceipt>
//! POST /v1/issuance-notices      Signed<IssuanceNotice> -> IssuanceNoticeAck   (crate::notice)
//! GET  /v1/info                   -> AdapterInfo
//! ```
//!
//! The adapter evaluates every date rule (交付日, 15歳未満, 転入日当日, カード交付当日,
//! 年度切替) against the fetch's `requested_at_unix_s` in Asia/Tokyo, so the center's
//! clock is the one clock of a request.

use crate::crypto::{Signed, SignedMessage};
use crate::error::RefusalReason;
use crate::front::FrontSide;
use crate::ids::{CardSerial, MunicipalityCode, RequestId};
use crate::kiosk_api::{CertificateOrder, Digest32};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The center asks one municipality for one certificate. The request id is the
/// idempotency key: the same id always gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateFetch {
    pub request_id: RequestId,
    pub municipality_code: MunicipalityCode,
    /// Looked up in the municipality's card-serial → resident bindings.
    pub card_serial: CardSerial,
    /// [`crate::card_binding_digest`] of the request id and card serial; must come back
    /// unchanged inside the signed answer (binding guard).
    pub card_digest: Digest32,
    pub order: CertificateOrder,
    pub requested_at_unix_s: i64,
    /// The whole request is abandoned at this instant; the adapter need not answer later.
    pub deadline_unix_ms: i64,
}

impl SignedMessage for CertificateFetch {
    const DOMAIN: &'static str = "certificate-fetch";
}

/// The municipality's answer, signed with its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateAnswer {
    /// Echo of the request id (binding guard).
    pub request_id: RequestId,
    pub municipality_code: MunicipalityCode,
    /// Echo of the card digest, recomputed by the municipality from the serial it
    /// actually looked up (binding guard).
    pub card_digest: Digest32,
    pub answered_at_unix_s: i64,
    pub outcome: AnswerOutcome,
}

impl SignedMessage for CertificateAnswer {
    const DOMAIN: &'static str = "certificate-answer";
}

// One answer per request: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerOutcome {
    Issued {
        fee_yen_per_copy: u32,
        /// おもて面: the certificate content in the municipality's layout.
        front: FrontSide,
        /// うら面: one signed seal (QR text, see [`crate::seal`]) per front page
        /// ([`FrontSide::page_count`]).
        seals: Vec<String>,
    },
    Refused {
        reason: RefusalReason,
    },
}

/// What an adapter says about itself (for operators' dashboards and the conformance suite).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdapterInfo {
    pub software: String,
    pub version: String,
    pub municipalities: Vec<MunicipalityCode>,
}

pub type SignedCertificateFetch = Signed<CertificateFetch>;
pub type SignedCertificateAnswer = Signed<CertificateAnswer>;
