//! The center's side of the closed link to municipal adapters (mTLS with the
//! center's client certificate; the adapter's server certificate must chain to the
//! deployment CA).

use std::time::Duration;

use schemas::{
    ErrorBody, IssuanceNoticeAck, RequestId, SignedCatalogue, SignedCatalogueRequest,
    SignedCertificateAnswer, SignedCertificateFetch, SignedDomicileRegistrationReceipt,
    SignedDomicileRegistrationSubmit, SignedIssuanceNotice,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("municipality did not answer in time")]
    Timeout,
    #[error("municipality unreachable: {0}")]
    Unavailable(String),
    #[error("municipality answered {status}: {body:?}")]
    Rejected {
        status: u16,
        body: Option<ErrorBody>,
    },
    #[error("municipality answer is malformed: {0}")]
    Malformed(String),
}

impl UpstreamError {
    /// A short stable name for logs and alerts.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Timeout => "timeout",
            UpstreamError::Unavailable(_) => "unavailable",
            UpstreamError::Rejected { .. } => "rejected",
            UpstreamError::Malformed(_) => "malformed",
        }
    }
}

/// The center's request id on calls to an adapter, for the adapter's logs only: the
/// signed body stays authoritative.
pub const REQUEST_ID_HEADER: &str = "x-kofu-request-id";

/// Upper bound on an adapter answer (a long 戸籍 with seals, or a catalogue, stays far
/// below it).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct AdapterClient {
    /// Keeps connections alive between calls (the usual path).
    http: reqwest::Client,
    /// Never reuses a connection: the one re-send after a transport failure goes out on
    /// it, so it cannot meet a second stale pooled connection.
    fresh: reqwest::Client,
}

impl AdapterClient {
    pub fn new(tls: &mtls::TlsFiles, max_timeout: Duration) -> Result<Self, mtls::TlsError> {
        let fresh = reqwest::Client::builder()
            .use_preconfigured_tls(mtls::client_config(tls)?)
            .https_only(true)
            .timeout(max_timeout)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| mtls::TlsError::Client(e.to_string()))?;
        Ok(Self {
            http: mtls::http_client(tls, max_timeout)?,
            fresh,
        })
    }

    /// Sends one signed fetch; `timeout` is what is left of the request's deadline.
    pub async fn fetch(
        &self,
        adapter_url: &str,
        fetch: &SignedCertificateFetch,
        request_id: RequestId,
        timeout: Duration,
    ) -> Result<SignedCertificateAnswer, UpstreamError> {
        self.post(
            &format!("{adapter_url}/v1/certificates"),
            fetch,
            Some(request_id),
            timeout,
        )
        .await
    }

    /// Asks for the municipality's current signed catalogue (`POST /v1/catalogue`).
    pub async fn catalogue(
        &self,
        adapter_url: &str,
        request: &SignedCatalogueRequest,
        timeout: Duration,
    ) -> Result<SignedCatalogue, UpstreamError> {
        self.post(
            &format!("{adapter_url}/v1/catalogue"),
            request,
            None,
            timeout,
        )
        .await
    }

    /// Forwards a 本籍地 利用登録 (`POST /v1/domicile-registrations`).
    pub async fn submit_domicile_registration(
        &self,
        adapter_url: &str,
        submit: &SignedDomicileRegistrationSubmit,
        timeout: Duration,
    ) -> Result<SignedDomicileRegistrationReceipt, UpstreamError> {
        self.post(
            &format!("{adapter_url}/v1/domicile-registrations"),
            submit,
            Some(submit.payload.registration_id),
            timeout,
        )
        .await
    }

    /// Delivers an outcome notice (`POST /v1/issuance-notices`); idempotent at the
    /// adapter, so a retry after a lost answer is safe.
    pub async fn send_notice(
        &self,
        adapter_url: &str,
        notice: &SignedIssuanceNotice,
        timeout: Duration,
    ) -> Result<IssuanceNoticeAck, UpstreamError> {
        self.post(
            &format!("{adapter_url}/v1/issuance-notices"),
            notice,
            Some(notice.payload.request_id),
            timeout,
        )
        .await
    }

    async fn post<Body: Serialize, Answer: DeserializeOwned>(
        &self,
        url: &str,
        body: &Body,
        request_id: Option<RequestId>,
        timeout: Duration,
    ) -> Result<Answer, UpstreamError> {
        let started = tokio::time::Instant::now();
        let call = async {
            let response = match self.send(&self.http, url, body, request_id, timeout).await {
                Ok(response) => response,
                // A pooled keep-alive connection the adapter already closed (e.g. after
                // an earlier call timed out) fails at once, before any answer. Every
                // call is idempotent at the adapter (same signed body, same request
                // id), so one re-send on a fresh connection is safe; it gets what is
                // left of the deadline.
                Err(error) if failed_before_any_answer(&error) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(classify(error));
                    }
                    tracing::info!(
                        %error,
                        url,
                        left_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                        "adapter call failed before any answer; re-sending once on a fresh connection"
                    );
                    self.send(&self.fresh, url, body, request_id, left)
                        .await
                        .map_err(classify)?
                }
                Err(error) => return Err(classify(error)),
            };
            let status = response.status();
            let bytes = response.bytes().await.map_err(classify)?;
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(UpstreamError::Malformed(format!(
                    "answer of {} bytes",
                    bytes.len()
                )));
            }
            if !status.is_success() {
                return Err(UpstreamError::Rejected {
                    status: status.as_u16(),
                    body: serde_json::from_slice(&bytes).ok(),
                });
            }
            serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Malformed(e.to_string()))
        };
        // The outer timeout also bounds connection set-up, the re-send and body reading;
        // when it fires the future is dropped, so a late answer is never seen, let alone
        // used.
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// One request on `http`; resolves with the answer's head.
    async fn send<Body: Serialize>(
        &self,
        http: &reqwest::Client,
        url: &str,
        body: &Body,
        request_id: Option<RequestId>,
        timeout: Duration,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut builder = http.post(url).timeout(timeout).json(body);
        if let Some(request_id) = request_id {
            let id = request_id.to_string();
            // `x-request-id` is the adapter's correlation id for the HTTP exchange
            // (echoed back); `x-kofu-request-id` names the center's request.
            builder = builder
                .header("x-request-id", &id)
                .header(REQUEST_ID_HEADER, id);
        }
        builder.send().await
    }
}

/// A transport failure before the answer's head arrived (connection refused, reset or
/// closed by the peer): not a time-out, not a malformed answer.
fn failed_before_any_answer(error: &reqwest::Error) -> bool {
    !error.is_timeout() && (error.is_connect() || error.is_request())
}

fn classify(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unavailable(mtls::error_chain(&error))
    }
}
