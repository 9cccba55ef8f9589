//! The center's Prometheus metrics (`prometheus-client`), served as text on the
//! operations listener's `GET /metrics` (`routes::metrics`).
//!
//! One registry per `AppState`, no global one: tests and in-process sandboxes run
//! several centers in one process. Counters and histograms move as requests are
//! handled; money and reconciliation gauges are read from the database at scrape time
//! (the database is the only truth: replicas would disagree on counters of their own).
//! Nothing here decides anything.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use schemas::kiosk_api::{
    SERVER_TIMING_CARD, SERVER_TIMING_CENTER, SERVER_TIMING_COMPOSE, SERVER_TIMING_MUNICIPALITY,
};
use sqlx::{AnyPool, Row as _};

/// Latency buckets, seconds: a card check takes milliseconds, a municipality's hop tens
/// to hundreds of milliseconds, and the request deadline is seconds.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bound on the scrape-time database reads: a slow database must not hang the
/// scraper (it then sees `kofu_center_scrape_database_ok 0`).
const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Prometheus text answer's content type (OpenMetrics, which `prometheus-client` writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `issued`, `refused` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The stable `RefusalReason` code.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The stable `ErrorCode`.
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MunicipalityLabels {
    pub municipality: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    /// `payment` or `print`.
    pub kind: &'static str,
    /// The acknowledged `IssuanceStatus`, or `rejected`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    pub bucket: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// Every metric the center exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    issuances: Family<OutcomeLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    phase_seconds: HistogramFamily<PhaseLabels>,
    adapter_request_seconds: HistogramFamily<MunicipalityLabels>,
    binding_guard_trips: Family<MunicipalityLabels, Counter>,
    outcome_reports: Family<ReportLabels, Counter>,
    money_yen: Family<BucketLabels, Gauge>,
    recon_required_items: Gauge,
    scrape_database_ok: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kofu_center");
        let issuances = Family::default();
        registry.register(
            "issuances",
            "POST /v1/issuances answers by outcome (issued, refused, error)",
            issuances.clone(),
        );
        let refusals = Family::default();
        registry.register(
            "refusals",
            "Refusals by stable RefusalReason code",
            refusals.clone(),
        );
        let errors = Family::default();
        registry.register(
            "errors",
            "Error answers of the issuance endpoints by stable ErrorCode",
            errors.clone(),
        );
        let phase_seconds: HistogramFamily<PhaseLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "phase_seconds",
            "Time per phase of POST /v1/issuances (card, municipality, compose, center), seconds",
            phase_seconds.clone(),
        );
        let adapter_request_seconds: HistogramFamily<MunicipalityLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "adapter_request_seconds",
            "Certificate fetches to a municipality's adapter, seconds (answered or not)",
            adapter_request_seconds.clone(),
        );
        let binding_guard_trips = Family::default();
        registry.register(
            "binding_guard_trips",
            "Municipality answers discarded by the binding guard",
            binding_guard_trips.clone(),
        );
        let outcome_reports = Family::default();
        registry.register(
            "outcome_reports",
            "Payment and print reports by kind and acknowledged status (or rejected)",
            outcome_reports.clone(),
        );
        let money_yen = Family::default();
        registry.register(
            "money_yen",
            "Where every yen paid is, integer yen, read from the database at scrape time",
            money_yen.clone(),
        );
        let recon_required_items = Gauge::default();
        registry.register(
            "recon_required_items",
            "Issuances in recon_required (paid, print outcome unknown at a cut)",
            recon_required_items.clone(),
        );
        let scrape_database_ok = Gauge::default();
        registry.register(
            "scrape_database_ok",
            "1 when this scrape read the money gauges from the database, else 0",
            scrape_database_ok.clone(),
        );
        Self {
            registry,
            issuances,
            refusals,
            errors,
            phase_seconds,
            adapter_request_seconds,
            binding_guard_trips,
            outcome_reports,
            money_yen,
            recon_required_items,
            scrape_database_ok,
        }
    }

    pub fn issued(&self) {
        self.issuances
            .get_or_create(&OutcomeLabels { outcome: "issued" })
            .inc();
    }

    pub fn refused(&self, reason_code: &str) {
        self.issuances
            .get_or_create(&OutcomeLabels { outcome: "refused" })
            .inc();
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason_code.to_owned(),
            })
            .inc();
    }

    /// An error answer of `POST /v1/issuances`.
    pub fn issuance_failed(&self, code: schemas::ErrorCode) {
        self.issuances
            .get_or_create(&OutcomeLabels { outcome: "error" })
            .inc();
        self.error(code);
    }

    /// An error answer of an issuance endpoint (issuance, payment or print report).
    pub fn error(&self, code: schemas::ErrorCode) {
        self.errors
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }

    pub fn phases(&self, timer: &PhaseTimer, center: Duration) {
        for (phase, elapsed) in timer.measured() {
            self.phase_seconds
                .get_or_create(&PhaseLabels { phase })
                .observe(elapsed.as_secs_f64());
        }
        self.phase_seconds
            .get_or_create(&PhaseLabels {
                phase: SERVER_TIMING_CENTER,
            })
            .observe(center.as_secs_f64());
    }

    pub fn adapter_request(&self, municipality: &str, elapsed: Duration) {
        self.adapter_request_seconds
            .get_or_create(&MunicipalityLabels {
                municipality: municipality.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn binding_guard_tripped(&self, municipality: &str) {
        self.binding_guard_trips
            .get_or_create(&MunicipalityLabels {
                municipality: municipality.to_owned(),
            })
            .inc();
    }

    /// `kind` is `payment` or `print`; `status` the acknowledged status or `rejected`.
    pub fn outcome_report(&self, kind: &'static str, status: &str) {
        debug_assert!(kind == "payment" || kind == "print");
        self.outcome_reports
            .get_or_create(&ReportLabels {
                kind,
                status: status.to_owned(),
            })
            .inc();
    }

    /// Also exports the write path's metrics (`kofu_center_store_*`): the store's own
    /// handles, so they move as it commits.
    pub fn with_store(mut self, store: &crate::store::StoreMetrics) -> Self {
        self.registry.register(
            "store_commit_seconds",
            "Time of one commit, first statement to the end of COMMIT (SQLite: one group commit)",
            store.commit_seconds.clone(),
        );
        self.registry.register(
            "store_jobs_per_commit",
            "Write jobs per commit (SQLite group commits; 1 on PostgreSQL)",
            store.jobs_per_commit.clone(),
        );
        self.registry.register(
            "store_failed_commits",
            "Commits that failed whole, every job of them answered an error",
            store.failed_commits.clone(),
        );
        self.registry.register(
            "store_log_restarts",
            "SQLite: times the write-ahead log was started over",
            store.log_restarts.clone(),
        );
        self
    }

    /// Reads the money gauges from the database (bounded in time), then encodes every
    /// metric as Prometheus/OpenMetrics text.
    pub async fn scrape(&self, pool: &AnyPool) -> Result<String, std::fmt::Error> {
        match tokio::time::timeout(SCRAPE_DB_TIMEOUT, read_money(pool)).await {
            Ok(Ok((balance, recon_items))) => {
                for (bucket, yen) in [
                    ("paid", balance.paid_yen),
                    ("in_windows", balance.in_windows_yen),
                    ("settled", balance.settled_yen),
                    ("refunded", balance.refunded_yen),
                    ("recon_required", balance.recon_required_yen),
                    (
                        "printed_outside_windows",
                        balance.printed_outside_windows_yen,
                    ),
                    ("paid_unresolved", balance.paid_unresolved_yen),
                ] {
                    self.money_yen
                        .get_or_create(&BucketLabels { bucket })
                        .set(yen);
                }
                self.recon_required_items.set(recon_items);
                self.scrape_database_ok.set(1);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "metrics: money gauges not read");
                self.scrape_database_ok.set(0);
            }
            Err(_) => {
                tracing::warn!("metrics: money gauges timed out");
                self.scrape_database_ok.set(0);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

async fn read_money(
    pool: &AnyPool,
) -> Result<(crate::settlement::MoneyBalance, i64), crate::settlement::SettlementError> {
    let balance = crate::settlement::money_balance(pool).await?;
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM issuances WHERE state = 'recon_required'",
    )
    .fetch_one(pool)
    .await
    .map_err(crate::db::DbError::from)?;
    let items: i64 = row.try_get("n").map_err(crate::db::DbError::from)?;
    Ok((balance, items))
}

/// A phase of `POST /v1/issuances` measured inside `issuance::issue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Card,
    Municipality,
    Compose,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Card, Phase::Municipality, Phase::Compose];

    /// The `Server-Timing` name and the histogram's `phase` label.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Card => SERVER_TIMING_CARD,
            Phase::Municipality => SERVER_TIMING_MUNICIPALITY,
            Phase::Compose => SERVER_TIMING_COMPOSE,
        }
    }

    fn index(self) -> usize {
        match self {
            Phase::Card => 0,
            Phase::Municipality => 1,
            Phase::Compose => 2,
        }
    }
}

