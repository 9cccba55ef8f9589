//! The arithmetic: per (operator, municipality) copies, gross, commission and net.
//!
//! 手数料 (commission) is `copies × commission_per_copy_yen` of the operator's agreement;
//! 納付額 (net, what the operator remits to the municipality) is `gross − commission`.
//! Net may be **negative**: a certificate the municipality issues free of charge
//! (gross 0) still earns the operator its per-copy commission, which the municipality
//! then owes the operator. So every money figure is a signed `i64`.
//!
//! Overflow. Within the documented bounds — copies ≤ `u32::MAX` per item, gross ≤
//! [`MAX_ITEM_GROSS_YEN`] per item, commission ≤ [`MAX_COMMISSION_YEN_PER_COPY`] per
//! copy — one item's commission is at most 2³² × 10⁷ ≈ 4.3 × 10¹⁶ yen, far below
//! `i64::MAX` ≈ 9.2 × 10¹⁸. Sums are accumulated in `i128` (2⁶⁴ items × 2⁶³ yen still
//! fits), so only the final conversion to `i64` could fail: with the operator file's
//! 100 copies per item it would take ~10⁹ items in one pair. [`pair_totals`] saturates
//! there instead of wrapping (and debug builds assert); [`try_pair_totals`] reports it.

use std::collections::BTreeMap;

use schemas::{CertificateType, KioskId, MunicipalityCode, OperatorId, RequestId};

/// Upper bound on one item's fees that the overflow argument relies on (the operator
/// file enforces it too): ten million yen.
pub const MAX_ITEM_GROSS_YEN: i64 = 10_000_000;
/// Upper bound on an operator's per-copy commission that the overflow argument relies
/// on (the real figure is 115 yen). Callers should reject agreements above it.
pub const MAX_COMMISSION_YEN_PER_COPY: i64 = 10_000_000;

/// A sum does not fit in `i64`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("settlement sum {what} for {operator_id}/{municipality_code} does not fit in i64")]
pub struct TotalsOverflow {
    pub operator_id: OperatorId,
    pub municipality_code: MunicipalityCode,
    pub what: &'static str,
}

/// One printed issuance in a window, with the commission fixed when the window closed
/// (a later change of the operator's agreement never alters a closed window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub request_id: RequestId,
    pub operator_id: OperatorId,
    pub kiosk_id: KioskId,
    pub municipality_code: MunicipalityCode,
    pub certificate_type: CertificateType,
    pub copies: u32,
    pub gross_yen: i64,
    /// The operator's agreement when the window closed, integer yen per copy.
    pub commission_per_copy_yen: i64,
    pub printed_at_unix_ms: i64,
    /// Made before the window started (late): settled here as an adjustment.
    pub adjustment: bool,
}

impl Item {
    /// `copies × commission_per_copy_yen`.
    ///
    /// Cannot overflow within the module's bounds (≤ 4.3 × 10¹⁶); outside them it
    /// saturates rather than wrapping.
    pub fn commission_yen(&self) -> i64 {
        i64::from(self.copies).saturating_mul(self.commission_per_copy_yen)
    }
    /// `gross_yen − commission_yen()`; negative for a free certificate (see the
    /// module doc).
    pub fn net_yen(&self) -> i64 {
        self.gross_yen.saturating_sub(self.commission_yen())
    }
}

/// Paid, print outcome unknown at the cut-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconItem {
    pub request_id: RequestId,
    pub operator_id: OperatorId,
    pub kiosk_id: KioskId,
    pub municipality_code: MunicipalityCode,
    pub paid_yen: i64,
}

/// Sums for one (operator, municipality) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTotal {
    pub operator_id: OperatorId,
    pub municipality_code: MunicipalityCode,
    pub items: u64,
    pub copies: u64,
    pub gross_yen: i64,
    pub commission_yen: i64,
    pub net_yen: i64,
    pub adjustment_items: u64,
    pub adjustment_gross_yen: i64,
    /// The per-copy commission of the pair's items (one agreement per operator and
    /// window).
    pub commission_per_copy_yen: i64,
}

/// One total per pair present in `items`, sorted by operator then municipality.
///
/// Saturates a sum that does not fit in `i64` (unreachable within the module's
/// bounds; debug builds assert). Use [`try_pair_totals`] to get an error instead.
pub fn pair_totals(items: &[Item]) -> Vec<PairTotal> {
    group(items)
        .into_iter()
        .map(|((operator_id, municipality_code), (acc, per_copy))| {
            debug_assert!(acc.fits(), "settlement sums overflow i64");
            acc.total_saturating(operator_id, municipality_code, per_copy)
        })
        .collect()
}

/// [`pair_totals`], failing instead of saturating when a sum does not fit in `i64`.
pub fn try_pair_totals(items: &[Item]) -> Result<Vec<PairTotal>, TotalsOverflow> {
    group(items)
        .into_iter()
        .map(|((operator_id, municipality_code), (acc, per_copy))| {
            acc.total_checked(operator_id, municipality_code, per_copy)
        })
        .collect()
}

type PairKey = (OperatorId, MunicipalityCode);

/// Items grouped by pair (sorted: `OperatorId` orders as its string, a
/// `MunicipalityCode` as its six digits), with the per-copy commission of the pair's
/// first item — one agreement per operator and window, so all items share it.
fn group(items: &[Item]) -> BTreeMap<PairKey, (Accumulator, i64)> {
    let mut pairs: BTreeMap<PairKey, (Accumulator, i64)> = BTreeMap::new();
    for item in items {
        debug_assert!(item.gross_yen >= 0, "negative gross on {}", item.request_id);
        debug_assert!(
            item.commission_yen() >= 0,
            "negative commission on {}",
            item.request_id
        );
        let (acc, _) = pairs
            .entry((item.operator_id.clone(), item.municipality_code))
            .or_insert_with(|| (Accumulator::default(), item.commission_per_copy_yen));
        acc.add(
            item.copies,
            item.gross_yen,
            item.commission_yen(),
            item.adjustment,
        );
    }
    pairs
}

