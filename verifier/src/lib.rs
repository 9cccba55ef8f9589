//! Verification of a printed certificate's seal (うら面の封印, the back side's signed QR)
//! against the center's signed trust list, as any relying party runs it (DESIGN.md §5).
//!
//! [`verify_seal`] is pure: the caller supplies the QR text exactly as scanned, the trust
//! list, the center's public key (configured out of band) and the clock. The answer is
//! a [`Verification`]: VALID, INVALID or UNKNOWN with one stable [`Reason`] code, and the
//! signed fields when the signature verified, so a person can compare them with the
//! front.
//!
//! Order of the checks (the first failure decides):
//!
//! 1. the trust list: its bounds ([`MAX_TRUSTED_KEYS`], [`MAX_REVOKED_DOCUMENTS`]),
//!    the center's signature, its `format`, and its consistency (every kid is the kid
//!    of its key, no kid twice) — UNKNOWN `trust_list_invalid`; then its freshness —
//!    UNKNOWN `trust_list_stale`. Without a trusted, fresh list nothing is decided;
//! 2. the seal's strict decoding ([`SignedSeal::from_qr_text`]) — INVALID with the
//!    decoder's reason;
//! 3. the rules of [`schemas::trust_list`], in the order of its module documentation.

pub mod document;
mod fast;
mod pdf;
mod pdf_text;
pub mod scan;

pub use document::{verify_input, DocumentVerification, Input, InputKind, SealCheck};
pub use fast::verify_pdf_fast;

use schemas::seal::SealError;
use schemas::{
    sha256, CertificateType, Digest32, KeyStatus, Kid, MunicipalityCode, PublicKey, RequestId,
    SealPayload, SignedSeal, SignedTrustList, TrustList, TrustedKey, MAX_REVOKED_DOCUMENTS,
    MAX_TRUSTED_KEYS, TRUST_LIST_FORMAT,
};
use serde::{Serialize, Serializer};
use std::collections::HashSet;

/// The three answers a relying party sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// 有効: signed by a key the center trusts for that municipality, in its period.
    Valid,
    /// 無効: forged, altered, malformed, expired or revoked.
    Invalid,
    /// 判定不能: no trusted, fresh trust list, so no decision either way.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::Invalid => "INVALID",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the verdict is what it is. The snake_case codes of [`Reason::as_str`] are stable:
/// scripts and the web page match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Ok,
    TrustListInvalid,
    TrustListStale,
    Prefix,
    Base45,
    Cbor,
    TrailingBytes,
    NonCanonical,
    DuplicateKey,
    UnknownField,
    Field,
    Algorithm,
    Version,
    UnknownKid,
    WrongMunicipality,
    BadSignature,
    KeyNotValidAtIssue,
    Expired,
    KeyRevoked,
    DocumentRevoked,
    TooLong,
    /// The seal says it was issued later than now (beyond [`CLOCK_SKEW_S`]).
    IssuedInFuture,
    /// The input could not be read at all (not a PDF, PNG or JPEG; no QR code found in
    /// an image; a damaged PDF): nothing was decided.
    Unreadable,
    /// A page of a PDF carries no readable seal.
    NoSeal,
    /// The seals or pages do not make up one document in order: a page from another
    /// certificate, pages reordered or missing, a page's request id that is not its
    /// seal's serial.
    PageMismatch,
    /// The front data carried by the PDF is missing or is not what the seal signed.
    FrontDigestMismatch,
    /// The printed front does not show the signed name, date of birth or address.
    FrontTextMismatch,
}

/// Tolerated difference between the issuer's clock and the verifier's (a seal issued
/// "in the future" by less than this is accepted).
pub const CLOCK_SKEW_S: i64 = 300;

