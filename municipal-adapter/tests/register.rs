//! The register samples, the store, 和暦 and the server CLI, without HTTP.

mod common;

use jiff::civil::{date, Date};
use municipal_adapter::register::{
    read_register_dir, ParsedRegister, RegisterStore, ResidentStatus,
};
use municipal_adapter::samples::{
    issuable_cards, sample_card_bindings, sample_card_serial, sample_register_dir,
    LARGE_HOUSEHOLD_CARD, SPECIAL_CARDS, UNBOUND_SUFFIXES,
};
use municipal_adapter::wareki::{format_wareki, to_wareki, WarekiError};
use municipal_adapter::SAMPLE_CODES;
use schemas::{CardSerial, MunicipalityCode};

const TODAY: Date = date(2026, 11, 23);

#[test]
fn wareki_edge_dates() {
    let cases = [
        ((2019, 4, 30), "平成31年4月30日"),
        ((2019, 5, 1), "令和元年5月1日"),
        ((2019, 12, 31), "令和元年12月31日"),
        ((2020, 1, 1), "令和2年1月1日"),
        ((2026, 11, 23), "令和8年11月23日"),
        ((1989, 1, 7), "昭和64年1月7日"),
        ((1989, 1, 8), "平成元年1月8日"),
        ((1926, 12, 24), "大正15年12月24日"),
        ((1926, 12, 25), "昭和元年12月25日"),
        ((1912, 7, 29), "明治45年7月29日"),
        ((1912, 7, 30), "大正元年7月30日"),
        ((1873, 1, 1), "明治6年1月1日"),
        ((2000, 2, 29), "平成12年2月29日"),
    ];
    for ((y, m, d), expected) in cases {
        assert_eq!(
            format_wareki(date(y, m, d)).unwrap(),
            expected,
            "{y}-{m}-{d}"
        );
    }
    let reiwa = to_wareki(date(2019, 5, 1)).unwrap();
    assert_eq!(
        (reiwa.era, reiwa.year, reiwa.month, reiwa.day),
        ("令和", 1, 5, 1)
    );
    assert_eq!(
        format_wareki(date(1872, 12, 31)),
        Err(WarekiError::BeforeGregorianAdoption(date(1872, 12, 31)))
    );
}

fn parsed(code: &str) -> ParsedRegister {
    read_register_dir(
        MunicipalityCode::parse(code).unwrap(),
        &sample_register_dir(code).unwrap(),
        TODAY,
    )
    .unwrap_or_else(|e| panic!("{code}: {e}"))
}

#[test]
fn samples_are_valid_and_match_their_documentation() {
    let mut total_issuable = 0;
    for code in SAMPLE_CODES {
        let sample = parsed(code);
        assert_eq!(sample.register.municipality_code.to_string(), code);
        assert!(sample.register.households.len() >= 6);
        assert!(sample
            .register
            .households
            .iter()
            .any(|h| h.members.len() == 6));
        let bound: Vec<_> = sample.cards.iter().map(|b| b.card_serial.clone()).collect();
        let compiled: Vec<_> = sample_card_bindings(code)
            .into_iter()
            .map(|(serial, _)| serial)
            .collect();
        let mut sorted = bound.clone();
        sorted.sort();
        assert_eq!(sorted, compiled, "sample_card_bindings is cards.csv");
        for serial in issuable_cards(code) {
            assert!(bound.contains(&serial), "{serial} is not bound");
        }
        for suffix in UNBOUND_SUFFIXES {
            let serial = sample_card_serial(code, suffix).unwrap();
            assert!(!bound.contains(&serial), "{serial} must stay unbound");
        }
        total_issuable += issuable_cards(code).len();
    }
    assert!(total_issuable >= 50);
    // Every special card is bound in 212113, and nothing else is.
    let minokamo = parsed("212113");
    let mut expected: Vec<CardSerial> = issuable_cards("212113");
    expected.extend(
        SPECIAL_CARDS
            .iter()
            .map(|(serial, _)| CardSerial::parse(*serial).unwrap()),
    );
    expected.sort();
    let mut bound: Vec<_> = minokamo
        .cards
        .iter()
        .map(|b| b.card_serial.clone())
        .collect();
    bound.sort();
    assert_eq!(bound, expected);
    // The eight-member household.
    let holder = minokamo
        .cards
        .iter()
        .find(|b| b.card_serial.as_str() == LARGE_HOUSEHOLD_CARD)
        .unwrap();
    let household = minokamo
        .register
        .households
        .iter()
        .find(|h| h.member(&holder.resident_id).is_some())
        .unwrap();
    assert_eq!(
        household
            .members
            .iter()
            .filter(|m| m.status.is_current())
            .count(),
        8
    );
}

