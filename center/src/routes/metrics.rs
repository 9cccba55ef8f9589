//! `GET /metrics` on the operations listener: Prometheus text (`crate::metrics`).

use actix_web::{http::header, web, HttpResponse};

use crate::startup::AppState;

pub async fn get(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.scrape(&state.pool).await {
        Ok(text) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE))
            .body(text),
        Err(error) => {
            tracing::error!(%error, "metrics encoding failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
