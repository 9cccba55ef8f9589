//! HTTP routes of the kiosk-facing API.

mod challenges;
mod health;
mod issuances;

use actix_web::{web, HttpRequest};
use schemas::{ErrorCode, OperatorId};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/v1/challenges", web::post().to(challenges::create))
        .route("/v1/issuances", web::post().to(issuances::create))
        .default_service(web::to(health::not_found));
}

/// The chain operator named by the caller's TLS client certificate.
pub(crate) fn require_operator(request: &HttpRequest) -> Result<OperatorId, ApiError> {
    match mtls::caller_role(request) {
        Some(mtls::PeerRole::Operator(id)) => Ok(id),
        _ => Err(ApiError::new(
            ErrorCode::ClientNotAuthorized,
            "the kiosk API requires a chain operator's client certificate",
        )),
    }
}
