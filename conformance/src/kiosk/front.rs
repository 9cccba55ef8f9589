//! The suite center's front door: the HTTPS listener the kiosk under test talks to.
//!
//! It presents the center's own server certificate, requires the chain operator's
//! client certificate (mTLS, the same CA as the center), and forwards every request to
//! the suite's reference center with the operator's identity. Forwarding is plain by
//! default; a scenario switches it to misbehave the way a network or a faulty center
//! can, so the suite can watch what the kiosk does:
//! - [`FrontMode::HoldIssuances`]: the center answers an issuance, the answer reaches
//!   the kiosk only later (a timeout at the kiosk; a late answer);
//! - [`FrontMode::ForeignDocument`]: a prepared answer carries another request's
//!   document (its pages name the other request);
//! - [`FrontMode::RewriteRefusal`]: a refusal names any reason, in words that give it
//!   away;
//! - [`CenterFront::set_impostor`]: the listener presents a certificate from a CA the
//!   kiosk must not trust.
//!
//! Every issuance answer is recorded ([`AnsweredIssuance`]) as the evidence of what the
//! kiosk was told.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::Value;

/// Largest request or answer the front carries (documents are a few hundred KiB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How long the front waits for the suite's center.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// The issuance endpoint whose answers the front can hold or doctor.
const ISSUANCES_PATH: &str = "/v1/issuances";
/// Request headers passed on to the center (the rest are hop-by-hop or TLS-bound).
const FORWARDED_REQUEST_HEADERS: [&str; 3] = ["content-type", "accept", "x-request-id"];
const FORWARDED_ANSWER_HEADERS: [&str; 2] = ["content-type", "x-request-id"];

#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("center front TLS: {0}")]
    Tls(String),
    #[error("center front listener {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// How the front treats the kiosk's requests now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontMode {
    /// Every request and answer passes unchanged.
    PassThrough,
    /// The next `count` issuance answers are held `hold_ms` after the center gave them
    /// (the center has done its work; the kiosk hears late or not at all).
    HoldIssuances { count: u32, hold_ms: u64 },
    /// The next prepared issuance answer carries the document of the last earlier
    /// prepared answer (another request, another resident).
    ForeignDocument,
    /// Every refused issuance answer names `reason` instead of the municipality's, with
    /// a text that gives the reason away (a kiosk must show only the generic message).
    RewriteRefusal { reason: schemas::RefusalReason },
}

/// One issuance answer as the front handed it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredIssuance {
    /// The center's request id in the answer (absent for an error body).
    pub request_id: Option<String>,
    pub http_status: u16,
    /// `prepared` / `refused` (the answer's `status`), when it has one.
    pub outcome: Option<String>,
    /// Held before it went to the kiosk.
    pub held: bool,
    /// Changed by the suite (another request's document, another refusal reason).
    pub doctored: bool,
}

struct FrontState {
    mode: FrontMode,
    answered: Vec<AnsweredIssuance>,
    /// The last prepared answer's request id and document, as the center gave them.
    last_prepared: Option<(String, Value)>,
}

/// Bounds the answers recorded (a scenario looks at a handful).
const MAX_RECORDED_ANSWERS: usize = 1000;

