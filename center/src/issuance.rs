//! One issuance, end to end at the center (DESIGN.md §4): authenticate the card (its
//! signature over this order and a single-use challenge, or the card session it
//! opened at this kiosk: `card_session`), route (住所地 / 本籍地), record the request,
//! check it against the service rules and the municipality's catalogue, ask the
//! municipality, guard the binding, compose, record the outcome. Independent of HTTP so it can be tested and
//! reused; `routes::issuances` is a thin adapter over it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::{
    card_binding_digest, CardProof, CardSessionId, CertificateFetch, CertificateOrder, Digest32,
    DocumentPdf, ErrorCode, IssuanceRequest, IssuanceResponse, MunicipalityCode, OperatorId,
    RefusalReason, RequestId, Route, Signed,
};
use tracing::Instrument as _;

use crate::binding_guard::{check_answer, Expected, GuardError, VerifiedAnswer};
use crate::card_auth::{
    authenticate_unused, challenge_error, check_kiosk, use_challenge, CardPresentation,
    UnusedChallenge,
};
use crate::catalogue;
use crate::challenge::ChallengeRejection;
use crate::db::{self, AuthorizedInsert, IssuanceRow, IssuanceState, TransitionFields};
use crate::error::ApiError;
use crate::metrics::{Phase, PhaseTimer};
use crate::order_checks::{check_order, OrderRejection};
use crate::service_hours;
use crate::startup::AppState;

