//! The kiosk's side of the kiosk ↔ center link: HTTPS with the chain operator's client
//! certificate (mTLS), JSON bodies from `schemas`.
//!
//! Errors keep three cases apart because the kiosk reacts differently to each:
//! - [`ClientError::Rejected`]: the center answered with an [`ErrorBody`]; a definitive
//!   answer, never retried blindly;
//! - [`ClientError::Transport`]: no answer (connect failure, timeout, cut body); the
//!   outcome is unknown, and the order may be sent again under the same idempotency
//!   key (with a fresh challenge: nonces are single-use);
//! - [`ClientError::UnexpectedResponse`]: an answer that is not the contract.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use schemas::outcome::{OutcomeAck, PaymentReport, PrintReport};
use schemas::{
    CardSessionRequest, CardSessionResponse, ChallengeRequest, ChallengeResponse,
    DomicileRegistrationRequest, DomicileRegistrationResponse, ErrorBody, ErrorCode,
    IssuanceRequest, IssuanceResponse, KioskId, Menu, MunicipalityCode, MunicipalityDirectory,
    RequestId, RouteKind,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::configuration::KioskSettings;

pub const CHALLENGES_PATH: &str = "/v1/challenges";
pub const CARD_SESSIONS_PATH: &str = "/v1/card-sessions";
pub const ISSUANCES_PATH: &str = "/v1/issuances";
pub const MUNICIPALITIES_PATH: &str = "/v1/municipalities";
pub const MENU_PATH: &str = "/v1/menu";
pub const DOMICILE_REGISTRATIONS_PATH: &str = "/v1/domicile-registrations";
pub const TRUST_LIST_PATH: &str = "/v1/trust-list";
/// Response header the center may set with its id for the HTTP exchange; logged.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest non-contract body quoted in an error.
const MAX_QUOTED_BODY_CHARS: usize = 200;
/// A detached issuance ([`DetachedIssuance`]) may run this many request timeouts…
pub const DETACHED_TIMEOUT_FACTOR: u32 = 10;
/// …but no longer than this.
pub const MAX_DETACHED_TIMEOUT_MS: u64 = 120_000;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS set-up for the center link failed: {0}")]
    Tls(#[from] mtls::TlsError),
    /// No answer: the request may or may not have reached the center.
    #[error("no answer from {endpoint}: {}", mtls::error_chain(source))]
    Transport {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// The center answered non-2xx with its error body.
    #[error("center rejected {endpoint} with HTTP {status}: {} ({})", body.code, body.message)]
    Rejected {
        endpoint: String,
        status: u16,
        body: ErrorBody,
    },
    #[error("center answered {endpoint} with HTTP {status} outside the contract: {detail}")]
    UnexpectedResponse {
        endpoint: String,
        status: u16,
        detail: String,
    },
}

impl ClientError {
    /// True when the outcome is unknown (the request may have been processed).
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport { .. })
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }

    /// The center's error code, when it sent one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Rejected { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// The HTTP status, when the center answered at all.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } | Self::UnexpectedResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

/// An issuance request that does not borrow its sender: a `'static` future a kiosk
/// can spawn, so that it outlives the session that sent it. Only the test-only fault
/// [`crate::FaultMode::ReleaseLockOnTimeout`] uses it.
pub struct DetachedIssuance {
    /// How long a session normally waits for the answer (the link's request timeout).
    pub session_wait: Duration,
    /// The request in flight, under its own, much longer deadline.
    pub answer: Pin<Box<dyn Future<Output = Result<IssuanceResponse, ClientError>> + Send>>,
}

impl std::fmt::Debug for DetachedIssuance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedIssuance")
            .field("session_wait", &self.session_wait)
            .finish_non_exhaustive()
    }
}

/// The deadline of a detached issuance: [`DETACHED_TIMEOUT_FACTOR`] request timeouts,
/// at most [`MAX_DETACHED_TIMEOUT_MS`], never shorter than one request timeout.
pub fn detached_timeout(request_timeout: Duration) -> Duration {
    request_timeout
        .saturating_mul(DETACHED_TIMEOUT_FACTOR)
        .min(Duration::from_millis(MAX_DETACHED_TIMEOUT_MS))
        .max(request_timeout)
}

/// What the kiosk needs from the center. [`CenterClient`] is the real one; tests and
/// conformance tools can put a fake center behind the same [`crate::Kiosk`].
pub trait CenterApi {
    fn request_challenge(
        &self,
        request: &ChallengeRequest,
    ) -> impl Future<Output = Result<ChallengeResponse, ClientError>> + Send;

