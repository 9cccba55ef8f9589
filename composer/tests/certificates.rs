//! Every certificate type end to end: its key fields in the text poppler extracts,
//! pagination on the shared rule (one seal per front page), the attestation and the
//! official seal on the last front page only, and refusals (too long, unprintable, a
//! seal that belongs elsewhere, a bad 印影).

mod common;

use common::{
    attachment_front, family_register_front, front_with_n_members, impression_png,
    income_tax_front, pdf_text, resident_items_front, seal_registration_front, seals_for,
    seals_with, tax_payment_front, IMPRESSION_EDGE_PX, VERIFY_URL,
};
use composer::layout::{Document, Item};
use composer::{ComposeError, ComposedPdf, Composer, DocumentInput, SealImage};
use schemas::{CertificateType, FrontSide, KeyPair, RequestId, PDF_PAGE_REQUEST_ID_KEY};
use std::sync::OnceLock;

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
    key: KeyPair,
    front: FrontSide,
    seals: Vec<String>,
}

impl Fixture {
    fn new(front: FrontSide) -> Self {
        let request_id = RequestId::new_random();
        let key = KeyPair::generate();
        let seals = seals_for(&front, request_id, &key);
        Self {
            request_id,
            key,
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

    fn compose(&self, copies: u8) -> Result<ComposedPdf, ComposeError> {
        composer().compose(&self.input(copies))
    }

    fn lay_out(&self) -> Result<Document, ComposeError> {
        composer().lay_out(&self.input(1))
    }
}

/// Composes one copy and returns the extracted text, or `None` without poppler.
fn text_of(fixture: &Fixture) -> Option<String> {
    let composed = fixture.compose(1).expect("composes");
    pdf_text(&composed.bytes)
}

/// Each expected string must be extracted; a letter-spaced label (「本　籍」) may come
/// out of pdftotext split over lines, so those are compared without whitespace.
fn assert_contains_all(text: &str, expected: &[&str]) {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let squashed = squash(text);
    for e in expected {
        let found = if e.contains('\u{3000}') {
            squashed.contains(&squash(e))
        } else {
            text.contains(e)
        };
        assert!(found, "{e:?} not extracted from:\n{text}");
    }
}

// ---------------------------------------------------------------------------------
// Key fields of each type, as extracted.

#[test]
fn resident_record_items_prints_the_four_items_only() {
    let fixture = Fixture::new(resident_items_front(3));
    let Some(text) = text_of(&fixture) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "住民票記載事項証明書",
            "美濃加茂市",
            "岐阜県美濃加茂市太田町1234番地の5",
            "髙橋 﨑子",
            "たかはし へんた",
            "昭和52年11月3日",
            "上記の事項は、住民票の記載事項と相違ないことを証明する。",
            "加茂野 太郎",
        ],
    );
    // Not the full 住民票 layout: no 住民となった年月日 / 前住所 / 本籍 rows.
    assert!(!text.contains("住民となった年月日"), "{text}");
    assert!(!text.contains("前住所"), "{text}");
}

#[test]
fn seal_registration_prints_its_number_and_the_impression_image() {
    let fixture = Fixture::new(seal_registration_front(impression_png()));
    let composed = fixture.compose(1).expect("composes");
    assert_eq!(composed.page_count, 2);

    // The 印影 is its own image XObject (200 px), besides the 256 px official seal.
    let pdf = lopdf::Document::load_mem(&composed.bytes).expect("lopdf parses");
    let widths = image_widths(&pdf);
    assert!(
        widths.contains(&i64::from(IMPRESSION_EDGE_PX)),
        "no impression image among {widths:?}"
    );
    assert!(widths.contains(&256), "no official seal among {widths:?}");

    // And it is drawn, inside the framed 印影 box, on the front.
    let document = fixture.lay_out().expect("lays out");
    let drawn = document.sheets[0]
        .front
        .items
        .iter()
        .filter(|item| matches!(item, Item::SealImpression { .. }))
        .count();
    assert_eq!(drawn, 1);
    assert!(document.seal_impression.is_some());

    let Some(text) = pdf_text(&composed.bytes) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "印鑑登録証明書",
            "登録番号",
            "第2024-000317号",
            "髙橋 一郎",
            "たかはし いちろう",
            "昭和50年4月12日",
            "平成22年3月8日",
            "印　影",
            "この写しは、登録されている印影と相違ないことを証明する。",
        ],
    );
}

