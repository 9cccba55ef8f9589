//! Faults under load (issue 8, item 3), each with `kiosk-sim load` against center and
//! adapter processes on a fresh PostgreSQL database:
//! - an adapter SIGKILLed mid-run: its municipality's later requests end cleanly as
//!   `municipality_unavailable`, none paid;
//! - a center replica SIGKILLed mid-run: kiosks fail over to the other replica, every
//!   request ends, money is conserved;
//! - a slow adapter (a proxy holds its answers past the request deadline): those
//!   requests end `upstream_timeout`, `expired`, no PDF and no fee, although the
//!   adapter did answer; the other municipalities are unaffected;
//! - latency on the center↔adapter link: everything issues and the municipality phase
//!   shows the added round trip.
//!
//! They assert invariants, not counts that timing decides. `LOAD_SEED=<n>` replays
//! the load's choices.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::books::Books;
use e2e::deployment::{DeploymentOptions, ProcessDeployment};
use e2e::load::{self, LoadArgs, LoadProcess, LoadRun};
use e2e::procs::Rng;
use e2e::Backend;
use sqlx::Row as _;

/// The adapter the faults hit (北本市 alone behind it), and its municipality.
const FAULTY_ADAPTER: &str = "kitamoto";
const FAULTY_MUNICIPALITY: &str = "112330";
/// The load bounds itself; the test waits a little longer before calling it hung.
const LOAD_TIME_LIMIT_S: u64 = 60;
const LOAD_TIMEOUT: Duration = Duration::from_secs(LOAD_TIME_LIMIT_S + 30);
/// How long the run may take to print the certificates before a kill.
const PRINTED_BEFORE_KILL_TIMEOUT: Duration = Duration::from_secs(45);
/// Issued before the kill, so that the kill lands mid-run.
const PRINTED_BEFORE_KILL: i64 = 12;
/// The slow-adapter test's request deadline, and how long the proxy holds answers.
const SHORT_DEADLINE_MS: i64 = 1_500;
const HOLD_MS: u64 = 4_000;
/// Latency added to each direction of the center↔adapter links.
const LINK_LATENCY_MS: u64 = 40;

const UNAVAILABLE: &str = "municipality_unavailable";
const TIMEOUT: &str = "upstream_timeout";

fn seeded(test: &str) -> (u64, String) {
    let seed = Rng::seed_from_env("LOAD_SEED");
    let label = format!("{test} seed={seed}");
    eprintln!("{label} (replay with LOAD_SEED={seed})");
    (seed, label)
}

fn load_args(deployment: &ProcessDeployment, kiosks: u32, requests: u32, seed: u64) -> LoadArgs {
    LoadArgs {
        kiosks,
        requests,
        centers: deployment.center_urls(),
        dir: deployment.sandbox_dir().to_path_buf(),
        records: deployment.dir().join("records.jsonl"),
        seed: Some(seed),
        time_limit_s: Some(LOAD_TIME_LIMIT_S),
    }
}

/// Sweeps, closes the window, checks money conservation and that the kiosks' view
/// matches the books: a request was issued iff it is printed and in the window.
async fn close_and_check(deployment: &mut ProcessDeployment, run: &LoadRun, label: &str) -> Books {
    let (close, books) = deployment.sweep_close_and_read().await;
    eprintln!(
        "{label}: close {} items {} yen, {} recon; {}",
        close.items,
        close.gross_yen,
        close.recon_required,
        books.summary()
    );
    books.check(label);
    let issued: BTreeSet<String> = run
        .with_outcome("issued")
        .map(|r| {
            r.request_id
                .clone()
                .unwrap_or_else(|| panic!("{label}: issued record without a request id"))
        })
        .collect();
    for id in &issued {
        assert!(
            books.window_items.contains_key(id),
            "{label}: issued {id} is not in the window: {:?}",
            books.issuances.get(id)
        );
    }
    books
}

