//! Line-by-line matching (突合) of an operator's transaction file against the center's
//! items.

use std::collections::BTreeMap;

use schemas::settlement::{MatchLine, MatchSide, MatchStatus, MatchSummary, OperatorTransaction};
use schemas::{OperatorId, RequestId};

use crate::totals::Item;
use crate::window::BusinessDate;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchReport {
    /// One line per request id on either side, sorted by request id.
    pub lines: Vec<MatchLine>,
    pub summary: MatchSummary,
}

impl MatchReport {
    /// JSON Lines: every `MatchLine`, then the `MatchSummary`.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::with_capacity(256 * (self.lines.len() + 1));
        // Plain structs of strings and integers: serialising cannot fail.
        for line in &self.lines {
            out.push_str(&serde_json::to_string(line).expect("MatchLine serialises to JSON"));
            out.push('\n');
        }
        out.push_str(
            &serde_json::to_string(&self.summary).expect("MatchSummary serialises to JSON"),
        );
        out.push('\n');
        out
    }
}

/// Matches `operator_rows` against the center's `center_items` of `operator` (items of
/// other operators are ignored).
///
/// The center's side of an item is its kiosk, municipality, copies and `gross_yen`
/// (what the resident paid, which is what the operator collected). Request ids are
/// unique on each side (the center's primary key; [`crate::parse_operator_file`]
/// rejects a repeated id); should a caller pass a repeat anyway, the first occurrence
/// is the one matched.
pub fn reconcile(
    business_date: BusinessDate,
    operator: &OperatorId,
    center_items: &[Item],
    operator_rows: &[OperatorTransaction],
    operator_file_sha256: &str,
) -> MatchReport {
    let mut sides: BTreeMap<RequestId, (Option<MatchSide>, Option<MatchSide>)> = BTreeMap::new();
    for item in center_items.iter().filter(|i| &i.operator_id == operator) {
        let entry = sides.entry(item.request_id).or_default();
        entry.0.get_or_insert_with(|| MatchSide {
            kiosk_id: item.kiosk_id.clone(),
            municipality_code: item.municipality_code,
            copies: item.copies,
            amount_yen: item.gross_yen,
        });
    }
    for row in operator_rows {
        let entry = sides.entry(row.request_id).or_default();
        entry.1.get_or_insert_with(|| MatchSide {
            kiosk_id: row.kiosk_id.clone(),
            municipality_code: row.municipality_code,
            copies: row.copies,
            amount_yen: row.amount_yen,
        });
    }

    let mut summary = MatchSummary {
        business_date: business_date.to_string(),
        operator_id: operator.clone(),
        operator_file_sha256: operator_file_sha256.to_owned(),
        matched: 0,
        missing_at_center: 0,
        missing_at_operator: 0,
        amount_mismatch: 0,
        matched_yen: 0,
    };
    let lines = sides
        .into_iter()
        .filter_map(|(request_id, (center, operator))| {
            let status = match (&center, &operator) {
                (Some(c), Some(o)) if c == o => {
                    summary.matched += 1;
                    // Amounts are ≤ 10⁷ yen per row and rows ≤ 10⁶ per file, so the
                    // sum stays below 10¹³; saturating only guards misuse.
                    summary.matched_yen = summary.matched_yen.saturating_add(c.amount_yen);
                    MatchStatus::Matched
                }
                (Some(_), Some(_)) => {
                    summary.amount_mismatch += 1;
                    MatchStatus::AmountMismatch
                }
                (Some(_), None) => {
                    summary.missing_at_operator += 1;
                    MatchStatus::MissingAtOperator
                }
                (None, Some(_)) => {
                    summary.missing_at_center += 1;
                    MatchStatus::MissingAtCenter
                }
                // Every entry was created with one side filled.
                (None, None) => return None,
            };
            Some(MatchLine {
                request_id,
                status,
                center,
                operator,
            })
        })
        .collect();
    MatchReport { lines, summary }
}
