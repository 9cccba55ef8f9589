//! Settlement windows against a real (temporary SQLite) store: the close with its
//! cut, adjustments and recon_required items, hand-computed totals per (operator,
//! municipality), reconciliation with every kind of mismatch, refusal to finalise,
//! finalisation, catch-up of missed days, and money conservation. The same flow
//! through the `center settlement` CLI is at the end.

mod common;

use std::collections::BTreeMap;

use center::db::{self, IssuanceState};
use center::lifecycle::{apply_payment, apply_print};
use center::settlement::{self as store, MoneyBalance, SettlementConfig, SettlementError};
use center::store::Store;
use common::{Spec, TempStore};
use schemas::settlement::{MatchStatus, OperatorTransaction, WindowState};
use schemas::{
    KioskId, MunicipalityCode, OperatorId, PaymentMethod, PaymentOutcome, PaymentReport,
    PrintOutcome, PrintReport, RequestId,
};
use settlement::{BusinessDate, CutTime};

const MINOKAMO: &str = "212113";
const SAKAHOGI: &str = "215015";

/// 2026-11-25 at `hh:mm` JST, Unix ms (JST is UTC+9, no DST).
fn jst(day: u32, hh: i64, mm: i64) -> i64 {
    // 2026-11-25T00:00:00+09:00 = 2026-11-24T15:00:00Z
    const NOV25_MIDNIGHT_JST_MS: i64 = 1_795_532_400_000;
    NOV25_MIDNIGHT_JST_MS + (i64::from(day) - 25) * 86_400_000 + (hh * 60 + mm) * 60_000
}

fn config() -> SettlementConfig {
    SettlementConfig {
        cut: CutTime::parse("23:30").unwrap(),
        commission_yen_per_copy: BTreeMap::from([
            (OperatorId::parse("seven").unwrap(), 115),
            (OperatorId::parse("lawson").unwrap(), 120),
        ]),
        municipalities: vec![
            MunicipalityCode::parse(MINOKAMO).unwrap(),
            MunicipalityCode::parse(SAKAHOGI).unwrap(),
        ],
    }
}

fn spec(
    operator: &'static str,
    municipality: &'static str,
    certificate_type: &'static str,
    copies: i64,
    fee_yen_per_copy: i64,
) -> Spec {
    Spec {
        operator,
        kiosk: if operator == "seven" {
            "seven-0001"
        } else {
            "lawson-0001"
        },
        municipality,
        certificate_type,
        copies,
        fee_yen_per_copy,
    }
}

async fn pay(pool: &Store, spec: &Spec, id: &str, at_ms: i64) {
    let report = PaymentReport {
        kiosk_id: KioskId::parse(spec.kiosk).unwrap(),
        outcome: PaymentOutcome::Paid,
        amount_yen: u32::try_from(spec.copies * spec.fee_yen_per_copy).unwrap(),
        method: PaymentMethod::Cash,
        repeat: false,
    };
    let operator = OperatorId::parse(spec.operator).unwrap();
    apply_payment(pool, &operator, id, &report, at_ms)
        .await
        .unwrap();
}

async fn print(pool: &Store, spec: &Spec, id: &str, outcome: PrintOutcome, at_ms: i64) {
    let report = PrintReport {
        kiosk_id: KioskId::parse(spec.kiosk).unwrap(),
        outcome,
        repeat: false,
    };
    let operator = OperatorId::parse(spec.operator).unwrap();
    apply_print(pool, &operator, id, &report, at_ms)
        .await
        .unwrap();
}

/// Prepared at `at_ms`, paid a minute later, printed a minute after that.
async fn printed(pool: &Store, spec: &Spec, at_ms: i64) -> String {
    let id = common::prepared(pool, spec, at_ms).await;
    pay(pool, spec, &id, at_ms + 60_000).await;
    print(pool, spec, &id, PrintOutcome::Ok, at_ms + 120_000).await;
    id
}

async fn state(pool: &Store, id: &str) -> IssuanceState {
    db::find_issuance(pool, id).await.unwrap().unwrap().state
}

