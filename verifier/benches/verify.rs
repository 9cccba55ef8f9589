//! Verification benchmark: how long a relying party (or the center's verification page)
//! waits for a verdict, next to how long the same document took to compose.
//!
//! In one run, on a six-member household's 住民票の写し (one copy, 2 pages; the same
//! document as the composition benchmark):
//! 1. composing it (the production composer),
//! 2. `verify_input` on its PDF (drawn QR read back, page and front checks),
//! 3. `verify_pdf_fast` on the same PDF (the load generator's check: no font or image
//!    inflated, the drawn QR decoded from its module grid, no front text read),
//! 4. `verify_input` on the QR text alone,
//! 5. `verify_input` on the back page rendered at 150 dpi (PNG), when poppler's
//!    `pdftoppm` is installed.
//!
//! Run: `cargo bench -p verifier --bench verify` (`VERIFY_BENCH_ITERATIONS=n`, default
//! 100).

#[path = "../../composer/tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use composer::{Composer, DocumentInput, SealImage};
use schemas::{
    KeyPair, KeyStatus, MunicipalityCode, RequestId, Signed, TrustList, TrustedKey,
    TRUST_LIST_FORMAT,
};
use verifier::{verify_input, verify_pdf_fast, Input, Reason};

const DEFAULT_ITERATIONS: usize = 100;
const MAX_ITERATIONS: usize = 5_000;
/// The fixture's seals are issued at 1_795_400_000; judge a minute later.
const NOW_UNIX_S: i64 = 1_795_400_060;

fn measure(iterations: usize, mut run: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        run();
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick =
        |q: f64| ms(times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]);
    (pick(0.50), pick(0.99))
}

fn main() {
    let iterations = std::env::var("VERIFY_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_ITERATIONS)
        .clamp(1, MAX_ITERATIONS);
    let composer = Composer::with_embedded_font().expect("font loads");
    let municipality = KeyPair::from_seed([10; 32]);
    let center = KeyPair::from_seed([1; 32]);
    let front = common::six_member_front();
    let request_id = RequestId::new_random();
    let seals = common::seals_for(&front, request_id, &municipality);
    let seal_png =
        composer::render_official_seal_png("美濃加茂市長之印", 256).expect("seal renders");
    let official_seal = SealImage::from_png(&seal_png).expect("seal decodes");
    let input = DocumentInput {
        request_id,
        front: &front,
        seal_qr_texts: &seals,
        official_seal: Some(&official_seal),
        copies: 1,
        verify_url: common::VERIFY_URL,
    };
    let list = Signed::sign(
        TrustList {
            format: TRUST_LIST_FORMAT.into(),
            version: 1,
            issued_at_unix_s: NOW_UNIX_S - 60,
            next_update_unix_s: NOW_UNIX_S + 86_400,
            keys: vec![TrustedKey {
                kid: municipality.kid(),
                public_key: municipality.public(),
                municipality_code: MunicipalityCode::parse("212113").expect("code"),
                not_before_unix_s: NOW_UNIX_S - 86_400,
                usage_end_unix_s: NOW_UNIX_S + 86_400,
                verify_until_unix_s: NOW_UNIX_S + 365 * 86_400,
                status: KeyStatus::Active,
            }],
            revoked_documents: Vec::new(),
        },
        &center,
    )
    .expect("list signs");
    let center_key = center.public();

    let pdf = composer.compose(&input).expect("composes").bytes;
    let check = |input: Input<'_>| {
        let answer = verify_input(input, &list, &center_key, NOW_UNIX_S);
        assert_eq!(answer.reason, Reason::Ok, "{answer:#?}");
    };
    check(Input::Pdf(&pdf));

    let (compose_p50, compose_p99) = measure(iterations, || {
        composer.compose(&input).expect("composes");
    });
    let (pdf_p50, pdf_p99) = measure(iterations, || check(Input::Pdf(&pdf)));
    let (fast_p50, fast_p99) = measure(iterations, || {
        let answer = verify_pdf_fast(&pdf, &list, &center_key, NOW_UNIX_S);
        assert_eq!(answer.reason, Reason::Ok, "{answer:#?}");
    });
    let (qr_p50, qr_p99) = measure(iterations, || check(Input::QrText(&seals[0])));
    println!("verification benchmark, {iterations} iterations each (six-member 住民票の写し, 2 pages, {} bytes)", pdf.len());
    println!("| what | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: |");
    println!("| compose (for comparison) | {compose_p50:.2} | {compose_p99:.2} |");
    println!("| verify PDF | {pdf_p50:.2} | {pdf_p99:.2} |");
    println!("| verify PDF, fast check (`verify_pdf_fast`) | {fast_p50:.2} | {fast_p99:.2} |");
    println!("| verify QR text | {qr_p50:.3} | {qr_p99:.3} |");

    let pdftoppm = std::path::Path::new("/usr/bin/pdftoppm");
    if pdftoppm.exists() {
        let dir = std::env::temp_dir().join(format!("verify-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pdf_path = dir.join("doc.pdf");
        std::fs::write(&pdf_path, &pdf).expect("written");
        let status = std::process::Command::new(pdftoppm)
            .args(["-png", "-singlefile", "-r", "150", "-f", "2", "-l", "2"])
            .arg(&pdf_path)
            .arg(dir.join("back"))
            .status()
            .expect("pdftoppm runs");
        assert!(status.success());
        let png = std::fs::read(dir.join("back.png")).expect("rendered");
        check(Input::Image(&png));
        let (png_p50, png_p99) = measure(iterations.min(30), || check(Input::Image(&png)));
        println!(
            "| verify back page scan, 150 dpi PNG ({} bytes) | {png_p50:.2} | {png_p99:.2} |",
            png.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("(pdftoppm not installed: scan case skipped)");
    }
    println!(
        "ratio verify PDF / compose at p50: {:.2}",
        pdf_p50 / compose_p50
    );
}
