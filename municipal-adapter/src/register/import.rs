//! The CSV register directory: reading, validation and import.
//!
//! A register directory holds one CSV file per ledger (only `residents.csv` is
//! required) and the seal impression PNGs `seal_registrations.csv` points at. The
//! layout is documented column by column in `schemas/register/README.md`.
//!
//! Validation reports every bad row at once as `file:line: column: reason` (lines as
//! in the file, the header is line 1) and nothing is imported while any row is bad.
//! 住民票コード and 個人番号 are checked and dropped: they never reach the database,
//! and no message quotes them.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use csv::StringRecord;
use jiff::civil::Date;
use schemas::{CardSerial, MunicipalityCode};
use sqlx::sqlite::SqlitePool;

use super::store::{ImportSummary, RegisterStore, StoreError};
use super::{
    AttachmentAddress, CardBinding, FamilyRegister, FamilyRegisterEvent, FamilyRegisterPerson,
    FamilyRegisterRef, Household, Register, Resident, ResidentStatus, SealRegistration, Sex,
    TaxPayment, TaxRecord, HOUSEHOLD_HEAD,
};
use crate::wareki::GREGORIAN_ADOPTION;

/// Largest seal impression accepted (bytes).
pub const MAX_IMPRESSION_BYTES: u64 = 64 * 1024;
/// Largest CSV file accepted (bytes).
pub const MAX_CSV_BYTES: u64 = 64 * 1024 * 1024;
/// Longest text cell (characters): an address with its 方書 fits easily.
pub const MAX_TEXT_CHARS: usize = 200;
/// Largest amount of money in any cell (yen): bounds the arithmetic on amounts.
pub const MAX_YEN: u64 = 1_000_000_000_000;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// One bad cell or row: `file:line: column: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// As in the file (header = 1).
    pub line: u64,
    pub column: String,
    pub reason: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("register directory {}: {source}", .dir.display())]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("register has {} bad row(s), nothing imported:\n{}", .0.len(), render(.0))]
    Invalid(Vec<RowError>),
    #[error("register import: {0}")]
    Store(#[from] StoreError),
}

impl ImportError {
    /// Every bad row (empty for other errors).
    pub fn row_errors(&self) -> &[RowError] {
        match self {
            Self::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

fn render(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStatus {
    /// The register was replaced.
    Imported,
    /// The directory is byte-for-byte the one last imported: nothing was written.
    Unchanged,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    pub status: ImportStatus,
    /// SHA-256 (hex) over the directory's register files and impressions.
    pub sha256: String,
    /// What the directory holds (`card_bindings_added` is 0 when unchanged).
    pub counts: ImportSummary,
}

impl std::fmt::Display for ImportOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "{}: {} households, {} residents, {} seal registrations, {} tax records, \
             {} tax payments, {} family registers, {} card bindings added",
            match self.status {
                ImportStatus::Imported => "imported",
                ImportStatus::Unchanged => "unchanged",
            },
            c.households,
            c.residents,
            c.seal_registrations,
            c.tax_records,
            c.tax_payments,
            c.family_registers,
            c.card_bindings_added
        )
    }
}

/// A validated register directory, ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRegister {
    pub register: Register,
    /// From `cards.csv` (empty without it).
    pub cards: Vec<CardBinding>,
    pub sha256: String,
}

/// Validates `dir` and replaces `code`'s register with it, in one transaction; does
/// nothing when the directory is the one last imported. `today` (Asia/Tokyo) bounds
/// dates: nothing in the register happens in the future.
pub async fn import_register_dir(
    pool: &SqlitePool,
    code: MunicipalityCode,
    dir: &Path,
    today: Date,
) -> Result<ImportOutcome, ImportError> {
    let parsed = read_register_dir(code, dir, today)?;
    let store = RegisterStore::new(pool.clone());
    let counts = ImportSummary {
        households: parsed.register.households.len(),
        residents: parsed.register.resident_count(),
        seal_registrations: parsed.register.seal_registrations.len(),
        tax_records: parsed.register.tax_records.len(),
        tax_payments: parsed.register.tax_payments.len(),
        family_registers: parsed.register.family_registers.len(),
        card_bindings_added: 0,
    };
    if store.imported_sha256(code).await?.as_deref() == Some(parsed.sha256.as_str()) {
        return Ok(ImportOutcome {
            status: ImportStatus::Unchanged,
            sha256: parsed.sha256,
            counts,
        });
    }
    let summary = store
        .replace(
            &parsed.register,
            &parsed.cards,
            &parsed.sha256,
            jiff::Timestamp::now().as_second(),
        )
        .await?;
    Ok(ImportOutcome {
        status: ImportStatus::Imported,
        sha256: parsed.sha256,
        counts: summary,
    })
}

/// The files of a register directory, in the order they are read and hashed.
pub const REGISTER_FILES: [&str; 9] = [
    RESIDENTS,
    SEALS,
    TAX_RECORDS,
    TAX_PAYMENTS,
    FAMILY_REGISTERS,
    PERSONS,
    EVENTS,
    ADDRESSES,
    CARDS,
];

const RESIDENTS: &str = "residents.csv";
const SEALS: &str = "seal_registrations.csv";
const TAX_RECORDS: &str = "tax_records.csv";
const TAX_PAYMENTS: &str = "tax_payments.csv";
const FAMILY_REGISTERS: &str = "family_registers.csv";
const PERSONS: &str = "family_register_persons.csv";
const EVENTS: &str = "family_register_events.csv";
const ADDRESSES: &str = "attachment_addresses.csv";
const CARDS: &str = "cards.csv";

