use actix_web::{web, HttpRequest, HttpResponse};
use schemas::IssuanceRequest;

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
