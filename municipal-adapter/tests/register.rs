//! The register fixture (validation, import, samples), 和暦 and the CLI, without HTTP.

mod common;

use jiff::civil::{date, Date};
use municipal_adapter::register::fixture::Fixture;
use municipal_adapter::register::{parse_fixture, FixtureError, RegisterStore};
use municipal_adapter::wareki::{format_wareki, to_wareki, WarekiError};
use municipal_adapter::{sample_fixture, SAMPLE_CODES};

const TODAY: Date = date(2026, 11, 23);

fn sample(code: &str) -> Fixture {
    serde_json::from_str(sample_fixture(code).unwrap()).unwrap()
}

fn issues(fixture: &Fixture) -> Vec<String> {
    match fixture.validate(TODAY) {
        Ok(_) => vec![],
        Err(e) => e.issues().iter().map(|i| i.to_string()).collect(),
    }
}

fn has(issues: &[String], needles: &[&str]) -> bool {
    issues.iter().any(|i| needles.iter().all(|n| i.contains(n)))
}

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

#[test]
fn samples_are_valid() {
    for code in SAMPLE_CODES {
        let register = parse_fixture(sample_fixture(code).unwrap(), TODAY).unwrap();
        assert!(register.households.len() >= 6);
    }
}

#[test]
fn json_errors_name_line_and_column() {
    let broken = "{\n  \"municipality_code\": \"212113\",\n  \"households\": [\n    { \"household_id\": 7 }\n  ]\n}";
    match parse_fixture(broken, TODAY) {
        Err(FixtureError::Json { line, .. }) => assert_eq!(line, 4),
        other => panic!("expected a JSON error, got {other:?}"),
    }
    // A misspelt optional field is an error, not silently ignored.
    let mut value: serde_json::Value =
        serde_json::from_str(sample_fixture("212113").unwrap()).unwrap();
    value["households"][0]["members"][0]["support_measure"] = serde_json::Value::Bool(true);
    match parse_fixture(&value.to_string(), TODAY) {
        Err(FixtureError::Json { message, .. }) => {
            assert!(message.contains("support_measure"), "{message}")
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn semantic_errors_are_all_reported_with_their_field() {
    let mut fixture = sample("212113");
    fixture.municipality_code = "212114".into(); // wrong check digit
    fixture.households[0].members[0].birth_date = "1978-02-30".into();
    fixture.households[0].members[1].became_resident_on = "2010/04/01".into();
    fixture.households[0].members[2].birth_date = "2030-01-01".into();
    fixture.households[1].members[1].resident_id = "R0001".into(); // duplicate
    fixture.households[2].household_id = "H0001".into(); // duplicate
    fixture.households[3].members[0].sex = "m".into();
    fixture.households[4].members[0].name_kana = "Ito Daisuke".into();
    fixture.households[4].members[1].relationship = "世帯主".into(); // two heads
    fixture.households[5].members[0].domicile_head = None; // 本籍 without 筆頭者
    fixture.households[5].members[1].status = Some("gone".into());
    fixture.households[6].members[0].name = "佐藤\n美穂".into();
    fixture.card_bindings[0].resident_id = "R9999".into(); // unknown resident
    fixture.card_bindings[1].card_serial = fixture.card_bindings[2].card_serial.clone(); // duplicate
    fixture.card_bindings[3].card_serial = "2121130000000abc".into(); // lower case
    fixture.card_bindings[6].resident_id = fixture.card_bindings[7].resident_id.clone(); // bound twice
    let found = issues(&fixture);
    for expected in [
        &["municipality_code", "check digit"][..],
        &[
            "households[0].members[0]",
            "H0001/R0001",
            "birth_date",
            "1978-02-30",
        ],
        &[
            "households[0].members[1]",
            "became_resident_on",
            "yyyy-mm-dd",
        ],
        &["households[0].members[2]", "birth_date", "future"],
        &[
            "households[1].members[1]",
            "resident_id",
            "duplicate resident id \"R0001\"",
        ],
        &["households[2]", "household_id", "duplicate household id"],
        &["households[3].members[0]", "sex"],
        &["households[4].members[0]", "name_kana", "kana"],
        &[
            "households[4]",
            "exactly one member with relationship 世帯主, found 2",
        ],
        &[
            "households[5].members[0]",
            "domicile_head",
            "both or neither",
        ],
        &["households[5].members[1]", "status", "\"gone\""],
        &["households[6].members[0]", "name", "control character"],
        &[
            "card_bindings[0]",
            "resident_id",
            "unknown resident \"R9999\"",
        ],
        &["card_bindings[2]", "card_serial", "duplicate card serial"],
        &["card_bindings[3]", "card_serial", "card serial must match"],
        &[
            "card_bindings[7]",
            "resident_id",
            "already bound to card 2121130000000007",
        ],
    ] {
        assert!(
            has(&found, expected),
            "missing {expected:?} in:\n{}",
            found.join("\n")
        );
    }
    // The rendered error lists every issue, one per line.
    let rendered = fixture.validate(TODAY).unwrap_err().to_string();
    assert!(
        rendered.contains(&format!("{} problem(s)", found.len())),
        "{rendered}"
    );
}

#[test]
fn code_format_errors() {
    let mut fixture = sample("112330");
    fixture.municipality_code = "11233".into();
    assert!(has(
        &issues(&fixture),
        &["municipality_code", "6 ASCII digits"]
    ));
    fixture.municipality_code = "112330".into();
    assert!(issues(&fixture).is_empty());
}

#[test]
fn every_sample_text_prints_with_the_certificate_font_except_the_designated_one() {
    // The center refuses names the font lacks; the samples must contain exactly one
    // such resident (𠮷田 花子, card 2121130000000090) and nothing else unprintable.
    let font_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fonts/ipaexm.ttf");
    let font_bytes = std::fs::read(font_path).expect("font");
    let face = ttf_parser::Face::parse(&font_bytes, 0).expect("font parses");
    let mut unprintable = Vec::new();
    let mut checked = Vec::new();
    for code in SAMPLE_CODES {
        checked.push(code);
        let register = parse_fixture(sample_fixture(code).unwrap(), TODAY).unwrap();
        for household in &register.households {
            let mut texts = vec![household.address.clone()];
            for m in &household.members {
                texts.extend([m.name.clone(), m.name_kana.clone(), m.relationship.clone()]);
                texts.extend(m.previous_address.clone());
                texts.extend(m.domicile.clone());
                texts.extend(m.domicile_head.clone());
                texts.extend(m.remarks.clone());
                for text in &texts {
                    if text
                        .chars()
                        .any(|c| c != ' ' && face.glyph_index(c).is_none())
                    {
                        unprintable.push((m.resident_id.clone(), text.clone()));
                    }
                }
                texts.clear();
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
async fn import_replaces_the_register_atomically() {
    let dir = common::TempDir::new("register");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let pool = municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    let store = RegisterStore::new(pool);
    let full = parse_fixture(sample_fixture("212113").unwrap(), TODAY).unwrap();
    let summary = store.replace(&full, "sha-a", 1).await.unwrap();
    assert_eq!(summary.card_bindings, full.card_bindings.len());
    let code = full.municipality_code;
    let card = schemas::CardSerial::parse("2121130000000001").unwrap();
    let found = store
        .lookup_card(code, &card)
        .await
        .unwrap()
        .expect("bound");
    assert_eq!(found.holder().unwrap().name, "髙橋 健一");
    assert_eq!(found.household.members.len(), 4);

    // A smaller register: the first household is gone, and with it its cards.
    let mut smaller = full.clone();
    smaller.households.remove(0);
    smaller
        .card_bindings
        .retain(|b| !["R0001", "R0002", "R0003", "R0004"].contains(&b.resident_id.as_str()));
    store.replace(&smaller, "sha-b", 2).await.unwrap();
    assert!(store.lookup_card(code, &card).await.unwrap().is_none());
    assert_eq!(
        store.card_binding_count(code).await.unwrap(),
        i64::try_from(smaller.card_bindings.len()).unwrap()
    );
    // Other municipalities' rows are untouched by a replacement.
    let other = parse_fixture(sample_fixture("112330").unwrap(), TODAY).unwrap();
    store.replace(&other, "sha-c", 3).await.unwrap();
    store.replace(&full, "sha-d", 4).await.unwrap();
    assert!(store
        .lookup_card(
            other.municipality_code,
            &schemas::CardSerial::parse("1123300000000001").unwrap()
        )
        .await
        .unwrap()
        .is_some());
    assert!(store.lookup_card(code, &card).await.unwrap().is_some());
}

#[test]
fn check_register_cli() {
    let binary = env!("CARGO_BIN_EXE_municipal-adapter");
    let path = municipal_adapter::sample_fixture_path("112330");
    let output = std::process::Command::new(binary)
        .arg("check-register")
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("municipality 112330: 11 households"),
        "{stdout}"
    );

    let dir = common::TempDir::new("cli");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        sample_fixture("212113")
            .unwrap()
            .replace("1978-04-12", "1978-13-12"),
    )
    .unwrap();
    let output = std::process::Command::new(binary)
        .arg("check-register")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("households[0].members[0] (H0001/R0001).birth_date"),
        "{stderr}"
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