    /// `POST /v1/card-sessions`: the card, right after the PIN, approves the visit's
    /// orders once (so it can be returned at once).
    fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> impl Future<Output = Result<CardSessionResponse, ClientError>> + Send;

    fn request_issuance(
        &self,
        request: &IssuanceRequest,
    ) -> impl Future<Output = Result<IssuanceResponse, ClientError>> + Send;

    /// `POST /v1/issuances` as a [`DetachedIssuance`], for the test-only fault
    /// [`crate::FaultMode::ReleaseLockOnTimeout`]. `None` (the default) when this link
    /// cannot detach a request; that fault then behaves as the honest kiosk.
    fn request_issuance_detached(&self, _request: &IssuanceRequest) -> Option<DetachedIssuance> {
        None
    }

    /// `GET /v1/municipalities`: every municipality the center serves (本籍地 picker).
    fn municipalities(
        &self,
    ) -> impl Future<Output = Result<MunicipalityDirectory, ClientError>> + Send;

    /// `GET /v1/menu`: what `municipality` offers through `route`, as of the center's
    /// clock.
    fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> impl Future<Output = Result<Menu, ClientError>> + Send;

    /// `POST /v1/domicile-registrations`: a 本籍地 利用登録 approved by the card.
    fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> impl Future<Output = Result<DomicileRegistrationResponse, ClientError>> + Send;

    /// `POST /v1/issuances/{request_id}/payment`: how the resident's payment ended.
    fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send;

    /// `POST /v1/issuances/{request_id}/print`: how printing ended.
    fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send;
}

/// The wire name of a route kind in the menu query (`residence` | `domicile`).
pub fn route_kind_str(route: RouteKind) -> &'static str {
    match route {
        RouteKind::Residence => "residence",
        RouteKind::Domicile => "domicile",
    }
}

/// One answer of the center with how it was reached (the load generator reports it).
#[derive(Clone, Debug)]
pub struct Answered<T> {
    pub value: T,
    /// Base URL of the center that answered.
    pub center_url: String,
    /// How many times this call moved on to the next center URL.
    pub failovers: u32,
    /// The answer's `Server-Timing` header, as sent (informational).
    pub server_timing: Option<String>,
}

/// HTTPS client of the center's kiosk API, presenting the operator's certificate.
///
/// Fail-over: the settings name one or more center URLs (`center_url`, then
/// `fallback_center_urls`). A call that gets no answer (connection refused or reset,
/// timeout, body cut off) is sent, unchanged, to the next URL, each URL at most once
/// per call; every body the kiosk sends carries its idempotency key (or is a read), so
/// the center that answers replays or refuses a duplicate as it would a retry. The
/// URL that answered last is tried first by the next call (clones share it).
#[derive(Clone, Debug)]
pub struct CenterClient {
    http: reqwest::Client,
    /// Center base URLs in fail-over order (at least one, no trailing slash).
    bases: Arc<[String]>,
    /// Index into `bases` of the URL tried first.
    current: Arc<AtomicUsize>,
    /// Fail-overs of every call since this client was made (clones share it).
    failovers: Arc<AtomicU64>,
    kiosk_id: KioskId,
    /// The deadline `http` applies to every call.
    request_timeout: Duration,
}

impl CenterClient {
    pub fn new(settings: &KioskSettings) -> Result<Self, ClientError> {
        let http = mtls::http_client(&settings.tls, settings.request_timeout())?;
        let bases: Arc<[String]> = settings.center_urls().into();
        assert!(!bases.is_empty(), "center_url is always one URL");
        Ok(Self {
            http,
            bases,
            current: Arc::new(AtomicUsize::new(0)),
            failovers: Arc::new(AtomicU64::new(0)),
            kiosk_id: settings.kiosk_id.clone(),
            request_timeout: settings.request_timeout(),
        })
    }

    /// The center base URLs in fail-over order.
    pub fn center_urls(&self) -> &[String] {
        &self.bases
    }

    /// Fail-overs so far (every call of this client and its clones).
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// `POST /v1/challenges` for this client's kiosk.
    pub async fn challenge(&self) -> Result<ChallengeResponse, ClientError> {
        let request = ChallengeRequest {
            kiosk_id: self.kiosk_id.clone(),
        };
        self.post(CHALLENGES_PATH, &request).await
    }

    /// `POST /v1/card-sessions`.
    pub async fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> Result<CardSessionResponse, ClientError> {
        self.post(CARD_SESSIONS_PATH, request).await
    }

