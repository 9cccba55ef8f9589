//! The binding guard (DESIGN.md §4): the municipality's answer must be signed by one
//! of its registered keys and bound to exactly this request and this card; every
//! seal must be signed by the municipality, name this request, cover exactly this
//! front data and document type, and number the pages 1..n. The answer must also
//! agree with the municipality's own catalogue: a front that fits the ordered type and
//! the catalogue's fee. Any mismatch and nothing is composed.
//!
//! Keys are the trust list's entries (DESIGN.md §5): the answer's key and every seal's
//! key must be allowed to sign at the moment of issuance (the center's `requested_at`)
//! and at the seal's own issue time, by the same rules a relying party's verifier
//! applies (`crate::trust_list::may_sign_at`): a document the center composes never
//! verifies INVALID `key_not_valid_at_issue` or `key_revoked`.

use schemas::seal::SignedSeal;
use schemas::{
    AnswerOutcome, CertificateAnswer, CertificateType, Digest32, FrontSide, MunicipalityCode,
    RefusalReason, RequestId, SignedCertificateAnswer,
};

use std::collections::HashMap;

use schemas::{Kid, TrustedKey};

use crate::trust_list::{may_sign_at, KeyUseError};

/// How far a seal's issue time may be after the center's `requested_at` (the skew a
/// verifier tolerates before `issued_in_future`).
pub const MAX_SEAL_CLOCK_SKEW_S: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("answer is not signed by a key registered for the municipality: {0}")]
    Signature(String),
    /// A registered key, but the trust list does not allow it to sign at the moment
    /// of issuance (not yet valid, usage ended, revoked).
    #[error("{what} signed by key {kid}, which may not sign at {at_unix_s}: {reason}")]
    KeyNotValid {
        what: String,
        kid: Kid,
        at_unix_s: i64,
        reason: KeyUseError,
    },
    #[error("binding mismatch: {0}")]
    Mismatch(String),
    /// The answer contradicts the municipality's catalogue (type or fee).
    #[error("answer contradicts the catalogue: {0}")]
    Catalogue(String),
}

impl GuardError {
    /// The key the error is about, for the alert.
    pub fn kid(&self) -> Option<Kid> {
        match self {
            Self::KeyNotValid { kid, .. } => Some(*kid),
            _ => None,
        }
    }
}

/// What the center expects the answer to be bound to.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    pub request_id: RequestId,
    pub municipality: MunicipalityCode,
    pub card_digest: Digest32,
    /// The ordered type: the front must fit it and every seal must name it.
    pub certificate: CertificateType,
    /// The catalogue's 手数料 for the type; the answer must state the same.
    pub fee_yen_per_copy: u32,
    /// The moment of issuance on the center's clock (the fetch's `requested_at`):
    /// every key must be allowed to sign then.
    pub requested_at_unix_s: i64,
}

// Lives for one request on the stack of its handler: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum VerifiedAnswer {
    Issued {
        fee_yen_per_copy: u32,
        front: FrontSide,
        seals: Vec<String>,
    },
    Refused {
        reason: RefusalReason,
    },
}

pub fn check_answer(
    expected: &Expected,
    answer: SignedCertificateAnswer,
    keys: &HashMap<Kid, TrustedKey>,
) -> Result<VerifiedAnswer, GuardError> {
    let key = keys
        .get(&answer.kid)
        .ok_or_else(|| GuardError::Signature(format!("unknown kid {}", answer.kid)))?;
    answer
        .verify(&key.public_key)
        .map_err(|e| GuardError::Signature(e.to_string()))?;
    // Signature first: a forgery is reported as one, not as a period matter.
    key_allowed(key, expected.requested_at_unix_s, "answer")?;
    let CertificateAnswer {
        request_id,
        municipality_code,
        card_digest,
        outcome,
        ..
    } = answer.payload;
    if request_id != expected.request_id {
        return Err(GuardError::Mismatch(format!(
            "answer is for request {request_id}, expected {}",
            expected.request_id
        )));
    }
    if municipality_code != expected.municipality {
        return Err(GuardError::Mismatch(format!(
            "answer is from municipality {municipality_code}, expected {}",
            expected.municipality
        )));
    }
    if card_digest != expected.card_digest {
        return Err(GuardError::Mismatch("card digest differs".into()));
    }
    match outcome {
        AnswerOutcome::Refused { reason } => Ok(VerifiedAnswer::Refused { reason }),
        AnswerOutcome::Issued {
            fee_yen_per_copy,
            front,
            seals,
        } => {
            if !front.fits(expected.certificate) {
                return Err(GuardError::Catalogue(format!(
                    "front is not a layout for {}",
                    expected.certificate
                )));
            }
            if fee_yen_per_copy != expected.fee_yen_per_copy {
                return Err(GuardError::Catalogue(format!(
                    "fee {fee_yen_per_copy} yen per copy, catalogue says {} yen",
                    expected.fee_yen_per_copy
                )));
            }
            front
                .validate()
                .map_err(|e| GuardError::Mismatch(format!("front data: {e}")))?;
            check_seals(expected, &front, &seals, keys)?;
            Ok(VerifiedAnswer::Issued {
                fee_yen_per_copy,
                front,
                seals,
            })
        }
    }
}

