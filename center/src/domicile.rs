//! 本籍地 利用登録 at the center: authenticate the card exactly as for an issuance,
//! forward the registration to the 本籍地 municipality, accept only its signed receipt
//! bound to this registration and card, and answer the kiosk. The center stores ids,
//! digests, status and times; the entered 本籍 and 筆頭者 pass through to the 本籍地
//! and are never stored or logged here.

use std::collections::HashMap;
use std::time::Duration;

use schemas::{
    card_binding_digest, registration_digest, Digest32, DomicileRegistrationReceipt,
    DomicileRegistrationRequest, DomicileRegistrationResponse, DomicileRegistrationStatus,
    DomicileRegistrationSubmit, ErrorCode, Kid, MunicipalityCode, OperatorId, PublicKey, RequestId,
    Signed, SignedDomicileRegistrationReceipt,
};

use crate::adapter_client::UpstreamError;
use crate::card_auth::{authenticate, check_kiosk, CardPresentation};
use crate::db::{self, DomicileRegistrationRow};
use crate::error::ApiError;
use crate::startup::AppState;

/// Stored status before the 本籍地 has answered.
const SUBMITTED: &str = "submitted";

pub fn status_str(status: DomicileRegistrationStatus) -> &'static str {
    match status {
        DomicileRegistrationStatus::Pending => "pending",
        DomicileRegistrationStatus::Approved => "approved",
        DomicileRegistrationStatus::Rejected => "rejected",
    }
}

/// The kiosk's text for a status (Japanese, English).
pub fn status_messages(status: DomicileRegistrationStatus) -> (&'static str, &'static str) {
    match status {
        DomicileRegistrationStatus::Pending => (
            "利用登録を受け付けました。本籍地の市区町村が確認した後に、戸籍証明書を請求できるようになります。",
            "Your registration has been received. You can request family register certificates once your domicile municipality has confirmed it.",
        ),
        DomicileRegistrationStatus::Approved => (
            "利用登録は承認されています。本籍地の戸籍証明書を請求できます。",
            "Your registration is approved. You can request family register certificates from your domicile municipality.",
        ),
        DomicileRegistrationStatus::Rejected => (
            "利用登録を承認できませんでした。お手数ですが、本籍地の市区町村の窓口でお尋ねください。",
            "Your registration could not be approved. Please ask at the counter of your domicile municipality.",
        ),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("receipt is not signed by a key registered for the municipality: {0}")]
    Signature(String),
    #[error("receipt is not bound to this registration: {0}")]
    Mismatch(String),
}

/// Checks the 本籍地's receipt: signed by one of its keys, naming this registration,
/// this municipality and this card.
pub fn check_receipt(
    receipt: &SignedDomicileRegistrationReceipt,
    keys: &HashMap<Kid, PublicKey>,
    registration_id: RequestId,
    municipality: MunicipalityCode,
    card_digest: Digest32,
) -> Result<DomicileRegistrationStatus, ReceiptError> {
    let key = keys
        .get(&receipt.kid)
        .ok_or_else(|| ReceiptError::Signature(format!("unknown kid {}", receipt.kid)))?;
    let DomicileRegistrationReceipt {
        registration_id: answered_id,
        municipality_code,
        card_digest: answered_digest,
        status,
        ..
    } = receipt
        .verify(key)
        .map_err(|e| ReceiptError::Signature(e.to_string()))?;
    if *answered_id != registration_id {
        return Err(ReceiptError::Mismatch(format!(
            "receipt is for registration {answered_id}"
        )));
    }
    if *municipality_code != municipality {
        return Err(ReceiptError::Mismatch(format!(
            "receipt is from municipality {municipality_code}"
        )));
    }
    if *answered_digest != card_digest {
        return Err(ReceiptError::Mismatch("card digest differs".into()));
    }
    Ok(*status)
}

