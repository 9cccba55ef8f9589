//! The issuance after `prepared`, through the center's public HTTP API: payment and
//! print reports, every path of the lifecycle, idempotent and conflicting reports,
//! the payment-timeout sweep, and money conservation.

use e2e::on_both_backends;
use e2e::*;
use schemas::{
    CertificateKind, CertificateOrder, ErrorCode, HouseholdScope, IssuanceResponse, IssuanceStatus,
    KioskId, OutcomeAck, PaymentMethod, PaymentOutcome, PaymentReport, PrintOutcome, PrintReport,
    RequestId, Route,
};

on_both_backends!(
    paid_and_printed,
    cancelled_and_timed_out_payments_void_without_charge,
    print_failed_refunds_and_unknown_is_resolved_by_a_resend,
    duplicate_and_contradicting_reports,
    payment_timeout_sweep_voids_and_a_late_payment_is_refused,
    a_replayed_session_never_pays_or_prints_twice,
    a_notice_the_municipality_refuses_becomes_a_dead_letter_until_requeued,
    a_burst_of_prints_is_noticed_within_one_delivery_interval,
);

/// The kiosk `direct_issue` uses.
const KIOSK: &str = "seven-0064";

fn order() -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        },
        copies: 2,
    }
}

fn client(sb: &TestSandbox, kiosk: &str) -> kiosk_sim::CenterClient {
    kiosk_sim::CenterClient::new(&sb.kiosk_settings("seven", kiosk)).expect("client")
}

/// A prepared issuance for card 0001: (request id, total fee).
async fn prepared(sb: &TestSandbox) -> (RequestId, u32) {
    let card = sb.card("2121130000000001").clone();
    match sb.direct_issue(&card, order()).await.expect("answered") {
        IssuanceResponse::Prepared {
            request_id,
            total_fee_yen,
            ..
        } => (request_id, total_fee_yen),
        IssuanceResponse::Refused { reason, .. } => panic!("refused {reason:?}"),
    }
}

fn payment(outcome: PaymentOutcome, amount_yen: u32) -> PaymentReport {
    PaymentReport {
        kiosk_id: KioskId::parse(KIOSK).expect("kiosk id"),
        outcome,
        amount_yen,
        method: PaymentMethod::Cash,
        repeat: false,
    }
}

fn print(outcome: PrintOutcome) -> PrintReport {
    PrintReport {
        kiosk_id: KioskId::parse(KIOSK).expect("kiosk id"),
        outcome,
        repeat: false,
    }
}

async fn pay(sb: &TestSandbox, id: RequestId, report: &PaymentReport) -> OutcomeAck {
    client(sb, KIOSK)
        .report_payment(id, report)
        .await
        .expect("payment acknowledged")
}

async fn printed(sb: &TestSandbox, id: RequestId, report: &PrintReport) -> OutcomeAck {
    client(sb, KIOSK)
        .report_print(id, report)
        .await
        .expect("print acknowledged")
}

async fn events(sb: &TestSandbox, id: RequestId) -> Vec<String> {
    center::db::audit_events(&sb.running.center_pool, &id.to_string())
        .await
        .expect("audit events")
}

async fn paid_and_printed(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let (id, fee) = prepared(&sb).await;
    assert_eq!(fee, 400, "2 copies at 200 yen");
    let ack = pay(&sb, id, &payment(PaymentOutcome::Paid, fee)).await;
    assert_eq!(ack.status, IssuanceStatus::Paid);
    assert_eq!((ack.paid_yen, ack.refund_yen), (fee, 0));
    let ack = printed(&sb, id, &print(PrintOutcome::Ok)).await;
    assert_eq!(ack.status, IssuanceStatus::Printed);
    assert_eq!(
        events(&sb, id).await,
        ["authorized", "prepared", "paid", "printed"]
    );
    let totals = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals");
    assert_eq!(totals.paid_yen, i64::from(fee));
    assert_eq!(totals.printed_yen, i64::from(fee));
    assert_eq!(totals.refunded_yen, 0);
    sb.stop().await;
}

async fn cancelled_and_timed_out_payments_void_without_charge(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    for outcome in [PaymentOutcome::Cancelled, PaymentOutcome::TimedOut] {
        let (id, _) = prepared(&sb).await;
        let ack = pay(&sb, id, &payment(outcome, 0)).await;
        assert_eq!(ack.status, IssuanceStatus::Voided);
        assert_eq!((ack.paid_yen, ack.refund_yen), (0, 0));
        // Nothing may be printed for it now.
        let error = client(&sb, KIOSK)
            .report_print(id, &print(PrintOutcome::Ok))
            .await
            .expect_err("print after void");
        assert!(matches!(
            error.error_code(),
            Some(ErrorCode::IllegalTransition | ErrorCode::OutcomeConflict)
        ));
    }
    // Print before payment is out of order.
    let (id, _) = prepared(&sb).await;
    let error = client(&sb, KIOSK)
        .report_print(id, &print(PrintOutcome::Ok))
        .await
        .expect_err("print before payment");
    assert_eq!(error.error_code(), Some(ErrorCode::IllegalTransition));
    let totals = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals");
    assert_eq!(totals.paid_yen, 0);
    sb.stop().await;
}

