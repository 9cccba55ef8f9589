//! `GET /health`: 200 when the database answers, 503 otherwise.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use schemas::ErrorCode;

use super::ApiError;
use crate::issuance::IssuanceService;

pub async fn health(service: web::Data<IssuanceService>) -> Result<HttpResponse, ApiError> {
    match service.answers().count().await {
        Ok(_) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unavailable");
            Err(ApiError::new(ErrorCode::Internal, "database unavailable")
                .with_status(StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}
