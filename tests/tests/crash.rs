//! Crash safety (DESIGN.md §4, "Money is conserved"): the center, then the kiosk, is
//! SIGKILLed at random points of a stream of issuances and restarted. Afterwards every
//! issuance is in a terminal state, every yen paid is in a settlement window, refunded
//! or flagged for reconciliation, nobody is charged twice, and no certificate exists
//! without a recorded payment.
//!
//! Kill points come from a seeded generator; the seed is printed, and
//! `CRASH_SEED=<n> cargo test -p e2e --test crash` replays the same schedule (the
//! processes' own timing still varies).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use center::settlement::{MoneyBalance, SettlementConfig};
use e2e::procs::{self, ChildProcess, Rng};
use e2e::{Backend, TempDir};
use kiosk_sim::{IssueOutcome, Kiosk, KioskSettings};
use sandbox::{CardInfo, CardKind, Layout};
use schemas::{CertificateKind, CertificateOrder, HouseholdScope, KioskId, Route};
use sqlx::{AnyPool, Row as _};

/// `Err(message)` from the enclosing function unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// How often the center is killed during the stream.
const CENTER_KILLS: usize = 6;
/// Uptime before each kill, ms (after the center listens again).
const CENTER_UPTIME_MS: (u64, u64) = (300, 2_500);
/// Downtime between a kill and the restart, ms.
const CENTER_DOWNTIME_MS: (u64, u64) = (0, 500);
/// In-process kiosks issuing concurrently while the center is killed.
const STREAM_KIOSKS: [&str; 3] = ["seven-0001", "seven-0002", "lawson-0001"];
/// Upper bound on sessions per kiosk (the stream normally ends with the kills).
const MAX_SESSIONS_PER_KIOSK: usize = 400;
/// Kiosk-side failures that would mean a wrong or duplicate print, or lost reports.
const ALARM_CODES: [&str; 5] = [
    "document_not_ours",
    "answer_mismatch",
    "already_printed",
    "outbox_full",
    "outbox_error",
];
/// Kiosk processes killed per lane in the kiosk test (two lanes run side by side): at
/// least this many runs, and more until enough kills landed mid-session (timing on a
/// shared machine varies), within a bound.
const KIOSK_RUNS_PER_LANE: usize = 20;
const KIOSK_MIN_MID_RUN_KILLS_PER_LANE: usize = 6;
const KIOSK_MAX_RUNS_PER_LANE: usize = 80;
/// Bounded retries when draining an outbox at the end.
const FLUSH_ATTEMPTS: usize = 50;
/// How far ahead of the center's clock the final sweep and the early close run.
const LATER_MS: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_killed_mid_stream_sqlite() {
    center_killed_mid_stream(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_killed_mid_stream_postgres() {
    center_killed_mid_stream(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosk_killed_mid_session_sqlite() {
    kiosk_killed_mid_session().await;
}

// ---------------------------------------------------------------------------------
// Test 1: the center is killed.

async fn center_killed_mid_stream(backend: Backend) {
    let seed = Rng::seed_from_env("CRASH_SEED");
    let label = format!("center_killed[{backend:?}] seed={seed}");
    eprintln!("{label} (replay with CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let [center_bin, adapter_bin] = tokio::task::block_in_place(|| {
        [procs::binary("center"), procs::binary("municipal-adapter")]
    });
    let started = Instant::now();

    let tmp = KeptOnPanic::new("crash-center");
    let layout = sandbox::init(&tmp.path().join("sandbox")).expect("sandbox init");
    // A short payment timeout and a frequent sweep, so the restarted center cleans up
    // what the kill left behind while the stream runs.
    e2e::set_center_timeouts(
        &layout,
        &[("sweep_interval_ms", 500), ("payment_timeout_ms", 3_000)],
    );
    disable_auto_close(&layout);
    let database_url = match backend {
        Backend::Sqlite => configured_database_url(&layout),
        Backend::Postgres => match e2e::fresh_postgres_database().await {
            Some(url) => url,
            None => return,
        },
    };
    let mut settings =
        center::configuration::Settings::load(&layout.center_config).expect("center settings");
    settings.database_url = database_url.clone();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");

    let mut adapters = Vec::new();
    for (name, path) in &layout.adapter_configs {
        let port = adapter_port(path);
        let mut child = ChildProcess::spawn(
            &format!("adapter {name}"),
            &adapter_bin,
            &["serve", "--config", path_str(path)],
            &[],
            &logs.join(format!("adapter-{name}.log")),
        );
        procs::wait_for_port(port, &mut child, Duration::from_secs(30)).await;
        adapters.push(child);
    }

    // The adapters run on the real clock: the center must be ahead of it (see
    // `forward_business_morning_offset_ms`).
    let offset_ms = procs::forward_business_morning_offset_ms();
    let center_port = settings.kiosk_listen.port();
    let offset_arg = offset_ms.to_string();
    let center_config = path_str(&layout.center_config).to_owned();
    let start_center = |generation: usize| {
        ChildProcess::spawn(
            &format!("center #{generation}"),
            &center_bin,
            &[
                "serve",
                "--config",
                &center_config,
                "--clock-offset-ms",
                &offset_arg,
            ],
            &[("DATABASE_URL", database_url.as_str())],
            &logs.join(format!("center-{generation}.log")),
        )
    };
    let mut center = start_center(0);
    procs::wait_for_port(center_port, &mut center, Duration::from_secs(60)).await;

    // The stream: each kiosk issues for its own cards until told to stop.
    let cards = printable_cards(&layout);
    assert!(
        cards.len() >= STREAM_KIOSKS.len(),
        "need a printable card per kiosk"
    );
    let out = tmp.path().join("out");
    let stop = Arc::new(AtomicBool::new(false));
    let mut streams = tokio::task::JoinSet::new();
    for (index, kiosk_id) in STREAM_KIOSKS.iter().enumerate() {
        let settings = kiosk_settings(&layout, kiosk_id, &tmp.path().join("state"));
        let kiosk = Kiosk::from_settings(&settings).expect("kiosk");
        let own_cards: Vec<CardInfo> = cards
            .iter()
            .skip(index)
            .step_by(STREAM_KIOSKS.len())
            .cloned()
            .collect();
        streams.spawn(issue_stream(
            kiosk,
            own_cards,
            rng.fork(),
            out.clone(),
            Arc::clone(&stop),
        ));
    }

    // The killer.
    let mut kills = 0;
    for generation in 1..=CENTER_KILLS {
        let uptime_ms = rng.range(CENTER_UPTIME_MS.0, CENTER_UPTIME_MS.1);
        tokio::time::sleep(Duration::from_millis(uptime_ms)).await;
        assert!(
            center.kill(),
            "{label}: the center exited by itself before kill {generation}; log:\n{}",
            center.log_tail()
        );
        kills += 1;
        let downtime_ms = rng.range(CENTER_DOWNTIME_MS.0, CENTER_DOWNTIME_MS.1);
        tokio::time::sleep(Duration::from_millis(downtime_ms)).await;
        center = start_center(generation);
        procs::wait_for_port(center_port, &mut center, Duration::from_secs(60)).await;
    }
    // A last stretch against a stable center, so the tail of the stream completes.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut kiosks = Vec::new();
    while let Some(joined) = streams.join_next().await {
        kiosks.push(joined.expect("kiosk stream task"));
    }

    // Every kiosk drains its outbox against the (running) center.
    let mut flush_conflicts = 0;
    for (kiosk, report) in &mut kiosks {
        flush_conflicts += drain_outbox(kiosk, &label, &report.kiosk_id).await;
    }
    assert!(
        center.kill(),
        "{label}: the center exited by itself; log:\n{}",
        center.log_tail()
    );
    drop(adapters);

    // The books, after the sweep and an early close far ahead on the center's clock.
    let pool = center::db::connect(&database_url)
        .await
        .expect("center database");
    let later = jiff::Timestamp::now().as_millisecond() + offset_ms + LATER_MS;
    let sweep = center::lifecycle::sweep(&pool, &settings.timeouts, later)
        .await
        .expect("sweep");
    let config = SettlementConfig::from_settings(&settings).expect("settlement config");
    let close = center::settlement::close_open_window(&pool, &config, later, true)
        .await
        .expect("early close");
    let books = Books::read(&pool).await;
    let states = books.check(&label, &out);

    // What the kiosks saw matches the books exactly: a fee was kept (the session
    // ended `Printed`) iff the certificate came out and is in the window.
    let mut printed_by_kiosks: BTreeMap<String, i64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut transport_errors = 0;
    let mut sessions = 0;
    for (_, report) in &kiosks {
        printed_by_kiosks.extend(report.printed.clone());
        for (kind, count) in &report.outcomes {
            *outcomes.entry(kind.clone()).or_default() += count;
        }
        transport_errors += report.transport_errors;
        sessions += report.sessions;
    }
    eprintln!(
        "{label}: {kills} kills, {sessions} sessions in {:.1}s, {transport_errors} transport \
         failures, {flush_conflicts} reports dropped as conflicts at the final flush; \
         kiosk outcomes {outcomes:?}; center states {states:?}; sweep {sweep:?}; close: \
         {} items, {} recon, {} yen; {}",
        started.elapsed().as_secs_f64(),
        close.items,
        close.recon_required,
        close.gross_yen,
        yen_summary(&books.balance),
    );
    assert_eq!(kills, CENTER_KILLS);
    assert!(
        transport_errors > 0,
        "{label}: no kiosk call ever failed, so no kill hit the stream"
    );
    for code in ALARM_CODES {
        assert!(
            !outcomes.contains_key(code),
            "{label}: kiosk alarm {code}: {outcomes:?}"
        );
    }
    assert!(
        !printed_by_kiosks.is_empty(),
        "{label}: nothing was printed at all"
    );
    assert_eq!(
        printed_by_kiosks, books.window_items,
        "{label}: the certificates the kiosks printed (with their fees) are exactly the window's items"
    );
    assert_eq!(
        pdf_ids(&out),
        printed_by_kiosks.keys().cloned().collect::<BTreeSet<_>>(),
        "{label}: a PDF exists for exactly the sessions that ended printed"
    );
    assert_eq!(
        books.balance.recon_required_yen, 0,
        "{label}: every print outcome was reported in the end"
    );

    pool.close().await;
    if backend == Backend::Postgres {
        procs::drop_postgres_database(&database_url).await;
    }
}

/// What one in-process kiosk saw during the stream.
#[derive(Debug, Default)]
struct StreamReport {
    kiosk_id: String,
    sessions: usize,
    /// Request id → fee kept, for sessions that ended `Printed`.
    printed: BTreeMap<String, i64>,
    /// Outcome kind or error code → sessions.
    outcomes: BTreeMap<String, usize>,
    transport_errors: usize,
}

async fn issue_stream(
    mut kiosk: Kiosk,
    cards: Vec<CardInfo>,
    mut rng: Rng,
    out: PathBuf,
    stop: Arc<AtomicBool>,
) -> (Kiosk, StreamReport) {
    let mut report = StreamReport {
        kiosk_id: kiosk.kiosk_id().to_string(),
        ..StreamReport::default()
    };
    let pins: Vec<String> = cards.iter().map(e2e::pin_of).collect();
    while !stop.load(Ordering::SeqCst) && report.sessions < MAX_SESSIONS_PER_KIOSK {
        let index = report.sessions % cards.len();
        report.sessions += 1;
        let order = random_order(&mut rng);
        let kind = match kiosk
            .issue(&cards[index].path, &pins[index], order, &out)
            .await
        {
            Ok(IssueOutcome::Printed(doc)) => {
                report
                    .printed
                    .insert(doc.request_id.to_string(), i64::from(doc.total_fee_yen));
                "printed".to_owned()
            }
            Ok(IssueOutcome::Refused { reason, .. }) => format!("refused:{}", reason.as_str()),
            Ok(IssueOutcome::Voided { .. }) => "voided".to_owned(),
            Ok(IssueOutcome::Refunded { cause, .. }) => format!("refunded:{cause:?}"),
            Ok(IssueOutcome::PrintUnknown { .. }) => "print_unknown".to_owned(),
            Err(error) => {
                if matches!(&error, kiosk_sim::KioskError::Center(c) if c.is_transport()) {
                    report.transport_errors += 1;
                }
                // The center may be down: do not spin on it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                error.code().to_owned()
            }
        };
        *report.outcomes.entry(kind).or_default() += 1;
    }
    (kiosk, report)
}

/// Flushes until the outbox is empty (bounded); returns the reports dropped as
/// conflicts.
async fn drain_outbox(kiosk: &mut Kiosk, label: &str, kiosk_id: &str) -> usize {
    let mut conflicts = 0;
    for _ in 0..FLUSH_ATTEMPTS {
        let summary = kiosk.flush_outbox().await.expect("flush");
        conflicts += summary.conflicts;
        if summary.pending == 0 {
            return conflicts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{label}: kiosk {kiosk_id} could not deliver {} report(s): {:?}",
        kiosk.outbox().len(),
        kiosk.outbox().entries()
    );
}

// ---------------------------------------------------------------------------------
// Test 2: the kiosk is killed.

/// One kiosk terminal run as `kiosk-sim` processes: its settings file (with its own
/// state directory, hence its own outbox) and the cards used there.
#[derive(Clone)]
struct Lane {
    kiosk_id: String,
    config: PathBuf,
    state_dir: PathBuf,
    cards: Vec<CardInfo>,
}

async fn kiosk_killed_mid_session() {
    let seed = Rng::seed_from_env("CRASH_SEED");
    let label = format!("kiosk_killed seed={seed}");
    eprintln!("{label} (replay with CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);
    let kiosk_bin = tokio::task::block_in_place(|| procs::binary("kiosk-sim"));
    let started = Instant::now();
    let Some(sb) = e2e::spawn_sandbox_with(Backend::Sqlite, disable_auto_close).await else {
        return;
    };
    let work = KeptOnPanic::new("crash-kiosk");
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let out = work.path().join("out");

    let cards = printable_cards(&sb.running.layout);
    let lanes: Vec<Lane> = ["seven-0011", "lawson-0011"]
        .iter()
        .enumerate()
        .map(|(index, kiosk_id)| {
            let settings = kiosk_settings(&sb.running.layout, kiosk_id, &work.path().join("state"));
            let config = work.path().join(format!("kiosk-{kiosk_id}.toml"));
            std::fs::write(&config, toml::to_string(&settings).expect("kiosk toml"))
                .expect("kiosk settings file");
            Lane {
                kiosk_id: (*kiosk_id).to_owned(),
                config,
                state_dir: settings.effective_state_dir(),
                cards: cards.iter().skip(index).step_by(2).cloned().collect(),
            }
        })
        .collect();

    // Undisturbed runs first: how long a session takes, so that kill points can be
    // spread over all of it. The first run warms the center's catalogue cache and is
    // not timed; two lanes will run side by side, each slower than a lone run, so
    // kills are drawn from 1.5 times the longer of the next two runs: most interrupt
    // a session, some come after it ended (a normal exit is a fine sample too).
    let mut duration_ms = 0;
    for (run, card) in lanes[0].cards.iter().cycle().take(3).enumerate() {
        let log = logs.join(format!("calibration-{run}.log"));
        let began = Instant::now();
        let status = tokio::task::block_in_place(|| {
            spawn_issue(
                &kiosk_bin,
                &lanes[0],
                card,
                &mut Rng::new(0),
                &out,
                &log,
                false,
            )
            .wait_bounded(Duration::from_secs(60))
        });
        if run > 0 {
            duration_ms =
                duration_ms.max(u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX));
        }
        assert!(
            status.success(),
            "{label}: an undisturbed kiosk-sim issue failed ({status}); log:\n{}",
            procs::log_tail(&log)
        );
        assert_eq!(
            e2e::pdfs_in(&out),
            run + 1,
            "{label}: the undisturbed run printed"
        );
    }

    // The lanes, side by side: start a session, SIGKILL it at a random point, restart
    // the kiosk (`outbox flush`), repeat.
    let mut lane_tasks = Vec::new();
    for (index, lane) in lanes.iter().enumerate() {
        let bin = kiosk_bin.clone();
        let lane = lane.clone();
        let out = out.clone();
        let logs = logs.clone();
        let mut lane_rng = rng.fork();
        lane_tasks.push(tokio::task::spawn_blocking(move || {
            let mut tally = LaneTally::default();
            for run in 0..KIOSK_MAX_RUNS_PER_LANE {
                if run >= KIOSK_RUNS_PER_LANE
                    && tally.killed_mid_run >= KIOSK_MIN_MID_RUN_KILLS_PER_LANE
                {
                    break;
                }
                let card = &lane.cards[run % lane.cards.len()];
                let kill_at_ms = lane_rng.range(0, duration_ms * 3 / 2);
                let log = logs.join(format!("lane{index}-run{run}.log"));
                let mut child = spawn_issue(&bin, &lane, card, &mut lane_rng, &out, &log, true);
                std::thread::sleep(Duration::from_millis(kill_at_ms));
                if child.kill() {
                    tally.killed_mid_run += 1;
                } else {
                    tally.finished += 1;
                }
                // Restart: the kiosk's first act is to re-send its outbox.
                let flush_log = logs.join(format!("lane{index}-run{run}-flush.log"));
                let status = outbox_flush(&bin, &lane, &flush_log);
                if !status.success() {
                    tally.flushes_left_pending += 1;
                }
                tally.reports_left_by_kills +=
                    usize::from(flush_acknowledged_something(&flush_log));
            }
            tally
        }));
    }
    let mut tally = LaneTally::default();
    for task in lane_tasks {
        let lane = task.await.expect("lane task");
        tally.killed_mid_run += lane.killed_mid_run;
        tally.finished += lane.finished;
        tally.flushes_left_pending += lane.flushes_left_pending;
        tally.reports_left_by_kills += lane.reports_left_by_kills;
    }

    // Last restart of each kiosk: its outbox must drain completely.
    for lane in &lanes {
        let log = logs.join(format!("final-flush-{}.log", lane.kiosk_id));
        let status = tokio::task::block_in_place(|| outbox_flush(&kiosk_bin, lane, &log));
        assert!(
            status.success(),
            "{label}: kiosk {} could not drain its outbox ({status}); log:\n{}",
            lane.kiosk_id,
            procs::log_tail(&log)
        );
        let kiosk_id = KioskId::parse(lane.kiosk_id.as_str()).expect("kiosk id");
        let outbox = kiosk_sim::Outbox::open(&lane.state_dir, kiosk_id).expect("outbox");
        assert!(
            outbox.is_empty(),
            "{label}: kiosk {} outbox still holds {:?}",
            lane.kiosk_id,
            outbox.entries()
        );
    }

    // The books, after the sweep and an early close an hour ahead on the center's clock.
    let pool = sb.running.center_pool.clone();
    let settings = center::configuration::Settings::load(&sb.running.layout.center_config)
        .expect("center settings");
    let later = jiff::Timestamp::now().as_millisecond() + sb.clock_offset_ms() + LATER_MS;
    let sweep = center::lifecycle::sweep(&pool, &settings.timeouts, later)
        .await
        .expect("sweep");
    let config = SettlementConfig::from_settings(&settings).expect("settlement config");
    let close = center::settlement::close_open_window(&pool, &config, later, true)
        .await
        .expect("early close");
    let books = Books::read(&pool).await;
    let states = books.check(&label, &out);
    eprintln!(
        "{label}: {} runs in {:.1}s (one run {duration_ms} ms), {} killed mid-run, {} \
         finished first, {} restarts found reports to re-send, {} restart flushes left \
         some pending; center states {states:?}; sweep {sweep:?}; close: {} items, {} \
         recon, {} yen; {}",
        tally.killed_mid_run + tally.finished,
        started.elapsed().as_secs_f64(),
        tally.killed_mid_run,
        tally.finished,
        tally.reports_left_by_kills,
        tally.flushes_left_pending,
        close.items,
        close.recon_required,
        close.gross_yen,
        yen_summary(&books.balance),
    );
    let runs = tally.killed_mid_run + tally.finished;
    assert!(
        tally.killed_mid_run >= KIOSK_MIN_MID_RUN_KILLS_PER_LANE * lanes.len(),
        "{label}: only {} of {runs} kills interrupted a session",
        tally.killed_mid_run
    );
    assert!(books.balance.paid_yen > 0, "{label}: nothing was ever paid");
    sb.stop().await;
}

#[derive(Debug, Default)]
struct LaneTally {
    killed_mid_run: usize,
    finished: usize,
    flushes_left_pending: usize,
    /// Restarts whose flush acknowledged at least one report the kill had left.
    reports_left_by_kills: usize,
}

/// `kiosk-sim issue` for `card` at `lane`, with a random order, and (when `vary`) a
/// random payment and printer behaviour.
fn spawn_issue(
    bin: &Path,
    lane: &Lane,
    card: &CardInfo,
    rng: &mut Rng,
    out: &Path,
    log: &Path,
    vary: bool,
) -> ChildProcess {
    let pin = e2e::pin_of(card);
    let order = random_order(rng);
    let copies = order.copies.to_string();
    let mut args = vec![
        "issue",
        "--config",
        path_str(&lane.config),
        "--card",
        path_str(&card.path),
        "--pin",
        pin.as_str(),
        "--out",
        path_str(out),
        "--copies",
        copies.as_str(),
    ];
    match order.certificate {
        CertificateKind::ResidentRecord {
            include_domicile,
            include_relationship,
            ..
        } => {
            args.extend(["--type", "resident-record"]);
            if include_domicile {
                args.push("--domicile");
            }
            if include_relationship {
                args.push("--relationship");
            }
        }
        _ => args.extend(["--type", "resident-record-items"]),
    }
    if vary {
        let payment = if rng.chance(15) { "cancel" } else { "paid" };
        let printer = match rng.range(0, 9) {
            0 => "jam",
            1 => "power-loss",
            _ => "ok",
        };
        args.extend(["--payment", payment, "--printer", printer]);
    }
    ChildProcess::spawn(
        &format!("kiosk-sim issue ({})", lane.kiosk_id),
        bin,
        &args,
        &[],
        log,
    )
}

/// `kiosk-sim outbox flush` to completion (bounded).
fn outbox_flush(bin: &Path, lane: &Lane, log: &Path) -> std::process::ExitStatus {
    let mut child = ChildProcess::spawn(
        &format!("kiosk-sim outbox flush ({})", lane.kiosk_id),
        bin,
        &["outbox", "flush", "--config", path_str(&lane.config)],
        &[],
        log,
    );
    child.wait_bounded(Duration::from_secs(60))
}

/// Whether a flush's output shows it acknowledged something (`acknowledged=N`, N > 0).
fn flush_acknowledged_something(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| {
        text.lines()
            .filter_map(|l| l.strip_prefix("acknowledged="))
            .filter_map(|rest| rest.split_whitespace().next())
            .any(|n| n.parse::<u32>().is_ok_and(|n| n > 0))
    })
}

// ---------------------------------------------------------------------------------
// The books, read straight from the center's database.

#[derive(Debug)]
struct IssuanceRecord {
    state: String,
    paid_yen: Option<i64>,
    total_fee_yen: Option<i64>,
}

#[derive(Debug)]
struct Books {
    issuances: BTreeMap<String, IssuanceRecord>,
    /// Request id → amount refunded.
    refunds: BTreeMap<String, i64>,
    /// Request id → gross, over every window.
    window_items: BTreeMap<String, i64>,
    /// Request id → paid, of issuances listed for reconciliation.
    recon_items: BTreeMap<String, i64>,
    balance: MoneyBalance,
}

impl Books {
    async fn read(pool: &AnyPool) -> Self {
        let issuances =
            sqlx::query("SELECT request_id, state, paid_yen, total_fee_yen FROM issuances")
                .fetch_all(pool)
                .await
                .expect("issuances")
                .iter()
                .map(|row| {
                    (
                        row.get::<String, _>("request_id"),
                        IssuanceRecord {
                            state: row.get("state"),
                            paid_yen: row.get("paid_yen"),
                            total_fee_yen: row.get("total_fee_yen"),
                        },
                    )
                })
                .collect();
        Self {
            issuances,
            refunds: id_amounts(pool, "SELECT request_id, amount_yen AS yen FROM refunds").await,
            window_items: id_amounts(
                pool,
                "SELECT request_id, gross_yen AS yen FROM settlement_items",
            )
            .await,
            recon_items: id_amounts(
                pool,
                "SELECT request_id, paid_yen AS yen FROM settlement_recon_items",
            )
            .await,
            balance: center::settlement::money_balance(pool)
                .await
                .expect("money balance"),
        }
    }

    /// Every invariant of "money is conserved" over the final books and the PDFs the
    /// kiosks wrote into `pdf_dir`: the count of issuances per state, or the first
    /// violation found.
    fn verify(&self, pdf_dir: &Path) -> Result<BTreeMap<String, usize>, String> {
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for record in self.issuances.values() {
            *states.entry(record.state.clone()).or_default() += 1;
        }
        let b = &self.balance;

        // Every request reached a terminal state.
        for (id, record) in &self.issuances {
            ensure!(
                !matches!(record.state.as_str(), "authorized" | "prepared" | "paid"),
                "issuance {id} is still {}",
                record.state
            );
        }

        // Conservation, from the center's own totals and from the rows.
        ensure!(
            b.paid_yen == b.in_windows_yen + b.refunded_yen + b.recon_required_yen,
            "money is not conserved: {b:?}"
        );
        ensure!(
            b.printed_outside_windows_yen == 0 && b.paid_unresolved_yen == 0,
            "money outside windows or unresolved after the close: {b:?}"
        );
        let paid_rows: i64 = self.issuances.values().filter_map(|r| r.paid_yen).sum();
        ensure!(
            paid_rows == b.paid_yen,
            "Σ paid over the rows is {paid_rows}, the balance says {}",
            b.paid_yen
        );
        let in_windows: i64 = self.window_items.values().sum();
        ensure!(
            in_windows == b.in_windows_yen,
            "Σ window items is {in_windows}, the balance says {}",
            b.in_windows_yen
        );
        let refunded: i64 = self.refunds.values().sum();
        ensure!(
            refunded == b.refunded_yen,
            "Σ refunds is {refunded}, the balance says {}",
            b.refunded_yen
        );

        // No double charge: a payment is the fee exactly, once.
        for (id, record) in &self.issuances {
            if let Some(paid) = record.paid_yen {
                ensure!(
                    paid > 0 && Some(paid) == record.total_fee_yen,
                    "issuance {id} was charged {paid} yen for a fee of {:?}",
                    record.total_fee_yen
                );
                ensure!(
                    matches!(
                        record.state.as_str(),
                        "printed" | "settled" | "recon_required" | "voided"
                    ),
                    "issuance {id} holds {paid} yen in state {}",
                    record.state
                );
            }
        }

        // Refunds: only of voided issuances that were paid, for what was paid; and
        // every paid issuance that was voided was refunded.
        for (id, amount) in &self.refunds {
            let record = self
                .issuances
                .get(id)
                .ok_or_else(|| format!("refund for unknown request {id}"))?;
            ensure!(
                record.state == "voided" && record.paid_yen == Some(*amount),
                "refund of {amount} yen for {id}: {record:?}"
            );
        }
        for (id, record) in &self.issuances {
            ensure!(
                !(record.state == "voided"
                    && record.paid_yen.is_some()
                    && !self.refunds.contains_key(id)),
                "{id} was paid and voided but never refunded"
            );
        }

        // Windows hold exactly the printed issuances, at what was paid; the
        // reconciliation list exactly the recon_required ones.
        for (id, record) in &self.issuances {
            let printed = matches!(record.state.as_str(), "printed" | "settled");
            ensure!(
                self.window_items.contains_key(id) == printed,
                "{id} is {} but the windows {} it",
                record.state,
                if printed { "lack" } else { "hold" }
            );
            if let Some(gross) = self.window_items.get(id) {
                ensure!(
                    Some(*gross) == record.paid_yen,
                    "window item {id} of {gross} yen: {record:?}"
                );
            }
            if record.state == "recon_required" {
                ensure!(
                    self.recon_items.get(id).copied() == record.paid_yen,
                    "recon item {id}: {:?} for {record:?}",
                    self.recon_items.get(id)
                );
            }
        }
        for id in self.window_items.keys() {
            ensure!(
                self.issuances.contains_key(id),
                "window item {id} without an issuance"
            );
        }

        // No certificate without a recorded payment: every PDF a kiosk wrote is the
        // request named in its pages, was paid its fee, and is in a window or flagged.
        let pdfs = pdf_ids(pdf_dir);
        for id in &pdfs {
            let path = pdf_dir.join(format!("{id}.pdf"));
            let pages = e2e::page_request_ids(&path);
            ensure!(
                !pages.is_empty() && pages.iter().all(|p| p == id),
                "{} carries request ids {pages:?}",
                path.display()
            );
            let record = self
                .issuances
                .get(id)
                .ok_or_else(|| format!("PDF for unknown request {id}"))?;
            ensure!(
                record.paid_yen.is_some() && record.paid_yen == record.total_fee_yen,
                "certificate {id} printed without its fee recorded: {record:?}"
            );
            ensure!(
                matches!(
                    record.state.as_str(),
                    "printed" | "settled" | "recon_required"
                ),
                "certificate {id} printed but the issuance is {}",
                record.state
            );
        }
        // No fee kept without a certificate: everything in a window came out.
        for id in self.window_items.keys() {
            ensure!(
                pdfs.contains(id),
                "{id} is in a window as printed but no certificate came out"
            );
        }
        Ok(states)
    }

    /// [`Books::verify`], panicking with `label` on a violation.
    fn check(&self, label: &str, pdf_dir: &Path) -> BTreeMap<String, usize> {
        self.verify(pdf_dir)
            .unwrap_or_else(|violation| panic!("{label}: {violation}"))
    }
}

async fn id_amounts(pool: &AnyPool, sql: &str) -> BTreeMap<String, i64> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| (row.get::<String, _>("request_id"), row.get::<i64, _>("yen")))
        .collect()
}

// ---------------------------------------------------------------------------------
// Set-up helpers.

/// A temporary directory (sandbox, logs, outboxes, PDFs) that is removed when the
/// test passes and kept, with its path printed, when it fails.
struct KeptOnPanic(Option<TempDir>);

impl KeptOnPanic {
    fn new(tag: &str) -> Self {
        Self(Some(TempDir::new(tag)))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for KeptOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("kept for diagnosis: {}", dir.path().display());
                std::mem::forget(dir);
            }
        }
    }
}

