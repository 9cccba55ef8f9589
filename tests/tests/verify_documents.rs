//! The tamper corpus at document level: what a relying party hands `center verify` —
//! the PDF a kiosk printed, a page scanned or photographed — genuine and forged, each
//! with its expected verdict and reason. Certificates are issued end to end through
//! the sandbox; forgeries are made from them the way a forger would (editing the PDF's
//! objects, swapping pages, pasting in a page of another certificate).

use std::path::{Path, PathBuf};

use center::configuration::{RevokedDocumentSettings, Settings};
use e2e::*;
use kiosk_sim::{IssueOutcome, PrintedDocument};
use lopdf::{Document, Object, ObjectId};
use schemas::{
    CertificateKind, CertificateOrder, HouseholdScope, PublicKey, Route, SignedTrustList,
};
use verifier::{DocumentVerification, Input, Reason, Verdict};

/// Card 0069's 8-member household prints 世帯全員 on two sheets; card 0001 is 髙橋健一.
const BIG_HOUSEHOLD_CARD: &str = "2121130000000069";
const SINGLE_CARD: &str = "2121130000000001";

fn printed(outcome: IssueOutcome) -> PrintedDocument {
    match outcome {
        IssueOutcome::Printed(doc) => doc,
        other => panic!("not printed: {:?}", other.request_id()),
    }
}

struct Verifier {
    list: SignedTrustList,
    center_key: PublicKey,
    now_unix_s: i64,
}

impl Verifier {
    fn check(&self, bytes: &[u8]) -> DocumentVerification {
        let input = Input::sniff(bytes).unwrap_or(Input::Pdf(bytes));
        verifier::verify_input(input, &self.list, &self.center_key, self.now_unix_s)
    }

    #[track_caller]
    fn expect(
        &self,
        case: &str,
        bytes: &[u8],
        verdict: Verdict,
        reason: Reason,
    ) -> DocumentVerification {
        let answer = self.check(bytes);
        assert_eq!(
            (answer.verdict, answer.reason),
            (verdict, reason),
            "{case}: {answer:#?}"
        );
        answer
    }
}

fn household() -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope: HouseholdScope::Household,
        include_domicile: false,
        include_relationship: true,
    }
}

fn load(path: &Path) -> Document {
    Document::load(path).expect("a readable PDF")
}

fn save(mut document: Document) -> Vec<u8> {
    let mut out = Vec::new();
    document.save_to(&mut out).expect("PDF written");
    out
}

fn page_ids(document: &Document) -> Vec<ObjectId> {
    document.get_pages().into_values().collect()
}

/// The page tree's /Kids (the composer writes a flat tree).
fn kids_mut(document: &mut Document) -> &mut Vec<Object> {
    let pages_id = document
        .catalog()
        .expect("catalog")
        .get(b"Pages")
        .and_then(Object::as_reference)
        .expect("/Pages");
    document
        .get_dictionary_mut(pages_id)
        .expect("page tree")
        .get_mut(b"Kids")
        .and_then(Object::as_array_mut)
        .expect("/Kids")
}

/// Gives page `index` (0-based) of `document` the drawing `content` (a new stream, so
/// pages sharing the old one keep theirs).
fn set_page_content(document: &mut Document, index: usize, content: Vec<u8>) {
    let page = page_ids(document)[index];
    let stream = document.add_object(lopdf::Stream::new(lopdf::Dictionary::new(), content));
    document
        .get_dictionary_mut(page)
        .expect("page")
        .set("Contents", Object::Reference(stream));
}

fn page_content(document: &Document, index: usize) -> Vec<u8> {
    document
        .get_page_content(page_ids(document)[index])
        .expect("page content")
}

fn front_data_stream(document: &mut Document) -> &mut lopdf::Stream {
    let id = document
        .catalog()
        .expect("catalog")
        .get(schemas::PDF_FRONT_DATA_KEY.as_bytes())
        .and_then(Object::as_reference)
        .expect("the composer writes /KofuFrontData");
    document
        .get_object_mut(id)
        .and_then(Object::as_stream_mut)
        .expect("a stream")
}

