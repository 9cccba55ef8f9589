//! HTTP endpoints and their error bodies.
//!
//! ```text
//! POST /v1/certificates          Signed<CertificateFetch> -> Signed<CertificateAnswer> | ErrorBody  (center only)
//! POST /v1/catalogue             Signed<CatalogueRequest> -> Signed<Catalogue> | ErrorBody  (center only)
//! POST /v1/domicile-registrations Signed<DomicileRegistrationSubmit> -> Signed<DomicileRegistrationReceipt> | ErrorBody  (center only)
//! POST /v1/issuance-notices      Signed<IssuanceNotice> -> IssuanceNoticeAck | ErrorBody  (center only)
//! GET  /v1/info           -> AdapterInfo
//! GET  /health            -> {"status":"ok"}
//! ```
//!
//! Every non-2xx answer is a [`schemas::ErrorBody`] in JSON, including malformed or
//! oversized bodies, wrong content types, unknown paths and wrong methods.

mod catalogue;
mod certificates;
mod domicile;
mod health;
mod info;
mod notices;

pub use catalogue::catalogue;
pub use certificates::fetch_certificate;
pub use domicile::register_domicile;
pub use health::health;
pub use info::info;
pub use notices::issuance_notice;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use schemas::{ErrorBody, ErrorCode, RequestId};

use crate::issuance::IssueError;

/// Largest request body accepted. A signed fetch is well under 2 KiB; 64 KiB leaves
/// room for growth while keeping a flood of large bodies cheap to reject.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An error answer: HTTP status plus the wire's [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

/// The HTTP status for each error code this adapter sends.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::NotFound | ErrorCode::MunicipalityUnknown => StatusCode::NOT_FOUND,
        ErrorCode::ClientNotAuthorized => StatusCode::FORBIDDEN,
        ErrorCode::RequestSignatureInvalid => StatusCode::UNAUTHORIZED,
        ErrorCode::RequestIdReused
        | ErrorCode::IdempotencyConflict
        | ErrorCode::BindingMismatch => StatusCode::CONFLICT,
        ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::MunicipalityUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status_for(code),
            body: ErrorBody {
                code,
                message: message.into(),
                request_id: None,
            },
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_request_id(mut self, request_id: Option<RequestId>) -> Self {
        self.body.request_id = request_id;
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.body.code, self.status, self.body.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

impl From<IssueError> for ApiError {
    fn from(error: IssueError) -> Self {
        let code = error.code();
        let message = match &error {
            // Details of internal failures stay in the log; the caller learns only that
            // it was not its fault.
            IssueError::Internal(_) => "internal error in the municipal adapter".to_owned(),
            other => other.to_string(),
        };
        Self::new(code, message)
    }
}

/// JSON extractor settings: size bound, content type required, and every failure as
/// an [`ErrorBody`].
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|error, _request| {
            let api = match &error {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "request body must be application/json",
                ),
                JsonPayloadError::Deserialize(e) => ApiError::new(
                    ErrorCode::BadRequest,
                    format!("request body is not valid for this endpoint: {e}"),
                ),
                other => ApiError::new(
                    ErrorCode::BadRequest,
                    format!("request body cannot be read: {other}"),
                ),
            };
            api.into()
        })
}

/// Only the center may ask for certificates, catalogues and registrations, or send notices: the TLS client certificate must carry the
/// center's role (`urn:kofu:center`). Checked before the body is even read.
pub async fn require_center(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match mtls::caller_role(request.request()) {
        Some(mtls::PeerRole::Center) => next.call(request).await,
        role => {
            tracing::warn!(
                ?role,
                "certificate request from a client that is not the center"
            );
            Err(ApiError::new(
                ErrorCode::ClientNotAuthorized,
                "this endpoint is for the center's client certificate only",
            )
            .into())
        }
    }
}

/// Any path that is not an endpoint.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no endpoint at {}", request.path()),
    )
    .error_response()
}

/// A known path with the wrong method.
pub async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.path()
        ),
    )
    .error_response()
}
