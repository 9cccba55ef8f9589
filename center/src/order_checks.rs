//! The center's checks of an order against the municipality's catalogue and the
//! service rules, before anything is forwarded.
//!
//! Precedence (the first failing rule decides):
//! 1. national hours (06:30–23:00, not 12/29–1/3) → `out_of_hours`;
//! 2. an announced maintenance window → `maintenance`;
//! 3. not offered: a non-戸籍 type through the 本籍地 route, a type without an
//!    offering, a route the offering does not list, an option it does not list
//!    (a past fiscal year counts as `past_fiscal_year`) → `type_not_offered`;
//! 4. more copies than the offering's `max_copies` → `bad_request` (a malformed
//!    order rather than a business refusal);
//! 5. the type's own hours and closed dates → `out_of_hours`.

use jiff::Zoned;
use schemas::{
    Catalogue, CertificateKind, CertificateOption, CertificateOrder, Offering, RefusalReason, Route,
};

use crate::service_hours;

#[derive(Debug, PartialEq, Eq)]
pub enum OrderRejection {
    Refused(RefusalReason),
    BadRequest(String),
}

/// The options an order uses, including `past_fiscal_year` for a tax year older than
/// the current one under the catalogue's switch-over date.
pub fn options_needed(
    kind: &CertificateKind,
    tax_switchover: &str,
    at: &Zoned,
) -> Vec<CertificateOption> {
    let mut options = kind.options_used();
    if let CertificateKind::IncomeTax {
        fiscal_year: Some(year),
    }
    | CertificateKind::TaxPayment {
        fiscal_year: Some(year),
    } = kind
    {
        let current = service_hours::current_fiscal_year(tax_switchover, at.date());
        // An unparsable switch-over cannot come from a validated catalogue; treat
        // every explicit year as past then, so the stricter rule applies.
        if current.is_none_or(|current| i32::from(*year) < i32::from(current)) {
            options.push(CertificateOption::PastFiscalYear);
        }
    }
    options
}