async fn print_failed_refunds_and_unknown_is_resolved_by_a_resend(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    // Jam before the first page: voided with a refund of what was paid.
    let (failed_id, fee) = prepared(&sb).await;
    pay(&sb, failed_id, &payment(PaymentOutcome::Paid, fee)).await;
    let ack = printed(&sb, failed_id, &print(PrintOutcome::Failed)).await;
    assert_eq!(ack.status, IssuanceStatus::Voided);
    assert_eq!(ack.refund_yen, fee);

    // Power loss: unknown, still paid; the kiosk's later re-send says ok.
    let (unknown_id, fee2) = prepared(&sb).await;
    pay(&sb, unknown_id, &payment(PaymentOutcome::Paid, fee2)).await;
    let ack = printed(&sb, unknown_id, &print(PrintOutcome::Unknown)).await;
    assert_eq!(ack.status, IssuanceStatus::Paid);
    assert_eq!(ack.print_outcome, Some(PrintOutcome::Unknown));
    let mut resend = print(PrintOutcome::Ok);
    resend.repeat = true;
    let ack = printed(&sb, unknown_id, &resend).await;
    assert_eq!(ack.status, IssuanceStatus::Printed);

    let totals = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals");
    assert_eq!(totals.paid_yen, i64::from(fee + fee2));
    assert_eq!(totals.refunded_yen, i64::from(fee));
    assert_eq!(totals.printed_yen, i64::from(fee2));
    assert_eq!(
        totals.paid_yen,
        totals.printed_yen + totals.refunded_yen + totals.unresolved_paid_yen,
        "money is conserved"
    );
    sb.stop().await;
}

async fn duplicate_and_contradicting_reports(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let (id, fee) = prepared(&sb).await;
    // A wrong amount is not a payment.
    let error = client(&sb, KIOSK)
        .report_payment(id, &payment(PaymentOutcome::Paid, fee + 1))
        .await
        .expect_err("wrong amount");
    assert_eq!(error.error_code(), Some(ErrorCode::BadRequest));
    // Another kiosk cannot report for this one.
    let mut foreign = payment(PaymentOutcome::Paid, fee);
    foreign.kiosk_id = KioskId::parse("seven-0002").expect("kiosk id");
    let error = client(&sb, "seven-0002")
        .report_payment(id, &foreign)
        .await
        .expect_err("foreign kiosk");
    assert_eq!(error.error_code(), Some(ErrorCode::KioskNotAuthorized));

    let first = pay(&sb, id, &payment(PaymentOutcome::Paid, fee)).await;
    let again = pay(&sb, id, &payment(PaymentOutcome::Paid, fee)).await;
    assert_eq!(first, again, "the same report gets the same answer");
    let done = printed(&sb, id, &print(PrintOutcome::Ok)).await;
    assert_eq!(printed(&sb, id, &print(PrintOutcome::Ok)).await, done);
    let error = client(&sb, KIOSK)
        .report_print(id, &print(PrintOutcome::Failed))
        .await
        .expect_err("failed after printed");
    assert_eq!(error.error_code(), Some(ErrorCode::OutcomeConflict));
    assert_eq!(
        events(&sb, id).await,
        ["authorized", "prepared", "paid", "printed"],
        "duplicates add no event"
    );

    // The kiosk lost the paid ack, refunded the resident and reports cancelled.
    let (refunded_id, fee) = prepared(&sb).await;
    pay(&sb, refunded_id, &payment(PaymentOutcome::Paid, fee)).await;
    let ack = pay(&sb, refunded_id, &payment(PaymentOutcome::Cancelled, 0)).await;
    assert_eq!(ack.status, IssuanceStatus::Voided);
    assert_eq!(ack.refund_yen, fee);

    // Concurrent identical reports apply once.
    let (concurrent_id, fee) = prepared(&sb).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let c = client(&sb, KIOSK);
        let report = payment(PaymentOutcome::Paid, fee);
        tasks.spawn(async move { c.report_payment(concurrent_id, &report).await });
    }
    while let Some(result) = tasks.join_next().await {
        let ack = result.expect("task").expect("acknowledged");
        assert_eq!(ack.status, IssuanceStatus::Paid);
    }
    let paid_events = events(&sb, concurrent_id)
        .await
        .into_iter()
        .filter(|e| e == "paid")
        .count();
    assert_eq!(paid_events, 1);
    sb.stop().await;
}

