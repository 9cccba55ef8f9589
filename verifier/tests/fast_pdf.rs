//! The fast PDF check (`verify_pdf_fast`) against the full one (`verify_input`): it
//! accepts every certificate type the production composer makes, and it refuses,
//! with the full check's reason, every forgery of the cases it covers (front data
//! altered or removed, a seal from another document, a page's request id changed,
//! pages reordered, a seal under an untrusted key, a back page without its seal).

#[path = "../../composer/tests/common/mod.rs"]
mod common;

use composer::{Composer, DocumentInput, SealImage};
use lopdf::{Document, Object, ObjectId};
use schemas::{
    CertificateType, FrontSide, KeyPair, KeyStatus, MunicipalityCode, RequestId, SealPayload,
    Signed, SignedSeal, SignedTrustList, TrustList, TrustedKey, TRUST_LIST_FORMAT,
};
use verifier::{verify_input, verify_pdf_fast, DocumentVerification, Input, Reason, Verdict};

/// The fixture's seals are issued at 1_795_400_000; judge a minute later.
const NOW: i64 = 1_795_400_060;

fn municipality() -> KeyPair {
    KeyPair::from_seed([10; 32])
}

fn center() -> KeyPair {
    KeyPair::from_seed([1; 32])
}

fn trust_list() -> SignedTrustList {
    Signed::sign(
        TrustList {
            format: TRUST_LIST_FORMAT.into(),
            version: 1,
            issued_at_unix_s: NOW - 60,
            next_update_unix_s: NOW + 86_400,
            keys: vec![TrustedKey {
                kid: municipality().kid(),
                public_key: municipality().public(),
                municipality_code: MunicipalityCode::parse("212113").expect("code"),
                not_before_unix_s: NOW - 86_400,
                usage_end_unix_s: NOW + 86_400,
                verify_until_unix_s: NOW + 365 * 86_400,
                status: KeyStatus::Active,
            }],
            revoked_documents: Vec::new(),
        },
        &center(),
    )
    .expect("list signs")
}

fn compose(front: &FrontSide, request_id: RequestId, seals: &[String], copies: u8) -> Vec<u8> {
    let composer = Composer::with_embedded_font().expect("font loads");
    let seal_png = composer::render_official_seal_png("美濃加茂市長之印", 128).expect("seal");
    let official_seal = SealImage::from_png(&seal_png).expect("seal decodes");
    composer
        .compose(&DocumentInput {
            request_id,
            front,
            seal_qr_texts: seals,
            official_seal: Some(&official_seal),
            copies,
            verify_url: common::VERIFY_URL,
        })
        .expect("composes")
        .bytes
}

fn genuine(front: &FrontSide, copies: u8) -> (RequestId, Vec<u8>) {
    let request_id = RequestId::new_random();
    let seals = common::seals_for(front, request_id, &municipality());
    (request_id, compose(front, request_id, &seals, copies))
}

struct Both {
    full: DocumentVerification,
    fast: DocumentVerification,
}

fn both(pdf: &[u8]) -> Both {
    both_with(pdf, &trust_list())
}

fn both_with(pdf: &[u8], list: &SignedTrustList) -> Both {
    Both {
        full: verify_input(Input::Pdf(pdf), list, &center().public(), NOW),
        fast: verify_pdf_fast(pdf, list, &center().public(), NOW),
    }
}

/// The fast check refuses `pdf` as the full check does: same verdict, same reason.
#[track_caller]
fn assert_refused(case: &str, pdf: &[u8], verdict: Verdict, reason: Reason) {
    let Both { full, fast } = both(pdf);
    assert_eq!(
        (full.verdict, full.reason),
        (verdict, reason),
        "{case}, full: {full:#?}"
    );
    assert_eq!(
        (fast.verdict, fast.reason),
        (verdict, reason),
        "{case}, fast: {fast:#?}"
    );
}

fn load(pdf: &[u8]) -> Document {
    Document::load_mem(pdf).expect("a readable PDF")
}

