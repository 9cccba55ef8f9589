//! The center's operations listener: `/metrics` counts an issued certificate and a
//! refusal (counters, per-phase histograms, the adapter histogram, the money gauges
//! read from the database), `/ready` is 200, and `POST /v1/issuances` answers carry
//! `Server-Timing` with the phases that ran; with the database gone `/ready` is 503.

use std::time::Duration;

use e2e::{spawn_sandbox, Backend, TestSandbox};
use schemas::kiosk_api::SERVER_TIMING_HEADER;
use schemas::{
    CertificateKind, CertificateOrder, HouseholdScope, IssuanceResponse, RefusalReason, Route,
};

const CARD: &str = "2121130000000001";
const KIOSK: &str = "seven-0064";

fn order() -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        },
        copies: 1,
    }
}

/// Sends one issuance like a kiosk and returns the answer and its `Server-Timing`.
async fn issue(sb: &TestSandbox) -> (IssuanceResponse, String) {
    let settings = sb.kiosk_settings("seven", KIOSK);
    let client = kiosk_sim::CenterClient::new(&settings).expect("client");
    let challenge = client.challenge().await.expect("challenge");
    let card = sb.card(CARD).clone();
    let request = e2e::signed_request(
        &card.path,
        &e2e::pin_of(&card),
        &settings.kiosk_id,
        &uuid::Uuid::new_v4().to_string(),
        challenge.nonce.as_slice(),
        order(),
    );
    let http = mtls::http_client(&settings.tls, Duration::from_secs(30)).expect("mTLS client");
    let response = http
        .post(format!("{}/v1/issuances", sb.running.center_url))
        .json(&request)
        .send()
        .await
        .expect("center answers");
    assert_eq!(response.status(), 200);
    let timing = response
        .headers()
        .get(SERVER_TIMING_HEADER)
        .expect("Server-Timing on every issuance answer")
        .to_str()
        .expect("ASCII")
        .to_owned();
    (response.json().await.expect("issuance answer"), timing)
}

/// `name{labels} value` of one sample in the exposition text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_issuance_and_a_refusal() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let ops = format!(
        "http://127.0.0.1:{}",
        sb.running
            .ops_port
            .expect("the sandbox configures ops_listen")
    );
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{ops}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let health = http
        .get(format!("{ops}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    // The operations listener serves nothing of the kiosk API.
    let menu = http
        .get(format!("{ops}/v1/menu"))
        .send()
        .await
        .expect("404");
    assert_eq!(menu.status(), 404);

    let (issued, timing) = issue(&sb).await;
    assert!(
        matches!(issued, IssuanceResponse::Prepared { .. }),
        "{issued:?}"
    );
    for phase in [
        "card;dur=",
        "municipality;dur=",
        "compose;dur=",
        "center;dur=",
    ] {
        assert!(timing.contains(phase), "{phase} missing in {timing}");
    }

    // After 23:00 the national hours refuse before the municipality is asked.
    sb.set_clock("2026-11-25T23:30:00+09:00");
    let (refused, timing) = issue(&sb).await;
    let IssuanceResponse::Refused { reason, .. } = refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(reason, RefusalReason::OutOfHours);
    assert!(timing.starts_with("card;dur="), "{timing}");
    assert!(timing.contains("center;dur="), "{timing}");
    assert!(!timing.contains("municipality"), "{timing}");

    let response = http
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let reason_code = serde_json::to_value(reason).expect("reason code");
    let reason_code = reason_code.as_str().expect("string code");
    for (series, expected) in [
        ("kofu_center_issuances_total{outcome=\"issued\"}", 1.0),
        ("kofu_center_issuances_total{outcome=\"refused\"}", 1.0),
        (
            &format!("kofu_center_refusals_total{{reason=\"{reason_code}\"}}"),
            1.0,
        ),
        ("kofu_center_phase_seconds_count{phase=\"card\"}", 2.0),
        (
            "kofu_center_phase_seconds_count{phase=\"municipality\"}",
            1.0,
        ),
        ("kofu_center_phase_seconds_count{phase=\"compose\"}", 1.0),
        ("kofu_center_phase_seconds_count{phase=\"center\"}", 2.0),
        (
            "kofu_center_adapter_request_seconds_count{municipality=\"212113\"}",
            1.0,
        ),
        ("kofu_center_scrape_database_ok", 1.0),
        ("kofu_center_money_yen{bucket=\"paid\"}", 0.0),
        ("kofu_center_recon_required_items", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(expected), "{series} in\n{text}");
    }
    let center_sum = sample(&text, "kofu_center_phase_seconds_sum{phase=\"center\"}")
        .expect("center latency sum");
    assert!(center_sum > 0.0, "{center_sum}");
    // The write path: the visit's writes were committed, none failed (the exact count
    // also holds the sealer's and the notice rounds' writes).
    let commits = sample(&text, "kofu_center_store_commit_seconds_count").expect("commits");
    let jobs = sample(&text, "kofu_center_store_jobs_per_commit_sum").expect("jobs");
    assert!(
        commits >= 1.0 && jobs >= commits,
        "{commits} commits of {jobs} jobs"
    );
    assert_eq!(
        sample(&text, "kofu_center_store_failed_commits_total"),
        Some(0.0)
    );
    assert!(sample(&text, "kofu_center_store_log_restarts_total").is_some());

    // The database gone (its pool closed under the center): not ready, still alive,
    // and the scrape says it could not read the money gauges.
    sb.running.center_pool.close().await;
    let ready = http
        .get(format!("{ops}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("JSON reason");
    assert_eq!(body["reason"], "database unavailable", "{body}");
    let health = http
        .get(format!("{ops}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let text = http
        .get(format!("{ops}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert_eq!(
        sample(&text, "kofu_center_scrape_database_ok"),
        Some(0.0),
        "{text}"
    );
    sb.stop().await;
}