/// Request ids of the PDFs in `dir` (`<request_id>.pdf`).
fn pdf_ids(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn yen_summary(b: &MoneyBalance) -> String {
    format!(
        "paid {} = in windows {} + refunded {} + recon {} (+ outside {} + unresolved {}) yen",
        b.paid_yen,
        b.in_windows_yen,
        b.refunded_yen,
        b.recon_required_yen,
        b.printed_outside_windows_yen,
        b.paid_unresolved_yen
    )
}

/// Windows close only when a test says so.
fn disable_auto_close(layout: &Layout) {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let settlement = config
        .entry("settlement")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[settlement] is a table");
    settlement.insert("auto_close".into(), toml::Value::Boolean(false));
    std::fs::write(
        &layout.center_config,
        toml::to_string(&config).expect("toml"),
    )
    .expect("write center.toml");
}

/// The center's database as `sandbox::init` configured it (read from the file, not
/// through `Settings::load`, which lets `DATABASE_URL` override it).
fn configured_database_url(layout: &Layout) -> String {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let config: toml::Table = text.parse().expect("center.toml parses");
    config
        .get("database_url")
        .and_then(|v| v.as_str())
        .expect("database_url")
        .to_owned()
}

fn adapter_port(path: &Path) -> u16 {
    let text = std::fs::read_to_string(path).expect("adapter settings");
    let config: toml::Table = text.parse().expect("adapter settings parse");
    procs::port_of(
        config
            .get("listen")
            .and_then(|v| v.as_str())
            .expect("listen"),
    )
}

/// Settings of terminal `kiosk_id` (operator = its prefix), with its own outbox.
fn kiosk_settings(layout: &Layout, kiosk_id: &str, state_root: &Path) -> KioskSettings {
    let operator = kiosk_id.split('-').next().expect("operator prefix");
    let path = layout
        .kiosk_configs
        .iter()
        .find(|(o, _)| o == operator)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no kiosk settings for {operator}"));
    let mut settings = KioskSettings::load(path).expect("kiosk settings");
    settings.kiosk_id = KioskId::parse(kiosk_id).expect("kiosk id");
    settings.state_dir = Some(state_root.join(kiosk_id));
    // A killed center refuses connections at once; this bounds a call cut mid-way.
    settings.request_timeout_ms = 5_000;
    settings
}

/// Resident cards the sample registers issue for and the font can print.
fn printable_cards(layout: &Layout) -> Vec<CardInfo> {
    layout
        .cards
        .iter()
        .filter(|c| {
            c.kind == CardKind::Resident
                && municipal_adapter::samples::issuable_cards(&c.municipality.to_string())
                    .contains(&c.serial)
        })
        .cloned()
        .collect()
}

/// 住民票の写し or 住民票記載事項証明書 for the holder, one or two copies: types
/// offered every day within the national hours, at the municipalities' own fees.
fn random_order(rng: &mut Rng) -> CertificateOrder {
    let certificate = if rng.chance(70) {
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: rng.chance(50),
            include_relationship: rng.chance(50),
        }
    } else {
        CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::SelfOnly,
            include_relationship: false,
        }
    };
    CertificateOrder {
        route: Route::Residence,
        certificate,
        copies: if rng.chance(30) { 2 } else { 1 },
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

// ---------------------------------------------------------------------------------
// The checker itself must be able to fail.

fn consistent_books() -> Books {
    let record = |state: &str, paid_yen: Option<i64>| IssuanceRecord {
        state: state.to_owned(),
        paid_yen,
        total_fee_yen: Some(400),
    };
    Books {
        issuances: BTreeMap::from([
            ("a".to_owned(), record("voided", Some(400))),
            ("b".to_owned(), record("voided", None)),
            ("c".to_owned(), record("recon_required", Some(400))),
            ("d".to_owned(), record("expired", None)),
        ]),
        refunds: BTreeMap::from([("a".to_owned(), 400)]),
        window_items: BTreeMap::new(),
        recon_items: BTreeMap::from([("c".to_owned(), 400)]),
        balance: MoneyBalance {
            paid_yen: 800,
            refunded_yen: 400,
            recon_required_yen: 400,
            ..MoneyBalance::default()
        },
    }
}

/// A way to break consistent books: its name, a fragment of the violation the check
/// must report, and the change.
type Violation = (&'static str, &'static str, fn(&mut Books));

#[test]
fn the_books_check_accepts_consistent_books_and_catches_each_violation() {
    let empty = TempDir::new("crash-check");
    let states = consistent_books()
        .verify(empty.path())
        .expect("consistent books pass");
    assert_eq!(states.values().sum::<usize>(), 4);

    let violations: [Violation; 7] = [
        ("a request left paid", "is still paid", |b| {
            b.issuances.get_mut("d").unwrap().state = "paid".into();
        }),
        ("a yen unaccounted for", "not conserved", |b| {
            b.balance.paid_yen += 1;
        }),
        ("a double charge", "charged 800 yen", |b| {
            b.issuances.get_mut("c").unwrap().paid_yen = Some(800);
            b.recon_items.insert("c".into(), 800);
            b.balance.paid_yen += 400;
            b.balance.recon_required_yen += 400;
        }),
        (
            "a fee kept by an expired request",
            "in state expired",
            |b| {
                b.issuances.get_mut("c").unwrap().state = "expired".into();
                b.recon_items.clear();
            },
        ),
        ("paid and voided without a refund", "never refunded", |b| {
            b.refunds.clear();
            b.balance.refunded_yen = 0;
            b.balance.recon_required_yen += 400;
        }),
        (
            "a refund of an unpaid issuance",
            "refund of 400 yen for b",
            |b| {
                b.refunds.insert("b".into(), 400);
                b.balance.refunded_yen += 400;
                b.balance.recon_required_yen = 0;
            },
        ),
        (
            "printed but outside every window",
            "the windows lack it",
            |b| {
                b.issuances.get_mut("c").unwrap().state = "printed".into();
                b.recon_items.clear();
            },
        ),
    ];
    for (name, expected, break_it) in violations {
        let mut books = consistent_books();
        break_it(&mut books);
        match books.verify(empty.path()) {
            Ok(_) => panic!("the check missed: {name}"),
            Err(violation) => assert!(
                violation.contains(expected),
                "{name}: reported {violation:?}, expected it to mention {expected:?}"
            ),
        }
    }
}
