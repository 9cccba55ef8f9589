//! The catalogue (メニュー) each municipality publishes: which certificate types and
//! options it offers through which route, the fee per copy, the copies allowed, the
//! hours of each type, its closed days and announced maintenance windows. The adapter
//! signs it with the municipality's key; the center fetches it with a signed
//! [`CatalogueRequest`], checks the signature and freshness, caches it, enforces it on
//! every order, and turns it into the kiosk's [`Menu`].
//!
//! ```text
//! center → adapter  POST /v1/catalogue        Signed<CatalogueRequest> -> Signed<Catalogue>
//! kiosk  → center   GET  /v1/municipalities   -> MunicipalityDirectory
//! kiosk  → center   GET  /v1/menu?municipality=CODE&route=residence|domicile -> Menu
//! ```
//!
//! On top of every catalogue the center applies the national rule: 06:30–23:00
//! Asia/Tokyo, closed 12/29–1/3 ([`NATIONAL_OPENS_AT`], [`NATIONAL_CLOSES_AT`]).

use crate::certificate::{CertificateOption, CertificateType, RouteKind};
use crate::crypto::{Signed, SignedMessage};
use crate::error::RefusalReason;
use crate::ids::MunicipalityCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A time of day in Asia/Tokyo, minutes after midnight; `"HH:MM"` on the wire. 24:00 is
/// allowed as a closing time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub const fn from_minutes(minutes: u16) -> Option<Self> {
        if minutes <= 24 * 60 {
            Some(Self(minutes))
        } else {
            None
        }
    }
    pub const fn hm(hour: u16, minute: u16) -> Self {
        Self(hour * 60 + minute)
    }
    pub fn minutes(self) -> u16 {
        self.0
    }
    pub fn parse(value: &str) -> Result<Self, String> {
        let bad = || format!("time of day must be HH:MM (00:00..=24:00), got {value:?}");
        let (h, m) = value.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<TimeOfDay> for String {
    fn from(value: TimeOfDay) -> String {
        value.to_string()
    }
}
impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}
impl JsonSchema for TimeOfDay {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeOfDay".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$", "description": "HH:MM, Asia/Tokyo"})
    }
}

/// National service hours (every municipality, every type): 06:30–23:00 Asia/Tokyo.
pub const NATIONAL_OPENS_AT: TimeOfDay = TimeOfDay::hm(6, 30);
pub const NATIONAL_CLOSES_AT: TimeOfDay = TimeOfDay::hm(23, 0);
/// 年末年始: closed from 12/29 through 1/3 inclusive, (month, day).
pub const NATIONAL_CLOSED_FROM: (i8, i8) = (12, 29);
pub const NATIONAL_CLOSED_THROUGH: (i8, i8) = (1, 3);
/// The time zone of every hour and date in the service.
pub const SERVICE_TIME_ZONE: &str = "Asia/Tokyo";

/// Bounds on a catalogue, so that a hostile adapter cannot make the center hold more.
pub const MAX_CLOSED_DATES: usize = 400;
pub const MAX_MAINTENANCE_WINDOWS: usize = 64;
/// The longest a center may rely on one catalogue.
pub const MAX_CATALOGUE_VALIDITY_S: i64 = 24 * 3600;

/// Which days a type's hours apply on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceDays {
    /// Every day the national rule allows.
    EveryDay,
    /// Monday to Friday, except the catalogue's `closed_dates` (祝日 and the like).
    Weekdays,
}

/// When one type can be issued (Asia/Tokyo), always within the national hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceHours {
    pub days: ServiceDays,
    pub opens_at: TimeOfDay,
    pub closes_at: TimeOfDay,
}

impl ServiceHours {
    /// The national hours, every day.
    pub const NATIONAL: Self = Self {
        days: ServiceDays::EveryDay,
        opens_at: NATIONAL_OPENS_AT,
        closes_at: NATIONAL_CLOSES_AT,
    };
}

/// One certificate type as a municipality offers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    pub certificate: CertificateType,
    /// Routes through which it is offered (戸籍 types: the 本籍地 route, and the 住所地
    /// route for residents whose 本籍 is here).
    pub routes: Vec<RouteKind>,
    /// 手数料 per copy, integer yen.
    pub fee_yen_per_copy: u32,
    /// 1..=[`crate::MAX_COPIES`].
    pub max_copies: u8,
    /// Options offered; an order using any other is refused `type_not_offered`.
    pub options: Vec<CertificateOption>,
    pub hours: ServiceHours,
}

/// An announced maintenance window (保守): nothing is issued in `[starts, ends)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub starts_at_unix_s: i64,
    pub ends_at_unix_s: i64,
    /// Shown to operators, e.g. 「システム保守のため停止」.
    pub note: String,
}

/// The center asks a municipality for its current catalogue. `requested_at_unix_s` is
/// the center's clock: the catalogue is issued as of that instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogueRequest {
    pub municipality_code: MunicipalityCode,
    pub requested_at_unix_s: i64,
}

impl SignedMessage for CatalogueRequest {
    const DOMAIN: &'static str = "catalogue-request";
}