/// (column, must be in the header) per file.
fn columns(file: &str) -> &'static [(&'static str, bool)] {
    match file {
        RESIDENTS => &[
            ("household_id", true),
            ("household_address", true),
            ("resident_id", true),
            ("name", true),
            ("name_kana", true),
            ("birth_date", true),
            ("sex", true),
            ("relationship", true),
            ("became_resident_on", true),
            ("previous_address", false),
            ("domicile", false),
            ("domicile_head", false),
            ("remarks", false),
            ("status", false),
            ("support_measures", false),
            ("resident_code", false),
            ("individual_number", false),
            ("family_register_id", false),
            ("family_register_person_id", false),
        ],
        SEALS => &[
            ("resident_id", true),
            ("registration_number", true),
            ("registered_on", true),
            ("status", true),
            ("impression_file", true),
        ],
        TAX_RECORDS => &[
            ("resident_id", true),
            ("fiscal_year", true),
            ("address_on_jan1", true),
            ("salary_income_yen", true),
            ("total_income_yen", true),
            ("deductions_yen", true),
            ("taxable_income_yen", true),
            ("municipal_tax_yen", true),
            ("prefectural_tax_yen", true),
        ],
        TAX_PAYMENTS => &[
            ("resident_id", true),
            ("fiscal_year", true),
            ("tax_name", true),
            ("assessed_yen", true),
            ("paid_yen", true),
        ],
        FAMILY_REGISTERS => &[
            ("family_register_id", true),
            ("domicile", true),
            ("head_name", true),
            ("created_on", true),
            ("pending_filing", false),
        ],
        PERSONS => &[
            ("family_register_id", true),
            ("person_id", true),
            ("name", true),
            ("birth_date", true),
            ("sex", true),
            ("relationship", true),
            ("father", false),
            ("mother", false),
            ("removed", false),
        ],
        EVENTS => &[
            ("family_register_id", true),
            ("person_id", true),
            ("label", true),
            ("date", true),
            ("detail", false),
        ],
        ADDRESSES => &[
            ("family_register_id", true),
            ("person_id", true),
            ("address", true),
            ("since", true),
        ],
        CARDS => &[
            ("card_serial", true),
            ("resident_id", true),
            ("issued_on", true),
        ],
        _ => &[],
    }
}

struct Errors(Vec<RowError>);

impl Errors {
    fn push(&mut self, file: &str, line: u64, column: &str, reason: impl Into<String>) {
        self.0.push(RowError {
            file: file.to_owned(),
            line,
            column: column.to_owned(),
            reason: reason.into(),
        });
    }
}

/// One parsed CSV file: its rows with their line numbers.
struct Table {
    file: &'static str,
    index: HashMap<String, usize>,
    rows: Vec<(u64, StringRecord)>,
}

/// One row being validated; every check records its own error and returns `None`.
struct Row<'a> {
    file: &'static str,
    line: u64,
    index: &'a HashMap<String, usize>,
    record: &'a StringRecord,
}

impl Row<'_> {
    fn raw(&self, column: &str) -> &str {
        self.index
            .get(column)
            .and_then(|i| self.record.get(*i))
            .unwrap_or("")
    }

    fn err(&self, errors: &mut Errors, column: &str, reason: impl Into<String>) {
        errors.push(self.file, self.line, column, reason);
    }

    /// Printed text: bounded, no control characters, no surrounding spaces. `None`
    /// for an empty optional cell (and for any bad cell, after recording it).
    fn text(&self, errors: &mut Errors, column: &str, required: bool) -> Option<String> {
        let value = self.raw(column);
        if value.is_empty() {
            if required {
                self.err(errors, column, "required");
            }
            return None;
        }
        if value.chars().any(char::is_control) {
            self.err(errors, column, "contains a control character");
            None
        } else if value != value.trim() {
            self.err(errors, column, "has leading or trailing white space");
            None
        } else if value.chars().count() > MAX_TEXT_CHARS {
            self.err(
                errors,
                column,
                format!("longer than {MAX_TEXT_CHARS} characters"),
            );
            None
        } else {
            Some(value.to_owned())
        }
    }

    /// An identifier: ASCII letters, digits, `-` and `_`, 1..=32 characters.
    fn id(&self, errors: &mut Errors, column: &str) -> Option<String> {
        let value = self.raw(column);
        if value.is_empty() {
            self.err(errors, column, "required");
            None
        } else if value.len() > 32
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.err(
                errors,
                column,
                format!("{value:?} must be 1 to 32 ASCII letters, digits, '-' or '_'"),
            );
            None
        } else {
            Some(value.to_owned())
        }
    }

    fn date(&self, errors: &mut Errors, column: &str, today: Date) -> Option<Date> {
        let value = self.raw(column);
        if value.is_empty() {
            self.err(errors, column, "required");
            return None;
        }
        match parse_iso_date(value) {
            Err(reason) => {
                self.err(errors, column, reason);
                None
            }
            Ok(day) if day > today => {
                self.err(
                    errors,
                    column,
                    format!("{day} is in the future (today is {today})"),
                );
                None
            }
            Ok(day) if day < GREGORIAN_ADOPTION => {
                self.err(
                    errors,
                    column,
                    format!("{day} is before 1873-01-01 and has no 和暦 date"),
                );
                None
            }
            Ok(day) => Some(day),
        }
    }

    fn sex(&self, errors: &mut Errors) -> Option<Sex> {
        let value = self.raw("sex");
        let sex = Sex::parse(value);
        if sex.is_none() {
            self.err(
                errors,
                "sex",
                format!("{value:?} must be \"male\" or \"female\""),
            );
        }
        sex
    }

    /// `true` | `false`, empty = `false`.
    fn flag(&self, errors: &mut Errors, column: &str) -> Option<bool> {
        match self.raw(column) {
            "" | "false" => Some(false),
            "true" => Some(true),
            other => {
                self.err(
                    errors,
                    column,
                    format!("{other:?} must be \"true\", \"false\" or empty"),
                );
                None
            }
        }
    }

    fn yen(&self, errors: &mut Errors, column: &str) -> Option<u64> {
        let value = self.raw(column);
        match value.parse::<u64>() {
            Ok(amount) if amount <= MAX_YEN && value.bytes().all(|b| b.is_ascii_digit()) => {
                Some(amount)
            }
            Ok(_) => {
                self.err(
                    errors,
                    column,
                    format!("must be a whole number of yen from 0 to {MAX_YEN}"),
                );
                None
            }
            Err(_) => {
                self.err(
                    errors,
                    column,
                    format!("{value:?} is not a whole number of yen (digits only)"),
                );
                None
            }
        }
    }

    fn fiscal_year(&self, errors: &mut Errors, today: Date) -> Option<u16> {
        let value = self.raw("fiscal_year");
        let latest = today.year();
        match value.parse::<u16>() {
            Ok(year)
                if value.len() == 4
                    && (1947..=latest).contains(&i16::try_from(year).unwrap_or(i16::MAX)) =>
            {
                Some(year)
            }
            _ => {
                self.err(
                    errors,
                    "fiscal_year",
                    format!("{value:?} must be a year (年度) from 1947 to {latest}"),
                );
                None
            }
        }
    }
}

