//! `GET /v1/info`: what this adapter is and which municipalities it serves.

use actix_web::{web, HttpResponse};
use schemas::AdapterInfo;

use crate::issuance::IssuanceService;

pub async fn info(service: web::Data<IssuanceService>) -> HttpResponse {
    HttpResponse::Ok().json(AdapterInfo {
        software: crate::SOFTWARE.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        municipalities: service.municipality_codes(),
    })
}