/// Per-request phase durations (monotonic clock: the center's `Clock` may be shifted
/// in tests, latency is not). A phase that did not run stays absent.
#[derive(Debug, Default)]
pub struct PhaseTimer {
    elapsed: Mutex<[Option<Duration>; 3]>,
}

impl PhaseTimer {
    pub fn record(&self, phase: Phase, elapsed: Duration) {
        if let Ok(mut slots) = self.elapsed.lock() {
            let slot = &mut slots[phase.index()];
            *slot = Some(slot.unwrap_or_default() + elapsed);
        }
    }

    /// Measures `phase` until the guard is dropped (early returns included).
    pub fn start(&self, phase: Phase) -> PhaseGuard<'_> {
        PhaseGuard {
            timer: self,
            phase,
            started: Instant::now(),
        }
    }

    /// The phases that ran, in the order they run.
    pub fn measured(&self) -> Vec<(&'static str, Duration)> {
        let Ok(slots) = self.elapsed.lock() else {
            return Vec::new();
        };
        Phase::ALL
            .iter()
            .filter_map(|p| slots[p.index()].map(|d| (p.name(), d)))
            .collect()
    }

    /// `card;dur=1.234, municipality;dur=30.5, compose;dur=4.1, center;dur=40.2` (ms).
    pub fn server_timing(&self, center: Duration) -> String {
        let mut parts: Vec<String> = self
            .measured()
            .into_iter()
            .map(|(name, d)| format!("{name};dur={:.3}", d.as_secs_f64() * 1000.0))
            .collect();
        parts.push(format!(
            "{SERVER_TIMING_CENTER};dur={:.3}",
            center.as_secs_f64() * 1000.0
        ));
        parts.join(", ")
    }
}

