//! The issuance lifecycle after `prepared` (DESIGN.md §4): payment and print reports
//! from the kiosk (`schemas::outcome`), and the sweep that voids unpaid issuances and
//! expires stuck requests.
//!
//! Every move is one conditional database transaction (`db::apply_outcome`); when a
//! concurrent report or sweep got there first, the record is read again and the report
//! decided against it, so a duplicate is acknowledged, never applied twice.

use crate::store::Store;
use schemas::{
    ErrorCode, IssuanceStatus, OperatorId, OutcomeAck, PaymentMethod, PaymentOutcome,
    PaymentReport, PrintOutcome, PrintReport, RequestId,
};

use crate::configuration::Timeouts;
use crate::db::{self, DbError, IssuanceState, OutcomeRecord, OutcomeUpdate};
use crate::error::ApiError;
use crate::startup::AppState;

/// Void reasons (`issuances.void_reason`) and refund reasons (`refunds.reason`).
pub const VOID_CANCELLED: &str = "cancelled";
pub const VOID_PAYMENT_TIMEOUT: &str = "payment_timeout";
pub const VOID_KIOSK_REFUNDED: &str = "kiosk_refunded";
pub const VOID_PRINT_FAILED: &str = "print_failed";

/// Rounds of read-decide-apply before giving up; each lost round means another
/// writer moved the row, and a row only moves forward a few times.
const MAX_ROUNDS: usize = 4;

/// What to do with a report, decided against the current record.
#[derive(Debug)]
enum Decision<'a> {
    /// Already recorded: answer with the current state, write nothing.
    Ack,
    Apply(OutcomeUpdate<'a>),
    Reject(ErrorCode, String),
}

/// Handles `POST /v1/issuances/{request_id}/payment`.
pub async fn report_payment(
    state: &AppState,
    operator: &OperatorId,
    request_id: &str,
    report: &PaymentReport,
) -> Result<OutcomeAck, ApiError> {
    check_kiosk(state, operator, &report.kiosk_id)?;
    apply_payment(
        &state.pool,
        operator,
        request_id,
        report,
        state.clock.now_unix_ms(),
    )
    .await
}

/// Handles `POST /v1/issuances/{request_id}/print`.
pub async fn report_print(
    state: &AppState,
    operator: &OperatorId,
    request_id: &str,
    report: &PrintReport,
) -> Result<OutcomeAck, ApiError> {
    check_kiosk(state, operator, &report.kiosk_id)?;
    apply_print(
        &state.pool,
        operator,
        request_id,
        report,
        state.clock.now_unix_ms(),
    )
    .await
}

fn check_kiosk(
    state: &AppState,
    operator: &OperatorId,
    kiosk_id: &schemas::KioskId,
) -> Result<(), ApiError> {
    if state.directory.kiosk_belongs_to(operator, kiosk_id) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::KioskNotAuthorized,
            "kiosk is not registered for this operator",
        ))
    }
}

/// Records a payment report against the store (the kiosk already checked to belong to
/// `operator`): the issuance must have been made by `operator` and `report.kiosk_id`.
pub async fn apply_payment(
    pool: &Store,
    operator: &OperatorId,
    request_id: &str,
    report: &PaymentReport,
    now_unix_ms: i64,
) -> Result<OutcomeAck, ApiError> {
    let outcome = report.outcome;
    handle(
        pool,
        operator,
        request_id,
        &report.kiosk_id,
        "payment",
        |record| decide_payment(record, report, now_unix_ms),
        format!("{outcome:?}"),
    )
    .await
}

/// Records a print report against the store; see `apply_payment`.
pub async fn apply_print(
    pool: &Store,
    operator: &OperatorId,
    request_id: &str,
    report: &PrintReport,
    now_unix_ms: i64,
) -> Result<OutcomeAck, ApiError> {
    let outcome = report.outcome;
    handle(
        pool,
        operator,
        request_id,
        &report.kiosk_id,
        "print",
        |record| decide_print(record, outcome, now_unix_ms),
        format!("{outcome:?}"),
    )
    .await
}

