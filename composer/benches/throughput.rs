//! Composition-only throughput: how many certificates per second this machine composes
//! when it does nothing else, with every core busy. The end-to-end load benchmark
//! (`scripts/bench-load`) compares its own throughput with this figure, measured in
//! the same run (issue 8: end to end ≥ 50% of composition only).
//!
//! The mix is close to what the load generator orders: 住民票の写し of 1–6 members,
//! 印鑑登録証明書, 所得・課税証明書 and 納税証明書, one copy each, every document with its
//! seals and the mayor's seal image, as the center composes them.
//!
//! Run: `cargo bench -p composer --bench throughput`
//! (`THROUGHPUT_SECONDS=n`, default 10; `THROUGHPUT_THREADS=n`, default: every core.)

#[path = "../tests/common/mod.rs"]
mod common;

use composer::{Composer, DocumentInput, SealImage};
use schemas::{FrontSide, KeyPair, RequestId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DEFAULT_SECONDS: u64 = 10;
const MAX_SECONDS: u64 = 600;
const MAX_THREADS: usize = 64;

struct Prepared {
    request_id: RequestId,
    front: FrontSide,
    seals: Vec<String>,
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok())
}

fn main() {
    let seconds = env_number("THROUGHPUT_SECONDS")
        .unwrap_or(DEFAULT_SECONDS)
        .clamp(1, MAX_SECONDS);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = env_number("THROUGHPUT_THREADS")
        .map_or(cores, |n| n as usize)
        .clamp(1, MAX_THREADS);

    let composer = Composer::with_embedded_font().expect("font loads");
    let seal_png =
        composer::render_official_seal_png("美濃加茂市長之印", 256).expect("seal renders");
    let official_seal = SealImage::from_png(&seal_png).expect("seal decodes");
    let key = KeyPair::generate();
    let mut fronts: Vec<FrontSide> = (1..=6).map(common::front_with_n_members).collect();
    fronts.push(common::seal_registration_front(common::impression_png()));
    fronts.push(common::income_tax_front());
    fronts.push(common::tax_payment_front());
    let documents: Vec<Prepared> = fronts
        .into_iter()
        .map(|front| {
            let request_id = RequestId::new_random();
            let seals = common::seals_for(&front, request_id, &key);
            Prepared {
                request_id,
                front,
                seals,
            }
        })
        .collect();

    let composed = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..threads {
            let (composer, documents, official_seal) = (&composer, &documents, &official_seal);
            let (composed, bytes, stop) = (&composed, &bytes, &stop);
            scope.spawn(move || {
                let mut next = worker;
                while !stop.load(Ordering::Relaxed) {
                    let document = &documents[next % documents.len()];
                    next += 1;
                    let pdf = composer
                        .compose(&DocumentInput {
                            request_id: document.request_id,
                            front: &document.front,
                            seal_qr_texts: &document.seals,
                            official_seal: Some(official_seal),
                            copies: 1,
                            verify_url: common::VERIFY_URL,
                        })
                        .expect("composes");
                    assert!(pdf.page_count >= 2, "a document has a front and a back");
                    composed.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(pdf.bytes.len() as u64, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed_s = started.elapsed().as_secs_f64();
    let count = composed.load(Ordering::Relaxed);
    let per_s = count as f64 / elapsed_s;
    println!(
        "composition only: {count} documents in {elapsed_s:.1} s on {threads} threads: \
         {per_s:.1} documents/s (mean {:.0} KB)",
        bytes.load(Ordering::Relaxed) as f64 / count.max(1) as f64 / 1024.0
    );
    println!("{{\"composition_only_per_s\": {per_s:.1}, \"threads\": {threads}, \"documents\": {count}}}");
}
