//! The CSV register import: the samples, every bad row reported, all or nothing,
//! re-import unchanged, 住民票コード/個人番号 dropped; through the public functions and
//! the `municipal-adapter import` binary.

use std::path::{Path, PathBuf};

use jiff::civil::{date, Date};
use municipal_adapter::register::{
    import_register_dir, read_register_dir, ImportError, ImportStatus, RegisterStore,
};
use municipal_adapter::samples::{sample_card_bindings, sample_register_dir, SAMPLE_CODES};
use schemas::{CardSerial, MunicipalityCode};
use sqlx::sqlite::SqlitePool;
use sqlx::Row as _;

const TODAY: Date = date(2026, 11, 23);

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "adapter-import-{label}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn code(text: &str) -> MunicipalityCode {
    MunicipalityCode::parse(text).unwrap()
}

fn serial(text: &str) -> CardSerial {
    CardSerial::parse(text).unwrap()
}

async fn database(dir: &Path) -> (String, SqlitePool) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("adapter.db").display());
    let pool = municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    (url, pool)
}

/// Every row of every table, each value as its SQL literal (blobs included).
async fn dump(pool: &SqlitePool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info({table})"))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        let select = columns
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {select} FROM {table} ORDER BY rowid"))
                .fetch_all(pool)
                .await
                .unwrap();
        out.push_str(&format!("== {table} ({})\n", columns.join(",")));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replaces `from` by `to` on the first line of `file` containing `marker`; returns
/// that line's number (header = 1).
fn edit_line(file: &Path, marker: &str, from: &str, to: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let index = lines
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in {}", file.display()));
    assert!(
        lines[index].contains(from),
        "{from} not on {}",
        lines[index]
    );
    lines[index] = lines[index].replacen(from, to, 1);
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
    index + 1
}

#[tokio::test]
async fn every_sample_imports_and_reimports_unchanged() {
    let dir = TempDir::new("samples");
    let (_, pool) = database(dir.path()).await;
    for text in SAMPLE_CODES {
        let register_dir = sample_register_dir(text).unwrap();
        let outcome = import_register_dir(&pool, code(text), &register_dir, TODAY)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(outcome.status, ImportStatus::Imported, "{text}");
        assert!(outcome.counts.households >= 6, "{text}");
        // Every binding of cards.csv is new in an empty database.
        assert_eq!(
            outcome.counts.card_bindings_added,
            sample_card_bindings(text).len(),
            "{text}"
        );
    }
    let before = dump(&pool).await;
    for text in SAMPLE_CODES {
        let outcome = import_register_dir(
            &pool,
            code(text),
            &sample_register_dir(text).unwrap(),
            TODAY,
        )
        .await
        .unwrap();
        assert_eq!(outcome.status, ImportStatus::Unchanged, "{text}");
        assert_eq!(outcome.counts.card_bindings_added, 0);
    }
    assert_eq!(dump(&pool).await, before, "a re-import changes no row");
    assert!(before.contains("'髙橋 健一'"), "the dump sees the rows");
}

#[tokio::test]
async fn sample_special_residents_look_up_as_planned() {
    let dir = TempDir::new("special");
    let (_, pool) = database(dir.path()).await;
    for text in SAMPLE_CODES {
        import_register_dir(
            &pool,
            code(text),
            &sample_register_dir(text).unwrap(),
            TODAY,
        )
        .await
        .unwrap();
    }
    let store = RegisterStore::new(pool);
    let minokamo = code("212113");
    let look = |suffix: u64| {
        let store = store.clone();
        async move {
            store
                .lookup_card(minokamo, &serial(&format!("212113{suffix:010}")))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("card {suffix} is bound"))
        }
    };

    // 0001: every ledger.
    let full = look(1).await;
    let holder = full.holder().unwrap();
    assert_eq!(holder.name, "髙橋 健一");
    assert_eq!(full.household.members.len(), 4);
    let seal = full.seal_registration.as_ref().unwrap();
    assert!(seal.active);
    assert!(seal.impression_png.starts_with(b"\x89PNG"));
    assert!(seal.impression_png.len() <= 16 * 1024);
    let years: Vec<u16> = full.tax_records.iter().map(|r| r.fiscal_year).collect();
    assert_eq!(years, [2025, 2026]);
    let unpaid: Vec<_> = full
        .tax_payments
        .iter()
        .filter(|p| p.paid_yen < p.assessed_yen)
        .map(|p| (p.fiscal_year, p.tax_name.as_str()))
        .collect();
    assert_eq!(unpaid, [(2026, "軽自動車税")]);
    assert!(full
        .tax_payments
        .iter()
        .filter(|p| p.tax_name == "市県民税")
        .all(|p| p.paid_yen == p.assessed_yen));
    let link = holder.family_register.clone().unwrap();
    let family = store
        .family_register(minokamo, &link.family_register_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(family.persons.len(), 3);
    assert!(!family.pending_filing);
    let person = family.person(&link.person_id).unwrap();
    assert_eq!(person.name, holder.name);
    let labels: Vec<_> = person.events.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["出生", "婚姻"]);
    assert_eq!(person.addresses.len(), 3);

    // 0060: support measures on another member only.
    let c60 = look(60).await;
    assert!(!c60.holder().unwrap().support_measures);
    assert!(c60.household.members.iter().any(|m| m.support_measures));
    // 0061: erased.
    assert_eq!(
        look(61).await.holder().unwrap().status,
        municipal_adapter::register::ResidentStatus::Erased
    );
    // 0062: moved in on 2026-11-20; 0063: card handed over on 2026-11-20.
    assert_eq!(
        look(62).await.holder().unwrap().became_resident_on,
        date(2026, 11, 20)
    );
    assert_eq!(look(63).await.card_issued_on, date(2026, 11, 20));
    // 0064: no seal; 0065: abolished seal.
    assert!(look(64).await.seal_registration.is_none());
    assert!(!look(65).await.seal_registration.unwrap().active);
    // 0066: no tax record; 0070: 2025 only.
    assert!(look(66).await.tax_records.is_empty());
    let c70: Vec<u16> = look(70)
        .await
        .tax_records
        .iter()
        .map(|r| r.fiscal_year)
        .collect();
    assert_eq!(c70, [2025]);
    // 0067: pending filing.
    let c67 = look(67).await;
    let pending = store
        .family_register(
            minokamo,
            &c67.holder()
                .unwrap()
                .family_register
                .clone()
                .unwrap()
                .family_register_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(pending.pending_filing);
    // 0068: 本籍 in 坂祝町, the 戸籍 kept by 215015 (five persons, one 除籍).
    let c68 = look(68).await;
    let holder68 = c68.holder().unwrap();
    assert!(holder68.family_register.is_none());
    let sample = municipal_adapter::samples::DOMICILE_SAMPLE;
    assert_eq!(holder68.domicile.as_deref(), Some(sample.domicile));
    assert_eq!(
        holder68.domicile_head.as_deref(),
        Some(sample.domicile_head)
    );
    let elsewhere = store
        .family_register(
            code(sample.domicile_municipality),
            sample.family_register_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(elsewhere.persons.len(), 5);
    assert_eq!(elsewhere.persons.iter().filter(|p| p.removed).count(), 1);
    assert_eq!(elsewhere.domicile, sample.domicile);
    assert_eq!(elsewhere.head_name, sample.domicile_head);
    assert_eq!(
        elsewhere.person(sample.person_id).unwrap().name,
        holder68.name
    );
    // 0069: eight current members.
    let c69 = look(69).await;
    assert_eq!(
        c69.household
            .members
            .iter()
            .filter(|m| m.status.is_current())
            .count(),
        8
    );
    // Every other card was handed over on 2024-04-01 or earlier; 97–99 stay unbound.
    for text in SAMPLE_CODES {
        for (card, issued_on) in sample_card_bindings(text) {
            if card.as_str() != "2121130000000063" {
                assert!(issued_on <= date(2024, 4, 1), "{card}");
            }
        }
        for suffix in [97, 98, 99] {
            let unbound = serial(&format!("{text}{suffix:010}"));
            assert!(store
                .lookup_card(code(text), &unbound)
                .await
                .unwrap()
                .is_none());
        }
    }
}

#[tokio::test]
async fn bad_rows_in_several_files_are_all_reported_and_nothing_is_imported() {
    let dir = TempDir::new("bad");
    let (url, pool) = database(dir.path()).await;
    let good = sample_register_dir("212113").unwrap();
    import_register_dir(&pool, code("212113"), &good, TODAY)
        .await
        .unwrap();
    let before = dump(&pool).await;

    let bad = dir.path().join("register");
    copy_dir(&good, &bad);
    let residents = bad.join("residents.csv");
    let seals = bad.join("seal_registrations.csv");
    let payments = bad.join("tax_payments.csv");
    let cards = bad.join("cards.csv");
    let events = bad.join("family_register_events.csv");
    let expected = [
        format!(
            "residents.csv:{}: birth_date: ",
            edit_line(&residents, ",R0005,", "1952-02-14", "1952-02-30")
        ),
        format!(
            "residents.csv:{}: became_resident_on: ",
            edit_line(&residents, ",R0006,", "1977-10-10", "2030-01-01")
        ),
        format!(
            "residents.csv:{}: individual_number: ",
            edit_line(&residents, ",R0003,", ",F0001,P3", ",F0001,P3")
        ),
        format!(
            "residents.csv:{}: relationship: ",
            edit_line(&residents, ",R0002,", ",妻,", ",世帯主,")
        ),
        format!(
            "seal_registrations.csv:{}: impression_file: ",
            edit_line(&seals, "10001", "seals/10001.png", "seals/missing.png")
        ),
        format!(
            "tax_payments.csv:{}: paid_yen: ",
            edit_line(
                &payments,
                "軽自動車税,10800,5400",
                "10800,5400",
                "10800,10801"
            )
        ),
        format!(
            "cards.csv:{}: resident_id: ",
            edit_line(&cards, "2121130000000002", ",R", ",X")
        ),
        format!(
            "family_register_events.csv:{}: person_id: ",
            edit_line(&events, "F0001,P3,", "F0001,P3,", "F0001,P9,")
        ),
    ];
    let text = std::fs::read_to_string(&cards).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let card_line = lines
        .iter()
        .position(|l| l.starts_with("2121130000000003,"))
        .unwrap();
    let mut fields: Vec<&str> = lines[card_line].split(',').collect();
    fields[2] = "1901-01-01";
    lines[card_line] = fields.join(",");
    std::fs::write(&cards, lines.join("\n") + "\n").unwrap();
    let expected_card = format!("cards.csv:{}: issued_on: ", card_line + 1);
    let expected_domicile = format!(
        "residents.csv:{}: domicile: must be the 本籍 of family register F0001",
        edit_line(
            &residents,
            ",R0003,",
            ",岐阜県美濃加茂市太田町1234番地,髙橋",
            ",岐阜県美濃加茂市太田町1235番地,髙橋"
        )
    );
    let expected: Vec<String> = expected
        .into_iter()
        .chain([expected_card, expected_domicile])
        .collect();
    // Make R0003's 個人番号 fail its check digit (the value itself must not be echoed).
    let text = std::fs::read_to_string(&residents).unwrap();
    let r3 = text.lines().find(|l| l.contains(",R0003,")).unwrap();
    let number = r3
        .split(',')
        .find(|f| f.len() == 12 && f.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    let last = number.as_bytes()[11] - b'0';
    let broken = format!("{}{}", &number[..11], (last + 1) % 10);
    std::fs::write(&residents, text.replace(&number, &broken)).unwrap();

    let error = import_register_dir(&pool, code("212113"), &bad, TODAY)
        .await
        .unwrap_err();
    let rendered: Vec<String> = error.row_errors().iter().map(ToString::to_string).collect();
    for prefix in &expected {
        assert!(
            rendered.iter().any(|r| r.starts_with(prefix.as_str())),
            "missing {prefix} in:\n{}",
            rendered.join("\n")
        );
    }
    assert!(
        !error.to_string().contains(&broken) && !error.to_string().contains(&number[..11]),
        "個人番号 is never printed"
    );
    assert_eq!(dump(&pool).await, before, "nothing was imported");

    // The binary: same report on stderr, exit code 1, database unchanged.
    let settings = write_settings(dir.path(), &url, &["212113"]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
        .args(["import", "--config"])
        .arg(&settings)
        .args(["--municipality", "212113"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    for prefix in &expected {
        assert!(
            stderr.lines().any(|l| l.starts_with(prefix.as_str())),
            "missing {prefix} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains(&broken));
    assert_eq!(dump(&pool).await, before, "nothing was imported by the CLI");
}

/// A minimal settings file (the adapter is not started: only the database is used).
fn write_settings(dir: &Path, database_url: &str, codes: &[&str]) -> PathBuf {
    let center = schemas::KeyPair::generate();
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"{database_url}\"\n\
         center_public_key = \"{}\"\n\n[tls]\ncert = \"/nonexistent/cert.pem\"\n\
         key = \"/nonexistent/key.pem\"\nca = \"/nonexistent/ca.pem\"\n",
        schemas::b64::Base64Bytes::encode(&center.public().0)
    );
    for code in codes {
        text.push_str(&format!(
            "\n[[municipalities]]\ncode = \"{code}\"\nname = \"市{code}\"\nprefecture = \"県\"\n\
             mayor_title = \"市長\"\nmayor_name = \"山田 太郎\"\n\
             signing_key_path = \"/nonexistent/key.seed\"\nregister_dir = \"{}\"\n",
            sample_register_dir(code).unwrap().display()
        ));
    }
    let path = dir.join("adapter.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn the_import_cli_imports_then_reports_unchanged() {
    let dir = TempDir::new("cli");
    let (url, pool) = database(dir.path()).await;
    let settings = write_settings(dir.path(), &url, &["112330"]);
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
            .args(["import", "--config"])
            .arg(&settings)
            .args(["--municipality", "112330"])
            .arg(sample_register_dir("112330").unwrap())
            .output()
            .unwrap()
    };
    let first = run();
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert!(first.status.success(), "{stdout}");
    assert!(
        stdout.contains("municipality 112330: imported: 11 households, 31 residents"),
        "{stdout}"
    );
    let before = dump(&pool).await;
    let second = run();
    let stdout = String::from_utf8(second.stdout).unwrap();
    assert!(second.status.success());
    assert!(
        stdout.contains("municipality 112330: unchanged"),
        "{stdout}"
    );
    assert_eq!(dump(&pool).await, before);

    // A municipality the settings do not serve is refused.
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
        .args(["import", "--config"])
        .arg(&settings)
        .args(["--municipality", "212113"])
        .arg(sample_register_dir("212113").unwrap())
        .output()
        .unwrap();
    assert!(!other.status.success());
}

#[tokio::test]
async fn resident_code_and_individual_number_are_checked_and_dropped() {
    let dir = TempDir::new("numbers");
    let (_, pool) = database(dir.path()).await;
    let mut secrets = Vec::new();
    for text in SAMPLE_CODES {
        let register_dir = sample_register_dir(text).unwrap();
        let mut reader = csv::Reader::from_path(register_dir.join("residents.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let columns: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| *h == "resident_code" || *h == "individual_number")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(columns.len(), 2, "{text} carries both columns");
        for record in reader.records() {
            let record = record.unwrap();
            for i in &columns {
                let value = record.get(*i).unwrap();
                if !value.is_empty() {
                    secrets.push(value.to_owned());
                }
            }
        }
        import_register_dir(&pool, code(text), &register_dir, TODAY)
            .await
            .unwrap();
    }
    assert!(secrets.len() >= 20, "the samples carry numbers to drop");
    let everything = dump(&pool).await;
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "stored somewhere");
    }

    // A bad 住民票コード (format) is refused too, without quoting it.
    let bad = dir.path().join("register");
    copy_dir(&sample_register_dir("215015").unwrap(), &bad);
    let residents = bad.join("residents.csv");
    let text = std::fs::read_to_string(&residents).unwrap();
    let first_code = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .find(|f| f.len() == 11 && f.bytes().all(|b| b.is_ascii_digit()))
        .unwrap()
        .to_owned();
    let short = first_code[..10].to_owned();
    std::fs::write(&residents, text.replacen(&first_code, &short, 1)).unwrap();
    match read_register_dir(code("215015"), &bad, TODAY) {
        Err(ImportError::Invalid(rows)) => {
            assert!(
                rows.iter()
                    .any(|r| r.line == 2 && r.column == "resident_code"),
                "{rows:?}"
            );
            assert!(!format!("{rows:?}").contains(&short));
        }
        other => panic!("expected bad rows, got {other:?}"),
    }
}

#[test]
fn structural_problems_are_reported_by_file() {
    let dir = TempDir::new("structure");
    // No residents.csv at all.
    match read_register_dir(code("212113"), dir.path(), TODAY) {
        Err(ImportError::Invalid(rows)) => {
            assert_eq!(
                rows[0].to_string(),
                "residents.csv:1: (file): required file is missing"
            )
        }
        other => panic!("{other:?}"),
    }
    // A misspelt file, an unknown column, a missing required column, a short row and
    // RFC 4180 quoting (a quoted comma and a quoted newline).
    copy_dir(&sample_register_dir("215015").unwrap(), dir.path());
    std::fs::write(dir.path().join("seal_registration.csv"), "x\n").unwrap();
    std::fs::write(
        dir.path().join("tax_payments.csv"),
        "resident_id,fiscal_year,tax_name,assessed_yen,paid_yen,note\nR2001,2026,x,1,1,n\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tax_records.csv"),
        "resident_id,fiscal_year\nR2001,2026\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("family_registers.csv"),
        "family_register_id,domicile,head_name,created_on,pending_filing\n\
         F2001,\"岐阜県加茂郡坂祝町取組46番地\",松本 隆,1990-10-10,false\n\
         F2002,\"a,\nb\",x,1990-10-10\n",
    )
    .unwrap();
    let rows = match read_register_dir(code("215015"), dir.path(), TODAY) {
        Err(ImportError::Invalid(rows)) => rows,
        other => panic!("{other:?}"),
    };
    let rendered: Vec<String> = rows.iter().map(ToString::to_string).collect();
    for expected in [
        "seal_registration.csv:1: (file): unknown register file",
        "tax_payments.csv:1: note: unknown column",
        "tax_records.csv:1: address_on_jan1: required column is missing",
        "family_registers.csv:3: (row): has 4 fields, the header has 5",
    ] {
        assert!(
            rendered.iter().any(|r| r.starts_with(expected)),
            "missing {expected} in:\n{}",
            rendered.join("\n")
        );
    }
}

/// The documented layout (`schemas/register/*.schema.json`, one per file) is exactly
/// what the import accepts: every documented column is known, every required one is
/// required, and every column of the samples is documented.
#[test]
fn the_documented_layout_is_the_imported_one() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/register");
    let readme = std::fs::read_to_string(docs.join("README.md")).unwrap();
    for file in municipal_adapter::register::import::REGISTER_FILES {
        let schema_path = docs.join(file.replace(".csv", ".schema.json"));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
        let columns: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let required: Vec<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert!(readme.contains(&format!("## `{file}`")), "{file} in README");
        for column in &columns {
            assert!(
                readme.contains(&format!("| `{column}` |")),
                "{file}.{column} in README"
            );
        }

        // Every documented column is accepted (a header with all of them, no rows).
        let dir = TempDir::new("layout");
        copy_dir(&sample_register_dir("215015").unwrap(), dir.path());
        for other in municipal_adapter::register::import::REGISTER_FILES {
            if other != "residents.csv" && other != file {
                let _ = std::fs::remove_file(dir.path().join(other));
            }
        }
        if file != "residents.csv" {
            std::fs::write(dir.path().join(file), columns.join(",") + "\n").unwrap();
            assert!(
                read_register_dir(code("215015"), dir.path(), TODAY).is_ok(),
                "{file}: every documented column is accepted"
            );
        }
        // Every required column is required.
        for missing in &required {
            let header: Vec<&str> = columns
                .iter()
                .map(String::as_str)
                .filter(|c| c != missing)
                .collect();
            std::fs::write(dir.path().join(file), header.join(",") + "\n").unwrap();
            let rows = read_register_dir(code("215015"), dir.path(), TODAY)
                .unwrap_err()
                .row_errors()
                .to_vec();
            assert!(
                rows.iter().any(|r| r.file == file
                    && r.line == 1
                    && &r.column == missing
                    && r.reason == "required column is missing"),
                "{file}.{missing}: {rows:?}"
            );
        }
        // Every sample header is documented.
        for sample in SAMPLE_CODES {
            let path = sample_register_dir(sample).unwrap().join(file);
            if let Ok(mut reader) = csv::Reader::from_path(&path) {
                for column in reader.headers().unwrap() {
                    assert!(
                        columns.iter().any(|c| c == column),
                        "{sample}/{file}: {column}"
                    );
                }
            }
        }
    }
}