struct Shared {
    upstream: reqwest::Client,
    center_url: String,
    state: Mutex<FrontState>,
    /// Requests forwarded to the center since the front started.
    forwarded: AtomicU64,
    /// Held answers not yet delivered or dropped.
    holds_in_flight: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, FrontState> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an issuance answer and decides what the kiosk gets: the body to send
    /// and how long to hold it.
    fn on_issuance_answer(&self, http_status: u16, body: Vec<u8>) -> (Vec<u8>, Duration) {
        let mut value: Option<Value> = serde_json::from_slice(&body).ok();
        let field = |v: &Option<Value>, key: &str| {
            v.as_ref()
                .and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let request_id = field(&value, "request_id");
        let outcome = field(&value, "status");
        let prepared = outcome.as_deref() == Some("prepared");
        let mut state = self.state();
        let mut hold = Duration::ZERO;
        let mut doctored = false;
        match state.mode {
            FrontMode::PassThrough => {}
            FrontMode::HoldIssuances { count, hold_ms } => {
                hold = Duration::from_millis(hold_ms);
                state.mode = match count {
                    0 | 1 => FrontMode::PassThrough,
                    n => FrontMode::HoldIssuances {
                        count: n - 1,
                        hold_ms,
                    },
                };
            }
            FrontMode::ForeignDocument if prepared => {
                let foreign = state
                    .last_prepared
                    .as_ref()
                    .filter(|(id, _)| Some(id) != request_id.as_ref())
                    .map(|(_, document)| document.clone());
                if let (Some(document), Some(Value::Object(answer))) = (foreign, value.as_mut()) {
                    answer.insert("document".to_owned(), document);
                    doctored = true;
                    state.mode = FrontMode::PassThrough;
                }
            }
            FrontMode::ForeignDocument => {}
            FrontMode::RewriteRefusal { reason } if outcome.as_deref() == Some("refused") => {
                if let Some(Value::Object(answer)) = value.as_mut() {
                    answer.insert("reason".to_owned(), Value::from(reason.as_str()));
                    answer.insert(
                        "message_ja".to_owned(),
                        Value::from(format!("{} のため発行できません。", reason.as_str())),
                    );
                    answer.insert(
                        "message_en".to_owned(),
                        Value::from(format!("Refused: {}.", reason.as_str())),
                    );
                    doctored = true;
                }
            }
            FrontMode::RewriteRefusal { .. } => {}
        }
        if prepared && !doctored {
            if let (Some(id), Some(document)) = (
                request_id.clone(),
                value.as_ref().and_then(|v| v.get("document")).cloned(),
            ) {
                state.last_prepared = Some((id, document));
            }
        }
        if state.answered.len() < MAX_RECORDED_ANSWERS {
            state.answered.push(AnsweredIssuance {
                request_id,
                http_status,
                outcome,
                held: !hold.is_zero(),
                doctored,
            });
        }
        drop(state);
        let body = match (doctored, value) {
            (true, Some(value)) => serde_json::to_vec(&value).unwrap_or(body),
            _ => body,
        };
        (body, hold)
    }
}

/// Counts a held answer until it is delivered or the kiosk hangs up (actix drops the
/// handler then).
struct HoldGuard<'a>(&'a AtomicUsize);

impl<'a> HoldGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server certificate presented: the center's, or the impostor's.
#[derive(Debug)]
struct SwitchableCertificate {
    genuine: Arc<CertifiedKey>,
    impostor: Arc<CertifiedKey>,
    impostor_on: Arc<AtomicBool>,
}

impl ResolvesServerCert for SwitchableCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(if self.impostor_on.load(Ordering::SeqCst) {
            self.impostor.clone()
        } else {
            self.genuine.clone()
        })
    }
}

fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, FrontError> {
    let tls = |e: &dyn std::fmt::Display| FrontError::Tls(e.to_string());
    let certs = mtls::load_certs(cert).map_err(|e| tls(&e))?;
    let key = mtls::load_key(key).map_err(|e| tls(&e))?;
    let signing = mtls::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| tls(&e))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Where the front gets its identities and where it forwards to.
pub struct FrontConfig<'a> {
    /// The center's kiosk-facing server identity and the CA kiosks' certificates
    /// chain to.
    pub center_tls: &'a mtls::TlsFiles,
    /// The operator's client identity the front forwards with.
    pub operator_tls: &'a mtls::TlsFiles,
    /// `https://127.0.0.1:PORT` of the suite's center.
    pub center_url: &'a str,
    /// Where the impostor CA and certificate are written.
    pub impostor_dir: &'a Path,
    /// Listen address (`127.0.0.1:0` for any free port).
    pub listen: SocketAddr,
}

/// The running front.
pub struct CenterFront {
    /// `https://127.0.0.1:PORT`, what the kiosk is configured with.
    pub url: String,
    pub addr: SocketAddr,
    handle: ServerHandle,
    shared: Arc<Shared>,
    impostor_on: Arc<AtomicBool>,
}

