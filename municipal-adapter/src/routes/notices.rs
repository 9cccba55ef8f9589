//! `POST /v1/issuance-notices`: the center's signed [`schemas::IssuanceNotice`] in (a
//! certificate was printed), an [`IssuanceNoticeAck`] out once the issuance record
//! (交付記録) holds it; see [`crate::issuance_records`].

use actix_web::{web, HttpResponse};
use schemas::{ErrorCode, IssuanceNoticeAck, SignedIssuanceNotice};

use super::ApiError;
use crate::issuance::IssuanceService;
use crate::issuance_records::{record_notice, NoticeError, RecordOutcome};

pub async fn issuance_notice(
    body: web::Json<SignedIssuanceNotice>,
    service: web::Data<IssuanceService>,
) -> Result<HttpResponse, ApiError> {
    let signed = body.into_inner();
    // The id as claimed, for correlation; the signature decides whether it counts.
    let claimed_id = signed.payload.request_id;
    let span = tracing::Span::current();
    span.record("request_id", tracing::field::display(claimed_id));
    span.record(
        "municipality",
        tracing::field::display(signed.payload.municipality_code),
    );
    let notice = signed.verify(service.center_key()).map_err(|e| {
        tracing::warn!(error = %e, "issuance notice not signed by the center");
        ApiError::new(
            ErrorCode::RequestSignatureInvalid,
            format!("the notice is not signed by the center: {e}"),
        )
        .with_request_id(Some(claimed_id))
    })?;
    let request_id = Some(notice.request_id);
    if service.municipality(notice.municipality_code).is_none() {
        tracing::warn!(municipality = %notice.municipality_code, "notice for a municipality not served here");
        return Err(ApiError::new(
            ErrorCode::MunicipalityUnknown,
            format!(
                "municipality {} is not served here",
                notice.municipality_code
            ),
        )
        .with_request_id(request_id));
    }
    let now_unix_ms = service.now().as_millisecond();
    let outcome = record_notice(service.pool(), notice, now_unix_ms)
        .await
        .map_err(|e| {
            let code = match &e {
                NoticeError::Invalid(_) => ErrorCode::BadRequest,
                NoticeError::NotFound(..) => ErrorCode::NotFound,
                NoticeError::BindingMismatch { .. } => ErrorCode::BindingMismatch,
                NoticeError::RequestIdReused(_) => ErrorCode::RequestIdReused,
                NoticeError::Database(_) | NoticeError::Internal(_) => ErrorCode::Internal,
            };
            if code == ErrorCode::Internal {
                tracing::error!(error = %e, "issuance notice failed");
                ApiError::new(code, "internal error in the municipal adapter")
            } else {
                // A binding mismatch means the center printed something this adapter
                // did not answer: loud, so that an operator looks at it.
                if code == ErrorCode::BindingMismatch {
                    tracing::error!(error = %e, "issuance notice contradicts the answer");
                } else {
                    tracing::warn!(error = %e, "issuance notice rejected");
                }
                ApiError::new(code, e.to_string())
            }
            .with_request_id(request_id)
        })?;
    // `notice_not_idempotent` acknowledges a repeat as if it were a new record.
    let recorded = outcome == RecordOutcome::Recorded
        || service.fault().mode == crate::fault::FaultMode::NoticeNotIdempotent;
    tracing::info!(
        municipality = %notice.municipality_code,
        certificate_type = %notice.certificate_type,
        copies = notice.copies,
        recorded,
        "issuance notice"
    );
    Ok(HttpResponse::Ok().json(IssuanceNoticeAck {
        request_id: notice.request_id,
        recorded,
    }))
}
