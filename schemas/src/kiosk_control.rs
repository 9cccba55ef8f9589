//! The kiosk control interface: how a conformance suite (or a test, or the kiosk's own
//! touch screen) drives a kiosk implementation step by step, as a resident and the
//! store's hardware would (DESIGN.md §7).
//!
//! Plain HTTP on loopback, JSON bodies, base path `/control/v1`. Every call answers the
//! kiosk's whole [`ControlState`] (200), or an [`crate::ErrorBody`] with 409
//! `control_step_not_allowed` when the step does not fit the current screen and 400 for
//! a malformed body. Steps never block on the resident: a step that makes the kiosk talk
//! to the center answers when that exchange is over (bounded by the kiosk's own
//! timeouts), with the screen it led to.
//!
//! ```text
//! GET    /control/v1/state                     -> ControlState
//! POST   /control/v1/card        PlaceCard     -> ControlState   (card into the reader)
//! POST   /control/v1/pin         EnterPin      -> ControlState   (PIN pad; verifies on the card)
//! POST   /control/v1/route       ChooseRoute   -> ControlState   (住所地 / 本籍地)
//! POST   /control/v1/order       ChooseOrder   -> ControlState   (type, options, copies: asks the center)
//! POST   /control/v1/payment     Pay           -> ControlState   (coins / e-money / cancel / walk away)
//! POST   /control/v1/printer     SetPrinter    -> ControlState   (what the printer does with the next job)
//! POST   /control/v1/cancel                    -> ControlState   (取消 before the order is sent:
//!                                                                 the card comes back; on the fee
//!                                                                 screen use payment `cancel`;
//!                                                                 終了 on refused / voided / error
//!                                                                 when the card is already out)
//! POST   /control/v1/take-card                 -> ControlState   (the resident takes the card)
//! POST   /control/v1/take-certificate          -> ControlState   (the resident takes the pages)
//! POST   /control/v1/restart                   -> ControlState   (power cycle: the session in memory is lost,
//!                                                                 the outbox is kept and re-sent)
//! GET    /control/v1/documents/{request_id}    -> application/pdf (what was printed, for checking)
//! GET    /control/v1/info                      -> ControlInfo
//! GET    /control/v1/menu                      -> crate::Menu   (the chosen municipality's menu for the
//!                                                                chosen route; 409 before a route is chosen)
//! GET    /control/v1/municipalities            -> crate::MunicipalityDirectory (本籍地 picker)
//! ```
//!
//! The card is returned at once (DESIGN.md §1): once the PIN is verified the kiosk
//! opens a card session with the center (`POST /v1/card-sessions`) and says so
//! (`card_session_open`); from then on `take-card` is allowed on every screen of the
//! visit, and the orders ride on the card session. A kiosk that keeps the card until
//! the end (or whose card session could not be opened) still ends with `take_card`.
//! While the card session has orders left, `route` is allowed again once an order has
//! ended (`take_card`, `take_certificate`, `refused`, `voided`): another certificate in
//! the same visit, without the card. `GET /menu` and `GET /municipalities` pass the
//! center's error on (503 `catalogue_unavailable` when it does not answer).
//!
//! The screens follow the resident's path (issue 7's touch panel shows the same ones):
//! `idle → card_placed (PIN pad) → route → menu → confirm_fee → paying → printing →
//! take_card → take_certificate → idle`, with `refused` (the generic "please ask at the
//! municipal counter" message), `locked`, `voided` and `error` as ends that lead back to
//! `take_card`.

use crate::card::CardFile;
use crate::certificate::{CertificateKind, Route};
use crate::ids::{KioskId, MunicipalityCode, RequestId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Base path of the interface.
pub const CONTROL_BASE_PATH: &str = "/control/v1";

/// What the kiosk shows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    /// Start screen (行政サービス); no card.
    Idle,
    /// Card read; the PIN pad is shown.
    CardPlaced,
    /// PIN verified; 住所地 or 本籍地.
    Route,
    /// The municipality's menu: type, options, copies.
    Menu,
    /// The center prepared the document; the fee is shown for confirmation.
    ConfirmFee,
    /// Waiting for coins or e-money.
    Paying,
    /// Pages are coming out.
    Printing,
    /// 取り忘れ reminder: the card is still in the reader.
    TakeCard,
    /// 取り忘れ reminder: pages are in the tray.
    TakeCertificate,
    /// Declined: the generic message only, never the reason.
    Refused,
    /// Three wrong PINs: the card is locked.
    Locked,
    /// Ended without a certificate and without keeping a fee.
    Voided,
    /// Something failed (center unreachable, document failed its check).
    Error,
}

/// `POST /control/v1/card`: the simulated card placed in the reader.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCard {
    pub card: CardFile,
}

/// `POST /control/v1/pin`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnterPin {
    pub pin: String,
}

/// `POST /control/v1/route`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseRoute {
    pub route: Route,
}

/// `POST /control/v1/order`: what the resident picked on the menu. The kiosk asks the
/// center; the answer is `confirm_fee` (prepared) or `refused`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseOrder {
    pub certificate: CertificateKind,
    pub copies: u8,
    /// Optional: the idempotency key to send (a suite provokes replays and conflicts
    /// with it); absent, the kiosk makes a fresh one per session as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `POST /control/v1/payment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pay {
    /// Coins and notes; change is given back.
    Coins { inserted_yen: u32 },
    /// E-money for exactly the fee.
    Emoney,
    /// 取消 pressed.
    Cancel,
    /// The resident walks away: the kiosk's payment time runs out.
    WalkAway,
}

/// `POST /control/v1/printer`: what the printer does with the next job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrinterBehaviour {
    Ok,
    /// Jam before the first page: nothing usable (reported `failed`).
    Jam,
    /// Power lost mid-job (reported `unknown`, resolved after the restart).
    PowerLoss,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPrinter {
    pub behaviour: PrinterBehaviour,
}

/// A document the kiosk printed (its PDF at `/control/v1/documents/{request_id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintedRef {
    pub request_id: RequestId,
    pub pages: u32,
    pub copies: u8,
}

/// The kiosk's whole visible and physical state, answered by every call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlState {
    pub screen: Screen,
    pub card_in_reader: bool,
    pub certificate_in_tray: bool,
    /// Wrong PINs left on the card in the reader.
    pub pin_attempts_left: Option<u8>,
    /// The current session's request id, once the center gave one.
    pub request_id: Option<RequestId>,
    /// The municipality and fee once prepared.
    pub municipality: Option<MunicipalityCode>,
    pub fee_yen: Option<u32>,
    /// Change given back for the last coin payment.
    pub change_yen: Option<u32>,
    /// The message on screen (Japanese first; the generic one for any refusal).
    pub message_ja: Option<String>,
    pub message_en: Option<String>,
    /// Documents printed since the kiosk started (bounded: the last 100).
    pub printed: Vec<PrintedRef>,
    /// Outcome reports not yet acknowledged by the center.
    pub outbox_pending: u32,
    /// The card authenticated (PIN, card session opened): the card may be taken now
    /// and the visit goes on without it.
    #[serde(default)]
    pub card_session_open: bool,
}

/// `GET /control/v1/info`: who is being driven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlInfo {
    pub kiosk_id: KioskId,
    /// The implementation and its version, e.g. "kiosk-sim 0.1.0".
    pub software: String,
    /// The wire contract it speaks ([`crate::WIRE_VERSION`]).
    pub wire_version: String,
}
