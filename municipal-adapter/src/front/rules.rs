//! The kiosk rules (交付できない場合) and the decision for one order.
//!
//! Every rule is evaluated against `today` = the fetch's `requested_at_unix_s` in
//! Asia/Tokyo (the center's clock is the one clock). The order of precedence, the same
//! for every type (the first rule that applies is the one reported):
//!
//! | # | reason | applies |
//! | - | --- | --- |
//! | 0 | `card_not_registered` | 住所地: no binding for the card here (checked by issuance before this module) |
//! | 1 | `type_not_offered` | the type, route or an option is not in the catalogue |
//! | 2 | `domicile_not_registered` | 本籍地 route: no approved 利用登録 for the card (checked by issuance from the `domicile` table) |
//! | 3 | `erased_record`, `deceased`, `moved_out` | 住所地: the holder's record status (転出 and 転出予定 are both `moved_out`) |
//! | 4 | `member_selection_invalid` | 世帯一部: a position is not a current member |
//! | 5 | `support_measures` | 支援措置 on the holder, or on anyone printed (世帯一部) / in the household (世帯全員) |
//! | 6 | `under15` | the holder (本籍地: the 戸籍 person) is younger than 15 |
//! | 7 | `card_issued_today` | 住所地: the card was handed over today |
//! | 8 | `moving_in_day` | 住所地: the holder became a resident today |
//! | 9 | `no_seal_registration` | 印鑑登録証明書: no active registration |
//! | 10 | `before_tax_switchover` | tax types: an explicit fiscal year before its 年度切替日 |
//! | 11 | `no_tax_record` | tax types: nothing for the fiscal year |
//! | 12 | `domicile_elsewhere` | 戸籍 types through 住所地: the 本籍 is not kept here |
//! | 13 | `family_register_pending` | 戸籍 types: a filing is not yet entered |

use jiff::civil::Date;
use schemas::{Catalogue, CertificateKind, FrontSide, RefusalReason, RouteKind};

use super::family::{build_attachment, build_family_register};
use super::resident::{build_resident_record, build_resident_record_items, printed_members};
use super::seal_registration::build_seal_registration;
use super::tax::{build_income_tax, build_tax_payment};
use super::{reaches_age_on, FrontError, FrontIssuer, MINIMUM_AGE_YEARS};
use crate::catalogue::{newest_fiscal_year, not_offered, switchover_day};
use crate::register::store::CardLookup;
use crate::register::{FamilyRegister, FamilyRegisterPerson, ResidentStatus};
pub use crate::seal::SealSubject;

/// What the register holds for a card through the 住所地 route.
#[derive(Clone, Copy, Debug)]
pub struct ResidenceCase<'a> {
    pub lookup: &'a CardLookup,
    /// The holder's 戸籍 when it is kept here (looked up for 戸籍 types only, through
    /// the holder's `family_register` link).
    pub family_register: Option<&'a FamilyRegister>,
}

/// The outcome of the rules for one order.
// One decision per request, moved once: boxing the front would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Refused(RefusalReason),
    Issued {
        front: FrontSide,
        /// Whom the seals name.
        subject: SealSubject,
    },
}

fn refused(reason: RefusalReason) -> Result<Decision, FrontError> {
    Ok(Decision::Refused(reason))
}

/// The fiscal year a tax order asks for, or the refusal for it.
fn fiscal_year(
    catalogue: &Catalogue,
    requested: Option<u16>,
    today: Date,
) -> Result<Result<u16, RefusalReason>, FrontError> {
    let bad = || FrontError::TaxSwitchover(catalogue.tax_switchover.clone());
    match requested {
        None => newest_fiscal_year(&catalogue.tax_switchover, today)
            .map(Ok)
            .ok_or_else(bad),
        Some(year) => {
            let first_day = switchover_day(&catalogue.tax_switchover, year).ok_or_else(bad)?;
            Ok(if today < first_day {
                Err(RefusalReason::BeforeTaxSwitchover)
            } else {
                Ok(year)
            })
        }
    }
}

