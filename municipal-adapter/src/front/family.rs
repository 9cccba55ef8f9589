//! 戸籍全部事項証明書, 戸籍個人事項証明書 and 戸籍の附票の写し.

use jiff::civil::Date;
use schemas::{
    AttachmentAddress, FamilyRegisterAttachmentFront, FamilyRegisterFront,
    FamilyRegisterPerson as PrintedPerson, RegisterEvent,
};

use super::{wareki, FrontError, FrontIssuer};
use crate::register::{FamilyRegister, FamilyRegisterPerson};

pub const TITLE_FAMILY_REGISTER_ALL: &str = "戸籍全部事項証明書";
pub const TITLE_FAMILY_REGISTER_INDIVIDUAL: &str = "戸籍個人事項証明書";
pub const TITLE_FAMILY_REGISTER_ATTACHMENT: &str = "戸籍の附票の写し";
pub const CERTIFICATION_FAMILY_REGISTER_ALL: &str =
    "これは、戸籍に記録されている事項の全部を証明した書面である。";
pub const CERTIFICATION_FAMILY_REGISTER_INDIVIDUAL: &str =
    "これは、戸籍中の一部の者について記録されている事項を証明した書面である。";
pub const CERTIFICATION_FAMILY_REGISTER_ATTACHMENT: &str =
    "この写しは、戸籍の附票の原本と相違ないことを証明する。";

fn printed_person(person: &FamilyRegisterPerson) -> Result<PrintedPerson, FrontError> {
    let events = person
        .events
        .iter()
        .map(|event| {
            // 【出生日】令和…, then the detail (【出生地】…) when there is one.
            let mut lines = vec![format!(
                "【{}日】{}",
                event.label,
                wareki(&person.person_id, event.date)?
            )];
            if !event.detail.trim().is_empty() {
                lines.push(event.detail.clone());
            }
            Ok(RegisterEvent {
                label: event.label.clone(),
                lines,
            })
        })
        .collect::<Result<Vec<_>, FrontError>>()?;
    Ok(PrintedPerson {
        name: person.name.clone(),
        birth_date_wareki: wareki(&person.person_id, person.birth_date)?,
        father: person.father.clone(),
        mother: person.mother.clone(),
        relationship: person.relationship.clone(),
        sex: person.sex.printed().to_owned(),
        removed: person.removed,
        events,
    })
}

/// 戸籍全部事項証明書 (`individual == false`: every person) or 戸籍個人事項証明書 (only
/// `person`).
pub fn build_family_register(
    issuer: &FrontIssuer,
    register: &FamilyRegister,
    person: &FamilyRegisterPerson,
    individual: bool,
    issue_date: Date,
) -> Result<FamilyRegisterFront, FrontError> {
    let persons = if individual {
        vec![printed_person(person)?]
    } else {
        register
            .persons
            .iter()
            .map(printed_person)
            .collect::<Result<Vec<_>, _>>()?
    };
    let (title, certification) = if individual {
        (
            TITLE_FAMILY_REGISTER_INDIVIDUAL,
            CERTIFICATION_FAMILY_REGISTER_INDIVIDUAL,
        )
    } else {
        (TITLE_FAMILY_REGISTER_ALL, CERTIFICATION_FAMILY_REGISTER_ALL)
    };
    Ok(FamilyRegisterFront {
        title: title.to_owned(),
        individual,
        domicile: register.domicile.clone(),
        head_name: register.head_name.clone(),
        register_events: vec![RegisterEvent {
            label: "戸籍編製".to_owned(),
            lines: vec![format!(
                "【編製日】{}",
                wareki(&register.family_register_id, register.created_on)?
            )],
        }],
        persons,
        attestation: issuer.attestation(certification, issue_date)?,
    })
}

/// 戸籍の附票の写し of `person`; 本籍・筆頭者 only when `include_domicile`.
pub fn build_attachment(
    issuer: &FrontIssuer,
    register: &FamilyRegister,
    person: &FamilyRegisterPerson,
    include_domicile: bool,
    issue_date: Date,
) -> Result<FamilyRegisterAttachmentFront, FrontError> {
    Ok(FamilyRegisterAttachmentFront {
        title: TITLE_FAMILY_REGISTER_ATTACHMENT.to_owned(),
        domicile: include_domicile.then(|| register.domicile.clone()),
        head_name: include_domicile.then(|| register.head_name.clone()),
        name: person.name.clone(),
        birth_date_wareki: wareki(&person.person_id, person.birth_date)?,
        addresses: person
            .addresses
            .iter()
            .map(|entry| {
                Ok(AttachmentAddress {
                    address: entry.address.clone(),
                    since_wareki: wareki(&person.person_id, entry.since)?,
                })
            })
            .collect::<Result<Vec<_>, FrontError>>()?,
        attestation: issuer.attestation(CERTIFICATION_FAMILY_REGISTER_ATTACHMENT, issue_date)?,
    })
}