fn assert_conserved(balance: &MoneyBalance) {
    assert_eq!(
        balance.paid_yen,
        balance.in_windows_yen
            + balance.refunded_yen
            + balance.recon_required_yen
            + balance.printed_outside_windows_yen
            + balance.paid_unresolved_yen,
        "{balance:?}"
    );
}

/// The day of the fixture (window 2026-11-25, cut 23:30 JST; seven 115 yen and
/// lawson 120 yen per copy):
///
/// | # | operator | municipality | copies × fee | what happens                     |
/// |---|----------|--------------|--------------|----------------------------------|
/// | 1 | seven    | 美濃加茂市    | 1 × 200      | printed 10:02                    |
/// | 2 | seven    | 美濃加茂市    | 2 × 200      | printed 11:02                    |
/// | 3 | seven    | 坂祝町        | 1 × 300      | printed 12:02                    |
/// | 4 | lawson   | 美濃加茂市    | 3 × 350      | printed 13:02                    |
/// | 5 | lawson   | 坂祝町        | 2 × 300      | printed 14:02                    |
/// | 6 | lawson   | 美濃加茂市    | 1 × 200      | paid, print unknown → recon      |
/// | 7 | seven    | 美濃加茂市    | 1 × 200      | cancelled at payment (no money)  |
/// | 8 | seven    | 美濃加茂市    | 2 × 200      | paid, print failed → refund 400  |
/// | 9 | seven    | 美濃加茂市    | 1 × 200      | made 23:20, printed 23:40 (late) |
///
/// Expected window 2026-11-25 (items 1–5, recon 6):
///
/// | pair             | items | copies | gross | commission    | net  |
/// |------------------|-------|--------|-------|---------------|------|
/// | seven/212113     | 2     | 3      | 600   | 3 × 115 = 345 | 255  |
/// | seven/215015     | 1     | 1      | 300   | 1 × 115 = 115 | 185  |
/// | lawson/212113    | 1     | 3      | 1050  | 3 × 120 = 360 | 690  |
/// | lawson/215015    | 1     | 2      | 600   | 2 × 120 = 240 | 360  |
/// | trailer          | 5     | 9      | 2550  | 1060          | 1490 |
///
/// Window 2026-11-26: item 9 (seven/212113: 200, 115, 85) and item 6 once its
/// `ok` arrives on the 26th (lawson/212113: 200, 120, 80), both adjustments.
struct Day {
    ids: BTreeMap<u32, String>,
    specs: BTreeMap<u32, Spec>,
}

async fn run_day(pool: &Store) -> Day {
    let config = config();
    let opened = store::ensure_open_window(pool, &config, jst(25, 9, 0))
        .await
        .unwrap();
    assert_eq!(opened.business_date.to_string(), "2026-11-25");
    assert_eq!(opened.starts_at_unix_ms, jst(24, 23, 30));
    assert_eq!(opened.ends_at_unix_ms, jst(25, 23, 30));
    let specs = BTreeMap::from([
        (1, spec("seven", MINOKAMO, "resident_record", 1, 200)),
        (2, spec("seven", MINOKAMO, "seal_registration", 2, 200)),
        (3, spec("seven", SAKAHOGI, "resident_record", 1, 300)),
        (4, spec("lawson", MINOKAMO, "income_tax", 3, 350)),
        (5, spec("lawson", SAKAHOGI, "resident_record", 2, 300)),
        (6, spec("lawson", MINOKAMO, "resident_record", 1, 200)),
        (7, spec("seven", MINOKAMO, "resident_record", 1, 200)),
        (8, spec("seven", MINOKAMO, "resident_record", 2, 200)),
        (9, spec("seven", MINOKAMO, "resident_record", 1, 200)),
    ]);
    let mut ids = BTreeMap::new();
    for n in 1..=5u32 {
        let at = jst(25, 9 + i64::from(n), 0);
        ids.insert(n, printed(pool, &specs[&n], at).await);
    }
    let id6 = common::prepared(pool, &specs[&6], jst(25, 15, 0)).await;
    pay(pool, &specs[&6], &id6, jst(25, 15, 1)).await;
    print(
        pool,
        &specs[&6],
        &id6,
        PrintOutcome::Unknown,
        jst(25, 15, 2),
    )
    .await;
    ids.insert(6, id6);
    let id7 = common::prepared(pool, &specs[&7], jst(25, 16, 0)).await;
    let cancel = PaymentReport {
        kiosk_id: KioskId::parse("seven-0001").unwrap(),
        outcome: PaymentOutcome::Cancelled,
        amount_yen: 0,
        method: PaymentMethod::Cash,
        repeat: false,
    };
    apply_payment(
        pool,
        &OperatorId::parse("seven").unwrap(),
        &id7,
        &cancel,
        jst(25, 16, 1),
    )
    .await
    .unwrap();
    ids.insert(7, id7);
    let id8 = common::prepared(pool, &specs[&8], jst(25, 17, 0)).await;
    pay(pool, &specs[&8], &id8, jst(25, 17, 1)).await;
    print(pool, &specs[&8], &id8, PrintOutcome::Failed, jst(25, 17, 2)).await;
    ids.insert(8, id8);
    let id9 = common::prepared(pool, &specs[&9], jst(25, 23, 20)).await;
    pay(pool, &specs[&9], &id9, jst(25, 23, 21)).await;
    ids.insert(9, id9);
    Day { ids, specs }
}

