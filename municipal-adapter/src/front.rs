//! The front side (おもて面) of 住民票の写し, built from the register, and the rules
//! that decide whether a card holder may be issued one at a kiosk at all.
//!
//! 住民票コード and 個人番号 are never part of the front: the register this adapter
//! keeps does not even hold them.

use jiff::civil::Date;
use schemas::{CertificateKind, HouseholdScope, RefusalReason, ResidentRecordFront, ResidentRow};

use crate::register::{Household, Resident, ResidentStatus};
use crate::wareki::{format_wareki, WarekiError};

pub const TITLE_RESIDENT_RECORD: &str = "住民票の写し";
/// 認証文 for 世帯全員.
pub const CERTIFICATION_HOUSEHOLD: &str =
    "この写しは、世帯全員の住民票の原本と相違ないことを証明する。";
/// 認証文 for 本人のみ (and any partial selection of the household).
pub const CERTIFICATION_SELF: &str = "この写しは、住民票の原本と相違ないことを証明する。";
/// Residents younger than this cannot use the kiosk service.
pub const MINIMUM_AGE_YEARS: i16 = 15;

/// The issuing municipality as printed on the front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontIssuer {
    pub municipality_name: String,
    pub mayor_title: String,
    pub mayor_name: String,
}

/// The options of 住民票の写し the resident chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontOptions {
    pub scope: HouseholdScope,
    /// 本籍・筆頭者.
    pub include_domicile: bool,
    /// 世帯主・続柄.
    pub include_relationship: bool,
}