/// The ToUnicode map of the page's first font: code → character.
fn to_unicode(document: &Document, page_index: usize) -> std::collections::HashMap<u16, char> {
    let page = page_ids(document)[page_index];
    let fonts = document.get_page_fonts(page).expect("page fonts");
    let font = fonts.values().next().expect("a font");
    let cmap_id = font
        .get(b"ToUnicode")
        .and_then(Object::as_reference)
        .expect("the composer writes ToUnicode");
    let cmap = document
        .get_object(cmap_id)
        .and_then(Object::as_stream)
        .expect("a stream")
        .decompressed_content()
        .unwrap_or_else(|_| {
            document
                .get_object(cmap_id)
                .and_then(Object::as_stream)
                .expect("a stream")
                .content
                .clone()
        });
    let text = String::from_utf8_lossy(&cmap).into_owned();
    let mut map = std::collections::HashMap::new();
    for line in text.lines() {
        let hexes: Vec<&str> = line
            .split(['<', '>'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if let [code, unicode] = hexes.as_slice() {
            if let (Ok(code), Ok(unicode)) = (
                u16::from_str_radix(code, 16),
                u32::from_str_radix(unicode, 16),
            ) {
                if let Some(c) = char::from_u32(unicode) {
                    map.insert(code, c);
                }
            }
        }
    }
    map
}

/// Page `page_index`'s content with the first glyph of `name` (in the run that shows
/// it) replaced by another glyph of the document's font.
fn with_name_glyph_replaced(document: &Document, page_index: usize, name: &str) -> Vec<u8> {
    let map = to_unicode(document, page_index);
    let first = name.chars().next().expect("a name");
    let replacement = map
        .iter()
        .find(|(_, c)| **c != first && !c.is_whitespace() && !name.contains(**c))
        .map(|(code, _)| *code)
        .expect("another glyph");
    let mut content =
        lopdf::content::Content::decode(&page_content(document, page_index)).expect("content");
    // Every run that shows the name (the holder may be printed as 世帯主 and as a
    // member); spacing inside the run does not matter.
    let squeezed_name: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    let mut replaced = 0;
    for operation in &mut content.operations {
        if let Some(Object::String(bytes, _)) = operation.operands.last_mut() {
            let text: String = bytes
                .chunks(2)
                .filter_map(|pair| {
                    map.get(&u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                })
                .filter(|c| !c.is_whitespace())
                .collect();
            if !text.contains(&squeezed_name) {
                continue;
            }
            for pair in bytes.chunks_mut(2) {
                if pair.len() == 2
                    && map.get(&u16::from_be_bytes([pair[0], pair[1]])) == Some(&first)
                {
                    pair.copy_from_slice(&replacement.to_be_bytes());
                    replaced += 1;
                }
            }
        }
    }
    assert!(replaced > 0, "the name's text run was found on the page");
    content.encode().expect("content encodes")
}

/// Page `page` (1-based) of `pdf` rendered as a printer or scanner would see it.
fn render_page_png(pdf: &Path, page: u32, dpi: u32, dir: &Path) -> Option<Vec<u8>> {
    let pdftoppm = Path::new("/usr/bin/pdftoppm");
    if !pdftoppm.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have poppler-utils (pdftoppm): scripts/test installs it"
        );
        eprintln!("skipping the rendered-page cases: /usr/bin/pdftoppm not installed");
        return None;
    }
    let prefix = dir.join(format!("render-{page}-{dpi}"));
    let status = std::process::Command::new(pdftoppm)
        .args(["-png", "-singlefile", "-r", &dpi.to_string()])
        .args(["-f", &page.to_string(), "-l", &page.to_string()])
        .arg(pdf)
        .arg(&prefix)
        .status()
        .expect("pdftoppm runs");
    assert!(status.success(), "pdftoppm failed");
    Some(std::fs::read(prefix.with_extension("png")).expect("rendered page"))
}

fn as_jpeg(png: &[u8], quality: u8) -> Vec<u8> {
    let image = image::load_from_memory(png)
        .expect("PNG decodes")
        .into_luma8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image)
        .expect("JPEG encodes");
    out
}

