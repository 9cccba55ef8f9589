//! HTTP routes: the kiosk-facing API ([`configure`], mTLS listener) and what the public
//! listener serves to relying parties ([`configure_public`]), and the operations
//! listener's probes and metrics ([`configure_ops`]).

mod card_sessions;
mod challenges;
mod domicile_registrations;
mod health;
mod issuances;
mod menu;
mod metrics;
mod trust_list;
pub mod verify_page;

use actix_web::{web, HttpRequest};
use schemas::{ErrorCode, OperatorId};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Each path answers its own methods; any other method is 405 with an ErrorBody.
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/ready").route(web::get().to(health::ready)))
        .service(resource("/v1/challenges").route(web::post().to(challenges::create)))
        .service(resource("/v1/card-sessions").route(web::post().to(card_sessions::create)))
        .service(resource("/v1/issuances").route(web::post().to(issuances::create)))
        .service(
            resource("/v1/issuances/{request_id}/payment")
                .route(web::post().to(issuances::payment)),
        )
        .service(
            resource("/v1/issuances/{request_id}/print").route(web::post().to(issuances::print)),
        )
        .service(resource("/v1/municipalities").route(web::get().to(menu::municipalities)))
        .service(resource("/v1/menu").route(web::get().to(menu::menu)))
        .service(resource("/v1/trust-list").route(web::get().to(trust_list::get)))
        .service(
            resource("/v1/domicile-registrations")
                .route(web::post().to(domicile_registrations::create)),
        )
        .default_service(web::to(health::not_found));
}

/// The public listener (no client certificate): only what a relying party needs. The
/// kiosk API is not routed here at all, so no guard can be forgotten.
pub fn configure_public(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/v1/trust-list").route(web::get().to(trust_list::get)))
        .service(
            resource("/verify")
                .route(web::get().to(verify_page::form))
                .route(web::post().to(verify_page::submit)),
        )
        .service(resource("/v1/verify").route(web::post().to(verify_page::api)))
        .default_service(web::to(health::not_found));
}

/// The operations listener (plain HTTP, loopback or the operations network): liveness,
/// readiness and Prometheus metrics, nothing else.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/ready").route(web::get().to(health::ready)))
        .service(resource("/metrics").route(web::get().to(metrics::get)))
        .default_service(web::to(health::not_found));
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(health::method_not_allowed))
}

/// The chain operator named by the caller's TLS client certificate.
pub(crate) fn require_operator(request: &HttpRequest) -> Result<OperatorId, ApiError> {
    match mtls::caller_role(request) {
        Some(mtls::PeerRole::Operator(id)) => Ok(id),
        _ => Err(ApiError::new(
            ErrorCode::ClientNotAuthorized,
            "the kiosk API requires a chain operator's client certificate",
        )),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App};
    use schemas::{ErrorBody, ErrorCode};

    async fn call(method: actix_web::http::Method, path: &str) -> (u16, ErrorBody) {
        let app = test::init_service(App::new().configure(super::configure)).await;
        let request = test::TestRequest::default()
            .method(method)
            .uri(path)
            .to_request();
        let response = test::call_service(&app, request).await;
        let status = response.status().as_u16();
        let body: ErrorBody = test::read_body_json(response).await;
        (status, body)
    }

    #[actix_web::test]
    async fn other_methods_are_405_with_an_error_body() {
        use actix_web::http::Method;
        for (method, path) in [
            (Method::GET, "/v1/issuances"),
            (Method::GET, "/v1/challenges"),
            (Method::GET, "/v1/card-sessions"),
            (Method::POST, "/v1/menu"),
            (Method::DELETE, "/v1/municipalities"),
            (Method::GET, "/v1/domicile-registrations"),
            (Method::GET, "/v1/issuances/some-id/payment"),
            (Method::PUT, "/v1/issuances/some-id/print"),
            (Method::POST, "/health"),
        ] {
            let (status, body) = call(method.clone(), path).await;
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(body.code, ErrorCode::MethodNotAllowed, "{method} {path}");
        }
    }

    #[actix_web::test]
    async fn unknown_paths_are_404() {
        let (status, body) = call(actix_web::http::Method::GET, "/v1/nothing").await;
        assert_eq!(status, 404);
        assert_eq!(body.code, ErrorCode::NotFound);
    }
}
