//! Bounds the time a client has to send its request body, on every listener.
//! Mounted by the center's and the municipal adapter's listeners (`startup.rs` in each).
//!
//! actix's `client_request_timeout` covers the request head only: a client that sends a
//! complete head and then dribbles (or withholds) its body would hold the connection and
//! a worker's attention forever. [`bound_body_read`] replaces the request payload with a
//! stream that fails once its deadline ([`BODY_READ_TIMEOUT`], or the listener's
//! [`BodyDeadline`]) from the request's arrival has passed (a
//! tokio timer, so a silent client is cut too); whatever the route answered, the answer
//! is then `408 request_timeout`. The handler's own processing time is not bounded here:
//! once the body reached its end, the timer is no longer looked at.
//!
//! The same middleware makes any answer to a request whose body was not read to its end
//! (a 413 for an over-limit chunked body, a 408, a refusal before reading) close the
//! connection: actix drains a dropped chunked body until its end while keeping the
//! connection, which a client offering an endless body turns into an endless read. The
//! payload is kept alive inside the answer's body, so actix sees it unread when the
//! answer ends and closes (after its short linger) instead of draining.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{InternalError, PayloadError};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use schemas::{ErrorBody, ErrorCode};

/// Time from a request's arrival to the end of its body (the whole deadline on a
/// listener without upload allowance).
pub const BODY_READ_TIMEOUT_MS: u64 = 10_000;
pub const BODY_READ_TIMEOUT: Duration = Duration::from_millis(BODY_READ_TIMEOUT_MS);

/// A listener's body deadline, as app data (`App::app_data(BodyDeadline { .. })`);
/// without one, [`BodyDeadline::FIXED`]. A listener that takes large uploads (the
/// public verification page) extends the deadline by the length the client declared,
/// at a minimum rate, up to a cap: a slow but honest upload completes, a dribbler is
/// still cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDeadline {
    pub base_ms: u64,
    /// Declared bytes per second granted on top of `base_ms`; 0 grants nothing.
    pub min_rate_bytes_per_s: u64,
    pub max_ms: u64,
}

impl BodyDeadline {
    pub const FIXED: Self = Self {
        base_ms: BODY_READ_TIMEOUT_MS,
        min_rate_bytes_per_s: 0,
        max_ms: BODY_READ_TIMEOUT_MS,
    };

    /// The deadline for a body of `declared_bytes` (`Content-Length`, when given).
    pub fn for_declared(self, declared_bytes: Option<u64>) -> Duration {
        assert!(self.base_ms <= self.max_ms, "{self:?}");
        let extra_ms = match (declared_bytes, self.min_rate_bytes_per_s) {
            (Some(bytes), rate) if rate > 0 => bytes.saturating_mul(1000) / rate,
            _ => 0,
        };
        Duration::from_millis(self.base_ms.saturating_add(extra_ms).min(self.max_ms))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Reading,
    Complete,
    TimedOut,
}

type SharedPayload = Rc<RefCell<Payload>>;

/// The request's payload behind a deadline.
struct DeadlineBody {
    payload: SharedPayload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    state: Rc<Cell<BodyState>>,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.state.get() {
            BodyState::Complete => return Poll::Ready(None),
            // Never an end of stream after a time-out: a truncated body must not parse.
            BodyState::TimedOut => return Poll::Ready(Some(Err(timed_out()))),
            BodyState::Reading => {}
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.state.set(BodyState::TimedOut);
            return Poll::Ready(Some(Err(timed_out())));
        }
        let polled = Pin::new(&mut *this.payload.borrow_mut()).poll_next(cx);
        if let Poll::Ready(None) = polled {
            this.state.set(BodyState::Complete);
        }
        polled
    }
}

fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "request body not received in time",
    ))
}

/// An answer's body that keeps the request payload alive until the answer is sent (see
/// the module documentation).
pub struct GuardedBody {
    body: BoxBody,
    _payload: Option<SharedPayload>,
}

impl MessageBody for GuardedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The middleware (`actix_web::middleware::from_fn(bound_body_read)`), on every App.
pub async fn bound_body_read(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<GuardedBody>, actix_web::Error> {
    let payload = req.take_payload();
    let (payload, state) = if matches!(payload, Payload::None) {
        req.set_payload(payload);
        (None, BodyState::Complete)
    } else {
        let declared_bytes = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let timeout = req
            .app_data::<BodyDeadline>()
            .copied()
            .unwrap_or(BodyDeadline::FIXED)
            .for_declared(declared_bytes);
        let payload: SharedPayload = Rc::new(RefCell::new(payload));
        let state = Rc::new(Cell::new(BodyState::Reading));
        req.set_payload(Payload::Stream {
            payload: Box::pin(DeadlineBody {
                payload: Rc::clone(&payload),
                deadline: Box::pin(tokio::time::sleep(timeout)),
                state: Rc::clone(&state),
            }),
        });
        (Some((payload, state, timeout)), BodyState::Reading)
    };
    let result = next.call(req).await;
    let (payload, state, timeout) = match payload {
        Some((payload, state, timeout)) => (Some(payload), state.get(), timeout),
        None => (None, state, BODY_READ_TIMEOUT),
    };
    match result {
        Ok(response) => {
            let (request, response) = response.map_into_boxed_body().into_parts();
            let response = conclude(response, state, payload, timeout, request.path());
            Ok(ServiceResponse::new(request, response))
        }
        // The inner service failed (e.g. a guard refused the caller before reading):
        // the same conclusion, carried in an error that renders as the given answer.
        Err(error) => {
            let response = conclude(error.error_response(), state, payload, timeout, "-");
            Err(InternalError::from_response(
                error.to_string(),
                response.map_body(|_, body| BoxBody::new(body)),
            )
            .into())
        }
    }
}

/// The answer given the body's fate: as is when the body was read to its end; else
/// closing the connection (holding the payload, see the module documentation), and
/// `408 request_timeout` instead of whatever the route said when the deadline passed.
fn conclude(
    response: HttpResponse,
    state: BodyState,
    payload: Option<SharedPayload>,
    timeout: Duration,
    path: &str,
) -> HttpResponse<GuardedBody> {
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut response = match state {
        BodyState::Complete => {
            return response.map_body(|_, body| GuardedBody {
                body,
                _payload: None,
            })
        }
        BodyState::TimedOut => {
            tracing::warn!(
                path,
                timeout_ms,
                "request body not received in time; answering 408 and closing"
            );
            HttpResponse::build(StatusCode::REQUEST_TIMEOUT).json(ErrorBody {
                code: ErrorCode::RequestTimeout,
                message: format!("request body not received within {timeout_ms} ms"),
                request_id: None,
            })
        }
        BodyState::Reading => response,
    };
    // The body was not read to its end: the connection cannot carry another request.
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response.map_body(|_, body| GuardedBody {
        body,
        _payload: payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_declared_length_up_to_its_cap() {
        let upload = BodyDeadline {
            base_ms: 10_000,
            min_rate_bytes_per_s: 1_000,
            max_ms: 60_000,
        };
        assert_eq!(upload.for_declared(None), Duration::from_secs(10));
        assert_eq!(upload.for_declared(Some(5_000)), Duration::from_secs(15));
        assert_eq!(upload.for_declared(Some(u64::MAX)), Duration::from_secs(60));
        assert_eq!(
            BodyDeadline::FIXED.for_declared(Some(u64::MAX)),
            BODY_READ_TIMEOUT
        );
    }
}
