//! A TCP proxy that adds latency to a link without looking inside it (TLS passes
//! through untouched): the fault tests put it between the center and one adapter by
//! pointing the center's `adapter_url` for a municipality at its port.
//!
//! Two knobs, both changeable while the proxy runs:
//! - per-direction latency (`upstream_ms` client→server, `downstream_ms` server→client):
//!   every chunk is delivered that long after it was read, in order, pipelined, the way
//!   a slow link behaves;
//! - `response_hold_ms`: once a connection's handshake is over, the server's bytes are
//!   held that long (a slow municipality). The handshake itself is not held, so the
//!   request reaches the adapter and the adapter answers: only its answer comes late.
//!
//! "Handshake over" is decided by turn-taking, not by parsing TLS: the server's first
//! flight (TLS 1.3 ServerHello … Finished) goes through at once; anything the server
//! sends after the client spoke again (its Finished and the HTTP request) is an answer.
//! Both parties use rustls with TLS 1.3, where this holds (the client's early
//! ChangeCipherSpec does not count as speaking).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Bytes read per chunk.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks queued per direction before the reader waits (bounds memory per connection).
const QUEUE_CHUNKS: usize = 256;

/// Delays in force now; every field in milliseconds.
#[derive(Debug, Default)]
pub struct Knobs {
    pub upstream_ms: AtomicU64,
    pub downstream_ms: AtomicU64,
    pub response_hold_ms: AtomicU64,
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// Server chunks that were held by `response_hold_ms`.
    pub held_chunks: AtomicU64,
}

/// A running proxy; dropping it stops accepting (open connections end with their peers).
pub struct LatencyProxy {
    port: u16,
    knobs: Arc<Knobs>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let knobs = Arc::new(Knobs::default());
        let accept_knobs = Arc::clone(&knobs);
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                accept_knobs.connections.fetch_add(1, Ordering::Relaxed);
                let knobs = Arc::clone(&accept_knobs);
                tokio::spawn(async move {
                    // A refused upstream closes the client: what a dead host looks like.
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, knobs).await;
                    }
                });
            }
        });
        Ok(Self {
            port,
            knobs,
            accept_task,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`: what the center's `adapter_url` becomes.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Latency added to each direction of every connection from now on.
    pub fn set_latency_ms(&self, upstream_ms: u64, downstream_ms: u64) {
        self.knobs.upstream_ms.store(upstream_ms, Ordering::SeqCst);
        self.knobs
            .downstream_ms
            .store(downstream_ms, Ordering::SeqCst);
    }

    /// How long the server's answers are held from now on (0: not at all).
    pub fn set_response_hold_ms(&self, hold_ms: u64) {
        self.knobs.response_hold_ms.store(hold_ms, Ordering::SeqCst);
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Which way a chunk travels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Upstream,
    Downstream,
}

async fn relay(client: TcpStream, server: TcpStream, knobs: Arc<Knobs>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Turn-taking (see the module comment): set once the server has sent its first
    // flight, then `answering` once the client speaks after it.
    let server_spoke = Arc::new(AtomicBool::new(false));
    let answering = Arc::new(AtomicBool::new(false));
    let up = pump(
        client_read,
        server_write,
        Direction::Upstream,
        Arc::clone(&knobs),
        Arc::clone(&server_spoke),
        Arc::clone(&answering),
    );
    let down = pump(
        server_read,
        client_write,
        Direction::Downstream,
        knobs,
        server_spoke,
        answering,
    );
    // Each direction ends on its own (a half-close is passed on as a shutdown).
    let _ = tokio::join!(up, down);
}

/// Reads `from`, and delivers each chunk to `to` when its delay has passed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    direction: Direction,
    knobs: Arc<Knobs>,
    server_spoke: Arc<AtomicBool>,
    answering: Arc<AtomicBool>,
) {
    let (sender, mut receiver) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let reader = async move {
        let mut buffer = vec![0_u8; CHUNK_BYTES];
        loop {
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay_ms = match direction {
                Direction::Upstream => {
                    if server_spoke.load(Ordering::SeqCst)
                        && !is_plaintext_handshake(&buffer[..read])
                    {
                        answering.store(true, Ordering::SeqCst);
                    }
                    knobs.upstream_ms.load(Ordering::SeqCst)
                }
                Direction::Downstream => {
                    server_spoke.store(true, Ordering::SeqCst);
                    let hold_ms = if answering.load(Ordering::SeqCst) {
                        knobs.response_hold_ms.load(Ordering::SeqCst)
                    } else {
                        0
                    };
                    if hold_ms > 0 {
                        knobs.held_chunks.fetch_add(1, Ordering::Relaxed);
                    }
                    knobs.downstream_ms.load(Ordering::SeqCst) + hold_ms
                }
            };
            let due = Instant::now() + Duration::from_millis(delay_ms);
            if sender.send((due, buffer[..read].to_vec())).await.is_err() {
                break;
            }
        }
        // Dropping the sender ends the writer after the queued chunks.
    };
    let writer = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Whether a client chunk carries no application data: only plaintext TLS records
/// (a ChangeCipherSpec, 0x14, which a rustls client sends as soon as it reads the
/// ServerHello, possibly before the rest of the server's flight; a handshake record,
/// 0x16). A chunk whose records cannot be walked counts as data.
fn is_plaintext_handshake(chunk: &[u8]) -> bool {
    const CHANGE_CIPHER_SPEC: u8 = 0x14;
    const HANDSHAKE: u8 = 0x16;
    const HEADER_BYTES: usize = 5;
    let mut rest = chunk;
    while rest.len() >= HEADER_BYTES {
        if !matches!(rest[0], CHANGE_CIPHER_SPEC | HANDSHAKE) {
            return false;
        }
        let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        rest = rest.get(HEADER_BYTES + length..).unwrap_or(&[]);
    }
    rest.is_empty() && !chunk.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_cipher_spec_followed_by_data_is_data() {
        let ccs = [0x14, 3, 3, 0, 1, 1];
        assert!(is_plaintext_handshake(&ccs));
        let mut with_data = ccs.to_vec();
        with_data.extend([0x17, 3, 3, 0, 2, 9, 9]);
        assert!(!is_plaintext_handshake(&with_data));
        assert!(!is_plaintext_handshake(b"ping"));
    }

    async fn round_trip(client: &mut TcpStream) -> Duration {
        let began = Instant::now();
        client.write_all(b"ping").await.expect("write");
        let mut reply = [0_u8; 4];
        client.read_exact(&mut reply).await.expect("read");
        assert_eq!(&reply, b"ping");
        began.elapsed()
    }

    /// An echo server behind the proxy: the added latency shows in a round trip, and
    /// the hold applies only after the first exchange.
    #[tokio::test]
    async fn latency_and_hold_show_in_round_trips() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0_u8; 64];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = LatencyProxy::start(echo_addr).await.expect("proxy");
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .expect("connect");
        assert!(round_trip(&mut client).await < Duration::from_millis(100));
        proxy.set_latency_ms(60, 60);
        let slow = round_trip(&mut client).await;
        assert!(slow >= Duration::from_millis(120), "{slow:?}");
        proxy.set_latency_ms(0, 0);
        proxy.set_response_hold_ms(300);
        // The first exchange was the "handshake"; this one is an answer, held.
        let held = round_trip(&mut client).await;
        assert!(held >= Duration::from_millis(300), "{held:?}");
        assert!(proxy.knobs().held_chunks.load(Ordering::Relaxed) >= 1);
        assert_eq!(proxy.knobs().connections.load(Ordering::Relaxed), 1);
    }
}
