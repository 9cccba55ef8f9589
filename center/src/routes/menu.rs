use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use schemas::{ErrorCode, MunicipalityCode, MunicipalityDirectory, RouteKind};

use crate::error::ApiError;
use crate::startup::AppState;

/// `GET /v1/municipalities`: every connected municipality, sorted by code.
pub async fn municipalities(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::require_operator(&request)?;
    Ok(HttpResponse::Ok().json(MunicipalityDirectory {
        municipalities: state.directory.entries(),
    }))
}

/// `GET /v1/menu?municipality=CODE&route=residence|domicile`: the municipality's
/// menu for that route at the center's clock.
pub async fn menu(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::require_operator(&request)?;
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid query: {e}")))?;
    let code: MunicipalityCode = query
        .get("municipality")
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "municipality is required"))?
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "municipality is not a valid code"))?;
    let route = match query.get("route").map(String::as_str) {
        Some("residence") => RouteKind::Residence,
        Some("domicile") => RouteKind::Domicile,
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "route must be residence or domicile",
            ))
        }
    };
    let municipality = state.directory.municipality(&code).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MunicipalityUnknown,
            format!("municipality {code} is not connected"),
        )
    })?;
    let catalogue = crate::catalogue::current_catalogue(&state, municipality).await?;
    let menu = crate::catalogue::build_menu(&catalogue, route, state.clock.now_unix_s());
    Ok(HttpResponse::Ok().json(menu))
}
