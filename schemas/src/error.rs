//! Stable error codes (transport and protocol failures) and refusal reasons (business
//! decisions). Both are part of the wire contract: never rename a variant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a request failed. Serialized in snake_case; stable across versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON for the endpoint, or a field fails validation.
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    /// The TLS client certificate does not carry the role this link requires.
    ClientNotAuthorized,
    /// The kiosk named in the request is not one of the calling operator's.
    KioskNotAuthorized,
    ChallengeUnknown,
    ChallengeExpired,
    /// The challenge was already used once (replay).
    ChallengeUsed,
    /// The card certificate is not signed by the card authority or is malformed.
    CardCertificateInvalid,
    CardExpired,
    CardNotYetValid,
    CardRevoked,
    /// The card's signature over the challenge and order does not verify.
    CardSignatureInvalid,
    /// The card session named by an order is unknown, expired, another kiosk's, or has
    /// no orders left: the resident places the card again.
    CardSessionInvalid,
    MunicipalityUnknown,
    /// The municipality's server could not be reached or answered with an error.
    MunicipalityUnavailable,
    /// The whole-request deadline passed before the municipality answered.
    UpstreamTimeout,
    /// The municipality's answer is not signed by one of its registered keys.
    UpstreamSignatureInvalid,
    /// The municipality's answer is not bound to this request and card (binding guard).
    BindingMismatch,
    /// Same idempotency key, different content.
    IdempotencyConflict,
    /// Same idempotency key and content while the first request is still being
    /// processed: retry shortly.
    RequestInProgress,
    /// The center's request to the municipality is not signed by the center.
    RequestSignatureInvalid,
    /// The municipality has already answered a different request under this request id.
    RequestIdReused,
    /// The center holds no valid signed catalogue for the municipality (unreachable,
    /// badly signed, stale or malformed).
    CatalogueUnavailable,
    /// The municipality's answer contradicts its own catalogue (fee, type).
    CatalogueMismatch,
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed,
    /// The client did not send its request body in time (the listener's body
    /// deadline); the connection is closed.
    RequestTimeout,
    /// A payment or print report contradicts what the center recorded (e.g. paid
    /// after the issuance was voided for a payment timeout).
    OutcomeConflict,
    /// A report out of order (print before payment, payment before `prepared`).
    IllegalTransition,
    /// Kiosk control interface: the step does not fit the kiosk's current screen.
    ControlStepNotAllowed,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        // Static so logs and metrics use the wire names without allocating; a test
        // keeps it equal to the serde name.
        match self {
            Self::BadRequest => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NotFound => "not_found",
            Self::ClientNotAuthorized => "client_not_authorized",
            Self::KioskNotAuthorized => "kiosk_not_authorized",
            Self::ChallengeUnknown => "challenge_unknown",
            Self::ChallengeExpired => "challenge_expired",
            Self::ChallengeUsed => "challenge_used",
            Self::CardCertificateInvalid => "card_certificate_invalid",
            Self::CardExpired => "card_expired",
            Self::CardNotYetValid => "card_not_yet_valid",
            Self::CardRevoked => "card_revoked",
            Self::CardSignatureInvalid => "card_signature_invalid",
            Self::CardSessionInvalid => "card_session_invalid",
            Self::MunicipalityUnknown => "municipality_unknown",
            Self::MunicipalityUnavailable => "municipality_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamSignatureInvalid => "upstream_signature_invalid",
            Self::BindingMismatch => "binding_mismatch",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::RequestInProgress => "request_in_progress",
            Self::RequestSignatureInvalid => "request_signature_invalid",
            Self::RequestIdReused => "request_id_reused",
            Self::CatalogueUnavailable => "catalogue_unavailable",
            Self::CatalogueMismatch => "catalogue_mismatch",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::OutcomeConflict => "outcome_conflict",
            Self::IllegalTransition => "illegal_transition",
            Self::ControlStepNotAllowed => "control_step_not_allowed",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every non-2xx answer on both links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For operators and logs; never shown to a resident, never carries personal data.
    pub message: String,
    /// The center's request id when one was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<crate::RequestId>,
}