impl FrontOptions {
    pub fn from_kind(kind: &CertificateKind) -> Self {
        match *kind {
            CertificateKind::ResidentRecord {
                scope,
                include_domicile,
                include_relationship,
            } => Self {
                scope,
                include_domicile,
                include_relationship,
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrontError {
    #[error("resident {0}: {1}")]
    Wareki(String, WarekiError),
    #[error("household {0} has no current member to print")]
    EmptyHousehold(String),
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

/// Why `holder` may not get this certificate at a kiosk, if anything. Checked in the
/// order a counter clerk would: record status, 支援措置, age, day of moving in.
pub fn refusal(
    household: &Household,
    holder: &Resident,
    scope: HouseholdScope,
    today: Date,
) -> Option<RefusalReason> {
    match holder.status {
        ResidentStatus::Active => {}
        ResidentStatus::MovingOut | ResidentStatus::MovedOut => {
            return Some(RefusalReason::MovedOut)
        }
        ResidentStatus::Deceased => return Some(RefusalReason::Deceased),
        ResidentStatus::Erased => return Some(RefusalReason::ErasedRecord),
    }
    // A household copy would print every current member, so a protected member
    // anywhere in it refuses the whole copy.
    let protected = match scope {
        HouseholdScope::SelfOnly => holder.support_measures,
        HouseholdScope::Household => household
            .members
            .iter()
            .any(|m| m.status.is_current() && m.support_measures),
    };
    if protected {
        return Some(RefusalReason::SupportMeasures);
    }
    if reaches_age_on(holder.birth_date, MINIMUM_AGE_YEARS) > today {
        return Some(RefusalReason::Under15);
    }
    // The register of the day of moving in may still change at the counter.
    if holder.became_resident_on == today {
        return Some(RefusalReason::MovingInDay);
    }
    None
}

/// The members printed for `scope`, in register order.
pub fn printed_members<'a>(
    household: &'a Household,
    holder: &'a Resident,
    scope: HouseholdScope,
) -> Vec<&'a Resident> {
    match scope {
        HouseholdScope::SelfOnly => vec![holder],
        HouseholdScope::Household => household
            .members
            .iter()
            .filter(|m| m.status.is_current())
            .collect(),
    }
}

fn wareki(resident: &Resident, day: Date) -> Result<String, FrontError> {
    format_wareki(day).map_err(|e| FrontError::Wareki(resident.resident_id.clone(), e))
}

/// Builds the front of 住民票の写し for `holder` with `options`, issued on `issue_date`
/// (Asia/Tokyo).
pub fn build_resident_record(
    issuer: &FrontIssuer,
    household: &Household,
    holder: &Resident,
    options: FrontOptions,
    issue_date: Date,
) -> Result<ResidentRecordFront, FrontError> {
    let members = printed_members(household, holder, options.scope);
    if members.is_empty() {
        return Err(FrontError::EmptyHousehold(household.household_id.clone()));
    }
    let rows = members
        .iter()
        .map(|member| {
            Ok(ResidentRow {
                name: member.name.clone(),
                name_kana: member.name_kana.clone(),
                birth_date_wareki: wareki(member, member.birth_date)?,
                sex: member.sex.printed().to_owned(),
                relationship: options
                    .include_relationship
                    .then(|| member.relationship.clone()),
                became_resident_on_wareki: wareki(member, member.became_resident_on)?,
                previous_address: member.previous_address.clone(),
                domicile: options
                    .include_domicile
                    .then(|| member.domicile.clone())
                    .flatten(),
                domicile_head: options
                    .include_domicile
                    .then(|| member.domicile_head.clone())
                    .flatten(),
                remarks: member.remarks.clone(),
            })
        })
        .collect::<Result<Vec<_>, FrontError>>()?;
    let certification = match options.scope {
        HouseholdScope::Household => CERTIFICATION_HOUSEHOLD,
        HouseholdScope::SelfOnly => CERTIFICATION_SELF,
    };
    Ok(ResidentRecordFront {
        title: TITLE_RESIDENT_RECORD.to_owned(),
        municipality_name: issuer.municipality_name.clone(),
        address: household.address.clone(),
        household_head: if options.include_relationship {
            household.head().map(|head| head.name.clone())
        } else {
            None
        },
        members: rows,
        certification: certification.to_owned(),
        issue_date_wareki: format_wareki(issue_date)
            .map_err(|e| FrontError::Wareki("(issue date)".into(), e))?,
        mayor_title: issuer.mayor_title.clone(),
        mayor_name: issuer.mayor_name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::Sex;
    use jiff::civil::date;

    fn resident(id: &str, relationship: &str, birth: Date) -> Resident {
        Resident {
            resident_id: id.into(),
            name: format!("名 {id}"),
            name_kana: "な".into(),
            birth_date: birth,
            sex: Sex::Female,
            relationship: relationship.into(),
            became_resident_on: date(2010, 4, 1),
            previous_address: None,
            domicile: Some("岐阜県美濃加茂市太田町1番地".into()),
            domicile_head: Some("名 R1".into()),
            remarks: vec![],
            status: ResidentStatus::Active,
            support_measures: false,
        }
    }

    fn household() -> Household {
        let mut child = resident("R3", "子", date(2015, 6, 1));
        child.domicile = None;
        child.domicile_head = None;
        let mut gone = resident("R4", "子", date(1999, 6, 1));
        gone.status = ResidentStatus::MovedOut;
        Household {
            household_id: "H1".into(),
            address: "岐阜県美濃加茂市太田町1番地".into(),
            members: vec![
                resident("R1", "世帯主", date(1970, 1, 1)),
                resident("R2", "妻", date(1972, 2, 29)),
                child,
                gone,
            ],
        }
    }

    fn issuer() -> FrontIssuer {
        FrontIssuer {
            municipality_name: "美濃加茂市".into(),
            mayor_title: "美濃加茂市長".into(),
            mayor_name: "藤井 浩人".into(),
        }
    }

    #[test]
    fn age_follows_the_law() {
        assert_eq!(reaches_age_on(date(2000, 4, 12), 15), date(2015, 4, 12));
        assert_eq!(reaches_age_on(date(2008, 2, 29), 15), date(2023, 3, 1));
        assert_eq!(reaches_age_on(date(2008, 2, 29), 16), date(2024, 2, 29));
    }

    #[test]
    fn options_shape_the_front() {
        let h = household();
        let holder = &h.members[0];
        let all = FrontOptions {
            scope: HouseholdScope::Household,
            include_domicile: true,
            include_relationship: true,
        };
        let front = build_resident_record(&issuer(), &h, holder, all, date(2026, 11, 23)).unwrap();
        assert_eq!(
            front.members.len(),
            3,
            "the moved-out member is not printed"
        );
        assert_eq!(front.household_head.as_deref(), Some("名 R1"));
        assert_eq!(front.members[1].relationship.as_deref(), Some("妻"));
        assert_eq!(front.members[1].birth_date_wareki, "昭和47年2月29日");
        assert!(front.members[0].domicile.is_some());
        assert_eq!(front.certification, CERTIFICATION_HOUSEHOLD);
        assert_eq!(front.issue_date_wareki, "令和8年11月23日");

        let bare = FrontOptions {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        };
        let front =
            build_resident_record(&issuer(), &h, &h.members[1], bare, date(2026, 11, 23)).unwrap();
        assert_eq!(front.members.len(), 1);
        assert_eq!(front.members[0].name, "名 R2");
        assert_eq!(front.household_head, None);
        assert_eq!(front.members[0].relationship, None);
        assert_eq!(front.members[0].domicile, None);
        assert_eq!(front.members[0].domicile_head, None);
        assert_eq!(front.certification, CERTIFICATION_SELF);
    }

    #[test]
    fn refusals() {
        let today = date(2026, 11, 23);
        let mut h = household();
        assert_eq!(
            refusal(&h, &h.members[0], HouseholdScope::Household, today),
            None
        );
        assert_eq!(
            refusal(&h, &h.members[2], HouseholdScope::SelfOnly, today),
            Some(RefusalReason::Under15)
        );
        assert_eq!(
            refusal(&h, &h.members[3], HouseholdScope::SelfOnly, today),
            Some(RefusalReason::MovedOut)
        );
        h.members[2].support_measures = true;
        assert_eq!(
            refusal(&h, &h.members[0], HouseholdScope::Household, today),
            Some(RefusalReason::SupportMeasures)
        );
        assert_eq!(
            refusal(&h, &h.members[0], HouseholdScope::SelfOnly, today),
            None
        );
        h.members[0].became_resident_on = today;
        assert_eq!(
            refusal(&h, &h.members[0], HouseholdScope::SelfOnly, today),
            Some(RefusalReason::MovingInDay)
        );
        h.members[0].status = ResidentStatus::Deceased;
        assert_eq!(
            refusal(&h, &h.members[0], HouseholdScope::SelfOnly, today),
            Some(RefusalReason::Deceased)
        );
    }
}
