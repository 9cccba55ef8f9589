//! 住民票の写し and 住民票記載事項証明書.

use jiff::civil::Date;
use schemas::{
    HouseholdScope, ResidentItemsRow, ResidentRecordFront, ResidentRecordItemsFront, ResidentRow,
};

use super::{wareki, FrontError, FrontIssuer};
use crate::register::{Household, Resident};

pub const TITLE_RESIDENT_RECORD: &str = "住民票の写し";
pub const TITLE_RESIDENT_RECORD_ITEMS: &str = "住民票記載事項証明書";
/// 認証文 for 世帯全員.
pub const CERTIFICATION_HOUSEHOLD: &str =
    "この写しは、世帯全員の住民票の原本と相違ないことを証明する。";
/// 認証文 for 本人のみ and 世帯一部.
pub const CERTIFICATION_SELF: &str = "この写しは、住民票の原本と相違ないことを証明する。";
/// 認証文 of 住民票記載事項証明書.
pub const CERTIFICATION_ITEMS: &str =
    "上記の事項は、住民票に記載されている事項と相違ないことを証明する。";

/// The household's current members (世帯全員), in register order.
pub fn current_members(household: &Household) -> Vec<&Resident> {
    household
        .members
        .iter()
        .filter(|m| m.status.is_current())
        .collect()
}

/// The members printed for `scope`, in register order; `None` when a 世帯一部 position
/// is not a current member (positions are 1-based among [`current_members`]).
pub fn printed_members<'a>(
    household: &'a Household,
    holder: &'a Resident,
    scope: &HouseholdScope,
) -> Option<Vec<&'a Resident>> {
    match scope {
        HouseholdScope::SelfOnly => Some(vec![holder]),
        HouseholdScope::Household => Some(current_members(household)),
        HouseholdScope::Selected { members } => {
            let current = current_members(household);
            members
                .iter()
                .map(|&position| {
                    usize::from(position)
                        .checked_sub(1)
                        .and_then(|index| current.get(index).copied())
                })
                .collect()
        }
    }
}

fn head_name(household: &Household, include_relationship: bool) -> Option<String> {
    include_relationship
        .then(|| household.head().map(|head| head.name.clone()))
        .flatten()
}

/// 住民票の写し for `members` (already chosen by scope).
pub fn build_resident_record(
    issuer: &FrontIssuer,
    household: &Household,
    members: &[&Resident],
    scope: &HouseholdScope,
    include_domicile: bool,
    include_relationship: bool,
    issue_date: Date,
) -> Result<ResidentRecordFront, FrontError> {
    if members.is_empty() {
        return Err(FrontError::EmptyHousehold(household.household_id.clone()));
    }
    let rows = members
        .iter()
        .map(|member| {
            Ok(ResidentRow {
                name: member.name.clone(),
                name_kana: member.name_kana.clone(),
                birth_date_wareki: wareki(&member.resident_id, member.birth_date)?,
                sex: member.sex.printed().to_owned(),
                relationship: include_relationship.then(|| member.relationship.clone()),
                became_resident_on_wareki: wareki(&member.resident_id, member.became_resident_on)?,
                previous_address: member.previous_address.clone(),
                domicile: include_domicile.then(|| member.domicile.clone()).flatten(),
                domicile_head: include_domicile
                    .then(|| member.domicile_head.clone())
                    .flatten(),
                remarks: member.remarks.clone(),
            })
        })
        .collect::<Result<Vec<_>, FrontError>>()?;
    let certification = match scope {
        HouseholdScope::Household => CERTIFICATION_HOUSEHOLD,
        HouseholdScope::SelfOnly | HouseholdScope::Selected { .. } => CERTIFICATION_SELF,
    };
    Ok(ResidentRecordFront {
        title: TITLE_RESIDENT_RECORD.to_owned(),
        address: household.address.clone(),
        household_head: head_name(household, include_relationship),
        members: rows,
        attestation: issuer.attestation(certification, issue_date)?,
    })
}

/// 住民票記載事項証明書 for `members`: 氏名・ふりがな・生年月日・性別 (and 続柄).
pub fn build_resident_record_items(
    issuer: &FrontIssuer,
    household: &Household,
    members: &[&Resident],
    include_relationship: bool,
    issue_date: Date,
) -> Result<ResidentRecordItemsFront, FrontError> {
    if members.is_empty() {
        return Err(FrontError::EmptyHousehold(household.household_id.clone()));
    }
    let rows = members
        .iter()
        .map(|member| {
            Ok(ResidentItemsRow {
                name: member.name.clone(),
                name_kana: member.name_kana.clone(),
                birth_date_wareki: wareki(&member.resident_id, member.birth_date)?,
                sex: member.sex.printed().to_owned(),
                relationship: include_relationship.then(|| member.relationship.clone()),
            })
        })
        .collect::<Result<Vec<_>, FrontError>>()?;
    Ok(ResidentRecordItemsFront {
        title: TITLE_RESIDENT_RECORD_ITEMS.to_owned(),
        address: household.address.clone(),
        household_head: head_name(household, include_relationship),
        members: rows,
        attestation: issuer.attestation(CERTIFICATION_ITEMS, issue_date)?,
    })
}
