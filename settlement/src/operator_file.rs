//! The operator's transaction file (CSV, `schemas::settlement::OPERATOR_FILE_COLUMNS`).
//!
//! Strict by design: the file decides money, so nothing is guessed. The header row
//! must be exactly [`OPERATOR_FILE_COLUMNS`]; no field is trimmed; every field parses
//! through the schemas newtypes; integers are plain ASCII digits (no sign, no
//! separators). A UTF-8 byte-order mark at the start and a final empty line are
//! accepted, as spreadsheet exports produce them.

use std::collections::HashMap;

use schemas::settlement::{OperatorTransaction, MAX_OPERATOR_FILE_ROWS, OPERATOR_FILE_COLUMNS};
use schemas::{KioskId, MunicipalityCode, RequestId};

/// Copies of one certificate in one transaction, inclusive bounds.
pub const MIN_COPIES: u32 = 1;
pub const MAX_COPIES: u32 = 100;
/// Upper bound on one transaction's amount (ten million yen, inclusive).
pub const MAX_AMOUNT_YEN: i64 = 10_000_000;
/// At most this many entries in [`OperatorFileError::Lines`]; the last one then says
/// how many more bad lines there were.
pub const MAX_REPORTED_LINES: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OperatorFileError {
    /// Every bad line, `line N: reason`, in file order (bounded to the first 100).
    #[error("operator transaction file has {} bad line(s): {}", .0.len(), .0.join("; "))]
    Lines(Vec<String>),
    #[error("operator transaction file has more than {0} rows")]
    TooManyRows(usize),
}

/// Parses the whole file; any bad line rejects the file (nothing half-reconciled).
pub fn parse_operator_file(text: &str) -> Result<Vec<OperatorTransaction>, OperatorFileError> {
    parse_with_limit(text, MAX_OPERATOR_FILE_ROWS)
}

/// [`parse_operator_file`] with a row bound of `max_rows` (tests use a small one).
fn parse_with_limit(
    text: &str,
    max_rows: usize,
) -> Result<Vec<OperatorTransaction>, OperatorFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked here, per line, so one short row does not hide the
        // others.
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());

    let mut errors = BadLines::default();
    let mut rows = Vec::new();
    // request id → the file line that listed it first.
    let mut seen: HashMap<RequestId, u64> = HashMap::new();
    let mut header_seen = false;
    let mut lines = LineCounter::new(text);
    let mut record = csv::StringRecord::new();
    loop {
        let before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Unreachable for a `&str` with flexible rows (no I/O, no UTF-8 or
                // length errors); stop rather than risk a reader that cannot advance.
                let at = lines.line_at(e.position().map_or(before, csv::Position::byte));
                errors.push(at, format!("not valid CSV: {e}"));
                break;
            }
        }
        let line = lines.line_at(record.position().map_or(before, csv::Position::byte));
        if !header_seen {
            header_seen = true;
            if record.iter().ne(OPERATOR_FILE_COLUMNS) {
                // Without the right columns no row can be read safely.
                return Err(OperatorFileError::Lines(vec![format!(
                    "line {line}: header must be exactly {:?}, found {:?}",
                    OPERATOR_FILE_COLUMNS.join(","),
                    record.iter().collect::<Vec<_>>().join(",")
                )]));
            }
            continue;
        }
        if rows.len() + errors.count >= max_rows {
            return Err(OperatorFileError::TooManyRows(max_rows));
        }
        match parse_row(&record) {
            Ok(row) => {
                if let Some(first) = seen.get(&row.request_id) {
                    errors.push(
                        line,
                        format!(
                            "request id {} is listed twice (first on line {first})",
                            row.request_id
                        ),
                    );
                } else {
                    seen.insert(row.request_id, line);
                    rows.push(row);
                }
            }
            Err(reason) => errors.push(line, reason),
        }
    }
    if !header_seen {
        return Err(OperatorFileError::Lines(vec![format!(
            "line 1: missing header row {:?}",
            OPERATOR_FILE_COLUMNS.join(",")
        )]));
    }
    errors.finish()?;
    Ok(rows)
}

/// 1-based file line of a record from its byte offset. The csv reader skips blank
/// lines silently and reports a record's position from *before* them, so its own
/// line numbers can point at the blank line; this counts terminators (`\n`, `\r\n`,
/// or a lone `\r`, as the reader accepts) itself. Offsets only grow, so the whole
/// file is scanned once.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: u64) -> u64 {
        let len = self.text.len();
        let mut start = usize::try_from(offset).unwrap_or(len).min(len);
        // Step over the blank lines the reader skipped before this record.
        while start < len && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start < self.byte {
            // Never happens (records come in order); keep the last answer.
            return self.line;
        }
        for i in self.byte..start {
            let terminator = match self.text[i] {
                b'\n' => true,
                b'\r' => self.text.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            if terminator {
                self.line += 1;
            }
        }
        self.byte = start;
        self.line
    }
}

/// The bad lines collected so far, bounded.
#[derive(Default)]
struct BadLines {
    /// Every bad line seen (counted even when not kept).
    count: usize,
    kept: Vec<String>,
}

impl BadLines {
    fn push(&mut self, line: u64, reason: String) {
        self.count += 1;
        if self.kept.len() < MAX_REPORTED_LINES {
            self.kept.push(format!("line {line}: {reason}"));
        }
    }