/// `yyyy-mm-dd`, strictly (no time, no week dates, no two-digit years).
pub fn parse_iso_date(value: &str) -> Result<Date, String> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!("{value:?} is not a date in the form yyyy-mm-dd"));
    }
    // The shape check guarantees ASCII digits at these positions.
    let number = |range: std::ops::Range<usize>| value[range].parse::<i16>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let month = i8::try_from(month).map_err(|_| format!("{value:?}: month out of range"))?;
    let day = i8::try_from(day).map_err(|_| format!("{value:?}: day out of range"))?;
    Date::new(year, month, day).map_err(|e| format!("{value:?} is not a calendar date: {e}"))
}

/// Kana as printed in the ふりがな column: hiragana, katakana, 長音 and spaces.
pub fn is_kana_text(value: &str) -> bool {
    value.chars().all(|c| {
        matches!(c,
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' // hiragana, ゝゞ
            | '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FE}' // katakana, ー, ヽヾ
            | ' ' | '\u{3000}')
    })
}

/// 個人番号: 12 digits whose last is the check digit of the first 11 (番号法施行令
/// 第8条: weights 2..=7, 2..=6 from the right, modulus 11).
pub fn individual_number_is_valid(value: &str) -> bool {
    let digits: Vec<u32> = value.chars().filter_map(|c| c.to_digit(10)).collect();
    if value.len() != 12 || digits.len() != 12 {
        return false;
    }
    let sum: u32 = (1..=11)
        .map(|n| {
            let p = digits[11 - n];
            let q = if n <= 6 { n + 1 } else { n - 5 };
            p * u32::try_from(q).unwrap_or(0)
        })
        .sum();
    let remainder = sum % 11;
    let check = if remainder <= 1 { 0 } else { 11 - remainder };
    digits[11] == check
}

/// 住民票コード: 11 digits.
pub fn resident_code_is_valid(value: &str) -> bool {
    value.len() == 11 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Reads one CSV file (`None` if it is absent), recording its bytes for the digest.
fn read_table(
    dir: &Path,
    file: &'static str,
    errors: &mut Errors,
    digest_input: &mut Vec<u8>,
) -> Option<Table> {
    let path = dir.join(file);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if file == RESIDENTS {
                errors.push(file, 1, "(file)", "required file is missing");
            }
            return None;
        }
        Err(e) => {
            errors.push(file, 1, "(file)", format!("cannot read: {e}"));
            return None;
        }
    };
    if metadata.len() > MAX_CSV_BYTES {
        errors.push(
            file,
            1,
            "(file)",
            format!("larger than {MAX_CSV_BYTES} bytes"),
        );
        return None;
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            errors.push(file, 1, "(file)", format!("cannot read: {e}"));
            return None;
        }
    };
    append_digest(digest_input, file, &bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let expected = columns(file);
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(e) => {
            errors.push(file, 1, "(header)", csv_reason(&e));
            return None;
        }
    };
    let mut index = HashMap::new();
    let mut header_ok = true;
    for (i, name) in header.iter().enumerate() {
        let name = name.trim_start_matches('\u{FEFF}');
        if !expected.iter().any(|(known, _)| *known == name) {
            let known: Vec<_> = expected.iter().map(|(c, _)| *c).collect();
            errors.push(
                file,
                1,
                name,
                format!("unknown column (expected: {})", known.join(", ")),
            );
            header_ok = false;
        } else if index.insert(name.to_owned(), i).is_some() {
            errors.push(file, 1, name, "column appears twice");
            header_ok = false;
        }
    }
    for (column, required) in expected {
        if *required && !index.contains_key(*column) {
            errors.push(file, 1, column, "required column is missing");
            header_ok = false;
        }
    }
    if !header_ok {
        return None;
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.len() != header.len() {
                    errors.push(
                        file,
                        line,
                        "(row)",
                        format!(
                            "has {} fields, the header has {}",
                            record.len(),
                            header.len()
                        ),
                    );
                    continue;
                }
                rows.push((line, record));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(file, line, "(row)", csv_reason(&e));
            }
        }
    }
    Some(Table { file, index, rows })
}

fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => error.to_string(),
    }
}

/// Digest input: for each file, its name, its length and its bytes, so that moving
/// bytes between files changes the digest.
fn append_digest(input: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    input.extend_from_slice(name.as_bytes());
    input.push(0);
    input.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    input.extend_from_slice(bytes);
}

impl Table {
    fn each(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|(line, record)| Row {
            file: self.file,
            line: *line,
            index: &self.index,
            record,
        })
    }
}

/// Reads and validates a register directory without touching any database.
pub fn read_register_dir(
    code: MunicipalityCode,
    dir: &Path,
    today: Date,
) -> Result<ParsedRegister, ImportError> {
    let listing = std::fs::read_dir(dir).map_err(|source| ImportError::Directory {
        dir: dir.to_owned(),
        source,
    })?;
    let mut errors = Errors(Vec::new());
    // A misspelt file name would silently drop a whole ledger.
    let mut unknown: Vec<String> = listing
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".csv") && !REGISTER_FILES.contains(&name.as_str()))
        .collect();
    unknown.sort();
    for name in unknown {
        errors.push(
            &name,
            1,
            "(file)",
            format!(
                "unknown register file (expected: {})",
                REGISTER_FILES.join(", ")
            ),
        );
    }
    let mut digest_input = Vec::new();
    let mut tables: HashMap<&'static str, Table> = HashMap::new();
    for file in REGISTER_FILES {
        if let Some(table) = read_table(dir, file, &mut errors, &mut digest_input) {
            tables.insert(file, table);
        }
    }

    let residents = tables
        .get(RESIDENTS)
        .map(|t| residents(t, today, &mut errors))
        .unwrap_or_default();
    // resident id → (birth date, status)
    let known: HashMap<String, (Date, ResidentStatus)> = residents
        .households
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| (m.resident_id.clone(), (m.birth_date, m.status)))
        .collect();
    let check_resident = |row: &Row<'_>, errors: &mut Errors| -> Option<String> {
        let id = row.id(errors, "resident_id")?;
        if !residents.all_ids.contains(&id) {
            row.err(
                errors,
                "resident_id",
                format!("unknown resident {id:?} (not in {RESIDENTS})"),
            );
            return None;
        }
        Some(id)
    };

    // 印鑑登録
    let mut seal_registrations = Vec::new();
    if let Some(table) = tables.get(SEALS) {
        let mut numbers = HashMap::new();
        let mut active_of = HashMap::new();
        for row in table.each() {
            let resident = check_resident(&row, &mut errors);
            let number = row.raw("registration_number").to_owned();
            let number_ok = !number.is_empty()
                && number.len() <= 10
                && number.bytes().all(|b| b.is_ascii_digit());
            if !number_ok {
                row.err(
                    &mut errors,
                    "registration_number",
                    format!("{number:?} must be 1 to 10 digits"),
                );
            } else if let Some(first) = numbers.insert(number.clone(), row.line) {
                row.err(
                    &mut errors,
                    "registration_number",
                    format!("duplicate registration number (first at line {first})"),
                );
            }
            let registered_on = row.date(&mut errors, "registered_on", today);
            let active = match row.raw("status") {
                "active" => Some(true),
                "abolished" => Some(false),
                other => {
                    row.err(
                        &mut errors,
                        "status",
                        format!("{other:?} must be \"active\" or \"abolished\""),
                    );
                    None
                }
            };
            if let (Some(resident), Some(true)) = (&resident, active) {
                if let Some(first) = active_of.insert(resident.clone(), row.line) {
                    row.err(
                        &mut errors,
                        "status",
                        format!(
                            "resident {resident:?} already has an active registration (line {first})"
                        ),
                    );
                }
            }
            if let (Some(resident), Some(day)) = (&resident, registered_on) {
                if let Some((birth, _)) = known.get(resident) {
                    if day < *birth {
                        row.err(
                            &mut errors,
                            "registered_on",
                            format!("{day} is before the resident's birth date"),
                        );
                    }
                }
            }
            let impression = read_impression(&row, dir, &mut errors, &mut digest_input);
            if let (Some(resident_id), true, Some(registered_on), Some(active), Some(png)) =
                (resident, number_ok, registered_on, active, impression)
            {
                seal_registrations.push(SealRegistration {
                    resident_id,
                    registration_number: number,
                    registered_on,
                    active,
                    impression_png: png,
                });
            }
        }
    }

    // 課税
    let mut tax_records = Vec::new();
    if let Some(table) = tables.get(TAX_RECORDS) {
        let mut seen = HashMap::new();
        for row in table.each() {
            let resident = check_resident(&row, &mut errors);
            let year = row.fiscal_year(&mut errors, today);
            if let (Some(resident), Some(year)) = (&resident, year) {
                if let Some(first) = seen.insert((resident.clone(), year), row.line) {
                    row.err(
                        &mut errors,
                        "fiscal_year",
                        format!(
                            "duplicate record for {resident:?} and {year} (first at line {first})"
                        ),
                    );
                }
            }
            let address = row.text(&mut errors, "address_on_jan1", true);
            let mut amounts = [0i64; 6];
            let mut amounts_ok = true;
            for (slot, column) in amounts.iter_mut().zip([
                "salary_income_yen",
                "total_income_yen",
                "deductions_yen",
                "taxable_income_yen",
                "municipal_tax_yen",
                "prefectural_tax_yen",
            ]) {
                match row
                    .yen(&mut errors, column)
                    .and_then(|v| i64::try_from(v).ok())
                {
                    Some(v) => *slot = v,
                    None => amounts_ok = false,
                }
            }
            if amounts_ok && amounts[3] > amounts[1] {
                row.err(
                    &mut errors,
                    "taxable_income_yen",
                    "exceeds total_income_yen",
                );
                amounts_ok = false;
            }
            if let (Some(resident_id), Some(fiscal_year), Some(address_on_jan1), true) =
                (resident, year, address, amounts_ok)
            {
                tax_records.push(TaxRecord {
                    resident_id,
                    fiscal_year,
                    address_on_jan1,
                    salary_income_yen: amounts[0],
                    total_income_yen: amounts[1],
                    deductions_yen: amounts[2],
                    taxable_income_yen: amounts[3],
                    municipal_tax_yen: amounts[4],
                    prefectural_tax_yen: amounts[5],
                });
            }
        }
    }

    // 収納
    let mut tax_payments = Vec::new();
    if let Some(table) = tables.get(TAX_PAYMENTS) {
        let mut seen = HashMap::new();
        for row in table.each() {
            let resident = check_resident(&row, &mut errors);
            let year = row.fiscal_year(&mut errors, today);
            let tax_name = row.text(&mut errors, "tax_name", true);
            if let (Some(resident), Some(year), Some(name)) = (&resident, year, &tax_name) {
                if let Some(first) = seen.insert((resident.clone(), year, name.clone()), row.line) {
                    row.err(
                        &mut errors,
                        "tax_name",
                        format!(
                            "duplicate {name} for {resident:?} in {year} (first at line {first})"
                        ),
                    );
                }
            }
            let assessed = row.yen(&mut errors, "assessed_yen");
            let paid = row.yen(&mut errors, "paid_yen");
            let mut amounts_ok = true;
            if let (Some(assessed), Some(paid)) = (assessed, paid) {
                if paid > assessed {
                    row.err(
                        &mut errors,
                        "paid_yen",
                        format!("{paid} exceeds assessed_yen {assessed}"),
                    );
                    amounts_ok = false;
                }
            }
            if let (
                Some(resident_id),
                Some(fiscal_year),
                Some(tax_name),
                Some(assessed_yen),
                Some(paid_yen),
                true,
            ) = (resident, year, tax_name, assessed, paid, amounts_ok)
            {
                tax_payments.push(TaxPayment {
                    resident_id,
                    fiscal_year,
                    tax_name,
                    assessed_yen,
                    paid_yen,
                });
            }
        }
    }

    let family_registers = family_registers(&tables, today, &mut errors);
    // Each resident's 戸籍 link must name a person of a 戸籍 kept here.
    for (line, link, domicile) in &residents.links {
        let found = family_registers
            .iter()
            .find(|f| f.family_register_id == link.family_register_id);
        match found {
            None => errors.push(
                RESIDENTS,
                *line,
                "family_register_id",
                format!(
                    "unknown family register {:?} (not in {FAMILY_REGISTERS})",
                    link.family_register_id
                ),
            ),
            Some(register) if register.person(&link.person_id).is_none() => errors.push(
                RESIDENTS,
                *line,
                "family_register_person_id",
                format!(
                    "{:?} is not a person of family register {:?}",
                    link.person_id, link.family_register_id
                ),
            ),
            Some(register) if domicile.as_deref() != Some(register.domicile.as_str()) => errors
                .push(
                    RESIDENTS,
                    *line,
                    "domicile",
                    format!(
                        "must be the 本籍 of family register {} ({})",
                        register.family_register_id, register.domicile
                    ),
                ),
            Some(_) => {}
        }
    }

    // Card bindings seeded from cards.csv.
    let mut cards = Vec::new();
    if let Some(table) = tables.get(CARDS) {
        let mut serials = HashMap::new();
        let mut holders = HashMap::new();
        for row in table.each() {
            let value = row.raw("card_serial");
            let serial = match CardSerial::parse(value) {
                Ok(serial) if value.starts_with(&code.to_string()) => Some(serial),
                Ok(_) => {
                    row.err(
                        &mut errors,
                        "card_serial",
                        format!("{value} does not start with the municipality code {code}"),
                    );
                    None
                }
                Err(e) => {
                    row.err(&mut errors, "card_serial", e.to_string());
                    None
                }
            };
            if let Some(serial) = &serial {
                if let Some(first) = serials.insert(serial.clone(), row.line) {
                    row.err(
                        &mut errors,
                        "card_serial",
                        format!("duplicate card serial (first at line {first})"),
                    );
                }
            }
            let resident = check_resident(&row, &mut errors);
            if let Some(resident) = &resident {
                if let Some(first) = holders.insert(resident.clone(), row.line) {
                    row.err(
                        &mut errors,
                        "resident_id",
                        format!("resident {resident:?} already has a card (line {first})"),
                    );
                }
            }
            let issued_on = row.date(&mut errors, "issued_on", today);
            if let (Some(resident), Some(day)) = (&resident, issued_on) {
                if known.get(resident).is_some_and(|(birth, _)| day < *birth) {
                    row.err(
                        &mut errors,
                        "issued_on",
                        format!("{day} is before the holder's birth date"),
                    );
                }
            }
            if let (Some(card_serial), Some(resident_id), Some(issued_on)) =
                (serial, resident, issued_on)
            {
                cards.push(CardBinding {
                    card_serial,
                    resident_id,
                    issued_on,
                });
            }
        }
    }

    if !errors.0.is_empty() {
        return Err(ImportError::Invalid(errors.0));
    }
    Ok(ParsedRegister {
        register: Register {
            municipality_code: code,
            households: residents.households,
            seal_registrations,
            tax_records,
            tax_payments,
            family_registers,
        },
        cards,
        sha256: hex(&schemas::sha256(&digest_input)),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The seal impression PNG of a `seal_registrations.csv` row.
fn read_impression(
    row: &Row<'_>,
    dir: &Path,
    errors: &mut Errors,
    digest_input: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    const COLUMN: &str = "impression_file";
    let value = row.raw(COLUMN);
    if value.is_empty() {
        row.err(errors, COLUMN, "required");
        return None;
    }
    let relative = Path::new(value);
    // Only plain relative paths: the register must not reach outside its directory.
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        row.err(
            errors,
            COLUMN,
            format!("{value:?} must be a path relative to the register directory, without '..'"),
        );
        return None;
    }
    let path = dir.join(relative);
    match std::fs::metadata(&path) {
        Err(_) => {
            row.err(errors, COLUMN, format!("{value:?} does not exist"));
            return None;
        }
        Ok(m) if m.len() > MAX_IMPRESSION_BYTES => {
            row.err(
                errors,
                COLUMN,
                format!(
                    "{value:?} is {} bytes, more than {MAX_IMPRESSION_BYTES}",
                    m.len()
                ),
            );
            return None;
        }
        Ok(_) => {}
    }
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            row.err(errors, COLUMN, format!("{value:?}: {e}"));
            return None;
        }
    };
    if !bytes.starts_with(&PNG_SIGNATURE) {
        row.err(errors, COLUMN, format!("{value:?} is not a PNG file"));
        return None;
    }
    append_digest(digest_input, value, &bytes);
    Some(bytes)
}

