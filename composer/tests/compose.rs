//! Composition end to end: structure (lopdf), size, font embedding, refusals, and the
//! back-side QR decoding back to the seal text.

mod common;

use common::{front_with_members, front_with_n_members, seals_for, six_member_front, VERIFY_URL};
use composer::layout::{Item, RectPt};
use composer::{ComposeError, Composer, DocumentInput, SealImage};
use schemas::{FrontSide, KeyPair, RequestId, PDF_PAGE_REQUEST_ID_KEY};
use std::sync::OnceLock;

/// The budget for a six-member household, one copy.
const MAX_SIX_MEMBER_PDF_BYTES: usize = 120 * 1024;

fn composer() -> &'static Composer {
    static COMPOSER: OnceLock<Composer> = OnceLock::new();
    COMPOSER.get_or_init(|| Composer::with_embedded_font().expect("embedded font loads"))
}

fn official_seal() -> &'static SealImage {
    static SEAL: OnceLock<SealImage> = OnceLock::new();
    SEAL.get_or_init(|| {
        let png =
            composer::render_official_seal_png("美濃加茂市長之印", 256).expect("seal renders");
        SealImage::from_png(&png).expect("seal decodes")
    })
}

struct Fixture {
    request_id: RequestId,
    front: FrontSide,
    seals: Vec<String>,
}

impl Fixture {
    fn new(front: FrontSide) -> Self {
        let request_id = RequestId::new_random();
        let seals = seals_for(&front, request_id, &KeyPair::generate());
        Self {
            request_id,
            front,
            seals,
        }
    }

    fn input(&self, copies: u8) -> DocumentInput<'_> {
        DocumentInput {
            request_id: self.request_id,
            front: &self.front,
            seal_qr_texts: &self.seals,
            official_seal: Some(official_seal()),
            copies,
            verify_url: VERIFY_URL,
        }
    }
}

fn page_request_ids(pdf: &lopdf::Document) -> Vec<String> {
    pdf.get_pages()
        .values()
        .map(|&id| {
            let page = pdf.get_dictionary(id).expect("page dictionary");
            let value = page
                .get(PDF_PAGE_REQUEST_ID_KEY.as_bytes())
                .expect("every page carries the request id");
            String::from_utf8(value.as_str().expect("a PDF string").to_vec()).expect("ASCII id")
        })
        .collect()
}

/// (BaseFont, has FontFile2) of every Type0 font in the file.
fn type0_fonts(pdf: &lopdf::Document) -> Vec<(String, bool)> {
    let mut fonts = Vec::new();
    for object in pdf.objects.values() {
        let Ok(dict) = object.as_dict() else { continue };
        let is_type0 =
            dict.get(b"Subtype").and_then(|s| s.as_name()).ok() == Some(b"Type0".as_slice());
        if !is_type0 {
            continue;
        }
        let base =
            String::from_utf8_lossy(dict.get(b"BaseFont").unwrap().as_name().unwrap()).into_owned();
        let descendant_ref = dict.get(b"DescendantFonts").unwrap().as_array().unwrap()[0]
            .as_reference()
            .unwrap();
        let cid_font = pdf.get_dictionary(descendant_ref).unwrap();
        let descriptor = pdf
            .get_dictionary(
                cid_font
                    .get(b"FontDescriptor")
                    .unwrap()
                    .as_reference()
                    .unwrap(),
            )
            .unwrap();
        fonts.push((base, descriptor.get(b"FontFile2").is_ok()));
    }
    fonts
}

