//! The issuance lifecycle after `prepared`: payment and print reports, idempotent
//! duplicates, conflicts, out-of-order reports, concurrent duplicates, the sweep and
//! money conservation, against a real (temporary SQLite) store.

use center::configuration::Timeouts;
use center::db::{self, IssuanceState, TransitionFields};
use center::lifecycle::{apply_payment, apply_print, sweep, SweepSummary};
use center::store::Store as CenterStore;
use schemas::{
    ErrorCode, IssuanceStatus, KioskId, OperatorId, OutcomeAck, PaymentMethod, PaymentOutcome,
    PaymentReport, PrintOutcome, PrintReport, RequestId,
};

const FEE_PER_COPY_YEN: i64 = 200;
const COPIES: i64 = 2;
const TOTAL_FEE_YEN: u32 = 400;
const T0_MS: i64 = 1_790_000_000_000;

mod common;

use common::{Spec, TempStore};

const SPEC: Spec = Spec {
    operator: "lawson",
    kiosk: "lawson-0001",
    municipality: "131016",
    certificate_type: "residence_record",
    copies: COPIES,
    fee_yen_per_copy: FEE_PER_COPY_YEN,
};

struct Store {
    pool: CenterStore,
    temp: TempStore,
}

impl Store {
    async fn new(tag: &str) -> Self {
        let temp = TempStore::new(&format!("lifecycle-{tag}")).await;
        Self {
            pool: temp.pool.clone(),
            temp,
        }
    }

    async fn close(self) {
        self.temp.close().await;
    }

    /// A new issuance by `lawson` / `lawson-0001`, authorized at `at_ms`.
    async fn authorized(&self, at_ms: i64) -> String {
        common::authorized(&self.pool, &SPEC, at_ms).await
    }

    /// A new issuance in `prepared` (fee 2 × 200 yen) since `at_ms`.
    async fn prepared(&self, at_ms: i64) -> String {
        common::prepared(&self.pool, &SPEC, at_ms).await
    }

    async fn paid(&self, at_ms: i64) -> String {
        let id = self.prepared(at_ms).await;
        let ack = self.pay(&id, paid_report()).await.unwrap();
        assert_eq!(ack.status, IssuanceStatus::Paid);
        id
    }

    async fn pay(&self, id: &str, report: PaymentReport) -> Result<OutcomeAck, ErrorCode> {
        apply_payment(&self.pool, &operator(), id, &report, T0_MS + 1_000)
            .await
            .map_err(|e| e.code)
    }

    async fn print(&self, id: &str, outcome: PrintOutcome) -> Result<OutcomeAck, ErrorCode> {
        self.print_report(id, print_report(outcome)).await
    }

    async fn print_report(&self, id: &str, report: PrintReport) -> Result<OutcomeAck, ErrorCode> {
        apply_print(&self.pool, &operator(), id, &report, T0_MS + 2_000)
            .await
            .map_err(|e| e.code)
    }

    async fn state(&self, id: &str) -> IssuanceState {
        db::find_issuance(&self.pool, id)
            .await
            .unwrap()
            .unwrap()
            .state
    }

    async fn events(&self, id: &str) -> Vec<String> {
        db::audit_events(&self.pool, id).await.unwrap()
    }

    async fn assert_conserved(&self) -> db::MoneyTotals {
        let totals = db::money_totals(&self.pool).await.unwrap();
        assert_eq!(
            totals.paid_yen,
            totals.printed_yen + totals.refunded_yen + totals.unresolved_paid_yen,
            "{totals:?}"
        );
        totals
    }
}

fn operator() -> OperatorId {
    OperatorId::parse("lawson").unwrap()
}

fn kiosk() -> KioskId {
    KioskId::parse("lawson-0001").unwrap()
}

fn payment(outcome: PaymentOutcome, amount_yen: u32) -> PaymentReport {
    PaymentReport {
        kiosk_id: kiosk(),
        outcome,
        amount_yen,
        method: PaymentMethod::Cash,
        repeat: false,
    }
}

fn paid_report() -> PaymentReport {
    payment(PaymentOutcome::Paid, TOTAL_FEE_YEN)
}

fn print_report(outcome: PrintOutcome) -> PrintReport {
    PrintReport {
        kiosk_id: kiosk(),
        outcome,
        repeat: false,
    }
}