/// Widths of every image XObject in the file (soft masks included).
fn image_widths(pdf: &lopdf::Document) -> Vec<i64> {
    pdf.objects
        .values()
        .filter_map(|object| object.as_stream().ok())
        .filter(|stream| {
            stream.dict.get(b"Subtype").and_then(|s| s.as_name()).ok() == Some(b"Image".as_slice())
        })
        .filter_map(|stream| stream.dict.get(b"Width").and_then(|w| w.as_i64()).ok())
        .collect()
}

#[test]
fn a_bad_seal_impression_png_is_invalid_image() {
    let fixture = Fixture::new(seal_registration_front(b"\x89PNG not really".to_vec()));
    assert!(
        matches!(fixture.compose(1), Err(ComposeError::InvalidImage(_))),
        "{:?}",
        fixture.compose(1).map(|c| c.page_count)
    );
}

#[test]
fn income_tax_prints_formatted_amounts() {
    let fixture = Fixture::new(income_tax_front());
    let Some(text) = text_of(&fixture) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "所得・課税証明書",
            "令和8年度",
            "令和7年分",
            "髙橋 一郎",
            "給与収入",
            "5,200,000円",
            "3,450,000円",
            "△120,000円",
            "1,234,567円",
            "市民税",
            "125,700円",
            "83,800円",
        ],
    );
    assert!(!text.contains("3450000"), "amounts are grouped: {text}");
}

#[test]
fn tax_payment_prints_the_table() {
    let fixture = Fixture::new(tax_payment_front());
    let Some(text) = text_of(&fixture) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "納税証明書",
            "令和8年度",
            "税　目",
            "納付済額",
            "未納額",
            "固定資産税",
            "1,048,200円",
            "786,150円",
            "262,050円",
            "軽自動車税",
            "10,800円",
            "0円",
        ],
    );
}

#[test]
fn family_register_prints_header_persons_events_and_the_removed_mark() {
    let fixture = Fixture::new(family_register_front(5, false));
    let composed = fixture.compose(1).expect("composes");
    assert_eq!(composed.page_count, 6, "3 front pages + 3 backs");
    let Some(text) = pdf_text(&composed.bytes) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "戸籍全部事項証明書",
            "本　籍",
            "岐阜県美濃加茂市太田町1234番地",
            "髙橋 一郎",
            "戸籍事項",
            "戸籍編製",
            "【編製日】平成22年3月8日",
            "戸籍に記録されている者",
            "【名】",
            "【生年月日】",
            "【父】",
            "【母】",
            "【続柄】",
            "長男",
            "身分事項",
            "【出生地】岐阜県美濃加茂市",
            "髙橋 葛男",
            "除籍",
            "【婚姻日】令和6年6月6日",
            "これは、戸籍に記録されている事項の全部を証明した書面である。",
        ],
    );
    // Exactly one person (the fourth) is removed.
    assert_eq!(text.matches("除籍").count(), 1, "{text}");
}

#[test]
fn family_register_individual_fits_its_own_type() {
    let fixture = Fixture::new(family_register_front(1, true));
    assert!(fixture
        .front
        .fits(CertificateType::FamilyRegisterIndividual));
    let Some(text) = text_of(&fixture) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "戸籍個人事項証明書",
            "これは、戸籍中の一部の者について記録されている事項を証明した書面である。",
        ],
    );
}

#[test]
fn attachment_prints_the_address_history() {
    let fixture = Fixture::new(attachment_front(11));
    let composed = fixture.compose(1).expect("composes");
    assert_eq!(composed.page_count, 4, "2 front pages + 2 backs");
    let Some(text) = pdf_text(&composed.bytes) else {
        return;
    };
    assert_contains_all(
        &text,
        &[
            "戸籍の附票の写し",
            "本　籍",
            "筆頭者",
            "髙橋 一郎",
            "髙橋 邉太",
            "住所を定めた年月日",
            "岐阜県美濃加茂市太田町100番地",
            "平成23年4月1日",
            // The ninth to eleventh entries on the second page.
            "岐阜県美濃加茂市太田町108番地",
            "岐阜県美濃加茂市太田町110番地",
            "平成33年4月1日",
        ],
    );
}