fn rfc3339(unix_s: i64) -> String {
    jiff::Timestamp::from_second(unix_s)
        .expect("instant")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_and_scan_tamper_corpus() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let big = sb.card(BIG_HOUSEHOLD_CARD).clone();
    let single = sb.card(SINGLE_CARD).clone();
    let household_doc = printed(
        sb.issue(
            &big,
            CertificateOrder {
                route: Route::Residence,
                certificate: household(),
                copies: 2,
            },
        )
        .await
        .expect("household issued"),
    );
    assert_eq!(household_doc.page_count, 8, "2 sheets × 2 sides × 2 copies");
    let other_doc = printed(
        sb.order(&single, Route::Residence, household())
            .await
            .expect("other resident's record issued"),
    );
    let seal_doc = printed(
        sb.order(&single, Route::Residence, CertificateKind::SealRegistration)
            .await
            .expect("seal registration issued"),
    );

    let settings = Settings::load(&sb.running.layout.center_config).expect("center settings");
    let now_unix_ms = center::clock::Clock::now_unix_ms(&*sb.clock);
    let list_path = sb.dir.join("trust-list.json");
    let list = center::trust_list::export_at(&settings, &list_path, now_unix_ms)
        .await
        .expect("trust list exported");
    let center_key = center::trust_list::load_center_key(&settings.center_key_path)
        .expect("center key")
        .public();
    let v = Verifier {
        list: list.clone(),
        center_key,
        now_unix_s: now_unix_ms / 1000,
    };
    let genuine = std::fs::read(&household_doc.pdf_path).expect("PDF");

    // Genuine documents.
    let answer = v.expect(
        "genuine household PDF",
        &genuine,
        Verdict::Valid,
        Reason::Ok,
    );
    assert_eq!(answer.seals.len(), 4, "one seal per back page");
    assert_eq!((answer.pdf_pages, answer.copies), (Some(8), Some(2)));
    let fields = answer.fields().expect("signed fields");
    assert_eq!(fields.serial, household_doc.request_id);
    assert_eq!(fields.name, big.holder_name);
    assert_eq!(fields.page_count, 2);
    for (doc, name) in [
        (&other_doc, &single.holder_name),
        (&seal_doc, &single.holder_name),
    ] {
        let bytes = std::fs::read(&doc.pdf_path).expect("PDF");
        let answer = v.expect(&doc.certificate_title, &bytes, Verdict::Valid, Reason::Ok);
        assert_eq!(&answer.fields().expect("fields").name, name);
    }
    let seal_answer = v.check(&std::fs::read(&seal_doc.pdf_path).expect("PDF"));
    assert!(
        seal_answer
            .fields()
            .and_then(|f| f.seal_registration_number.as_ref())
            .is_some(),
        "印鑑登録証明書 signs its registration number"
    );

    // Scans and photos of a back page.
    if let Some(png) = render_page_png(&household_doc.pdf_path, 2, 150, &sb.dir) {
        let answer = v.expect("back page at 150 dpi", &png, Verdict::Valid, Reason::Ok);
        assert_eq!(answer.fields().expect("fields").page, 1);
        let jpeg = as_jpeg(&png, 80);
        v.expect(
            "back page photographed (JPEG)",
            &jpeg,
            Verdict::Valid,
            Reason::Ok,
        );
        let front = render_page_png(&household_doc.pdf_path, 1, 150, &sb.dir).expect("front");
        v.expect(
            "front page only: no seal to read",
            &front,
            Verdict::Unknown,
            Reason::Unreadable,
        );
    }

    // Front data changed: one character of the name in the carried front data.
    let mut forged = load(&household_doc.pdf_path);
    let stream = front_data_stream(&mut forged);
    let data = String::from_utf8(stream.decompressed_content().expect("inflates")).expect("JSON");
    let first_char = big.holder_name.chars().next().expect("a name");
    assert!(data.contains(&big.holder_name));
    stream.set_plain_content(data.replacen(first_char, "山", 1).into_bytes());
    v.expect(
        "front data altered",
        &save(forged),
        Verdict::Invalid,
        Reason::FrontDigestMismatch,
    );

    // Front data removed.
    let mut forged = load(&household_doc.pdf_path);
    forged
        .catalog_mut()
        .expect("catalog")
        .remove(schemas::PDF_FRONT_DATA_KEY.as_bytes());
    v.expect(
        "front data removed",
        &save(forged),
        Verdict::Invalid,
        Reason::FrontDigestMismatch,
    );

    // The name edited in the printed front (the carried data untouched): one glyph of
    // the name's text run replaced by another glyph of the same font.
    let mut forged = load(&household_doc.pdf_path);
    let edited = with_name_glyph_replaced(&forged, 0, &big.holder_name);
    set_page_content(&mut forged, 0, edited);
    v.expect(
        "name edited on the printed front",
        &save(forged),
        Verdict::Invalid,
        Reason::FrontTextMismatch,
    );

    // A back page (its seal) from another certificate.
    let other = load(&other_doc.pdf_path);
    let mut forged = load(&household_doc.pdf_path);
    set_page_content(&mut forged, 3, page_content(&other, 1));
    v.expect(
        "back page of another certificate",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // A whole sheet (front and back pages, with their request ids) of another
    // certificate put in place of sheet 2: the page objects themselves, renumbered.
    let mut forged = load(&household_doc.pdf_path);
    let foreign_front = page_content(&other, 0);
    let foreign_back = page_content(&other, 1);
    set_page_content(&mut forged, 2, foreign_front);
    set_page_content(&mut forged, 3, foreign_back);
    for index in [2, 3] {
        let page = page_ids(&forged)[index];
        forged.get_dictionary_mut(page).expect("page").set(
            schemas::PDF_PAGE_REQUEST_ID_KEY,
            Object::string_literal(other_doc.request_id.to_string()),
        );
    }
    v.expect(
        "sheet of another certificate",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // Pages reordered: sheets 1 and 2 of the first copy swapped.
    let mut forged = load(&household_doc.pdf_path);
    kids_mut(&mut forged)[0..4].rotate_left(2);
    v.expect(
        "sheets reordered",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // Front and back of a sheet swapped.
    let mut forged = load(&household_doc.pdf_path);
    kids_mut(&mut forged).swap(0, 1);
    v.expect(
        "front and back swapped",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // The last sheet dropped (a copy with a page missing).
    let mut forged = load(&household_doc.pdf_path);
    kids_mut(&mut forged).truncate(6);
    forged.renumber_objects();
    v.expect(
        "a sheet missing",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // A back page whose seal was painted over.
    let mut forged = load(&household_doc.pdf_path);
    set_page_content(&mut forged, 1, b"1 g 0 0 595 842 re f".to_vec());
    v.expect(
        "seal painted over",
        &save(forged),
        Verdict::Invalid,
        Reason::NoSeal,
    );

    // A page claiming another request id.
    let mut forged = load(&household_doc.pdf_path);
    let page = page_ids(&forged)[4];
    forged.get_dictionary_mut(page).expect("page").set(
        schemas::PDF_PAGE_REQUEST_ID_KEY,
        Object::string_literal(other_doc.request_id.to_string()),
    );
    v.expect(
        "page with a foreign request id",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );

    // The same through the center's public verification API, by a client that has no
    // certificate (a bank, a landlord): the genuine PDF and a reordered one.
    let public_url = sb
        .running
        .public_url()
        .expect("the sandbox has a public listener");
    let tls = mtls::client_config_without_client_auth(&settings.lgwan_tls.ca).expect("TLS");
    let relying_party = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    let mut reordered = load(&household_doc.pdf_path);
    kids_mut(&mut reordered).swap(0, 1);
    for (bytes, verdict, reason) in [
        (genuine.clone(), "VALID", "ok"),
        (save(reordered), "INVALID", "page_mismatch"),
    ] {
        let response = relying_party
            .post(format!("{public_url}/v1/verify"))
            .header("content-type", "application/pdf")
            .body(bytes)
            .send()
            .await
            .expect("the public API answers");
        assert_eq!(response.status().as_u16(), 200);
        let json: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(
            (json["verdict"].as_str(), json["reason"].as_str()),
            (Some(verdict), Some(reason)),
            "{json}"
        );
        if verdict == "VALID" {
            assert_eq!(json["fields"]["name"], big.holder_name.as_str());
            assert_eq!(json["copies"], 2);
        }
    }

    // Damaged or foreign files are not decided.
    v.expect(
        "truncated PDF",
        &genuine[..genuine.len() / 3],
        Verdict::Unknown,
        Reason::Unreadable,
    );
    v.expect(
        "not a PDF or image",
        b"hello",
        Verdict::Unknown,
        Reason::Unreadable,
    );

    // A stale list decides nothing, however genuine the document.
    let stale = Verifier {
        now_unix_s: list.payload.next_update_unix_s + 1,
        ..v
    };
    stale.expect(
        "genuine PDF, stale list",
        &genuine,
        Verdict::Unknown,
        Reason::TrustListStale,
    );
    let v = Verifier {
        now_unix_s: now_unix_ms / 1000,
        ..stale
    };

    // The document revoked in a newer list.
    let mut revoking = settings.clone();
    revoking
        .trust_list
        .revoked_documents
        .push(RevokedDocumentSettings {
            request_id: household_doc.request_id.to_string(),
            revoked_at: rfc3339(now_unix_ms / 1000),
        });
    let revoked_list_path = sb.dir.join("trust-list-revoked.json");
    let revoked_list = center::trust_list::export_at(&revoking, &revoked_list_path, now_unix_ms)
        .await
        .expect("trust list exported");
    assert!(revoked_list.payload.version > list.payload.version);
    let revoked = Verifier {
        list: revoked_list,
        ..v
    };
    revoked.expect(
        "revoked document",
        &genuine,
        Verdict::Invalid,
        Reason::DocumentRevoked,
    );
    revoked.expect(
        "another document, same list",
        &std::fs::read(&other_doc.pdf_path).expect("PDF"),
        Verdict::Valid,
        Reason::Ok,
    );

    // The command a relying party runs: exit 0 / 1 / 2 and one JSON object.
    let tampered_path = sb.dir.join("tampered.pdf");
    let mut forged = load(&household_doc.pdf_path);
    kids_mut(&mut forged).swap(0, 1);
    std::fs::write(&tampered_path, save(forged)).expect("written");
    let garbage_path = sb.dir.join("garbage.pdf");
    std::fs::write(&garbage_path, b"%PDF-1.7 nothing else").expect("written");
    let key_b64 = schemas::b64::Base64Bytes::encode(&center_key.0);
    let at = rfc3339(now_unix_ms / 1000);
    for (path, exit, verdict) in [
        (&household_doc.pdf_path, 0, "VALID"),
        (&tampered_path, 1, "INVALID"),
        (&garbage_path, 2, "UNKNOWN"),
    ] {
        let output = center_verify(path, &list_path, &key_b64, &at);
        assert_eq!(
            output.status.code(),
            Some(exit),
            "{}: {output:?}",
            path.display()
        );
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(json["verdict"], verdict, "{json}");
        assert_eq!(json["input"], "pdf");
    }
    sb.stop().await;
}

fn center_verify(input: &PathBuf, list: &Path, key_b64: &str, at: &str) -> std::process::Output {
    std::process::Command::new(e2e::procs::binary("center"))
        .arg("verify")
        .arg(input)
        .arg("--trust-list")
        .arg(list)
        .args(["--center-key", key_b64, "--at", at, "--json"])
        .output()
        .expect("center verify runs")
}