async fn handle<F>(
    pool: &Store,
    operator: &OperatorId,
    request_id: &str,
    kiosk_id: &schemas::KioskId,
    kind: &'static str,
    decide: F,
    outcome_text: String,
) -> Result<OutcomeAck, ApiError>
where
    F: for<'r> Fn(&'r OutcomeRecord) -> Decision<'r>,
{
    let parsed_id: RequestId = request_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, "no such issuance"))?;
    // The canonical spelling, as stored.
    let request_id = parsed_id.to_string();
    let request_id = request_id.as_str();
    for _ in 0..MAX_ROUNDS {
        let record = db::find_outcome_record(pool, request_id)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such issuance"))?;
        if record.operator_id != operator.as_str() || record.kiosk_id != kiosk_id.as_str() {
            return Err(ApiError::new(
                ErrorCode::KioskNotAuthorized,
                "the issuance was made by another kiosk",
            )
            .with_request(parsed_id));
        }
        match decide(&record) {
            Decision::Ack => return ack(&record, parsed_id),
            Decision::Reject(code, message) => {
                tracing::warn!(
                    request_id,
                    state = record.state.as_str(),
                    print_outcome = record.print_outcome.as_deref(),
                    report = kind,
                    outcome = outcome_text.as_str(),
                    %code,
                    "outcome report rejected"
                );
                return Err(ApiError::new(code, message).with_request(parsed_id));
            }
            Decision::Apply(update) => {
                if db::apply_outcome(pool, &update).await? {
                    tracing::info!(
                        request_id,
                        from = update.from.as_str(),
                        to = update.to.as_str(),
                        event = update.event,
                        "outcome recorded"
                    );
                    let record = db::find_outcome_record(pool, request_id)
                        .await?
                        .ok_or_else(|| ApiError::internal("issuance vanished"))?;
                    return ack(&record, parsed_id);
                }
                // Lost a race: read again and decide against what won.
            }
        }
    }
    Err(ApiError::internal("outcome report did not settle"))
}

fn ack(record: &OutcomeRecord, request_id: RequestId) -> Result<OutcomeAck, ApiError> {
    let yen = |v: Option<i64>| {
        u32::try_from(v.unwrap_or(0)).map_err(|_| ApiError::internal("stored yen out of range"))
    };
    Ok(OutcomeAck {
        request_id,
        status: status_of(record.state),
        paid_yen: yen(record.paid_yen)?,
        refund_yen: yen(record.refund_yen)?,
        print_outcome: match record.print_outcome.as_deref() {
            None => None,
            Some(text) => Some(
                parse_print_outcome(text)
                    .ok_or_else(|| ApiError::internal("stored print outcome"))?,
            ),
        },
    })
}

pub fn status_of(state: IssuanceState) -> IssuanceStatus {
    match state {
        IssuanceState::Authorized => IssuanceStatus::Authorized,
        IssuanceState::Prepared => IssuanceStatus::Prepared,
        IssuanceState::Paid => IssuanceStatus::Paid,
        IssuanceState::Printed => IssuanceStatus::Printed,
        IssuanceState::Settled => IssuanceStatus::Settled,
        IssuanceState::Refused => IssuanceStatus::Refused,
        IssuanceState::Voided => IssuanceStatus::Voided,
        IssuanceState::Expired => IssuanceStatus::Expired,
        IssuanceState::ReconRequired => IssuanceStatus::ReconRequired,
    }
}

fn method_str(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Cash => "cash",
        PaymentMethod::EMoney => "e_money",
    }
}

fn print_str(outcome: PrintOutcome) -> &'static str {
    match outcome {
        PrintOutcome::Ok => "ok",
        PrintOutcome::Failed => "failed",
        PrintOutcome::Unknown => "unknown",
    }
}

fn parse_print_outcome(text: &str) -> Option<PrintOutcome> {
    [
        PrintOutcome::Ok,
        PrintOutcome::Failed,
        PrintOutcome::Unknown,
    ]
    .into_iter()
    .find(|o| print_str(*o) == text)
}

fn illegal(record: &OutcomeRecord, what: &str) -> Decision<'static> {
    Decision::Reject(
        ErrorCode::IllegalTransition,
        format!(
            "{what} report is out of order: the issuance is {}",
            record.state.as_str()
        ),
    )
}

fn conflict(record: &OutcomeRecord, what: &str) -> Decision<'static> {
    Decision::Reject(
        ErrorCode::OutcomeConflict,
        format!(
            "{what} report contradicts the recorded outcome (state {}, void reason {})",
            record.state.as_str(),
            record.void_reason.as_deref().unwrap_or("none")
        ),
    )
}

