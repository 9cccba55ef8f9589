//! HTTP for the control interface: the routes of [`schemas::kiosk_control`], each one
//! step of the [`Controller`] behind a mutex (one step, and one session, at a time).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use schemas::kiosk_control::{
    ChooseOrder, ChooseRoute, ControlState, EnterPin, Pay, PlaceCard, SetPrinter, CONTROL_BASE_PATH,
};
use schemas::{ErrorBody, ErrorCode, RequestId};
use tokio::sync::Mutex;

use super::{Controller, StepError};
use crate::client::ClientError;

/// Largest request body (a card file is about 1 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The controller as app data: every route locks it for one step.
pub type SharedController = web::Data<Arc<Mutex<Controller>>>;
type Shared = SharedController;

/// A started control server.
pub struct ControlServer {
    pub local_addr: SocketAddr,
    pub server: Server,
}

fn error(status: actix_web::http::StatusCode, code: ErrorCode, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        code,
        message,
        request_id: None,
    })
}

/// A step's answer: the state, or the error body with its status.
pub fn answer(result: Result<ControlState, StepError>) -> HttpResponse {
    answer_json(result)
}

/// 200 and `value`, or the error body with its status.
fn answer_json<T: serde::Serialize>(result: Result<T, StepError>) -> HttpResponse {
    use actix_web::http::StatusCode;
    match result {
        Ok(value) => HttpResponse::Ok().json(value),
        Err(e @ StepError::NotAllowed { .. }) => error(
            StatusCode::CONFLICT,
            ErrorCode::ControlStepNotAllowed,
            e.to_string(),
        ),
        Err(StepError::BadRequest(message)) => {
            error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
        }
        Err(StepError::Internal(message)) => {
            tracing::error!(%message, "control: internal error");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                message,
            )
        }
        Err(StepError::Center(ClientError::Rejected { status, body, .. })) => {
            // The center's own answer (e.g. 404 municipality_unknown), passed on.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            HttpResponse::build(status).json(body)
        }
        Err(StepError::Center(other)) => {
            tracing::warn!(error = %other, "control: the center did not answer a read");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::CatalogueUnavailable,
                other.to_string(),
            )
        }
    }
}

async fn get_state(shared: Shared) -> HttpResponse {
    HttpResponse::Ok().json(shared.lock().await.state())
}

async fn get_info(shared: Shared) -> HttpResponse {
    HttpResponse::Ok().json(shared.lock().await.info())
}

async fn get_menu(shared: Shared) -> HttpResponse {
    answer_json(shared.lock().await.menu().await)
}

async fn get_municipalities(shared: Shared) -> HttpResponse {
    answer_json(shared.lock().await.municipalities().await)
}

async fn place_card(shared: Shared, body: web::Json<PlaceCard>) -> HttpResponse {
    answer(shared.lock().await.place_card(body.into_inner()).await)
}

async fn enter_pin(shared: Shared, body: web::Json<EnterPin>) -> HttpResponse {
    answer(shared.lock().await.enter_pin(body.into_inner()).await)
}

async fn choose_route(shared: Shared, body: web::Json<ChooseRoute>) -> HttpResponse {
    answer(shared.lock().await.choose_route(body.into_inner()).await)
}

async fn choose_order(shared: Shared, body: web::Json<ChooseOrder>) -> HttpResponse {
    answer(shared.lock().await.choose_order(body.into_inner()).await)
}

async fn pay(shared: Shared, body: web::Json<Pay>) -> HttpResponse {
    answer(shared.lock().await.pay(body.into_inner()).await)
}

async fn set_printer(shared: Shared, body: web::Json<SetPrinter>) -> HttpResponse {
    answer(shared.lock().await.set_printer(body.into_inner()))
}

async fn cancel(shared: Shared) -> HttpResponse {
    answer(shared.lock().await.cancel())
}

async fn take_card(shared: Shared) -> HttpResponse {
    answer(shared.lock().await.take_card())
}

async fn take_certificate(shared: Shared) -> HttpResponse {
    answer(shared.lock().await.take_certificate())
}

async fn restart(shared: Shared) -> HttpResponse {
    answer(shared.lock().await.restart().await)
}

async fn document(shared: Shared, path: web::Path<String>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Ok(request_id) = path.into_inner().parse::<RequestId>() else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "not a request id".into(),
        );
    };
    match shared.lock().await.document(&request_id) {
        Some(pdf) => HttpResponse::Ok().content_type("application/pdf").body(pdf),
        None => error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no printed document for {request_id}"),
        ),
    }
}

async fn not_found() -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such control endpoint".into(),
    )
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _request| {
            let response = error(
                actix_web::http::StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                err.to_string(),
            );
            actix_web::error::InternalError::from_response(err, response).into()
        })
}

/// The control routes under [`CONTROL_BASE_PATH`], for an App that holds the
/// controller as [`SharedController`] app data (the touch screen mounts them beside
/// its own).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let base = CONTROL_BASE_PATH;
    cfg.app_data(json_config())
        .route(&format!("{base}/state"), web::get().to(get_state))
        .route(&format!("{base}/info"), web::get().to(get_info))
        .route(&format!("{base}/menu"), web::get().to(get_menu))
        .route(
            &format!("{base}/municipalities"),
            web::get().to(get_municipalities),
        )
        .route(&format!("{base}/card"), web::post().to(place_card))
        .route(&format!("{base}/pin"), web::post().to(enter_pin))
        .route(&format!("{base}/route"), web::post().to(choose_route))
        .route(&format!("{base}/order"), web::post().to(choose_order))
        .route(&format!("{base}/payment"), web::post().to(pay))
        .route(&format!("{base}/printer"), web::post().to(set_printer))
        .route(&format!("{base}/cancel"), web::post().to(cancel))
        .route(&format!("{base}/take-card"), web::post().to(take_card))
        .route(
            &format!("{base}/take-certificate"),
            web::post().to(take_certificate),
        )
        .route(&format!("{base}/restart"), web::post().to(restart))
        .route(
            &format!("{base}/documents/{{request_id}}"),
            web::get().to(document),
        );
}

/// Starts serving `controller` on `listener` (the caller runs or spawns the returned
/// server future).
pub fn start(controller: Controller, listener: TcpListener) -> std::io::Result<ControlServer> {
    start_with(controller, listener, |_| {})
}

/// [`start`], with `extra` routes mounted beside the control routes (the touch
/// screen); they reach the controller as [`SharedController`] app data.
pub fn start_with<F>(
    controller: Controller,
    listener: TcpListener,
    extra: F,
) -> std::io::Result<ControlServer>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let local_addr = listener.local_addr()?;
    let shared = web::Data::new(Arc::new(Mutex::new(controller)));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .configure(configure)
            .configure(extra.clone())
            .default_service(web::to(not_found))
    })
    .workers(2)
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    tracing::info!(address = %local_addr, "kiosk control interface listening (plain HTTP, loopback)");
    Ok(ControlServer { local_addr, server })
}