#[tokio::test]
async fn a_day_closes_with_hand_computed_totals_adjustments_and_recon() {
    let temp = TempStore::new("settlement-day").await;
    let pool = &temp.pool;
    let config = config();
    let day = run_day(pool).await;
    let nov25 = BusinessDate::parse("2026-11-25").unwrap();

    // Before the cut the window is not due; no early close asked for.
    let not_due = store::close_open_window(pool, &config, jst(25, 23, 0), false).await;
    assert!(
        matches!(not_due, Err(SettlementError::NotDue { .. })),
        "{not_due:?}"
    );

    // Item 9 is printed after the cut but before the close runs: it is not this
    // window's (printed after the cut).
    print(
        pool,
        &day.specs[&9],
        &day.ids[&9],
        PrintOutcome::Ok,
        jst(25, 23, 40),
    )
    .await;
    let closed = store::close_open_window(pool, &config, jst(25, 23, 45), false)
        .await
        .unwrap();
    assert_eq!(closed.window.business_date, nov25);
    assert_eq!(closed.window.state, WindowState::Closed);
    assert_eq!(closed.window.ends_at_unix_ms, jst(25, 23, 30));
    assert_eq!((closed.items, closed.adjustments), (5, 0));
    assert_eq!(closed.recon_required, 1);
    assert_eq!(closed.gross_yen, 2550);
    assert_eq!(closed.next.business_date.to_string(), "2026-11-26");
    assert_eq!(closed.next.state, WindowState::Open);
    assert_eq!(closed.next.starts_at_unix_ms, jst(25, 23, 30));
    assert_eq!(
        state(pool, &day.ids[&6]).await,
        IssuanceState::ReconRequired
    );

    let out = tempdir("settlement-day");
    let key = schemas::KeyPair::generate();
    let written = store::write_reports(pool, &config, &key, nov25, &out, jst(25, 23, 50))
        .await
        .unwrap();
    let figures: Vec<_> = written
        .totals
        .iter()
        .map(|t| {
            (
                t.operator_id.to_string(),
                t.municipality_code.to_string(),
                t.items,
                t.copies,
                t.gross_yen,
                t.commission_yen,
                t.net_yen,
            )
        })
        .collect();
    let expected = [
        ("lawson", MINOKAMO, 1, 3, 1050, 360, 690),
        ("lawson", SAKAHOGI, 1, 2, 600, 240, 360),
        ("seven", MINOKAMO, 2, 3, 600, 345, 255),
        ("seven", SAKAHOGI, 1, 1, 300, 115, 185),
    ]
    .map(|(o, m, i, c, g, k, n)| (o.to_owned(), m.to_owned(), i, c, g, k, n));
    assert_eq!(figures, expected);
    assert_eq!(written.recon_required.len(), 1);
    assert_eq!(written.recon_required[0].paid_yen, 200);

    // Two operators + two municipalities, each .jsonl/.csv with a .sig.
    assert_eq!(written.files.len(), 4 * 4);
    let seven_csv =
        std::fs::read_to_string(out.join("settlement-2026-11-25-operator-seven.csv")).unwrap();
    assert!(seven_csv.starts_with(
        "business_date,operator_id,municipality_code,items,copies,gross,commission,net"
    ));
    assert!(
        seven_csv.contains("2026-11-25,seven,212113,2,3,600,345,255,"),
        "{seven_csv}"
    );
    assert!(
        seven_csv.contains("2026-11-25,seven,215015,1,1,300,115,185,"),
        "{seven_csv}"
    );
    assert!(!seven_csv.contains("lawson"));
    let muni = std::fs::read_to_string(out.join("settlement-2026-11-25-municipality-212113.jsonl"))
        .unwrap();
    let lines = settlement::parse_report_jsonl(&muni).unwrap();
    // header + 3 items (1, 2, 4) + 1 recon + 2 totals + trailer
    assert_eq!(lines.len(), 8, "{muni}");
    for name in [
        "settlement-2026-11-25-operator-lawson.jsonl",
        "settlement-2026-11-25-municipality-215015.csv",
    ] {
        let bytes = std::fs::read(out.join(name)).unwrap();
        let sig: schemas::settlement::DetachedSignature =
            serde_json::from_slice(&std::fs::read(out.join(format!("{name}.sig"))).unwrap())
                .unwrap();
        settlement::verify_report(&bytes, &sig, &key.public()).unwrap();
        let mut tampered = bytes.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        assert!(settlement::verify_report(&tampered, &sig, &key.public()).is_err());
    }

    // Next day: the unknown print of item 6 resolves as ok; both late items settle in
    // the 26th's window as adjustments.
    print(
        pool,
        &day.specs[&6],
        &day.ids[&6],
        PrintOutcome::Ok,
        jst(26, 9, 0),
    )
    .await;
    assert_eq!(state(pool, &day.ids[&6]).await, IssuanceState::Printed);
    let next = store::close_open_window(pool, &config, jst(26, 23, 31), false)
        .await
        .unwrap();
    assert_eq!((next.items, next.adjustments, next.gross_yen), (2, 2, 400));
    let (_, items, _) = store::window_contents(pool, next.window.business_date)
        .await
        .unwrap();
    let totals = settlement::pair_totals(&items);
    let figures: Vec<_> = totals
        .iter()
        .map(|t| {
            (
                t.operator_id.to_string(),
                t.gross_yen,
                t.commission_yen,
                t.net_yen,
                t.adjustment_items,
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("lawson".to_owned(), 200, 120, 80, 1),
            ("seven".to_owned(), 200, 115, 85, 1)
        ]
    );

    // Every yen: 3350 paid = 2950 in windows + 400 refunded.
    let balance = store::money_balance(pool).await.unwrap();
    assert_eq!(balance.paid_yen, 3350);
    assert_eq!(balance.in_windows_yen, 2950);
    assert_eq!(balance.refunded_yen, 400);
    assert_eq!(balance.recon_required_yen, 0);
    assert_conserved(&balance);
    assert_eq!(state(pool, &day.ids[&7]).await, IssuanceState::Voided);
    temp.close().await;
}

fn row(
    id: &str,
    kiosk: &str,
    municipality: &str,
    copies: u32,
    amount_yen: i64,
) -> OperatorTransaction {
    OperatorTransaction {
        request_id: id.parse().unwrap(),
        kiosk_id: KioskId::parse(kiosk).unwrap(),
        municipality_code: MunicipalityCode::parse(municipality).unwrap(),
        copies,
        amount_yen,
    }
}

#[tokio::test]
async fn reconciliation_finds_every_mismatch_and_finalising_waits_for_clean_files() {
    let temp = TempStore::new("settlement-recon").await;
    let pool = &temp.pool;
    let config = config();
    let day = run_day(pool).await;
    let nov25 = BusinessDate::parse("2026-11-25").unwrap();
    let seven = OperatorId::parse("seven").unwrap();
    let lawson = OperatorId::parse("lawson").unwrap();

    // Nothing can be reconciled or finalised while the window is open.
    let open = store::reconcile_operator(pool, nov25, &seven, b"", jst(25, 12, 0)).await;
    assert!(
        matches!(open, Err(SettlementError::WrongState { .. })),
        "{open:?}"
    );
    store::close_open_window(pool, &config, jst(25, 23, 45), false)
        .await
        .unwrap();

    // seven's file: #1 right, #2 with the wrong amount, #3 missing, one id the center
    // never settled, #8 (refunded) listed with the wrong copies.
    let stranger = RequestId::new_random().to_string();
    let file = settlement::write_operator_file(&[
        row(&day.ids[&1], "seven-0001", MINOKAMO, 1, 200),
        row(&day.ids[&2], "seven-0001", MINOKAMO, 2, 300),
        row(&stranger, "seven-0001", MINOKAMO, 1, 200),
    ]);
    let report = store::reconcile_operator(pool, nov25, &seven, file.as_bytes(), jst(26, 1, 0))
        .await
        .unwrap();
    let statuses: BTreeMap<String, MatchStatus> = report
        .lines
        .iter()
        .map(|l| (l.request_id.to_string(), l.status))
        .collect();
    assert_eq!(statuses[&day.ids[&1]], MatchStatus::Matched);
    assert_eq!(statuses[&day.ids[&2]], MatchStatus::AmountMismatch);
    assert_eq!(statuses[&day.ids[&3]], MatchStatus::MissingAtOperator);
    assert_eq!(statuses[&stranger], MatchStatus::MissingAtCenter);
    assert_eq!(
        statuses.len(),
        4,
        "lawson's items are not in seven's report"
    );
    assert_eq!(
        (
            report.summary.matched,
            report.summary.amount_mismatch,
            report.summary.missing_at_operator,
            report.summary.missing_at_center
        ),
        (1, 1, 1, 1)
    );
    let window = store::find_window(pool, nov25).await.unwrap().unwrap();
    assert_eq!(window.state, WindowState::Reconciling);

    // Refused: seven unmatched, lawson never submitted.
    let refused = store::finalize(pool, nov25, jst(26, 2, 0)).await;
    let Err(SettlementError::Unmatched { reasons, .. }) = refused else {
        panic!("finalise must be refused: {refused:?}");
    };
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|r| r.contains("seven") && r.contains("1 missing at center")));
    assert!(reasons
        .iter()
        .any(|r| r.contains("lawson") && r.contains("not submitted")));
    assert_eq!(state(pool, &day.ids[&1]).await, IssuanceState::Printed);

    // A bad file is rejected whole and changes nothing.
    let bad = format!(
        "{}\n{},seven-0001,212113,0,-5\n",
        schemas::settlement::OPERATOR_FILE_COLUMNS.join(","),
        day.ids[&1]
    );
    let rejected =
        store::reconcile_operator(pool, nov25, &seven, bad.as_bytes(), jst(26, 2, 0)).await;
    assert!(
        matches!(rejected, Err(SettlementError::OperatorFile(_))),
        "{rejected:?}"
    );

    // Corrected files: finalised; the items are settled; nothing reopens.
    let seven_file = settlement::write_operator_file(&[
        row(&day.ids[&1], "seven-0001", MINOKAMO, 1, 200),
        row(&day.ids[&2], "seven-0001", MINOKAMO, 2, 400),
        row(&day.ids[&3], "seven-0001", SAKAHOGI, 1, 300),
    ]);
    let lawson_file = settlement::write_operator_file(&[
        row(&day.ids[&4], "lawson-0001", MINOKAMO, 3, 1050),
        row(&day.ids[&5], "lawson-0001", SAKAHOGI, 2, 600),
    ]);
    for (operator, file) in [(&seven, &seven_file), (&lawson, &lawson_file)] {
        let report =
            store::reconcile_operator(pool, nov25, operator, file.as_bytes(), jst(26, 3, 0))
                .await
                .unwrap();
        assert!(report.summary.is_clean(), "{:?}", report.summary);
    }
    let settled = store::finalize(pool, nov25, jst(26, 4, 0)).await.unwrap();
    assert_eq!((settled.items, settled.gross_yen), (5, 2550));
    assert_eq!(settled.window.state, WindowState::Settled);
    for n in 1..=5 {
        assert_eq!(state(pool, &day.ids[&n]).await, IssuanceState::Settled);
    }
    assert_eq!(
        state(pool, &day.ids[&6]).await,
        IssuanceState::ReconRequired
    );
    let again = store::finalize(pool, nov25, jst(26, 5, 0)).await;
    assert!(
        matches!(again, Err(SettlementError::WrongState { .. })),
        "{again:?}"
    );
    let late =
        store::reconcile_operator(pool, nov25, &seven, seven_file.as_bytes(), jst(26, 5, 0)).await;
    assert!(
        matches!(late, Err(SettlementError::WrongState { .. })),
        "{late:?}"
    );

    // Σ paid = Σ settled + Σ refunded + Σ recon_required: items 6 and 9 were paid
    // with no print outcome at the cut.
    let balance = store::money_balance(pool).await.unwrap();
    assert_eq!(balance.settled_yen, 2550);
    assert_eq!(balance.recon_required_yen, 400);
    assert_eq!(balance.refunded_yen, 400);
    assert_eq!(balance.paid_unresolved_yen, 0);
    assert_eq!(
        balance.paid_yen,
        balance.settled_yen + balance.refunded_yen + balance.recon_required_yen
    );
    assert_conserved(&balance);
    temp.close().await;
}