impl CenterFront {
    pub fn start(config: FrontConfig<'_>) -> Result<Self, FrontError> {
        let tls = |e: &dyn std::fmt::Display| FrontError::Tls(e.to_string());
        // A CA the kiosk has never seen, issuing a certificate for the same names and
        // role as the center's: only the chain tells them apart.
        std::fs::create_dir_all(config.impostor_dir).map_err(|e| tls(&e))?;
        let impostor_ca = sandbox::pki::Ca::generate("impostor CA").map_err(|e| tls(&e))?;
        let impostor = impostor_ca
            .issue_server(
                "center",
                &["localhost", "127.0.0.1"],
                None,
                config.impostor_dir,
                "impostor-center",
            )
            .map_err(|e| tls(&e))?;
        let impostor_on = Arc::new(AtomicBool::new(false));
        let resolver = SwitchableCertificate {
            genuine: certified_key(&config.center_tls.cert, &config.center_tls.key)?,
            impostor: certified_key(&impostor.cert, &impostor.key)?,
            impostor_on: impostor_on.clone(),
        };
        let verifier = mtls::client_verifier(&config.center_tls.ca).map_err(|e| tls(&e))?;
        let mut server_tls = rustls::ServerConfig::builder_with_provider(mtls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(&e))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(resolver));
        // No session resumption: a resumed session skips the certificate, and every
        // connection must show the certificate switched on at that moment.
        server_tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server_tls.send_tls13_tickets = 0;
        let upstream =
            mtls::http_client(config.operator_tls, UPSTREAM_TIMEOUT).map_err(|e| tls(&e))?;
        let shared = Arc::new(Shared {
            upstream,
            center_url: config.center_url.trim_end_matches('/').to_owned(),
            state: Mutex::new(FrontState {
                mode: FrontMode::PassThrough,
                answered: Vec::new(),
                last_prepared: None,
            }),
            forwarded: AtomicU64::new(0),
            holds_in_flight: AtomicUsize::new(0),
        });
        let listen_error = |source| FrontError::Listen {
            addr: config.listen.to_string(),
            source,
        };
        let listener = TcpListener::bind(config.listen).map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .default_service(web::to(forward))
        })
        .workers(2)
        // Every request on a fresh connection: a certificate switch applies at once.
        .keep_alive(actix_web::http::KeepAlive::Disabled)
        .listen_rustls_0_23(listener, server_tls)
        .map_err(listen_error)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            url: format!("https://127.0.0.1:{}", addr.port()),
            addr,
            handle,
            shared,
            impostor_on,
        })
    }

    pub fn set_mode(&self, mode: FrontMode) {
        self.shared.state().mode = mode;
    }

    /// Presents the impostor's certificate (`true`) or the center's.
    pub fn set_impostor(&self, on: bool) {
        self.impostor_on.store(on, Ordering::SeqCst);
    }

    /// Every issuance answer handed on so far, oldest first.
    pub fn answered(&self) -> Vec<AnsweredIssuance> {
        self.shared.state().answered.clone()
    }

    /// Requests forwarded to the center so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Waits until no held answer is pending (delivered, or the kiosk hung up), at
    /// most `bound`. Returns whether none is pending.
    pub async fn holds_done(&self, bound: Duration) -> bool {
        let started = Instant::now();
        while self.shared.holds_in_flight.load(Ordering::SeqCst) > 0 {
            if started.elapsed() >= bound {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Back to plain forwarding with the center's certificate.
    pub fn reset(&self) {
        self.set_mode(FrontMode::PassThrough);
        self.set_impostor(false);
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

fn bad_gateway(detail: String) -> HttpResponse {
    tracing::warn!(%detail, "center front: no answer from the suite's center");
    HttpResponse::BadGateway()
        .content_type("text/plain; charset=utf-8")
        .body(format!("the suite's center did not answer: {detail}"))
}

async fn forward(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return HttpResponse::MethodNotAllowed().finish();
    };
    let is_issuance = method == reqwest::Method::POST && request.path() == ISSUANCES_PATH;
    let mut upstream = shared
        .upstream
        .request(method, format!("{}{path}", shared.center_url))
        .body(body.to_vec());
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = request.headers().get(name) {
            upstream = upstream.header(name, value.as_bytes());
        }
    }
    let mut answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(e.to_string()),
    };
    let status = answer.status().as_u16();
    let headers: Vec<(HeaderName, HeaderValue)> = FORWARDED_ANSWER_HEADERS
        .iter()
        .filter_map(|name| {
            let value = answer.headers().get(*name)?;
            Some((
                HeaderName::from_static(name),
                HeaderValue::from_bytes(value.as_bytes()).ok()?,
            ))
        })
        .collect();
    let mut bytes = Vec::new();
    loop {
        match answer.chunk().await {
            Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_BODY_BYTES => {
                bytes.extend_from_slice(&chunk);
            }
            Ok(Some(_)) => return bad_gateway(format!("answer over {MAX_BODY_BYTES} bytes")),
            Ok(None) => break,
            Err(e) => return bad_gateway(e.to_string()),
        }
    }
    let (bytes, hold) = if is_issuance {
        shared.on_issuance_answer(status, bytes)
    } else {
        (bytes, Duration::ZERO)
    };
    if !hold.is_zero() {
        let _pending = HoldGuard::new(&shared.holds_in_flight);
        tokio::time::sleep(hold).await;
    }
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
    );
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    response.body(bytes)
}
