//! `GET /v1/trust-list`: the signed trust list for relying parties. Like `/health` it
//! asks for no operator role: any client the TLS layer admits may read it.

use actix_web::{web, HttpResponse};
use schemas::ErrorCode;

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now_unix_s = state.clock.now_unix_ms().div_euclid(1000);
    let signed = current(&state, now_unix_s)?;
    Ok(HttpResponse::Ok().json(&*signed))
}

/// The center's current signed list (also what the verification page judges with).
pub(crate) fn current(
    state: &AppState,
    now_unix_s: i64,
) -> Result<std::sync::Arc<schemas::SignedTrustList>, ApiError> {
    state
        .trust_list
        .current(&state.center_key, now_unix_s)
        .map_err(|error| {
            tracing::error!(%error, "cannot sign the trust list");
            ApiError::new(ErrorCode::Internal, "the trust list is unavailable")
        })
}