#[derive(Default)]
struct Residents {
    households: Vec<Household>,
    /// Every resident id seen, even on bad rows (so that other files do not report
    /// an "unknown resident" for a row whose own error is already reported).
    all_ids: HashSet<String>,
    /// (line, link) of every resident linked to a 戸籍.
    links: Vec<(u64, FamilyRegisterRef, Option<String>)>,
}

fn residents(table: &Table, today: Date, errors: &mut Errors) -> Residents {
    let mut out = Residents::default();
    // household id → (index in households, first line, address)
    let mut households: HashMap<String, (usize, u64, String)> = HashMap::new();
    let mut heads: Vec<Vec<(u64, ResidentStatus)>> = Vec::new();
    let mut first_lines: Vec<u64> = Vec::new();
    let mut ids = HashMap::new();
    for row in table.each() {
        let household_id = row.id(errors, "household_id");
        let address = row.text(errors, "household_address", true);
        let resident_id = row.id(errors, "resident_id");
        if let Some(id) = &resident_id {
            out.all_ids.insert(id.clone());
            if let Some(first) = ids.insert(id.clone(), row.line) {
                row.err(
                    errors,
                    "resident_id",
                    format!("duplicate resident id {id:?} (first at line {first})"),
                );
            }
        }
        let name = row.text(errors, "name", true);
        let name_kana = row.text(errors, "name_kana", true).filter(|kana| {
            let ok = is_kana_text(kana);
            if !ok {
                row.err(
                    errors,
                    "name_kana",
                    format!("{kana:?} must be kana (hiragana or katakana) and spaces"),
                );
            }
            ok
        });
        let birth = row.date(errors, "birth_date", today);
        let sex = row.sex(errors);
        let relationship = row.text(errors, "relationship", true);
        let since = row.date(errors, "became_resident_on", today);
        if let (Some(birth), Some(since)) = (birth, since) {
            if since < birth {
                row.err(
                    errors,
                    "became_resident_on",
                    format!("{since} is before the birth date {birth}"),
                );
            }
        }
        let previous_address = row.text(errors, "previous_address", false);
        let domicile = row.text(errors, "domicile", false);
        let domicile_head = row.text(errors, "domicile_head", false);
        if row.raw("domicile").is_empty() != row.raw("domicile_head").is_empty() {
            row.err(
                errors,
                "domicile_head",
                "本籍 (domicile) and 筆頭者 (domicile_head) go together: give both or neither",
            );
        }
        let mut remarks = Vec::new();
        let raw_remarks = row.raw("remarks");
        if !raw_remarks.is_empty() {
            for remark in raw_remarks.split('|') {
                if remark.trim().is_empty() {
                    row.err(errors, "remarks", "an empty remark between '|'");
                } else if remark.chars().any(char::is_control) {
                    row.err(errors, "remarks", "contains a control character");
                } else if remark.chars().count() > MAX_TEXT_CHARS {
                    row.err(
                        errors,
                        "remarks",
                        format!("a remark longer than {MAX_TEXT_CHARS} characters"),
                    );
                } else {
                    remarks.push(remark.trim().to_owned());
                }
            }
        }
        let status = match row.raw("status") {
            "" => Some(ResidentStatus::Active),
            value => {
                let status = ResidentStatus::parse(value);
                if status.is_none() {
                    let known: Vec<_> = ResidentStatus::ALL.iter().map(|s| s.as_str()).collect();
                    row.err(
                        errors,
                        "status",
                        format!("{value:?} is not one of {}", known.join(", ")),
                    );
                }
                status
            }
        };
        let support_measures = row.flag(errors, "support_measures");
        // Checked, then dropped; the messages never quote the value.
        let resident_code = row.raw("resident_code");
        if !resident_code.is_empty() && !resident_code_is_valid(resident_code) {
            row.err(errors, "resident_code", "住民票コード must be 11 digits");
        }
        let individual_number = row.raw("individual_number");
        if !individual_number.is_empty() && !individual_number_is_valid(individual_number) {
            row.err(
                errors,
                "individual_number",
                "個人番号 must be 12 digits with a valid check digit",
            );
        }
        let link = match (
            row.raw("family_register_id"),
            row.raw("family_register_person_id"),
        ) {
            ("", "") => Some(None),
            ("", _) | (_, "") => {
                row.err(
                    errors,
                    "family_register_person_id",
                    "family_register_id and family_register_person_id go together: give both or neither",
                );
                None
            }
            _ => match (
                row.id(errors, "family_register_id"),
                row.id(errors, "family_register_person_id"),
            ) {
                (Some(family_register_id), Some(person_id)) => {
                    let link = FamilyRegisterRef {
                        family_register_id,
                        person_id,
                    };
                    out.links.push((row.line, link.clone(), domicile.clone()));
                    Some(Some(link))
                }
                _ => None,
            },
        };

        let Some(household_id) = household_id else {
            continue;
        };
        let index = match households.get(&household_id) {
            Some((index, first, first_address)) => {
                if let Some(address) = &address {
                    if address != first_address {
                        row.err(
                            errors,
                            "household_address",
                            format!(
                                "differs from the address of household {household_id} at line {first}"
                            ),
                        );
                    }
                }
                *index
            }
            None => {
                let index = out.households.len();
                households.insert(
                    household_id.clone(),
                    (index, row.line, address.clone().unwrap_or_default()),
                );
                out.households.push(Household {
                    household_id: household_id.clone(),
                    address: address.clone().unwrap_or_default(),
                    members: Vec::new(),
                });
                heads.push(Vec::new());
                first_lines.push(row.line);
                index
            }
        };
        if relationship.as_deref() == Some(HOUSEHOLD_HEAD) {
            if let (Some(list), Some(status)) = (heads.get_mut(index), status) {
                list.push((row.line, status));
            }
        }
        if let (
            Some(resident_id),
            Some(name),
            Some(name_kana),
            Some(birth_date),
            Some(sex),
            Some(relationship),
            Some(became_resident_on),
            Some(status),
            Some(support_measures),
            Some(family_register),
            Some(household),
        ) = (
            resident_id,
            name,
            name_kana,
            birth,
            sex,
            relationship,
            since,
            status,
            support_measures,
            link,
            out.households.get_mut(index),
        ) {
            household.members.push(Resident {
                resident_id,
                name,
                name_kana,
                birth_date,
                sex,
                relationship,
                became_resident_on,
                previous_address,
                domicile,
                domicile_head,
                remarks,
                status,
                support_measures,
                family_register,
            });
        }
    }
    // Exactly one 世帯主 per household, and a current member.
    for ((household, list), first) in out.households.iter().zip(&heads).zip(&first_lines) {
        if list.len() != 1 {
            errors.push(
                RESIDENTS,
                list.get(1).map_or(*first, |(line, _)| *line),
                "relationship",
                format!(
                    "household {} needs exactly one member with relationship {HOUSEHOLD_HEAD}, found {}",
                    household.household_id,
                    list.len()
                ),
            );
        }
        for (line, status) in list {
            if !status.is_current() {
                errors.push(
                    RESIDENTS,
                    *line,
                    "status",
                    format!(
                        "the {HOUSEHOLD_HEAD} must be a current member, not {}",
                        status.as_str()
                    ),
                );
            }
        }
    }
    out
}