/// The decision for `kind` through the 住所地 route (rules 1, 3–13).
pub fn decide_residence(
    issuer: &FrontIssuer,
    catalogue: &Catalogue,
    case: ResidenceCase<'_>,
    kind: &CertificateKind,
    today: Date,
) -> Result<Decision, FrontError> {
    if not_offered(catalogue, kind, RouteKind::Residence, today).is_some() {
        return refused(RefusalReason::TypeNotOffered);
    }
    let lookup = case.lookup;
    let household = &lookup.household;
    let holder = lookup.holder().ok_or(FrontError::HolderMissing)?;
    match holder.status {
        ResidentStatus::Active => {}
        ResidentStatus::Erased => return refused(RefusalReason::ErasedRecord),
        ResidentStatus::Deceased => return refused(RefusalReason::Deceased),
        ResidentStatus::MovingOut | ResidentStatus::MovedOut => {
            return refused(RefusalReason::MovedOut)
        }
    }
    let scope = kind.scope();
    let printed = match scope {
        Some(scope) => match printed_members(household, holder, scope) {
            Some(members) => members,
            None => return refused(RefusalReason::MemberSelectionInvalid),
        },
        None => vec![holder],
    };
    // A household copy prints (or, for 世帯全員, vouches for) everyone in it, so a
    // protected member anywhere in it refuses the whole copy.
    if holder.support_measures || printed.iter().any(|m| m.support_measures) {
        return refused(RefusalReason::SupportMeasures);
    }
    if reaches_age_on(holder.birth_date, MINIMUM_AGE_YEARS) > today {
        return refused(RefusalReason::Under15);
    }
    if lookup.card_issued_on == today {
        return refused(RefusalReason::CardIssuedToday);
    }
    // The register of the day of moving in may still change at the counter.
    if holder.became_resident_on == today {
        return refused(RefusalReason::MovingInDay);
    }
    let subject = SealSubject {
        name: holder.name.clone(),
        birth_date: holder.birth_date,
        address: Some(household.address.clone()),
        seal_registration_number: None,
    };
    let front = match kind {
        CertificateKind::ResidentRecord {
            scope,
            include_domicile,
            include_relationship,
        } => FrontSide::ResidentRecord(build_resident_record(
            issuer,
            household,
            &printed,
            scope,
            *include_domicile,
            *include_relationship,
            today,
        )?),
        CertificateKind::ResidentRecordItems {
            include_relationship,
            ..
        } => FrontSide::ResidentRecordItems(build_resident_record_items(
            issuer,
            household,
            &printed,
            *include_relationship,
            today,
        )?),
        CertificateKind::SealRegistration => {
            let Some(registration) = lookup
                .seal_registration
                .as_ref()
                .filter(|r| r.active && r.resident_id == holder.resident_id)
            else {
                return refused(RefusalReason::NoSealRegistration);
            };
            let front = build_seal_registration(issuer, household, holder, registration, today)?;
            return Ok(Decision::Issued {
                front: FrontSide::SealRegistration(front),
                subject: SealSubject {
                    seal_registration_number: Some(registration.registration_number.clone()),
                    ..subject
                },
            });
        }
        CertificateKind::IncomeTax { fiscal_year: year } => {
            let year = match fiscal_year(catalogue, *year, today)? {
                Ok(year) => year,
                Err(reason) => return refused(reason),
            };
            let Some(record) = lookup
                .tax_records
                .iter()
                .find(|r| r.fiscal_year == year && r.resident_id == holder.resident_id)
            else {
                return refused(RefusalReason::NoTaxRecord);
            };
            FrontSide::IncomeTax(build_income_tax(issuer, holder, record, today)?)
        }
        CertificateKind::TaxPayment { fiscal_year: year } => {
            let year = match fiscal_year(catalogue, *year, today)? {
                Ok(year) => year,
                Err(reason) => return refused(reason),
            };
            let payments: Vec<_> = lookup
                .tax_payments
                .iter()
                .filter(|p| p.fiscal_year == year && p.resident_id == holder.resident_id)
                .collect();
            if payments.is_empty() {
                return refused(RefusalReason::NoTaxRecord);
            }
            FrontSide::TaxPayment(build_tax_payment(
                issuer, household, holder, year, &payments, today,
            )?)
        }
        CertificateKind::FamilyRegisterAll
        | CertificateKind::FamilyRegisterIndividual
        | CertificateKind::FamilyRegisterAttachment { .. } => {
            let Some(link) = &holder.family_register else {
                return refused(RefusalReason::DomicileElsewhere);
            };
            let register = case
                .family_register
                .filter(|r| r.family_register_id == link.family_register_id)
                .ok_or_else(|| {
                    FrontError::FamilyRegisterMissing(link.family_register_id.clone())
                })?;
            return family_register_decision(
                issuer,
                register,
                &link.person_id,
                kind,
                today,
                SealSubject {
                    address: None,
                    ..subject
                },
            );
        }
    };
    Ok(Decision::Issued { front, subject })
}