/// `timer` collects the time spent per phase (card, municipality, compose) for the
/// `Server-Timing` header and the latency histograms; it decides nothing.
pub async fn issue(
    state: &AppState,
    operator: &OperatorId,
    request: IssuanceRequest,
    timer: &PhaseTimer,
) -> Result<IssuanceResponse, ApiError> {
    let started_ms = state.clock.now_unix_ms();
    let deadline_unix_ms = started_ms + to_i64(state.timeouts.request_deadline_ms);

    check_kiosk(state, operator, &request.kiosk_id)?;
    request
        .order
        .validate()
        .map_err(|m| ApiError::new(ErrorCode::BadRequest, m))?;

    let order_digest =
        schemas::order_digest(&request.kiosk_id, &request.idempotency_key, &request.order)
            .map_err(ApiError::internal)?;
    // Recorded when dropped, early returns included.
    let card_phase = timer.start(Phase::Card);
    let (card, authorization) = match &request.card {
        // The card signs this order (see `card_auth::authenticate_unused`); its
        // challenge is used with the request's record.
        CardProof::Signed(signed) => {
            let (card, challenge) = authenticate_unused(
                state,
                operator,
                &request.kiosk_id,
                CardPresentation {
                    certificate: &signed.card_certificate,
                    nonce: signed.challenge_nonce.as_slice(),
                    signature: &signed.card_signature,
                },
                order_digest,
                started_ms,
            )
            .await?;
            (card.clone(), Authorization::Challenge(challenge))
        }
        // The card authenticated when the session opened; its certificate is checked
        // again now, and the order is taken from the session when it is recorded.
        CardProof::Session(session) => {
            let card = crate::card_session::card_for_order(
                state,
                operator,
                &request.kiosk_id,
                session.card_session_id,
                started_ms,
            )
            .await?;
            (card, Authorization::CardSession(session.card_session_id))
        }
    };
    drop(card_phase);
    let card = &card;

    // Routing: 住所地 is the municipality in the card certificate; 本籍地 is the one
    // the resident chose (its 利用登録 is the municipality's to check).
    let target_code = match request.order.route {
        Route::Residence => card.municipality_code,
        Route::Domicile { municipality_code } => municipality_code,
    };
    let Some(municipality) = state.directory.municipality(&target_code) else {
        // The challenge is spent on the refused order, as on any other answer.
        if let Authorization::Challenge(challenge) = authorization {
            use_challenge(state, challenge, started_ms).await?;
        }
        return Err(ApiError::new(
            ErrorCode::MunicipalityUnknown,
            format!("municipality {target_code} is not connected"),
        ));
    };

    let (request_id, replay_of) = register_or_replay(
        state,
        operator,
        &request,
        order_digest,
        card,
        authorization,
        municipality.code,
        started_ms,
    )
    .await?;
    if let Some(Replay::Final(response)) = replay_of {
        return response;
    }
    let replaying = replay_of.is_some();
    let span = tracing::info_span!("issuance", %request_id, municipality = %municipality.code, kiosk = %request.kiosk_id);
    async move {
        let certificate = request.order.certificate.certificate_type();
        let offering_fee_yen = match check_against_catalogue(
            state,
            municipality,
            &request.order,
            started_ms,
            replaying,
        )
        .await
        {
            Ok(fee) => fee,
            Err(OrderOutcome::Refused(reason)) => {
                return refuse(state, request_id, reason, replaying).await;
            }
            Err(OrderOutcome::Failed(failure)) => {
                return Err(fail(
                    state,
                    request_id,
                    IssuanceState::Refused,
                    failure,
                    replaying,
                )
                .await);
            }
        };

        let municipality_phase = timer.start(Phase::Municipality);
        let card_digest = Digest32(card_binding_digest(&request_id, &card.serial));
        let fetch = Signed::sign(
            CertificateFetch {
                request_id,
                municipality_code: municipality.code,
                card_serial: card.serial.clone(),
                card_digest,
                order: request.order.clone(),
                requested_at_unix_s: started_ms.div_euclid(1000),
                deadline_unix_ms,
            },
            &state.center_key,
        )
        .map_err(ApiError::internal)?;

        let left_ms = (deadline_unix_ms - state.clock.now_unix_ms()).max(0);
        let timeout_ms = state
            .timeouts
            .adapter_timeout_ms
            .min(u64::try_from(left_ms).unwrap_or(0));
        let fetch_started = Instant::now();
        let answer = state
            .adapters
            .fetch(
                &municipality.adapter_url,
                &fetch,
                request_id,
                Duration::from_millis(timeout_ms),
            )
            .await;
        state
            .metrics
            .adapter_request(&municipality.code.to_string(), fetch_started.elapsed());
        if let Err(error) = &answer {
            crate::alerts::adapter_failure(
                &state.adapter_bursts,
                &municipality.code.to_string(),
                &request_id.to_string(),
                error.kind(),
            );
        }
        let answer = match answer {
            Ok(answer) => answer,
            Err(crate::adapter_client::UpstreamError::Timeout) => {
                tracing::warn!("municipality timed out; the whole request is aborted");
                let failure = ApiError::new(
                    ErrorCode::UpstreamTimeout,
                    "the municipality did not answer in time",
                );
                return Err(fail(
                    state,
                    request_id,
                    IssuanceState::Expired,
                    failure,
                    replaying,
                )
                .await);
            }
            Err(error) => {
                tracing::warn!(%error, "municipality unavailable");
                let failure = ApiError::new(
                    ErrorCode::MunicipalityUnavailable,
                    "the municipality cannot be reached",
                );
                return Err(fail(
                    state,
                    request_id,
                    IssuanceState::Refused,
                    failure,
                    replaying,
                )
                .await);
            }
        };

        let expected = Expected {
            request_id,
            municipality: municipality.code,
            card_digest,
            certificate,
            fee_yen_per_copy: offering_fee_yen,
            requested_at_unix_s: fetch.payload.requested_at_unix_s,
        };
        let verified = check_answer(&expected, answer, &municipality.seal_keys);
        drop(municipality_phase);
        let verified = match verified {
            Ok(verified) => verified,
            Err(guard) => {
                state
                    .metrics
                    .binding_guard_tripped(&municipality.code.to_string());
                let code = match guard {
                    // A key the trust list does not allow now is, for this answer, no
                    // registered key: the same stable code as a bad signature.
                    GuardError::Signature(_) | GuardError::KeyNotValid { .. } => {
                        ErrorCode::UpstreamSignatureInvalid
                    }
                    GuardError::Mismatch(_) => ErrorCode::BindingMismatch,
                    GuardError::Catalogue(_) => ErrorCode::CatalogueMismatch,
                };
                tracing::error!(
                    target: "alert",
                    alert = "binding_guard",
                    %request_id,
                    request_ids = %request_id,
                    municipality = %municipality.code,
                    kid = %guard.kid().map(|k| k.to_string()).unwrap_or_default(),
                    error = %guard,
                    "binding guard tripped: answer discarded, nothing composed"
                );
                let failure = ApiError::new(code, guard.to_string());
                return Err(fail(
                    state,
                    request_id,
                    IssuanceState::Refused,
                    failure,
                    replaying,
                )
                .await);
            }
        };

        // The guard made sure the answer states the catalogue's fee; the kiosk is told
        // the catalogue's.
        let fee_yen_per_copy = offering_fee_yen;
        let (front, seals) = match verified {
            VerifiedAnswer::Refused { reason } => {
                return refuse(state, request_id, reason, replaying).await;
            }
            VerifiedAnswer::Issued {
                fee_yen_per_copy: _,
                front,
                seals,
            } => (front, seals),
        };

        let composer = Arc::clone(&state.composer);
        let seal_image = Arc::clone(&municipality.seal_image);
        let verify_url = state.verify_url.clone();
        let copies = request.order.copies;
        let compose_phase = timer.start(Phase::Compose);
        let composed = tokio::task::spawn_blocking(move || {
            composer.check_printable(front.printed_texts())?;
            composer.compose(&composer::DocumentInput {
                request_id,
                front: &front,
                seal_qr_texts: &seals,
                official_seal: Some(&seal_image),
                copies,
                verify_url: &verify_url,
            })
        })
        .await
        .map_err(ApiError::internal)?;
        drop(compose_phase);
        let composed = match composed {
            Ok(composed) => composed,
            Err(composer::ComposeError::UnprintableCharacter { codepoint, .. }) => {
                tracing::warn!(
                    codepoint = format!("U+{codepoint:04X}"),
                    "record has a character the font lacks"
                );
                return refuse(
                    state,
                    request_id,
                    RefusalReason::UnprintableCharacter,
                    replaying,
                )
                .await;
            }
            Err(composer::ComposeError::FieldTooLong { .. }) => {
                return refuse(state, request_id, RefusalReason::FieldTooLong, replaying).await;
            }
            Err(other) => {
                let failure = ApiError::internal(other);
                return Err(fail(
                    state,
                    request_id,
                    IssuanceState::Refused,
                    failure,
                    replaying,
                )
                .await);
            }
        };

        if state.clock.now_unix_ms() > deadline_unix_ms {
            // Whole-request timeout: a document finished after the deadline is discarded.
            let failure = ApiError::new(ErrorCode::UpstreamTimeout, "the request deadline passed");
            return Err(fail(
                state,
                request_id,
                IssuanceState::Expired,
                failure,
                replaying,
            )
            .await);
        }

        let total_fee_yen = fee_yen_per_copy
            .checked_mul(u32::from(copies))
            .ok_or_else(|| ApiError::internal("fee overflow"))?;
        let sha256 = Digest32::of(&composed.bytes);
        if !replaying {
            db::transition(
                &state.pool,
                &request_id.to_string(),
                IssuanceState::Authorized,
                IssuanceState::Prepared,
                &TransitionFields {
                    fee_yen_per_copy: Some(i64::from(fee_yen_per_copy)),
                    total_fee_yen: Some(i64::from(total_fee_yen)),
                    document_sha256: Some(&sha256.to_string()),
                    page_count: Some(i64::from(composed.page_count)),
                    ..TransitionFields::default()
                },
                state.clock.now_unix_ms(),
            )
            .await?;
        } else {
            db::record_event(
                &state.pool,
                &request_id.to_string(),
                "replayed",
                None,
                state.clock.now_unix_ms(),
            )
            .await?;
        }
        tracing::info!(
            pages = composed.page_count,
            bytes = composed.bytes.len(),
            "prepared"
        );
        Ok(IssuanceResponse::Prepared {
            request_id,
            municipality_code: municipality.code,
            municipality_name: municipality.name.clone(),
            certificate_title: certificate.title_ja().to_owned(),
            copies,
            fee_yen_per_copy,
            total_fee_yen,
            document: DocumentPdf {
                pdf: composed.bytes.into(),
                sha256,
                page_count: composed.page_count,
            },
        })
    }
    .instrument(span)
    .await
}