#[test]
fn six_member_household_is_two_pages_small_and_tagged() {
    let fixture = Fixture::new(six_member_front());
    let composed = composer().compose(&fixture.input(1)).expect("composes");
    assert_eq!(composed.page_count, 2);
    assert!(
        composed.bytes.len() <= MAX_SIX_MEMBER_PDF_BYTES,
        "six-member PDF is {} bytes, budget {MAX_SIX_MEMBER_PDF_BYTES}",
        composed.bytes.len()
    );

    let pdf = lopdf::Document::load_mem(&composed.bytes).expect("lopdf parses our PDF");
    let ids = page_request_ids(&pdf);
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter().all(|id| *id == fixture.request_id.to_string()),
        "{ids:?}"
    );

    let fonts = type0_fonts(&pdf);
    assert_eq!(fonts.len(), 1, "{fonts:?}");
    let (base_font, embedded) = &fonts[0];
    assert!(embedded, "font program must be embedded");
    let (tag, name) = base_font.split_once('+').expect("subset prefix");
    assert!(
        tag.len() == 6 && tag.bytes().all(|b| b.is_ascii_uppercase()),
        "{base_font}"
    );
    assert!(name.contains("IPAex"), "{base_font}");
}

#[test]
fn copies_repeat_every_page_with_the_request_id() {
    let fixture = Fixture::new(six_member_front());
    let composed = composer().compose(&fixture.input(3)).expect("composes");
    assert_eq!(composed.page_count, 6);
    let pdf = lopdf::Document::load_mem(&composed.bytes).unwrap();
    let ids = page_request_ids(&pdf);
    assert_eq!(ids.len(), 6);
    assert!(ids.iter().all(|id| *id == fixture.request_id.to_string()));
    // Copies share content streams, so three copies cost little more than one.
    let one = composer().compose(&fixture.input(1)).unwrap();
    assert!(composed.bytes.len() < one.bytes.len() + 4 * 1024);
}

#[test]
fn large_household_paginates_with_one_seal_per_front_page() {
    let fixture = Fixture::new(front_with_n_members(8));
    assert_eq!(fixture.seals.len(), 2);
    let composed = composer().compose(&fixture.input(2)).expect("composes");
    // 2 copies × 2 sheets × (front + back).
    assert_eq!(composed.page_count, 8);
    let pdf = lopdf::Document::load_mem(&composed.bytes).unwrap();
    assert_eq!(page_request_ids(&pdf).len(), 8);
}

#[test]
fn composition_is_deterministic() {
    let fixture = Fixture::new(six_member_front());
    let a = composer().compose(&fixture.input(1)).unwrap();
    let b = composer().compose(&fixture.input(1)).unwrap();
    assert_eq!(
        a.bytes, b.bytes,
        "same input, same bytes (replays are identical)"
    );
}

#[test]
fn check_printable_rejects_what_the_font_cannot_print() {
    let c = composer();
    match c.check_printable(["吉田", "𠮷田 太郎"]) {
        Err(ComposeError::UnprintableCharacter {
            character,
            codepoint,
        }) => {
            assert_eq!(character, '𠮷');
            assert_eq!(codepoint, 0x20BB7);
        }
        other => panic!("expected 𠮷 to be refused, got {other:?}"),
    }
    match c.check_printable(["葛\u{E0100}城"]) {
        Err(ComposeError::UnprintableCharacter { codepoint, .. }) => assert_eq!(codepoint, 0xE0100),
        other => panic!("expected the IVS selector to be refused, got {other:?}"),
    }
    for refused in [
        "辻\u{FE00}",
        "a\u{0007}",
        "x\u{200B}",
        "\u{E000}",
        "\u{FFFD}",
        "改\n行",
    ] {
        assert!(
            c.check_printable([refused]).is_err(),
            "{refused:?} must be refused"
        );
    }
    c.check_printable([
        "髙橋",
        "﨑",
        "邉",
        "渡邊",
        "岐阜県美濃加茂市太田町1234番地の5",
        "令和8年11月23日",
        "ＡＢＣ　１２３",
    ])
    .expect("common names and addresses are printable");
}

#[test]
fn compose_refuses_an_unprintable_name() {
    let mut front = six_member_front();
    let FrontSide::ResidentRecord(record) = &mut front else {
        panic!("a resident record fixture");
    };
    record.members[3].name = "𠮷田 花子".into();
    let fixture = Fixture::new(front);
    match composer().compose(&fixture.input(1)) {
        Err(ComposeError::UnprintableCharacter { codepoint, .. }) => assert_eq!(codepoint, 0x20BB7),
        other => panic!("expected UnprintableCharacter, got {other:?}"),
    }
}