impl Reason {
    pub const ALL: [Self; 27] = [
        Self::Ok,
        Self::TrustListInvalid,
        Self::TrustListStale,
        Self::Prefix,
        Self::Base45,
        Self::Cbor,
        Self::TrailingBytes,
        Self::NonCanonical,
        Self::DuplicateKey,
        Self::UnknownField,
        Self::Field,
        Self::Algorithm,
        Self::Version,
        Self::UnknownKid,
        Self::WrongMunicipality,
        Self::BadSignature,
        Self::KeyNotValidAtIssue,
        Self::Expired,
        Self::KeyRevoked,
        Self::DocumentRevoked,
        Self::TooLong,
        Self::IssuedInFuture,
        Self::Unreadable,
        Self::NoSeal,
        Self::PageMismatch,
        Self::FrontDigestMismatch,
        Self::FrontTextMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::TrustListInvalid => "trust_list_invalid",
            Self::TrustListStale => "trust_list_stale",
            Self::Prefix => "prefix",
            Self::Base45 => "base45",
            Self::Cbor => "cbor",
            Self::TrailingBytes => "trailing_bytes",
            Self::NonCanonical => "non_canonical",
            Self::DuplicateKey => "duplicate_key",
            Self::UnknownField => "unknown_field",
            Self::Field => "field",
            Self::Algorithm => "algorithm",
            Self::Version => "version",
            Self::UnknownKid => "unknown_kid",
            Self::WrongMunicipality => "wrong_municipality",
            Self::BadSignature => "bad_signature",
            Self::KeyNotValidAtIssue => "key_not_valid_at_issue",
            Self::Expired => "expired",
            Self::KeyRevoked => "key_revoked",
            Self::DocumentRevoked => "document_revoked",
            Self::TooLong => "too_long",
            Self::IssuedInFuture => "issued_in_future",
            Self::Unreadable => "unreadable",
            Self::NoSeal => "no_seal",
            Self::PageMismatch => "page_mismatch",
            Self::FrontDigestMismatch => "front_digest_mismatch",
            Self::FrontTextMismatch => "front_text_mismatch",
        }
    }

    /// The verdict a reason implies; [`Verification`] never pairs them otherwise.
    pub fn verdict(self) -> Verdict {
        match self {
            Self::Ok => Verdict::Valid,
            Self::TrustListInvalid | Self::TrustListStale | Self::Unreadable => Verdict::Unknown,
            _ => Verdict::Invalid,
        }
    }
}