/// The decision for a 戸籍 type through the 本籍地 route, for the person an approved
/// 利用登録 names (rules 1, 6, 13; rule 2 is the caller's).
pub fn decide_domicile(
    issuer: &FrontIssuer,
    catalogue: &Catalogue,
    register: &FamilyRegister,
    person_id: &str,
    kind: &CertificateKind,
    today: Date,
) -> Result<Decision, FrontError> {
    if !kind.certificate_type().is_family_register()
        || not_offered(catalogue, kind, RouteKind::Domicile, today).is_some()
    {
        return refused(RefusalReason::TypeNotOffered);
    }
    let person = find_person(register, person_id)?;
    if reaches_age_on(person.birth_date, MINIMUM_AGE_YEARS) > today {
        return refused(RefusalReason::Under15);
    }
    family_register_decision(
        issuer,
        register,
        person_id,
        kind,
        today,
        SealSubject {
            name: person.name.clone(),
            birth_date: person.birth_date,
            // The seal of a 戸籍 type never carries an address or the 本籍.
            address: None,
            seal_registration_number: None,
        },
    )
}

fn find_person<'a>(
    register: &'a FamilyRegister,
    person_id: &str,
) -> Result<&'a FamilyRegisterPerson, FrontError> {
    register
        .person(person_id)
        .ok_or_else(|| FrontError::PersonMissing {
            family_register_id: register.family_register_id.clone(),
            person_id: person_id.to_owned(),
        })
}