fn save(mut document: Document) -> Vec<u8> {
    let mut out = Vec::new();
    document.save_to(&mut out).expect("PDF written");
    out
}

fn page_ids(document: &Document) -> Vec<ObjectId> {
    document.get_pages().into_values().collect()
}

/// Gives page `index` (0-based) the drawing `content`, in a new stream.
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

#[test]
fn every_certificate_type_the_composer_makes_is_accepted() {
    let fronts = [
        common::six_member_front(),
        // Several sheets.
        common::front_with_n_members(14),
        common::resident_items_front(3),
        common::seal_registration_front(common::impression_png()),
        common::income_tax_front(),
        common::tax_payment_front(),
        common::family_register_front(3, false),
        common::family_register_front(1, true),
        common::attachment_front(3),
    ];
    let mut types = std::collections::BTreeSet::new();
    for front in &fronts {
        types.insert(common::certificate_type(front).as_str());
        for copies in [1, 2] {
            let (request_id, pdf) = genuine(front, copies);
            let Both { full, fast } = both(&pdf);
            let case = format!("{:?} × {copies}", common::certificate_type(front));
            assert_eq!(
                (full.verdict, full.reason),
                (Verdict::Valid, Reason::Ok),
                "{case}, full: {full:#?}"
            );
            assert_eq!(
                (fast.verdict, fast.reason),
                (Verdict::Valid, Reason::Ok),
                "{case}, fast: {fast:#?}"
            );
            let fields = fast.fields().expect("signed fields");
            assert_eq!(fields.serial, request_id, "{case}");
            assert_eq!(fields.name, "髙橋 一郎", "{case}");
            assert_eq!(fast.fields(), full.fields(), "{case}");
            assert_eq!(
                (fast.pdf_pages, fast.copies),
                (full.pdf_pages, full.copies),
                "{case}"
            );
            assert_eq!(fast.copies, Some(u32::from(copies)), "{case}");
            // One seal per back page, the same ones.
            assert_eq!(fast.seals, full.seals, "{case}");
        }
    }
    let all: std::collections::BTreeSet<&str> =
        CertificateType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, all, "a front for every certificate type");
}

#[test]
fn altered_or_removed_front_data_is_refused() {
    let front = common::six_member_front();
    let (_, pdf) = genuine(&front, 1);

    let mut forged = load(&pdf);
    let stream = front_data_stream(&mut forged);
    let data = String::from_utf8(stream.decompressed_content().expect("inflates")).expect("JSON");
    assert!(data.contains("髙橋"));
    stream.set_plain_content(data.replacen('髙', "高", 1).into_bytes());
    assert_refused(
        "front data altered",
        &save(forged),
        Verdict::Invalid,
        Reason::FrontDigestMismatch,
    );

    let mut forged = load(&pdf);
    forged
        .catalog_mut()
        .expect("catalog")
        .remove(schemas::PDF_FRONT_DATA_KEY.as_bytes());
    assert_refused(
        "front data removed",
        &save(forged),
        Verdict::Invalid,
        Reason::FrontDigestMismatch,
    );
}

#[test]
fn a_seal_from_another_document_is_refused() {
    let front = common::six_member_front();
    let (_, pdf) = genuine(&front, 1);
    let (_, other) = genuine(&front, 1);
    let other = load(&other);
    let mut forged = load(&pdf);
    set_page_content(&mut forged, 1, page_content(&other, 1));
    assert_refused(
        "back page of another request",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );
}

#[test]
fn a_page_with_another_request_id_is_refused() {
    let front = common::six_member_front();
    let (_, pdf) = genuine(&front, 2);
    for index in [0, 3] {
        let mut forged = load(&pdf);
        let page = page_ids(&forged)[index];
        forged.get_dictionary_mut(page).expect("page").set(
            schemas::PDF_PAGE_REQUEST_ID_KEY,
            Object::string_literal(RequestId::new_random().to_string()),
        );
        assert_refused(
            &format!("page {index} of another request"),
            &save(forged),
            Verdict::Invalid,
            Reason::PageMismatch,
        );
        let mut forged = load(&pdf);
        let page = page_ids(&forged)[index];
        forged
            .get_dictionary_mut(page)
            .expect("page")
            .remove(schemas::PDF_PAGE_REQUEST_ID_KEY.as_bytes());
        assert_refused(
            &format!("page {index} without a request id"),
            &save(forged),
            Verdict::Invalid,
            Reason::PageMismatch,
        );
    }
}

