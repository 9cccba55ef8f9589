use actix_web::{web, HttpRequest, HttpResponse};
use rand::RngCore as _;
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
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let now_ms = state.clock.now_unix_ms();
    let ttl_ms = i64::try_from(state.timeouts.challenge_ttl_ms).unwrap_or(i64::MAX);
    let expires_ms = now_ms.saturating_add(ttl_ms);
    crate::db::insert_challenge(
        &state.pool,
        &hex::encode(nonce),
        operator.as_str(),
        body.kiosk_id.as_str(),
        now_ms,
        expires_ms,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ChallengeResponse {
        nonce: nonce.to_vec().into(),
        expires_at_unix_s: expires_ms.div_euclid(1000),
    }))
}
