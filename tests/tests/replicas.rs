//! Replicas (issue 8, item 2): two center processes share one PostgreSQL database with
//! no in-process state that decides an issuance. `kiosk-sim load` spreads its kiosks
//! over both; afterwards nothing was misissued, every issued request is `printed` in
//! the database with its fee, and closing the settlement window settles exactly the
//! printed fees with money conserved.
//!
//! `LOAD_SEED=<n>` replays the load's choices (cards, orders).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::deployment::{DeploymentOptions, ProcessDeployment};
use e2e::load::{self, LoadArgs};
use e2e::procs::Rng;
use e2e::Backend;

const KIOSKS: u32 = 16;
const REQUESTS: u32 = 150;
/// The load bounds itself; the test waits a little longer before calling it hung.
const LOAD_TIME_LIMIT_S: u64 = 75;
const LOAD_TIMEOUT: Duration = Duration::from_secs(LOAD_TIME_LIMIT_S + 30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_issue_and_settle_exactly() {
    let seed = Rng::seed_from_env("LOAD_SEED");
    let label = format!("replicas seed={seed}");
    eprintln!("{label} (replay with LOAD_SEED={seed})");
    let options = DeploymentOptions {
        replicas: 2,
        ..DeploymentOptions::default()
    };
    let Some(mut deployment) =
        ProcessDeployment::start("replicas", Backend::Postgres, options).await
    else {
        return;
    };
    let urls = deployment.center_urls();
    assert_ne!(urls[0], urls[1], "the replicas listen apart");

    let run = load::run(
        LoadArgs {
            kiosks: KIOSKS,
            requests: REQUESTS,
            centers: urls.clone(),
            dir: deployment.sandbox_dir().to_path_buf(),
            records: deployment.dir().join("records.jsonl"),
            seed: Some(seed),
            time_limit_s: Some(LOAD_TIME_LIMIT_S),
        },
        &deployment.logs,
        LOAD_TIMEOUT,
    )
    .await;
    deployment.assert_centers_alive(&[]);
    eprintln!("{label}: {}", run.summary);
    run.assert_sound(&label);
    assert_eq!(run.count("errors"), 0, "{label}: {}", run.summary);
    assert!(run.count("issued") > 0, "{label}: nothing issued");

    // Both replicas served.
    let mut per_center: BTreeMap<String, usize> = BTreeMap::new();
    for record in &run.records {
        let url = record
            .center_url
            .clone()
            .unwrap_or_else(|| panic!("{label}: record without a center URL: {}", record.raw));
        *per_center.entry(url).or_default() += 1;
    }
    for url in &urls {
        assert!(
            per_center.get(url).is_some_and(|n| *n > 0),
            "{label}: replica {url} served nothing: {per_center:?}"
        );
    }

    // Every issued request is printed in the shared database with its fee, and
    // nothing else is.
    let store = deployment.pool().await;
    let before = e2e::books::Books::read(&store).await;
    let mut issued_fees: BTreeMap<String, i64> = BTreeMap::new();
    for record in run.with_outcome("issued") {
        let id = record
            .request_id
            .clone()
            .unwrap_or_else(|| panic!("{label}: issued record without a request id"));
        let row = before
            .issuances
            .get(&id)
            .unwrap_or_else(|| panic!("{label}: issued {id} is not in the database"));
        assert_eq!(row.state, "printed", "{label}: issued {id}: {row:?}");
        let fee = row
            .total_fee_yen
            .unwrap_or_else(|| panic!("{label}: {id} has no fee"));
        assert!(
            fee > 0 && row.paid_yen == Some(fee),
            "{label}: {id} paid {:?} for a fee of {fee}",
            row.paid_yen
        );
        assert!(
            issued_fees.insert(id.clone(), fee).is_none(),
            "{label}: {id} issued twice"
        );
    }
    let printed_in_db: BTreeSet<String> = before
        .issuances
        .iter()
        .filter(|(_, r)| r.state == "printed")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        printed_in_db,
        issued_fees.keys().cloned().collect::<BTreeSet<_>>(),
        "{label}: the database prints exactly what the kiosks issued"
    );

    // Exact settlement.
    let (close, books) = deployment.sweep_close_and_read().await;
    eprintln!(
        "{label}: close {} items {} yen; {}",
        close.items,
        close.gross_yen,
        books.summary()
    );
    books.check(&label);
    assert_eq!(
        books.window_items, issued_fees,
        "{label}: the window holds exactly the issued requests at their fees"
    );
    let printed_yen: i64 = issued_fees.values().sum();
    assert_eq!(books.balance.in_windows_yen, printed_yen, "{label}");
    assert_eq!(
        books.balance.recon_required_yen, 0,
        "{label}: every print outcome reached a replica"
    );
    deployment.stop().await;
}