/// Why a certificate is not issued. The kiosk shows every one of them as the same
/// generic screen (「市区町村の窓口でお尋ねください」); the code is for the operator's
/// log and the municipality's statistics and never reveals more than the class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No resident is bound to this card at the municipality.
    CardNotRegistered,
    /// A character in the record is missing from the certificate font.
    UnprintableCharacter,
    /// A field is longer than the certificate layout can print without truncation.
    FieldTooLong,
    /// 支援措置: DV / stalking support measures on the person or household.
    SupportMeasures,
    /// 転出 / 転出予定: moved out or moving out.
    MovedOut,
    /// 死亡: deceased.
    Deceased,
    /// 消除: the record was erased.
    ErasedRecord,
    /// 15歳未満: under 15.
    Under15,
    /// 印鑑登録なし: no active seal registration.
    NoSealRegistration,
    /// 課税記録なし: no tax record for the year.
    NoTaxRecord,
    /// 年度切替前: before the tax year's switch-over date.
    BeforeTaxSwitchover,
    /// 戸籍届出未処理: a family-register filing not yet entered.
    FamilyRegisterPending,
    /// 転入日当日: the day of moving in.
    MovingInDay,
    /// カード交付当日: the card was issued today.
    CardIssuedToday,
    /// 時間外: outside service hours.
    OutOfHours,
    /// 保守中: announced maintenance.
    Maintenance,
    /// The municipality does not offer this certificate type, option or route.
    TypeNotOffered,
    /// 本籍地 route without an approved 利用登録 for this card.
    DomicileNotRegistered,
    /// 戸籍 asked of the 住所地 while the 本籍 is kept elsewhere (use the 本籍地 route).
    DomicileElsewhere,
    /// 世帯一部: a chosen position is not a current member of the household.
    MemberSelectionInvalid,
}

impl RefusalReason {
    pub const ALL: [Self; 20] = [
        Self::CardNotRegistered,
        Self::UnprintableCharacter,
        Self::FieldTooLong,
        Self::SupportMeasures,
        Self::MovedOut,
        Self::Deceased,
        Self::ErasedRecord,
        Self::Under15,
        Self::NoSealRegistration,
        Self::NoTaxRecord,
        Self::BeforeTaxSwitchover,
        Self::FamilyRegisterPending,
        Self::MovingInDay,
        Self::CardIssuedToday,
        Self::OutOfHours,
        Self::Maintenance,
        Self::TypeNotOffered,
        Self::DomicileNotRegistered,
        Self::DomicileElsewhere,
        Self::MemberSelectionInvalid,
    ];

    /// The wire name (for logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardNotRegistered => "card_not_registered",
            Self::UnprintableCharacter => "unprintable_character",
            Self::FieldTooLong => "field_too_long",
            Self::SupportMeasures => "support_measures",
            Self::MovedOut => "moved_out",
            Self::Deceased => "deceased",
            Self::ErasedRecord => "erased_record",
            Self::Under15 => "under15",
            Self::NoSealRegistration => "no_seal_registration",
            Self::NoTaxRecord => "no_tax_record",
            Self::BeforeTaxSwitchover => "before_tax_switchover",
            Self::FamilyRegisterPending => "family_register_pending",
            Self::MovingInDay => "moving_in_day",
            Self::CardIssuedToday => "card_issued_today",
            Self::OutOfHours => "out_of_hours",
            Self::Maintenance => "maintenance",
            Self::TypeNotOffered => "type_not_offered",
            Self::DomicileNotRegistered => "domicile_not_registered",
            Self::DomicileElsewhere => "domicile_elsewhere",
            Self::MemberSelectionInvalid => "member_selection_invalid",
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RefusalReason {
    /// The only text a resident ever sees for a refusal (Japanese, English).
    pub const RESIDENT_MESSAGE_JA: &'static str =
        "この証明書はここでは発行できません。お手数ですが、市区町村の窓口でお尋ねください。";
    pub const RESIDENT_MESSAGE_EN: &'static str =
        "This certificate cannot be issued here. Please ask at your municipal office counter.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_name() {
        use ErrorCode::*;
        for code in [
            BadRequest,
            PayloadTooLarge,
            UnsupportedMediaType,
            NotFound,
            ClientNotAuthorized,
            KioskNotAuthorized,
            ChallengeUnknown,
            ChallengeExpired,
            ChallengeUsed,
            CardCertificateInvalid,
            CardExpired,
            CardNotYetValid,
            CardRevoked,
            CardSignatureInvalid,
            CardSessionInvalid,
            MunicipalityUnknown,
            MunicipalityUnavailable,
            UpstreamTimeout,
            UpstreamSignatureInvalid,
            BindingMismatch,
            IdempotencyConflict,
            RequestInProgress,
            RequestSignatureInvalid,
            RequestIdReused,
            CatalogueUnavailable,
            CatalogueMismatch,
            MethodNotAllowed,
            RequestTimeout,
            OutcomeConflict,
            IllegalTransition,
            ControlStepNotAllowed,
            Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn refusal_as_str_is_the_wire_name() {
        for reason in RefusalReason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            let back: RefusalReason = serde_json::from_value(reason.as_str().into()).unwrap();
            assert_eq!(back, reason);
        }
    }
}
