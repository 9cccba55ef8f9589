//! 和暦: the Japanese era calendar in which certificates print every date.
//!
//! Era boundaries (first day, Gregorian): 明治 1868-01-25, 大正 1912-07-30,
//! 昭和 1926-12-25, 平成 1989-01-08, 令和 2019-05-01. The first year of an era is
//! printed 元年, e.g. 令和元年5月1日.
//!
//! Japan used a lunisolar calendar until 明治5年12月2日; the next day was
//! 明治6年1月1日 = 1873-01-01. A Gregorian date before that has no 和暦 date that a
//! register would hold, so conversion refuses it instead of printing a wrong one.

use jiff::civil::{date, Date};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WarekiError {
    #[error("{0} is before 1873-01-01 (明治6年1月1日, adoption of the Gregorian calendar)")]
    BeforeGregorianAdoption(Date),
}

/// One era: its name and its first day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Era {
    pub name: &'static str,
    pub first_day: Date,
}

/// Newest first, so the first era whose first day is not after a date is its era.
pub const ERAS: [Era; 5] = [
    Era {
        name: "令和",
        first_day: date(2019, 5, 1),
    },
    Era {
        name: "平成",
        first_day: date(1989, 1, 8),
    },
    Era {
        name: "昭和",
        first_day: date(1926, 12, 25),
    },
    Era {
        name: "大正",
        first_day: date(1912, 7, 30),
    },
    Era {
        name: "明治",
        first_day: date(1868, 1, 25),
    },
];

/// The first date this module converts (明治6年1月1日).
pub const GREGORIAN_ADOPTION: Date = date(1873, 1, 1);

/// A date in 和暦.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarekiDate {
    pub era: &'static str,
    /// Year within the era, 1 for 元年.
    pub year: i16,
    pub month: i8,
    pub day: i8,
}

impl std::fmt::Display for WarekiDate {
    /// 令和8年11月23日 / 令和元年5月1日 (ASCII digits, as the layout prints them).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.year == 1 {
            write!(f, "{}元年{}月{}日", self.era, self.month, self.day)
        } else {
            write!(
                f,
                "{}{}年{}月{}日",
                self.era, self.year, self.month, self.day
            )
        }
    }
}

/// Converts a Gregorian date to 和暦.
pub fn to_wareki(day: Date) -> Result<WarekiDate, WarekiError> {
    if day < GREGORIAN_ADOPTION {
        return Err(WarekiError::BeforeGregorianAdoption(day));
    }
    let era = ERAS
        .iter()
        .find(|era| era.first_day <= day)
        // Unreachable after the adoption check (明治 starts before it); kept as an
        // error rather than a panic.
        .ok_or(WarekiError::BeforeGregorianAdoption(day))?;
    Ok(WarekiDate {
        era: era.name,
        year: day.year() - era.first_day.year() + 1,
        month: day.month(),
        day: day.day(),
    })
}

/// Converts and formats in one step: `1978-04-12` → 「昭和53年4月12日」.
pub fn format_wareki(day: Date) -> Result<String, WarekiError> {
    to_wareki(day).map(|w| w.to_string())
}

/// The era year of `day` alone: 「令和8年」, 「令和元年」.
pub fn format_era_year(day: Date) -> Result<String, WarekiError> {
    let w = to_wareki(day)?;
    Ok(if w.year == 1 {
        format!("{}元年", w.era)
    } else {
        format!("{}{}年", w.era, w.year)
    })
}

/// 年度 (fiscal year starting in April of `year`): 「令和8年度」. Named by the era in
/// force on its first day, 1 April.
pub fn format_fiscal_year(year: i16) -> Result<String, WarekiError> {
    let first_day = Date::new(year, 4, 1)
        .map_err(|_| WarekiError::BeforeGregorianAdoption(GREGORIAN_ADOPTION))?;
    Ok(format!("{}度", format_era_year(first_day)?))
}

/// 年分 (calendar year of income): 「令和7年分」, named by the era on 31 December.
pub fn format_income_year(year: i16) -> Result<String, WarekiError> {
    let last_day = Date::new(year, 12, 31)
        .map_err(|_| WarekiError::BeforeGregorianAdoption(GREGORIAN_ADOPTION))?;
    Ok(format!("{}分", format_era_year(last_day)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(y: i16, m: i8, d: i8) -> String {
        format_wareki(date(y, m, d)).unwrap()
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(w(2019, 4, 30), "平成31年4月30日");
        assert_eq!(w(2019, 5, 1), "令和元年5月1日");
        assert_eq!(w(2020, 1, 1), "令和2年1月1日");
        assert_eq!(w(1989, 1, 7), "昭和64年1月7日");
        assert_eq!(w(1989, 1, 8), "平成元年1月8日");
        assert_eq!(w(1926, 12, 24), "大正15年12月24日");
        assert_eq!(w(1926, 12, 25), "昭和元年12月25日");
        assert_eq!(w(1912, 7, 29), "明治45年7月29日");
        assert_eq!(w(1912, 7, 30), "大正元年7月30日");
        assert_eq!(w(1873, 1, 1), "明治6年1月1日");
        assert!(format_wareki(date(1872, 12, 31)).is_err());
    }

    #[test]
    fn years() {
        assert_eq!(format_fiscal_year(2026).unwrap(), "令和8年度");
        assert_eq!(format_fiscal_year(2019).unwrap(), "平成31年度");
        assert_eq!(format_fiscal_year(2020).unwrap(), "令和2年度");
        assert_eq!(format_income_year(2025).unwrap(), "令和7年分");
        assert_eq!(format_income_year(2019).unwrap(), "令和元年分");
        assert_eq!(format_era_year(date(1989, 1, 8)).unwrap(), "平成元年");
    }
}