#[test]
fn sheets_out_of_order_are_refused() {
    // Several sheets per copy: the first two back pages swapped.
    let front = common::front_with_n_members(14);
    assert!(front.page_count() >= 2);
    let (_, pdf) = genuine(&front, 1);
    let mut forged = load(&pdf);
    let (second_back, first_back) = (page_content(&forged, 3), page_content(&forged, 1));
    set_page_content(&mut forged, 1, second_back);
    set_page_content(&mut forged, 3, first_back);
    assert_refused(
        "back pages swapped",
        &save(forged),
        Verdict::Invalid,
        Reason::PageMismatch,
    );
}

#[test]
fn a_back_page_without_its_seal_is_refused() {
    let front = common::six_member_front();
    let (_, pdf) = genuine(&front, 1);
    let mut forged = load(&pdf);
    // The front's drawing on the back: no QR at all.
    let front_content = page_content(&forged, 0);
    set_page_content(&mut forged, 1, front_content);
    assert_refused(
        "back page without a seal",
        &save(forged),
        Verdict::Invalid,
        Reason::NoSeal,
    );
}

#[test]
fn another_residents_document_names_that_resident() {
    // A genuine document, but signed for someone else: both checks accept it and show
    // whose it is; the load generator compares that name with who asked.
    let front = common::six_member_front();
    let request_id = RequestId::new_random();
    let seals: Vec<String> = common::seals_for(&front, request_id, &municipality())
        .iter()
        .map(|text| {
            let seal = SignedSeal::from_qr_text(text).expect("decodes");
            let mut payload: SealPayload = seal.unverified_payload().expect("payload");
            payload.name = "山田 花子".into();
            SignedSeal::sign(&payload, &municipality()).to_qr_text()
        })
        .collect();
    let pdf = compose(&front, request_id, &seals, 1);
    let Both { full, fast } = both(&pdf);
    assert_eq!(
        full.reason,
        Reason::FrontTextMismatch,
        "the front shows 髙橋"
    );
    assert_eq!(
        fast.reason,
        Reason::Ok,
        "the fast check does not read the front text"
    );
    assert_eq!(fast.fields().expect("fields").name, "山田 花子");
}

#[test]
fn seals_under_an_untrusted_key_or_a_stale_list_are_refused() {
    let front = common::six_member_front();
    let request_id = RequestId::new_random();
    let seals = common::seals_for(&front, request_id, &KeyPair::from_seed([99; 32]));
    let pdf = compose(&front, request_id, &seals, 1);
    assert_refused(
        "seal under an unknown key",
        &pdf,
        Verdict::Invalid,
        Reason::UnknownKid,
    );

    let (_, pdf) = genuine(&front, 1);
    let mut stale = trust_list().payload;
    stale.next_update_unix_s = NOW - 1;
    let stale = Signed::sign(stale, &center()).expect("signs");
    let Both { full, fast } = both_with(&pdf, &stale);
    assert_eq!(
        (full.verdict, full.reason),
        (Verdict::Unknown, Reason::TrustListStale)
    );
    assert_eq!(
        (fast.verdict, fast.reason),
        (Verdict::Unknown, Reason::TrustListStale)
    );
}

#[test]
fn hostile_pdfs_are_unreadable_not_a_crash() {
    for bytes in [
        b"%PDF-1.7\n".to_vec(),
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF".to_vec(),
        Vec::new(),
    ] {
        let fast = verify_pdf_fast(&bytes, &trust_list(), &center().public(), NOW);
        assert_ne!(fast.verdict, Verdict::Valid, "{fast:#?}");
    }
}
