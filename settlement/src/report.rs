//! The report files (`schemas::settlement`): JSON Lines with header and trailer, CSV,
//! and the detached Ed25519 signature.

use std::collections::{BTreeMap, HashSet};

use schemas::settlement::{
    DetachedSignature, ReportLine, ReportParty, WindowState, CSV_COLUMNS, REPORT_FORMAT,
    REPORT_SIGNATURE_DOMAIN,
};
use schemas::{KeyPair, MunicipalityCode, OperatorId, PublicKey, RequestId};

use crate::totals::{pair_totals, Accumulator, Item, PairTotal, ReconItem};
use crate::window::BusinessDate;

/// The only signature algorithm of a [`DetachedSignature`].
pub const SIGNATURE_ALG: &str = "Ed25519";
/// Upper bound on lines of a report a reader accepts: far above a busy window (the
/// whole country prints ~90,000 certificates a day), low enough to bound memory.
pub const MAX_REPORT_LINES: usize = 4_000_000;
/// Upper bound on one line's length; a real line is a few hundred bytes.
pub const MAX_REPORT_LINE_BYTES: usize = 16 * 1024;

/// The window a report describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowInfo {
    pub business_date: BusinessDate,
    pub state: WindowState,
    pub starts_at_unix_ms: i64,
    pub ends_at_unix_ms: i64,
}

/// Everything one party's report holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub window: WindowInfo,
    pub party: ReportParty,
    /// Only the party's items (by operator or by municipality).
    pub items: Vec<Item>,
    pub recon_required: Vec<ReconItem>,
    pub generated_at_unix_ms: i64,
}

impl Report {
    /// The party's share of a window's items and recon items.
    pub fn for_party(
        window: WindowInfo,
        party: ReportParty,
        all_items: &[Item],
        all_recon: &[ReconItem],
        generated_at_unix_ms: i64,
    ) -> Self {
        let mut items: Vec<Item> = all_items
            .iter()
            .filter(|i| belongs(&party, &i.operator_id, i.municipality_code))
            .cloned()
            .collect();
        items.sort_by_key(|i| i.request_id);
        let mut recon_required: Vec<ReconItem> = all_recon
            .iter()
            .filter(|r| belongs(&party, &r.operator_id, r.municipality_code))
            .cloned()
            .collect();
        recon_required.sort_by_key(|r| r.request_id);
        Self {
            window,
            party,
            items,
            recon_required,
            generated_at_unix_ms,
        }
    }

    /// Items sorted by request id, whatever order the fields were filled in.
    fn sorted_items(&self) -> Vec<&Item> {
        let mut items: Vec<&Item> = self.items.iter().collect();
        items.sort_by_key(|i| i.request_id);
        items
    }

    fn sorted_recon(&self) -> Vec<&ReconItem> {
        let mut recon: Vec<&ReconItem> = self.recon_required.iter().collect();
        recon.sort_by_key(|r| r.request_id);
        recon
    }
}

/// Whether a line of `operator`/`municipality` belongs in `party`'s report.
fn belongs(party: &ReportParty, operator: &OperatorId, municipality: MunicipalityCode) -> bool {
    match party {
        ReportParty::Operator(id) => id == operator,
        ReportParty::Municipality(code) => *code == municipality,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("report is incomplete: {0}")]
    Incomplete(String),
    #[error("signature: {0}")]
    Signature(String),
}

/// `settlement-<date>-operator-<id>` or `settlement-<date>-municipality-<code>`.
pub fn report_file_stem(report: &Report) -> String {
    let date = report.window.business_date;
    match &report.party {
        ReportParty::Operator(id) => format!("settlement-{date}-operator-{id}"),
        ReportParty::Municipality(code) => format!("settlement-{date}-municipality-{code}"),
    }
}

fn json_line(out: &mut String, line: &ReportLine) {
    // Plain structs of strings and integers: serialising cannot fail.
    let json = serde_json::to_string(line).expect("ReportLine serialises to JSON");
    out.push_str(&json);
    out.push('\n');
}