#[tokio::test]
async fn missed_days_close_one_window_each_and_printing_goes_on_meanwhile() {
    let temp = TempStore::new("settlement-catch-up").await;
    let pool = &temp.pool;
    let config = config();
    store::ensure_open_window(pool, &config, jst(25, 9, 0))
        .await
        .unwrap();
    let s = spec("seven", MINOKAMO, "resident_record", 1, 200);
    printed(pool, &s, jst(25, 10, 0)).await;
    // The center was down from the 25th to the 28th at 09:00.
    let closed = store::close_due_windows(pool, &config, jst(28, 9, 0))
        .await
        .unwrap();
    let dates: Vec<String> = closed
        .iter()
        .map(|c| c.window.business_date.to_string())
        .collect();
    assert_eq!(dates, ["2026-11-25", "2026-11-26", "2026-11-27"]);
    assert_eq!(closed[0].items, 1);
    assert_eq!(closed[1].items + closed[2].items, 0);
    // Consecutive windows share their boundaries: no gap, no overlap.
    for pair in closed.windows(2) {
        assert_eq!(
            pair[0].window.ends_at_unix_ms,
            pair[1].window.starts_at_unix_ms
        );
    }
    let windows = store::list_windows(pool).await.unwrap();
    let open: Vec<_> = windows
        .iter()
        .filter(|w| w.state == WindowState::Open)
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].business_date.to_string(), "2026-11-28");
    // Nothing more is due; a second sweep (another replica) closes nothing.
    assert!(store::close_due_windows(pool, &config, jst(28, 9, 1))
        .await
        .unwrap()
        .is_empty());

    // An early close ends the window now; what is printed afterwards goes to the next.
    let early = store::close_open_window(pool, &config, jst(28, 10, 0), true)
        .await
        .unwrap();
    assert_eq!(early.window.ends_at_unix_ms, jst(28, 10, 0));
    assert_eq!(early.next.starts_at_unix_ms, jst(28, 10, 0));
    printed(pool, &s, jst(28, 11, 0)).await;
    let balance = store::money_balance(pool).await.unwrap();
    assert_eq!(balance.printed_outside_windows_yen, 200);
    assert_conserved(&balance);
    temp.close().await;
}