enum Replay {
    /// The stored outcome is final; answer it again.
    Final(Result<IssuanceResponse, ApiError>),
    /// The request was prepared before: fetch again under the same request id (the
    /// municipality replays its stored answer) and re-compose; the center stores no
    /// document to replay.
    Recompose,
}

/// Why an order does not go to the municipality.
enum OrderOutcome {
    /// A business refusal, recorded and answered like the municipality's.
    Refused(RefusalReason),
    /// A failure (no catalogue, too many copies), recorded with its error code.
    Failed(ApiError),
}

/// The center's checks before forwarding (precedence in `order_checks`): national
/// hours first, without asking the municipality; then the catalogue's rules. A replay
/// of a prepared request passed them already and only needs the catalogue's fee.
/// Returns the catalogue's fee per copy for the ordered type.
async fn check_against_catalogue(
    state: &AppState,
    municipality: &crate::directory::Municipality,
    order: &CertificateOrder,
    started_ms: i64,
    replaying: bool,
) -> Result<u32, OrderOutcome> {
    let at = service_hours::tokyo_time(started_ms.div_euclid(1000))
        .ok_or_else(|| OrderOutcome::Failed(ApiError::internal("clock out of range")))?;
    if !replaying {
        service_hours::general_availability(&[], &at).map_err(OrderOutcome::Refused)?;
    }
    let catalogue = catalogue::current_catalogue(state, municipality)
        .await
        .map_err(OrderOutcome::Failed)?;
    if replaying {
        return catalogue
            .offering(order.certificate.certificate_type())
            .map(|o| o.fee_yen_per_copy)
            .ok_or_else(|| {
                OrderOutcome::Failed(ApiError::new(
                    ErrorCode::CatalogueMismatch,
                    "the type is no longer in the municipality's catalogue",
                ))
            });
    }
    match check_order(&catalogue, order, &at) {
        Ok(offering) => Ok(offering.fee_yen_per_copy),
        Err(OrderRejection::Refused(reason)) => Err(OrderOutcome::Refused(reason)),
        Err(OrderRejection::BadRequest(message)) => Err(OrderOutcome::Failed(ApiError::new(
            ErrorCode::BadRequest,
            message,
        ))),
    }
}

