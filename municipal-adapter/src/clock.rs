//! Time, injected: the adapter checks deadlines against it. In production it is the
//! system clock (kept in sync with the center's by NTP); the sandbox and the tests
//! hand in the center's own clock, so that a test which moves the center's clock
//! moves the whole deployment's.

use std::sync::Arc;

use jiff::Timestamp;

/// A source of "now"; cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
