//! Card authentication: the card certificate (card authority's signature, validity
//! window, revocation) and the card's challenge-response signature.

use std::collections::HashSet;
use std::path::Path;

use schemas::{
    CardAuthMessage, CardCertificate, CardCertificateBody, CardSerial, Digest32, ErrorCode,
    KioskId, OperatorId, PublicKey, RevocationList, SignatureBytes, SignedMessage as _,
};

use crate::db::{self, ChallengeRejection};
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

/// Authenticates the card of a signed request from `kiosk` (an order, a card-session
/// opening, a 利用登録): the certificate first (stateless), then its signature over
/// the nonce and `digest`, then the single-use nonce, so a forged request cannot burn a
/// kiosk's challenge. The verified certificate body.
pub async fn authenticate<'a>(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
    presented: CardPresentation<'a>,
    digest: Digest32,
    now_ms: i64,
) -> Result<&'a CardCertificateBody, ApiError> {
    let card = state
        .card_authority
        .check_certificate(presented.certificate, now_ms.div_euclid(1000))?;
    check_card_signature(card, presented.nonce, digest, presented.signature)?;
    consume_challenge(state, operator, kiosk, presented.nonce, now_ms).await?;
    Ok(card)
}

/// Consumes the single-use challenge nonce of `kiosk`, or says why it cannot be.
pub(crate) async fn consume_challenge(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
    nonce: &[u8],
    now_ms: i64,
) -> Result<(), ApiError> {
    let nonce_hex = hex::encode(nonce);
    match db::consume_challenge(
        &state.pool,
        &nonce_hex,
        operator.as_str(),
        kiosk.as_str(),
        now_ms,
    )
    .await?
    {
        Ok(()) => Ok(()),
        Err(ChallengeRejection::Unknown) => Err(ApiError::new(
            ErrorCode::ChallengeUnknown,
            "unknown challenge",
        )),
        Err(ChallengeRejection::Expired) => Err(ApiError::new(
            ErrorCode::ChallengeExpired,
            "challenge has expired",
        )),
        Err(ChallengeRejection::Used) => Err(ApiError::new(
            ErrorCode::ChallengeUsed,
            "challenge was already used",
        )),
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
