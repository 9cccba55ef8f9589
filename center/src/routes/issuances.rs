use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError as _};
use schemas::kiosk_api::SERVER_TIMING_HEADER;
use schemas::{IssuanceRequest, IssuanceResponse, OutcomeAck, PaymentReport, PrintReport};

use crate::error::ApiError;
use crate::metrics::PhaseTimer;
use crate::startup::AppState;

/// `POST /v1/issuances`. Every answer (issued, refused or an error) carries
/// `Server-Timing` with the phases that ran; the same measurements feed the latency
/// histograms.
pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<IssuanceRequest>,
) -> HttpResponse {
    let started = Instant::now();
    let timer = PhaseTimer::default();
    let result = match super::require_operator(&request) {
        Ok(operator) => crate::issuance::issue(&state, &operator, body.into_inner(), &timer).await,
        Err(error) => Err(error),
    };
    let mut response = match &result {
        Ok(answer) => {
            match answer {
                IssuanceResponse::Prepared { .. } => state.metrics.issued(),
                IssuanceResponse::Refused { reason, .. } => state
                    .metrics
                    .refused(&crate::issuance::reason_code(*reason)),
            }
            HttpResponse::Ok().json(answer)
        }
        Err(error) => {
            state.metrics.issuance_failed(error.code);
            error.error_response()
        }
    };
    let center = started.elapsed();
    state.metrics.phases(&timer, center);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&timer.server_timing(center))
    {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(SERVER_TIMING_HEADER),
            value,
        );
    }
    response
}

/// `POST /v1/issuances/{request_id}/payment`: the kiosk's payment outcome.
pub async fn payment(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PaymentReport>,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let operator = super::require_operator(&request)?;
        crate::lifecycle::report_payment(&state, &operator, path.as_str(), &body.into_inner()).await
    }
    .await;
    count_report(&state, "payment", &result);
    Ok(HttpResponse::Ok().json(result?))
}

/// `POST /v1/issuances/{request_id}/print`: the kiosk's print outcome.
pub async fn print(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PrintReport>,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let operator = super::require_operator(&request)?;
        crate::lifecycle::report_print(&state, &operator, path.as_str(), &body.into_inner()).await
    }
    .await;
    count_report(&state, "print", &result);
    Ok(HttpResponse::Ok().json(result?))
}

fn count_report(state: &AppState, kind: &'static str, result: &Result<OutcomeAck, ApiError>) {
    match result {
        Ok(ack) => {
            let status = match serde_json::to_value(ack.status) {
                Ok(serde_json::Value::String(s)) => s,
                _ => format!("{:?}", ack.status),
            };
            state.metrics.outcome_report(kind, &status);
        }
        Err(error) => {
            state.metrics.outcome_report(kind, "rejected");
            state.metrics.error(error.code);
        }
    }
}