/// What authorizes a new request, recorded with it.
enum Authorization {
    /// The card signed this order over a challenge, not used yet.
    Challenge(UnusedChallenge),
    /// The card opened this session at this kiosk.
    CardSession(CardSessionId),
}

/// Records a new request, or finds the earlier one under the same idempotency key. A
/// new request uses its challenge, or takes one of its card session's orders, in the
/// transaction that records it; a replay takes no order, and its fresh challenge is
/// used on its own.
#[allow(clippy::too_many_arguments)]
async fn register_or_replay(
    state: &AppState,
    operator: &OperatorId,
    request: &IssuanceRequest,
    order_digest: Digest32,
    card: &schemas::CardCertificateBody,
    authorization: Authorization,
    municipality_code: MunicipalityCode,
    now_ms: i64,
) -> Result<(RequestId, Option<Replay>), ApiError> {
    // Two rounds at most: an insert can lose a race against a concurrent retry.
    for _ in 0..2 {
        if let Some(existing) = db::find_by_idempotency_key(
            &state.pool,
            operator.as_str(),
            request.idempotency_key.as_str(),
        )
        .await?
        {
            if let Authorization::Challenge(challenge) = authorization {
                use_challenge(state, challenge, now_ms).await?;
            }
            let request_id = same_content_under_key(
                &existing.request_id,
                &existing.order_digest,
                &existing.card_digest,
                order_digest,
                &card.serial,
                "request",
            )?;
            let replay = match existing.state {
                IssuanceState::Refused => Replay::Final(replay_refusal(&existing, request_id)),
                IssuanceState::Expired => Replay::Final(Err(ApiError::new(
                    ErrorCode::UpstreamTimeout,
                    "the request had timed out",
                )
                .with_request(request_id))),
                IssuanceState::Authorized => Replay::Final(Err(ApiError::new(
                    ErrorCode::RequestInProgress,
                    "the same request is still in progress",
                )
                .with_request(request_id))),
                // Paid and not yet printed: the first session is printing. Handing the
                // document out again would let a second session (a kiosk replaying the
                // key) take a second payment, be acknowledged `paid` and print twice.
                // Once the print outcome is in, a replay gets the document again and
                // its payment is declined with the recorded status.
                IssuanceState::Paid => Replay::Final(Err(ApiError::new(
                    ErrorCode::RequestInProgress,
                    "the same request is being printed",
                )
                .with_request(request_id))),
                _ => Replay::Recompose,
            };
            return Ok((request_id, Some(replay)));
        }
        let request_id = RequestId::new_random();
        let row = IssuanceRow {
            request_id: request_id.to_string(),
            operator_id: operator.to_string(),
            kiosk_id: request.kiosk_id.to_string(),
            idempotency_key: request.idempotency_key.to_string(),
            order_digest: order_digest.to_string(),
            municipality_code: municipality_code.to_string(),
            card_digest: card_digest_text(request_id, &card.serial),
            certificate_type: request
                .order
                .certificate
                .certificate_type()
                .as_str()
                .to_owned(),
            copies: i64::from(request.order.copies),
            state: IssuanceState::Authorized,
            refusal_reason: None,
            error_code: None,
            fee_yen_per_copy: None,
            total_fee_yen: None,
            document_sha256: None,
            page_count: None,
        };
        let inserted = match &authorization {
            Authorization::Challenge(challenge) => {
                db::insert_authorized_with_challenge(&state.pool, &row, &challenge.0, now_ms)
                    .await?
            }
            Authorization::CardSession(session_id) => {
                db::insert_authorized_on_card_session(
                    &state.pool,
                    &row,
                    &session_id.to_string(),
                    now_ms,
                )
                .await?
            }
        };
        match inserted {
            AuthorizedInsert::Inserted => {
                if let Authorization::CardSession(session_id) = &authorization {
                    tracing::info!(
                        card_session_id = %session_id,
                        kiosk = %request.kiosk_id,
                        %request_id,
                        "order taken on card session"
                    );
                }
                return Ok((request_id, None));
            }
            // Lost to a concurrent retry under the same key: replay it next round.
            AuthorizedInsert::KeyTaken => {}
            AuthorizedInsert::SessionSpent => {
                if let Authorization::CardSession(session_id) = authorization {
                    return Err(crate::card_session::spent(session_id, &request.kiosk_id));
                }
                return Err(ApiError::internal("a card session spent without one"));
            }
            AuthorizedInsert::ChallengeUsed => {
                return Err(challenge_error(ChallengeRejection::Used));
            }
        }
    }
    Err(ApiError::internal("idempotency key race did not settle"))
}

