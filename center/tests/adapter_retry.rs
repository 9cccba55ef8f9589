//! The center's adapter client and a pooled keep-alive connection the adapter side has
//! already given up (after an earlier call timed out, or a restart behind a balancer):
//! the next call on it fails before any answer, and the client re-sends once on a fresh
//! connection instead of reporting `municipality_unavailable`.
//!
//! A TCP relay between the client and a small mTLS server stands in for the dead
//! connection: once told to, it closes the next connection that sends a byte, without
//! forwarding it, exactly as a peer that closed an idle connection while the client's
//! request was on its way.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use center::adapter_client::{AdapterClient, UpstreamError};
use schemas::{
    CertificateType, Digest32, IssuanceNotice, IssuanceNoticeAck, KeyPair, KioskId, OperatorId,
    RequestId, Signed,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("adapter-retry-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = common::TestCa::new(&dir);
        let adapter_uri = format!("{}212113", mtls::URI_ADAPTER_PREFIX);
        ca.issue(
            "adapter",
            &["127.0.0.1", "localhost"],
            Some(&adapter_uri),
            true,
        );
        ca.issue("center", &[], Some(mtls::URI_CENTER), false);
        Self { dir }
    }

    fn files(&self, stem: &str) -> mtls::TlsFiles {
        mtls::TlsFiles {
            cert: self.dir.join(format!("{stem}.pem")),
            key: self.dir.join(format!("{stem}.key.pem")),
            ca: self.dir.join("ca.pem"),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Relays TCP to `upstream`; once `kill_next` is set, the next connection that sends
/// anything is closed without forwarding it (and the flag is cleared).
async fn relay(listener: TcpListener, upstream: std::net::SocketAddr, kill_next: Arc<AtomicBool>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let kill_next = Arc::clone(&kill_next);
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let down = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let read = match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                if kill_next.swap(false, Ordering::SeqCst) {
                    break;
                }
                if server_write.write_all(&buffer[..read]).await.is_err() {
                    break;
                }
            }
            // Dropping both halves closes the client's connection and the server's.
            down.abort();
        });
    }
}

fn notice() -> schemas::SignedIssuanceNotice {
    Signed::sign(
        IssuanceNotice {
            request_id: RequestId(uuid::Uuid::new_v4()),
            municipality_code: "212113".parse().unwrap(),
            card_digest: Digest32([3; 32]),
            certificate_type: CertificateType::IncomeTax,
            copies: 1,
            page_count: 1,
            total_fee_yen: 300,
            document_sha256: Digest32([10; 32]),
            operator_id: OperatorId::parse("seven").unwrap(),
            kiosk_id: KioskId::parse("seven-0001").unwrap(),
            printed_at_unix_ms: 1_700_000_000_000,
        },
        &KeyPair::generate(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_call_on_a_pooled_connection_the_peer_closed_is_resent_on_a_fresh_one() {
    let pki = Pki::new();
    let calls = web::Data::new(AtomicUsize::new(0));
    let server_calls = calls.clone();
    let server_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server_addr = server_listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new().app_data(server_calls.clone()).route(
            "/v1/issuance-notices",
            web::post().to(
                |calls: web::Data<AtomicUsize>,
                 notice: web::Json<schemas::SignedIssuanceNotice>| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    HttpResponse::Ok().json(IssuanceNoticeAck {
                        request_id: notice.payload.request_id,
                        recorded: true,
                    })
                },
            ),
        )
    })
    .workers(1)
    .listen_rustls_0_23(
        server_listener,
        mtls::server_config(&pki.files("adapter")).unwrap(),
    )
    .unwrap()
    .run();
    let server_handle = server.handle();
    tokio::spawn(server);

    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        relay_listener.local_addr().unwrap().port()
    );
    let kill_next = Arc::new(AtomicBool::new(false));
    let relay_task = tokio::spawn(relay(relay_listener, server_addr, Arc::clone(&kill_next)));

    let client = AdapterClient::new(&pki.files("center"), Duration::from_secs(30)).unwrap();
    let timeout = Duration::from_secs(10);
    // The first call leaves its connection in the pool.
    let first = notice();
    let ack = client.send_notice(&url, &first, timeout).await.unwrap();
    assert_eq!(ack.request_id, first.payload.request_id);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The pooled connection dies under the next request; the client re-sends it.
    kill_next.store(true, Ordering::SeqCst);
    let second = notice();
    let answer = client.send_notice(&url, &second, timeout).await;
    assert!(
        !kill_next.load(Ordering::SeqCst),
        "the relay did not cut the pooled connection: the test proves nothing"
    );
    let ack = match answer {
        Ok(ack) => ack,
        Err(UpstreamError::Unavailable(reason)) => {
            panic!("the closed pooled connection surfaced as unavailable: {reason}")
        }
        Err(other) => panic!("{other}"),
    };
    assert_eq!(ack.request_id, second.payload.request_id);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the cut request never reached the server; the re-send did, once"
    );

    // A peer that is really gone stays `unavailable` (no retry loop), within the deadline.
    server_handle.stop(false).await;
    relay_task.abort();
    let started = std::time::Instant::now();
    let gone = client.send_notice(&url, &notice(), timeout).await;
    assert!(
        matches!(gone, Err(UpstreamError::Unavailable(_))),
        "{gone:?}"
    );
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
}