    fn finish(mut self) -> Result<(), OperatorFileError> {
        if self.count == 0 {
            return Ok(());
        }
        if self.count > MAX_REPORTED_LINES {
            // Keep the first 99 and say how many the 100th entry stands for.
            self.kept.truncate(MAX_REPORTED_LINES - 1);
            let more = self.count - self.kept.len();
            self.kept.push(format!("…and {more} more bad line(s)"));
        }
        Err(OperatorFileError::Lines(self.kept))
    }
}

/// One data row, or the first reason it is bad.
fn parse_row(record: &csv::StringRecord) -> Result<OperatorTransaction, String> {
    if record.len() != OPERATOR_FILE_COLUMNS.len() {
        return Err(format!(
            "expected {} fields, found {}",
            OPERATOR_FILE_COLUMNS.len(),
            record.len()
        ));
    }
    // `len` was checked, so every index below exists.
    let field = |i: usize| record.get(i).unwrap_or_default();
    let request_id: RequestId = field(0)
        .parse()
        .map_err(|e| format!("request_id {:?}: {e}", field(0)))?;
    let kiosk_id = KioskId::parse(field(1)).map_err(|e| format!("kiosk_id: {e}"))?;
    let municipality_code =
        MunicipalityCode::parse(field(2)).map_err(|e| format!("municipality_code: {e}"))?;
    let copies = digits(field(3), "copies")?;
    let copies = u32::try_from(copies)
        .ok()
        .filter(|c| (MIN_COPIES..=MAX_COPIES).contains(c))
        .ok_or_else(|| format!("copies must be {MIN_COPIES}..={MAX_COPIES}, got {copies}"))?;
    let amount = digits(field(4), "amount_yen")?;
    let amount_yen = i64::try_from(amount)
        .ok()
        .filter(|a| (0..=MAX_AMOUNT_YEN).contains(a))
        .ok_or_else(|| format!("amount_yen must be 0..={MAX_AMOUNT_YEN}, got {amount}"))?;
    Ok(OperatorTransaction {
        request_id,
        kiosk_id,
        municipality_code,
        copies,
        amount_yen,
    })
}

/// A non-negative integer written as 1–18 ASCII digits (enough for any bound here,
/// and it cannot overflow `u64`).
fn digits(text: &str, name: &str) -> Result<u64, String> {
    if let Some(rest) = text.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{name} must not be negative, got {text}"));
        }
    }
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name} must be a whole number of digits, got {text:?}"
        ));
    }
    text.parse().map_err(|e| format!("{name} {text:?}: {e}"))
}

/// Writes a file `parse_operator_file` reads back unchanged (header row first).
pub fn write_operator_file(rows: &[OperatorTransaction]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(80 * (rows.len() + 1)));
    // Writing to a Vec cannot fail, and ids are ASCII tokens.
    writer
        .write_record(OPERATOR_FILE_COLUMNS)
        .expect("CSV into memory");
    for row in rows {
        writer
            .write_record([
                row.request_id.to_string(),
                row.kiosk_id.to_string(),
                row.municipality_code.to_string(),
                row.copies.to_string(),
                row.amount_yen.to_string(),
            ])
            .expect("CSV into memory");
    }
    let bytes = writer.into_inner().expect("CSV into memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u8) -> String {
        format!("00000000-0000-4000-8000-0000000000{n:02x},k1,212113,1,300\n")
    }

    #[test]
    fn line_numbers_count_blank_lines_and_every_terminator() {
        let header = OPERATOR_FILE_COLUMNS.join(",");
        // Lines: 1 header, 2 blank, 3 good, 4 blank, 5 bad.
        let text = format!("{header}\n\n{}\n\nbad\n", row(1).trim_end());
        assert_eq!(
            parse_operator_file(&text),
            Err(OperatorFileError::Lines(vec![
                "line 5: expected 5 fields, found 1".into()
            ]))
        );
        // The same with \r\n and with lone \r terminators.
        for terminator in ["\r\n", "\r"] {
            let text = text.replace('\n', terminator);
            assert_eq!(
                parse_operator_file(&text),
                Err(OperatorFileError::Lines(vec![
                    "line 5: expected 5 fields, found 1".into()
                ])),
                "{terminator:?}"
            );
        }
        // A quoted field spanning lines: the next record's line is still right.
        let text = format!("{header}\n\"a\nb\",k1,212113,1,300\nbad\n");
        let Err(OperatorFileError::Lines(lines)) = parse_operator_file(&text) else {
            panic!("expected errors");
        };
        assert!(lines[0].starts_with("line 2:"), "{lines:?}");
        assert!(lines[1].starts_with("line 4:"), "{lines:?}");
    }

    #[test]
    fn too_many_rows_at_the_bound() {
        let header = format!("{}\n", OPERATOR_FILE_COLUMNS.join(","));
        let three: String = header.clone() + &row(1) + &row(2) + &row(3);
        assert_eq!(parse_with_limit(&three, 3).map(|r| r.len()), Ok(3));
        let four = three + &row(4);
        assert_eq!(
            parse_with_limit(&four, 3),
            Err(OperatorFileError::TooManyRows(3))
        );
        // Bad rows count towards the bound too: the file is too long either way.
        let bad = header + &row(1) + "x\n" + "y\n" + "z\n";
        assert_eq!(
            parse_with_limit(&bad, 3),
            Err(OperatorFileError::TooManyRows(3))
        );
    }
}