fn total_line(total: &PairTotal) -> ReportLine {
    ReportLine::Total {
        operator_id: total.operator_id.clone(),
        municipality_code: total.municipality_code,
        items: total.items,
        copies: total.copies,
        gross_yen: total.gross_yen,
        commission_yen: total.commission_yen,
        net_yen: total.net_yen,
        adjustment_items: total.adjustment_items,
        adjustment_gross_yen: total.adjustment_gross_yen,
        commission_per_copy_yen: total.commission_per_copy_yen,
    }
}

fn count(n: usize) -> u64 {
    // usize is at most 64 bits on every supported target.
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The JSON Lines file (one `ReportLine` per line, `\n` after each).
pub fn render_jsonl(report: &Report, center_kid: schemas::Kid) -> String {
    let items = report.sorted_items();
    let recon = report.sorted_recon();
    // Totals do not depend on the order of the items.
    let totals = pair_totals(&report.items);

    let mut out = String::with_capacity(512 * (items.len() + recon.len() + totals.len() + 2));
    json_line(
        &mut out,
        &ReportLine::Header {
            format: REPORT_FORMAT.to_owned(),
            business_date: report.window.business_date.to_string(),
            party: report.party.clone(),
            window_state: report.window.state,
            starts_at_unix_ms: report.window.starts_at_unix_ms,
            ends_at_unix_ms: report.window.ends_at_unix_ms,
            generated_at_unix_ms: report.generated_at_unix_ms,
            center_kid,
        },
    );
    for item in &items {
        json_line(
            &mut out,
            &ReportLine::Item {
                request_id: item.request_id,
                operator_id: item.operator_id.clone(),
                kiosk_id: item.kiosk_id.clone(),
                municipality_code: item.municipality_code,
                certificate_type: item.certificate_type,
                copies: item.copies,
                gross_yen: item.gross_yen,
                commission_yen: item.commission_yen(),
                net_yen: item.net_yen(),
                printed_at_unix_ms: item.printed_at_unix_ms,
                adjustment: item.adjustment,
            },
        );
    }
    for r in &recon {
        json_line(
            &mut out,
            &ReportLine::ReconRequired {
                request_id: r.request_id,
                operator_id: r.operator_id.clone(),
                kiosk_id: r.kiosk_id.clone(),
                municipality_code: r.municipality_code,
                paid_yen: r.paid_yen,
            },
        );
    }
    for total in &totals {
        json_line(&mut out, &total_line(total));
    }
    // The trailer repeats the totals' sums (same arithmetic, so they agree).
    let sum =
        |f: fn(&PairTotal) -> i64| totals.iter().fold(0i64, |acc, t| acc.saturating_add(f(t)));
    json_line(
        &mut out,
        &ReportLine::Trailer {
            item_count: count(items.len()),
            recon_required_count: count(recon.len()),
            total_count: count(totals.len()),
            copies: totals
                .iter()
                .fold(0u64, |acc, t| acc.saturating_add(t.copies)),
            gross_yen: sum(|t| t.gross_yen),
            commission_yen: sum(|t| t.commission_yen),
            net_yen: sum(|t| t.net_yen),
            recon_required_yen: recon
                .iter()
                .fold(0i64, |acc, r| acc.saturating_add(r.paid_yen)),
            line_count: count(items.len() + recon.len() + totals.len() + 2),
        },
    );
    out
}

/// The CSV file: `CSV_COLUMNS` then one row per (operator, municipality) pair.
pub fn render_csv(report: &Report) -> String {
    let date = report.window.business_date.to_string();
    let totals = pair_totals(&report.items);
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(128 * (totals.len() + 1)));
    // Writing to a Vec cannot fail, and every field is ASCII.
    writer.write_record(CSV_COLUMNS).expect("CSV into memory");
    for t in &totals {
        writer
            .write_record([
                date.clone(),
                t.operator_id.to_string(),
                t.municipality_code.to_string(),
                t.items.to_string(),
                t.copies.to_string(),
                t.gross_yen.to_string(),
                t.commission_yen.to_string(),
                t.net_yen.to_string(),
                t.adjustment_items.to_string(),
                t.adjustment_gross_yen.to_string(),
                t.commission_per_copy_yen.to_string(),
            ])
            .expect("CSV into memory");
    }
    let bytes = writer.into_inner().expect("CSV into memory");
    String::from_utf8(bytes).expect("CSV of ASCII fields")
}