fn person_mut<'a>(
    registers: &'a mut [FamilyRegister],
    register: &str,
    person: &str,
) -> Option<&'a mut FamilyRegisterPerson> {
    registers
        .iter_mut()
        .find(|r| r.family_register_id == register)?
        .persons
        .iter_mut()
        .find(|p| p.person_id == person)
}

fn family_registers(
    tables: &HashMap<&'static str, Table>,
    today: Date,
    errors: &mut Errors,
) -> Vec<FamilyRegister> {
    let mut registers: Vec<FamilyRegister> = Vec::new();
    // Ids seen even on bad rows, so that child files report only real unknowns.
    let mut register_ids: HashMap<String, u64> = HashMap::new();
    if let Some(table) = tables.get(FAMILY_REGISTERS) {
        for row in table.each() {
            let id = row.id(errors, "family_register_id");
            if let Some(id) = &id {
                if let Some(first) = register_ids.insert(id.clone(), row.line) {
                    row.err(
                        errors,
                        "family_register_id",
                        format!("duplicate family register id (first at line {first})"),
                    );
                    continue;
                }
            }
            let domicile = row.text(errors, "domicile", true);
            let head_name = row.text(errors, "head_name", true);
            let created_on = row.date(errors, "created_on", today);
            let pending_filing = row.flag(errors, "pending_filing");
            if let (
                Some(family_register_id),
                Some(domicile),
                Some(head_name),
                Some(created_on),
                Some(pending_filing),
            ) = (id, domicile, head_name, created_on, pending_filing)
            {
                registers.push(FamilyRegister {
                    family_register_id,
                    domicile,
                    head_name,
                    created_on,
                    pending_filing,
                    persons: Vec::new(),
                });
            }
        }
    }
    let known_register = |row: &Row<'_>, errors: &mut Errors| -> Option<String> {
        let id = row.id(errors, "family_register_id")?;
        if !register_ids.contains_key(&id) {
            row.err(
                errors,
                "family_register_id",
                format!("unknown family register {id:?} (not in {FAMILY_REGISTERS})"),
            );
            return None;
        }
        Some(id)
    };
    let mut person_ids: HashMap<(String, String), u64> = HashMap::new();
    if let Some(table) = tables.get(PERSONS) {
        for row in table.each() {
            let register = known_register(&row, errors);
            let person = row.id(errors, "person_id");
            if let (Some(register), Some(person)) = (&register, &person) {
                if let Some(first) = person_ids.insert((register.clone(), person.clone()), row.line)
                {
                    row.err(
                        errors,
                        "person_id",
                        format!("duplicate person in {register} (first at line {first})"),
                    );
                    continue;
                }
            }
            let name = row.text(errors, "name", true);
            let birth_date = row.date(errors, "birth_date", today);
            let sex = row.sex(errors);
            // The 筆頭者 has no printed 続柄: the cell may be empty.
            let relationship = row.text(errors, "relationship", false);
            let father = row.text(errors, "father", false);
            let mother = row.text(errors, "mother", false);
            let removed = row.flag(errors, "removed");
            if let (
                Some(register),
                Some(person_id),
                Some(name),
                Some(birth_date),
                Some(sex),
                Some(removed),
            ) = (register, person, name, birth_date, sex, removed)
            {
                if let Some(target) = registers
                    .iter_mut()
                    .find(|r| r.family_register_id == register)
                {
                    target.persons.push(FamilyRegisterPerson {
                        person_id,
                        name,
                        birth_date,
                        sex,
                        relationship: relationship.unwrap_or_default(),
                        father,
                        mother,
                        removed,
                        events: Vec::new(),
                        addresses: Vec::new(),
                    });
                }
            }
        }
    }
    let known_person = |row: &Row<'_>,
                        errors: &mut Errors,
                        register: Option<String>|
     -> Option<(String, String)> {
        let register = register?;
        let person = row.id(errors, "person_id")?;
        if !person_ids.contains_key(&(register.clone(), person.clone())) {
            row.err(
                errors,
                "person_id",
                format!("unknown person {person:?} of {register} (not in {PERSONS})"),
            );
            return None;
        }
        Some((register, person))
    };
    if let Some(table) = tables.get(EVENTS) {
        for row in table.each() {
            let register = known_register(&row, errors);
            let owner = known_person(&row, errors, register);
            let label = row.text(errors, "label", true);
            let date = row.date(errors, "date", today);
            let detail = row.text(errors, "detail", false);
            if let (Some((register, person)), Some(label), Some(date)) = (owner, label, date) {
                if let Some(target) = person_mut(&mut registers, &register, &person) {
                    target.events.push(FamilyRegisterEvent {
                        label,
                        date,
                        detail: detail.unwrap_or_default(),
                    });
                }
            }
        }
    }
    if let Some(table) = tables.get(ADDRESSES) {
        for row in table.each() {
            let register = known_register(&row, errors);
            let owner = known_person(&row, errors, register);
            let address = row.text(errors, "address", true);
            let since = row.date(errors, "since", today);
            if let (Some((register, person)), Some(address), Some(since)) = (owner, address, since)
            {
                if let Some(target) = person_mut(&mut registers, &register, &person) {
                    if target.addresses.last().is_some_and(|a| a.since > since) {
                        row.err(
                            errors,
                            "since",
                            "附票 addresses must be listed oldest first",
                        );
                    }
                    target.addresses.push(AttachmentAddress { address, since });
                }
            }
        }
    }
    if let Some(table) = tables.get(FAMILY_REGISTERS) {
        for register in &registers {
            if register.persons.is_empty() {
                let line = register_ids
                    .get(&register.family_register_id)
                    .copied()
                    .unwrap_or(0);
                errors.push(
                    table.file,
                    line,
                    "family_register_id",
                    format!(
                        "family register {} has no person in {PERSONS}",
                        register.family_register_id
                    ),
                );
            }
        }
    }
    registers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_are_strict() {
        assert_eq!(
            parse_iso_date("1978-04-12").unwrap(),
            jiff::civil::date(1978, 4, 12)
        );
        assert!(parse_iso_date("1978-02-30").is_err());
        assert!(parse_iso_date("1978-4-12").is_err());
        assert!(parse_iso_date("1978-04-12T00:00").is_err());
        assert!(parse_iso_date("２０００-01-01").is_err());
        assert!(parse_iso_date("1900-02-29").is_err());
    }

    #[test]
    fn kana() {
        assert!(is_kana_text("たかはし けんいち"));
        assert!(is_kana_text("タカハシ　ケンイチ"));
        assert!(!is_kana_text("髙橋"));
    }

    #[test]
    fn individual_number_check_digit() {
        // 12345678901x: weights from the right 2..7,2..6 → check digit 8.
        assert!(individual_number_is_valid("123456789018"));
        for wrong in 0..=9 {
            if wrong != 8 {
                assert!(!individual_number_is_valid(&format!("12345678901{wrong}")));
            }
        }
        assert!(!individual_number_is_valid("12345678901"));
        assert!(!individual_number_is_valid("1234567890180"));
        assert!(!individual_number_is_valid("12345678901a"));
        assert!(resident_code_is_valid("12345678901"));
        assert!(!resident_code_is_valid("1234567890"));
    }
}