// ---------------------------------------------------------------------------------
// a. An adapter is killed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_killed_mid_run_refuses_its_requests_cleanly() {
    let (seed, label) = seeded("adapter_killed");
    let options = DeploymentOptions {
        replicas: 1,
        ..DeploymentOptions::default()
    };
    let Some(mut deployment) =
        ProcessDeployment::start("faults-adapter", Backend::Postgres, options).await
    else {
        return;
    };
    let mut running = LoadProcess::spawn(load_args(&deployment, 12, 120, seed), &deployment.logs);
    deployment
        .wait_for_printed(PRINTED_BEFORE_KILL, PRINTED_BEFORE_KILL_TIMEOUT)
        .await;
    assert!(running.running(), "{label}: the load ended before the kill");
    deployment.kill_adapter(FAULTY_ADAPTER);
    let run = running.finish(LOAD_TIMEOUT).await;
    deployment.assert_centers_alive(&[]);
    eprintln!("{label}: {}", run.summary);
    run.assert_sound(&label);

    // The kiosks saw `municipality_unavailable` for the dead adapter's municipality
    // only.
    let unavailable: Vec<_> = run
        .records
        .iter()
        .filter(|r| r.reason.as_deref() == Some(UNAVAILABLE))
        .collect();
    assert!(
        !unavailable.is_empty(),
        "{label}: no request met the dead adapter: {}",
        run.summary
    );
    for record in &unavailable {
        assert_eq!(
            record.municipality.as_deref(),
            Some(FAULTY_MUNICIPALITY),
            "{label}: another municipality unavailable: {}",
            record.raw
        );
        assert_ne!(record.outcome, "issued", "{label}: {}", record.raw);
    }

    let books = close_and_check(&mut deployment, &run, &label).await;
    // In the books: refused, never paid, nothing composed.
    let refused: Vec<_> = books
        .issuances
        .iter()
        .filter(|(_, r)| r.error_code.as_deref() == Some(UNAVAILABLE))
        .collect();
    assert!(
        refused.len() >= unavailable.len(),
        "{label}: {} unavailable records, {} such rows",
        unavailable.len(),
        refused.len()
    );
    for (id, row) in refused {
        assert_eq!(row.municipality_code, FAULTY_MUNICIPALITY, "{label}: {id}");
        assert_eq!(row.state, "refused", "{label}: {id}: {row:?}");
        assert!(
            row.paid_yen.is_none() && row.document_sha256.is_none(),
            "{label}: {id} was composed or paid: {row:?}"
        );
        assert!(
            !books.window_items.contains_key(id),
            "{label}: {id} settled"
        );
    }
    deployment.stop().await;
}

// ---------------------------------------------------------------------------------
// b. A center replica is killed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn center_replica_killed_mid_run_kiosks_fail_over() {
    let (seed, label) = seeded("replica_killed");
    let options = DeploymentOptions {
        replicas: 2,
        // Short payment timeout: what the killed replica left `prepared` is voided by
        // the survivor's sweep (and by the final sweep).
        center_timeouts: vec![("sweep_interval_ms", 500), ("payment_timeout_ms", 3_000)],
        ..DeploymentOptions::default()
    };
    let Some(mut deployment) =
        ProcessDeployment::start("faults-replica", Backend::Postgres, options).await
    else {
        return;
    };
    let mut running = LoadProcess::spawn(load_args(&deployment, 16, 150, seed), &deployment.logs);
    deployment
        .wait_for_printed(PRINTED_BEFORE_KILL, PRINTED_BEFORE_KILL_TIMEOUT)
        .await;
    assert!(running.running(), "{label}: the load ended before the kill");
    deployment.kill_center(1);
    let run = running.finish(LOAD_TIMEOUT).await;
    deployment.assert_centers_alive(&[1]);
    eprintln!("{label}: {}", run.summary);
    run.assert_sound(&label);
    assert!(
        run.count("failovers") > 0,
        "{label}: no kiosk failed over: {}",
        run.summary
    );
    assert!(
        run.records.iter().any(|r| r.failovers > 0),
        "{label}: no record shows a failover"
    );
    assert!(run.count("issued") > 0, "{label}: nothing issued");

    let books = close_and_check(&mut deployment, &run, &label).await;
    let issued: BTreeSet<&String> = run
        .with_outcome("issued")
        .filter_map(|r| r.request_id.as_ref())
        .collect();
    // The other way round too: every printed request was issued to a kiosk.
    for id in books.window_items.keys() {
        assert!(
            issued.contains(id),
            "{label}: {id} is printed and settled, but no kiosk saw it issued"
        );
    }
    deployment.stop().await;
}

