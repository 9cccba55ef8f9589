//! Hostile clients against a running center, on both listeners (kiosk mTLS, public
//! HTTPS): oversized bodies, malformed JSON, wrong content types, slow clients
//! dribbling their request, and idle connections that never finish a TLS handshake.
//! Every refusal must be the JSON `ErrorBody` with its stable code, and the server must
//! keep serving others while hostile connections are open.
//!
//! Raw byte-level clients run through `openssl s_client` (TLS with or without a client
//! certificate, stdin to the connection, process exit = the server closed it): the
//! center's test dependencies have no TLS library of their own.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use center::configuration::Settings;
use center::startup::{AppHandle, Application};
use schemas::b64::Base64Bytes;
use schemas::{ErrorBody, ErrorCode, KeyPair, RevocationListBody, Signed};

/// The center's request-head timeout (`startup::CLIENT_REQUEST_TIMEOUT`) and TLS
/// handshake timeout, plus slack for a loaded CI machine.
const CLOSE_DEADLINE: Duration = Duration::from_secs(25);

struct TestCenter {
    dir: PathBuf,
    kiosk_port: u16,
    public_port: u16,
    operator: reqwest::Client,
    public: reqwest::Client,
    handle: AppHandle,
}

impl TestCenter {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("hostile-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = common::TestCa::new(&dir);
        ca.issue("server", &["127.0.0.1", "localhost"], None, true);
        let operator_uri = format!("{}seven", mtls::URI_OPERATOR_PREFIX);
        ca.issue("operator", &[], Some(&operator_uri), false);
        ca.issue("lgwan", &[], Some(mtls::URI_CENTER), false);

        let center = KeyPair::generate();
        let card_authority = KeyPair::generate();
        let now = jiff::Timestamp::now().as_second();
        std::fs::write(dir.join("center.seed"), center.seed_base64()).unwrap();
        let revocation = Signed::sign(
            RevocationListBody {
                issued_at_unix_s: now - 60,
                next_update_unix_s: now + 86_400,
                revoked: vec![],
            },
            &card_authority,
        )
        .unwrap();
        std::fs::write(
            dir.join("revocation.json"),
            serde_json::to_string(&revocation).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("seal.png"),
            composer::render_official_seal_png("美濃加茂市長之印", 128).unwrap(),
        )
        .unwrap();
        let p = |name: &str| dir.join(name).display().to_string();
        let text = format!(
            r#"
kiosk_listen = "127.0.0.1:0"
public_listen = "127.0.0.1:0"
database_url = "sqlite://{db}?mode=rwc"
center_key_path = "{center_key}"
card_authority_public_key = "{card_authority}"
revocation_list_path = "{revocation}"
verify_url = "https://127.0.0.1/verify"
[kiosk_tls]
cert = "{server}"
key = "{server_key}"
ca = "{ca}"
[lgwan_tls]
cert = "{lgwan}"
key = "{lgwan_key}"
ca = "{ca}"
[[municipalities]]
code = "212113"
name = "美濃加茂市"
adapter_url = "https://127.0.0.1:1"
public_keys = ["{municipality_key}"]
seal_image_path = "{seal}"
[[operators]]
id = "seven"
kiosks = ["seven-0001"]
"#,
            db = p("center.db"),
            center_key = p("center.seed"),
            card_authority = Base64Bytes::encode(&card_authority.public().0),
            revocation = p("revocation.json"),
            server = p("server.pem"),
            server_key = p("server.key.pem"),
            ca = p("ca.pem"),
            lgwan = p("lgwan.pem"),
            lgwan_key = p("lgwan.key.pem"),
            municipality_key = Base64Bytes::encode(&KeyPair::generate().public().0),
            seal = p("seal.png"),
        );
        let settings: Settings = toml::from_str(&text).unwrap();
        let app = Application::build(settings).await.expect("center starts");
        let kiosk_port = app.port();
        let public_port = app.public_port().expect("a public listener");
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let operator = mtls::http_client(
            &mtls::TlsFiles {
                cert: dir.join("operator.pem"),
                key: dir.join("operator.key.pem"),
                ca: dir.join("ca.pem"),
            },
            Duration::from_secs(60),
        )
        .unwrap();
        let public = reqwest::Client::builder()
            .use_preconfigured_tls(
                mtls::client_config_without_client_auth(&dir.join("ca.pem")).unwrap(),
            )
            .https_only(true)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            dir,
            kiosk_port,
            public_port,
            operator,
            public,
            handle,
        }
    }

    fn kiosk(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.kiosk_port)
    }

    fn public_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.public_port)
    }

    /// A raw TLS connection: with the operator's certificate for the kiosk listener.
    fn raw(&self, kiosk: bool) -> Raw {
        let port = if kiosk {
            self.kiosk_port
        } else {
            self.public_port
        };
        let mut command = Command::new("openssl");
        command
            .args(["s_client", "-quiet", "-no_ign_eof", "-verify_quiet"])
            .arg("-connect")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(self.dir.join("ca.pem"));
        if kiosk {
            command
                .arg("-cert")
                .arg(self.dir.join("operator.pem"))
                .arg("-key")
                .arg(self.dir.join("operator.key.pem"));
        }
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client (the raw TLS client of these tests) runs");
        Raw { child }
    }

    /// The kiosk API answers a normal request (the server is not starved).
    async fn still_serves(&self) {
        let started = Instant::now();
        let response = self
            .operator
            .get(self.kiosk("/v1/municipalities"))
            .send()
            .await
            .expect("kiosk listener answers");
        assert_eq!(response.status().as_u16(), 200);
        let response = self
            .public
            .get(self.public_url("/v1/trust-list"))
            .send()
            .await
            .expect("public listener answers");
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "normal requests took {:?}",
            started.elapsed()
        );
    }

    async fn stop(self) {
        self.handle.stop(false).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An `openssl s_client` connection.
struct Raw {
    child: Child,
}

impl Raw {
    /// Writes; false once the connection is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        let stdin = self.child.stdin.as_mut().expect("stdin piped");
        stdin.write_all(bytes).and_then(|()| stdin.flush()).is_ok()
    }

    fn closed(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Stops sending and collects what the server answered.
    fn finish(mut self, within: Duration) -> Option<String> {
        let started = Instant::now();
        while !self.closed() {
            if started.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        Some(out)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn error_of(response: reqwest::Response) -> (u16, ErrorBody) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{status} answer is {content_type:?}: {text}"
    );
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}"));
    assert!(!body.message.is_empty(), "{status} without a message");
    (status, body)
}

/// Every JSON route of the kiosk API.
const KIOSK_POSTS: [&str; 6] = [
    "/v1/challenges",
    "/v1/card-sessions",
    "/v1/issuances",
    "/v1/issuances/00000000-0000-4000-8000-000000000000/payment",
    "/v1/issuances/00000000-0000-4000-8000-000000000000/print",
    "/v1/domicile-registrations",
];

#[tokio::test]
async fn malformed_json_wrong_types_and_content_types_get_stable_json_errors() {
    let center = TestCenter::start().await;
    for path in KIOSK_POSTS {
        let post = |content_type: Option<&str>, body: &'static str| {
            let mut request = center.operator.post(center.kiosk(path)).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            request.send()
        };
        for body in [
            "{",
            "[]",
            "null",
            "{\"kiosk_id\": 7}",
            "\u{feff}{}",
            "{\"a\":1}",
        ] {
            let (status, error) =
                error_of(post(Some("application/json"), body).await.unwrap()).await;
            assert_eq!(
                (status, error.code),
                (400, ErrorCode::BadRequest),
                "{path} {body}"
            );
        }
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (status, error) = error_of(post(content_type, "{}").await.unwrap()).await;
            assert_eq!(
                (status, error.code),
                (415, ErrorCode::UnsupportedMediaType),
                "{path} {content_type:?}"
            );
        }
    }
    // Wrong method and unknown path: JSON too.
    let (status, error) = error_of(
        center
            .operator
            .get(center.kiosk("/v1/challenges"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.code), (405, ErrorCode::MethodNotAllowed));
    let (status, error) = error_of(
        center
            .operator
            .get(center.kiosk("/v1/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.code), (404, ErrorCode::NotFound));
    center.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_and_the_server_keeps_serving() {
    let center = TestCenter::start().await;
    // Declared length over the bound: refused from the head.
    let body = format!("{{\"kiosk_id\":\"{}\"}}", "a".repeat(70 * 1024));
    let (status, error) = error_of(
        center
            .operator
            .post(center.kiosk("/v1/challenges"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.code), (413, ErrorCode::PayloadTooLarge));
    // The same client goes on (a fresh or a kept connection, either is clean).
    center.still_serves().await;

    let (status, error) = error_of(
        center
            .public
            .post(center.public_url("/v1/verify"))
            .header("content-type", "text/plain")
            .body(vec![b'A'; 70 * 1024])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error.code), (413, ErrorCode::PayloadTooLarge));
    center.still_serves().await;
    center.stop().await;
}

/// A chunked body without a declared length streams far past the bound: the answer is
/// 413 after at most the bound was read, and the server's memory does not grow with
/// what the client sends (it does not buffer beyond its limit).
#[tokio::test]
async fn a_chunked_flood_is_cut_at_the_limit_without_buffering_it() {
    let center = TestCenter::start().await;
    let rss_before = rss_kib();
    let mut raw = center.raw(true);
    assert!(raw.send(
        b"POST /v1/challenges HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n"
    ));
    let chunk = {
        let data = vec![b' '; 64 * 1024];
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        chunk
    };
    // 256 MiB offered; the server must stop reading long before.
    let mut sent_chunks = 0;
    let flood = tokio::task::spawn_blocking(move || {
        for _ in 0..4096 {
            if !raw.send(&chunk) {
                break;
            }
            sent_chunks += 1;
        }
        (raw.finish(CLOSE_DEADLINE), sent_chunks)
    });
    let (answer, sent_chunks) = flood.await.unwrap();
    let answer = answer.expect("the server answers and closes a flooding connection");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
    let grown_kib = rss_kib().saturating_sub(rss_before);
    assert!(
        grown_kib < 64 * 1024,
        "the server grew by {grown_kib} KiB while refusing {sent_chunks} chunks of 64 KiB"
    );
    center.still_serves().await;
    center.stop().await;
}

/// Resident set of this process (the center runs in it), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Fifty clients dribble their request heads a byte at a time (slowloris) on both
/// listeners: a normal request still succeeds meanwhile, and the server closes every
/// slow connection after its request timeout.
#[tokio::test]
async fn slow_request_heads_are_cut_off_while_others_are_served() {
    let center = TestCenter::start().await;
    let mut slow: Vec<Raw> = (0..50).map(|i| center.raw(i % 2 == 0)).collect();
    let started = Instant::now();
    let head = b"POST /v1/challenges HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (i, byte) in head.iter().enumerate().take(8) {
        for connection in &mut slow {
            connection.send(&[*byte]);
        }
        if i == 2 {
            center.still_serves().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    center.still_serves().await;
    // Keep dribbling until each is cut off.
    while started.elapsed() < CLOSE_DEADLINE && slow.iter_mut().any(|c| !c.closed()) {
        for connection in &mut slow {
            connection.send(b"a");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let open = slow
        .iter_mut()
        .map(|c| usize::from(!c.closed()))
        .sum::<usize>();
    assert_eq!(
        open, 0,
        "{open} slow connections still open after {CLOSE_DEADLINE:?}"
    );
    center.still_serves().await;
    center.stop().await;
}

/// A client that sends a complete head and then dribbles the body it announced: the
/// server must not hold the connection (and a worker's attention) open forever.
#[tokio::test]
async fn a_slow_body_is_cut_off_while_others_are_served() {
    let center = TestCenter::start().await;
    let mut slow: Vec<Raw> = (0..50).map(|i| center.raw(i % 2 == 0)).collect();
    for (i, connection) in slow.iter_mut().enumerate() {
        let path = if i % 2 == 0 {
            "/v1/challenges"
        } else {
            "/v1/verify"
        };
        let content_type = if i % 2 == 0 {
            "application/json"
        } else {
            "text/plain"
        };
        connection.send(
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
                 Content-Length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        );
    }
    let started = Instant::now();
    center.still_serves().await;
    while started.elapsed() < CLOSE_DEADLINE + Duration::from_secs(20)
        && slow.iter_mut().any(|c| !c.closed())
    {
        for connection in &mut slow {
            connection.send(b" ");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    center.still_serves().await;
    let open = slow
        .iter_mut()
        .map(|c| usize::from(!c.closed()))
        .sum::<usize>();
    assert_eq!(
        open,
        0,
        "{open} connections dribbling a body still open after {:?}",
        started.elapsed()
    );
    // Each was told why, on the kiosk API and on the public listener alike.
    for (i, connection) in slow.into_iter().take(2).enumerate() {
        let answer = connection
            .finish(Duration::from_secs(1))
            .expect("the connection is closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{i}: {answer}");
        assert!(
            answer.contains("\"code\":\"request_timeout\""),
            "{i}: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{i}: {answer}"
        );
    }
    center.stop().await;
}

/// Connections that open TCP and never complete (or never start) the TLS handshake are
/// closed after the handshake timeout; the listeners keep serving meanwhile.
#[tokio::test]
async fn idle_tls_handshakes_are_bounded_by_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let center = TestCenter::start().await;
    let mut idle = Vec::new();
    for i in 0..100u16 {
        let port = if i % 2 == 0 {
            center.kiosk_port
        } else {
            center.public_port
        };
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        if i % 4 < 2 {
            // Half a TLS record header: a handshake that never completes.
            stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        }
        idle.push(stream);
    }
    center.still_serves().await;
    let started = Instant::now();
    let mut closes = tokio::task::JoinSet::new();
    for mut stream in idle {
        closes.spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match tokio::time::timeout(CLOSE_DEADLINE, stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => continue,
                    Err(_) => return false,
                }
            }
        });
    }
    let mut open = 0;
    while let Some(closed) = closes.join_next().await {
        open += usize::from(!closed.unwrap());
    }
    assert_eq!(
        open,
        0,
        "{open} idle handshakes still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "closed too early ({:?}): the timeout is the handshake timeout, not an error",
        started.elapsed()
    );
    center.still_serves().await;
    center.stop().await;
}
