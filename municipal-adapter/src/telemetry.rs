//! Logging: a `tracing` subscriber for the binary, and the span every HTTP request runs
//! in.
//!
//! The request span is `http_request{method, path, http_id, request_id, municipality,
//! status}`:
//! `http_id` is the caller's `x-request-id` header when it sent a sane one (else a fresh
//! UUID) and is echoed back in the response header; `request_id` is the center's
//! request id, recorded by the certificate endpoint as soon as the body is parsed, so
//! every log line of a fetch carries the id the center, the kiosk and the printed pages
//! share (the certificate and notice endpoints also record the municipality). Logs
//! never carry names, addresses or card serials.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::io::IsTerminal as _;
use tracing::Instrument as _;

use tracing_subscriber::EnvFilter;

pub const HTTP_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber: human-readable or JSON lines on stderr, filtered by
/// `RUST_LOG` or else `default_filter`. A second call is a no-op (tests start many
/// adapters in one process).
pub fn init_subscriber(default_filter: &str, json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: log files stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Ignored error: a subscriber is already installed.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// A caller-supplied correlation id is only trusted for logging if it is short and
/// plain; anything else is replaced so logs cannot be forged or flooded through it.
fn sane_http_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| text.to_owned())
}

/// Middleware: runs the request in its span and logs its outcome and latency.
pub async fn request_span(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let http_id = request
        .headers()
        .get(HTTP_ID_HEADER)
        .and_then(sane_http_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        path = %request.path(),
        http_id = %http_id,
        request_id = tracing::field::Empty,
        municipality = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    let result = next.call(request).instrument(span.clone()).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            span.record("status", status);
            tracing::info!(status, elapsed_ms, "request finished");
            if let Ok(value) = HeaderValue::from_str(&http_id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(HTTP_ID_HEADER), value);
            }
            Ok(response)
        }
        Err(error) => {
            let status = error.as_response_error().status_code().as_u16();
            span.record("status", status);
            tracing::info!(status, elapsed_ms, "request refused by middleware");
            Err(error)
        }
    }
}