#[tokio::test]
async fn concurrent_closers_close_a_window_once() {
    let temp = TempStore::new("settlement-race").await;
    let pool = temp.pool.clone();
    let config = config();
    store::ensure_open_window(&pool, &config, jst(25, 9, 0))
        .await
        .unwrap();
    let s = spec("lawson", SAKAHOGI, "resident_record", 2, 300);
    for minute in 0..6 {
        printed(&pool, &s, jst(25, 10, minute)).await;
    }
    let closers = (0..6).map(|_| {
        let pool = pool.clone();
        let config = config.clone();
        tokio::spawn(async move { store::close_due_windows(&pool, &config, jst(26, 0, 0)).await })
    });
    let mut closed = 0;
    for closer in closers {
        match closer.await.unwrap() {
            Ok(list) => closed += list.len(),
            // SQLite may report the loser's conflict as an error; nothing is half-done.
            Err(SettlementError::Sqlx(_) | SettlementError::Raced(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(closed, 1);
    let windows = store::list_windows(&pool).await.unwrap();
    assert_eq!(windows.len(), 2);
    let (_, items, _) = store::window_contents(&pool, windows[0].business_date)
        .await
        .unwrap();
    assert_eq!(items.len(), 6);
    temp.close().await;
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_settlement_cli_closes_reports_verifies_reconciles_and_finalises() {
    let temp = TempStore::new("settlement-cli").await;
    let dir = tempdir("settlement-cli");
    let key = schemas::KeyPair::generate();
    let config_path = common::settings_file(&dir, &temp.url(), &key, &[]);
    let settings = config_path.to_str().unwrap();
    // The CLI's "now" is the real clock shifted onto the fixture's day.
    let offset = |at_ms: i64| (at_ms - jiff::Timestamp::now().as_millisecond()).to_string();
    let s = spec("seven", MINOKAMO, "resident_record", 2, 200);
    store::ensure_open_window(&temp.pool, &config(), jst(25, 9, 0))
        .await
        .unwrap();
    let id = printed(&temp.pool, &s, jst(25, 10, 0)).await;

    let at_noon = offset(jst(25, 12, 0));
    let (code, _, err) = common::center_cli(&[
        "settlement",
        "close",
        "--config",
        settings,
        "--clock-offset-ms",
        &at_noon,
    ]);
    assert_eq!(code, 2, "not due yet: {err}");
    assert!(err.contains("not due"), "{err}");
    let (code, out, err) = common::center_cli(&[
        "settlement",
        "close",
        "--config",
        settings,
        "--early",
        "--clock-offset-ms",
        &at_noon,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("closed window 2026-11-25") && out.contains("1 items"),
        "{out}"
    );

    let reports = dir.join("reports");
    let (code, out, err) = common::center_cli(&[
        "settlement",
        "report",
        "--config",
        settings,
        "--date",
        "2026-11-25",
        "--out",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("seven") && out.contains("400") && out.contains("230") && out.contains("170"),
        "{out}"
    );
    let jsonl = reports.join("settlement-2026-11-25-operator-seven.jsonl");
    let public = schemas::b64::Base64Bytes::encode(&key.public().0);
    let (code, out, _) = common::center_cli(&[
        "settlement",
        "verify",
        jsonl.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID"), "{out}");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    std::fs::write(
        &jsonl,
        text.replace("\"gross_yen\":400", "\"gross_yen\":40"),
    )
    .unwrap();
    let (code, out, _) = common::center_cli(&[
        "settlement",
        "verify",
        jsonl.to_str().unwrap(),
        "--config",
        settings,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID"), "{out}");

    let file = dir.join("seven.csv");
    let reconcile = || {
        common::center_cli(&[
            "settlement",
            "reconcile",
            "--config",
            settings,
            "--date",
            "2026-11-25",
            "--operator",
            "seven",
            "--file",
            file.to_str().unwrap(),
        ])
    };
    let finalize = || {
        common::center_cli(&[
            "settlement",
            "finalize",
            "--config",
            settings,
            "--date",
            "2026-11-25",
        ])
    };
    std::fs::write(
        &file,
        settlement::write_operator_file(&[row(&id, "seven-0001", MINOKAMO, 2, 300)]),
    )
    .unwrap();
    let (code, out, err) = reconcile();
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("1 amount mismatch"), "{out}");
    assert!(dir
        .join("reconciliation-2026-11-25-operator-seven.jsonl")
        .exists());
    let (code, _, err) = finalize();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("refused"), "{err}");

    std::fs::write(
        &file,
        settlement::write_operator_file(&[row(&id, "seven-0001", MINOKAMO, 2, 400)]),
    )
    .unwrap();
    let (code, out, err) = reconcile();
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = finalize();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("settled"), "{out}");
    assert_eq!(state(&temp.pool, &id).await, IssuanceState::Settled);
    let (code, out, _) = common::center_cli(&[
        "settlement",
        "list",
        "--config",
        settings,
        "--clock-offset-ms",
        &at_noon,
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2026-11-25") && out.contains("settled") && out.contains("open"),
        "{out}"
    );
    temp.close().await;
}