async fn payment_timeout_sweep_voids_and_a_late_payment_is_refused(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let (id, fee) = prepared(&sb).await;
    // Ten minutes later the resident has not paid: the sweep voids it.
    let later = jiff::Timestamp::now().as_millisecond() + sb.clock_offset_ms() + 10 * 60 * 1000;
    let timeouts = center::configuration::Timeouts::default();
    let summary = center::lifecycle::sweep(&sb.running.center_pool, &timeouts, later)
        .await
        .expect("sweep");
    assert!(summary.voided_payment_timeout >= 1);
    let error = client(&sb, KIOSK)
        .report_payment(id, &payment(PaymentOutcome::Paid, fee))
        .await
        .expect_err("late payment");
    assert_eq!(error.error_code(), Some(ErrorCode::OutcomeConflict));
    let row = center::db::find_issuance(&sb.running.center_pool, &id.to_string())
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.state, center::db::IssuanceState::Voided);
    sb.stop().await;
}

/// A kiosk replaying a session under its idempotency key while the first session is
/// printing (paid, print outcome not in, or `unknown`) is told the request is in
/// progress: it never gets the document, so it cannot take a second payment and print
/// again. Once the print outcome is in, the replay gets the document and its payment
/// is answered with the recorded status (`printed`), so the kiosk refunds and prints
/// nothing; the fee is charged once.
async fn a_replayed_session_never_pays_or_prints_twice(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let card = sb.card("2121130000000001").clone();
    let key = uuid::Uuid::new_v4().to_string();
    let prepared = |response: IssuanceResponse| match response {
        IssuanceResponse::Prepared {
            request_id,
            total_fee_yen,
            ..
        } => (request_id, total_fee_yen),
        IssuanceResponse::Refused { reason, .. } => panic!("refused {reason:?}"),
    };
    let (id, fee) = prepared(
        sb.direct_issue_with_key(&card, order(), &key)
            .await
            .expect("answered"),
    );
    assert_eq!(
        pay(&sb, id, &payment(PaymentOutcome::Paid, fee))
            .await
            .status,
        IssuanceStatus::Paid
    );
    let replay_in_progress = || async {
        let error = sb
            .direct_issue_with_key(&card, order(), &key)
            .await
            .expect_err("no document while the first session prints");
        assert_eq!(error.error_code(), Some(ErrorCode::RequestInProgress));
    };
    replay_in_progress().await;
    // Power lost mid-print: still paid, still in progress.
    printed(&sb, id, &print(PrintOutcome::Unknown)).await;
    replay_in_progress().await;
    // The printer's answer after the restart resolves it.
    let mut resolved = print(PrintOutcome::Ok);
    resolved.repeat = true;
    assert_eq!(
        printed(&sb, id, &resolved).await.status,
        IssuanceStatus::Printed
    );
    let (replayed_id, _) = prepared(
        sb.direct_issue_with_key(&card, order(), &key)
            .await
            .expect("answered"),
    );
    assert_eq!(replayed_id, id, "the same request");
    assert_eq!(
        pay(&sb, id, &payment(PaymentOutcome::Paid, fee))
            .await
            .status,
        IssuanceStatus::Printed,
        "a second payment is answered with the recorded status, never `paid`"
    );
    let totals = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals");
    assert_eq!(totals.paid_yen, i64::from(fee), "charged once");
    sb.stop().await;
}