#[test]
fn attachment_without_domicile_leaves_those_rows_out() {
    let mut front = attachment_front(2);
    let FrontSide::FamilyRegisterAttachment(f) = &mut front else {
        panic!("an attachment fixture");
    };
    f.domicile = None;
    f.head_name = None;
    let fixture = Fixture::new(front);
    let Some(text) = text_of(&fixture) else {
        return;
    };
    assert!(!text.contains("筆頭者"), "{text}");
    assert!(!text.contains("岐阜県美濃加茂市太田町1234番地"), "{text}");
    assert_contains_all(&text, &["髙橋 邉太", "住所を定めた年月日"]);
}

// ---------------------------------------------------------------------------------
// Pagination on the shared rule.

/// (front, expected front pages per copy).
fn paginated_fronts() -> Vec<(FrontSide, usize)> {
    vec![
        (family_register_front(5, false), 3),
        (front_with_n_members(8), 2),
        (attachment_front(11), 2),
        (resident_items_front(7), 2),
        (seal_registration_front(impression_png()), 1),
        (income_tax_front(), 1),
        (tax_payment_front(), 1),
    ]
}

#[test]
fn every_type_paginates_on_the_shared_rule_with_the_request_id_on_every_page() {
    let copies = 2u8;
    for (front, fronts_per_copy) in paginated_fronts() {
        let title = front.title().to_owned();
        assert_eq!(front.page_count(), fronts_per_copy, "{title}");
        let fixture = Fixture::new(front);
        let composed = fixture.compose(copies).expect("composes");
        let total = usize::from(copies) * fronts_per_copy * 2;
        assert_eq!(composed.page_count as usize, total, "{title}");

        let pdf = lopdf::Document::load_mem(&composed.bytes).expect("lopdf parses");
        let pages = pdf.get_pages();
        assert_eq!(pages.len(), total, "{title}");
        for &id in pages.values() {
            let page = pdf.get_dictionary(id).expect("page dictionary");
            let value = page
                .get(PDF_PAGE_REQUEST_ID_KEY.as_bytes())
                .and_then(|v| v.as_str())
                .expect("every page carries the request id");
            assert_eq!(value, fixture.request_id.to_string().as_bytes(), "{title}");
        }

        let Some(text) = pdf_text(&composed.bytes) else {
            continue;
        };
        // pdftotext ends every page with a form feed.
        let page_texts: Vec<&str> = text.split('\u{c}').take(total).collect();
        assert_eq!(page_texts.len(), total, "{title}");
        let certification = &fixture.front.attestation().certification;
        for (index, page_text) in page_texts.iter().enumerate() {
            let side = index % (fronts_per_copy * 2);
            let sheet = side / 2;
            let is_front = side % 2 == 0;
            assert!(
                page_text.contains(&format!("請求番号 {}", fixture.request_id)),
                "{title} page {index} lacks the request id:\n{page_text}"
            );
            assert!(
                page_text.contains(&format!("{}/{fronts_per_copy}", sheet + 1)),
                "{title} page {index} lacks its number:\n{page_text}"
            );
            if is_front {
                assert!(page_text.contains(&title), "{title} page {index}");
                assert!(page_text.contains("美濃加茂市"), "{title} page {index}");
                // The attestation only on the last front page of each copy.
                assert_eq!(
                    page_text.contains(certification.as_str()),
                    sheet + 1 == fronts_per_copy,
                    "{title} page {index}:\n{page_text}"
                );
            }
        }
    }
}

#[test]
fn the_official_seal_is_stamped_on_the_last_front_page_only() {
    let fixture = Fixture::new(family_register_front(5, false));
    let document = fixture.lay_out().expect("lays out");
    let stamped: Vec<bool> = document
        .sheets
        .iter()
        .map(|sheet| {
            sheet
                .front
                .items
                .iter()
                .any(|item| matches!(item, Item::OfficialSeal { .. }))
        })
        .collect();
    assert_eq!(stamped, [false, false, true]);
}

