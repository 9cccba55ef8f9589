//! Mutual TLS for both links (kiosk ↔ center, center ↔ municipal adapter).
//!
//! Every party is identified by a URI subject-alternative name in its certificate,
//! issued by the deployment's CA:
//!
//! | role | URI SAN |
//! | --- | --- |
//! | chain operator (kiosk client) | `urn:kofu:operator:<operator id>` |
//! | center (client towards adapters) | `urn:kofu:center` |
//! | municipal adapter (server) | `urn:kofu:adapter:<name>` |
//!
//! TLS proves the certificate chains to the CA; [`PeerRole`] is then checked by each
//! route, so an adapter's certificate cannot be used to call the kiosk API.
//!
//! [`body_deadline`] bounds the time a client has to send its request body, on every
//! listener of the center and the adapter.

pub mod body_deadline;

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use schemas::OperatorId;

pub const URI_OPERATOR_PREFIX: &str = "urn:kofu:operator:";
pub const URI_CENTER: &str = "urn:kofu:center";
pub const URI_ADAPTER_PREFIX: &str = "urn:kofu:adapter:";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("{0} holds no private key")]
    NoKey(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(String),
    #[error("HTTP client: {0}")]
    Client(String),
}

/// How long a server waits for a client to finish the TLS handshake. Generous, because
/// a busy 2-core node doing dozens of handshakes and PDF compositions at once must not
/// drop a kiosk; still bounded, so a stalled client cannot hold a slot for long.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long our servers keep an idle connection open for the client's next request.
pub const SERVER_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// How long our clients keep an idle pooled connection. Shorter than
/// [`SERVER_KEEP_ALIVE`]: a client that reuses a connection just as the server closes
/// it loses that request in flight with no answer (hyper's pool cannot tell it was
/// never read), which for a kiosk means a refunded visit. Dropped first by the client,
/// an idle connection is never caught in that race.
pub const CLIENT_POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const _: () = assert!(CLIENT_POOL_IDLE_TIMEOUT.as_secs() < SERVER_KEEP_ALIVE.as_secs());

/// The crypto provider used everywhere (ring; no C toolchain beyond cc needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(path.display().to_string()))
}

fn root_store(ca_path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca_path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Paths of one party's TLS identity and the CA it trusts.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub ca: std::path::PathBuf,
}

/// The check a server makes of its clients: a certificate chaining to `ca_path`.
pub fn client_verifier(
    ca_path: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let roots = Arc::new(root_store(ca_path)?);
    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

/// Server side: present `cert`, require a client certificate chaining to `ca`.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let verifier = client_verifier(&files.ca)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)?;
    Ok(config)
}

/// Server side for the public: present `cert`, ask for no client certificate (relying
/// parties such as a bank or a landlord have none). `ca` is not read.
pub fn server_config_without_client_auth(
    files: &TlsFiles,
) -> Result<rustls::ServerConfig, TlsError> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)?;
    Ok(config)
}

/// Client side: present `cert`, trust only servers chaining to `ca`.
pub fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(&files.ca)?)
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)?;
    Ok(config)
}

/// Client side for a relying party: no client certificate, trust only servers chaining
/// to `ca_path` (the public listener presents the deployment's server certificate).
pub fn client_config_without_client_auth(ca_path: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store(ca_path)?)
        .with_no_client_auth();
    Ok(config)
}

/// An HTTPS client that presents `files.cert` and trusts only `files.ca`.
pub fn http_client(
    files: &TlsFiles,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, TlsError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(files)?)
        .https_only(true)
        .timeout(timeout)
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(CLIENT_POOL_IDLE_TIMEOUT)
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}

/// An error with its sources, `outer: inner: …`: a transport error's top level says
/// only "error sending request", its cause (a closed connection, a refused handshake,
/// a timeout) is what the operator needs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Who is on the other end of a mutually authenticated connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerRole {
    Operator(OperatorId),
    Center,
    Adapter(String),
    /// The certificate chains to the CA but carries no role we know.
    Unknown,
}

/// The role named by the URI SAN of a DER certificate.
pub fn peer_role(cert: &[u8]) -> PeerRole {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return PeerRole::Unknown;
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return PeerRole::Unknown;
    };
    for name in &san.value.general_names {
        if let x509_parser::extensions::GeneralName::URI(uri) = name {
            if *uri == URI_CENTER {
                return PeerRole::Center;
            }
            if let Some(id) = uri.strip_prefix(URI_OPERATOR_PREFIX) {
                if let Ok(id) = OperatorId::parse(id) {
                    return PeerRole::Operator(id);
                }
            }
            if let Some(name) = uri.strip_prefix(URI_ADAPTER_PREFIX) {
                return PeerRole::Adapter(name.to_owned());
            }
        }
    }
    PeerRole::Unknown
}

/// The verified client certificate of the connection, stored in each request's
/// extensions by [`on_connect`].
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    pub role: PeerRole,
}

/// For `HttpServer::on_connect`: records the client's role on the connection.
pub fn on_connect(connection: &dyn std::any::Any, extensions: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(stream) = connection.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (_, session) = stream.get_ref();
        if let Some(leaf) = session.peer_certificates().and_then(|certs| certs.first()) {
            extensions.insert(PeerCertificate {
                role: peer_role(leaf.as_ref()),
            });
        }
    }
}

/// The role of the caller of `request`, if it presented a client certificate.
pub fn caller_role(request: &actix_web::HttpRequest) -> Option<PeerRole> {
    request
        .conn_data::<PeerCertificate>()
        .map(|peer| peer.role.clone())
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("client error (SendRequest)")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn error_chain_names_every_cause() {
        let error = Outer(Middle(std::io::Error::other(
            "connection closed before message completed",
        )));
        assert_eq!(
            super::error_chain(&error),
            "error sending request: client error (SendRequest): connection closed before \
             message completed"
        );
        assert_eq!(super::error_chain(&std::io::Error::other("alone")), "alone");
    }
}
