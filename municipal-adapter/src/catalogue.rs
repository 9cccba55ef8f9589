//! The municipality's catalogue (メニュー): what it offers at kiosks, built from its
//! settings and signed with its key for the center (`POST /v1/catalogue`).
//!
//! The adapter enforces the same catalogue on every fetch (`type_not_offered`), so an
//! order the center let through by mistake is still refused here; the answer's fee is
//! the catalogue's fee for the type.

use jiff::civil::Date;
use schemas::{
    parse_month_day, Catalogue, CertificateKind, CertificateOption, CertificateType,
    MaintenanceWindow, Offering, RouteKind, ServiceDays, ServiceHours, TimeOfDay,
    NATIONAL_CLOSES_AT, NATIONAL_OPENS_AT,
};

use crate::configuration::MunicipalitySettings;

/// How long a published catalogue is valid (the center re-fetches after it).
pub const CATALOGUE_VALIDITY_S: i64 = 3600;
/// 年度切替日 when the settings name none: 1 June, when the new year's assessment is out.
pub const DEFAULT_TAX_SWITCHOVER: &str = "06-01";
/// 戸籍 hours: the 本籍地's staff must be on duty to answer (weekdays 08:30–17:15).
pub const FAMILY_REGISTER_HOURS: ServiceHours = ServiceHours {
    days: ServiceDays::Weekdays,
    opens_at: TimeOfDay::hm(8, 30),
    closes_at: TimeOfDay::hm(17, 15),
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    #[error("maintenance window {index}: {field} {value:?} is not an RFC 3339 instant")]
    MaintenanceInstant {
        index: usize,
        field: &'static str,
        value: String,
    },
    #[error("{0}: hours must lie within the national hours 06:30–23:00")]
    OutsideNationalHours(CertificateType),
    #[error("catalogue: {0}")]
    Invalid(String),
}

/// Every type with the standard fees, copies, options, routes and hours.
pub fn default_offerings() -> Vec<Offering> {
    use CertificateOption::{Domicile, Household, PastFiscalYear, Relationship, SelectedMembers};
    CertificateType::ALL
        .into_iter()
        .map(|certificate| {
            let family_register = certificate.is_family_register();
            let options = match certificate {
                CertificateType::ResidentRecord => {
                    vec![Household, SelectedMembers, Domicile, Relationship]
                }
                CertificateType::ResidentRecordItems => {
                    vec![Household, SelectedMembers, Relationship]
                }
                CertificateType::IncomeTax | CertificateType::TaxPayment => vec![PastFiscalYear],
                CertificateType::FamilyRegisterAttachment => vec![Domicile],
                CertificateType::SealRegistration
                | CertificateType::FamilyRegisterAll
                | CertificateType::FamilyRegisterIndividual => vec![],
            };
            Offering {
                certificate,
                routes: if family_register {
                    vec![RouteKind::Residence, RouteKind::Domicile]
                } else {
                    vec![RouteKind::Residence]
                },
                fee_yen_per_copy: match certificate {
                    CertificateType::FamilyRegisterAll
                    | CertificateType::FamilyRegisterIndividual => 350,
                    _ => 200,
                },
                max_copies: if family_register { 5 } else { 10 },
                options,
                hours: if family_register {
                    FAMILY_REGISTER_HOURS
                } else {
                    ServiceHours::NATIONAL
                },
            }
        })
        .collect()
}

fn instant(index: usize, field: &'static str, value: &str) -> Result<i64, CatalogueError> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| CatalogueError::MaintenanceInstant {
            index,
            field,
            value: value.to_owned(),
        })
}

/// The catalogue of `settings` as of the center's `requested_at_unix_s`, checked with
/// [`Catalogue::validate`] (and against the national hours) but not yet signed.
pub fn catalogue_for(
    settings: &MunicipalitySettings,
    requested_at_unix_s: i64,
) -> Result<Catalogue, CatalogueError> {
    let configured = &settings.catalogue;
    let offerings = configured
        .offerings
        .clone()
        .unwrap_or_else(default_offerings);
    for offering in &offerings {
        if offering.hours.opens_at < NATIONAL_OPENS_AT
            || offering.hours.closes_at > NATIONAL_CLOSES_AT
        {
            return Err(CatalogueError::OutsideNationalHours(offering.certificate));
        }
    }
    let maintenance = configured
        .maintenance
        .iter()
        .enumerate()
        .map(|(index, window)| {
            Ok(MaintenanceWindow {
                starts_at_unix_s: instant(index, "starts_at", &window.starts_at)?,
                ends_at_unix_s: instant(index, "ends_at", &window.ends_at)?,
                note: window.note.clone(),
            })
        })
        .collect::<Result<Vec<_>, CatalogueError>>()?;
    let catalogue = Catalogue {
        municipality_code: settings.code,
        municipality_name: settings.name.clone(),
        published_at_unix_s: requested_at_unix_s,
        valid_until_unix_s: requested_at_unix_s.saturating_add(CATALOGUE_VALIDITY_S),
        offerings,
        closed_dates: configured.closed_dates.clone(),
        maintenance,
        tax_switchover: configured
            .tax_switchover
            .clone()
            .unwrap_or_else(|| DEFAULT_TAX_SWITCHOVER.to_owned()),
    };
    catalogue.validate().map_err(CatalogueError::Invalid)?;
    Ok(catalogue)
}