impl From<&SealError> for Reason {
    fn from(error: &SealError) -> Self {
        match error {
            SealError::TooLong => Self::TooLong,
            SealError::Prefix => Self::Prefix,
            SealError::Base45 => Self::Base45,
            SealError::Cbor(_) => Self::Cbor,
            SealError::TrailingBytes => Self::TrailingBytes,
            SealError::NonCanonical => Self::NonCanonical,
            SealError::DuplicateKey => Self::DuplicateKey,
            SealError::Field(_) => Self::Field,
            SealError::UnknownField(_) => Self::UnknownField,
            SealError::Algorithm => Self::Algorithm,
            SealError::Version(_) => Self::Version,
            SealError::BadSignature => Self::BadSignature,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The outcome of one verification (also the `--json` output of the command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The signed fields, present only when the signature verified under a key the
    /// trust list binds to the seal's issuer (so never for a forged or altered seal).
    #[serde(serialize_with = "serialize_fields")]
    pub fields: Option<SealPayload>,
    /// The seal's key id, once the seal decoded.
    pub kid: Option<Kid>,
    /// Version of the trust list used, once its signature verified.
    pub trust_list_version: Option<u64>,
    /// `now - issued_at` of that list, in seconds.
    pub trust_list_age_s: Option<i64>,
}

impl Verification {
    fn new(reason: Reason) -> Self {
        Self {
            verdict: reason.verdict(),
            reason,
            fields: None,
            kid: None,
            trust_list_version: None,
            trust_list_age_s: None,
        }
    }
}

/// Checks the trust list alone: bounds, the center's signature, format, consistency and
/// freshness. Returns the list when a seal may be judged against it; otherwise why not
/// (`trust_list_invalid` or `trust_list_stale`).
pub fn check_trust_list<'a>(
    list: &'a SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> Result<&'a TrustList, Reason> {
    // Bounds first: verifying the signature canonicalises the whole list.
    if list.payload.keys.len() > MAX_TRUSTED_KEYS
        || list.payload.revoked_documents.len() > MAX_REVOKED_DOCUMENTS
    {
        return Err(Reason::TrustListInvalid);
    }
    let trusted = list
        .verify(center_key)
        .map_err(|_| Reason::TrustListInvalid)?;
    if trusted.format != TRUST_LIST_FORMAT || !keys_are_consistent(&trusted.keys) {
        return Err(Reason::TrustListInvalid);
    }
    if trusted.issued_at_unix_s > now_unix_s.saturating_add(CLOCK_SKEW_S) {
        return Err(Reason::TrustListInvalid);
    }
    if now_unix_s > trusted.next_update_unix_s {
        return Err(Reason::TrustListStale);
    }
    Ok(trusted)
}

/// Every kid names its own key, and no kid is listed twice (which entry would decide?).
fn keys_are_consistent(keys: &[TrustedKey]) -> bool {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter()
        .all(|key| key.kid == Kid::of(&key.public_key) && seen.insert(key.kid))
}

/// Decides VALID / INVALID / UNKNOWN for one seal's QR text (see the crate docs for the
/// order of the checks). `text` is taken as scanned: no trimming, no case folding.
pub fn verify_seal(
    text: &str,
    list: &SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> Verification {
    let answer = |reason: Reason, kid: Option<Kid>, fields: Option<SealPayload>| Verification {
        verdict: reason.verdict(),
        reason,
        fields,
        kid,
        trust_list_version: Some(list.payload.version),
        trust_list_age_s: Some(now_unix_s.saturating_sub(list.payload.issued_at_unix_s)),
    };
    let trusted = match check_trust_list(list, center_key, now_unix_s) {
        Ok(trusted) => trusted,
        // Signed by the center but old: its version and age are worth showing.
        Err(Reason::TrustListStale) => return answer(Reason::TrustListStale, None, None),
        Err(reason) => return Verification::new(reason),
    };
    let seal = match SignedSeal::from_qr_text(text) {
        Ok(seal) => seal,
        Err(error) => return answer(Reason::from(&error), None, None),
    };
    let (reason, fields) = judge(&seal, trusted, now_unix_s);
    answer(reason, Some(seal.kid), fields)
}

/// The trust-list rules, in the order of [`schemas::trust_list`]'s documentation. The
/// fields come back whenever the signature verified (VALID, or INVALID for a later rule).
fn judge(seal: &SignedSeal, list: &TrustList, now_unix_s: i64) -> (Reason, Option<SealPayload>) {
    let Some(key) = list.keys.iter().find(|key| key.kid == seal.kid) else {
        return (Reason::UnknownKid, None);
    };
    // `from_qr_text` already decoded the payload, so this cannot fail on a decoded seal;
    // mapped anyway rather than unwrapped.
    let claimed = match seal.unverified_payload() {
        Ok(claimed) => claimed,
        Err(error) => return (Reason::from(&error), None),
    };
    if claimed.issuer != key.municipality_code {
        return (Reason::WrongMunicipality, None);
    }
    let Ok(payload) = seal.verify(&key.public_key) else {
        return (Reason::BadSignature, None);
    };
    // i128: seal times are u64, list times and the clock i64; no overflow either way.
    let issued_at = i128::from(payload.issued_at_unix_s);
    let now = i128::from(now_unix_s);
    let reason = if issued_at > now + i128::from(CLOCK_SKEW_S) {
        Reason::IssuedInFuture
    } else if issued_at < i128::from(key.not_before_unix_s)
        || issued_at > i128::from(key.usage_end_unix_s)
    {
        Reason::KeyNotValidAtIssue
    } else if now > i128::from(payload.verify_until_unix_s)
        || now > i128::from(key.verify_until_unix_s)
    {
        Reason::Expired
    } else if matches!(key.status, KeyStatus::Revoked { compromised_at_unix_s }
        if i128::from(compromised_at_unix_s) <= issued_at)
    {
        Reason::KeyRevoked
    } else if is_document_revoked(list, &payload.serial) {
        Reason::DocumentRevoked
    } else {
        Reason::Ok
    };
    (reason, Some(payload))
}

fn is_document_revoked(list: &TrustList, serial: &RequestId) -> bool {
    let digest = sha256(serial.as_bytes());
    list.revoked_documents
        .iter()
        .any(|revoked| revoked.serial_sha256.0 == digest)
}

/// The signed fields as JSON: codes and digests as strings, plus the certificate type's
/// stable wire name next to its number.
#[derive(Serialize)]
struct FieldsView<'a> {
    doc_type: u64,
    certificate_type: Option<CertificateType>,
    issuer: MunicipalityCode,
    serial: RequestId,
    issued_at_unix_s: u64,
    verify_until_unix_s: u64,
    page: u8,
    page_count: u8,
    name: &'a str,
    birth_date: u32,
    address: Option<&'a str>,
    seal_registration_number: Option<&'a str>,
    front_digest: Digest32,
}

pub(crate) fn serialize_fields<S: Serializer>(
    fields: &Option<SealPayload>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    fields
        .as_ref()
        .map(|p| FieldsView {
            doc_type: p.doc_type,
            certificate_type: CertificateType::from_seal_doc_type(p.doc_type),
            issuer: p.issuer,
            serial: p.serial,
            issued_at_unix_s: p.issued_at_unix_s,
            verify_until_unix_s: p.verify_until_unix_s,
            page: p.page,
            page_count: p.page_count,
            name: &p.name,
            birth_date: p.birth_date,
            address: p.address.as_deref(),
            seal_registration_number: p.seal_registration_number.as_deref(),
            front_digest: Digest32(p.front_digest),
        })
        .serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_unique_snake_case_and_imply_one_verdict() {
        let mut codes = HashSet::new();
        for reason in Reason::ALL {
            let code = reason.as_str();
            assert!(codes.insert(code), "{code} twice");
            assert!(code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            let expected = match code {
                "ok" => Verdict::Valid,
                c if c.starts_with("trust_list_") || c == "unreadable" => Verdict::Unknown,
                _ => Verdict::Invalid,
            };
            assert_eq!(reason.verdict(), expected, "{code}");
        }
        assert_eq!(codes.len(), Reason::ALL.len());
    }
}
