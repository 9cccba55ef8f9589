//! The center's books read straight from its database, and the "money is conserved"
//! check over them (DESIGN.md §4): what the replica and fault suites assert after a
//! run, once the sweep has run and the settlement window has closed.

use std::collections::BTreeMap;

use center::settlement::MoneyBalance;
use sqlx::{AnyPool, Row as _};

/// `Err(message)` from the enclosing function unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// One issuance row, as far as money and faults are concerned.
#[derive(Clone, Debug)]
pub struct IssuanceRecord {
    pub state: String,
    pub municipality_code: String,
    pub error_code: Option<String>,
    pub paid_yen: Option<i64>,
    pub total_fee_yen: Option<i64>,
    pub document_sha256: Option<String>,
}

#[derive(Debug)]
pub struct Books {
    /// Request id → issuance.
    pub issuances: BTreeMap<String, IssuanceRecord>,
    /// Request id → amount refunded.
    pub refunds: BTreeMap<String, i64>,
    /// Request id → gross, over every window.
    pub window_items: BTreeMap<String, i64>,
    /// Request id → paid, of issuances listed for reconciliation.
    pub recon_items: BTreeMap<String, i64>,
    pub balance: MoneyBalance,
}

/// States an issuance may still leave (a sweep or an outcome report moves it on).
pub const IN_FLIGHT_STATES: [&str; 3] = ["authorized", "prepared", "paid"];

impl Books {
    pub async fn read(pool: &AnyPool) -> Self {
        let issuances = sqlx::query(
            "SELECT request_id, state, municipality_code, error_code, paid_yen, \
             total_fee_yen, document_sha256 FROM issuances",
        )
        .fetch_all(pool)
        .await
        .expect("issuances")
        .iter()
        .map(|row| {
            (
                row.get::<String, _>("request_id"),
                IssuanceRecord {
                    state: row.get("state"),
                    municipality_code: row.get("municipality_code"),
                    error_code: row.get("error_code"),
                    paid_yen: row.get("paid_yen"),
                    total_fee_yen: row.get("total_fee_yen"),
                    document_sha256: row.get("document_sha256"),
                },
            )
        })
        .collect();
        Self {
            issuances,
            refunds: id_amounts(pool, "SELECT request_id, amount_yen AS yen FROM refunds").await,
            window_items: id_amounts(
                pool,
                "SELECT request_id, gross_yen AS yen FROM settlement_items",
            )
            .await,
            recon_items: id_amounts(
                pool,
                "SELECT request_id, paid_yen AS yen FROM settlement_recon_items",
            )
            .await,
            balance: center::settlement::money_balance(pool)
                .await
                .expect("money balance"),
        }
    }

    /// Issuances per state.
    pub fn states(&self) -> BTreeMap<String, usize> {
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for record in self.issuances.values() {
            *states.entry(record.state.clone()).or_default() += 1;
        }
        states
    }

    /// Every invariant of "money is conserved" over books read after the sweep and a
    /// window close: every request terminal, Σ paid = Σ in windows + Σ refunded + Σ
    /// recon_required, each payment exactly the fee and once, refunds only of paid
    /// voided requests, windows holding exactly the printed ones. The first violation.
    pub fn verify(&self) -> Result<(), String> {
        let b = &self.balance;
        for (id, record) in &self.issuances {
            ensure!(
                !IN_FLIGHT_STATES.contains(&record.state.as_str()),
                "issuance {id} is still {}",
                record.state
            );
        }
        ensure!(
            b.paid_yen == b.in_windows_yen + b.refunded_yen + b.recon_required_yen,
            "money is not conserved: {b:?}"
        );
        ensure!(
            b.printed_outside_windows_yen == 0 && b.paid_unresolved_yen == 0,
            "money outside windows or unresolved after the close: {b:?}"
        );
        let paid_rows: i64 = self.issuances.values().filter_map(|r| r.paid_yen).sum();
        ensure!(
            paid_rows == b.paid_yen,
            "Σ paid over the rows is {paid_rows}, the balance says {}",
            b.paid_yen
        );
        let in_windows: i64 = self.window_items.values().sum();
        ensure!(
            in_windows == b.in_windows_yen,
            "Σ window items is {in_windows}, the balance says {}",
            b.in_windows_yen
        );
        let refunded: i64 = self.refunds.values().sum();
        ensure!(
            refunded == b.refunded_yen,
            "Σ refunds is {refunded}, the balance says {}",
            b.refunded_yen
        );
        for (id, record) in &self.issuances {
            if let Some(paid) = record.paid_yen {
                ensure!(
                    paid > 0 && Some(paid) == record.total_fee_yen,
                    "issuance {id} was charged {paid} yen for a fee of {:?}",
                    record.total_fee_yen
                );
                ensure!(
                    matches!(
                        record.state.as_str(),
                        "printed" | "settled" | "recon_required" | "voided"
                    ),
                    "issuance {id} holds {paid} yen in state {}",
                    record.state
                );
            }
        }
        for (id, amount) in &self.refunds {
            let record = self
                .issuances
                .get(id)
                .ok_or_else(|| format!("refund for unknown request {id}"))?;
            ensure!(
                record.state == "voided" && record.paid_yen == Some(*amount),
                "refund of {amount} yen for {id}: {record:?}"
            );
        }
        for (id, record) in &self.issuances {
            ensure!(
                !(record.state == "voided"
                    && record.paid_yen.is_some()
                    && !self.refunds.contains_key(id)),
                "{id} was paid and voided but never refunded"
            );
            let printed = matches!(record.state.as_str(), "printed" | "settled");
            ensure!(
                self.window_items.contains_key(id) == printed,
                "{id} is {} but the windows {} it",
                record.state,
                if printed { "lack" } else { "hold" }
            );
            if let Some(gross) = self.window_items.get(id) {
                ensure!(
                    Some(*gross) == record.paid_yen,
                    "window item {id} of {gross} yen: {record:?}"
                );
            }
            if record.state == "recon_required" {
                ensure!(
                    self.recon_items.get(id).copied() == record.paid_yen,
                    "recon item {id}: {:?} for {record:?}",
                    self.recon_items.get(id)
                );
            }
        }
        for id in self.window_items.keys() {
            ensure!(
                self.issuances.contains_key(id),
                "window item {id} without an issuance"
            );
        }
        Ok(())
    }