fn family_register_decision(
    issuer: &FrontIssuer,
    register: &FamilyRegister,
    person_id: &str,
    kind: &CertificateKind,
    today: Date,
    subject: SealSubject,
) -> Result<Decision, FrontError> {
    if register.pending_filing {
        return refused(RefusalReason::FamilyRegisterPending);
    }
    let person = find_person(register, person_id)?;
    let front = match kind {
        CertificateKind::FamilyRegisterAll => FrontSide::FamilyRegister(build_family_register(
            issuer, register, person, false, today,
        )?),
        CertificateKind::FamilyRegisterIndividual => FrontSide::FamilyRegister(
            build_family_register(issuer, register, person, true, today)?,
        ),
        CertificateKind::FamilyRegisterAttachment { include_domicile } => {
            FrontSide::FamilyRegisterAttachment(build_attachment(
                issuer,
                register,
                person,
                *include_domicile,
                today,
            )?)
        }
        _ => return refused(RefusalReason::TypeNotOffered),
    };
    Ok(Decision::Issued { front, subject })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::testdata::{catalogue, family_register, issuer, lookup};
    use jiff::civil::date;
    use schemas::HouseholdScope;

    const TODAY: Date = date(2026, 11, 20);

    fn decide(lookup: &CardLookup, kind: &CertificateKind, today: Date) -> Decision {
        let register = family_register();
        let case = ResidenceCase {
            lookup,
            family_register: Some(&register),
        };
        decide_residence(&issuer(), &catalogue(), case, kind, today).unwrap()
    }

    fn reason(lookup: &CardLookup, kind: &CertificateKind, today: Date) -> Option<RefusalReason> {
        match decide(lookup, kind, today) {
            Decision::Refused(reason) => Some(reason),
            Decision::Issued { .. } => None,
        }
    }

    fn front(lookup: &CardLookup, kind: &CertificateKind) -> (FrontSide, SealSubject) {
        match decide(lookup, kind, TODAY) {
            Decision::Issued { front, subject } => {
                front.validate().unwrap();
                assert!(front.fits(kind.certificate_type()));
                (front, subject)
            }
            Decision::Refused(reason) => panic!("refused {reason}"),
        }
    }

    fn record(scope: HouseholdScope) -> CertificateKind {
        CertificateKind::ResidentRecord {
            scope,
            include_domicile: true,
            include_relationship: true,
        }
    }

    #[test]
    fn selected_members_are_positions_among_current_members() {
        let (front, subject) = front(
            &lookup(),
            &record(HouseholdScope::Selected {
                members: vec![2, 3],
            }),
        );
        let FrontSide::ResidentRecord(f) = front else {
            panic!("type")
        };
        let names: Vec<_> = f.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["名 R2", "名 R3"]);
        assert_eq!(f.household_head.as_deref(), Some("名 R1"));
        assert_eq!(
            f.attestation.certification,
            super::super::resident::CERTIFICATION_SELF
        );
        assert_eq!(subject.name, "名 R1");
        assert!(subject.address.is_some());
        // Position 4 would be the moved-out R4, which is not a current member.
        assert_eq!(
            reason(
                &lookup(),
                &record(HouseholdScope::Selected { members: vec![4] }),
                TODAY
            ),
            Some(RefusalReason::MemberSelectionInvalid)
        );
    }

    #[test]
    fn support_measures_on_a_member_refuse_household_scopes_only() {
        let mut l = lookup();
        l.household.members[1].support_measures = true;
        assert_eq!(
            reason(&l, &record(HouseholdScope::Household), TODAY),
            Some(RefusalReason::SupportMeasures)
        );
        assert_eq!(
            reason(
                &l,
                &record(HouseholdScope::Selected { members: vec![2] }),
                TODAY
            ),
            Some(RefusalReason::SupportMeasures)
        );
        assert_eq!(
            reason(
                &l,
                &record(HouseholdScope::Selected {
                    members: vec![1, 3]
                }),
                TODAY
            ),
            None
        );
        assert_eq!(reason(&l, &record(HouseholdScope::SelfOnly), TODAY), None);
    }

    #[test]
    fn day_rules_follow_the_clock() {
        let mut l = lookup();
        l.card_issued_on = TODAY;
        let kind = record(HouseholdScope::SelfOnly);
        assert_eq!(
            reason(&l, &kind, TODAY),
            Some(RefusalReason::CardIssuedToday)
        );
        assert_eq!(reason(&l, &kind, date(2026, 11, 21)), None);
        let mut l = lookup();
        l.household.members[0].became_resident_on = TODAY;
        assert_eq!(reason(&l, &kind, TODAY), Some(RefusalReason::MovingInDay));
        let mut l = lookup();
        l.holder_id = "R3".into();
        assert_eq!(reason(&l, &kind, TODAY), Some(RefusalReason::Under15));
        l.holder_id = "R4".into();
        assert_eq!(reason(&l, &kind, TODAY), Some(RefusalReason::MovedOut));
    }

    #[test]
    fn seal_registration_needs_an_active_one() {
        let (front, subject) = front(&lookup(), &CertificateKind::SealRegistration);
        let FrontSide::SealRegistration(f) = front else {
            panic!("type")
        };
        assert_eq!(f.registration_number, "12345");
        assert_eq!(f.registered_on_wareki, "令和元年5月1日");
        assert_eq!(subject.seal_registration_number.as_deref(), Some("12345"));
        let mut l = lookup();
        if let Some(r) = l.seal_registration.as_mut() {
            r.active = false;
        }
        assert_eq!(
            reason(&l, &CertificateKind::SealRegistration, TODAY),
            Some(RefusalReason::NoSealRegistration)
        );
    }

    #[test]
    fn fiscal_years_switch_over() {
        let newest = CertificateKind::IncomeTax { fiscal_year: None };
        let (front, _) = front(&lookup(), &newest);
        let FrontSide::IncomeTax(f) = front else {
            panic!("type")
        };
        assert_eq!(f.fiscal_year_wareki, "令和8年度");
        assert_eq!(f.income_year_wareki, "令和7年分");
        assert_eq!(f.tax_lines[0].label, "市民税");
        assert_eq!(f.tax_lines[0].amount_yen, 141_600);
        // Before 1 June 2026 the newest year is 2025, and 2026 is not yet issued.
        let may = date(2026, 5, 31);
        let early = CertificateKind::IncomeTax {
            fiscal_year: Some(2026),
        };
        assert_eq!(
            reason(&lookup(), &early, may),
            Some(RefusalReason::BeforeTaxSwitchover)
        );
        let Decision::Issued {
            front: FrontSide::IncomeTax(f),
            ..
        } = decide(&lookup(), &newest, may)
        else {
            panic!("2025 is issued in May 2026")
        };
        assert_eq!(f.fiscal_year_wareki, "令和7年度");
        let mut l = lookup();
        l.tax_records.retain(|r| r.fiscal_year == 2025);
        assert_eq!(reason(&l, &newest, TODAY), Some(RefusalReason::NoTaxRecord));
    }

    #[test]
    fn tax_payment_lines_add_up() {
        let (front, _) = front(
            &lookup(),
            &CertificateKind::TaxPayment { fiscal_year: None },
        );
        let FrontSide::TaxPayment(f) = front else {
            panic!("type")
        };
        assert_eq!(f.lines.len(), 2);
        assert_eq!(f.lines[1].unpaid_yen, 5_400);
        assert_eq!(
            reason(
                &lookup(),
                &CertificateKind::TaxPayment {
                    fiscal_year: Some(2025)
                },
                TODAY
            ),
            Some(RefusalReason::NoTaxRecord)
        );
    }

    #[test]
    fn family_register_through_the_residence() {
        let (front, subject) = front(&lookup(), &CertificateKind::FamilyRegisterAll);
        let FrontSide::FamilyRegister(f) = front else {
            panic!("type")
        };
        assert_eq!(f.persons.len(), 3);
        assert!(f.persons[2].removed);
        assert_eq!(f.persons[0].events[0].lines[0], "【出生日】令和元年5月1日");
        assert_eq!(
            f.attestation.certification,
            "これは、戸籍に記録されている事項の全部を証明した書面である。"
        );
        assert_eq!(subject.address, None);
        let (front, _) = front_of(&CertificateKind::FamilyRegisterIndividual);
        let FrontSide::FamilyRegister(f) = front else {
            panic!("type")
        };
        assert!(f.individual);
        assert_eq!(f.persons.len(), 1);
        let (front, _) = front_of(&CertificateKind::FamilyRegisterAttachment {
            include_domicile: false,
        });
        let FrontSide::FamilyRegisterAttachment(f) = front else {
            panic!("type")
        };
        assert_eq!(f.domicile, None);
        assert_eq!(f.addresses[0].since_wareki, "平成元年1月8日");
        assert_eq!(f.addresses[1].since_wareki, "平成31年4月30日");

        let mut l = lookup();
        l.household.members[0].family_register = None;
        assert_eq!(
            reason(&l, &CertificateKind::FamilyRegisterAll, TODAY),
            Some(RefusalReason::DomicileElsewhere)
        );
    }

    fn front_of(kind: &CertificateKind) -> (FrontSide, SealSubject) {
        front(&lookup(), kind)
    }

    #[test]
    fn domicile_route_uses_the_register_only() {
        let mut register = family_register();
        let kind = CertificateKind::FamilyRegisterIndividual;
        let Decision::Issued { front, subject } =
            decide_domicile(&issuer(), &catalogue(), &register, "P2", &kind, TODAY).unwrap()
        else {
            panic!("issued")
        };
        let FrontSide::FamilyRegister(f) = front else {
            panic!("type")
        };
        assert_eq!(f.persons[0].name, "名 R2");
        assert_eq!(subject.name, "名 R2");
        assert_eq!(subject.address, None);
        assert_eq!(
            decide_domicile(
                &issuer(),
                &catalogue(),
                &register,
                "P2",
                &CertificateKind::SealRegistration,
                TODAY
            )
            .unwrap(),
            Decision::Refused(RefusalReason::TypeNotOffered)
        );
        register.pending_filing = true;
        assert_eq!(
            decide_domicile(&issuer(), &catalogue(), &register, "P2", &kind, TODAY).unwrap(),
            Decision::Refused(RefusalReason::FamilyRegisterPending)
        );
    }

    #[test]
    fn catalogue_comes_first() {
        let mut catalogue = catalogue();
        catalogue
            .offerings
            .retain(|o| o.certificate != schemas::CertificateType::ResidentRecord);
        let mut l = lookup();
        l.household.members[0].status = ResidentStatus::Deceased;
        let case = ResidenceCase {
            lookup: &l,
            family_register: None,
        };
        let kind = record(HouseholdScope::SelfOnly);
        assert_eq!(
            decide_residence(&issuer(), &catalogue, case, &kind, TODAY).unwrap(),
            Decision::Refused(RefusalReason::TypeNotOffered)
        );
        let items = CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::SelfOnly,
            include_relationship: false,
        };
        assert_eq!(
            decide_residence(&issuer(), &catalogue, case, &items, TODAY).unwrap(),
            Decision::Refused(RefusalReason::Deceased)
        );
    }
}
