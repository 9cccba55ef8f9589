use actix_web::{web, HttpRequest, HttpResponse};
use schemas::{ChallengeRequest, ChallengeResponse, ErrorCode};

use crate::error::ApiError;
use crate::startup::AppState;

/// Issues a single-use nonce for one card authentication.
pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ChallengeRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    if !state.directory.kiosk_belongs_to(&operator, &body.kiosk_id) {
        return Err(ApiError::new(
            ErrorCode::KioskNotAuthorized,
            "kiosk is not registered for this operator",
        ));
    }
    let now_ms = state.clock.now_unix_ms();
    let ttl_ms = i64::try_from(state.timeouts.challenge_ttl_ms).unwrap_or(i64::MAX);
    let expires_ms = now_ms.saturating_add(ttl_ms);
    // Nothing is written: the nonce carries its kiosk and expiry under the center's
    // MAC, and the database hears of it only when it is used (`crate::challenge`).
    let nonce = state
        .challenge_key
        .mint(&operator, &body.kiosk_id, expires_ms);
    Ok(HttpResponse::Ok().json(ChallengeResponse {
        nonce: nonce.to_vec().into(),
        expires_at_unix_s: expires_ms.div_euclid(1000),
    }))
}
