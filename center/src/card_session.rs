//! Card sessions (DESIGN.md §1: the card is returned right after the PIN). The card
//! authenticates once, at the opening (`POST /v1/card-sessions`): its certificate and
//! its signature over a fresh challenge and [`card_session_digest`], checked exactly
//! as for a signed order. The visit's orders then name the session
//! (`CardProof::Session`); each is honoured only for the kiosk and operator that
//! opened it, before its expiry at the center clock, while it has orders left, and
//! with the stored card certificate checked again (validity, revocation).
//!
//! Sessions live in the database, so every replica and a restarted center agree on
//! them; an order is taken in the transaction that records the issuance
//! (`db::insert_authorized_on_card_session`), so a replayed idempotency key takes none
//! and two concurrent orders cannot both take the last one.

use schemas::{
    card_session_digest, CardCertificate, CardCertificateBody, CardSessionId, CardSessionRequest,
    CardSessionResponse, ErrorCode, KioskId, MunicipalityCode, OperatorId,
    MAX_ORDERS_PER_CARD_SESSION,
};

use crate::card_auth::{
    authenticate_unused, challenge_error, check_kiosk, use_challenge, CardPresentation,
};
use crate::challenge::ChallengeRejection;
use crate::db::{self, CardSessionInsert, CardSessionRow};
use crate::error::ApiError;
use crate::startup::AppState;

/// Handles `POST /v1/card-sessions`: opens the visit's card session, or answers the
/// one it already has (a retry after a lost answer, with a fresh challenge).
pub async fn open(
    state: &AppState,
    operator: &OperatorId,
    request: CardSessionRequest,
) -> Result<CardSessionResponse, ApiError> {
    let now_ms = state.clock.now_unix_ms();
    check_kiosk(state, operator, &request.kiosk_id)?;
    // As for a signed order: certificate, signature, then the single-use nonce, used
    // with the session's record (or on its own when the visit has its session).
    let digest =
        card_session_digest(&request.kiosk_id, &request.visit_key).map_err(ApiError::internal)?;
    let (card, challenge) = authenticate_unused(
        state,
        operator,
        &request.kiosk_id,
        CardPresentation {
            certificate: &request.card_certificate,
            nonce: request.challenge_nonce.as_slice(),
            signature: &request.card_signature,
        },
        digest,
        now_ms,
    )
    .await?;

    let ttl_ms = i64::try_from(state.timeouts.card_session_ttl_ms).unwrap_or(i64::MAX);
    // Two rounds at most: an insert can lose a race against a concurrent retry.
    for _ in 0..2 {
        if let Some(existing) = db::find_card_session_by_visit(
            &state.pool,
            request.kiosk_id.as_str(),
            request.visit_key.as_str(),
        )
        .await?
        {
            use_challenge(state, challenge, now_ms).await?;
            return same_session_again(&existing, operator, card, now_ms);
        }
        let id = CardSessionId::new_random();
        let row = CardSessionRow {
            card_session_id: id.to_string(),
            operator_id: operator.to_string(),
            kiosk_id: request.kiosk_id.to_string(),
            visit_key: request.visit_key.to_string(),
            card_certificate: serde_json::to_string(&request.card_certificate)
                .map_err(ApiError::internal)?,
            municipality_code: card.municipality_code.to_string(),
            orders_used: 0,
            max_orders: i64::from(MAX_ORDERS_PER_CARD_SESSION),
            created_at_unix_ms: now_ms,
            expires_at_unix_ms: now_ms.saturating_add(ttl_ms),
        };
        match db::insert_card_session_with_challenge(&state.pool, &row, &challenge.0).await? {
            CardSessionInsert::Inserted => {}
            // Lost to a concurrent retry of the same visit: answer it next round.
            CardSessionInsert::VisitTaken => continue,
            CardSessionInsert::ChallengeUsed => {
                return Err(challenge_error(ChallengeRejection::Used));
            }
        }
        tracing::info!(
            card_session_id = %id,
            kiosk = %request.kiosk_id,
            operator = %operator,
            municipality = %card.municipality_code,
            expires_at_unix_ms = row.expires_at_unix_ms,
            "card session opened"
        );
        return response(&row);
    }
    Err(ApiError::internal("card session race did not settle"))
}

