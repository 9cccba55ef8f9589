//! center ↔ municipal-adapter (the LGWAN-like closed link, mTLS with the center's
//! client certificate). Both directions are signed at the application layer.
//!
//! ```text
//! POST /v1/certificates   Signed<CertificateFetch> -> Signed<CertificateAnswer> | ErrorBody
//! GET  /v1/info           -> AdapterInfo
//! ```

use crate::crypto::{Signed, SignedMessage};
use crate::error::RefusalReason;
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
        /// うら面: one signed seal (QR text, see [`crate::seal`]) per front page.
        seals: Vec<String>,
    },
    Refused {
        reason: RefusalReason,
    },
}

/// Front-side data (おもて面), one variant per certificate type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrontSide {
    ResidentRecord(ResidentRecordFront),
}

impl FrontSide {
    /// SHA-256 of the canonical front data; the seal carries it.
    pub fn digest(&self) -> Result<Digest32, crate::SigningError> {
        Ok(Digest32::of(&crate::canonical_bytes(self)?))
    }

    /// Every string that will be printed, for the font check before composing.
    pub fn printed_texts(&self) -> Vec<&str> {
        match self {
            Self::ResidentRecord(front) => front.printed_texts(),
        }
    }
}

/// Household members printed on one front page of 住民票の写し; a longer household
/// paginates, and the municipality signs one seal per front page.
pub const RESIDENT_ROWS_PER_PAGE: usize = 6;

/// 住民票の写し, front side. Strings are display-ready (dates already in 和暦).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentRecordFront {
    /// 「住民票の写し」.
    pub title: String,
    /// 市区町村名, e.g. 美濃加茂市.
    pub municipality_name: String,
    /// 住所.
    pub address: String,
    /// 世帯主 (printed only when relationships were asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_head: Option<String>,
    /// One row per printed member.
    pub members: Vec<ResidentRow>,
    /// 認証文, e.g. 「この写しは、世帯全員の住民票の原本と相違ないことを証明する。」
    pub certification: String,
    /// 交付日 in 和暦, e.g. 令和8年11月23日.
    pub issue_date_wareki: String,
    /// 市区町村長の職名, e.g. 美濃加茂市長.
    pub mayor_title: String,
    /// 市区町村長の氏名.
    pub mayor_name: String,
}

impl ResidentRecordFront {
    pub fn printed_texts(&self) -> Vec<&str> {
        let mut texts = vec![
            self.title.as_str(),
            self.municipality_name.as_str(),
            self.address.as_str(),
            self.certification.as_str(),
            self.issue_date_wareki.as_str(),
            self.mayor_title.as_str(),
            self.mayor_name.as_str(),
        ];
        texts.extend(self.household_head.as_deref());
        for row in &self.members {
            texts.extend([
                row.name.as_str(),
                row.name_kana.as_str(),
                row.birth_date_wareki.as_str(),
                row.sex.as_str(),
                row.became_resident_on_wareki.as_str(),
            ]);
            texts.extend(row.relationship.as_deref());
            texts.extend(row.domicile.as_deref());
            texts.extend(row.domicile_head.as_deref());
            texts.extend(row.previous_address.as_deref());
            texts.extend(row.remarks.iter().map(String::as_str));
        }
        texts
    }
}

/// One member of the household as printed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentRow {
    /// 氏名.
    pub name: String,
    /// ふりがな.
    pub name_kana: String,
    /// 生年月日 in 和暦.
    pub birth_date_wareki: String,
    /// 性別: 男 / 女.
    pub sex: String,
    /// 続柄 (when asked for), e.g. 世帯主, 妻, 子.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// 住民となった年月日 in 和暦.
    pub became_resident_on_wareki: String,
    /// 前住所.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
    /// 本籍 (when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile: Option<String>,
    /// 筆頭者 (when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile_head: Option<String>,
    /// 備考.
    #[serde(default)]
    pub remarks: Vec<String>,
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
