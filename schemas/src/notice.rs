//! Outcome notices, center → municipality: after the kiosk confirmed a print, the
//! center tells the issuing municipality so its issuance record (交付記録) lists exactly
//! the certificates that were printed, each once.
//!
//! ```text
//! POST /v1/issuance-notices   Signed<IssuanceNotice> -> IssuanceNoticeAck | ErrorBody
//! ```
//!
//! Delivery is at-least-once: the center writes the notice into a transactional outbox
//! in the same database transaction that records the print, and re-sends it with
//! back-off until the adapter acknowledges. The adapter therefore makes a notice
//! idempotent by its request id:
//! - the first notice for a request id is recorded (`recorded = true`);
//! - the same notice again is acknowledged without a second record (`recorded = false`);
//! - a different notice under a recorded request id is `request_id_reused` (409);
//! - a notice for a request id the adapter never answered in that municipality is
//!   `not_found` (404); one for a request the adapter refused, or whose card digest,
//!   municipality or certificate type differs from the adapter's own signed answer, is
//!   `binding_mismatch` (409) and logged as an alert;
//! - malformed fields (copies outside the catalogue bound, zero pages) are
//!   `bad_request` (400);
//! - a notice not signed by the center is `request_signature_invalid` (401).
//!
//! Only ids, digests, amounts and times travel: the municipality already holds the
//! resident's data under the request id.

use crate::certificate::CertificateType;
use crate::crypto::{Signed, SignedMessage};
use crate::ids::{KioskId, MunicipalityCode, OperatorId, RequestId};
use crate::kiosk_api::Digest32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One printed certificate, as the center recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuanceNotice {
    /// The center's request id (the key of the municipality's stored answer).
    pub request_id: RequestId,
    pub municipality_code: MunicipalityCode,
    /// The card digest of the request (binding guard), as in the fetch and the answer.
    pub card_digest: Digest32,
    pub certificate_type: CertificateType,
    pub copies: u32,
    /// Pages of one copy.
    pub page_count: u32,
    /// Integer yen the resident paid for all copies.
    pub total_fee_yen: u32,
    /// SHA-256 of the composed PDF the kiosk printed.
    pub document_sha256: Digest32,
    /// The chain operator and terminal that printed it.
    pub operator_id: OperatorId,
    pub kiosk_id: KioskId,
    /// When the center recorded the print (`ok` report), Unix milliseconds.
    pub printed_at_unix_ms: i64,
}

impl SignedMessage for IssuanceNotice {
    const DOMAIN: &'static str = "issuance-notice";
}

pub type SignedIssuanceNotice = Signed<IssuanceNotice>;

/// The adapter's answer to a notice it accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuanceNoticeAck {
    pub request_id: RequestId,
    /// `true` when this notice created the record, `false` when it was already there.
    pub recorded: bool,
}
