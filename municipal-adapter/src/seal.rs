//! The signed seals (うら面): one [`schemas::SignedSeal`] per front page.
//!
//! A 住民票の写し prints [`schemas::RESIDENT_ROWS_PER_PAGE`] members per front page; a
//! longer household paginates, and every page gets its own seal, signed with the
//! municipality's key, carrying page i/n, the card holder's name, date of birth and
//! address, and the SHA-256 of the canonical front data (the whole front, so that a
//! page cannot be swapped in from another document). The seal serial is the center's
//! request id, the same id the center prints on every page.

use jiff::civil::Date;
use schemas::seal::DOC_RESIDENT_RECORD;
use schemas::{
    FrontSide, KeyPair, MunicipalityCode, RequestId, SealPayload, SignedSeal, SigningError,
    RESIDENT_ROWS_PER_PAGE,
};

/// How long a relying party may verify a seal after issue.
pub const SEAL_VALIDITY_DAYS: u64 = 365;
const SECONDS_PER_DAY: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum SealBuildError {
    #[error("{0} rows need more front pages than a seal can number (255)")]
    TooManyPages(usize),
    #[error("the front cannot be digested: {0}")]
    Digest(#[from] SigningError),
    #[error("date of birth {0} cannot be written as yyyymmdd")]
    BirthDate(Date),
}

/// The card holder as the seal names them.
#[derive(Clone, Copy, Debug)]
pub struct SealSubject<'a> {
    pub name: &'a str,
    pub birth_date: Date,
    pub address: &'a str,
}

/// Front pages for `rows` printed rows: at least one, [`RESIDENT_ROWS_PER_PAGE`] each.
pub fn page_count(rows: usize) -> Result<u8, SealBuildError> {
    let pages = rows.div_ceil(RESIDENT_ROWS_PER_PAGE).max(1);
    u8::try_from(pages).map_err(|_| SealBuildError::TooManyPages(rows))
}

/// Rows printed on the front (what paginates).
pub fn front_rows(front: &FrontSide) -> usize {
    match front {
        FrontSide::ResidentRecord(record) => record.members.len(),
    }
}

/// `1978-04-12` → `19780412`.
pub fn birth_date_number(day: Date) -> Result<u32, SealBuildError> {
    let year = u32::try_from(day.year()).map_err(|_| SealBuildError::BirthDate(day))?;
    let month = u32::try_from(day.month()).map_err(|_| SealBuildError::BirthDate(day))?;
    let dom = u32::try_from(day.day()).map_err(|_| SealBuildError::BirthDate(day))?;
    Ok(year * 10_000 + month * 100 + dom)
}

/// The seal payloads for `front` (one per page), not yet signed.
pub fn seal_payloads(
    issuer: MunicipalityCode,
    serial: RequestId,
    subject: SealSubject<'_>,
    front: &FrontSide,
    issued_at_unix_s: u64,
) -> Result<Vec<SealPayload>, SealBuildError> {
    let page_count = page_count(front_rows(front))?;
    let front_digest = front.digest()?.0;
    let birth_date = birth_date_number(subject.birth_date)?;
    Ok((1..=page_count)
        .map(|page| SealPayload {
            doc_type: DOC_RESIDENT_RECORD,
            issuer,
            serial,
            issued_at_unix_s,
            verify_until_unix_s: issued_at_unix_s
                .saturating_add(SEAL_VALIDITY_DAYS * SECONDS_PER_DAY),
            page,
            page_count,
            name: subject.name.to_owned(),
            birth_date,
            address: subject.address.to_owned(),
            front_digest,
        })
        .collect())
}

/// Signs one seal per front page and returns their QR texts (`KC1:…`).
pub fn build_seals(
    issuer: MunicipalityCode,
    serial: RequestId,
    subject: SealSubject<'_>,
    front: &FrontSide,
    issued_at_unix_s: u64,
    key: &KeyPair,
) -> Result<Vec<String>, SealBuildError> {
    Ok(
        seal_payloads(issuer, serial, subject, front, issued_at_unix_s)?
            .iter()
            .map(|payload| SignedSeal::sign(payload, key).to_qr_text())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination() {
        assert_eq!(page_count(0).unwrap(), 1);
        assert_eq!(page_count(1).unwrap(), 1);
        assert_eq!(page_count(RESIDENT_ROWS_PER_PAGE).unwrap(), 1);
        assert_eq!(page_count(RESIDENT_ROWS_PER_PAGE + 1).unwrap(), 2);
        assert!(page_count(RESIDENT_ROWS_PER_PAGE * 256).is_err());
    }

    #[test]
    fn birth_dates() {
        assert_eq!(
            birth_date_number(jiff::civil::date(1978, 4, 12)).unwrap(),
            19_780_412
        );
    }
}