/// Checks `order` against `catalogue` at `at` (Asia/Tokyo); returns the offering.
pub fn check_order<'c>(
    catalogue: &'c Catalogue,
    order: &CertificateOrder,
    at: &Zoned,
) -> Result<&'c Offering, OrderRejection> {
    service_hours::general_availability(&catalogue.maintenance, at)
        .map_err(OrderRejection::Refused)?;
    let certificate = order.certificate.certificate_type();
    let not_offered = OrderRejection::Refused(RefusalReason::TypeNotOffered);
    if matches!(order.route, Route::Domicile { .. }) && !certificate.is_family_register() {
        return Err(not_offered);
    }
    let offering = catalogue.offering(certificate).ok_or(not_offered)?;
    if !offering.routes.contains(&order.route.kind()) {
        return Err(OrderRejection::Refused(RefusalReason::TypeNotOffered));
    }
    if !options_needed(&order.certificate, &catalogue.tax_switchover, at)
        .iter()
        .all(|option| offering.options.contains(option))
    {
        return Err(OrderRejection::Refused(RefusalReason::TypeNotOffered));
    }
    if order.copies > offering.max_copies {
        return Err(OrderRejection::BadRequest(format!(
            "{} copies asked; the municipality issues at most {} of {} at once",
            order.copies, offering.max_copies, certificate
        )));
    }
    if !service_hours::offering_open(&offering.hours, &catalogue.closed_dates, at) {
        return Err(OrderRejection::Refused(RefusalReason::OutOfHours));
    }
    Ok(offering)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::tests::{catalogue, other_code, tuesday_noon};
    use schemas::{CertificateType, HouseholdScope, MaintenanceWindow};

    fn at(unix_s: i64) -> Zoned {
        service_hours::tokyo_time(unix_s).unwrap()
    }

    fn resident(scope: HouseholdScope, include_domicile: bool) -> CertificateKind {
        CertificateKind::ResidentRecord {
            scope,
            include_domicile,
            include_relationship: false,
        }
    }

    fn order(route: Route, certificate: CertificateKind, copies: u8) -> CertificateOrder {
        CertificateOrder {
            route,
            certificate,
            copies,
        }
    }

    #[test]
    fn a_plain_order_passes_and_names_its_offering() {
        let now = tuesday_noon();
        let c = catalogue(now);
        let o = order(
            Route::Residence,
            resident(HouseholdScope::Household, true),
            2,
        );
        let offering = check_order(&c, &o, &at(now)).unwrap();
        assert_eq!(offering.certificate, CertificateType::ResidentRecord);
    }

    #[test]
    fn not_offered_cases() {
        let now = tuesday_noon();
        let c = catalogue(now);
        let refused = Err(OrderRejection::Refused(RefusalReason::TypeNotOffered));
        // No offering for the type.
        let seal = order(Route::Residence, CertificateKind::SealRegistration, 1);
        assert_eq!(check_order(&c, &seal, &at(now)), refused);
        // An option not offered (世帯一部).
        let selected = order(
            Route::Residence,
            resident(HouseholdScope::Selected { members: vec![1] }, false),
            1,
        );
        assert_eq!(check_order(&c, &selected, &at(now)), refused);
        // A non-戸籍 type through the 本籍地 route.
        let domicile = order(
            Route::Domicile {
                municipality_code: other_code(),
            },
            resident(HouseholdScope::SelfOnly, false),
            1,
        );
        assert_eq!(check_order(&c, &domicile, &at(now)), refused);
        // A route the offering does not list.
        let mut narrowed = c.clone();
        narrowed.offerings[2].routes = vec![schemas::RouteKind::Residence];
        let family = order(
            Route::Domicile {
                municipality_code: other_code(),
            },
            CertificateKind::FamilyRegisterAll,
            1,
        );
        assert!(check_order(&c, &family, &at(now)).is_ok());
        assert_eq!(check_order(&narrowed, &family, &at(now)), refused);
    }

    #[test]
    fn past_fiscal_year_needs_the_option() {
        let now = tuesday_noon(); // 2026-11-24, switch-over 06-01: current FY 2026.
        let mut c = catalogue(now);
        let tax = |year| {
            order(
                Route::Residence,
                CertificateKind::IncomeTax {
                    fiscal_year: Some(year),
                },
                1,
            )
        };
        assert!(check_order(&c, &tax(2025), &at(now)).is_ok());
        assert!(check_order(&c, &tax(2026), &at(now)).is_ok());
        c.offerings[1].options.clear();
        assert_eq!(
            check_order(&c, &tax(2025), &at(now)),
            Err(OrderRejection::Refused(RefusalReason::TypeNotOffered))
        );
        assert!(check_order(&c, &tax(2026), &at(now)).is_ok());
        let newest = order(
            Route::Residence,
            CertificateKind::IncomeTax { fiscal_year: None },
            1,
        );
        assert!(check_order(&c, &newest, &at(now)).is_ok());
    }

    #[test]
    fn copies_are_bounded_per_type() {
        let now = tuesday_noon();
        let c = catalogue(now);
        let tax = |copies| {
            order(
                Route::Residence,
                CertificateKind::IncomeTax { fiscal_year: None },
                copies,
            )
        };
        assert!(check_order(&c, &tax(3), &at(now)).is_ok());
        assert!(matches!(
            check_order(&c, &tax(4), &at(now)),
            Err(OrderRejection::BadRequest(_))
        ));
    }

    #[test]
    fn precedence_of_rules() {
        let now = tuesday_noon();
        let mut c = catalogue(now);
        let seal = order(Route::Residence, CertificateKind::SealRegistration, 1);
        let family = order(Route::Residence, CertificateKind::FamilyRegisterAll, 1);
        // 18:00 Tuesday: 戸籍 hours closed, but an unoffered type is refused as such.
        let evening = now + 6 * 3600;
        assert_eq!(
            check_order(&c, &family, &at(evening)),
            Err(OrderRejection::Refused(RefusalReason::OutOfHours))
        );
        assert_eq!(
            check_order(&c, &seal, &at(evening)),
            Err(OrderRejection::Refused(RefusalReason::TypeNotOffered))
        );
        // Maintenance beats not offered.
        c.maintenance.push(MaintenanceWindow {
            starts_at_unix_s: now - 10,
            ends_at_unix_s: now + 10,
            note: String::new(),
        });
        assert_eq!(
            check_order(&c, &seal, &at(now)),
            Err(OrderRejection::Refused(RefusalReason::Maintenance))
        );
        // National hours beat everything.
        let night = now + 11 * 3600 + 60;
        c.maintenance[0].starts_at_unix_s = night - 10;
        c.maintenance[0].ends_at_unix_s = night + 10;
        assert_eq!(
            check_order(&c, &seal, &at(night)),
            Err(OrderRejection::Refused(RefusalReason::OutOfHours))
        );
    }
}
