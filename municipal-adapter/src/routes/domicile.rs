//! `POST /v1/domicile-registrations`: a 本籍地 利用登録 forwarded by the center, stored
//! as pending (see [`crate::domicile`]); the answer is the signed receipt with the
//! registration's current status.

use actix_web::{web, HttpResponse};
use schemas::{
    card_binding_digest, Digest32, DomicileRegistrationReceipt, ErrorCode, Signed,
    SignedDomicileRegistrationSubmit,
};

use super::ApiError;
use crate::domicile::{submit_registration, DomicileError};
use crate::issuance::IssuanceService;

pub async fn register_domicile(
    body: web::Json<SignedDomicileRegistrationSubmit>,
    service: web::Data<IssuanceService>,
) -> Result<HttpResponse, ApiError> {
    let signed = body.into_inner();
    let submit = signed.verify(service.center_key()).map_err(|e| {
        tracing::warn!(error = %e, "domicile registration not signed by the center");
        ApiError::new(
            ErrorCode::RequestSignatureInvalid,
            format!("the registration is not signed by the center: {e}"),
        )
    })?;
    let request_id = Some(submit.registration_id);
    let municipality = service
        .municipality(submit.municipality_code)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MunicipalityUnknown,
                format!(
                    "municipality {} is not served here",
                    submit.municipality_code
                ),
            )
            .with_request_id(request_id)
        })?;
    let now_unix_s = service.now().as_second();
    let status = submit_registration(service.pool(), submit, now_unix_s)
        .await
        .map_err(|e| {
            match &e {
                DomicileError::Invalid(_) | DomicileError::RegistrationIdReused(_) => {
                    tracing::warn!(error = %e, "domicile registration rejected")
                }
                other => tracing::error!(error = %other, "domicile registration failed"),
            }
            match e {
                DomicileError::Invalid(message) => ApiError::new(ErrorCode::BadRequest, message),
                DomicileError::RegistrationIdReused(_) => {
                    ApiError::new(ErrorCode::RequestIdReused, e.to_string())
                }
                _ => ApiError::new(
                    ErrorCode::Internal,
                    "internal error in the municipal adapter",
                ),
            }
            .with_request_id(request_id)
        })?;
    tracing::info!(municipality = %submit.municipality_code, ?status, "domicile registration");
    let receipt = DomicileRegistrationReceipt {
        registration_id: submit.registration_id,
        municipality_code: municipality.code,
        // Recomputed from the serial stored, as for certificate answers.
        card_digest: Digest32(card_binding_digest(
            &submit.registration_id,
            &submit.card_serial,
        )),
        status,
        answered_at_unix_s: now_unix_s,
    };
    let signed = Signed::sign(receipt, &municipality.key).map_err(|e| {
        tracing::error!(error = %e, "receipt cannot be signed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error in the municipal adapter",
        )
    })?;
    Ok(HttpResponse::Ok().json(signed))
}
