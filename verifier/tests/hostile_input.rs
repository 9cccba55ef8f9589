//! Inputs built to hurt the verifier (decompression bombs, absurd drawings, files that
//! only look like images) and the time rules (a seal or a list from the future). Each
//! gets a clean verdict, never a panic or an unbounded allocation.

mod common;

use std::io::Write as _;

use common::*;
use lopdf::{dictionary, Document, Object, Stream};
use verifier::{verify_input, Input, Reason, Verdict};

fn verdict_of(bytes: &[u8]) -> (Verdict, Reason) {
    let input = Input::sniff(bytes).unwrap_or(Input::Pdf(bytes));
    let answer = verify_input(input, &default_list(), &center().public(), NOW);
    (answer.verdict, answer.reason)
}

/// A PDF whose pages draw `contents` (one stream per page).
fn pdf_with_pages(contents: Vec<Stream>) -> Vec<u8> {
    let mut document = Document::with_version("1.7");
    let pages_id = document.new_object_id();
    let mut kids = Vec::new();
    for content in contents {
        let content_id = document.add_object(content);
        kids.push(Object::Reference(document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Contents" => content_id,
        })));
    }
    let count = kids.len() as i64;
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    document.save_to(&mut out).expect("PDF written");
    out
}

fn plain(content: &[u8]) -> Stream {
    Stream::new(dictionary! {}, content.to_vec())
}

fn deflated(content: &[u8]) -> Stream {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(content).expect("deflates");
    let mut stream = Stream::new(dictionary! {}, encoder.finish().expect("deflates"));
    stream.dict.set("Filter", "FlateDecode");
    stream
}

#[test]
fn a_decompression_bomb_is_unreadable_not_inflated() {
    // 64 MiB of spaces deflate to about 64 KiB.
    let bomb = deflated(&vec![b' '; 64 * 1024 * 1024]);
    let pdf = pdf_with_pages(vec![bomb, plain(b"")]);
    assert!(pdf.len() < 200_000);
    assert_eq!(verdict_of(&pdf), (Verdict::Unknown, Reason::Unreadable));
}

#[test]
fn pdfs_without_a_certificate_shape_are_refused() {
    let no_pages = pdf_with_pages(Vec::new());
    assert_eq!(
        verdict_of(&no_pages),
        (Verdict::Unknown, Reason::Unreadable)
    );
    let one_page = pdf_with_pages(vec![plain(b"0 g 10 10 100 100 re f")]);
    assert_eq!(
        verdict_of(&one_page),
        (Verdict::Invalid, Reason::PageMismatch)
    );
    let blank_back = pdf_with_pages(vec![plain(b""), plain(b"")]);
    assert_eq!(verdict_of(&blank_back), (Verdict::Invalid, Reason::NoSeal));
}

#[test]
fn absurd_drawings_do_not_break_the_reader() {
    let mut nested = b"q ".repeat(10_000);
    nested.extend_from_slice(b"1e38 0 0 1e38 0 0 cm 0 g 0 0 1 1 re f Q Q Q");
    let cases: Vec<Vec<u8>> = vec![
        nested,
        // A page painted black (dark area far beyond any QR).
        b"0 g -100000 -100000 200000 200000 re f".to_vec(),
        // Operators with missing, wrong or non-finite operands.
        b"re f cm g 0 0 re /Name 1 2 3 4 re f (x) 1 2 3 re f 0 0 0 0 0 0 0 cm".to_vec(),
        // Many tiny dark squares (a noise field, no QR).
        (0..20_000)
            .map(|i| format!("0 g {} {} 1 1 re f\n", i % 500, i / 500))
            .collect::<String>()
            .into_bytes(),
        // Text with fonts that do not exist.
        b"BT /F9 12 Tf 0 0 Td <0001000200030004> Tj [(a) -20 (b)] TJ ET".to_vec(),
    ];
    for content in cases {
        let pdf = pdf_with_pages(vec![plain(&content), plain(&content)]);
        let (verdict, _) = verdict_of(&pdf);
        assert_ne!(verdict, Verdict::Valid);
    }
}

#[test]
fn files_that_only_look_like_images_or_pdfs_are_unreadable() {
    let mut fake_png = b"\x89PNG\r\n\x1a\n".to_vec();
    fake_png.extend_from_slice(&[0xff; 1_000]);
    assert_eq!(
        verdict_of(&fake_png),
        (Verdict::Unknown, Reason::Unreadable)
    );
    let mut fake_jpeg = b"\xff\xd8\xff".to_vec();
    fake_jpeg.extend_from_slice(&[0; 1_000]);
    assert_eq!(
        verdict_of(&fake_jpeg),
        (Verdict::Unknown, Reason::Unreadable)
    );
    assert_eq!(
        verdict_of(b"%PDF-1.7\n%%EOF"),
        (Verdict::Unknown, Reason::Unreadable)
    );
    assert!(Input::sniff(b"KC1:ABC").is_none());
}

#[test]
fn a_seal_from_the_future_is_invalid_beyond_the_clock_skew() {
    let judge = |issued: i64| {
        let text = seal_text(&issued_at(issued), &mino_kamo());
        verifier::verify_seal(&text, &default_list(), &center().public(), NOW).reason
    };
    assert_eq!(judge(NOW + verifier::CLOCK_SKEW_S - 1), Reason::Ok);
    assert_eq!(
        judge(NOW + verifier::CLOCK_SKEW_S + 1),
        Reason::IssuedInFuture
    );
    assert_eq!(judge(NOW + 30 * DAY_S), Reason::IssuedInFuture);
}

#[test]
fn a_list_from_the_future_decides_nothing() {
    let mut future = list(vec![trusted(&mino_kamo(), "212113")]);
    future.issued_at_unix_s = NOW + 3_600;
    future.next_update_unix_s = NOW + DAY_S;
    let text = seal_text(&payload(), &mino_kamo());
    let answer = verifier::verify_seal(&text, &signed(future), &center().public(), NOW);
    assert_eq!(
        (answer.verdict, answer.reason),
        (Verdict::Unknown, Reason::TrustListInvalid)
    );
}