/// What the center stores of a card for one request id (the binding digest, hex).
pub(crate) fn card_digest_text(id: RequestId, serial: &schemas::CardSerial) -> String {
    Digest32(card_binding_digest(&id, serial)).to_string()
}

/// The earlier request (issuance or 利用登録) stored under the same idempotency key:
/// its id when it carried the same content digest for the same card, otherwise
/// `idempotency_conflict` naming it.
pub(crate) fn same_content_under_key(
    stored_id: &str,
    stored_content_digest: &str,
    stored_card_digest: &str,
    content_digest: Digest32,
    serial: &schemas::CardSerial,
    what: &str,
) -> Result<RequestId, ApiError> {
    let id: RequestId = stored_id
        .parse()
        .map_err(|e| ApiError::internal(format!("stored {what} id: {e:?}")))?;
    if stored_content_digest != content_digest.to_string()
        || stored_card_digest != card_digest_text(id, serial)
    {
        return Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            format!("idempotency key was used for a different {what}"),
        )
        .with_request(id));
    }
    Ok(id)
}

fn replay_refusal(row: &IssuanceRow, request_id: RequestId) -> Result<IssuanceResponse, ApiError> {
    if let Some(reason) = &row.refusal_reason {
        let reason: RefusalReason =
            serde_json::from_value(serde_json::Value::String(reason.clone()))
                .map_err(ApiError::internal)?;
        return Ok(refused_response(request_id, reason));
    }
    let code: ErrorCode = row
        .error_code
        .as_ref()
        .and_then(|c| serde_json::from_value(serde_json::Value::String(c.clone())).ok())
        .unwrap_or(ErrorCode::Internal);
    Err(ApiError::new(code, "the request had failed").with_request(request_id))
}

fn refused_response(request_id: RequestId, reason: RefusalReason) -> IssuanceResponse {
    IssuanceResponse::Refused {
        request_id,
        reason,
        message_ja: RefusalReason::RESIDENT_MESSAGE_JA.to_owned(),
        message_en: RefusalReason::RESIDENT_MESSAGE_EN.to_owned(),
    }
}

pub(crate) fn reason_code(reason: RefusalReason) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{reason:?}"),
    }
}

async fn refuse(
    state: &AppState,
    request_id: RequestId,
    reason: RefusalReason,
    replaying: bool,
) -> Result<IssuanceResponse, ApiError> {
    let code = reason_code(reason);
    tracing::info!(reason = %code, "refused");
    if !replaying {
        db::transition(
            &state.pool,
            &request_id.to_string(),
            IssuanceState::Authorized,
            IssuanceState::Refused,
            &TransitionFields {
                refusal_reason: Some(&code),
                ..TransitionFields::default()
            },
            state.clock.now_unix_ms(),
        )
        .await?;
    }
    Ok(refused_response(request_id, reason))
}

/// Ends the request in a terminal failure state with `failure`'s code (unless this is
/// a replay of an already-prepared request, whose state must not move backwards) and
/// returns the error to answer, naming the request.
async fn fail(
    state: &AppState,
    request_id: RequestId,
    to: IssuanceState,
    failure: ApiError,
    replaying: bool,
) -> ApiError {
    if !replaying {
        if let Err(error) = db::transition(
            &state.pool,
            &request_id.to_string(),
            IssuanceState::Authorized,
            to,
            &TransitionFields {
                error_code: Some(failure.code.as_str()),
                ..TransitionFields::default()
            },
            state.clock.now_unix_ms(),
        )
        .await
        {
            return ApiError::from(error).with_request(request_id);
        }
    }
    failure.with_request(request_id)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
