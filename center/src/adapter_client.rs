//! The center's side of the closed link to municipal adapters (mTLS with the
//! center's client certificate; the adapter's server certificate must chain to the
//! deployment CA).

use std::time::Duration;

use schemas::{ErrorBody, RequestId, SignedCertificateAnswer, SignedCertificateFetch};

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

/// Upper bound on an adapter answer (a long 戸籍 with seals stays far below it).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct AdapterClient {
    http: reqwest::Client,
}

impl AdapterClient {
    pub fn new(tls: &mtls::TlsFiles, max_timeout: Duration) -> Result<Self, mtls::TlsError> {
        Ok(Self {
            http: mtls::http_client(tls, max_timeout)?,
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
        let call = async {
            let response = self
                .http
                .post(format!("{adapter_url}/v1/certificates"))
                .header("x-request-id", request_id.to_string())
                .timeout(timeout)
                .json(fetch)
                .send()
                .await
                .map_err(classify)?;
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
        // The outer timeout also bounds connection set-up and body reading; when it
        // fires the future is dropped, so a late answer is never seen, let alone used.
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }
}

fn classify(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unavailable(error.to_string())
    }
}
