//! `POST /v1/certificates`: the center's signed fetch in, the municipality's signed
//! answer (or an [`schemas::ErrorBody`]) out.

use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use schemas::SignedCertificateFetch;

use super::ApiError;
use crate::issuance::IssuanceService;

/// Response header set on a replayed answer (for operators; the bytes are identical).
pub const REPLAY_HEADER: &str = "x-kofu-replayed";

pub async fn fetch_certificate(
    body: web::Json<SignedCertificateFetch>,
    service: web::Data<IssuanceService>,
) -> Result<HttpResponse, ApiError> {
    let signed = body.into_inner();
    let request_id = signed.payload.request_id;
    // The id as claimed, for correlation with the center's log; whether it is the
    // center's is decided by the signature check in `handle`.
    let span = tracing::Span::current();
    span.record("request_id", tracing::field::display(request_id));
    span.record(
        "municipality",
        tracing::field::display(signed.payload.municipality_code),
    );

    let result = service.handle(&signed, service.now()).await;

    // The slow-adapter fault delays every answer, after it was stored, so that the
    // center's retry (if it makes one) replays it.
    let delay_ms = service.fault().delay_ms;
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }

    match result {
        Ok(answered) => {
            let mut response = HttpResponse::Ok();
            if service.fault().mode == crate::fault::FaultMode::WrongContentType {
                response.content_type(ContentType::plaintext());
            } else {
                response.content_type(ContentType::json());
            }
            if answered.replayed {
                response.insert_header((REPLAY_HEADER, "true"));
            }
            Ok(response.body(answered.json))
        }
        Err(error) => {
            match &error {
                crate::issuance::IssueError::Internal(detail) => {
                    tracing::error!(%detail, "fetch failed")
                }
                other => tracing::warn!(error = %other, "fetch rejected"),
            }
            Err(ApiError::from(error).with_request_id(Some(request_id)))
        }
    }
}