#[test]
fn sakahogi_sample_binds_exactly_its_plain_issuable_cards() {
    let sample = parsed("215015");
    let mut bound: Vec<_> = sample.cards.iter().map(|b| b.card_serial.clone()).collect();
    bound.sort();
    assert_eq!(
        bound,
        issuable_cards("215015"),
        "no special cards in 215015"
    );
    for member in sample.register.households.iter().flat_map(|h| &h.members) {
        assert!(
            member.status == ResidentStatus::Active && !member.support_measures,
            "{} is not a plain resident",
            member.resident_id
        );
    }
    // It keeps the 戸籍 of 212113's card 0068.
    let family = &sample.register.family_registers;
    assert_eq!(family.len(), 1);
    assert_eq!(family[0].persons.len(), 5);
}

#[test]
fn every_sample_text_prints_with_the_certificate_font_except_the_designated_one() {
    // The center refuses names the font lacks; the samples must contain exactly one
    // such resident (𠮷田 花子, card 2121130000000090) and nothing else unprintable.
    let font_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fonts/ipaexm.ttf");
    let font_bytes = std::fs::read(font_path).expect("font");
    let face = ttf_parser::Face::parse(&font_bytes, 0).expect("font parses");
    let printable = |text: &str| {
        text.chars()
            .all(|c| c == ' ' || face.glyph_index(c).is_some())
    };
    let mut unprintable = Vec::new();
    let mut checked = Vec::new();
    for code in SAMPLE_CODES {
        checked.push(code);
        let register = parsed(code).register;
        for household in &register.households {
            if !printable(&household.address) {
                unprintable.push((household.household_id.clone(), household.address.clone()));
            }
            for m in &household.members {
                let mut texts = vec![m.name.clone(), m.name_kana.clone(), m.relationship.clone()];
                texts.extend(m.previous_address.clone());
                texts.extend(m.domicile.clone());
                texts.extend(m.domicile_head.clone());
                texts.extend(m.remarks.clone());
                for text in texts.into_iter().filter(|t| !printable(t)) {
                    unprintable.push((m.resident_id.clone(), text));
                }
            }
        }
        for record in &register.tax_records {
            assert!(printable(&record.address_on_jan1), "{record:?}");
        }
        for payment in &register.tax_payments {
            assert!(printable(&payment.tax_name), "{payment:?}");
        }
        for family in &register.family_registers {
            assert!(printable(&family.domicile) && printable(&family.head_name));
            for person in &family.persons {
                let mut texts = vec![person.name.clone(), person.relationship.clone()];
                texts.extend(person.father.clone());
                texts.extend(person.mother.clone());
                texts.extend(
                    person
                        .events
                        .iter()
                        .flat_map(|e| [e.label.clone(), e.detail.clone()]),
                );
                texts.extend(person.addresses.iter().map(|a| a.address.clone()));
                for text in texts {
                    assert!(
                        printable(&text),
                        "{}/{}: {text}",
                        family.family_register_id,
                        person.person_id
                    );
                }
            }
        }
    }
    assert_eq!(
        checked,
        ["212113", "112330", "215015"],
        "every sample is checked"
    );
    unprintable.sort();
    unprintable.dedup();
    assert_eq!(
        unprintable,
        vec![("R0014".to_owned(), "𠮷田 花子".to_owned()),],
        "domicile_head of R0014 is also 𠮷田 花子 and collapses into the same entry"
    );
}

