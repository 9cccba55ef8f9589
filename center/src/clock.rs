//! Time, injected: the center never reads the system clock directly, so tests can
//! move it (service hours, expiry, challenge lifetimes).

use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_unix_ms(&self) -> i64;
    fn now_unix_s(&self) -> i64 {
        self.now_unix_ms().div_euclid(1000)
    }
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond()
    }
}

/// The system clock shifted by an adjustable offset (tests and demos).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::SeqCst);
    }

    /// Shifts the clock so that it reads `instant` now and runs on from there.
    pub fn set_now(&self, instant: jiff::Timestamp) {
        self.set_offset_ms(instant.as_millisecond() - SystemClock.now_unix_ms());
    }
}

impl Clock for OffsetClock {
    fn now_unix_ms(&self) -> i64 {
        SystemClock.now_unix_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// An instant as people in Japan read it ("2026-11-25 10:00 JST"), for `center verify`
/// and the verification page; the raw seconds when out of range.
pub fn format_jst(unix_s: u64) -> String {
    i64::try_from(unix_s)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .and_then(|t| {
            jiff::tz::TimeZone::get("Asia/Tokyo")
                .ok()
                .map(|tz| t.to_zoned(tz).strftime("%Y-%m-%d %H:%M JST").to_string())
        })
        .unwrap_or_else(|| format!("{unix_s} s"))
}
