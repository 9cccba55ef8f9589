//! What happens after `prepared`: the resident pays, the kiosk prints, and the kiosk
//! reports both to the center, which moves the issuance along
//! `prepared → paid → printed` (or to `voided`, with a refund record when money was
//! taken).
//!
//! ```text
//! POST /v1/issuances/{request_id}/payment   PaymentReport -> OutcomeAck | ErrorBody
//! POST /v1/issuances/{request_id}/print     PrintReport   -> OutcomeAck | ErrorBody
//! ```
//!
//! Rules of the protocol (the kiosk's half of "no fee without a certificate, no
//! certificate without a recorded fee"):
//! - The kiosk prints only after the center acknowledged `paid`. When the payment
//!   report gets no answer, the kiosk returns the money to the resident at once and
//!   queues a `cancelled` report; a `cancelled` report for an issuance the center had
//!   recorded as paid voids it with a refund record (the resident got the money back).
//! - Every report the kiosk could not deliver is kept in its persistent outbox and
//!   re-sent (with `repeat = true` after a restart) until acknowledged.
//! - Reports are idempotent: the same report again gets the same acknowledgement. A
//!   report contradicting what the center recorded is `outcome_conflict`; a report out
//!   of order (print before payment) is `illegal_transition`.
//! - `unknown` print outcome leaves the issuance `paid` with the outcome unknown; a
//!   later `ok` / `failed` re-send resolves it; at the settlement cut-off it becomes
//!   `recon_required`.
//! - A `prepared` issuance not paid within the center's payment timeout is voided
//!   (`payment_timeout`); a payment reported after that is `outcome_conflict`, so the
//!   kiosk refunds and never prints.

use crate::ids::{KioskId, RequestId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the resident's payment ended at the kiosk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// The full fee was taken.
    Paid,
    /// The resident cancelled, or the kiosk gave the money back (e.g. the payment
    /// report got no answer).
    Cancelled,
    /// The resident did not pay within the kiosk's payment time.
    TimedOut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Cash,
    EMoney,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentReport {
    pub kiosk_id: KioskId,
    pub outcome: PaymentOutcome,
    /// Integer yen taken: the prepared `total_fee_yen` when `paid`, 0 otherwise.
    pub amount_yen: u32,
    pub method: PaymentMethod,
    /// Re-sent from the kiosk's outbox after a restart.
    #[serde(default)]
    pub repeat: bool,
}

/// How printing ended, as the printer told the kiosk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrintOutcome {
    /// Every page came out.
    Ok,
    /// Nothing usable came out (jam before the first page, out of paper...): refund.
    Failed,
    /// The kiosk cannot tell (power loss mid-job): resolved later or at cut-off.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintReport {
    pub kiosk_id: KioskId,
    pub outcome: PrintOutcome,
    #[serde(default)]
    pub repeat: bool,
}

/// An issuance's state at the center (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuanceStatus {
    Authorized,
    Prepared,
    Paid,
    Printed,
    Settled,
    Refused,
    Voided,
    Expired,
    ReconRequired,
}

/// The center's acknowledgement of a report: where the issuance stands now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeAck {
    pub request_id: RequestId,
    pub status: IssuanceStatus,
    /// Integer yen paid and recorded (0 before payment).
    pub paid_yen: u32,
    /// Integer yen to be refunded to the resident by this voiding (0 if none).
    pub refund_yen: u32,
    /// The last print outcome recorded, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_outcome: Option<PrintOutcome>,
}
