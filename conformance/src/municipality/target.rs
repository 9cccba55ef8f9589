//! The adapter under test and the suite's HTTP exchanges with it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use municipal_adapter::configuration::CatalogueSettings;
use municipal_adapter::{Application, FaultMode, FaultSettings, MunicipalitySettings, Settings};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType,
};
use schemas::{AdapterInfo, KeyPair, MunicipalityCode, PublicKey};

use super::residents;
use mtls::error_chain;

/// Largest response body the suite reads (a signed answer of ten pages is well below).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Timeout of a single exchange when no deadline applies.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("reference adapter: {0}")]
    Reference(String),
    #[error("target configuration: {0}")]
    Config(String),
    #[error("target {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("a fault mode can only be set on the reference target")]
    FaultOnUrl,
}

/// What a municipality operator supplies to test its own adapter.
#[derive(Clone, Debug)]
pub struct UrlTarget {
    pub url: String,
    /// File with the base64 seed of the center key the adapter was configured to trust.
    pub center_key_file: PathBuf,
    /// The center-role client certificate and key, and the CA of the adapter's server
    /// certificate.
    pub tls: mtls::TlsFiles,
    /// The municipality's public key (base64).
    pub municipality_key: PublicKey,
    pub municipality: MunicipalityCode,
}

#[derive(Clone, Debug)]
pub enum TargetSpec {
    Reference,
    Url(UrlTarget),
}

struct Reference {
    handle: actix_web::dev::ServerHandle,
    dir: PathBuf,
}

/// A running target and the suite's center identity towards it.
pub struct Target {
    pub base_url: String,
    pub client: reqwest::Client,
    pub center_key: KeyPair,
    pub municipality_key: PublicKey,
    pub code: MunicipalityCode,
    pub info: Option<AdapterInfo>,
    reference: Option<Reference>,
    label: String,
}

/// One HTTP exchange as the suite saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub elapsed_ms: u64,
}

impl Exchange {
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"))
    }
}

impl Target {
    pub async fn start(spec: TargetSpec, fault: Option<FaultMode>) -> Result<Self, SetupError> {
        let mut target = match spec {
            TargetSpec::Reference => start_reference(fault.unwrap_or_default()).await?,
            TargetSpec::Url(url) => {
                if fault.is_some() {
                    return Err(SetupError::FaultOnUrl);
                }
                connect_url(url)?
            }
        };
        let info = target
            .get("/v1/info")
            .await
            .map_err(|detail| SetupError::Unreachable {
                url: target.base_url.clone(),
                detail,
            })?;
        target.info = serde_json::from_slice::<AdapterInfo>(&info.body).ok();
        Ok(target)
    }

    pub fn label(&self) -> String {
        self.label.clone()
    }

    /// `software version` from `/v1/info`.
    pub fn software(&self) -> Option<String> {
        self.info
            .as_ref()
            .map(|i| format!("{} {}", i.software, i.version))
    }

    pub async fn stop(self) {
        if let Some(reference) = self.reference {
            reference.handle.stop(true).await;
            let _ = std::fs::remove_dir_all(&reference.dir);
        }
    }

    pub async fn get(&self, path: &str) -> Result<Exchange, String> {
        let request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .timeout(EXCHANGE_TIMEOUT);
        exchange(request).await
    }

