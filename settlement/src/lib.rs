//! Settlement (精算) between chain operators and municipalities, DESIGN.md §6: the
//! business-day windows in Asia/Tokyo, the arithmetic per (operator, municipality),
//! the signed report files and the line-by-line reconciliation of an operator's
//! transaction file. Pure functions over values: the center keeps the windows and
//! items in its database and calls in here; kiosk-sim uses the operator-file writer.
//!
//! Money is integer yen (`i64`) everywhere; nothing here touches floating point.
//! The file formats are specified in `schemas::settlement`.

pub mod operator_file;
pub mod reconcile;
pub mod report;
pub mod totals;
pub mod window;

pub use operator_file::{parse_operator_file, write_operator_file, OperatorFileError};
pub use reconcile::{reconcile, MatchReport};
pub use report::{
    parse_report_jsonl, render_csv, render_jsonl, report_file_stem, sign_report, verify_report,
    Report, ReportError, WindowInfo,
};
pub use totals::{
    pair_totals, totals_table, try_pair_totals, Item, PairTotal, ReconItem, TotalsOverflow,
    MAX_COMMISSION_YEN_PER_COPY, MAX_ITEM_GROSS_YEN,
};
pub use window::{BusinessDate, CutTime, WindowError};
