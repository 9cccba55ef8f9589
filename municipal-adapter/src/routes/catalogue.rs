//! `POST /v1/catalogue`: the center's signed [`schemas::CatalogueRequest`] in, the
//! municipality's catalogue signed with its key out (`published_at` = the request's
//! clock, valid for [`crate::catalogue::CATALOGUE_VALIDITY_S`]).

use actix_web::{web, HttpResponse};
use schemas::{ErrorCode, Signed, SignedCatalogueRequest};

use super::ApiError;
use crate::issuance::IssuanceService;

pub async fn catalogue(
    body: web::Json<SignedCatalogueRequest>,
    service: web::Data<IssuanceService>,
) -> Result<HttpResponse, ApiError> {
    let signed = body.into_inner();
    let request = signed.verify(service.center_key()).map_err(|e| {
        tracing::warn!(error = %e, "catalogue request not signed by the center");
        ApiError::new(
            ErrorCode::RequestSignatureInvalid,
            format!("the catalogue request is not signed by the center: {e}"),
        )
    })?;
    let municipality = service
        .municipality(request.municipality_code)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MunicipalityUnknown,
                format!(
                    "municipality {} is not served here",
                    request.municipality_code
                ),
            )
        })?;
    let catalogue = municipality
        .catalogue(request.requested_at_unix_s)
        .map_err(|e| {
            tracing::error!(error = %e, "catalogue cannot be built");
            ApiError::new(
                ErrorCode::Internal,
                "internal error in the municipal adapter",
            )
        })?;
    let signed = Signed::sign(catalogue, &municipality.key).map_err(|e| {
        tracing::error!(error = %e, "catalogue cannot be signed");
        ApiError::new(
            ErrorCode::Internal,
            "internal error in the municipal adapter",
        )
    })?;
    tracing::info!(municipality = %request.municipality_code, "catalogue published");
    Ok(HttpResponse::Ok().json(signed))
}