/// Records its phase's elapsed time into the timer when dropped.
#[must_use = "the phase is measured until the guard is dropped"]
pub struct PhaseGuard<'a> {
    timer: &'a PhaseTimer,
    phase: Phase,
    started: Instant,
}

impl Drop for PhaseGuard<'_> {
    fn drop(&mut self) {
        self.timer.record(self.phase, self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_lists_only_phases_that_ran_then_center() {
        let timer = PhaseTimer::default();
        timer.record(Phase::Card, Duration::from_micros(1_234));
        assert_eq!(
            timer.server_timing(Duration::from_micros(40_200)),
            "card;dur=1.234, center;dur=40.200"
        );
        timer.record(Phase::Compose, Duration::from_millis(4));
        timer.record(Phase::Municipality, Duration::from_millis(30));
        assert_eq!(
            timer.server_timing(Duration::from_millis(40)),
            "card;dur=1.234, municipality;dur=30.000, compose;dur=4.000, center;dur=40.000"
        );
    }

    #[test]
    fn counters_and_histograms_are_named_for_the_service() {
        let metrics = Metrics::new();
        metrics.issued();
        metrics.refused("service_hours");
        metrics.issuance_failed(schemas::ErrorCode::UpstreamTimeout);
        let timer = PhaseTimer::default();
        timer.record(Phase::Card, Duration::from_millis(2));
        metrics.phases(&timer, Duration::from_millis(3));
        metrics.adapter_request("212113", Duration::from_millis(20));
        metrics.binding_guard_tripped("212113");
        metrics.outcome_report("print", "printed");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for line in [
            "kofu_center_issuances_total{outcome=\"issued\"} 1",
            "kofu_center_issuances_total{outcome=\"refused\"} 1",
            "kofu_center_issuances_total{outcome=\"error\"} 1",
            "kofu_center_refusals_total{reason=\"service_hours\"} 1",
            "kofu_center_errors_total{code=\"upstream_timeout\"} 1",
            "kofu_center_phase_seconds_count{phase=\"card\"} 1",
            "kofu_center_phase_seconds_count{phase=\"center\"} 1",
            "kofu_center_adapter_request_seconds_count{municipality=\"212113\"} 1",
            "kofu_center_binding_guard_trips_total{municipality=\"212113\"} 1",
            "kofu_center_outcome_reports_total{kind=\"print\",status=\"printed\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("phase=\"compose\""), "compose did not run");
    }
}