    /// [`Books::verify`], panicking with `label` on a violation.
    pub fn check(&self, label: &str) {
        if let Err(violation) = self.verify() {
            panic!("{label}: {violation}; states {:?}", self.states());
        }
    }

    /// One line for the test log.
    pub fn summary(&self) -> String {
        let b = &self.balance;
        format!(
            "states {:?}; paid {} = in windows {} + refunded {} + recon {} (+ outside {} + \
             unresolved {}) yen",
            self.states(),
            b.paid_yen,
            b.in_windows_yen,
            b.refunded_yen,
            b.recon_required_yen,
            b.printed_outside_windows_yen,
            b.paid_unresolved_yen
        )
    }
}

async fn id_amounts(pool: &AnyPool, sql: &str) -> BTreeMap<String, i64> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| (row.get::<String, _>("request_id"), row.get::<i64, _>("yen")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &str, paid_yen: Option<i64>) -> IssuanceRecord {
        IssuanceRecord {
            state: state.to_owned(),
            municipality_code: "112330".to_owned(),
            error_code: None,
            paid_yen,
            total_fee_yen: Some(300),
            document_sha256: None,
        }
    }

    fn consistent() -> Books {
        Books {
            issuances: BTreeMap::from([
                ("a".to_owned(), record("printed", Some(300))),
                ("b".to_owned(), record("voided", Some(300))),
                ("c".to_owned(), record("recon_required", Some(300))),
                ("d".to_owned(), record("expired", None)),
            ]),
            refunds: BTreeMap::from([("b".to_owned(), 300)]),
            window_items: BTreeMap::from([("a".to_owned(), 300)]),
            recon_items: BTreeMap::from([("c".to_owned(), 300)]),
            balance: MoneyBalance {
                paid_yen: 900,
                in_windows_yen: 300,
                refunded_yen: 300,
                recon_required_yen: 300,
                ..MoneyBalance::default()
            },
        }
    }

    /// A named way to break consistent books.
    type Break = (&'static str, fn(&mut Books));

    #[test]
    fn consistent_books_pass_and_each_break_is_caught() {
        consistent().verify().expect("consistent books pass");
        let breaks: [Break; 5] = [
            ("is still paid", |b| {
                b.issuances.get_mut("d").expect("d").state = "paid".into();
            }),
            ("not conserved", |b| b.balance.paid_yen += 1),
            ("never refunded", |b| {
                b.refunds.clear();
                b.balance.refunded_yen = 0;
                b.balance.recon_required_yen += 300;
            }),
            ("the windows lack it", |b| {
                b.window_items.clear();
                b.balance.in_windows_yen = 0;
                b.balance.recon_required_yen += 300;
            }),
            ("in state expired", |b| {
                b.issuances.get_mut("c").expect("c").state = "expired".into();
                b.recon_items.clear();
            }),
        ];
        for (expected, break_it) in breaks {
            let mut books = consistent();
            break_it(&mut books);
            let violation = books.verify().expect_err(expected);
            assert!(violation.contains(expected), "{violation} ≠ {expected}");
        }
    }
}