#[tokio::test]
async fn paid_then_printed_records_amount_method_and_events() {
    let store = Store::new("printed").await;
    let id = store.prepared(T0_MS).await;
    let mut report = paid_report();
    report.method = PaymentMethod::EMoney;
    let ack = store.pay(&id, report).await.unwrap();
    assert_eq!(ack.status, IssuanceStatus::Paid);
    assert_eq!(ack.paid_yen, TOTAL_FEE_YEN);
    assert_eq!(ack.refund_yen, 0);
    assert_eq!(ack.request_id.to_string(), id);
    let record = db::find_outcome_record(&store.pool, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.payment_method.as_deref(), Some("e_money"));

    let ack = store.print(&id, PrintOutcome::Ok).await.unwrap();
    assert_eq!(ack.status, IssuanceStatus::Printed);
    assert_eq!(ack.print_outcome, Some(PrintOutcome::Ok));
    assert_eq!(ack.paid_yen, TOTAL_FEE_YEN);
    assert_eq!(
        store.events(&id).await,
        ["authorized", "prepared", "paid", "printed"]
    );
    let totals = store.assert_conserved().await;
    assert_eq!(totals.paid_yen, 400);
    assert_eq!(totals.printed_yen, 400);
    assert_eq!(totals.refunded_yen, 0);
    store.close().await;
}

#[tokio::test]
async fn wrong_amount_is_bad_request_and_changes_nothing() {
    let store = Store::new("amount").await;
    let id = store.prepared(T0_MS).await;
    for amount in [0, TOTAL_FEE_YEN - 1, TOTAL_FEE_YEN + 1] {
        let result = store.pay(&id, payment(PaymentOutcome::Paid, amount)).await;
        assert_eq!(result.unwrap_err(), ErrorCode::BadRequest, "{amount}");
    }
    // A non-paid outcome must carry 0 yen.
    let result = store.pay(&id, payment(PaymentOutcome::Cancelled, 10)).await;
    assert_eq!(result.unwrap_err(), ErrorCode::BadRequest);
    assert_eq!(store.state(&id).await, IssuanceState::Prepared);
    store.close().await;
}

#[tokio::test]
async fn cancelled_and_timed_out_before_payment_void_without_refund() {
    let store = Store::new("cancel").await;
    for (outcome, reason) in [
        (PaymentOutcome::Cancelled, "cancelled"),
        (PaymentOutcome::TimedOut, "payment_timeout"),
    ] {
        let id = store.prepared(T0_MS).await;
        let ack = store.pay(&id, payment(outcome, 0)).await.unwrap();
        assert_eq!(ack.status, IssuanceStatus::Voided);
        assert_eq!((ack.paid_yen, ack.refund_yen), (0, 0));
        let record = db::find_outcome_record(&store.pool, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.void_reason.as_deref(), Some(reason));
        assert_eq!(record.refund_yen, None);
        // Payment after the voiding: the kiosk must refund and never print.
        assert_eq!(
            store.pay(&id, paid_report()).await.unwrap_err(),
            ErrorCode::OutcomeConflict
        );
        assert_eq!(
            store.print(&id, PrintOutcome::Ok).await.unwrap_err(),
            ErrorCode::OutcomeConflict
        );
    }
    let totals = store.assert_conserved().await;
    assert_eq!(totals, db::MoneyTotals::default());
    store.close().await;
}

