//! What the center's periodic work costs as its history grows: sealing the next audit
//! batch and a sweep with nothing due, on a SQLite store (WAL, full sync) that already
//! holds `history` sealed events and `history` used challenges.
//!
//! Both run on every replica every few seconds, and on SQLite inside the one writer
//! every issuance waits on: a cost that grows with the history is a latency that grows
//! with the service's age.
//!
//! `cargo bench -p center --bench periodic`; `PERIODIC_BENCH_HISTORY=10000,100000`
//! (the history sizes), `PERIODIC_BENCH_ROUNDS=7` (timed rounds per size),
//! `PERIODIC_BENCH_KEEP_DIR=1` (keep each store for inspection).

use center::configuration::Timeouts;
use center::db::{self, ChallengeUse};
use center::store::Store;
use futures_util::future::join_all;
use schemas::KeyPair;
use std::time::Instant;

/// Events per sealed batch, as the sweep seals them.
const BATCH_EVENTS: u32 = 1_024;
/// Writes in flight while building the history (the group commit takes them together).
const WRITES_IN_FLIGHT: usize = 256;

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {n:?} is not a number"))
        })
        .collect()
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs `write(n)` for every `n` in `range`, `WRITES_IN_FLIGHT` at a time.
async fn in_flight<F, R>(range: std::ops::Range<u64>, write: F)
where
    F: Fn(u64) -> R,
    R: std::future::Future<Output = ()>,
{
    let mut next = range.start;
    while next < range.end {
        let upto = range.end.min(next + WRITES_IN_FLIGHT as u64);
        join_all((next..upto).map(&write)).await;
        next = upto;
    }
}

/// Appends `count` audit events.
async fn append_events(store: &Store, first: u64, count: u64) {
    in_flight(first..first + count, |n| async move {
        let request_id = format!("bench-{n:012}");
        db::record_event(store, &request_id, "bench", None, now_ms())
            .await
            .expect("append an audit event");
    })
    .await;
}

/// Uses `count` challenges that stay within their retention, as a day of visits leaves.
async fn use_challenges(store: &Store, count: u64) {
    in_flight(0..count, |n| async move {
        let used = ChallengeUse {
            nonce_hex: format!("{n:032x}"),
            operator_id: "seven".into(),
            kiosk_id: "seven-0001".into(),
            expires_at_unix_ms: now_ms() + 120_000,
        };
        assert!(db::use_challenge(store, &used, now_ms())
            .await
            .expect("use a challenge"));
    })
    .await;
}

async fn seal_everything(store: &Store, key: &KeyPair) -> u64 {
    let mut batches = 0;
    while center::audit::seal_pending(store, key, now_ms(), BATCH_EVENTS)
        .await
        .expect("seal")
        .is_some()
    {
        batches += 1;
    }
    batches
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

struct Figures {
    history: u64,
    seal_ms: f64,
    seal_max_ms: f64,
    sweep_ms: f64,
    sweep_max_ms: f64,
}

async fn measure(history: u64, rounds: u64) -> Figures {
    let dir = std::env::temp_dir().join(format!("center-periodic-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("bench directory");
    let url = format!("sqlite://{}?mode=rwc", dir.join("center.db").display());
    let store = db::connect(&url).await.expect("open the store");
    let key = KeyPair::generate();

    let started = Instant::now();
    append_events(&store, 0, history).await;
    let batches = seal_everything(&store, &key).await;
    use_challenges(&store, history).await;
    eprintln!(
        "history {history}: {batches} batches sealed, {history} challenges used, built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let timeouts = Timeouts::default();
    let mut seal_ms = Vec::new();
    let mut sweep_ms = Vec::new();
    for round in 0..rounds {
        append_events(
            &store,
            history + round * u64::from(BATCH_EVENTS),
            BATCH_EVENTS.into(),
        )
        .await;
        let at = Instant::now();
        let header = center::audit::seal_pending(&store, &key, now_ms(), BATCH_EVENTS)
            .await
            .expect("seal")
            .expect("a batch was waiting");
        seal_ms.push(at.elapsed().as_secs_f64() * 1e3);
        assert_eq!(header.payload.leaf_count, u64::from(BATCH_EVENTS));

        let at = Instant::now();
        let summary = center::lifecycle::sweep(&store, &timeouts, now_ms())
            .await
            .expect("sweep");
        sweep_ms.push(at.elapsed().as_secs_f64() * 1e3);
        assert_eq!(summary.challenges_deleted, 0, "nothing was due");
    }
    drop(store);
    if std::env::var_os("PERIODIC_BENCH_KEEP_DIR").is_some() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Figures {
        history,
        seal_ms: median(seal_ms.clone()),
        seal_max_ms: seal_ms.iter().copied().fold(0.0, f64::max),
        sweep_ms: median(sweep_ms.clone()),
        sweep_max_ms: sweep_ms.iter().copied().fold(0.0, f64::max),
    }
}

#[tokio::main]
async fn main() {
    let histories = env_list("PERIODIC_BENCH_HISTORY", "10000,100000");
    let rounds = env_list("PERIODIC_BENCH_ROUNDS", "7")[0].max(1);
    let mut all = Vec::new();
    for history in histories {
        all.push(measure(history, rounds).await);
    }
    println!(
        "| history (sealed events, used challenges) | seal 1,024 events: median ms | max ms | sweep, nothing due: median ms | max ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for f in &all {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f.history, f.seal_ms, f.seal_max_ms, f.sweep_ms, f.sweep_max_ms
        );
    }
    if let (Some(first), Some(last)) = (all.first(), all.last()) {
        if last.history > first.history {
            println!(
                "history ×{:.0}: seal ×{:.2}, sweep ×{:.2}",
                last.history as f64 / first.history as f64,
                last.seal_ms / first.seal_ms,
                last.sweep_ms / first.sweep_ms
            );
        }
    }
}
