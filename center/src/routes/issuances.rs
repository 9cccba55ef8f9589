use actix_web::{web, HttpRequest, HttpResponse};
use schemas::{IssuanceRequest, PaymentReport, PrintReport};

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<IssuanceRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    let response = crate::issuance::issue(&state, &operator, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(response))
}

/// `POST /v1/issuances/{request_id}/payment`: the kiosk's payment outcome.
pub async fn payment(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PaymentReport>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    let ack =
        crate::lifecycle::report_payment(&state, &operator, path.as_str(), &body.into_inner())
            .await?;
    Ok(HttpResponse::Ok().json(ack))
}

/// `POST /v1/issuances/{request_id}/print`: the kiosk's print outcome.
pub async fn print(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PrintReport>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    let ack = crate::lifecycle::report_print(&state, &operator, path.as_str(), &body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(ack))
}
