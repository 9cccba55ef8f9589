//! Card authentication: the card certificate (card authority's signature, validity
//! window, revocation) and the card's challenge-response signature.

use std::collections::HashSet;
use std::path::Path;

use schemas::{
    CardAuthMessage, CardCertificate, CardCertificateBody, CardSerial, Digest32, ErrorCode,
    KioskId, OperatorId, PublicKey, RevocationList, SignatureBytes, SignedMessage as _,
};

use crate::challenge::ChallengeRejection;
use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Debug, thiserror::Error)]
pub enum CardAuthorityError {
    #[error("card authority key: {0}")]
    Key(String),
    #[error("revocation list {path}: {reason}")]
    RevocationList { path: String, reason: String },
}

/// The card authority as the center trusts it: its key and its latest revocation list.
#[derive(Debug)]
pub struct CardAuthority {
    public_key: PublicKey,
    revoked: HashSet<CardSerial>,
    revocation_next_update_unix_s: i64,
}

impl CardAuthority {
    pub fn load(
        public_key_b64: &str,
        revocation_list_path: &Path,
    ) -> Result<Self, CardAuthorityError> {
        let public_key = parse_public_key(public_key_b64).map_err(CardAuthorityError::Key)?;
        let list_error = |reason: String| CardAuthorityError::RevocationList {
            path: revocation_list_path.display().to_string(),
            reason,
        };
        let text =
            std::fs::read_to_string(revocation_list_path).map_err(|e| list_error(e.to_string()))?;
        let list: RevocationList =
            serde_json::from_str(&text).map_err(|e| list_error(e.to_string()))?;
        let body = list
            .verify(&public_key)
            .map_err(|e| list_error(format!("not signed by the card authority: {e}")))?;
        Ok(Self {
            public_key,
            revoked: body.revoked.iter().cloned().collect(),
            revocation_next_update_unix_s: body.next_update_unix_s,
        })
    }

    /// Checks the certificate and returns its verified body.
    pub fn check_certificate<'a>(
        &self,
        certificate: &'a CardCertificate,
        now_unix_s: i64,
    ) -> Result<&'a CardCertificateBody, ApiError> {
        let body = certificate.verify(&self.public_key).map_err(|e| {
            ApiError::new(
                ErrorCode::CardCertificateInvalid,
                format!("card certificate: {e}"),
            )
        })?;
        if now_unix_s < body.not_before_unix_s {
            return Err(ApiError::new(
                ErrorCode::CardNotYetValid,
                "card is not yet valid",
            ));
        }
        if now_unix_s >= body.not_after_unix_s {
            return Err(ApiError::new(ErrorCode::CardExpired, "card has expired"));
        }
        if now_unix_s >= self.revocation_next_update_unix_s {
            // Without a current list a revoked card could pass: fail closed.
            tracing::error!(target: "alert", "card revocation list is stale");
            return Err(ApiError::new(
                ErrorCode::Internal,
                "revocation list is stale",
            ));
        }
        if self.revoked.contains(&body.serial) {
            return Err(ApiError::new(ErrorCode::CardRevoked, "card is revoked"));
        }
        Ok(body)
    }
}

/// The kiosk named in a request must be one of the calling operator's (its mTLS
/// identity).
pub fn check_kiosk(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
) -> Result<(), ApiError> {
    if state.directory.kiosk_belongs_to(operator, kiosk) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::KioskNotAuthorized,
            "kiosk is not registered for this operator",
        ))
    }
}

/// What the card presented with one signed request.
pub struct CardPresentation<'a> {
    pub certificate: &'a CardCertificate,
    /// The challenge nonce from `POST /v1/challenges`.
    pub nonce: &'a [u8],
    /// The card's signature over {nonce, digest}.
    pub signature: &'a SignatureBytes,
}

/// A challenge that passed every check and is not used yet. It authorizes one thing
/// only once it is used: on its own (`use_challenge`) or in the transaction that
/// records what it authorizes (`db::insert_authorized_with_challenge`,
/// `db::insert_card_session_with_challenge`).
#[must_use = "an authenticated challenge must be used before what it authorizes goes on"]
#[derive(Debug)]
pub struct UnusedChallenge(pub(crate) db::ChallengeUse);

