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
//! The conformance suite's negative controls (each breaks one scenario of
//! `kiosk-sim conformance --profile municipality`):
//!
//! | mode | the adapter … |
//! | --- | --- |
//! | `swap_residents_under_load` | while another fetch is in flight, answers with that fetch's resident (front and seals), correctly signed and echoing this request (the 2023–24 incident) |
//! | `non_idempotent_refetch` | never consults its answer store: a re-fetch is rebuilt, and a different fetch under a used request id is answered |
//! | `ignore_deadline` | answers fetches whose deadline has passed |
//! | `notice_not_idempotent` | acknowledges a repeated outcome notice as a new record |
//! | `fee_mismatch` | states a fee 10 yen above its catalogue's in every issued answer |
//! | `generic_refusal` | refuses with `card_not_registered` whatever the reason |
//! | `substitute_unprintable` | replaces characters outside the BMP in names with 〓 (front and seals) |
//! | `wrong_content_type` | sends certificate answers as `text/plain` |
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
    SwapResidentsUnderLoad,
    NonIdempotentRefetch,
    IgnoreDeadline,
    NoticeNotIdempotent,
    FeeMismatch,
    GenericRefusal,
    SubstituteUnprintable,
    WrongContentType,
}

impl FaultMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::WrongRequestId => "wrong_request_id",
            Self::WrongCardDigest => "wrong_card_digest",
            Self::ForeignFront => "foreign_front",
            Self::BadSignature => "bad_signature",
            Self::SwapResidentsUnderLoad => "swap_residents_under_load",
            Self::NonIdempotentRefetch => "non_idempotent_refetch",
            Self::IgnoreDeadline => "ignore_deadline",
            Self::NoticeNotIdempotent => "notice_not_idempotent",
            Self::FeeMismatch => "fee_mismatch",
            Self::GenericRefusal => "generic_refusal",
            Self::SubstituteUnprintable => "substitute_unprintable",
            Self::WrongContentType => "wrong_content_type",
        }
    }

    /// Every mode but `none`, for the CLI's list and the conformance suite.
    pub const ALL_FAULTS: [Self; 12] = [
        Self::WrongRequestId,
        Self::WrongCardDigest,
        Self::ForeignFront,
        Self::BadSignature,
        Self::SwapResidentsUnderLoad,
        Self::NonIdempotentRefetch,
        Self::IgnoreDeadline,
        Self::NoticeNotIdempotent,
        Self::FeeMismatch,
        Self::GenericRefusal,
        Self::SubstituteUnprintable,
        Self::WrongContentType,
    ];

    /// The mode named `name` (`none` included).
    pub fn parse(name: &str) -> Option<Self> {
        if name == "none" {
            return Some(Self::None);
        }
        Self::ALL_FAULTS.into_iter().find(|m| m.as_str() == name)
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
