//! Test-only fault injection: deliberately wrong answers for the center's binding-guard
//! tests and the conformance suite's broken-adapter scenarios.
//!
//! Each mode breaks exactly one link of the binding guard while keeping everything
//! else right, so a test shows that the center catches that one link:
//!
//! | mode | the answer … |
//! | --- | --- |
//! | `wrong_request_id` | echoes a different (random) request id, and its seals carry it too; correctly signed |
//! | `wrong_card_digest` | echoes the card digest of another request |
//! | `foreign_front` | carries another resident's front, while the seals and the card digest are for the requested resident |
//! | `bad_signature` | is signed by a freshly generated key, not the municipality's |
//!
//! `delay_ms` makes every certificate answer that much later (a slow adapter; the
//! answer is stored first, so a retry replays it).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    #[default]
    None,
    WrongRequestId,
    WrongCardDigest,
    ForeignFront,
    BadSignature,
}

impl FaultMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::WrongRequestId => "wrong_request_id",
            Self::WrongCardDigest => "wrong_card_digest",
            Self::ForeignFront => "foreign_front",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl std::fmt::Display for FaultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    #[serde(default)]
    pub mode: FaultMode,
    /// Extra delay before every certificate answer, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

impl FaultSettings {
    pub fn is_active(&self) -> bool {
        self.mode != FaultMode::None || self.delay_ms > 0
    }

    /// Logs loudly when any fault is switched on: such an adapter must never face a
    /// real center.
    pub fn warn_if_active(&self) {
        if self.is_active() {
            tracing::warn!(
                fault_mode = %self.mode,
                delay_ms = self.delay_ms,
                "!!! FAULT INJECTION IS ON: this adapter sends deliberately wrong or late answers; \
                 test use only, never connect it to a real center !!!"
            );
        }
    }
}
