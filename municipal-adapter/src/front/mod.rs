//! The front side (おもて面) of every certificate type, built from the register, and
//! the rules that decide whether a card holder may be issued one at a kiosk at all.
//!
//! - [`rules`] — the refusal rules in their one order of precedence, and the decision
//!   (refusal, or the front with its seal subject) for both routes;
//! - [`resident`] — 住民票の写し and 住民票記載事項証明書;
//! - [`seal_registration`] — 印鑑登録証明書;
//! - [`tax`] — 所得・課税証明書 and 納税証明書;
//! - [`family`] — 戸籍全部事項証明書, 戸籍個人事項証明書 and 戸籍の附票の写し.
//!
//! 住民票コード and 個人番号 are never part of a front: the register this adapter keeps
//! does not even hold them. Every date is printed in 和暦.

pub mod family;
pub mod resident;
pub mod rules;
pub mod seal_registration;
pub mod tax;

pub use rules::{decide_domicile, decide_residence, Decision, ResidenceCase, SealSubject};

use jiff::civil::Date;
use schemas::Attestation;

use crate::wareki::{format_wareki, WarekiError};

/// Residents younger than this cannot use the kiosk service.
pub const MINIMUM_AGE_YEARS: i16 = 15;

/// The issuing municipality as printed on the front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontIssuer {
    pub municipality_name: String,
    /// 都道府県名, for the 道府県民税 label.
    pub prefecture: String,
    pub mayor_title: String,
    pub mayor_name: String,
}

impl FrontIssuer {
    /// The closing block with `certification` (認証文), issued on `issue_date`.
    pub fn attestation(
        &self,
        certification: &str,
        issue_date: Date,
    ) -> Result<Attestation, FrontError> {
        Ok(Attestation {
            municipality_name: self.municipality_name.clone(),
            certification: certification.to_owned(),
            issue_date_wareki: wareki("(issue date)", issue_date)?,
            mayor_title: self.mayor_title.clone(),
            mayor_name: self.mayor_name.clone(),
        })
    }
}

/// A front that cannot be built from a register that passed import: an internal error,
/// never a refusal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrontError {
    #[error("{0}: {1}")]
    Wareki(String, WarekiError),
    #[error("household {0} has no current member to print")]
    EmptyHousehold(String),
    #[error("the card holder is missing from the household rows")]
    HolderMissing,
    #[error("戸籍 {0} is linked from the register but not stored")]
    FamilyRegisterMissing(String),
    #[error("person {person_id} is not in 戸籍 {family_register_id}")]
    PersonMissing {
        family_register_id: String,
        person_id: String,
    },
    #[error("the tax switch-over day {0:?} is not MM-DD")]
    TaxSwitchover(String),
    #[error("the front does not validate: {0}")]
    Invalid(String),
}

/// `day` in 和暦, naming `what` in the error.
pub fn wareki(what: &str, day: Date) -> Result<String, FrontError> {
    format_wareki(day).map_err(|e| FrontError::Wareki(what.to_owned(), e))
}

/// The day `birth` reaches `years` of age under 年齢計算ニ関スル法律: the age goes up at
/// the end of the day before the birthday, so from the birthday itself; someone born on
/// 29 February is that age from 1 March in a common year.
pub fn reaches_age_on(birth: Date, years: i16) -> Date {
    let year = birth.year().saturating_add(years);
    Date::new(year, birth.month(), birth.day())
        .or_else(|_| Date::new(year, 3, 1))
        .unwrap_or(Date::MAX)
}

#[cfg(test)]
pub(crate) mod testdata;

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn age_follows_the_law() {
        assert_eq!(reaches_age_on(date(2000, 4, 12), 15), date(2015, 4, 12));
        assert_eq!(reaches_age_on(date(2008, 2, 29), 15), date(2023, 3, 1));
        assert_eq!(reaches_age_on(date(2008, 2, 29), 16), date(2024, 2, 29));
    }
}