fn decide_payment<'r>(
    record: &'r OutcomeRecord,
    report: &PaymentReport,
    now_ms: i64,
) -> Decision<'r> {
    use IssuanceState::*;
    let id = record.request_id.as_str();
    let amount_yen = i64::from(report.amount_yen);
    match (report.outcome, record.state) {
        (_, Authorized | Refused | Expired) => illegal(record, "payment"),
        (PaymentOutcome::Paid, Prepared) => {
            let Some(total_fee_yen) = record.total_fee_yen else {
                return Decision::Reject(ErrorCode::Internal, "prepared without a fee".into());
            };
            if amount_yen != total_fee_yen {
                return Decision::Reject(
                    ErrorCode::BadRequest,
                    format!("amount_yen {amount_yen} is not the fee {total_fee_yen}"),
                );
            }
            let mut update = OutcomeUpdate::new(id, Prepared, Paid, "paid", now_ms);
            update.paid_yen = Some(amount_yen);
            update.payment_method = Some(method_str(report.method));
            Decision::Apply(update)
        }
        (PaymentOutcome::Paid, _) => {
            // Anything past `prepared` that recorded this very payment is a repeat.
            let same = record.paid_yen == Some(amount_yen)
                && record.payment_method.as_deref() == Some(method_str(report.method));
            if same {
                Decision::Ack
            } else {
                conflict(record, "payment")
            }
        }
        (_, _) if report.amount_yen != 0 => Decision::Reject(
            ErrorCode::BadRequest,
            "amount_yen must be 0 unless the outcome is paid".into(),
        ),
        (outcome, Prepared) => {
            let mut update = OutcomeUpdate::new(id, Prepared, Voided, "voided", now_ms);
            update.void_reason = Some(if outcome == PaymentOutcome::Cancelled {
                VOID_CANCELLED
            } else {
                VOID_PAYMENT_TIMEOUT
            });
            Decision::Apply(update)
        }
        (PaymentOutcome::Cancelled, Paid) if record.print_outcome.is_none() => {
            // The kiosk gave the money back (its payment report got no answer).
            let Some(paid_yen) = record.paid_yen else {
                return Decision::Reject(ErrorCode::Internal, "paid without an amount".into());
            };
            let mut update = OutcomeUpdate::new(id, Paid, Voided, "voided", now_ms);
            update.void_reason = Some(VOID_KIOSK_REFUNDED);
            update.refund = Some((paid_yen, VOID_KIOSK_REFUNDED));
            Decision::Apply(update)
        }
        (outcome, Voided) => {
            let repeat = match record.paid_yen {
                // No money was ever taken: cancelled and timed out say the same.
                None => true,
                Some(_) => {
                    outcome == PaymentOutcome::Cancelled
                        && record.void_reason.as_deref() == Some(VOID_KIOSK_REFUNDED)
                }
            };
            if repeat {
                Decision::Ack
            } else {
                conflict(record, "payment")
            }
        }
        (_, Paid | Printed | Settled | ReconRequired) => conflict(record, "payment"),
    }
}

fn decide_print(record: &OutcomeRecord, outcome: PrintOutcome, now_ms: i64) -> Decision<'_> {
    use IssuanceState::*;
    let id = record.request_id.as_str();
    let recorded = record.print_outcome.as_deref();
    match (record.state, outcome) {
        (Authorized | Refused | Expired | Prepared, _) => illegal(record, "print"),
        (Paid, PrintOutcome::Unknown) if recorded.is_some() => Decision::Ack,
        (ReconRequired, PrintOutcome::Unknown) => Decision::Ack,
        (Paid, PrintOutcome::Unknown) => {
            let mut update = OutcomeUpdate::new(id, Paid, Paid, "print_unknown", now_ms);
            update.print_outcome = Some(print_str(outcome));
            Decision::Apply(update)
        }
        (from @ (Paid | ReconRequired), PrintOutcome::Ok) => {
            let mut update = OutcomeUpdate::new(id, from, Printed, "printed", now_ms);
            update.expect_print_outcome = record.print_outcome.as_deref();
            update.print_outcome = Some(print_str(outcome));
            Decision::Apply(update)
        }
        (from @ (Paid | ReconRequired), PrintOutcome::Failed) => {
            let Some(paid_yen) = record.paid_yen else {
                return Decision::Reject(ErrorCode::Internal, "paid without an amount".into());
            };
            let mut update = OutcomeUpdate::new(id, from, Voided, "voided", now_ms);
            update.expect_print_outcome = record.print_outcome.as_deref();
            update.print_outcome = Some(print_str(outcome));
            update.void_reason = Some(VOID_PRINT_FAILED);
            update.refund = Some((paid_yen, VOID_PRINT_FAILED));
            Decision::Apply(update)
        }
        // Printed (or settled): `ok` again or an `unknown` sent before the `ok` are
        // repeats; `failed` contradicts.
        (Printed | Settled, PrintOutcome::Ok | PrintOutcome::Unknown) => Decision::Ack,
        (Printed | Settled, PrintOutcome::Failed) => conflict(record, "print"),
        (Voided, _) if record.void_reason.as_deref() == Some(VOID_PRINT_FAILED) => {
            if outcome == PrintOutcome::Ok {
                conflict(record, "print")
            } else {
                Decision::Ack
            }
        }
        // Voided for another reason: nothing may have been printed.
        (Voided, _) => conflict(record, "print"),
    }
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepSummary {
    /// `prepared → voided` (`payment_timeout`).
    pub voided_payment_timeout: u64,
    /// `authorized → expired` (request deadline passed).
    pub expired_authorized: u64,
    /// Used challenges expired more than a day ago, deleted.
    pub challenges_deleted: u64,
    /// Expired card sessions, deleted (with the card certificates they kept).
    pub card_sessions_deleted: u64,
    /// Settlement windows closed because their cut passed (auto-close only).
    pub windows_closed: u64,
}

