//! The money side end to end, through kiosks, the center and the adapters: the
//! municipality's 交付記録 lists exactly the printed certificates, each once (outcome
//! notices through the center's transactional outbox, retried with back-off while the
//! adapter fails), and a business day closes into a settlement window whose items,
//! recon_required entries and adjustments follow what happened at the kiosks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::on_both_backends;
use e2e::*;
use kiosk_sim::{IssueOutcome, SimulatedPayment, SimulatedPrinter};
use schemas::settlement::OperatorTransaction;
use schemas::{KioskId, MunicipalityCode, OperatorId, PrintOutcome, RequestId};

on_both_backends!(
    the_issuance_record_lists_exactly_what_was_printed_and_the_day_settles,
    a_failing_adapter_gets_the_notice_later_with_back_off,
);

const MINOKAMO: &str = "212113";
const SAKAHOGI: &str = "215015";

/// Polls `check` every 50 ms until it holds, at most `timeout_ms`.
async fn eventually<F, Fut>(timeout_ms: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_millis(timeout_ms),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The request ids in `code`'s 交付記録.
async fn issuance_record(sb: &TestSandbox, code: &str) -> Vec<RequestId> {
    let pool = sb.running.adapter_pool(code).await.expect("adapter pool");
    let records = municipal_adapter::issuance_records::list(
        &pool,
        MunicipalityCode::parse(code).expect("code"),
        0,
        i64::MAX,
    )
    .await
    .expect("records");
    pool.close().await;
    records.into_iter().map(|r| r.request_id).collect()
}

async fn all_notices_delivered(sb: &TestSandbox) -> bool {
    center::notices::list(&sb.running.center_pool)
        .await
        .expect("notices")
        .iter()
        .all(|n| n.delivered_at_unix_ms.is_some())
}

fn settlement_config(sb: &TestSandbox) -> center::settlement::SettlementConfig {
    let settings = center::configuration::Settings::load(&sb.running.layout.center_config)
        .expect("center settings");
    center::settlement::SettlementConfig::from_settings(&settings).expect("settlement config")
}

fn request_id(outcome: &IssueOutcome) -> RequestId {
    outcome.request_id()
}

async fn the_issuance_record_lists_exactly_what_was_printed_and_the_day_settles(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let cards = sb.printable_resident_cards();
    let minokamo: Vec<_> = cards
        .iter()
        .filter(|c| c.municipality.to_string() == MINOKAMO)
        .take(4)
        .collect();
    let sakahogi = cards
        .iter()
        .find(|c| c.municipality.to_string() == SAKAHOGI)
        .expect("a 坂祝町 resident");
    let order = resident_record(schemas::HouseholdScope::SelfOnly);
    let mut seven = sb.kiosk();
    let mut lawson = kiosk_sim::Kiosk::from_settings(&sb.kiosk_settings("lawson", "lawson-0001"))
        .expect("lawson kiosk");

    // seven: printed; jammed (refund); power lost (unknown); cancelled at payment.
    let printed = seven
        .issue(
            &minokamo[0].path,
            &pin_of(minokamo[0]),
            order.clone(),
            &sb.out,
        )
        .await
        .expect("printed");
    assert!(matches!(printed, IssueOutcome::Printed(_)), "{printed:?}");
    seven.set_printer(SimulatedPrinter::JamsBeforeFirstPage);
    let jammed = seven
        .issue(
            &minokamo[1].path,
            &pin_of(minokamo[1]),
            order.clone(),
            &sb.out,
        )
        .await
        .expect("jammed");
    assert!(
        matches!(jammed, IssueOutcome::Refunded { .. }),
        "{jammed:?}"
    );
    seven.set_printer(SimulatedPrinter::LosesPower);
    let unknown = seven
        .issue(
            &minokamo[2].path,
            &pin_of(minokamo[2]),
            order.clone(),
            &sb.out,
        )
        .await
        .expect("power loss");
    assert!(
        matches!(unknown, IssueOutcome::PrintUnknown { .. }),
        "{unknown:?}"
    );
    seven.set_printer(SimulatedPrinter::Prints);
    seven.set_payment(SimulatedPayment::Cancels);
    let cancelled = seven
        .issue(
            &minokamo[3].path,
            &pin_of(minokamo[3]),
            order.clone(),
            &sb.out,
        )
        .await
        .expect("cancelled");
    assert!(
        matches!(cancelled, IssueOutcome::Voided { .. }),
        "{cancelled:?}"
    );
    // lawson: a 坂祝町 resident, printed.
    let lawson_printed = lawson
        .issue(&sakahogi.path, &pin_of(sakahogi), order.clone(), &sb.out)
        .await
        .expect("printed at lawson");
    assert!(matches!(lawson_printed, IssueOutcome::Printed(_)));

    eventually(10_000, "every notice is delivered", || {
        all_notices_delivered(&sb)
    })
    .await;
    assert_eq!(
        issuance_record(&sb, MINOKAMO).await,
        [request_id(&printed)],
        "美濃加茂市's 交付記録 holds the printed one only"
    );
    assert_eq!(
        issuance_record(&sb, SAKAHOGI).await,
        [request_id(&lawson_printed)]
    );

    // The day closes: two items (one per operator), the unknown print is
    // recon_required, nothing else holds money.
    let pool = &sb.running.center_pool;
    let config = settlement_config(&sb);
    let now = || sb.running.clock.now_unix_ms();
    let closed = center::settlement::close_open_window(pool, &config, now(), true)
        .await
        .expect("close");
    assert_eq!((closed.items, closed.recon_required), (2, 1));
    let (_, items, recon) = center::settlement::window_contents(pool, closed.window.business_date)
        .await
        .expect("contents");
    let item_ids: BTreeSet<RequestId> = items.iter().map(|i| i.request_id).collect();
    assert_eq!(
        item_ids,
        BTreeSet::from([request_id(&printed), request_id(&lawson_printed)])
    );
    assert_eq!(recon[0].request_id, request_id(&unknown));
    let by_operator: Vec<(String, i64, i64)> = settlement::pair_totals(&items)
        .iter()
        .map(|t| (t.operator_id.to_string(), t.gross_yen, t.commission_yen))
        .collect();
    assert_eq!(
        by_operator,
        [
            ("lawson".to_owned(), 300, 120),
            ("seven".to_owned(), 200, 115)
        ],
        "住民票: 200 yen at 美濃加茂市, 300 yen at 坂祝町; sandbox agreements 115 / 120"
    );
    let balance = center::settlement::money_balance(pool)
        .await
        .expect("balance");
    assert_eq!(balance.paid_yen, 200 + 200 + 200 + 300, "{balance:?}");
    assert_eq!(balance.in_windows_yen, 500);
    assert_eq!(balance.refunded_yen, 200);
    assert_eq!(balance.recon_required_yen, 200);

    // The printer answers after its restart: the pages came out. The late `ok` makes
    // the recon item printed; it is noticed once and settles in the next window as an
    // adjustment.
    let ack = seven
        .resolve_print(request_id(&unknown), PrintOutcome::Ok)
        .await
        .expect("resolved")
        .expect("acknowledged");
    assert_eq!(ack.status, schemas::IssuanceStatus::Printed);
    eventually(10_000, "the late notice is delivered", || {
        all_notices_delivered(&sb)
    })
    .await;
    let record: BTreeSet<RequestId> = issuance_record(&sb, MINOKAMO).await.into_iter().collect();
    assert_eq!(
        record,
        BTreeSet::from([request_id(&printed), request_id(&unknown)])
    );
    let next = center::settlement::close_open_window(pool, &config, now(), true)
        .await
        .expect("close next");
    assert_eq!((next.items, next.adjustments, next.gross_yen), (1, 1, 200));
    let balance = center::settlement::money_balance(pool)
        .await
        .expect("balance");
    assert_eq!(
        balance.paid_yen,
        balance.in_windows_yen + balance.refunded_yen + balance.recon_required_yen,
        "{balance:?}"
    );
    assert_eq!(balance.recon_required_yen, 0);

    // Each operator's own sales reconcile; the first day settles.
    let sale = |outcome: &IssueOutcome, kiosk: &str, code: &str, yen: i64| OperatorTransaction {
        request_id: request_id(outcome),
        kiosk_id: KioskId::parse(kiosk).expect("kiosk"),
        municipality_code: MunicipalityCode::parse(code).expect("code"),
        copies: 1,
        amount_yen: yen,
    };
    for (operator, rows) in [
        ("seven", vec![sale(&printed, "seven-0001", MINOKAMO, 200)]),
        (
            "lawson",
            vec![sale(&lawson_printed, "lawson-0001", SAKAHOGI, 300)],
        ),
    ] {
        let file = settlement::write_operator_file(&rows);
        let report = center::settlement::reconcile_operator(
            pool,
            closed.window.business_date,
            &OperatorId::parse(operator).expect("operator"),
            file.as_bytes(),
            now(),
        )
        .await
        .expect("reconcile");
        assert!(report.summary.is_clean(), "{:?}", report.summary);
    }
    center::settlement::finalize(pool, closed.window.business_date, now())
        .await
        .expect("finalise");

    // Idempotency keys outlive settlement: the same session replayed under its key
    // meets a settled issuance, so the kiosk returns the fee and prints nothing; the
    // same key with another order is a conflict.
    let IssueOutcome::Printed(first) = &printed else {
        unreachable!()
    };
    seven.set_payment(SimulatedPayment::Pays);
    let replay = seven
        .issue_with_key(
            first.idempotency_key.clone(),
            &minokamo[0].path,
            &pin_of(minokamo[0]),
            order.clone(),
            &sb.out,
        )
        .await
        .expect("replayed");
    assert_eq!(replay.request_id(), first.request_id);
    assert!(
        matches!(replay, IssueOutcome::Refunded { .. }),
        "a settled issuance is never paid or printed again: {replay:?}"
    );
    let mut other = order.clone();
    other.copies = 2;
    let conflict = seven
        .issue_with_key(
            first.idempotency_key.clone(),
            &minokamo[0].path,
            &pin_of(minokamo[0]),
            other,
            &sb.out,
        )
        .await
        .expect_err("conflict");
    assert_eq!(
        center_code(&conflict),
        Some(schemas::ErrorCode::IdempotencyConflict)
    );
    let after = center::settlement::money_balance(pool)
        .await
        .expect("balance");
    assert_eq!(after.paid_yen, balance.paid_yen, "no second charge");
    assert_eq!(after.settled_yen, 500);
    sb.stop().await;
}

async fn a_failing_adapter_gets_the_notice_later_with_back_off(backend: Backend) {
    let Some(sb) = spawn_sandbox_with(backend, |layout| {
        set_center_notices(
            layout,
            &[
                ("interval_ms", 50),
                ("initial_backoff_ms", 200),
                ("max_backoff_ms", 800),
                ("timeout_ms", 2000),
            ],
        )
    })
    .await
    else {
        return;
    };
    // The adapter's 交付記録 refuses every write (its database is failing).
    let adapter = sb
        .running
        .adapter_pool(MINOKAMO)
        .await
        .expect("adapter pool");
    sqlx::query(
        "CREATE TRIGGER refuse_records BEFORE INSERT ON issuance_records \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&adapter)
    .await
    .expect("trigger");

    let card = sb
        .printable_resident_cards()
        .into_iter()
        .find(|c| c.municipality.to_string() == MINOKAMO)
        .expect("resident")
        .clone();
    let printed = sb
        .issue(&card, resident_record(schemas::HouseholdScope::SelfOnly))
        .await
        .expect("printed");
    let id = request_id(&printed).to_string();
    let notice = || async {
        center::notices::list(&sb.running.center_pool)
            .await
            .expect("notices")
            .into_iter()
            .find(|n| n.request_id == id)
            .expect("the print wrote a notice")
    };
    eventually(10_000, "three attempts failed", || async {
        notice().await.attempts >= 3
    })
    .await;
    let failing = notice().await;
    assert!(failing.delivered_at_unix_ms.is_none());
    assert!(
        failing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{failing:?}"
    );
    // Backed off: the next attempt is at least the doubled delay ahead of the
    // center's clock.
    let now = sb.running.clock.now_unix_ms();
    assert!(
        failing.next_attempt_at_unix_ms > now,
        "{failing:?} at {now}"
    );
    assert!(issuance_record(&sb, MINOKAMO).await.is_empty());

    // The adapter recovers: the next retry lands, once.
    sqlx::query("DROP TRIGGER refuse_records")
        .execute(&adapter)
        .await
        .expect("drop trigger");
    adapter.close().await;
    eventually(10_000, "the notice is delivered", || async {
        notice().await.delivered_at_unix_ms.is_some()
    })
    .await;
    assert_eq!(issuance_record(&sb, MINOKAMO).await, [request_id(&printed)]);
    let delivered = notice().await;
    assert!(delivered.attempts >= 4, "{delivered:?}");
    assert_eq!(delivered.last_error, None);
    sb.stop().await;
}