#[test]
fn absurdly_long_address_is_field_too_long() {
    let mut front = six_member_front();
    let FrontSide::ResidentRecord(record) = &mut front else {
        panic!("a resident record fixture");
    };
    record.address = "岐阜県美濃加茂市太田町".repeat(12) + "1234番地の5";
    let fixture = Fixture::new(front);
    match composer().compose(&fixture.input(1)) {
        Err(ComposeError::FieldTooLong {
            field,
            width_pt,
            max_width_pt,
        }) => {
            assert_eq!(field, "address");
            assert!(width_pt > max_width_pt);
        }
        other => panic!("expected FieldTooLong, got {other:?}"),
    }
}

#[test]
fn a_long_but_reasonable_address_is_shrunk_not_refused() {
    let mut front = six_member_front();
    let FrontSide::ResidentRecord(record) = &mut front else {
        panic!("a resident record fixture");
    };
    record.address =
        "岐阜県美濃加茂市太田町1234番地の5　美濃加茂グランドパレス太田本町駅前東館1501号室".into();
    let fixture = Fixture::new(front);
    composer()
        .compose(&fixture.input(1))
        .expect("fits at a smaller size");
}

#[test]
fn too_many_remarks_are_field_too_long() {
    let mut front = six_member_front();
    let FrontSide::ResidentRecord(record) = &mut front else {
        panic!("a resident record fixture");
    };
    record.members[0].remarks = (0..6)
        .map(|i| {
            format!(
                "令和{i}年4月1日 岐阜県可児市広見一丁目1番地から転入（転入届出 令和{i}年4月3日）"
            )
        })
        .collect();
    let fixture = Fixture::new(front);
    match composer().compose(&fixture.input(1)) {
        Err(ComposeError::FieldTooLong { field, .. }) => assert_eq!(field, "members[0].remarks"),
        other => panic!("expected FieldTooLong, got {other:?}"),
    }
}

#[test]
fn seal_count_must_match_front_pages() {
    let mut fixture = Fixture::new(six_member_front());
    let extra = fixture.seals[0].clone();
    fixture.seals.push(extra);
    match composer().compose(&fixture.input(1)) {
        Err(ComposeError::SealCountMismatch { expected, got }) => {
            assert_eq!((expected, got), (1, 2))
        }
        other => panic!("expected SealCountMismatch, got {other:?}"),
    }
    fixture.seals.clear();
    assert!(matches!(
        composer().compose(&fixture.input(1)),
        Err(ComposeError::SealCountMismatch {
            expected: 1,
            got: 0
        })
    ));
}

#[test]
fn a_seal_of_another_request_is_refused() {
    let fixture = Fixture::new(six_member_front());
    let other = Fixture::new(six_member_front());
    let input = DocumentInput {
        seal_qr_texts: &other.seals,
        ..fixture.input(1)
    };
    assert!(matches!(
        composer().compose(&input),
        Err(ComposeError::SealMismatch { page: 1, .. })
    ));
    // Pages swapped within the same request are refused too.
    let mut swapped = Fixture::new(front_with_n_members(12));
    swapped.seals.swap(0, 1);
    assert!(matches!(
        composer().compose(&swapped.input(1)),
        Err(ComposeError::SealMismatch { page: 1, .. })
    ));
    let mut garbage = Fixture::new(six_member_front());
    garbage.seals[0] = "KC1:NOT A SEAL".into();
    assert!(matches!(
        composer().compose(&garbage.input(1)),
        Err(ComposeError::SealMismatch { .. })
    ));
}

#[test]
fn page_limits_and_copies_are_enforced() {
    let fixture = Fixture::new(front_with_n_members(61));
    assert!(matches!(
        composer().compose(&fixture.input(1)),
        Err(ComposeError::TooManyPages)
    ));
    let fixture = Fixture::new(six_member_front());
    assert!(matches!(
        composer().compose(&fixture.input(101)),
        Err(ComposeError::TooManyPages)
    ));
    assert!(matches!(
        composer().compose(&fixture.input(0)),
        Err(ComposeError::InvalidInput(_))
    ));
    let empty = front_with_members(Vec::new());
    let input = DocumentInput {
        front: &empty,
        seal_qr_texts: &[],
        ..fixture.input(1)
    };
    assert!(matches!(
        composer().compose(&input),
        Err(ComposeError::InvalidInput(_))
    ));
}