#[tokio::test]
async fn replace_is_per_municipality_and_keeps_card_bindings() {
    let dir = common::TempDir::new("register");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let pool = municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    let store = RegisterStore::new(pool);
    let full = parsed("212113");
    let summary = store
        .replace(&full.register, &full.cards, "sha-a", 1)
        .await
        .unwrap();
    assert_eq!(summary.card_bindings_added, full.cards.len());
    let code = full.register.municipality_code;
    let card = CardSerial::parse("2121130000000001").unwrap();
    let found = store
        .lookup_card(code, &card)
        .await
        .unwrap()
        .expect("bound");
    assert_eq!(found.holder().unwrap().name, "髙橋 健一");
    assert_eq!(found.household.members.len(), 4);

    // A smaller register without the first household: its cards no longer look up,
    // but their bindings are kept and answer again once the residents are back.
    let mut smaller = full.register.clone();
    smaller.households.remove(0);
    smaller
        .seal_registrations
        .retain(|s| s.resident_id != "R0001");
    smaller.tax_records.retain(|s| s.resident_id != "R0001");
    smaller.tax_payments.retain(|s| s.resident_id != "R0001");
    store.replace(&smaller, &[], "sha-b", 2).await.unwrap();
    assert!(store.lookup_card(code, &card).await.unwrap().is_none());
    assert_eq!(
        store.card_binding_count(code).await.unwrap(),
        i64::try_from(full.cards.len()).unwrap()
    );
    // Other municipalities' rows are untouched by a replacement.
    let other = parsed("112330");
    store
        .replace(&other.register, &other.cards, "sha-c", 3)
        .await
        .unwrap();
    store
        .replace(&full.register, &full.cards, "sha-d", 4)
        .await
        .unwrap();
    assert!(store
        .lookup_card(
            other.register.municipality_code,
            &CardSerial::parse("1123300000000001").unwrap()
        )
        .await
        .unwrap()
        .is_some());
    let back = store.lookup_card(code, &card).await.unwrap().unwrap();
    assert_eq!(back, found, "the same look-up as before");
    assert_eq!(
        store.imported_sha256(code).await.unwrap().as_deref(),
        Some("sha-d")
    );
}

#[tokio::test]
async fn serve_cli_prints_its_address_and_serves_mtls() {
    use tokio::io::AsyncBufReadExt as _;
    let deployment = common::prepare_deployment(&municipal_adapter::FaultSettings::default());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
        .arg("serve")
        .arg("--config")
        .arg(&deployment.settings_path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the adapter starts in time")
        .unwrap()
        .expect("a line on stdout");
    let address = line.strip_prefix("listening on ").expect("listening line");
    let port = address.rsplit(':').next().unwrap();
    let center = common::client(&deployment.pki.center);
    let info: schemas::AdapterInfo = center
        .get(format!("https://127.0.0.1:{port}/v1/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.municipalities.len(), 2);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn answers_store_once_and_purge_by_age() {
    use municipal_adapter::answers::{AnswerStore, StoreOutcome};
    let dir = common::TempDir::new("answers");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let pool = municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    // Migrations are idempotent across restarts.
    municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    let store = AnswerStore::new(pool);
    let code = schemas::MunicipalityCode::parse("212113").unwrap();
    let (old, new) = (
        schemas::RequestId::new_random(),
        schemas::RequestId::new_random(),
    );
    assert_eq!(
        store
            .insert_or_get(old, code, "d1", "{\"a\":1}", 100)
            .await
            .unwrap(),
        StoreOutcome::Inserted
    );
    assert_eq!(
        store
            .insert_or_get(new, code, "d2", "{\"b\":2}", 200)
            .await
            .unwrap(),
        StoreOutcome::Inserted
    );
    match store
        .insert_or_get(old, code, "d3", "{\"c\":3}", 300)
        .await
        .unwrap()
    {
        StoreOutcome::AlreadyStored(existing) => {
            assert_eq!(existing.fetch_sha256, "d1");
            assert_eq!(existing.answer_json, "{\"a\":1}");
        }
        other => panic!("expected the first answer to win, got {other:?}"),
    }
    assert_eq!(store.purge_older_than(150).await.unwrap(), 1);
    assert!(store.find(old).await.unwrap().is_none());
    assert!(store.find(new).await.unwrap().is_some());
}