#[tokio::test]
async fn cancelled_after_payment_voids_with_a_refund_record() {
    let store = Store::new("kiosk-refund").await;
    let id = store.paid(T0_MS).await;
    let ack = store
        .pay(&id, payment(PaymentOutcome::Cancelled, 0))
        .await
        .unwrap();
    assert_eq!(ack.status, IssuanceStatus::Voided);
    assert_eq!(ack.paid_yen, TOTAL_FEE_YEN);
    assert_eq!(ack.refund_yen, TOTAL_FEE_YEN);
    let record = db::find_outcome_record(&store.pool, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.void_reason.as_deref(), Some("kiosk_refunded"));
    // Repeats of both reports are acknowledged with the same answer, no new event.
    let events = store.events(&id).await.len();
    assert_eq!(
        store
            .pay(&id, payment(PaymentOutcome::Cancelled, 0))
            .await
            .unwrap(),
        ack
    );
    assert_eq!(store.pay(&id, paid_report()).await.unwrap(), ack);
    assert_eq!(store.events(&id).await.len(), events);
    // Printing after the money went back contradicts the record.
    assert_eq!(
        store.print(&id, PrintOutcome::Ok).await.unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    let totals = store.assert_conserved().await;
    assert_eq!((totals.paid_yen, totals.refunded_yen), (400, 400));
    store.close().await;
}

#[tokio::test]
async fn cancelled_after_a_print_outcome_is_a_conflict() {
    let store = Store::new("cancel-late").await;
    let id = store.paid(T0_MS).await;
    store.print(&id, PrintOutcome::Unknown).await.unwrap();
    assert_eq!(
        store
            .pay(&id, payment(PaymentOutcome::Cancelled, 0))
            .await
            .unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    let printed = store.paid(T0_MS).await;
    store.print(&printed, PrintOutcome::Ok).await.unwrap();
    assert_eq!(
        store
            .pay(&printed, payment(PaymentOutcome::Cancelled, 0))
            .await
            .unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    assert_eq!(store.state(&id).await, IssuanceState::Paid);
    assert_eq!(store.state(&printed).await, IssuanceState::Printed);
    store.close().await;
}

#[tokio::test]
async fn print_failed_after_payment_voids_with_a_refund() {
    let store = Store::new("print-failed").await;
    let id = store.paid(T0_MS).await;
    let ack = store.print(&id, PrintOutcome::Failed).await.unwrap();
    assert_eq!(ack.status, IssuanceStatus::Voided);
    assert_eq!(ack.refund_yen, TOTAL_FEE_YEN);
    assert_eq!(ack.print_outcome, Some(PrintOutcome::Failed));
    let record = db::find_outcome_record(&store.pool, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.void_reason.as_deref(), Some("print_failed"));
    let events = store.events(&id).await;
    assert_eq!(store.print(&id, PrintOutcome::Failed).await.unwrap(), ack);
    assert_eq!(store.events(&id).await, events);
    assert_eq!(
        store.print(&id, PrintOutcome::Ok).await.unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    let totals = store.assert_conserved().await;
    assert_eq!((totals.refunded_yen, totals.printed_yen), (400, 0));
    store.close().await;
}

#[tokio::test]
async fn print_before_payment_and_reports_on_early_states_are_illegal() {
    let store = Store::new("illegal").await;
    let prepared = store.prepared(T0_MS).await;
    for outcome in [
        PrintOutcome::Ok,
        PrintOutcome::Failed,
        PrintOutcome::Unknown,
    ] {
        assert_eq!(
            store.print(&prepared, outcome).await.unwrap_err(),
            ErrorCode::IllegalTransition
        );
    }
    assert_eq!(store.state(&prepared).await, IssuanceState::Prepared);

    let authorized = store.authorized(T0_MS).await;
    let refused = store.authorized(T0_MS).await;
    db::transition(
        &store.pool,
        &refused,
        IssuanceState::Authorized,
        IssuanceState::Refused,
        &TransitionFields {
            refusal_reason: Some("no_record"),
            ..TransitionFields::default()
        },
        T0_MS,
    )
    .await
    .unwrap();
    let expired = store.authorized(T0_MS).await;
    db::transition(
        &store.pool,
        &expired,
        IssuanceState::Authorized,
        IssuanceState::Expired,
        &TransitionFields::default(),
        T0_MS,
    )
    .await
    .unwrap();
    for id in [&authorized, &refused, &expired] {
        let before = store.state(id).await;
        assert_eq!(
            store.pay(id, paid_report()).await.unwrap_err(),
            ErrorCode::IllegalTransition
        );
        assert_eq!(
            store
                .pay(id, payment(PaymentOutcome::Cancelled, 0))
                .await
                .unwrap_err(),
            ErrorCode::IllegalTransition
        );
        assert_eq!(
            store.print(id, PrintOutcome::Ok).await.unwrap_err(),
            ErrorCode::IllegalTransition
        );
        assert_eq!(store.state(id).await, before);
    }
    store.close().await;
}

#[tokio::test]
async fn unknown_print_outcome_stays_paid_and_a_later_resend_resolves_it() {
    let store = Store::new("unknown").await;
    let to_print = store.paid(T0_MS).await;
    let to_fail = store.paid(T0_MS).await;
    for id in [&to_print, &to_fail] {
        let ack = store.print(id, PrintOutcome::Unknown).await.unwrap();
        assert_eq!(ack.status, IssuanceStatus::Paid);
        assert_eq!(ack.print_outcome, Some(PrintOutcome::Unknown));
        // The same unknown again: same answer, no new event.
        assert_eq!(store.print(id, PrintOutcome::Unknown).await.unwrap(), ack);
        assert_eq!(
            store.events(id).await,
            ["authorized", "prepared", "paid", "print_unknown"]
        );
    }
    let totals = store.assert_conserved().await;
    assert_eq!(totals.unresolved_paid_yen, 800);

    // Resolution comes as a repeat after a kiosk restart.
    let mut ok = print_report(PrintOutcome::Ok);
    ok.repeat = true;
    let ack = store.print_report(&to_print, ok).await.unwrap();
    assert_eq!(ack.status, IssuanceStatus::Printed);
    assert_eq!(ack.print_outcome, Some(PrintOutcome::Ok));
    let mut failed = print_report(PrintOutcome::Failed);
    failed.repeat = true;
    let ack = store.print_report(&to_fail, failed).await.unwrap();
    assert_eq!(ack.status, IssuanceStatus::Voided);
    assert_eq!(ack.refund_yen, TOTAL_FEE_YEN);

    // An unknown arriving after the resolution contradicts nothing it knew.
    assert_eq!(
        store
            .print(&to_print, PrintOutcome::Unknown)
            .await
            .unwrap()
            .status,
        IssuanceStatus::Printed
    );
    assert_eq!(
        store
            .print(&to_print, PrintOutcome::Failed)
            .await
            .unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    let totals = store.assert_conserved().await;
    assert_eq!(
        (
            totals.paid_yen,
            totals.printed_yen,
            totals.refunded_yen,
            totals.unresolved_paid_yen
        ),
        (800, 400, 400, 0)
    );
    store.close().await;
}

#[tokio::test]
async fn duplicate_payment_is_acknowledged_once_and_a_different_one_conflicts() {
    let store = Store::new("dup").await;
    let id = store.prepared(T0_MS).await;
    let first = store.pay(&id, paid_report()).await.unwrap();
    let mut repeat = paid_report();
    repeat.repeat = true;
    assert_eq!(store.pay(&id, repeat).await.unwrap(), first);
    assert_eq!(store.events(&id).await, ["authorized", "prepared", "paid"]);
    let mut other_method = paid_report();
    other_method.method = PaymentMethod::EMoney;
    assert_eq!(
        store.pay(&id, other_method).await.unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    assert_eq!(
        store
            .pay(&id, payment(PaymentOutcome::TimedOut, 0))
            .await
            .unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    store.print(&id, PrintOutcome::Ok).await.unwrap();
    let events = store.events(&id).await;
    assert_eq!(
        store.print(&id, PrintOutcome::Ok).await.unwrap().status,
        IssuanceStatus::Printed
    );
    assert_eq!(store.events(&id).await, events);
    store.close().await;
}

#[tokio::test]
async fn other_kiosk_or_operator_and_unknown_ids_are_rejected() {
    let store = Store::new("authz").await;
    let id = store.prepared(T0_MS).await;
    let mut other_kiosk = paid_report();
    other_kiosk.kiosk_id = KioskId::parse("lawson-0002").unwrap();
    let err = apply_payment(&store.pool, &operator(), &id, &other_kiosk, T0_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::KioskNotAuthorized);
    let other_operator = OperatorId::parse("seven").unwrap();
    let err = apply_payment(&store.pool, &other_operator, &id, &paid_report(), T0_MS)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::KioskNotAuthorized);
    let unknown = RequestId::new_random().to_string();
    assert_eq!(
        store.pay(&unknown, paid_report()).await.unwrap_err(),
        ErrorCode::NotFound
    );
    assert_eq!(
        store
            .print("not-a-request-id", PrintOutcome::Ok)
            .await
            .unwrap_err(),
        ErrorCode::NotFound
    );
    assert_eq!(store.state(&id).await, IssuanceState::Prepared);
    store.close().await;
}

#[tokio::test]
async fn concurrent_identical_reports_apply_once() {
    let store = Store::new("concurrent").await;
    const PARALLEL: usize = 8;
    // Payments.
    let id = store.prepared(T0_MS).await;
    let mut tasks = Vec::new();
    for _ in 0..PARALLEL {
        let pool = store.pool.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            apply_payment(&pool, &operator(), &id, &paid_report(), T0_MS + 1)
                .await
                .map_err(|e| e.code)
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.push(task.await.unwrap().unwrap());
    }
    assert!(acks.iter().all(|a| *a == acks[0]), "{acks:?}");
    assert_eq!(store.events(&id).await, ["authorized", "prepared", "paid"]);

    // Print failures (each would write a refund row if applied twice).
    let mut tasks = Vec::new();
    for _ in 0..PARALLEL {
        let pool = store.pool.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            apply_print(
                &pool,
                &operator(),
                &id,
                &print_report(PrintOutcome::Failed),
                T0_MS + 2,
            )
            .await
            .map_err(|e| e.code)
        }));
    }
    for task in tasks {
        let ack = task.await.unwrap().unwrap();
        assert_eq!(ack.status, IssuanceStatus::Voided);
        assert_eq!(ack.refund_yen, TOTAL_FEE_YEN);
    }
    assert_eq!(
        store.events(&id).await,
        ["authorized", "prepared", "paid", "voided"]
    );
    let totals = store.assert_conserved().await;
    assert_eq!((totals.paid_yen, totals.refunded_yen), (400, 400));
    store.close().await;
}

fn timeouts() -> Timeouts {
    Timeouts {
        request_deadline_ms: 10_000,
        payment_timeout_ms: 300_000,
        ..Timeouts::default()
    }
}

#[tokio::test]
async fn sweep_voids_unpaid_prepared_rows_after_the_payment_timeout() {
    let store = Store::new("sweep-payment").await;
    let old = store.prepared(T0_MS).await;
    let fresh = store.prepared(T0_MS + 200_000).await;
    let paid = store.paid(T0_MS).await;

    // Just before the timeout nothing moves.
    let summary = sweep(&store.pool, &timeouts(), T0_MS + 299_999)
        .await
        .unwrap();
    assert_eq!(summary.voided_payment_timeout, 0);
    assert_eq!(store.state(&old).await, IssuanceState::Prepared);

    let summary = sweep(&store.pool, &timeouts(), T0_MS + 300_000)
        .await
        .unwrap();
    assert_eq!(summary.voided_payment_timeout, 1);
    assert_eq!(store.state(&old).await, IssuanceState::Voided);
    assert_eq!(store.state(&fresh).await, IssuanceState::Prepared);
    assert_eq!(store.state(&paid).await, IssuanceState::Paid);
    let record = db::find_outcome_record(&store.pool, &old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.void_reason.as_deref(), Some("payment_timeout"));
    assert_eq!(record.refund_yen, None);
    // A payment reported after the timeout is a conflict: the kiosk refunds.
    assert_eq!(
        store.pay(&old, paid_report()).await.unwrap_err(),
        ErrorCode::OutcomeConflict
    );
    // Sweeping again finds nothing more to do.
    let again = sweep(&store.pool, &timeouts(), T0_MS + 300_000)
        .await
        .unwrap();
    assert_eq!(again, SweepSummary::default());
    store.assert_conserved().await;
    store.close().await;
}

#[tokio::test]
async fn sweep_expires_requests_stuck_in_authorized() {
    let store = Store::new("sweep-authorized").await;
    let stuck = store.authorized(T0_MS).await;
    let young = store.authorized(T0_MS + 60_000).await;
    // Within the deadline plus margin: left to its own request.
    let summary = sweep(&store.pool, &timeouts(), T0_MS + 10_000)
        .await
        .unwrap();
    assert_eq!(summary.expired_authorized, 0);
    let later = T0_MS + 10_000 + center::lifecycle::AUTHORIZED_EXPIRY_MARGIN_MS;
    let summary = sweep(&store.pool, &timeouts(), later).await.unwrap();
    assert_eq!(summary.expired_authorized, 1);
    assert_eq!(store.state(&stuck).await, IssuanceState::Expired);
    assert_eq!(store.state(&young).await, IssuanceState::Authorized);
    assert_eq!(store.events(&stuck).await, ["authorized", "expired"]);
    store.close().await;
}

#[tokio::test]
async fn concurrent_sweeps_move_each_row_once() {
    let store = Store::new("sweep-concurrent").await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(store.prepared(T0_MS).await);
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pool = store.pool.clone();
        tasks.push(tokio::spawn(async move {
            sweep(&pool, &timeouts(), T0_MS + 400_000).await.unwrap()
        }));
    }
    let mut voided = 0;
    for task in tasks {
        voided += task.await.unwrap().voided_payment_timeout;
    }
    assert_eq!(voided, 10);
    for id in &ids {
        assert_eq!(store.events(id).await, ["authorized", "prepared", "voided"]);
    }
    store.close().await;
}

#[tokio::test]
async fn sweep_deletes_only_challenges_expired_a_day_ago() {
    let store = Store::new("sweep-challenges").await;
    let day_ms = center::lifecycle::CHALLENGE_RETENTION_MS;
    let used = |nonce: &str, expires_at_unix_ms: i64| db::ChallengeUse {
        nonce_hex: nonce.to_owned(),
        operator_id: "lawson".to_owned(),
        kiosk_id: "k".to_owned(),
        expires_at_unix_ms,
    };
    let old = used("0a1d", T0_MS + 5);
    let recent = used("0e0e", T0_MS + 120_000);
    for challenge in [&old, &recent] {
        assert!(db::use_challenge(&store.pool, challenge, T0_MS + 1)
            .await
            .unwrap());
        // Single use: the second use of the same nonce is refused.
        assert!(!db::use_challenge(&store.pool, challenge, T0_MS + 2)
            .await
            .unwrap());
        assert!(db::challenge_used(&store.pool, &challenge.nonce_hex)
            .await
            .unwrap());
    }
    let summary = sweep(&store.pool, &timeouts(), T0_MS + day_ms + 10)
        .await
        .unwrap();
    assert_eq!(summary.challenges_deleted, 1);
    // The one expired less than a day ago is still known as used.
    assert!(db::challenge_used(&store.pool, &recent.nonce_hex)
        .await
        .unwrap());
    assert!(
        !db::use_challenge(&store.pool, &recent, T0_MS + day_ms + 11)
            .await
            .unwrap()
    );
    assert!(!db::challenge_used(&store.pool, &old.nonce_hex)
        .await
        .unwrap());
    store.close().await;
}

/// The clean-up deletes in bounded writes ([`center::lifecycle::SWEEP_BATCH`] rows each) and
/// repeats them: one sweep still removes a backlog several writes long, oldest first,
/// and nothing younger than the cut.
#[tokio::test]
async fn sweep_deletes_a_backlog_of_challenges_in_bounded_writes() {
    let store = Store::new("sweep-challenge-backlog").await;
    let day_ms = center::lifecycle::CHALLENGE_RETENTION_MS;
    let backlog = 2 * center::lifecycle::SWEEP_BATCH + 234;
    for i in 0..backlog {
        let challenge = db::ChallengeUse {
            nonce_hex: format!("{i:08x}"),
            operator_id: "lawson".to_owned(),
            kiosk_id: "k".to_owned(),
            expires_at_unix_ms: T0_MS + i,
        };
        assert!(db::use_challenge(&store.pool, &challenge, T0_MS)
            .await
            .unwrap());
    }
    let kept = db::ChallengeUse {
        nonce_hex: "0e0e0e0e".to_owned(),
        operator_id: "lawson".to_owned(),
        kiosk_id: "k".to_owned(),
        expires_at_unix_ms: T0_MS + 600_000,
    };
    assert!(db::use_challenge(&store.pool, &kept, T0_MS).await.unwrap());
    let summary = sweep(&store.pool, &timeouts(), T0_MS + day_ms + backlog)
        .await
        .unwrap();
    assert_eq!(summary.challenges_deleted, backlog as u64);
    assert!(!db::challenge_used(&store.pool, "00000000").await.unwrap());
    assert!(
        !db::challenge_used(&store.pool, &format!("{:08x}", backlog - 1))
            .await
            .unwrap()
    );
    assert!(db::challenge_used(&store.pool, &kept.nonce_hex)
        .await
        .unwrap());
    let again = sweep(&store.pool, &timeouts(), T0_MS + day_ms + backlog)
        .await
        .unwrap();
    assert_eq!(again.challenges_deleted, 0);
    store.close().await;
}

#[test]
fn new_timeout_settings_have_defaults_and_can_be_set() {
    let old_file: Timeouts = toml::from_str(
        "request_deadline_ms = 10000\nadapter_timeout_ms = 8000\nchallenge_ttl_ms = 120000\n",
    )
    .unwrap();
    assert_eq!(old_file.payment_timeout_ms, 300_000);
    assert_eq!(old_file.sweep_interval_ms, 10_000);
    let set: Timeouts = toml::from_str(
        "request_deadline_ms = 10000\nadapter_timeout_ms = 8000\nchallenge_ttl_ms = 120000\n\
         payment_timeout_ms = 5000\nsweep_interval_ms = 250\n",
    )
    .unwrap();
    assert_eq!(
        (set.payment_timeout_ms, set.sweep_interval_ms),
        (5_000, 250)
    );
}
