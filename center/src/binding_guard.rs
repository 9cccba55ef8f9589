//! The binding guard (DESIGN.md §4): the municipality's answer must be signed by one
//! of its registered keys and bound to exactly this request and this card; every
//! seal must be signed by the municipality, name this request, cover exactly this
//! front data, and number the pages 1..n. Any mismatch and nothing is composed.

use schemas::seal::SignedSeal;
use schemas::{
    AnswerOutcome, CertificateAnswer, Digest32, FrontSide, MunicipalityCode, RefusalReason,
    RequestId, SignedCertificateAnswer,
};

use crate::directory::Municipality;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("answer is not signed by a key registered for the municipality: {0}")]
    Signature(String),
    #[error("binding mismatch: {0}")]
    Mismatch(String),
}

/// What the center expects the answer to be bound to.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    pub request_id: RequestId,
    pub municipality: MunicipalityCode,
    pub card_digest: Digest32,
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
    municipality: &Municipality,
) -> Result<VerifiedAnswer, GuardError> {
    let key = municipality
        .keys
        .get(&answer.kid)
        .ok_or_else(|| GuardError::Signature(format!("unknown kid {}", answer.kid)))?;
    answer
        .verify(key)
        .map_err(|e| GuardError::Signature(e.to_string()))?;
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
            check_seals(expected, &front, &seals, municipality)?;
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
    municipality: &Municipality,
) -> Result<(), GuardError> {
    let front_digest = front
        .digest()
        .map_err(|e| GuardError::Mismatch(format!("front data cannot be digested: {e}")))?;
    let count = seals.len();
    if count == 0 || count > usize::from(u8::MAX) {
        return Err(GuardError::Mismatch(format!("{count} seals")));
    }
    for (index, text) in seals.iter().enumerate() {
        let seal = SignedSeal::from_qr_text(text)
            .map_err(|e| GuardError::Mismatch(format!("seal {}: {e}", index + 1)))?;
        let key = municipality.keys.get(&seal.kid).ok_or_else(|| {
            GuardError::Signature(format!("seal signed by unknown kid {}", seal.kid))
        })?;
        let payload = seal
            .verify(key)
            .map_err(|e| GuardError::Signature(format!("seal {}: {e}", index + 1)))?;
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