// ---------------------------------------------------------------------------------
// c. A slow adapter.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_adapter_times_out_the_whole_request_and_the_late_answer_is_discarded() {
    let (seed, label) = seeded("slow_adapter");
    let options = DeploymentOptions {
        replicas: 1,
        center_timeouts: vec![
            ("request_deadline_ms", SHORT_DEADLINE_MS),
            ("adapter_timeout_ms", SHORT_DEADLINE_MS),
        ],
        proxied_adapters: vec![FAULTY_ADAPTER],
    };
    let Some(mut deployment) =
        ProcessDeployment::start("faults-slow", Backend::Postgres, options).await
    else {
        return;
    };
    // Before the adapter turns slow: the catalogue is cached and one certificate is
    // issued through the proxy (which proves the link works).
    let warm_up = deployment.issue_one(FAULTY_MUNICIPALITY).await;
    let proxy = &deployment.proxies[FAULTY_ADAPTER];
    proxy.set_response_hold_ms(HOLD_MS);

    let run = load::run(
        load_args(&deployment, 8, 40, seed),
        &deployment.logs,
        LOAD_TIMEOUT,
    )
    .await;
    let held = deployment.proxies[FAULTY_ADAPTER]
        .knobs()
        .held_chunks
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{label}: {} ({held} chunks held)", run.summary);
    run.assert_sound(&label);

    let mut timed_out = 0;
    for record in &run.records {
        if record.municipality.as_deref() == Some(FAULTY_MUNICIPALITY) {
            assert_ne!(
                record.outcome, "issued",
                "{label}: issued past the deadline: {}",
                record.raw
            );
            if record.outcome == "error" {
                assert_eq!(
                    record.reason.as_deref(),
                    Some(TIMEOUT),
                    "{label}: {}",
                    record.raw
                );
                timed_out += 1;
            }
        } else {
            assert_ne!(
                record.outcome, "error",
                "{label}: another municipality was affected: {}",
                record.raw
            );
        }
    }
    assert!(
        timed_out > 0,
        "{label}: no request went to the slow adapter"
    );
    assert!(
        run.with_outcome("issued").count() > 0,
        "{label}: the other municipalities issued nothing"
    );

    // In the books: expired, nothing composed, no fee; the adapter answered each one
    // (its answers table holds it) but the answer was dropped.
    let books = close_and_check(&mut deployment, &run, &label).await;
    let answered = adapter_answers(&deployment.adapter_database_url(FAULTY_ADAPTER)).await;
    let expired: Vec<_> = books
        .issuances
        .iter()
        .filter(|(id, r)| r.municipality_code == FAULTY_MUNICIPALITY && **id != warm_up)
        .filter(|(_, r)| r.error_code.as_deref() == Some(TIMEOUT))
        .collect();
    assert_eq!(
        expired.len(),
        timed_out,
        "{label}: one expired request per timeout the kiosks saw"
    );
    for (id, row) in expired {
        assert_eq!(row.state, "expired", "{label}: {id}: {row:?}");
        assert!(
            row.paid_yen.is_none() && row.document_sha256.is_none(),
            "{label}: {id} was composed or paid after its deadline: {row:?}"
        );
        assert!(
            answered.contains(id),
            "{label}: the adapter never answered {id}, so nothing late was discarded"
        );
    }
    for (id, row) in &books.issuances {
        if row.municipality_code == FAULTY_MUNICIPALITY && *id != warm_up {
            assert!(
                row.paid_yen.is_none() && row.document_sha256.is_none(),
                "{label}: {id} of the slow municipality was composed: {row:?}"
            );
        }
    }
    deployment.stop().await;
}