#[test]
fn a_seal_numbered_for_another_page_is_refused() {
    let mut fixture = Fixture::new(family_register_front(5, false));
    fixture.seals.swap(1, 2);
    assert!(
        matches!(
            fixture.compose(1),
            Err(ComposeError::SealMismatch { page: 2, .. })
        ),
        "swapped pages must be refused"
    );
    // Signed for a 2-page document: page 1/2 on a 3-page 戸籍.
    let mut fixture = Fixture::new(family_register_front(5, false));
    let short = seals_for(
        &family_register_front(4, false),
        fixture.request_id,
        &fixture.key,
    );
    fixture.seals[0] = short[0].clone();
    assert!(matches!(
        fixture.compose(1),
        Err(ComposeError::SealMismatch { page: 1, .. })
    ));
}

#[test]
fn a_seal_of_another_request_on_a_later_page_is_refused() {
    let mut fixture = Fixture::new(family_register_front(5, false));
    let other = Fixture::new(family_register_front(5, false));
    fixture.seals[2] = other.seals[2].clone();
    assert!(matches!(
        fixture.compose(1),
        Err(ComposeError::SealMismatch { page: 3, .. })
    ));
}

#[test]
fn a_seal_for_another_certificate_type_is_refused() {
    // 戸籍全部事項証明書 with seals signed as 戸籍個人事項証明書, then as 住民票.
    for wrong in [
        CertificateType::FamilyRegisterIndividual,
        CertificateType::ResidentRecord,
    ] {
        let mut fixture = Fixture::new(family_register_front(3, false));
        fixture.seals = seals_with(
            &fixture.front,
            fixture.request_id,
            &fixture.key,
            wrong.seal_doc_type(),
        );
        assert!(
            matches!(
                fixture.compose(1),
                Err(ComposeError::SealMismatch { page: 1, .. })
            ),
            "{wrong:?}"
        );
    }
}

#[test]
fn seal_count_must_match_the_front_pages() {
    let mut fixture = Fixture::new(family_register_front(5, false));
    fixture.seals.pop();
    match fixture.compose(1) {
        Err(ComposeError::SealCountMismatch { expected, got }) => {
            assert_eq!((expected, got), (3, 2))
        }
        other => panic!(
            "expected SealCountMismatch, got {:?}",
            other.map(|c| c.page_count)
        ),
    }
    let mut fixture = Fixture::new(attachment_front(11));
    let extra = fixture.seals[0].clone();
    fixture.seals.push(extra);
    assert!(matches!(
        fixture.compose(1),
        Err(ComposeError::SealCountMismatch {
            expected: 2,
            got: 3
        })
    ));
}

// ---------------------------------------------------------------------------------
// Nothing printed wrong.

fn expect_too_long(front: FrontSide, expected_field: &str) {
    let fixture = Fixture::new(front);
    match fixture.compose(1) {
        Err(ComposeError::FieldTooLong {
            field,
            width_pt,
            max_width_pt,
        }) => {
            assert_eq!(field, expected_field);
            assert!(width_pt > max_width_pt);
        }
        other => panic!(
            "expected FieldTooLong for {expected_field}, got {:?}",
            other.map(|c| c.page_count)
        ),
    }
}