/// Where the reader is in the fixed line order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Header,
    Items,
    Recon,
    Totals,
    Trailer,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Items => "item",
            Self::Recon => "recon_required",
            Self::Totals => "total",
            Self::Trailer => "trailer",
        }
    }
}

fn line_err(line: usize, reason: impl Into<String>) -> ReportError {
    ReportError::Line {
        line,
        reason: reason.into(),
    }
}

/// Parses and checks a JSON Lines report: header first, trailer last, counts and sums
/// in the trailer and totals equal to the item lines.
///
/// Also checked, so that a reader can trust every figure it reads: the header's
/// format, date and window; lines in the fixed order; items and recon lines strictly
/// sorted by request id (no duplicates) and totals by pair; every line belongs to
/// the header's party; each item's `net = gross − commission` and
/// `commission = copies × the pair's commission_per_copy`; no negative gross,
/// commission or paid amount; every line ends with `\n`.
pub fn parse_report_jsonl(text: &str) -> Result<Vec<ReportLine>, ReportError> {
    if text.is_empty() {
        return Err(ReportError::Incomplete("the file is empty".into()));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(ReportError::Incomplete(
            "the last line does not end with a newline (truncated?)".into(),
        ));
    };

    let mut checker = Checker::default();
    let mut lines = Vec::new();
    for (index, raw) in body.split('\n').enumerate() {
        let number = index + 1;
        if number > MAX_REPORT_LINES {
            return Err(line_err(
                number,
                format!("more than {MAX_REPORT_LINES} lines"),
            ));
        }
        if raw.len() > MAX_REPORT_LINE_BYTES {
            return Err(line_err(
                number,
                format!("longer than {MAX_REPORT_LINE_BYTES} bytes"),
            ));
        }
        let line: ReportLine = serde_json::from_str(raw)
            .map_err(|e| line_err(number, format!("not a report line: {e}")))?;
        checker.check(number, &line)?;
        lines.push(line);
    }
    checker.finish(lines.len())?;
    Ok(lines)
}

/// State of the line-by-line checks.
#[derive(Default)]
struct Checker {
    section: Option<Section>,
    party: Option<ReportParty>,
    last_item: Option<RequestId>,
    last_recon: Option<RequestId>,
    last_total: Option<(OperatorId, MunicipalityCode)>,
    /// Recomputed from the item lines: sums, and the commission of each item with its
    /// copies, to check against the pair's per-copy figure once the total is read.
    pairs: BTreeMap<(OperatorId, MunicipalityCode), PairCheck>,
    totals_seen: HashSet<(OperatorId, MunicipalityCode)>,
    recon_count: u64,
    recon_yen: i128,
    /// Grand sums over the total lines, for the trailer.
    grand: Accumulator,
}

#[derive(Default)]
struct PairCheck {
    acc: Accumulator,
    /// (line, copies, commission) of each item.
    commissions: Vec<(usize, u32, i64)>,
}

impl Checker {
    fn enter(&mut self, number: usize, section: Section) -> Result<(), ReportError> {
        match self.section {
            None if section != Section::Header => Err(line_err(
                number,
                format!("expected the header first, found a {} line", section.name()),
            )),
            Some(Section::Trailer) => Err(line_err(
                number,
                format!("{} line after the trailer", section.name()),
            )),
            Some(Section::Header) if section == Section::Header => {
                Err(line_err(number, "a second header line"))
            }
            Some(current) if section < current => Err(line_err(
                number,
                format!(
                    "{} line after a {} line (order: header, item, recon_required, total, trailer)",
                    section.name(),
                    current.name()
                ),
            )),
            _ => {
                self.section = Some(section);
                Ok(())
            }
        }
    }

    fn check_party(
        &self,
        number: usize,
        operator: &OperatorId,
        municipality: MunicipalityCode,
    ) -> Result<(), ReportError> {
        match &self.party {
            Some(party) if belongs(party, operator, municipality) => Ok(()),
            _ => Err(line_err(
                number,
                format!("{operator}/{municipality} is not the report's party"),
            )),
        }
    }

