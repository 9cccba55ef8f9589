//! 本籍地 利用登録: a resident whose 本籍 (family register) is kept by another
//! municipality registers their card there once, from a kiosk; the 本籍地 municipality
//! checks the entry against its 戸籍 and approves it (days later in the real service,
//! through the adapter's CLI or admin API here). Until it is approved, 戸籍 orders
//! through [`crate::Route::Domicile`] are refused `domicile_not_registered`.
//!
//! ```text
//! kiosk  → center   POST /v1/domicile-registrations  DomicileRegistrationRequest -> DomicileRegistrationResponse
//! center → adapter  POST /v1/domicile-registrations  Signed<DomicileRegistrationSubmit> -> Signed<DomicileRegistrationReceipt>
//! ```
//!
//! The card approves the registration with its PIN exactly as it approves an order: it
//! signs [`crate::CardAuthMessage`] over the challenge nonce and
//! [`registration_digest`]. The center keeps ids, digests and states only; the
//! entered 本籍 and 筆頭者 go to the 本籍地 and nowhere else.

use crate::b64::Base64Bytes;
use crate::card::CardCertificate;
use crate::crypto::{canonical_bytes, SignatureBytes, Signed, SignedMessage, SigningError};
use crate::ids::{CardSerial, IdempotencyKey, KioskId, MunicipalityCode, RequestId};
use crate::kiosk_api::Digest32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest 本籍 / 筆頭者 a resident may enter, in characters.
pub const MAX_DOMICILE_CHARS: usize = 100;
pub const MAX_HEAD_NAME_CHARS: usize = 40;

/// What the resident enters at the kiosk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomicileRegistration {
    /// The 本籍地 municipality.
    pub municipality_code: MunicipalityCode,
    /// 本籍 as entered, e.g. 岐阜県加茂郡坂祝町取組46番地.
    pub domicile: String,
    /// 筆頭者の氏名 as entered.
    pub domicile_head: String,
}

impl DomicileRegistration {
    pub fn validate(&self) -> Result<(), String> {
        let domicile = self.domicile.trim();
        let head = self.domicile_head.trim();
        if domicile.is_empty() || domicile.chars().count() > MAX_DOMICILE_CHARS {
            return Err(format!("本籍 must be 1..={MAX_DOMICILE_CHARS} characters"));
        }
        if head.is_empty() || head.chars().count() > MAX_HEAD_NAME_CHARS {
            return Err(format!(
                "筆頭者 must be 1..={MAX_HEAD_NAME_CHARS} characters"
            ));
        }
        if self
            .domicile
            .chars()
            .chain(self.domicile_head.chars())
            .any(char::is_control)
        {
            return Err("control characters are not allowed".into());
        }
        Ok(())
    }
}

/// The digest the card signs with the nonce to approve a registration (the
/// registration's counterpart of [`crate::order_digest`]).
pub fn registration_digest(
    kiosk_id: &KioskId,
    idempotency_key: &IdempotencyKey,
    registration: &DomicileRegistration,
) -> Result<Digest32, SigningError> {
    #[derive(Serialize)]
    struct RegistrationDigestInput<'a> {
        purpose: &'static str,
        kiosk_id: &'a KioskId,
        idempotency_key: &'a IdempotencyKey,
        registration: &'a DomicileRegistration,
    }
    let bytes = canonical_bytes(&RegistrationDigestInput {
        purpose: "domicile-registration",
        kiosk_id,
        idempotency_key,
        registration,
    })?;
    Ok(Digest32::of(&bytes))
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomicileRegistrationRequest {
    pub idempotency_key: IdempotencyKey,
    pub kiosk_id: KioskId,
    pub registration: DomicileRegistration,
    pub challenge_nonce: Base64Bytes,
    pub card_certificate: CardCertificate,
    /// Over [`crate::CardAuthMessage`] {nonce, [`registration_digest`]}.
    pub card_signature: SignatureBytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomicileRegistrationStatus {
    /// 受付済み: waiting for the 本籍地 to check it.
    Pending,
    /// 承認: 戸籍 certificates may now be ordered through the 本籍地 route.
    Approved,
    /// 不承認: the entry did not match; the resident is asked to come to the counter.
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomicileRegistrationResponse {
    pub registration_id: RequestId,
    pub municipality_code: MunicipalityCode,
    pub municipality_name: String,
    pub status: DomicileRegistrationStatus,
    /// For the kiosk screen (e.g. 「受け付けました。承認までお待ちください。」).
    pub message_ja: String,
    pub message_en: String,
}

/// The center forwards a registration to the 本籍地.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomicileRegistrationSubmit {
    /// Also the idempotency key towards the municipality.
    pub registration_id: RequestId,
    pub municipality_code: MunicipalityCode,
    pub card_serial: CardSerial,
    /// [`crate::card_binding_digest`] of the registration id and serial; echoed back.
    pub card_digest: Digest32,
    /// 住所地 from the card certificate.
    pub residence_municipality_code: MunicipalityCode,
    pub domicile: String,
    pub domicile_head: String,
    pub submitted_at_unix_s: i64,
}

impl SignedMessage for DomicileRegistrationSubmit {
    const DOMAIN: &'static str = "domicile-registration-submit";
}

/// The 本籍地's receipt, signed with its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomicileRegistrationReceipt {
    pub registration_id: RequestId,
    pub municipality_code: MunicipalityCode,
    pub card_digest: Digest32,
    /// `pending` for a new registration; the current status when this card is already
    /// registered (a second registration of an approved card stays approved).
    pub status: DomicileRegistrationStatus,
    pub answered_at_unix_s: i64,
}

impl SignedMessage for DomicileRegistrationReceipt {
    const DOMAIN: &'static str = "domicile-registration-receipt";
}

pub type SignedDomicileRegistrationSubmit = Signed<DomicileRegistrationSubmit>;
pub type SignedDomicileRegistrationReceipt = Signed<DomicileRegistrationReceipt>;
