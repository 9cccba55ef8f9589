//! 印鑑登録証明書: the registered impression (印影) with its 登録番号 and holder.

use jiff::civil::Date;
use schemas::b64::Base64Bytes;
use schemas::SealRegistrationFront;

use super::{wareki, FrontError, FrontIssuer};
use crate::register::{Household, Resident, SealRegistration};

pub const TITLE_SEAL_REGISTRATION: &str = "印鑑登録証明書";
pub const CERTIFICATION_SEAL_REGISTRATION: &str =
    "上記の印影は、登録されている印鑑と相違ないことを証明します。";

/// The front for `holder`'s active `registration`.
pub fn build_seal_registration(
    issuer: &FrontIssuer,
    household: &Household,
    holder: &Resident,
    registration: &SealRegistration,
    issue_date: Date,
) -> Result<SealRegistrationFront, FrontError> {
    Ok(SealRegistrationFront {
        title: TITLE_SEAL_REGISTRATION.to_owned(),
        registration_number: registration.registration_number.clone(),
        seal_impression_png: Base64Bytes(registration.impression_png.clone()),
        name: holder.name.clone(),
        name_kana: holder.name_kana.clone(),
        birth_date_wareki: wareki(&holder.resident_id, holder.birth_date)?,
        sex: holder.sex.printed().to_owned(),
        address: household.address.clone(),
        registered_on_wareki: wareki("registered_on", registration.registered_on)?,
        attestation: issuer.attestation(CERTIFICATION_SEAL_REGISTRATION, issue_date)?,
    })
}