    fn check(&mut self, number: usize, line: &ReportLine) -> Result<(), ReportError> {
        match line {
            ReportLine::Header {
                format,
                business_date,
                party,
                window_state,
                starts_at_unix_ms,
                ends_at_unix_ms,
                ..
            } => {
                self.enter(number, Section::Header)?;
                if format != REPORT_FORMAT {
                    return Err(line_err(
                        number,
                        format!("format {format:?}, expected {REPORT_FORMAT:?}"),
                    ));
                }
                BusinessDate::parse(business_date).map_err(|e| line_err(number, e.to_string()))?;
                if *window_state == WindowState::Open {
                    return Err(line_err(number, "the window is still open"));
                }
                if starts_at_unix_ms >= ends_at_unix_ms {
                    return Err(line_err(number, "the window ends before it starts"));
                }
                self.party = Some(party.clone());
            }
            ReportLine::Item {
                request_id,
                operator_id,
                municipality_code,
                copies,
                gross_yen,
                commission_yen,
                net_yen,
                adjustment,
                ..
            } => {
                self.enter(number, Section::Items)?;
                self.check_party(number, operator_id, *municipality_code)?;
                if self.last_item.is_some_and(|last| last >= *request_id) {
                    return Err(line_err(
                        number,
                        format!("item {request_id} out of order or repeated (items are sorted by request id)"),
                    ));
                }
                self.last_item = Some(*request_id);
                if *copies == 0 {
                    return Err(line_err(number, "item with zero copies"));
                }
                if *gross_yen < 0 || *commission_yen < 0 {
                    return Err(line_err(number, "negative gross or commission"));
                }
                if Some(*net_yen) != gross_yen.checked_sub(*commission_yen) {
                    return Err(line_err(
                        number,
                        format!("net {net_yen} ≠ gross {gross_yen} − commission {commission_yen}"),
                    ));
                }
                let pair = self
                    .pairs
                    .entry((operator_id.clone(), *municipality_code))
                    .or_default();
                pair.acc
                    .add(*copies, *gross_yen, *commission_yen, *adjustment);
                pair.commissions.push((number, *copies, *commission_yen));
            }
            ReportLine::ReconRequired {
                request_id,
                operator_id,
                municipality_code,
                paid_yen,
                ..
            } => {
                self.enter(number, Section::Recon)?;
                self.check_party(number, operator_id, *municipality_code)?;
                if self.last_recon.is_some_and(|last| last >= *request_id) {
                    return Err(line_err(
                        number,
                        format!("recon_required {request_id} out of order or repeated"),
                    ));
                }
                self.last_recon = Some(*request_id);
                if *paid_yen < 0 {
                    return Err(line_err(number, "negative paid amount"));
                }
                self.recon_count += 1;
                self.recon_yen += i128::from(*paid_yen);
            }
            ReportLine::Total {
                operator_id,
                municipality_code,
                commission_per_copy_yen,
                ..
            } => {
                self.enter(number, Section::Totals)?;
                self.check_party(number, operator_id, *municipality_code)?;
                let key = (operator_id.clone(), *municipality_code);
                if self.last_total.as_ref().is_some_and(|last| *last >= key) {
                    return Err(line_err(
                        number,
                        format!("total {operator_id}/{municipality_code} out of order or repeated"),
                    ));
                }
                self.last_total = Some(key.clone());
                let Some(pair) = self.pairs.get(&key) else {
                    return Err(line_err(
                        number,
                        format!("total for {operator_id}/{municipality_code}, which has no items"),
                    ));
                };
                let expected = pair
                    .acc
                    .total_checked(
                        operator_id.clone(),
                        *municipality_code,
                        *commission_per_copy_yen,
                    )
                    .map_err(|e| line_err(number, e.to_string()))?;
                if total_line(&expected) != *line {
                    return Err(line_err(
                        number,
                        format!(
                            "total for {operator_id}/{municipality_code} differs from its items: expected {}",
                            serde_json::to_string(&total_line(&expected)).unwrap_or_default()
                        ),
                    ));
                }
                if let Some((item_line, copies, commission)) =
                    pair.commissions.iter().find(|(_, copies, commission)| {
                        i64::from(*copies).checked_mul(*commission_per_copy_yen)
                            != Some(*commission)
                    })
                {
                    return Err(line_err(
                        *item_line,
                        format!("commission {commission} ≠ {copies} copies × {commission_per_copy_yen} yen (the pair's total, line {number})"),
                    ));
                }
                self.totals_seen.insert(key);
                self.grand.merge(&pair.acc);
            }
            ReportLine::Trailer {
                item_count,
                recon_required_count,
                total_count,
                copies,
                gross_yen,
                commission_yen,
                net_yen,
                recon_required_yen,
                line_count,
            } => {
                self.enter(number, Section::Trailer)?;
                if let Some(((operator, code), _)) = self
                    .pairs
                    .iter()
                    .find(|(key, _)| !self.totals_seen.contains(*key))
                {
                    return Err(line_err(
                        number,
                        format!("no total line for {operator}/{code}"),
                    ));
                }
                let checks: [(&str, i128, i128); 9] = [
                    (
                        "item_count",
                        i128::from(*item_count),
                        i128::from(self.grand.items),
                    ),
                    (
                        "recon_required_count",
                        i128::from(*recon_required_count),
                        i128::from(self.recon_count),
                    ),
                    (
                        "total_count",
                        i128::from(*total_count),
                        i128::try_from(self.totals_seen.len()).unwrap_or(i128::MAX),
                    ),
                    (
                        "copies",
                        i128::from(*copies),
                        i128::try_from(self.grand.copies).unwrap_or(i128::MAX),
                    ),
                    ("gross_yen", i128::from(*gross_yen), self.grand.gross_yen),
                    (
                        "commission_yen",
                        i128::from(*commission_yen),
                        self.grand.commission_yen,
                    ),
                    ("net_yen", i128::from(*net_yen), self.grand.net_yen()),
                    (
                        "recon_required_yen",
                        i128::from(*recon_required_yen),
                        self.recon_yen,
                    ),
                    (
                        "line_count",
                        i128::from(*line_count),
                        i128::try_from(number).unwrap_or(i128::MAX),
                    ),
                ];
                for (name, stated, counted) in checks {
                    if stated != counted {
                        return Err(line_err(
                            number,
                            format!("trailer {name} is {stated}, the lines above give {counted}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&self, line_count: usize) -> Result<(), ReportError> {
        match self.section {
            Some(Section::Trailer) => Ok(()),
            None => Err(ReportError::Incomplete("no lines".into())),
            Some(_) => Err(ReportError::Incomplete(format!(
                "no trailer after line {line_count} (truncated?)"
            ))),
        }
    }
}

/// The exact bytes a report signature covers.
fn report_signed_bytes(bytes: &[u8]) -> Vec<u8> {
    let prefix = format!("konbini-kofu/v1/{REPORT_SIGNATURE_DOMAIN}\0");
    let mut message = Vec::with_capacity(prefix.len() + bytes.len());
    message.extend_from_slice(prefix.as_bytes());
    message.extend_from_slice(bytes);
    message
}

/// Signs a report file's exact bytes (domain `REPORT_SIGNATURE_DOMAIN`).
pub fn sign_report(file_name: &str, bytes: &[u8], key: &KeyPair) -> DetachedSignature {
    DetachedSignature {
        alg: SIGNATURE_ALG.to_owned(),
        kid: key.kid(),
        file: file_name.to_owned(),
        sha256: hex::encode(schemas::sha256(bytes)),
        signature: key.sign(&report_signed_bytes(bytes)),
    }
}

/// Checks a detached signature against the file's bytes and the center's key.
pub fn verify_report(
    bytes: &[u8],
    signature: &DetachedSignature,
    key: &PublicKey,
) -> Result<(), ReportError> {
    if signature.alg != SIGNATURE_ALG {
        return Err(ReportError::Signature(format!(
            "algorithm {:?}, expected {SIGNATURE_ALG:?}",
            signature.alg
        )));
    }
    if signature.kid != key.kid() {
        return Err(ReportError::Signature(format!(
            "signed by key {}, expected the center key {}",
            signature.kid,
            key.kid()
        )));
    }
    let digest = hex::encode(schemas::sha256(bytes));
    if signature.sha256 != digest {
        return Err(ReportError::Signature(format!(
            "file {:?} has SHA-256 {digest}, the signature names {}",
            signature.file, signature.sha256
        )));
    }
    key.verify(&report_signed_bytes(bytes), &signature.signature)
        .map_err(|e| ReportError::Signature(format!("file {:?}: {e}", signature.file)))
}
