//! Hostile clients against a running adapter (the LGWAN side: only the center talks to
//! it, but a compromised or broken peer must not wedge it): oversized bodies, malformed
//! JSON, wrong content types, slow clients and idle TLS handshakes. Every refusal is the
//! JSON `ErrorBody` with its stable code, and the adapter keeps serving meanwhile.
//!
//! Raw byte-level clients run through `openssl s_client` with the center's certificate
//! (stdin to the connection; the process exits when the server closes it).

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{spawn_adapter, TestAdapter};
use schemas::{ErrorBody, ErrorCode};

/// The adapter's request-head timeout (10 s), request-body deadline (10 s) or TLS
/// handshake timeout (10 s), plus slack for a loaded CI machine.
const CLOSE_DEADLINE: Duration = Duration::from_secs(25);

const POSTS: [&str; 4] = [
    "/v1/certificates",
    "/v1/catalogue",
    "/v1/domicile-registrations",
    "/v1/issuance-notices",
];

struct Raw {
    child: Child,
}

impl Raw {
    fn open(adapter: &TestAdapter) -> Self {
        let files = &adapter.pki.center;
        let child = Command::new("openssl")
            .args(["s_client", "-quiet", "-no_ign_eof", "-verify_quiet"])
            .arg("-connect")
            .arg(adapter.addr.to_string())
            .arg("-CAfile")
            .arg(&files.ca)
            .arg("-cert")
            .arg(&files.cert)
            .arg("-key")
            .arg(&files.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client (the raw TLS client of these tests) runs");
        Self { child }
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        let stdin = self.child.stdin.as_mut().expect("stdin piped");
        stdin.write_all(bytes).and_then(|()| stdin.flush()).is_ok()
    }

    fn closed(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn finish(mut self, within: Duration) -> Option<String> {
        let started = Instant::now();
        while !self.closed() {
            if started.elapsed() > within {
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

async fn still_serves(adapter: &TestAdapter) {
    let started = Instant::now();
    let response = adapter
        .center
        .get(adapter.url("/health"))
        .send()
        .await
        .expect("adapter answers");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_json_wrong_types_and_content_types_get_stable_json_errors() {
    let adapter = spawn_adapter().await;
    for path in POSTS {
        let post = |content_type: Option<&str>, body: &'static str| {
            let mut request = adapter.center.post(adapter.url(path)).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            request.send()
        };
        for body in ["{", "[]", "null", "{\"payload\": 7}", "{\"a\":1}"] {
            let (status, error) =
                error_of(post(Some("application/json"), body).await.unwrap()).await;
            assert_eq!(
                (status, error.code),
                (400, ErrorCode::BadRequest),
                "{path} {body}"
            );
        }
        for content_type in [None, Some("text/plain")] {
            let (status, error) = error_of(post(content_type, "{}").await.unwrap()).await;
            assert_eq!(
                (status, error.code),
                (415, ErrorCode::UnsupportedMediaType),
                "{path} {content_type:?}"
            );
        }
        let big = format!("{{\"payload\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
        let (status, error) = error_of(
            adapter
                .center
                .post(adapter.url(path))
                .header("content-type", "application/json")
                .body(big)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error.code),
            (413, ErrorCode::PayloadTooLarge),
            "{path}"
        );
    }
    still_serves(&adapter).await;
}

#[tokio::test]
async fn a_chunked_flood_is_cut_at_the_limit() {
    let adapter = spawn_adapter().await;
    let mut raw = Raw::open(&adapter);
    assert!(raw.send(
        b"POST /v1/certificates HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n"
    ));
    let chunk = {
        let data = vec![b' '; 64 * 1024];
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        chunk
    };
    let answer = tokio::task::spawn_blocking(move || {
        for _ in 0..2048 {
            if !raw.send(&chunk) {
                break;
            }
        }
        raw.finish(CLOSE_DEADLINE)
    })
    .await
    .unwrap()
    .expect("the adapter answers and closes a flooding connection");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
    still_serves(&adapter).await;
}

#[tokio::test]
async fn slow_heads_and_bodies_are_cut_off_while_others_are_served() {
    let adapter = spawn_adapter().await;
    let mut slow: Vec<Raw> = (0..50).map(|_| Raw::open(&adapter)).collect();
    for (i, connection) in slow.iter_mut().enumerate() {
        if i % 2 == 0 {
            connection.send(b"POST /v1/certificates HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        } else {
            connection.send(
                b"POST /v1/certificates HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            );
        }
    }
    let started = Instant::now();
    still_serves(&adapter).await;
    while started.elapsed() < CLOSE_DEADLINE + Duration::from_secs(20)
        && slow.iter_mut().any(|c| !c.closed())
    {
        for (i, connection) in slow.iter_mut().enumerate() {
            connection.send(if i % 2 == 0 { b"X" } else { b" " });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    still_serves(&adapter).await;
    let heads: usize = slow
        .iter_mut()
        .step_by(2)
        .map(|c| usize::from(!c.closed()))
        .sum();
    let bodies: usize = slow
        .iter_mut()
        .skip(1)
        .step_by(2)
        .map(|c| usize::from(!c.closed()))
        .sum();
    assert_eq!(
        (heads, bodies),
        (0, 0),
        "slow heads / slow bodies still open after {:?}",
        started.elapsed()
    );
    // A dribbled body is answered (408 with its stable code) before the close.
    let answer = slow
        .swap_remove(1)
        .finish(Duration::from_secs(1))
        .expect("the connection is closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn idle_tls_handshakes_are_bounded_by_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let adapter = spawn_adapter().await;
    let mut closes = tokio::task::JoinSet::new();
    for i in 0..60 {
        let mut stream = tokio::net::TcpStream::connect(adapter.addr).await.unwrap();
        if i % 2 == 0 {
            stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        }
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
    still_serves(&adapter).await;
    let mut open = 0;
    while let Some(closed) = closes.join_next().await {
        open += usize::from(!closed.unwrap());
    }
    assert_eq!(
        open, 0,
        "idle handshakes still open after {CLOSE_DEADLINE:?}"
    );
    still_serves(&adapter).await;
}