pub async fn register(
    state: &AppState,
    operator: &OperatorId,
    request: DomicileRegistrationRequest,
) -> Result<DomicileRegistrationResponse, ApiError> {
    let now_ms = state.clock.now_unix_ms();
    check_kiosk(state, operator, &request.kiosk_id)?;
    request
        .registration
        .validate()
        .map_err(|m| ApiError::new(ErrorCode::BadRequest, m))?;

    // Card: as for an issuance, the certificate, then its signature over the nonce and
    // this registration, then the single-use nonce.
    let digest = registration_digest(
        &request.kiosk_id,
        &request.idempotency_key,
        &request.registration,
    )
    .map_err(ApiError::internal)?;
    let card = authenticate(
        state,
        operator,
        &request.kiosk_id,
        CardPresentation {
            certificate: &request.card_certificate,
            nonce: request.challenge_nonce.as_slice(),
            signature: &request.card_signature,
        },
        digest,
        now_ms,
    )
    .await?;

    let code = request.registration.municipality_code;
    let municipality = state.directory.municipality(&code).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MunicipalityUnknown,
            format!("municipality {code} is not connected"),
        )
    })?;

    let registration_id =
        register_or_find(state, operator, &request, digest, card, code, now_ms).await?;
    let card_digest = Digest32(card_binding_digest(&registration_id, &card.serial));
    let submit = Signed::sign(
        DomicileRegistrationSubmit {
            registration_id,
            municipality_code: code,
            card_serial: card.serial.clone(),
            card_digest,
            residence_municipality_code: card.municipality_code,
            domicile: request.registration.domicile.clone(),
            domicile_head: request.registration.domicile_head.clone(),
            submitted_at_unix_s: now_ms.div_euclid(1000),
        },
        &state.center_key,
    )
    .map_err(ApiError::internal)?;

    let receipt = state
        .adapters
        .submit_domicile_registration(
            &municipality.adapter_url,
            &submit,
            Duration::from_millis(state.timeouts.adapter_timeout_ms),
        )
        .await
        .map_err(|error| {
            tracing::warn!(%registration_id, municipality = %code, %error, "registration not forwarded");
            match error {
                UpstreamError::Timeout => ApiError::new(
                    ErrorCode::UpstreamTimeout,
                    "the municipality did not answer in time",
                ),
                _ => ApiError::new(
                    ErrorCode::MunicipalityUnavailable,
                    "the municipality cannot be reached",
                ),
            }
            .with_request(registration_id)
        })?;
    let status = check_receipt(
        &receipt,
        &municipality.keys_usable_at(state.clock.now_unix_s()),
        registration_id,
        code,
        card_digest,
    )
    .map_err(|error| {
        tracing::error!(
            target: "alert",
            %registration_id,
            municipality = %code,
            %error,
            "registration receipt rejected"
        );
        let code = match error {
            ReceiptError::Signature(_) => ErrorCode::UpstreamSignatureInvalid,
            ReceiptError::Mismatch(_) => ErrorCode::BindingMismatch,
        };
        ApiError::new(code, error.to_string()).with_request(registration_id)
    })?;
    db::set_registration_status(
        &state.pool,
        &registration_id.to_string(),
        status_str(status),
        state.clock.now_unix_ms(),
    )
    .await?;
    tracing::info!(%registration_id, municipality = %code, status = status_str(status), "domicile registration answered");
    let (message_ja, message_en) = status_messages(status);
    Ok(DomicileRegistrationResponse {
        registration_id,
        municipality_code: code,
        municipality_name: municipality.name.clone(),
        status,
        message_ja: message_ja.to_owned(),
        message_en: message_en.to_owned(),
    })
}

