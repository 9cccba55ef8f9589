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
    #[error("no answer from {endpoint}: {source}")]
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

/// HTTPS client of the center's kiosk API, presenting the operator's certificate.
#[derive(Clone, Debug)]
pub struct CenterClient {
    http: reqwest::Client,
    challenges_url: String,
    card_sessions_url: String,
    issuances_url: String,
    municipalities_url: String,
    menu_url: String,
    domicile_registrations_url: String,
    kiosk_id: KioskId,
    /// The deadline `http` applies to every call.
    request_timeout: Duration,
}

impl CenterClient {
    pub fn new(settings: &KioskSettings) -> Result<Self, ClientError> {
        let http = mtls::http_client(&settings.tls, settings.request_timeout())?;
        Ok(Self {
            http,
            challenges_url: settings.endpoint(CHALLENGES_PATH),
            card_sessions_url: settings.endpoint(CARD_SESSIONS_PATH),
            issuances_url: settings.endpoint(ISSUANCES_PATH),
            municipalities_url: settings.endpoint(MUNICIPALITIES_PATH),
            menu_url: settings.endpoint(MENU_PATH),
            domicile_registrations_url: settings.endpoint(DOMICILE_REGISTRATIONS_PATH),
            kiosk_id: settings.kiosk_id.clone(),
            request_timeout: settings.request_timeout(),
        })
    }

    /// `POST /v1/challenges` for this client's kiosk.
    pub async fn challenge(&self) -> Result<ChallengeResponse, ClientError> {
        let request = ChallengeRequest {
            kiosk_id: self.kiosk_id.clone(),
        };
        self.post(&self.challenges_url, &request).await
    }

    /// `POST /v1/card-sessions`.
    pub async fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> Result<CardSessionResponse, ClientError> {
        self.post(&self.card_sessions_url, request).await
    }

    /// `POST /v1/issuances`.
    pub async fn issue(&self, request: &IssuanceRequest) -> Result<IssuanceResponse, ClientError> {
        self.post(&self.issuances_url, request).await
    }

    /// `POST /v1/issuances` on a clone of this client (same connection pool), under
    /// [`detached_timeout`] instead of the client's own deadline.
    pub fn issue_detached(&self, request: &IssuanceRequest) -> DetachedIssuance {
        let client = self.clone();
        let builder = self
            .http
            .post(&self.issuances_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(request)
            .timeout(detached_timeout(self.request_timeout));
        DetachedIssuance {
            session_wait: self.request_timeout,
            answer: Box::pin(async move { client.exchange(&client.issuances_url, builder).await }),
        }
    }

    /// `GET /v1/municipalities`.
    pub async fn municipalities(&self) -> Result<MunicipalityDirectory, ClientError> {
        self.get(&self.municipalities_url).await
    }

    /// `GET /v1/menu?municipality=CODE&route=residence|domicile`.
    pub async fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> Result<Menu, ClientError> {
        // Both values are fixed-alphabet (6 digits, a snake_case word): no escaping needed.
        let url = format!(
            "{}?municipality={municipality}&route={}",
            self.menu_url,
            route_kind_str(route)
        );
        self.get(&url).await
    }

    /// `POST /v1/domicile-registrations`.
    pub async fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> Result<DomicileRegistrationResponse, ClientError> {
        self.post(&self.domicile_registrations_url, request).await
    }

    /// `POST /v1/issuances/{request_id}/payment`.
    pub async fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> Result<OutcomeAck, ClientError> {
        // A request id is a UUID: nothing to escape in the path.
        let url = format!("{}/{request_id}/payment", self.issuances_url);
        self.post(&url, report).await
    }

    /// `POST /v1/issuances/{request_id}/print`.
    pub async fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> Result<OutcomeAck, ClientError> {
        let url = format!("{}/{request_id}/print", self.issuances_url);
        self.post(&url, report).await
    }

    async fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, ClientError> {
        let request = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        self.exchange(url, request).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let request = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body);
        self.exchange(url, request).await
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
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
        // A body cut off mid-way is as unknown an outcome as no answer at all.
        let bytes = response.bytes().await.map_err(transport)?;
        decode_response(url, status, &bytes)
    }
}

impl CenterApi for CenterClient {
    fn request_challenge(
        &self,
        request: &ChallengeRequest,
    ) -> impl Future<Output = Result<ChallengeResponse, ClientError>> + Send {
        self.post(&self.challenges_url, request)
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