/// Beyond the request deadline, how long an `authorized` row is left to its own
/// request before the sweep expires it (the request's own timeout path goes first).
pub const AUTHORIZED_EXPIRY_MARGIN_MS: i64 = 30_000;
/// A used challenge's row is kept this long after the nonce expired (for the audit of
/// replays); any time after its expiry would keep it single use (`crate::challenge`).
pub const CHALLENGE_RETENTION_MS: i64 = 86_400_000;
/// Rows moved or deleted per write round (bounded work per round; rounds repeat until
/// done).
pub const SWEEP_BATCH: i64 = 500;
/// Upper bound on rounds per sweep, so one sweep cannot run forever.
const SWEEP_MAX_ROUNDS: usize = 100;

/// Voids `prepared` issuances unpaid for `payment_timeout_ms`, expires `authorized`
/// ones whose request deadline (plus a margin) passed, deletes old challenges and
/// expired card sessions. Every move is conditional, so several replicas may sweep at
/// once.
pub async fn sweep(
    pool: &Store,
    timeouts: &Timeouts,
    now_unix_ms: i64,
) -> Result<SweepSummary, DbError> {
    let mut summary = SweepSummary::default();
    let payment_cutoff =
        now_unix_ms.saturating_sub(i64::try_from(timeouts.payment_timeout_ms).unwrap_or(i64::MAX));
    summary.voided_payment_timeout =
        sweep_state(pool, IssuanceState::Prepared, payment_cutoff, |id| {
            let mut update = OutcomeUpdate::new(
                id,
                IssuanceState::Prepared,
                IssuanceState::Voided,
                "voided",
                now_unix_ms,
            );
            update.void_reason = Some(VOID_PAYMENT_TIMEOUT);
            update
        })
        .await?;
    // `updated_at` of an authorized row is its creation, taken just after the request
    // started, so the deadline measured from it is never early.
    let deadline_ms = i64::try_from(timeouts.request_deadline_ms).unwrap_or(i64::MAX);
    let authorized_cutoff = now_unix_ms
        .saturating_sub(deadline_ms)
        .saturating_sub(AUTHORIZED_EXPIRY_MARGIN_MS);
    summary.expired_authorized =
        sweep_state(pool, IssuanceState::Authorized, authorized_cutoff, |id| {
            OutcomeUpdate::new(
                id,
                IssuanceState::Authorized,
                IssuanceState::Expired,
                "expired",
                now_unix_ms,
            )
        })
        .await?;
    let challenge_cutoff = now_unix_ms.saturating_sub(CHALLENGE_RETENTION_MS);
    summary.challenges_deleted =
        delete_in_rounds(|| db::delete_old_challenges(pool, challenge_cutoff, SWEEP_BATCH)).await?;
    summary.card_sessions_deleted =
        delete_in_rounds(|| db::delete_expired_card_sessions(pool, now_unix_ms, SWEEP_BATCH))
            .await?;
    if summary != SweepSummary::default() {
        tracing::info!(?summary, "sweep");
    }
    Ok(summary)
}

/// Repeats a clean-up write of at most [`SWEEP_BATCH`] rows while the last one was
/// full, at most [`SWEEP_MAX_ROUNDS`] times; returns the rows deleted in all.
async fn delete_in_rounds<F, R>(mut round: F) -> Result<u64, DbError>
where
    F: FnMut() -> R,
    R: std::future::Future<Output = Result<u64, DbError>>,
{
    let mut deleted = 0;
    for _ in 0..SWEEP_MAX_ROUNDS {
        let now = round().await?;
        deleted += now;
        if now < SWEEP_BATCH as u64 {
            break;
        }
    }
    Ok(deleted)
}

async fn sweep_state(
    pool: &Store,
    state: IssuanceState,
    cutoff_unix_ms: i64,
    update_for: impl for<'a> Fn(&'a str) -> OutcomeUpdate<'a>,
) -> Result<u64, DbError> {
    let mut moved = 0;
    for _ in 0..SWEEP_MAX_ROUNDS {
        let ids = db::stale_in_state(pool, state, cutoff_unix_ms, SWEEP_BATCH).await?;
        let mut moved_now = 0;
        for id in &ids {
            // `false`: a report or another replica moved it first; nothing to do.
            if db::apply_outcome(pool, &update_for(id)).await? {
                moved_now += 1;
            }
        }
        moved += moved_now;
        if i64::try_from(ids.len()).unwrap_or(i64::MAX) < SWEEP_BATCH || moved_now == 0 {
            break;
        }
    }
    Ok(moved)
}
