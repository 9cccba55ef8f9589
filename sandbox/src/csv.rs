//! Just enough CSV (RFC 4180: quoted fields, doubled quotes, CRLF) to read back the
//! register files the sandbox copies, e.g. the card holders' names for the card labels.
//! The adapter's importer is the authority on the layout; this reader only looks up
//! columns by name and ignores anything it does not know.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{io_error, SandboxError};

/// Largest register file read back (the samples are a few KiB).
const MAX_CSV_BYTES: u64 = 16 * 1024 * 1024;

/// One CSV record, keyed by the header's column names.
pub type Row = BTreeMap<String, String>;

/// Splits CSV text into records of fields.
pub fn parse(text: &str) -> Vec<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push(std::mem::take(&mut record));
                }
                record.clear();
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// Reads a CSV file with a header line into rows keyed by column name.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, SandboxError> {
    let size = std::fs::metadata(path).map_err(io_error(path))?.len();
    if size > MAX_CSV_BYTES {
        return Err(SandboxError::Invalid(format!(
            "{} is larger than {MAX_CSV_BYTES} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let mut records = parse(&text).into_iter();
    let Some(header) = records.next() else {
        return Ok(Vec::new());
    };
    Ok(records
        .map(|fields| {
            header
                .iter()
                .cloned()
                .zip(fields.into_iter().chain(std::iter::repeat(String::new())))
                .collect()
        })
        .collect())
}

/// Every `*.csv` file of `dir` as (file name, rows); unreadable files are skipped.
pub fn read_dir_rows(dir: &Path) -> Vec<(String, Vec<Row>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let rows = read_rows(&path).ok()?;
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((name, rows))
        })
        .collect()
}

/// The first non-empty value among `columns`.
pub fn field<'r>(row: &'r Row, columns: &[&str]) -> Option<&'r str> {
    columns
        .iter()
        .filter_map(|c| row.get(*c))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

const NAME_COLUMNS: [&str; 4] = ["name", "full_name", "氏名", "name_kanji"];

/// Card serial → the holder's name, from the register's card and resident files
/// (best effort: a layout this reader does not understand yields no names).
pub fn holder_names(register_dir: &Path) -> BTreeMap<String, String> {
    let files = read_dir_rows(register_dir);
    let mut resident_names = BTreeMap::new();
    for (_, rows) in &files {
        for row in rows {
            if row.contains_key("card_serial") {
                continue;
            }
            if let (Some(id), Some(name)) =
                (field(row, &["resident_id"]), field(row, &NAME_COLUMNS))
            {
                resident_names.insert(id.to_owned(), name.to_owned());
            }
        }
    }
    let mut names = BTreeMap::new();
    for (_, rows) in &files {
        for row in rows {
            if let (Some(serial), Some(resident)) =
                (field(row, &["card_serial"]), field(row, &["resident_id"]))
            {
                if let Some(name) = resident_names.get(resident) {
                    names.insert(serial.to_owned(), name.clone());
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_crlf() {
        let records = parse("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\n1,\n");
        assert_eq!(
            records,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["x, y".to_owned(), "say \"hi\"".to_owned()],
                vec!["1".to_owned(), String::new()],
            ]
        );
    }
}