/// Sums of one pair in wide integers: `i128` holds any sum of `u64::MAX` values of
/// `i64` magnitude, so adding never overflows; only the conversion back can fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accumulator {
    pub(crate) items: u64,
    pub(crate) copies: u128,
    pub(crate) gross_yen: i128,
    pub(crate) commission_yen: i128,
    pub(crate) adjustment_items: u64,
    pub(crate) adjustment_gross_yen: i128,
}

impl Accumulator {
    pub(crate) fn add(
        &mut self,
        copies: u32,
        gross_yen: i64,
        commission_yen: i64,
        adjustment: bool,
    ) {
        // A count cannot reach u64::MAX: each item is a value in memory or a line read.
        self.items = self.items.saturating_add(1);
        self.copies += u128::from(copies);
        self.gross_yen += i128::from(gross_yen);
        self.commission_yen += i128::from(commission_yen);
        if adjustment {
            self.adjustment_items = self.adjustment_items.saturating_add(1);
            self.adjustment_gross_yen += i128::from(gross_yen);
        }
    }

    /// Adds another accumulator's sums (the trailer's grand totals over pairs).
    pub(crate) fn merge(&mut self, other: &Self) {
        self.items = self.items.saturating_add(other.items);
        self.copies = self.copies.saturating_add(other.copies);
        self.gross_yen = self.gross_yen.saturating_add(other.gross_yen);
        self.commission_yen = self.commission_yen.saturating_add(other.commission_yen);
        self.adjustment_items = self.adjustment_items.saturating_add(other.adjustment_items);
        self.adjustment_gross_yen = self
            .adjustment_gross_yen
            .saturating_add(other.adjustment_gross_yen);
    }

    /// Net is derived from the sums, so Σnet = Σgross − Σcommission exactly.
    pub(crate) fn net_yen(&self) -> i128 {
        self.gross_yen - self.commission_yen
    }

    fn fits(&self) -> bool {
        u64::try_from(self.copies).is_ok()
            && [
                self.gross_yen,
                self.commission_yen,
                self.net_yen(),
                self.adjustment_gross_yen,
            ]
            .iter()
            .all(|v| i64::try_from(*v).is_ok())
    }

    fn total_saturating(
        &self,
        operator_id: OperatorId,
        municipality_code: MunicipalityCode,
        commission_per_copy_yen: i64,
    ) -> PairTotal {
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        PairTotal {
            operator_id,
            municipality_code,
            items: self.items,
            copies: u64::try_from(self.copies).unwrap_or(u64::MAX),
            gross_yen: clamp(self.gross_yen),
            commission_yen: clamp(self.commission_yen),
            net_yen: clamp(self.net_yen()),
            adjustment_items: self.adjustment_items,
            adjustment_gross_yen: clamp(self.adjustment_gross_yen),
            commission_per_copy_yen,
        }
    }

    pub(crate) fn total_checked(
        &self,
        operator_id: OperatorId,
        municipality_code: MunicipalityCode,
        commission_per_copy_yen: i64,
    ) -> Result<PairTotal, TotalsOverflow> {
        let overflow = |what| TotalsOverflow {
            operator_id: operator_id.clone(),
            municipality_code,
            what,
        };
        let yen = |v: i128, what| i64::try_from(v).map_err(|_| overflow(what));
        Ok(PairTotal {
            items: self.items,
            copies: u64::try_from(self.copies).map_err(|_| overflow("copies"))?,
            gross_yen: yen(self.gross_yen, "gross")?,
            commission_yen: yen(self.commission_yen, "commission")?,
            net_yen: yen(self.net_yen(), "net")?,
            adjustment_items: self.adjustment_items,
            adjustment_gross_yen: yen(self.adjustment_gross_yen, "adjustment gross")?,
            commission_per_copy_yen,
            operator_id,
            municipality_code,
        })
    }
}

/// The totals as a plain-text table (ASCII columns, integer yen), with a total row.
pub fn totals_table(totals: &[PairTotal]) -> String {
    let row = |operator: &str, municipality: &str, t: (u64, u64, i64, i64, i64)| {
        format!(
            "{operator:<10} {municipality:<8} {:>6} {:>6} {:>10} {:>11} {:>10}\n",
            t.0, t.1, t.2, t.3, t.4
        )
    };
    let mut out = format!(
        "{:<10} {:<8} {:>6} {:>6} {:>10} {:>11} {:>10}\n",
        "operator", "muni", "items", "copies", "gross", "commission", "net"
    );
    let mut sum = (0u64, 0u64, 0i64, 0i64, 0i64);
    for t in totals {
        let figures = (t.items, t.copies, t.gross_yen, t.commission_yen, t.net_yen);
        out.push_str(&row(
            t.operator_id.as_str(),
            &t.municipality_code.to_string(),
            figures,
        ));
        sum = (
            sum.0.saturating_add(t.items),
            sum.1.saturating_add(t.copies),
            sum.2.saturating_add(t.gross_yen),
            sum.3.saturating_add(t.commission_yen),
            sum.4.saturating_add(t.net_yen),
        );
    }
    out.push_str(&row("total", "", sum));
    out
}