#[test]
fn a_too_long_domicile_or_name_is_field_too_long() {
    let long_domicile = "岐阜県美濃加茂市太田町".repeat(12);
    let mut front = family_register_front(3, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    f.domicile = long_domicile.clone();
    expect_too_long(front, "domicile");

    let mut front = family_register_front(3, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    f.persons[2].name = "髙橋".repeat(60);
    expect_too_long(front, "persons[2].name");

    let mut front = attachment_front(3);
    let FrontSide::FamilyRegisterAttachment(f) = &mut front else {
        panic!("an attachment fixture");
    };
    f.domicile = Some(long_domicile);
    expect_too_long(front, "domicile");

    let mut front = seal_registration_front(impression_png());
    let FrontSide::SealRegistration(f) = &mut front else {
        panic!("a seal registration fixture");
    };
    f.name = "髙橋".repeat(30);
    expect_too_long(front, "name");

    let mut front = income_tax_front();
    let FrontSide::IncomeTax(f) = &mut front else {
        panic!("an income tax fixture");
    };
    f.tax_lines[1].label = "県民税".repeat(40);
    expect_too_long(front, "tax_lines[1].label");
}

#[test]
fn a_reasonably_long_domicile_is_shrunk_not_refused() {
    let mut front = family_register_front(2, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    f.domicile = "岐阜県美濃加茂市太田町字美濃加茂グランドパレス東一丁目1234番地の56".into();
    Fixture::new(front)
        .compose(1)
        .expect("fits at a smaller size");
}

#[test]
fn an_unprintable_character_in_a_register_event_is_refused() {
    let mut front = family_register_front(3, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    f.persons[1].events[0].lines[1] = "【出生地】𠮷田市".into();
    let fixture = Fixture::new(front);
    match fixture.compose(1) {
        Err(ComposeError::UnprintableCharacter { codepoint, .. }) => {
            assert_eq!(codepoint, 0x20BB7)
        }
        other => panic!(
            "expected UnprintableCharacter, got {:?}",
            other.map(|c| c.page_count)
        ),
    }
    // check_printable, as the center calls it, sees the same strings.
    assert!(matches!(
        composer().check_printable(fixture.front.printed_texts()),
        Err(ComposeError::UnprintableCharacter { .. })
    ));
}

/// An event with the most lines the contract allows.
fn three_line_event() -> schemas::RegisterEvent {
    let event = schemas::RegisterEvent {
        label: "婚姻".into(),
        lines: vec![
            "【婚姻日】令和6年6月6日".into(),
            "【配偶者氏名】渡邊 太一".into(),
            "【従前戸籍】愛知県名古屋市中区三の丸三丁目1番 渡邊 一太".into(),
        ],
    };
    // Keeps the fixture honest if the contract's bound changes.
    assert_eq!(event.lines.len(), schemas::MAX_EVENT_LINES);
    event
}

#[test]
fn the_densest_register_page_the_contract_allows_still_fits() {
    let mut front = family_register_front(2, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    let full_event = three_line_event();
    for person in &mut f.persons {
        person.events = vec![full_event.clone(); schemas::MAX_EVENTS_PER_PERSON];
    }
    f.register_events = vec![full_event; schemas::MAX_REGISTER_EVENTS];
    let fixture = Fixture::new(front);
    assert_eq!(fixture.compose(1).expect("fits, set tighter").page_count, 2);
}

#[test]
fn register_events_beyond_the_contract_are_refused() {
    let mut front = family_register_front(2, false);
    let FrontSide::FamilyRegister(f) = &mut front else {
        panic!("a family register fixture");
    };
    let full_event = three_line_event();
    for person in &mut f.persons {
        person.events = vec![full_event.clone(); schemas::MAX_EVENTS_PER_PERSON];
    }
    // 戸籍事項 beyond the contract's bound: refused before any layout.
    f.register_events = vec![full_event; schemas::MAX_REGISTER_EVENTS + 1];
    let fixture = Fixture::new(front);
    match fixture.compose(1) {
        Err(ComposeError::InvalidInput(message)) => assert!(message.contains("戸籍事項")),
        other => panic!(
            "expected InvalidInput, got {:?}",
            other.map(|c| c.page_count)
        ),
    }
}

/// Writes one PDF per type for eyeballing: `COMPOSER_SAMPLE_DIR=/tmp/samples cargo test
/// -p composer --test certificates write_sample_pdfs -- --ignored`, then `pdftoppm -png`.
#[test]
#[ignore = "writes files for manual inspection"]
fn write_sample_pdfs() {
    let dir = std::env::var("COMPOSER_SAMPLE_DIR").expect("set COMPOSER_SAMPLE_DIR");
    std::fs::create_dir_all(&dir).unwrap();
    for (index, (front, _)) in paginated_fronts().into_iter().enumerate() {
        let fixture = Fixture::new(front);
        let composed = fixture.compose(1).unwrap();
        let path = std::path::Path::new(&dir).join(format!("{index}.pdf"));
        std::fs::write(path, composed.bytes).unwrap();
    }
}
