//! Settlement files exchanged with chain operators and municipalities (DESIGN.md §6).
//!
//! One settlement window per business day in Asia/Tokyo, named by its date
//! (`YYYY-MM-DD`); the window of date D ends at D's cut time (after the 23:00 close)
//! and starts where the window of D−1 ended. Money is integer yen everywhere.
//!
//! **Report** (center → each operator and each municipality), a pair of files plus a
//! detached signature for each:
//! - `settlement-<date>-operator-<operator_id>.jsonl` / `.csv`, and
//!   `settlement-<date>-municipality-<code>.jsonl` / `.csv`;
//! - the JSON Lines file is one [`ReportLine`] per line: exactly one `header` first,
//!   then every `item` (one per printed issuance, sorted by request id), then every
//!   `recon_required` line, then one `total` per (operator, municipality) pair sorted
//!   by operator then municipality, then exactly one `trailer` whose counts and sums
//!   repeat the lines above it (a reader checks them; a truncated file fails);
//! - the CSV file has the header row [`CSV_COLUMNS`] and one row per (operator,
//!   municipality) pair, the same figures as the `total` lines;
//! - `<file>.sig` is a [`DetachedSignature`] (JSON) over the exact bytes of `<file>`,
//!   signed with the center's key under the domain [`REPORT_SIGNATURE_DOMAIN`].
//!
//! **Operator transaction file** (operator → center): CSV, UTF-8, `\n` or `\r\n` line
//! ends, the header row [`OPERATOR_FILE_COLUMNS`] then one row per certificate the
//! operator sold in the window ([`OperatorTransaction`]). At most
//! [`MAX_OPERATOR_FILE_ROWS`] rows; every bad row is reported as `line N: reason` and
//! nothing is reconciled while any row is bad; a request id listed twice is an error.
//!
//! **Match report** (center → operator): one [`MatchLine`] per request id present on
//! either side, sorted by request id, then one [`MatchSummary`]; a window is finalised
//! only when every operator's latest summary has nothing but `matched` lines.

use crate::certificate::CertificateType;
use crate::crypto::Kid;
use crate::ids::{KioskId, MunicipalityCode, OperatorId, RequestId};
use crate::SignatureBytes;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `format` of a report header.
pub const REPORT_FORMAT: &str = "konbini-kofu/settlement-report/1";
/// Domain prefix of a report signature: the signed bytes are
/// `"konbini-kofu/v1/settlement-report\0"` followed by the file's bytes.
pub const REPORT_SIGNATURE_DOMAIN: &str = "settlement-report";
/// Header row of the report CSV.
pub const CSV_COLUMNS: [&str; 11] = [
    "business_date",
    "operator_id",
    "municipality_code",
    "items",
    "copies",
    "gross",
    "commission",
    "net",
    "adjustment_items",
    "adjustment_gross",
    "commission_per_copy",
];
/// Header row of the operator's transaction file.
pub const OPERATOR_FILE_COLUMNS: [&str; 5] = [
    "request_id",
    "kiosk_id",
    "municipality_code",
    "copies",
    "amount_yen",
];
/// Upper bound on rows of one operator transaction file (a window of the busiest
/// operator is far below it: the whole country prints ~90,000 certificates a day).
pub const MAX_OPERATOR_FILE_ROWS: usize = 1_000_000;
/// Default commission per copy (事業者手数料), integer yen.
pub const DEFAULT_COMMISSION_YEN_PER_COPY: i64 = 115;

/// Lifecycle of a settlement window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    Open,
    Closed,
    Reconciling,
    Settled,
}

impl WindowState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Reconciling => "reconciling",
            Self::Settled => "settled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Open, Self::Closed, Self::Reconciling, Self::Settled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Whom a report is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ReportParty {
    Operator(OperatorId),
    Municipality(MunicipalityCode),
}