/// A municipality's catalogue, signed with its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub municipality_code: MunicipalityCode,
    pub municipality_name: String,
    /// Equal to the request's `requested_at_unix_s`.
    pub published_at_unix_s: i64,
    /// The center re-fetches after this; at most [`MAX_CATALOGUE_VALIDITY_S`] after
    /// publication.
    pub valid_until_unix_s: i64,
    /// One entry per offered type; a type not listed is not offered.
    pub offerings: Vec<Offering>,
    /// yyyy-mm-dd (Asia/Tokyo) on which `weekdays` hours do not apply (祝日 etc.).
    pub closed_dates: Vec<String>,
    pub maintenance: Vec<MaintenanceWindow>,
    /// 年度切替日 of the tax certificates, "MM-DD": from this day of year Y the fiscal
    /// year Y is the newest one issued.
    pub tax_switchover: String,
}

impl SignedMessage for Catalogue {
    const DOMAIN: &'static str = "catalogue";
}

impl Catalogue {
    pub fn offering(&self, certificate: CertificateType) -> Option<&Offering> {
        self.offerings.iter().find(|o| o.certificate == certificate)
    }

    /// Structural checks the center applies after the signature: bounds, unique types,
    /// sane copies and hours, dates that parse.
    pub fn validate(&self) -> Result<(), String> {
        if self.valid_until_unix_s <= self.published_at_unix_s
            || self.valid_until_unix_s - self.published_at_unix_s > MAX_CATALOGUE_VALIDITY_S
        {
            return Err("catalogue validity must be positive and at most one day".into());
        }
        if self.closed_dates.len() > MAX_CLOSED_DATES
            || self.maintenance.len() > MAX_MAINTENANCE_WINDOWS
        {
            return Err("catalogue lists too many closed dates or maintenance windows".into());
        }
        let mut seen = std::collections::HashSet::new();
        for offering in &self.offerings {
            if !seen.insert(offering.certificate) {
                return Err(format!("{} is listed twice", offering.certificate));
            }
            if !(1..=crate::MAX_COPIES).contains(&offering.max_copies) {
                return Err(format!("{}: max_copies out of range", offering.certificate));
            }
            if offering.routes.is_empty() {
                return Err(format!("{}: no route", offering.certificate));
            }
            if offering.hours.opens_at >= offering.hours.closes_at {
                return Err(format!("{}: opens after it closes", offering.certificate));
            }
        }
        for day in &self.closed_dates {
            parse_iso_date(day).ok_or_else(|| format!("closed date {day:?} is not yyyy-mm-dd"))?;
        }
        for window in &self.maintenance {
            if window.ends_at_unix_s <= window.starts_at_unix_s {
                return Err("a maintenance window ends before it starts".into());
            }
        }
        parse_month_day(&self.tax_switchover)
            .ok_or_else(|| format!("tax_switchover {:?} is not MM-DD", self.tax_switchover))?;
        Ok(())
    }
}

/// `yyyy-mm-dd` → (year, month, day), checked as a real date.
pub fn parse_iso_date(text: &str) -> Option<(i16, i8, i8)> {
    let date: jiff::civil::Date = text.parse().ok()?;
    (text.len() == 10).then_some((date.year(), date.month(), date.day()))
}

/// `MM-DD` → (month, day).
pub fn parse_month_day(text: &str) -> Option<(i8, i8)> {
    let (m, d) = text.split_once('-')?;
    if m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (m, d): (i8, i8) = (m.parse().ok()?, d.parse().ok()?);
    // 2024 is a leap year, so 02-29 is accepted.
    jiff::civil::Date::new(2024, m, d).ok()?;
    Some((m, d))
}

pub type SignedCatalogue = Signed<Catalogue>;
pub type SignedCatalogueRequest = Signed<CatalogueRequest>;

/// One municipality a kiosk can offer (for the 本籍地 picker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MunicipalityEntry {
    pub code: MunicipalityCode,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MunicipalityDirectory {
    pub municipalities: Vec<MunicipalityEntry>,
}

/// The kiosk's menu for one municipality and route, as of the center's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    pub municipality_code: MunicipalityCode,
    pub municipality_name: String,
    pub route: RouteKind,
    pub as_of_unix_s: i64,
    /// Within the national hours and outside maintenance.
    pub open_now: bool,
    pub items: Vec<MenuItem>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    pub certificate: CertificateType,
    pub title_ja: String,
    pub title_en: String,
    pub fee_yen_per_copy: u32,
    pub max_copies: u8,
    pub options: Vec<CertificateOption>,
    pub hours: ServiceHours,
    pub available_now: bool,
    /// Why not, when not available now (`out_of_hours` or `maintenance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<RefusalReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_parses_strictly() {
        assert_eq!(TimeOfDay::parse("08:30").unwrap().minutes(), 510);
        assert_eq!(TimeOfDay::parse("24:00").unwrap().minutes(), 1440);
        for bad in ["8:30", "24:01", "12:60", "ab:cd", "", "12:3"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(NATIONAL_CLOSES_AT.to_string(), "23:00");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_iso_date("2026-02-11"), Some((2026, 2, 11)));
        assert_eq!(parse_iso_date("2026-02-30"), None);
        assert_eq!(parse_month_day("06-01"), Some((6, 1)));
        assert_eq!(parse_month_day("6-1"), None);
        assert_eq!(parse_month_day("13-01"), None);
    }
}