    /// `POST /v1/issuances`.
    pub async fn issue(&self, request: &IssuanceRequest) -> Result<IssuanceResponse, ClientError> {
        self.post(ISSUANCES_PATH, request).await
    }

    /// `POST /v1/issuances`, with the center that answered, the fail-overs and the
    /// `Server-Timing` header.
    pub async fn issue_traced(
        &self,
        request: &IssuanceRequest,
    ) -> Result<Answered<IssuanceResponse>, ClientError> {
        self.exchange(ISSUANCES_PATH, |http, url| {
            http.post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(request)
        })
        .await
    }

    /// `POST /v1/issuances` on a clone of this client (same connection pool), under
    /// [`detached_timeout`] instead of the client's own deadline. Sent to the current
    /// center URL only (a test-only fault; no fail-over).
    pub fn issue_detached(&self, request: &IssuanceRequest) -> DetachedIssuance {
        let client = self.clone();
        let url = self.url(self.first_index(), ISSUANCES_PATH);
        let builder = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(request)
            .timeout(detached_timeout(self.request_timeout));
        DetachedIssuance {
            session_wait: self.request_timeout,
            answer: Box::pin(async move {
                client
                    .attempt(&url, builder)
                    .await
                    .map(|(value, _timing)| value)
            }),
        }
    }

    /// `GET /v1/municipalities`.
    pub async fn municipalities(&self) -> Result<MunicipalityDirectory, ClientError> {
        self.get(MUNICIPALITIES_PATH).await
    }

    /// `GET /v1/menu?municipality=CODE&route=residence|domicile`.
    pub async fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> Result<Menu, ClientError> {
        // Both values are fixed-alphabet (6 digits, a snake_case word): no escaping needed.
        let path = format!(
            "{MENU_PATH}?municipality={municipality}&route={}",
            route_kind_str(route)
        );
        self.get(&path).await
    }

    /// `GET /v1/trust-list`: the center's signed trust list (the load generator checks
    /// every seal against it).
    pub async fn trust_list(&self) -> Result<schemas::SignedTrustList, ClientError> {
        self.get(TRUST_LIST_PATH).await
    }

    /// `POST /v1/domicile-registrations`.
    pub async fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> Result<DomicileRegistrationResponse, ClientError> {
        self.post(DOMICILE_REGISTRATIONS_PATH, request).await
    }

    /// `POST /v1/issuances/{request_id}/payment`.
    pub async fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> Result<OutcomeAck, ClientError> {
        // A request id is a UUID: nothing to escape in the path.
        let path = format!("{ISSUANCES_PATH}/{request_id}/payment");
        self.post(&path, report).await
    }

    /// `POST /v1/issuances/{request_id}/print`.
    pub async fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> Result<OutcomeAck, ClientError> {
        let path = format!("{ISSUANCES_PATH}/{request_id}/print");
        self.post(&path, report).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.exchange(path, |http, url| {
            http.get(url)
                .header(reqwest::header::ACCEPT, "application/json")
        })
        .await
        .map(|answered| answered.value)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.exchange(path, |http, url| {
            http.post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(body)
        })
        .await
        .map(|answered| answered.value)
    }

    fn first_index(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.bases.len()
    }

    fn url(&self, index: usize, path: &str) -> String {
        format!("{}/{}", self.bases[index], path.trim_start_matches('/'))
    }

