//! 所得・課税証明書 and 納税証明書, integer yen throughout.

use jiff::civil::Date;
use schemas::{AmountLine, IncomeTaxFront, TaxPaymentFront, TaxPaymentLine};

use super::{wareki, FrontError, FrontIssuer};
use crate::register::{Household, Resident, TaxPayment, TaxRecord};
use crate::wareki::{format_fiscal_year, format_income_year};

pub const TITLE_INCOME_TAX: &str = "所得・課税証明書";
pub const TITLE_TAX_PAYMENT: &str = "納税証明書";
pub const CERTIFICATION_INCOME_TAX: &str = "上記のとおり相違ないことを証明します。";
pub const CERTIFICATION_TAX_PAYMENT: &str = "上記のとおり納税状況を証明します。";

fn fiscal_year_wareki(year: u16) -> Result<String, FrontError> {
    let year = i16::try_from(year)
        .map_err(|_| FrontError::Invalid(format!("fiscal year {year} out of range")))?;
    format_fiscal_year(year).map_err(|e| FrontError::Wareki("fiscal year".into(), e))
}

/// 市民税 / 町民税 / 村民税 / 区民税 after the municipality's last character.
fn municipal_tax_label(municipality_name: &str) -> String {
    match municipality_name.chars().last() {
        Some(kind @ ('市' | '町' | '村' | '区')) => format!("{kind}民税"),
        _ => "市町村民税".to_owned(),
    }
}

/// 県民税 / 都民税 / 府民税 / 道民税 after the prefecture's last character.
fn prefectural_tax_label(prefecture: &str) -> String {
    match prefecture.chars().last() {
        Some(kind @ ('都' | '道' | '府' | '県')) => format!("{kind}民税"),
        _ => "道府県民税".to_owned(),
    }
}

/// 所得・課税証明書 for `record` (one fiscal year of `holder`).
pub fn build_income_tax(
    issuer: &FrontIssuer,
    holder: &Resident,
    record: &TaxRecord,
    issue_date: Date,
) -> Result<IncomeTaxFront, FrontError> {
    let income_year = i16::try_from(record.fiscal_year)
        .ok()
        .and_then(|y| y.checked_sub(1))
        .ok_or_else(|| FrontError::Invalid("fiscal year out of range".into()))?;
    let line = |label: &str, amount_yen: i64| AmountLine {
        label: label.to_owned(),
        amount_yen,
    };
    Ok(IncomeTaxFront {
        title: TITLE_INCOME_TAX.to_owned(),
        fiscal_year_wareki: fiscal_year_wareki(record.fiscal_year)?,
        income_year_wareki: format_income_year(income_year)
            .map_err(|e| FrontError::Wareki("income year".into(), e))?,
        name: holder.name.clone(),
        birth_date_wareki: wareki(&holder.resident_id, holder.birth_date)?,
        address: record.address_on_jan1.clone(),
        income_lines: vec![
            line("給与収入", record.salary_income_yen),
            line("総所得金額", record.total_income_yen),
            line("所得控除合計", record.deductions_yen),
            line("課税標準額", record.taxable_income_yen),
        ],
        tax_lines: vec![
            line(
                &municipal_tax_label(&issuer.municipality_name),
                record.municipal_tax_yen,
            ),
            line(
                &prefectural_tax_label(&issuer.prefecture),
                record.prefectural_tax_yen,
            ),
            line(
                "合計",
                record
                    .municipal_tax_yen
                    .saturating_add(record.prefectural_tax_yen),
            ),
        ],
        attestation: issuer.attestation(CERTIFICATION_INCOME_TAX, issue_date)?,
    })
}

/// 納税証明書 for `payments` (one fiscal year of `holder`, at least one item).
pub fn build_tax_payment(
    issuer: &FrontIssuer,
    household: &Household,
    holder: &Resident,
    fiscal_year: u16,
    payments: &[&TaxPayment],
    issue_date: Date,
) -> Result<TaxPaymentFront, FrontError> {
    Ok(TaxPaymentFront {
        title: TITLE_TAX_PAYMENT.to_owned(),
        fiscal_year_wareki: fiscal_year_wareki(fiscal_year)?,
        name: holder.name.clone(),
        address: household.address.clone(),
        lines: payments
            .iter()
            .map(|p| TaxPaymentLine {
                tax_name: p.tax_name.clone(),
                assessed_yen: p.assessed_yen,
                // The import keeps paid ≤ assessed; saturating keeps the line consistent
                // (validate() checks paid + unpaid == assessed) even if it did not.
                paid_yen: p.paid_yen.min(p.assessed_yen),
                unpaid_yen: p.assessed_yen.saturating_sub(p.paid_yen),
            })
            .collect(),
        attestation: issuer.attestation(CERTIFICATION_TAX_PAYMENT, issue_date)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_municipality_kind() {
        assert_eq!(municipal_tax_label("美濃加茂市"), "市民税");
        assert_eq!(municipal_tax_label("坂祝町"), "町民税");
        assert_eq!(prefectural_tax_label("岐阜県"), "県民税");
        assert_eq!(prefectural_tax_label("東京都"), "都民税");
    }
}
