//! The signed seals (うら面): one [`schemas::SignedSeal`] per front page.
//!
//! The number of pages is the contract's one pagination rule,
//! [`FrontSide::page_count`]; every page gets its own seal, signed with the
//! municipality's key, carrying the type's stable document number
//! ([`schemas::CertificateType::seal_doc_type`]), page i/n, the card holder's name and
//! date of birth, the address for the residence types (never for 戸籍 types, and never
//! the 本籍), the 登録番号 for 印鑑登録証明書, and the SHA-256 of the canonical front
//! data (the whole front, so that a page cannot be swapped in from another document).
//! The seal serial is the center's request id, the same id the center prints on every
//! page.

use jiff::civil::Date;
use schemas::{
    CertificateType, FrontSide, KeyPair, MunicipalityCode, RequestId, SealPayload, SignedSeal,
    SigningError,
};

/// How long a relying party may verify a seal after issue.
pub const SEAL_VALIDITY_DAYS: u64 = 365;
const SECONDS_PER_DAY: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum SealBuildError {
    #[error("the front needs {0} pages, more than a seal can number (255)")]
    TooManyPages(usize),
    #[error("the front cannot be digested: {0}")]
    Digest(#[from] SigningError),
    #[error("date of birth {0} cannot be written as yyyymmdd")]
    BirthDate(Date),
}

/// The card holder as the seals name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealSubject {
    pub name: String,
    pub birth_date: Date,
    /// 住所 for the residence types; `None` for 戸籍 types.
    pub address: Option<String>,
    /// 登録番号, for 印鑑登録証明書 only.
    pub seal_registration_number: Option<String>,
}

/// `1978-04-12` → `19780412`.
pub fn birth_date_number(day: Date) -> Result<u32, SealBuildError> {
    let year = u32::try_from(day.year()).map_err(|_| SealBuildError::BirthDate(day))?;
    let month = u32::try_from(day.month()).map_err(|_| SealBuildError::BirthDate(day))?;
    let dom = u32::try_from(day.day()).map_err(|_| SealBuildError::BirthDate(day))?;
    Ok(year * 10_000 + month * 100 + dom)
}

/// The seal payloads for `front` of `certificate` (one per page), not yet signed.
pub fn seal_payloads(
    certificate: CertificateType,
    issuer: MunicipalityCode,
    serial: RequestId,
    subject: &SealSubject,
    front: &FrontSide,
    issued_at_unix_s: u64,
) -> Result<Vec<SealPayload>, SealBuildError> {
    let pages = front.page_count();
    let page_count = u8::try_from(pages).map_err(|_| SealBuildError::TooManyPages(pages))?;
    let front_digest = front.digest()?.0;
    let birth_date = birth_date_number(subject.birth_date)?;
    let address = if certificate.is_family_register() {
        None
    } else {
        subject.address.clone()
    };
    let seal_registration_number = if certificate == CertificateType::SealRegistration {
        subject.seal_registration_number.clone()
    } else {
        None
    };
    Ok((1..=page_count)
        .map(|page| SealPayload {
            doc_type: certificate.seal_doc_type(),
            issuer,
            serial,
            issued_at_unix_s,
            verify_until_unix_s: issued_at_unix_s
                .saturating_add(SEAL_VALIDITY_DAYS * SECONDS_PER_DAY),
            page,
            page_count,
            name: subject.name.clone(),
            birth_date,
            address: address.clone(),
            seal_registration_number: seal_registration_number.clone(),
            front_digest,
        })
        .collect())
}

/// Signs one seal per front page and returns their QR texts (`KC1:…`).
pub fn build_seals(
    certificate: CertificateType,
    issuer: MunicipalityCode,
    serial: RequestId,
    subject: &SealSubject,
    front: &FrontSide,
    issued_at_unix_s: u64,
    key: &KeyPair,
) -> Result<Vec<String>, SealBuildError> {
    Ok(seal_payloads(
        certificate,
        issuer,
        serial,
        subject,
        front,
        issued_at_unix_s,
    )?
    .iter()
    .map(|payload| SignedSeal::sign(payload, key).to_qr_text())
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates() {
        assert_eq!(
            birth_date_number(jiff::civil::date(1978, 4, 12)).unwrap(),
            19_780_412
        );
    }
}