    /// Sends the request built by `build` to the current center URL, and on no answer
    /// to the next ones in turn (each at most once). An answer, even an error body, is
    /// final: only a missing answer moves on.
    async fn exchange<T: DeserializeOwned>(
        &self,
        path: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Answered<T>, ClientError> {
        let count = self.bases.len();
        let first = self.first_index();
        let mut failovers = 0u32;
        for step in 0..count {
            let index = (first + step) % count;
            let url = self.url(index, path);
            match self.attempt(&url, build(&self.http, &url)).await {
                Ok((value, server_timing)) => {
                    if index != first {
                        self.current.store(index, Ordering::Relaxed);
                    }
                    return Ok(Answered {
                        value,
                        center_url: self.bases[index].clone(),
                        failovers,
                        server_timing,
                    });
                }
                Err(error) if error.is_transport() && step + 1 < count => {
                    failovers += 1;
                    self.failovers.fetch_add(1, Ordering::Relaxed);
                    let next = &self.bases[(index + 1) % count];
                    tracing::warn!(endpoint = %url, next_center = %next, error = %error, "no answer from this center; failing over with the same request");
                }
                Err(error) => return Err(error),
            }
        }
        unreachable!("the last URL's attempt always returns")
    }

    /// One HTTP exchange with one center URL: the decoded answer and its
    /// `Server-Timing` header.
    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(T, Option<String>), ClientError> {
        let transport = |source| ClientError::Transport {
            endpoint: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if let Some(id) = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            tracing::debug!(
                endpoint = url,
                status,
                center_request_id = id,
                "center answered"
            );
        }
        let server_timing = response
            .headers()
            .get(schemas::SERVER_TIMING_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A body cut off mid-way is as unknown an outcome as no answer at all.
        let bytes = response.bytes().await.map_err(transport)?;
        decode_response(url, status, &bytes).map(|value| (value, server_timing))
    }
}

impl CenterApi for CenterClient {
    fn request_challenge(
        &self,
        request: &ChallengeRequest,
    ) -> impl Future<Output = Result<ChallengeResponse, ClientError>> + Send {
        self.post(CHALLENGES_PATH, request)
    }

    fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> impl Future<Output = Result<CardSessionResponse, ClientError>> + Send {
        CenterClient::open_card_session(self, request)
    }

    fn request_issuance(
        &self,
        request: &IssuanceRequest,
    ) -> impl Future<Output = Result<IssuanceResponse, ClientError>> + Send {
        self.issue(request)
    }

    fn request_issuance_detached(&self, request: &IssuanceRequest) -> Option<DetachedIssuance> {
        Some(self.issue_detached(request))
    }

    fn municipalities(
        &self,
    ) -> impl Future<Output = Result<MunicipalityDirectory, ClientError>> + Send {
        CenterClient::municipalities(self)
    }

    fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> impl Future<Output = Result<Menu, ClientError>> + Send {
        CenterClient::menu(self, municipality, route)
    }

    fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> impl Future<Output = Result<DomicileRegistrationResponse, ClientError>> + Send {
        CenterClient::register_domicile(self, request)
    }

    fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send {
        CenterClient::report_payment(self, request_id, report)
    }

    fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send {
        CenterClient::report_print(self, request_id, report)
    }
}

/// Maps one HTTP answer to the contract: 2xx → `T`; otherwise the center's
/// [`ErrorBody`] (or, failing that, an error quoting the start of the body).
pub fn decode_response<T: DeserializeOwned>(
    endpoint: &str,
    status: u16,
    body: &[u8],
) -> Result<T, ClientError> {
    let unexpected = |detail: String| ClientError::UnexpectedResponse {
        endpoint: endpoint.to_owned(),
        status,
        detail,
    };
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| unexpected(e.to_string()));
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => Err(ClientError::Rejected {
            endpoint: endpoint.to_owned(),
            status,
            body,
        }),
        Err(_) => Err(unexpected(format!(
            "no error body: {:?}",
            String::from_utf8_lossy(body)
                .chars()
                .take(MAX_QUOTED_BODY_CHARS)
                .collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_decodes_the_contract_type() {
        let body = br#"{"nonce":"AAAA","expires_at_unix_s":1700000000}"#;
        let challenge: ChallengeResponse = decode_response("c", 200, body).unwrap();
        assert_eq!(challenge.nonce.as_slice(), &[0, 0, 0]);
    }

    #[test]
    fn error_body_becomes_rejected_with_status_and_code() {
        let body = br#"{"code":"challenge_used","message":"nonce already used"}"#;
        let err = decode_response::<ChallengeResponse>("c", 409, body).unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::ChallengeUsed));
        assert_eq!(err.http_status(), Some(409));
        assert!(!err.is_transport());
        assert!(err.to_string().contains("challenge_used"));
    }

    #[test]
    fn detached_issuances_wait_ten_timeouts_up_to_two_minutes() {
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(detached_timeout(ms(500)), ms(5_000));
        assert_eq!(detached_timeout(ms(15_000)), ms(120_000));
        // Never shorter than the normal deadline, however long that is.
        assert_eq!(detached_timeout(ms(200_000)), ms(200_000));
    }

    #[test]
    fn anything_else_is_unexpected() {
        let err = decode_response::<ChallengeResponse>("c", 502, b"<html>bad gateway</html>")
            .unwrap_err();
        assert!(matches!(
            err,
            ClientError::UnexpectedResponse { status: 502, .. }
        ));
        assert_eq!(err.error_code(), None);
        let err = decode_response::<ChallengeResponse>("c", 200, b"{}").unwrap_err();
        assert!(matches!(
            err,
            ClientError::UnexpectedResponse { status: 200, .. }
        ));
    }
}