fn check_seals(
    expected: &Expected,
    front: &FrontSide,
    seals: &[String],
    keys: &HashMap<Kid, TrustedKey>,
) -> Result<(), GuardError> {
    let front_digest = front
        .digest()
        .map_err(|e| GuardError::Mismatch(format!("front data cannot be digested: {e}")))?;
    let count = seals.len();
    let pages = front.page_count();
    if count != pages || count > usize::from(u8::MAX) {
        return Err(GuardError::Mismatch(format!(
            "{count} seals for {pages} front pages"
        )));
    }
    for (index, text) in seals.iter().enumerate() {
        let seal = SignedSeal::from_qr_text(text)
            .map_err(|e| GuardError::Mismatch(format!("seal {}: {e}", index + 1)))?;
        let key = keys.get(&seal.kid).ok_or_else(|| {
            GuardError::Signature(format!("seal signed by unknown kid {}", seal.kid))
        })?;
        let payload = seal
            .verify(&key.public_key)
            .map_err(|e| GuardError::Signature(format!("seal {}: {e}", index + 1)))?;
        let what = format!("seal {}", index + 1);
        // Now (a key compromised since may not sign, whatever date it writes) and at
        // the seal's own date (what every verifier checks).
        key_allowed(key, expected.requested_at_unix_s, &what)?;
        let issued_at_unix_s = i64::try_from(payload.issued_at_unix_s)
            .map_err(|_| GuardError::Mismatch(format!("{what} issue time out of range")))?;
        if issued_at_unix_s
            > expected
                .requested_at_unix_s
                .saturating_add(MAX_SEAL_CLOCK_SKEW_S)
        {
            return Err(GuardError::Mismatch(format!(
                "{what} is issued at {issued_at_unix_s}, after the request ({})",
                expected.requested_at_unix_s
            )));
        }
        key_allowed(key, issued_at_unix_s, &what)?;
        if payload.serial != expected.request_id {
            return Err(GuardError::Mismatch(format!(
                "seal {} names request {}",
                index + 1,
                payload.serial
            )));
        }
        if payload.issuer != expected.municipality {
            return Err(GuardError::Mismatch(format!(
                "seal {} names another issuer",
                index + 1
            )));
        }
        if payload.doc_type != expected.certificate.seal_doc_type() {
            return Err(GuardError::Mismatch(format!(
                "seal {} names document type {}",
                index + 1,
                payload.doc_type
            )));
        }
        if payload.front_digest != front_digest.0 {
            return Err(GuardError::Mismatch(format!(
                "seal {} covers other front data",
                index + 1
            )));
        }
        if usize::from(payload.page) != index + 1 || usize::from(payload.page_count) != count {
            return Err(GuardError::Mismatch(format!(
                "seal {} is page {}/{} of {count}",
                index + 1,
                payload.page,
                payload.page_count
            )));
        }
    }
    Ok(())
}