/// Without the load: one kiosk issues through each replica in turn; both requests are
/// printed in the one database and settle in the one window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_issues_into_the_shared_database() {
    let label = "each_replica";
    let options = DeploymentOptions {
        replicas: 2,
        ..DeploymentOptions::default()
    };
    let Some(mut deployment) =
        ProcessDeployment::start("replicas-each", Backend::Postgres, options).await
    else {
        return;
    };
    let mut printed = BTreeSet::new();
    for (replica, municipality) in [(0, "212113"), (1, "112330"), (1, "215015")] {
        match deployment.try_issue_at(replica, municipality).await {
            Ok(kiosk_sim::IssueOutcome::Printed(doc)) => {
                printed.insert(doc.request_id.to_string());
            }
            other => panic!("{label}: replica {replica}, {municipality}: {other:?}"),
        }
    }
    deployment.assert_centers_alive(&[]);
    let (close, books) = deployment.sweep_close_and_read().await;
    books.check(label);
    assert_eq!(close.items, 3, "{label}: {}", books.summary());
    assert_eq!(
        books.window_items.keys().cloned().collect::<BTreeSet<_>>(),
        printed,
        "{label}"
    );
    deployment.stop().await;
}

/// A challenge minted by one replica authorizes an order at the other (every replica
/// derives the same challenge key from the center key, and none keeps challenges in
/// memory), and only once across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_from_one_replica_authorizes_once_at_either() {
    let label = "cross_replica_challenge";
    let options = DeploymentOptions {
        replicas: 2,
        ..DeploymentOptions::default()
    };
    let Some(deployment) =
        ProcessDeployment::start("replicas-challenge", Backend::Postgres, options).await
    else {
        return;
    };
    let kiosk = "lawson-0063";
    let at = |replica| {
        kiosk_sim::CenterClient::new(&deployment.kiosk_settings_at(replica, kiosk)).expect("client")
    };
    let (first, second) = (at(0), at(1));
    let card = deployment.printable_card("212113");
    let pin = e2e::pin_of(card);
    let kiosk_id = schemas::KioskId::parse(kiosk).expect("kiosk id");
    let order = e2e::resident_record(schemas::HouseholdScope::SelfOnly);
    let nonce = first.challenge().await.expect("challenge").nonce;
    let signed = |key: &str| {
        e2e::signed_request(
            &card.path,
            &pin,
            &kiosk_id,
            key,
            nonce.as_slice(),
            order.clone(),
        )
    };
    match second.issue(&signed("cross-replica-0001")).await {
        Ok(schemas::IssuanceResponse::Prepared { .. }) => {}
        other => panic!("{label}: minted at 0, used at 1: {other:?}"),
    }
    let error = first
        .issue(&signed("cross-replica-0002"))
        .await
        .expect_err("a used nonce");
    assert_eq!(
        error.error_code(),
        Some(schemas::ErrorCode::ChallengeUsed),
        "{label}: {error}"
    );
    deployment.stop().await;
}