    /// POSTs `body` (JSON bytes); the exchange is abandoned after `timeout` (the suite,
    /// as the center, never accepts an answer after the fetch's deadline).
    pub async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Exchange, String> {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .timeout(timeout)
            .body(body);
        exchange(request).await
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<Exchange, String> {
    let started = Instant::now();
    let mut response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "response body larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Exchange {
        status,
        content_type,
        body,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn connect_url(url: UrlTarget) -> Result<Target, SetupError> {
    let seed = std::fs::read_to_string(&url.center_key_file).map_err(|e| {
        SetupError::Config(format!("center key {}: {e}", url.center_key_file.display()))
    })?;
    let center_key = KeyPair::from_seed_base64(seed.trim())
        .map_err(|e| SetupError::Config(format!("center key: {e}")))?;
    let client = mtls::http_client(&url.tls, EXCHANGE_TIMEOUT)
        .map_err(|e| SetupError::Config(format!("TLS files: {e}")))?;
    let base_url = url.url.trim_end_matches('/').to_owned();
    if !base_url.starts_with("https://") {
        return Err(SetupError::Config(format!(
            "target URL must be https:// (mTLS): {base_url}"
        )));
    }
    if url.municipality.to_string() != residents::SUITE_CODE {
        return Err(SetupError::Config(format!(
            "the suite's residents are bound to municipality code {} (their card serials start with it); \
             import conformance/residents into a test tenant with that code",
            residents::SUITE_CODE
        )));
    }
    Ok(Target {
        label: base_url.clone(),
        base_url,
        client,
        center_key,
        municipality_key: url.municipality_key,
        code: url.municipality,
        info: None,
        reference: None,
    })
}

fn reference_error(context: &str, error: impl std::fmt::Display) -> SetupError {
    SetupError::Reference(format!("{context}: {error}"))
}

struct Ca {
    issuer: Issuer<'static, rcgen::KeyPair>,
}

fn leaf(
    ca: &Ca,
    dir: &Path,
    name: &str,
    uri: &str,
    server: bool,
    ca_path: &Path,
) -> Result<mtls::TlsFiles, SetupError> {
    let pki = |e: rcgen::Error| reference_error("PKI", e);
    let key = rcgen::KeyPair::generate().map_err(pki)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .subject_alt_names
        .push(SanType::URI(uri.try_into().map_err(pki)?));
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = params.signed_by(&key, &ca.issuer).map_err(pki)?;
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert_path, cert.pem()).map_err(|e| reference_error("PKI", e))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(|e| reference_error("PKI", e))?;
    Ok(mtls::TlsFiles {
        cert: cert_path,
        key: key_path,
        ca: ca_path.to_owned(),
    })
}

/// The reference adapter in-process: fresh temp directory, CA, server and center
/// certificates, municipality key, the suite residents imported, loopback port.
async fn start_reference(fault: FaultMode) -> Result<Target, SetupError> {
    let dir = std::env::temp_dir().join(format!("kofu-conformance-{}", uuid::Uuid::new_v4()));
    let result = start_reference_in(&dir, fault).await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn start_reference_in(dir: &Path, fault: FaultMode) -> Result<Target, SetupError> {
    let io = |context: &'static str| move |e: std::io::Error| reference_error(context, e);
    let pki_dir = dir.join("pki");
    std::fs::create_dir_all(&pki_dir).map_err(io("temp dir"))?;
    let pki = |e: rcgen::Error| reference_error("PKI", e);
    let ca_key = rcgen::KeyPair::generate().map_err(pki)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "kofu conformance CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = params.self_signed(&ca_key).map_err(pki)?;
    let ca_path = pki_dir.join("ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).map_err(io("CA"))?;
    let ca = Ca {
        issuer: Issuer::new(params, ca_key),
    };
    let server = leaf(
        &ca,
        &pki_dir,
        "adapter-conformance",
        "urn:kofu:adapter:conformance",
        true,
        &ca_path,
    )?;
    let center = leaf(&ca, &pki_dir, "center", mtls::URI_CENTER, false, &ca_path)?;

    let center_key = KeyPair::generate();
    let municipality_key = KeyPair::generate();
    let key_path = dir.join("municipality.seed");
    std::fs::write(&key_path, municipality_key.seed_base64()).map_err(io("key"))?;
    let register_dir = dir.join("register");
    residents::write_all(&residents::shipped(), &register_dir).map_err(io("residents"))?;
    let code = MunicipalityCode::parse(residents::SUITE_CODE)
        .map_err(|e| reference_error("suite code", e))?;

    let settings = Settings {
        listen: "127.0.0.1:0".to_owned(),
        database_url: format!("sqlite://{}?mode=rwc", dir.join("adapter.db").display()),
        center_public_key: center_key.public(),
        tls: server,
        fault: FaultSettings {
            mode: fault,
            delay_ms: 0,
        },
        municipalities: vec![MunicipalitySettings {
            code,
            name: residents::SUITE_NAME.to_owned(),
            prefecture: residents::SUITE_PREFECTURE.to_owned(),
            mayor_title: format!("{}長", residents::SUITE_NAME),
            mayor_name: residents::SUITE_MAYOR.to_owned(),
            signing_key_path: key_path,
            register_dir,
            catalogue: CatalogueSettings::default(),
        }],
    };
    settings
        .validate()
        .map_err(|e| reference_error("settings", e))?;
    settings.fault.warn_if_active();
    let app = Application::build(settings)
        .await
        .map_err(|e| reference_error("start", e))?;
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client =
        mtls::http_client(&center, EXCHANGE_TIMEOUT).map_err(|e| reference_error("client", e))?;
    Ok(Target {
        base_url: format!("https://127.0.0.1:{port}"),
        client,
        center_key,
        municipality_key: municipality_key.public(),
        code,
        info: None,
        reference: Some(Reference {
            handle,
            dir: dir.to_owned(),
        }),
        label: "reference".to_owned(),
    })
}
