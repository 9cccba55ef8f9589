//! Operator alerts: log events under `target: "alert"` with the fields `alert`,
//! `municipality` and `request_ids` (comma-separated), at `error` or `warn`, for a log
//! pipeline to page on. Three kinds: `binding_guard` (`issuance`), `recon_required`
//! (`settlement`, one per municipality when a window closes) and `adapter_errors`
//! (this module's burst detector, fed by `issuance`).
//!
//! The burst detector's state serves alerting only: no issuance ever reads it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Adapter failures (unavailable, timeout, bad answer) within [`BURST_WINDOW`] that
/// raise one `adapter_errors` alert for a municipality.
pub const BURST_THRESHOLD: usize = 5;
/// The sliding window, and the quiet period after an alert.
pub const BURST_WINDOW: Duration = Duration::from_secs(60);

/// Counts adapter failures per municipality in a sliding window; at the threshold it
/// returns the failing request ids once, then stays quiet for a window. Memory is
/// bounded: at most `max_municipalities` keys, each with at most `threshold` entries.
#[derive(Debug)]
pub struct BurstDetector {
    threshold: usize,
    window: Duration,
    max_municipalities: usize,
    state: Mutex<HashMap<String, Recent>>,
}

#[derive(Debug, Default)]
struct Recent {
    failures: VecDeque<(Instant, String)>,
    quiet_until: Option<Instant>,
}

impl BurstDetector {
    pub fn new(threshold: usize, window: Duration, max_municipalities: usize) -> Self {
        assert!(threshold >= 1 && max_municipalities >= 1);
        Self {
            threshold,
            window,
            max_municipalities,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Records one failure; `Some(request ids)` when this one completes a burst.
    pub fn record_failure(
        &self,
        municipality: &str,
        request_id: &str,
        now: Instant,
    ) -> Option<Vec<String>> {
        let mut state = self.state.lock().ok()?;
        if !state.contains_key(municipality) && state.len() >= self.max_municipalities {
            // Forget municipalities with nothing recent before refusing a new one.
            state.retain(|_, r| {
                r.failures
                    .back()
                    .is_some_and(|(at, _)| now.duration_since(*at) < self.window)
                    || r.quiet_until.is_some_and(|q| now < q)
            });
            if state.len() >= self.max_municipalities {
                return None;
            }
        }
        let recent = state.entry(municipality.to_owned()).or_default();
        if recent.quiet_until.is_some_and(|q| now < q) {
            return None;
        }
        recent.quiet_until = None;
        while recent
            .failures
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            recent.failures.pop_front();
        }
        recent.failures.push_back((now, request_id.to_owned()));
        assert!(recent.failures.len() <= self.threshold);
        if recent.failures.len() < self.threshold {
            return None;
        }
        recent.quiet_until = Some(now + self.window);
        Some(recent.failures.drain(..).map(|(_, id)| id).collect())
    }
}

/// Feeds one adapter failure to `detector` and logs the `adapter_errors` alert when it
/// completes a burst.
pub fn adapter_failure(detector: &BurstDetector, municipality: &str, request_id: &str, kind: &str) {
    if let Some(request_ids) = detector.record_failure(municipality, request_id, Instant::now()) {
        tracing::error!(
            target: "alert",
            alert = "adapter_errors",
            municipality,
            request_ids = %request_ids.join(","),
            failures = request_ids.len(),
            window_s = detector.window.as_secs(),
            last_failure = kind,
            "municipality adapter failing repeatedly"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> BurstDetector {
        BurstDetector::new(5, Duration::from_secs(60), 2)
    }

    #[test]
    fn five_failures_within_the_window_alert_once_then_quiet() {
        let d = detector();
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(d.record_failure("212113", &format!("r{i}"), t0), None);
        }
        let ids = d.record_failure("212113", "r4", t0 + Duration::from_secs(59));
        assert_eq!(
            ids,
            Some(
                vec!["r0", "r1", "r2", "r3", "r4"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        // Quiet for a window after the alert, however many fail.
        for i in 5..20 {
            let at = t0 + Duration::from_secs(60 + i);
            assert_eq!(d.record_failure("212113", &format!("r{i}"), at), None);
        }
        // After the quiet window, a new burst alerts again.
        let later = t0 + Duration::from_secs(200);
        for i in 0..4 {
            assert_eq!(d.record_failure("212113", &format!("s{i}"), later), None);
        }
        assert!(d.record_failure("212113", "s4", later).is_some());
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_alert() {
        let d = detector();
        let t0 = Instant::now();
        for i in 0..20u64 {
            let at = t0 + Duration::from_secs(i * 15);
            assert_eq!(
                d.record_failure("212113", &format!("r{i}"), at),
                None,
                "{i}"
            );
        }
    }

    #[test]
    fn municipalities_are_counted_apart_and_bounded() {
        let d = detector();
        let t0 = Instant::now();
        for i in 0..4 {
            d.record_failure("212113", &format!("a{i}"), t0);
            d.record_failure("131016", &format!("b{i}"), t0);
        }
        // A third municipality does not fit while both others have recent failures.
        for i in 0..5 {
            assert_eq!(d.record_failure("011002", &format!("c{i}"), t0), None);
        }
        assert_eq!(d.state.lock().unwrap().len(), 2);
        assert!(d.record_failure("131016", "b4", t0).is_some());
        // Once the others' failures are old, the third is tracked.
        let later = t0 + Duration::from_secs(400);
        for i in 0..4 {
            assert_eq!(d.record_failure("011002", &format!("c{i}"), later), None);
        }
        assert!(d.record_failure("011002", "c4", later).is_some());
    }
}