/// One line of a report's JSON Lines file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReportLine {
    Header {
        format: String,
        /// The window's business date, `YYYY-MM-DD` (Asia/Tokyo).
        business_date: String,
        party: ReportParty,
        /// The window's state when the report was made (`closed` or later).
        window_state: WindowState,
        /// Items printed in `[starts_at, ends_at)` belong to the window.
        starts_at_unix_ms: i64,
        ends_at_unix_ms: i64,
        generated_at_unix_ms: i64,
        /// The center key that signs the detached signature.
        center_kid: Kid,
    },
    /// One printed issuance.
    Item {
        request_id: RequestId,
        operator_id: OperatorId,
        kiosk_id: KioskId,
        municipality_code: MunicipalityCode,
        certificate_type: CertificateType,
        copies: u32,
        /// Fees the resident paid, integer yen.
        gross_yen: i64,
        /// `copies × commission_per_copy` of the operator's agreement.
        commission_yen: i64,
        /// `gross_yen − commission_yen`: what the operator remits to the municipality.
        net_yen: i64,
        printed_at_unix_ms: i64,
        /// The issuance was made before this window started (it was printed or
        /// resolved after its own window closed) and is settled here as an adjustment.
        adjustment: bool,
    },
    /// Paid, print outcome unknown at the cut-off: not settled, not refunded; listed
    /// so both sides can chase it. Resolved later, it appears in a later window.
    ReconRequired {
        request_id: RequestId,
        operator_id: OperatorId,
        kiosk_id: KioskId,
        municipality_code: MunicipalityCode,
        paid_yen: i64,
    },
    /// Sums over the `item` lines of one (operator, municipality) pair.
    Total {
        operator_id: OperatorId,
        municipality_code: MunicipalityCode,
        items: u64,
        copies: u64,
        gross_yen: i64,
        commission_yen: i64,
        net_yen: i64,
        adjustment_items: u64,
        adjustment_gross_yen: i64,
        commission_per_copy_yen: i64,
    },
    Trailer {
        item_count: u64,
        recon_required_count: u64,
        total_count: u64,
        copies: u64,
        gross_yen: i64,
        commission_yen: i64,
        net_yen: i64,
        recon_required_yen: i64,
        /// Lines in the file including the header and this trailer.
        line_count: u64,
    },
}

/// `<report>.sig`: a detached Ed25519 signature over a report file's exact bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetachedSignature {
    /// Always `Ed25519`.
    pub alg: String,
    pub kid: Kid,
    /// The signed file's name (informative; the signature covers only the bytes).
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
    pub signature: SignatureBytes,
}

/// One row of an operator's transaction file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorTransaction {
    pub request_id: RequestId,
    pub kiosk_id: KioskId,
    pub municipality_code: MunicipalityCode,
    pub copies: u32,
    /// Integer yen the operator collected.
    pub amount_yen: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Both sides list it with the same kiosk, municipality, copies and amount.
    Matched,
    /// The operator lists it; the center's window does not.
    MissingAtCenter,
    /// The center's window lists it; the operator does not.
    MissingAtOperator,
    /// Both list it, but copies, amount, kiosk or municipality differ.
    AmountMismatch,
}

/// What one side says about one request id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSide {
    pub kiosk_id: KioskId,
    pub municipality_code: MunicipalityCode,
    pub copies: u32,
    pub amount_yen: i64,
}

/// One line of the match report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchLine {
    pub request_id: RequestId,
    pub status: MatchStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub center: Option<MatchSide>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<MatchSide>,
}

/// The last line of the match report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSummary {
    pub business_date: String,
    pub operator_id: OperatorId,
    /// SHA-256 of the submitted file's bytes, lower-case hex.
    pub operator_file_sha256: String,
    pub matched: u64,
    pub missing_at_center: u64,
    pub missing_at_operator: u64,
    pub amount_mismatch: u64,
    /// Σ amount over `matched` lines, integer yen.
    pub matched_yen: i64,
}

impl MatchSummary {
    /// Nothing unmatched: the operator's side agrees with the center's line by line.
    pub fn is_clean(&self) -> bool {
        self.missing_at_center == 0 && self.missing_at_operator == 0 && self.amount_mismatch == 0
    }
}