#[test]
fn composes_without_an_official_seal_image() {
    let fixture = Fixture::new(six_member_front());
    let input = DocumentInput {
        official_seal: None,
        ..fixture.input(1)
    };
    assert_eq!(composer().compose(&input).unwrap().page_count, 2);
}

#[test]
fn seal_images_decode_and_bad_ones_are_refused() {
    let seal = official_seal();
    assert_eq!((seal.width_px(), seal.height_px()), (256, 256));
    let rgba = seal.rgba_pixels();
    let inked = rgba.chunks_exact(4).filter(|p| p[3] > 128).count();
    // A border plus eight characters: plenty of ink, but mostly transparent.
    assert!(
        inked > 256 * 256 / 10 && inked < 256 * 256 * 6 / 10,
        "inked pixels: {inked}"
    );
    assert!(matches!(
        SealImage::from_png(b"not a png"),
        Err(ComposeError::InvalidImage(_))
    ));
    assert!(matches!(
        composer::render_official_seal_png("𠮷田市長之印", 128),
        Err(ComposeError::UnprintableCharacter { .. })
    ));
    assert!(composer::render_official_seal_png("", 128).is_err());
    assert!(composer::render_official_seal_png("市長之印", 8).is_err());
}

/// Rasterises the QR exactly as laid out on the back page (the filled module rects)
/// and decodes it with an independent decoder.
#[test]
fn back_side_qr_decodes_to_the_seal_text() {
    let fixture = Fixture::new(front_with_n_members(8));
    let document = composer().lay_out(&fixture.input(1)).expect("lays out");
    assert_eq!(document.sheets.len(), 2);
    for (sheet, expected) in document.sheets.iter().zip(&fixture.seals) {
        let modules: Vec<RectPt> = sheet
            .back
            .items
            .iter()
            .find_map(|item| match item {
                Item::FilledRects { gray, rects } if *gray == 0.0 => Some(rects.clone()),
                _ => None,
            })
            .expect("QR modules on the back");
        assert_eq!(&decode_rects(&modules), expected);
    }
}

fn decode_rects(rects: &[RectPt]) -> String {
    let module_pt = rects.iter().map(|r| r.height_pt).fold(f32::MAX, f32::min);
    let left = rects.iter().map(|r| r.x_pt).fold(f32::MAX, f32::min);
    let top = rects
        .iter()
        .map(|r| r.y_pt + r.height_pt)
        .fold(f32::MIN, f32::max);
    let right = rects
        .iter()
        .map(|r| r.x_pt + r.width_pt)
        .fold(f32::MIN, f32::max);
    let width = ((right - left) / module_pt).round() as usize;
    let mut grid = vec![false; width * width];
    for r in rects {
        let col = ((r.x_pt - left) / module_pt).round() as usize;
        let row = ((top - (r.y_pt + r.height_pt)) / module_pt).round() as usize;
        let run = (r.width_pt / module_pt).round() as usize;
        for x in col..col + run {
            grid[row * width + x] = true;
        }
    }
    let (scale, quiet) = (4usize, 4usize);
    let side = (width + 2 * quiet) * scale;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        let (mx, my) = (
            (x / scale).wrapping_sub(quiet),
            (y / scale).wrapping_sub(quiet),
        );
        if mx < width && my < width && grid[my * width + mx] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR symbol");
    let (_meta, text) = grids[0].decode().expect("QR decodes");
    text
}