/// An outcome notice the municipality keeps refusing (here: it no longer holds the
/// answer it signed, so it answers 404) is retried only `dead_letter_after_rejections`
/// times, then left as a dead letter (no more attempts) until an operator requeues it.
async fn a_notice_the_municipality_refuses_becomes_a_dead_letter_until_requeued(backend: Backend) {
    let Some(sb) = spawn_sandbox_with(backend, |layout| {
        set_center_notices(
            layout,
            &[
                ("interval_ms", 50),
                ("initial_backoff_ms", 50),
                ("max_backoff_ms", 100),
                ("timeout_ms", 2000),
                ("dead_letter_after_rejections", 2),
            ],
        )
    })
    .await
    else {
        return;
    };
    let (id, fee) = prepared(&sb).await;
    // The municipality loses the answer it signed (a restored backup, say).
    let adapter = sb
        .running
        .adapter_pool("212113")
        .await
        .expect("adapter pool");
    sqlx::query("DELETE FROM answers WHERE request_id = $1")
        .bind(id.to_string())
        .execute(&adapter)
        .await
        .expect("answer deleted");
    adapter.close().await;
    pay(&sb, id, &payment(PaymentOutcome::Paid, fee)).await;
    printed(&sb, id, &print(PrintOutcome::Ok)).await;

    let notice = || async {
        center::notices::list(&sb.running.center_pool)
            .await
            .expect("notices")
            .into_iter()
            .find(|n| n.request_id == id.to_string())
            .expect("the print wrote a notice")
    };
    let until_dead = || async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let row = notice().await;
            if row.dead_at_unix_ms.is_some() {
                return row;
            }
            assert!(std::time::Instant::now() < deadline, "never dead: {row:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let dead = until_dead().await;
    assert_eq!(dead.rejections, 2, "{dead:?}");
    assert_eq!(dead.attempts, 2, "{dead:?}");
    assert!(dead.delivered_at_unix_ms.is_none());
    assert!(
        dead.last_error
            .as_deref()
            .is_some_and(|e| e.contains("404")),
        "{dead:?}"
    );
    // No more attempts while dead (the loop runs every 50 ms).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(notice().await.attempts, 2);

    // Requeued: tried again (and, the answer still missing, dead again).
    let now_ms = center::clock::Clock::now_unix_ms(&*sb.clock);
    assert_eq!(
        center::notices::requeue(&sb.running.center_pool, Some(&id.to_string()), now_ms)
            .await
            .expect("requeue"),
        1
    );
    assert_eq!(
        center::notices::requeue(&sb.running.center_pool, Some(&id.to_string()), now_ms)
            .await
            .expect("requeue"),
        0,
        "only dead letters are requeued"
    );
    let again = until_dead().await;
    assert_eq!(again.attempts, 4, "{again:?}");
    sb.stop().await;
}

/// Prints faster than one delivery batch per interval (the load benchmark's 150/s is
/// far above it): every notice of a burst goes out at the next delivery round, each
/// once, instead of one batch per interval while the rest wait.
async fn a_burst_of_prints_is_noticed_within_one_delivery_interval(backend: Backend) {
    /// More than one delivery batch (64): a batch per interval would need 3 intervals.
    const BURST: usize = 150;
    const INTERVAL_MS: i64 = 3_000;
    let Some(sb) = spawn_sandbox_with(backend, |layout| {
        set_center_notices(layout, &[("interval_ms", INTERVAL_MS)])
    })
    .await
    else {
        return;
    };
    let mut ids = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let (id, fee) = prepared(&sb).await;
        let ack = pay(&sb, id, &payment(PaymentOutcome::Paid, fee)).await;
        assert_eq!(ack.status, IssuanceStatus::Paid);
        ids.push(id);
    }
    // Every print reported at once, so the whole burst is due at one delivery round.
    let sb_ref = &sb;
    let reports = ids.iter().map(|&id| async move {
        let report = print(PrintOutcome::Ok);
        printed(sb_ref, id, &report).await
    });
    for ack in futures_util::future::join_all(reports).await {
        assert_eq!(ack.status, IssuanceStatus::Printed);
    }
    let printed_at = std::time::Instant::now();

    let wanted: std::collections::BTreeSet<String> = ids.iter().map(ToString::to_string).collect();
    let limit = std::time::Duration::from_millis(u64::try_from(2 * INTERVAL_MS).expect("ms"));
    let delivered = loop {
        let rows = center::notices::list(&sb.running.center_pool)
            .await
            .expect("notices");
        let delivered: Vec<_> = rows
            .into_iter()
            .filter(|n| wanted.contains(&n.request_id) && n.delivered_at_unix_ms.is_some())
            .collect();
        if delivered.len() == BURST {
            break delivered;
        }
        assert!(
            printed_at.elapsed() < limit,
            "{} of {BURST} notices delivered {} ms after the burst; one round must take them all",
            delivered.len(),
            printed_at.elapsed().as_millis()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        delivered
            .iter()
            .all(|n| n.attempts == 1 && n.last_error.is_none()),
        "each notice sent once: {:?}",
        delivered.iter().find(|n| n.attempts != 1)
    );
    // The municipality recorded each printed certificate exactly once.
    let adapter = sb
        .running
        .adapter_pool("212113")
        .await
        .expect("adapter pool");
    let recorded: Vec<String> = sqlx::query_scalar("SELECT request_id FROM issuance_records")
        .fetch_all(&adapter)
        .await
        .expect("issuance records");
    adapter.close().await;
    let recorded: std::collections::BTreeSet<String> = recorded.into_iter().collect();
    assert_eq!(recorded, wanted);
    sb.stop().await;
}