fn key_allowed(key: &TrustedKey, at_unix_s: i64, what: &str) -> Result<(), GuardError> {
    may_sign_at(key, at_unix_s).map_err(|reason| GuardError::KeyNotValid {
        what: what.to_owned(),
        kid: key.kid,
        at_unix_s,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::seal::SealPayload;
    use schemas::{Attestation, KeyPair, KeyStatus, SealRegistrationFront, Signed};

    /// The instant of the sample request and its seals.
    const ISSUED_AT_UNIX_S: i64 = 1_800_000_000;

    fn trusted(key: &KeyPair, not_before: i64, usage_end: i64, status: KeyStatus) -> TrustedKey {
        TrustedKey {
            kid: key.kid(),
            public_key: key.public(),
            municipality_code: code(),
            not_before_unix_s: not_before,
            usage_end_unix_s: usage_end,
            verify_until_unix_s: usage_end.saturating_add(1_000_000),
            status,
        }
    }

    fn keys_of(entries: &[TrustedKey]) -> HashMap<Kid, TrustedKey> {
        entries.iter().map(|k| (k.kid, k.clone())).collect()
    }

    fn code() -> MunicipalityCode {
        "212113".parse().unwrap()
    }

    fn front() -> FrontSide {
        FrontSide::SealRegistration(SealRegistrationFront {
            title: "印鑑登録証明書".into(),
            registration_number: "123".into(),
            seal_impression_png: vec![1, 2, 3].into(),
            name: "見本 花子".into(),
            name_kana: "ミホン ハナコ".into(),
            birth_date_wareki: "平成2年1月1日".into(),
            sex: "女".into(),
            address: "岐阜県美濃加茂市太田町1番地".into(),
            registered_on_wareki: "令和元年5月1日".into(),
            attestation: Attestation {
                municipality_name: "美濃加茂市".into(),
                certification: "この写しは、登録されている印影と相違ないことを証明する。".into(),
                issue_date_wareki: "令和8年11月24日".into(),
                mayor_title: "美濃加茂市長".into(),
                mayor_name: "見本 太郎".into(),
            },
        })
    }

    fn seal(key: &KeyPair, expected: &Expected, front: &FrontSide, doc_type: u64) -> String {
        SignedSeal::sign(
            &SealPayload {
                doc_type,
                issuer: expected.municipality,
                serial: expected.request_id,
                issued_at_unix_s: ISSUED_AT_UNIX_S as u64,
                verify_until_unix_s: 1_900_000_000,
                page: 1,
                page_count: 1,
                name: "見本 花子".into(),
                birth_date: 19_900_101,
                address: None,
                seal_registration_number: Some("123".into()),
                front_digest: front.digest().unwrap().0,
            },
            key,
        )
        .to_qr_text()
    }

    fn expected(certificate: CertificateType) -> Expected {
        Expected {
            request_id: RequestId::new_random(),
            municipality: code(),
            card_digest: Digest32([3; 32]),
            certificate,
            fee_yen_per_copy: 300,
            requested_at_unix_s: ISSUED_AT_UNIX_S,
        }
    }

    fn answer(
        key: &KeyPair,
        expected: &Expected,
        fee_yen_per_copy: u32,
        seals: Vec<String>,
    ) -> SignedCertificateAnswer {
        Signed::sign(
            CertificateAnswer {
                request_id: expected.request_id,
                municipality_code: expected.municipality,
                card_digest: expected.card_digest,
                answered_at_unix_s: 1_800_000_000,
                outcome: AnswerOutcome::Issued {
                    fee_yen_per_copy,
                    front: front(),
                    seals,
                },
            },
            key,
        )
        .unwrap()
    }

    #[test]
    fn answer_checks_against_order_and_catalogue() {
        let key = KeyPair::generate();
        let keys = keys_of(&[trusted(&key, 0, i64::MAX, KeyStatus::Active)]);
        let good = expected(CertificateType::SealRegistration);
        let doc = CertificateType::SealRegistration.seal_doc_type();
        let seals = vec![seal(&key, &good, &front(), doc)];
        assert!(matches!(
            check_answer(&good, answer(&key, &good, 300, seals.clone()), &keys),
            Ok(VerifiedAnswer::Issued {
                fee_yen_per_copy: 300,
                ..
            })
        ));
        // A fee other than the catalogue's.
        assert!(matches!(
            check_answer(&good, answer(&key, &good, 350, seals.clone()), &keys),
            Err(GuardError::Catalogue(_))
        ));
        // A front that is not a layout for the ordered type.
        let other_type = Expected {
            certificate: CertificateType::IncomeTax,
            ..good
        };
        let seals_for_other = vec![seal(&key, &other_type, &front(), doc)];
        assert!(matches!(
            check_answer(
                &other_type,
                answer(&key, &other_type, 300, seals_for_other),
                &keys
            ),
            Err(GuardError::Catalogue(_))
        ));
        // A seal naming another document type.
        let wrong_doc = vec![seal(
            &key,
            &good,
            &front(),
            CertificateType::ResidentRecord.seal_doc_type(),
        )];
        assert!(matches!(
            check_answer(&good, answer(&key, &good, 300, wrong_doc), &keys),
            Err(GuardError::Mismatch(_))
        ));
        // One seal per front page, no more.
        let two = vec![seals[0].clone(), seals[0].clone()];
        assert!(matches!(
            check_answer(&good, answer(&key, &good, 300, two), &keys),
            Err(GuardError::Mismatch(_))
        ));
        assert!(matches!(
            check_answer(&good, answer(&key, &good, 300, vec![]), &keys),
            Err(GuardError::Mismatch(_))
        ));
    }

    #[test]
    fn keys_must_be_allowed_at_the_moment_of_issuance() {
        let key = KeyPair::generate();
        let good = expected(CertificateType::SealRegistration);
        let doc = CertificateType::SealRegistration.seal_doc_type();
        let signed = || answer(&key, &good, 300, vec![seal(&key, &good, &front(), doc)]);
        let t = ISSUED_AT_UNIX_S;
        // Inside the period, bounds included; revoked only from the compromise on.
        for entry in [
            trusted(&key, t, t, KeyStatus::Active),
            trusted(
                &key,
                0,
                i64::MAX,
                KeyStatus::Revoked {
                    compromised_at_unix_s: t + 1,
                },
            ),
        ] {
            assert!(matches!(
                check_answer(&good, signed(), &keys_of(&[entry])),
                Ok(VerifiedAnswer::Issued { .. })
            ));
        }
        let refused = [
            (
                trusted(&key, t + 1, i64::MAX, KeyStatus::Active),
                KeyUseError::NotYetValid {
                    not_before_unix_s: t + 1,
                },
            ),
            (
                trusted(&key, 0, t - 1, KeyStatus::Active),
                KeyUseError::UsageEnded {
                    usage_end_unix_s: t - 1,
                },
            ),
            (
                trusted(
                    &key,
                    0,
                    i64::MAX,
                    KeyStatus::Revoked {
                        compromised_at_unix_s: t,
                    },
                ),
                KeyUseError::Revoked {
                    compromised_at_unix_s: t,
                },
            ),
        ];
        for (entry, why) in refused {
            match check_answer(&good, signed(), &keys_of(&[entry])) {
                Err(error @ GuardError::KeyNotValid { reason, .. }) => {
                    assert_eq!(reason, why);
                    assert_eq!(error.kid(), Some(key.kid()));
                }
                other => panic!("{why}: {other:?}"),
            }
        }

        // The answer under a valid key, its seal under one whose usage ended: refused
        // for the seal.
        let old = KeyPair::generate();
        let keys = keys_of(&[
            trusted(&key, 0, i64::MAX, KeyStatus::Active),
            trusted(&old, 0, t - 1, KeyStatus::Active),
        ]);
        let mixed = answer(&key, &good, 300, vec![seal(&old, &good, &front(), doc)]);
        match check_answer(&good, mixed, &keys) {
            Err(GuardError::KeyNotValid { what, kid, .. }) => {
                assert_eq!(what, "seal 1");
                assert_eq!(kid, old.kid());
            }
            other => panic!("{other:?}"),
        }

        // A seal dated before the old key's usage end, sent after it: refused (the
        // center's clock decides), and so is one dated after the request.
        let backdated = Expected {
            requested_at_unix_s: t + 10,
            ..good
        };
        let late = answer(
            &key,
            &backdated,
            300,
            vec![seal(&old, &good, &front(), doc)],
        );
        let keys = keys_of(&[
            trusted(&key, 0, i64::MAX, KeyStatus::Active),
            trusted(&old, 0, t + 5, KeyStatus::Active),
        ]);
        assert!(matches!(
            check_answer(&backdated, late, &keys),
            Err(GuardError::KeyNotValid { .. })
        ));
        let early = Expected {
            requested_at_unix_s: t - MAX_SEAL_CLOCK_SKEW_S - 1,
            ..good
        };
        let future = answer(&key, &early, 300, vec![seal(&key, &good, &front(), doc)]);
        let keys = keys_of(&[trusted(&key, 0, i64::MAX, KeyStatus::Active)]);
        assert!(matches!(
            check_answer(&early, future, &keys),
            Err(GuardError::Mismatch(_))
        ));
    }
}