#[test]
fn fixed_mask_qr_round_trips_through_an_independent_decoder() {
    let fixture = Fixture::new(six_member_front());
    let matrix = composer::encode_seal_qr(&fixture.seals[0]).unwrap();
    let n = matrix.width_modules;
    let (scale, quiet) = (3usize, 4usize);
    let side = (n + 2 * quiet) * scale;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        let (mx, my) = (
            (x / scale).wrapping_sub(quiet),
            (y / scale).wrapping_sub(quiet),
        );
        if mx < n && my < n && matrix.is_dark(mx, my) {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    let (meta, text) = grids[0].decode().unwrap();
    assert_eq!(text, fixture.seals[0]);
    // EC level Q is 3 in rqrr's numbering (M=0, L=1, H=2, Q=3).
    assert_eq!(meta.ecc_level, 3);
}

/// Text extraction with poppler, when present. Skipped only on a developer machine
/// without poppler; under CI (CI=true) a missing pdftotext is a failure.
#[test]
fn pdftotext_extracts_the_japanese_text() {
    let pdftotext = std::path::Path::new("/usr/bin/pdftotext");
    if !pdftotext.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must have poppler-utils (pdftotext) installed"
        );
        eprintln!("skipping: /usr/bin/pdftotext not installed");
        return;
    }
    let fixture = Fixture::new(six_member_front());
    let composed = composer().compose(&fixture.input(1)).unwrap();
    let dir = std::env::temp_dir().join(format!("composer-test-{}", fixture.request_id));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("doc.pdf");
    std::fs::write(&path, &composed.bytes).unwrap();
    let output = std::process::Command::new(pdftotext)
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "住民票の写し".to_owned(),
        "岐阜県美濃加茂市太田町1234番地の5".to_owned(),
        "髙橋 﨑子".to_owned(),
        "たかはし へんた".to_owned(),
        "美濃加茂市長".to_owned(),
        "加茂野 太郎".to_owned(),
        format!("請求番号 {}", fixture.request_id),
        VERIFY_URL.to_owned(),
        "center verify".to_owned(),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} not extracted from:\n{text}"
        );
    }
}

// The back page rendered at 150 dpi and scanned is tested where scanning lives:
// `verifier/tests/rendered_pages.rs` (random seals, the verifier's own reader).

/// Writes a sample for eyeballing: `COMPOSER_SAMPLE_PDF=/tmp/sample.pdf cargo test -p
/// composer --test compose write_sample_pdf -- --ignored`, then e.g. `pdftoppm -png`.
#[test]
#[ignore = "writes a file for manual inspection"]
fn write_sample_pdf() {
    let path = std::env::var("COMPOSER_SAMPLE_PDF").expect("set COMPOSER_SAMPLE_PDF");
    let fixture = Fixture::new(six_member_front());
    let composed = composer().compose(&fixture.input(1)).unwrap();
    std::fs::write(path, composed.bytes).unwrap();
}

/// Both sides of every sheet carry the 「複写」 ground pattern (a photocopy of either
/// side shows it), and the catalog carries exactly the front data the seals sign.
#[test]
fn both_sides_carry_the_ground_pattern_and_the_pdf_carries_the_signed_front_data() {
    let fixture = Fixture::new(six_member_front());
    let pdf = composer().compose(&fixture.input(2)).expect("composes");
    let document = lopdf::Document::load_mem(&pdf.bytes).expect("parses");
    let pages = document.get_pages();
    assert_eq!(pages.len(), 4);
    for (number, id) in pages {
        let content =
            String::from_utf8_lossy(&document.get_page_content(id).expect("content")).into_owned();
        assert!(
            content.contains("/Ground scn"),
            "page {number} has no ground pattern"
        );
    }
    let id = document
        .catalog()
        .expect("catalog")
        .get(schemas::PDF_FRONT_DATA_KEY.as_bytes())
        .and_then(lopdf::Object::as_reference)
        .expect("/KofuFrontData");
    let data = document
        .get_object(id)
        .and_then(lopdf::Object::as_stream)
        .expect("stream")
        .decompressed_content()
        .expect("inflates");
    assert_eq!(
        data,
        schemas::canonical_bytes(&fixture.front).expect("canonical")
    );
    assert_eq!(
        schemas::sha256(&data),
        fixture.front.digest().expect("digest").0,
        "the digest every seal signs"
    );
}