/// Why the catalogue does not cover `kind` through `route`: the type, the route or an
/// option is not offered. `None` when it is offered. A specific fiscal year other than
/// the newest needs [`CertificateOption::PastFiscalYear`].
pub fn not_offered(
    catalogue: &Catalogue,
    kind: &CertificateKind,
    route: RouteKind,
    today: Date,
) -> Option<String> {
    let certificate = kind.certificate_type();
    let Some(offering) = catalogue.offering(certificate) else {
        return Some(format!("{certificate} is not offered"));
    };
    if !offering.routes.contains(&route) {
        return Some(format!("{certificate} is not offered through this route"));
    }
    let mut used = kind.options_used();
    if let CertificateKind::IncomeTax {
        fiscal_year: Some(year),
    }
    | CertificateKind::TaxPayment {
        fiscal_year: Some(year),
    } = kind
    {
        if Some(*year) != newest_fiscal_year(&catalogue.tax_switchover, today) {
            used.push(CertificateOption::PastFiscalYear);
        }
    }
    used.iter()
        .find(|option| !offering.options.contains(option))
        .map(|option| format!("{certificate}: option {option:?} is not offered"))
}

/// The first day fiscal year `year` is issued (its 年度切替日), if the switch-over
/// "MM-DD" is valid.
pub fn switchover_day(tax_switchover: &str, year: u16) -> Option<Date> {
    let (month, day) = parse_month_day(tax_switchover)?;
    let year = i16::try_from(year).ok()?;
    Date::new(year, month, day)
        // 02-29 in a common year: the day after 28 February.
        .or_else(|_| Date::new(year, 3, 1))
        .ok()
}

/// The newest fiscal year issued on `today`: the current year from its switch-over
/// day on, the year before until then.
pub fn newest_fiscal_year(tax_switchover: &str, today: Date) -> Option<u16> {
    let year = u16::try_from(today.year()).ok()?;
    if today >= switchover_day(tax_switchover, year)? {
        Some(year)
    } else {
        year.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn defaults_follow_the_plan() {
        let offerings = default_offerings();
        assert_eq!(offerings.len(), 8);
        let all = offerings
            .iter()
            .find(|o| o.certificate == CertificateType::FamilyRegisterAll)
            .unwrap();
        assert_eq!(all.fee_yen_per_copy, 350);
        assert_eq!(all.max_copies, 5);
        assert_eq!(all.routes, vec![RouteKind::Residence, RouteKind::Domicile]);
        assert_eq!(all.hours.days, ServiceDays::Weekdays);
        let record = &offerings[0];
        assert_eq!(record.certificate, CertificateType::ResidentRecord);
        assert_eq!(record.fee_yen_per_copy, 200);
        assert_eq!(record.routes, vec![RouteKind::Residence]);
        assert_eq!(record.hours, ServiceHours::NATIONAL);
    }

    #[test]
    fn fiscal_year_switches_over() {
        assert_eq!(newest_fiscal_year("06-01", date(2026, 5, 31)), Some(2025));
        assert_eq!(newest_fiscal_year("06-01", date(2026, 6, 1)), Some(2026));
        assert_eq!(newest_fiscal_year("04-01", date(2026, 4, 1)), Some(2026));
        assert_eq!(switchover_day("02-29", 2026), Some(date(2026, 3, 1)));
        assert_eq!(newest_fiscal_year("6-1", date(2026, 6, 1)), None);
    }

    #[test]
    fn options_and_routes_are_checked() {
        let catalogue = Catalogue {
            municipality_code: schemas::MunicipalityCode::parse("212113").unwrap(),
            municipality_name: "美濃加茂市".into(),
            published_at_unix_s: 0,
            valid_until_unix_s: 3600,
            offerings: default_offerings(),
            closed_dates: vec![],
            maintenance: vec![],
            tax_switchover: "06-01".into(),
        };
        let today = date(2026, 11, 20);
        let seal = CertificateKind::SealRegistration;
        assert_eq!(
            not_offered(&catalogue, &seal, RouteKind::Residence, today),
            None
        );
        assert!(not_offered(&catalogue, &seal, RouteKind::Domicile, today).is_some());
        let past = CertificateKind::IncomeTax {
            fiscal_year: Some(2025),
        };
        assert_eq!(
            not_offered(&catalogue, &past, RouteKind::Residence, today),
            None
        );
        let mut narrow = catalogue.clone();
        narrow.offerings[3].options.clear();
        assert!(not_offered(&narrow, &past, RouteKind::Residence, today).is_some());
        let current = CertificateKind::IncomeTax {
            fiscal_year: Some(2026),
        };
        assert_eq!(
            not_offered(&narrow, &current, RouteKind::Residence, today),
            None
        );
        narrow
            .offerings
            .retain(|o| o.certificate != CertificateType::SealRegistration);
        assert!(not_offered(&narrow, &seal, RouteKind::Residence, today).is_some());
    }
}