/// Authenticates the card of a signed request from `kiosk` (a 利用登録) and uses its
/// challenge on its own. The verified certificate body.
pub async fn authenticate<'a>(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
    presented: CardPresentation<'a>,
    digest: Digest32,
    now_ms: i64,
) -> Result<&'a CardCertificateBody, ApiError> {
    let (card, challenge) =
        authenticate_unused(state, operator, kiosk, presented, digest, now_ms).await?;
    use_challenge(state, challenge, now_ms).await?;
    Ok(card)
}

/// Authenticates the card of a signed request from `kiosk` but leaves its challenge
/// unused, for the caller to use with what it records. The order of the checks: the
/// certificate (stateless), the card's signature over the nonce and `digest`, then the
/// nonce (this center's, for this kiosk; not used; not expired), so a forged request
/// learns nothing about a kiosk's challenges.
pub async fn authenticate_unused<'a>(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
    presented: CardPresentation<'a>,
    digest: Digest32,
    now_ms: i64,
) -> Result<(&'a CardCertificateBody, UnusedChallenge), ApiError> {
    let card = state
        .card_authority
        .check_certificate(presented.certificate, now_ms.div_euclid(1000))?;
    check_card_signature(card, presented.nonce, digest, presented.signature)?;
    let opened = state
        .challenge_key
        .open(operator, kiosk, presented.nonce)
        .map_err(challenge_error)?;
    // Used before expired: a replayed nonce is reported as a replay.
    if db::challenge_used(&state.pool, &opened.nonce_hex).await? {
        return Err(challenge_error(ChallengeRejection::Used));
    }
    if opened.expires_at_unix_ms <= now_ms {
        return Err(challenge_error(ChallengeRejection::Expired));
    }
    Ok((
        card,
        UnusedChallenge(db::ChallengeUse {
            nonce_hex: opened.nonce_hex,
            operator_id: operator.to_string(),
            kiosk_id: kiosk.to_string(),
            expires_at_unix_ms: opened.expires_at_unix_ms,
        }),
    ))
}

/// Uses the challenge on its own: `challenge_used` if another request used it since
/// it was checked.
pub async fn use_challenge(
    state: &AppState,
    challenge: UnusedChallenge,
    now_ms: i64,
) -> Result<(), ApiError> {
    if db::use_challenge(&state.pool, &challenge.0, now_ms).await? {
        Ok(())
    } else {
        Err(challenge_error(ChallengeRejection::Used))
    }
}

/// The stable error for a challenge that cannot authorize anything.
pub fn challenge_error(rejection: ChallengeRejection) -> ApiError {
    match rejection {
        ChallengeRejection::Unknown => {
            ApiError::new(ErrorCode::ChallengeUnknown, "unknown challenge")
        }
        ChallengeRejection::Expired => {
            ApiError::new(ErrorCode::ChallengeExpired, "challenge has expired")
        }
        ChallengeRejection::Used => {
            ApiError::new(ErrorCode::ChallengeUsed, "challenge was already used")
        }
    }
}

/// Checks the card's signature over {nonce, order digest}.
pub fn check_card_signature(
    card: &CardCertificateBody,
    nonce: &[u8],
    order_digest: Digest32,
    signature: &SignatureBytes,
) -> Result<(), ApiError> {
    let message = CardAuthMessage {
        nonce: nonce.to_vec().into(),
        order_digest,
    };
    let bytes = message.signed_bytes().map_err(ApiError::internal)?;
    card.public_key.verify(&bytes, signature).map_err(|_| {
        ApiError::new(
            ErrorCode::CardSignatureInvalid,
            "card signature over the challenge and order does not verify",
        )
    })
}

pub fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let bytes = schemas::b64::Base64Bytes::decode(text.trim()).map_err(|e| e.to_string())?;
    let key = PublicKey::try_from(schemas::b64::Base64Bytes(bytes)).map_err(|e| e.to_string())?;
    key.verifying_key().map_err(|e| e.to_string())?;
    Ok(key)
}