/// Records a new registration, or finds the earlier one under the same idempotency
/// key (same content and card: it is forwarded again under the same registration id,
/// which the 本籍地 treats idempotently; anything else is a conflict).
async fn register_or_find(
    state: &AppState,
    operator: &OperatorId,
    request: &DomicileRegistrationRequest,
    digest: Digest32,
    card: &schemas::CardCertificateBody,
    code: MunicipalityCode,
    now_ms: i64,
) -> Result<RequestId, ApiError> {
    // Two rounds at most: an insert can lose a race against a concurrent retry.
    for _ in 0..2 {
        if let Some(existing) = db::find_registration_by_idempotency_key(
            &state.pool,
            operator.as_str(),
            request.idempotency_key.as_str(),
        )
        .await?
        {
            return crate::issuance::same_content_under_key(
                &existing.registration_id,
                &existing.registration_digest,
                &existing.card_digest,
                digest,
                &card.serial,
                "registration",
            );
        }
        let registration_id = RequestId::new_random();
        let row = DomicileRegistrationRow {
            registration_id: registration_id.to_string(),
            operator_id: operator.to_string(),
            kiosk_id: request.kiosk_id.to_string(),
            idempotency_key: request.idempotency_key.to_string(),
            registration_digest: digest.to_string(),
            municipality_code: code.to_string(),
            card_digest: crate::issuance::card_digest_text(registration_id, &card.serial),
            status: SUBMITTED.to_owned(),
        };
        if db::insert_registration(&state.pool, &row, now_ms).await? {
            return Ok(registration_id);
        }
    }
    Err(ApiError::internal("idempotency key race did not settle"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::KeyPair;

    fn code() -> MunicipalityCode {
        "215015".parse().unwrap()
    }

    fn receipt(
        key: &KeyPair,
        registration_id: RequestId,
        municipality_code: MunicipalityCode,
        card_digest: Digest32,
    ) -> SignedDomicileRegistrationReceipt {
        Signed::sign(
            DomicileRegistrationReceipt {
                registration_id,
                municipality_code,
                card_digest,
                status: DomicileRegistrationStatus::Pending,
                answered_at_unix_s: 1_800_000_000,
            },
            key,
        )
        .unwrap()
    }

    #[test]
    fn receipt_must_be_signed_and_bound() {
        let key = KeyPair::generate();
        let keys = HashMap::from([(key.kid(), key.public())]);
        let id = RequestId::new_random();
        let digest = Digest32([7; 32]);
        assert_eq!(
            check_receipt(
                &receipt(&key, id, code(), digest),
                &keys,
                id,
                code(),
                digest
            ),
            Ok(DomicileRegistrationStatus::Pending)
        );
        let stranger = KeyPair::generate();
        assert!(matches!(
            check_receipt(
                &receipt(&stranger, id, code(), digest),
                &keys,
                id,
                code(),
                digest
            ),
            Err(ReceiptError::Signature(_))
        ));
        let other_id = RequestId::new_random();
        assert!(matches!(
            check_receipt(
                &receipt(&key, other_id, code(), digest),
                &keys,
                id,
                code(),
                digest
            ),
            Err(ReceiptError::Mismatch(_))
        ));
        let other_code: MunicipalityCode = "212113".parse().unwrap();
        assert!(matches!(
            check_receipt(
                &receipt(&key, id, other_code, digest),
                &keys,
                id,
                code(),
                digest
            ),
            Err(ReceiptError::Mismatch(_))
        ));
        assert!(matches!(
            check_receipt(
                &receipt(&key, id, code(), Digest32([8; 32])),
                &keys,
                id,
                code(),
                digest
            ),
            Err(ReceiptError::Mismatch(_))
        ));
    }

    #[test]
    fn every_status_has_its_own_messages() {
        let all = [
            DomicileRegistrationStatus::Pending,
            DomicileRegistrationStatus::Approved,
            DomicileRegistrationStatus::Rejected,
        ];
        let texts: std::collections::HashSet<_> = all.iter().map(|s| status_messages(*s)).collect();
        assert_eq!(texts.len(), all.len());
        for status in all {
            let wire = serde_json::to_value(status).unwrap();
            assert_eq!(wire, status_str(status));
        }
    }
}