/// The same fault for one request from an in-process kiosk, without the load: the
/// kiosk is told `upstream_timeout`, prints nothing, pays nothing; the request is
/// `expired` although the adapter answered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_answer_expires_one_request() {
    let label = "held_answer";
    let options = DeploymentOptions {
        replicas: 1,
        center_timeouts: vec![
            ("request_deadline_ms", SHORT_DEADLINE_MS),
            ("adapter_timeout_ms", SHORT_DEADLINE_MS),
        ],
        proxied_adapters: vec![FAULTY_ADAPTER],
    };
    let Some(mut deployment) =
        ProcessDeployment::start("faults-held", Backend::Postgres, options).await
    else {
        return;
    };
    let warm_up = deployment.issue_one(FAULTY_MUNICIPALITY).await;
    deployment.proxies[FAULTY_ADAPTER].set_response_hold_ms(HOLD_MS);
    let began = std::time::Instant::now();
    let error = match deployment.try_issue(FAULTY_MUNICIPALITY).await {
        Err(error) => error,
        Ok(outcome) => panic!("{label}: the slow adapter's request ended {outcome:?}"),
    };
    let waited = began.elapsed();
    assert_eq!(
        e2e::center_code(&error),
        Some(schemas::ErrorCode::UpstreamTimeout),
        "{label}: {error:?}"
    );
    assert!(
        waited < Duration::from_millis(HOLD_MS),
        "{label}: the center waited {waited:?}, past its deadline, for the held answer"
    );
    assert_eq!(
        e2e::pdfs_in(&deployment.dir().join("in-process-out")),
        1,
        "{label}: only the warm-up printed"
    );

    let pool = deployment.pool().await;
    let books = Books::read(&pool).await;
    let answered = adapter_answers(&deployment.adapter_database_url(FAULTY_ADAPTER)).await;
    let expired: Vec<_> = books
        .issuances
        .iter()
        .filter(|(_, r)| r.state == "expired")
        .collect();
    assert_eq!(expired.len(), 1, "{label}: {}", books.summary());
    let (id, row) = expired[0];
    assert_eq!(row.error_code.as_deref(), Some(TIMEOUT), "{label}: {row:?}");
    assert!(
        row.paid_yen.is_none() && row.document_sha256.is_none(),
        "{label}: {id} composed or paid: {row:?}"
    );
    assert!(
        answered.contains(id),
        "{label}: the adapter never answered {id}: the hold cut the handshake, not the answer"
    );
    assert_eq!(books.issuances[&warm_up].state, "printed", "{label}");
    let (_, books) = deployment.sweep_close_and_read().await;
    books.check(label);
    deployment.stop().await;
}

/// Request ids in an adapter's answers table.
async fn adapter_answers(database_url: &str) -> BTreeSet<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url)
        .await
        .expect("adapter database");
    let ids = sqlx::query("SELECT request_id FROM answers")
        .fetch_all(&pool)
        .await
        .expect("answers")
        .iter()
        .map(|row| row.get::<String, _>("request_id"))
        .collect();
    pool.close().await;
    ids
}

// ---------------------------------------------------------------------------------
// d. Latency on the center↔adapter link.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_latency_shows_in_the_municipality_phase_and_everything_issues() {
    let (seed, label) = seeded("link_latency");
    let options = DeploymentOptions {
        replicas: 1,
        proxied_adapters: vec!["kitamoto", "minokamo-sakahogi"],
        ..DeploymentOptions::default()
    };
    let Some(mut deployment) =
        ProcessDeployment::start("faults-latency", Backend::Postgres, options).await
    else {
        return;
    };
    for proxy in deployment.proxies.values() {
        proxy.set_latency_ms(LINK_LATENCY_MS, LINK_LATENCY_MS);
    }
    let run = load::run(
        load_args(&deployment, 8, 60, seed),
        &deployment.logs,
        LOAD_TIMEOUT,
    )
    .await;
    eprintln!("{label}: {}", run.summary);
    run.assert_sound(&label);
    assert_eq!(run.count("errors"), 0, "{label}: {}", run.summary);
    assert!(run.count("issued") > 0, "{label}: nothing issued");

    // One round trip at least on every fetch. The phase comes from the center's
    // Server-Timing header; without it, end to end must show it too.
    let round_trip_ms = f64::from(u32::try_from(2 * LINK_LATENCY_MS).expect("small"));
    let (phase, p50_ms) = match run.phase("municipality", "p50_ms") {
        Some(p50) if run.phase("municipality", "count").unwrap_or(0.0) > 0.0 => {
            ("municipality", p50)
        }
        _ => {
            eprintln!("{label}: no municipality phase in the summary; using end_to_end");
            let p50 = run
                .phase("end_to_end", "p50_ms")
                .unwrap_or_else(|| run.number("p50_ms"));
            ("end_to_end", p50)
        }
    };
    assert!(
        p50_ms >= round_trip_ms,
        "{label}: {phase} p50 {p50_ms} ms < the added round trip {round_trip_ms} ms: {}",
        run.summary
    );
    let _ = close_and_check(&mut deployment, &run, &label).await;
    deployment.stop().await;
}