/// The session the visit already has, when the same card (and operator) asks again;
/// another card under the same visit is a conflict.
fn same_session_again(
    existing: &CardSessionRow,
    operator: &OperatorId,
    card: &CardCertificateBody,
    now_ms: i64,
) -> Result<CardSessionResponse, ApiError> {
    let stored = stored_certificate(existing)?;
    if existing.operator_id != operator.as_str() || stored.payload.serial != card.serial {
        tracing::warn!(
            card_session_id = %existing.card_session_id,
            kiosk = %existing.kiosk_id,
            "card session opening: the visit has a session of another card"
        );
        return Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            "the visit key was used to open a card session for another card",
        ));
    }
    if existing.expires_at_unix_ms <= now_ms {
        return Err(invalid(
            existing,
            "expired",
            "the visit's card session has expired; start a new visit",
        ));
    }
    tracing::info!(
        card_session_id = %existing.card_session_id,
        kiosk = %existing.kiosk_id,
        "card session opening repeated: same session answered"
    );
    response(existing)
}

/// The card behind an order on card session `id` from `kiosk` of `operator`, checked
/// again as a signed order's card would be. Whether the session has an order left is
/// decided when the order is recorded (a replayed key needs none).
pub(crate) async fn card_for_order(
    state: &AppState,
    operator: &OperatorId,
    kiosk: &KioskId,
    id: CardSessionId,
    now_ms: i64,
) -> Result<CardCertificateBody, ApiError> {
    let Some(row) = db::find_card_session(&state.pool, &id.to_string()).await? else {
        tracing::warn!(card_session_id = %id, kiosk = %kiosk, "order on an unknown card session");
        return Err(ApiError::new(
            ErrorCode::CardSessionInvalid,
            "unknown card session",
        ));
    };
    if row.operator_id != operator.as_str() || row.kiosk_id != kiosk.as_str() {
        tracing::warn!(
            card_session_id = %id,
            kiosk = %kiosk,
            session_kiosk = %row.kiosk_id,
            "order on another kiosk's card session"
        );
        // The same answer as for an unknown session: a kiosk learns nothing of others'.
        return Err(ApiError::new(
            ErrorCode::CardSessionInvalid,
            "unknown card session",
        ));
    }
    if row.expires_at_unix_ms <= now_ms {
        return Err(invalid(&row, "expired", "the card session has expired"));
    }
    let certificate = stored_certificate(&row)?;
    let card = state
        .card_authority
        .check_certificate(&certificate, now_ms.div_euclid(1000))?;
    Ok(card.clone())
}

/// The answer when a new order finds no order left on the session (or the session
/// expired or vanished between its check and the order's record).
pub(crate) fn spent(id: CardSessionId, kiosk: &KioskId) -> ApiError {
    tracing::warn!(card_session_id = %id, kiosk = %kiosk, "card session has no order left");
    ApiError::new(
        ErrorCode::CardSessionInvalid,
        "the card session has no order left",
    )
}

fn invalid(row: &CardSessionRow, why: &'static str, message: &'static str) -> ApiError {
    tracing::warn!(
        card_session_id = %row.card_session_id,
        kiosk = %row.kiosk_id,
        why,
        "card session refused"
    );
    ApiError::new(ErrorCode::CardSessionInvalid, message)
}

fn stored_certificate(row: &CardSessionRow) -> Result<CardCertificate, ApiError> {
    serde_json::from_str(&row.card_certificate)
        .map_err(|e| ApiError::internal(format!("stored card certificate: {e}")))
}

fn response(row: &CardSessionRow) -> Result<CardSessionResponse, ApiError> {
    let card_session_id = row
        .card_session_id
        .parse()
        .map_err(|e| ApiError::internal(format!("stored card session id: {e:?}")))?;
    let card_municipality = MunicipalityCode::parse(&row.municipality_code)
        .map_err(|e| ApiError::internal(format!("stored municipality code: {e}")))?;
    let orders_left = u8::try_from(row.max_orders.saturating_sub(row.orders_used).max(0))
        .map_err(|_| ApiError::internal("stored order count out of range"))?;
    Ok(CardSessionResponse {
        card_session_id,
        card_municipality,
        expires_at_unix_s: row.expires_at_unix_ms.div_euclid(1000),
        orders_left,
    })
}
