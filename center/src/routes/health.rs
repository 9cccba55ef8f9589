use std::time::Duration;

use actix_web::{web, HttpResponse};
use schemas::ErrorCode;

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Upper bound on the readiness probe's database round trip.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready when the database answers (within [`READY_DB_TIMEOUT`]) and the directory
/// has municipalities. The keys and the directory are loaded before any listener is
/// bound (`startup`), so a listening center has them; the directory is checked only
/// for a deployment configured without municipalities. 503 names the reason.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let not_ready = |reason: &str| {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "reason": reason}))
    };
    match tokio::time::timeout(
        READY_DB_TIMEOUT,
        sqlx::query("SELECT 1").execute(state.pool.pool()),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: database unavailable");
            return not_ready("database unavailable");
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer in time");
            return not_ready("database timeout");
        }
    }
    let municipalities = state.directory.entries().len();
    if municipalities == 0 {
        return not_ready("no municipality configured");
    }
    HttpResponse::Ok()
        .json(serde_json::json!({"status": "ready", "municipalities": municipalities}))
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}

pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this path",
    ))
}
