use actix_web::{web, HttpRequest, HttpResponse};
use schemas::CardSessionRequest;

use crate::error::ApiError;
use crate::startup::AppState;

/// `POST /v1/card-sessions`: the card authenticates once, right after the PIN.
pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CardSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    let response = crate::card_session::open(&state, &operator, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(response))
}
