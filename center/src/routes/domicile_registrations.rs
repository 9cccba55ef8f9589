use actix_web::{web, HttpRequest, HttpResponse};
use schemas::DomicileRegistrationRequest;

use crate::error::ApiError;
use crate::startup::AppState;

/// `POST /v1/domicile-registrations`: 本籍地 利用登録 from a kiosk.
pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<DomicileRegistrationRequest>,
) -> Result<HttpResponse, ApiError> {
    let operator = super::require_operator(&request)?;
    let response = crate::domicile::register(&state, &operator, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(response))
}
