//! Typed failures of the kiosk API, mapped to HTTP statuses and stable wire codes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use schemas::{ErrorBody, ErrorCode, RequestId};

#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: Option<RequestId>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn with_request(mut self, request_id: RequestId) -> Self {
        self.request_id = Some(request_id);
        self
    }

    pub fn internal(source: impl std::fmt::Display) -> Self {
        // The detail goes to the log, not to the kiosk.
        tracing::error!(error = %source, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        BadRequest => StatusCode::BAD_REQUEST,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        NotFound | MunicipalityUnknown => StatusCode::NOT_FOUND,
        ClientNotAuthorized | KioskNotAuthorized => StatusCode::FORBIDDEN,
        ChallengeUnknown
        | ChallengeExpired
        | ChallengeUsed
        | CardCertificateInvalid
        | CardExpired
        | CardNotYetValid
        | CardRevoked
        | CardSignatureInvalid
        | CardSessionInvalid
        | RequestSignatureInvalid => StatusCode::UNAUTHORIZED,
        IdempotencyConflict
        | RequestIdReused
        | RequestInProgress
        | OutcomeConflict
        | IllegalTransition
        | ControlStepNotAllowed => StatusCode::CONFLICT,
        MunicipalityUnavailable | CatalogueUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        UpstreamSignatureInvalid | BindingMismatch | CatalogueMismatch => StatusCode::BAD_GATEWAY,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody {
            code: self.code,
            message: self.message.clone(),
            request_id: self.request_id,
        })
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        Self::internal(error)
    }
}

/// Maps actix's JSON extractor failures to clean `ErrorBody` answers.
pub fn json_error(
    error: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &error {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
        }
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        other => ApiError::new(
            ErrorCode::BadRequest,
            format!("invalid request body: {other}"),
        ),
    };
    api.into()
}
