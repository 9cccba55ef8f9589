//! Reference kiosk (マルチコピー機) for the コンビニ交付 switch, with a simulated resident
//! card.
//!
//! One resident session, as [`kiosk::Kiosk::issue`] runs it:
//!
//! 1. the card is placed ([`card::SimCard::open`]) and the order is checked locally:
//!    its shape, and against the center's menu ([`menu::check_order`]): offered,
//!    available now, options offered, copies within the maximum — refused at the
//!    kiosk otherwise, before the PIN;
//! 2. the resident enters the PIN, which the *card* verifies (3 wrong PINs lock it, and
//!    the counter lives in the card file so a locked card stays locked);
//! 3. only then does the kiosk ask the center for a single-use challenge, and the card
//!    signs `{nonce, order digest}` ([`schemas::CardAuthMessage`]);
//! 4. the kiosk sends the issuance request over mTLS ([`client::CenterClient`]); when no
//!    answer comes back it orders once more under the same idempotency key, with a
//!    fresh challenge signed by the card still in the reader, so the center replays;
//! 5. before anything is printed, [`pdf_check::check_document`] proves the document is
//!    the one the center composed for *this* request: digest, page count and the
//!    request id on every page. A document that fails is never written;
//! 6. the resident confirms the fee and pays ([`devices::SimulatedPayment`]); the
//!    payment report goes to the center through the persistent [`outbox::Outbox`],
//!    and only after the center acknowledged `paid` does the printer run
//!    ([`devices::SimulatedPrinter`]); the print outcome (`ok`, `failed`, `unknown`)
//!    is reported the same way. Undelivered reports stay in the outbox and are re-sent
//!    with `repeat = true` ([`kiosk::Kiosk::flush_outbox`]).
//!
//! [`kiosk::Kiosk::issue`] runs these steps in one call; [`session`] holds them as
//! separate steps sharing the same code, which the control interface ([`control`],
//! `kiosk-sim control serve`) drives one HTTP call at a time.
//!
//! The binary (`src/main.rs`) wires [`cli::run_issue`], [`cli::run_menu`],
//! [`cli::run_register_domicile`], [`cli::run_outbox_show`] and
//! [`cli::run_outbox_flush`] in, and runs the demo (`src/demo.rs`).

mod atomic_file;
pub mod card;
pub mod cli;
pub mod client;
pub mod configuration;
pub mod control;
pub mod devices;
pub mod kiosk;
pub mod load_check;
pub mod menu;
pub mod outbox;
pub mod pdf_check;
pub mod session;
pub mod shutdown;

pub use card::{CardError, PinSession, SimCard};
pub use client::{CenterApi, CenterClient, ClientError};
pub use configuration::{ConfigError, FaultMode, FaultSettings, KioskSettings};
pub use devices::{SimulatedPayment, SimulatedPrinter};
pub use kiosk::{
    FlushSummary, IssueOutcome, Kiosk, KioskError, KioskState, PrintedDocument, RefundCause,
};
pub use menu::{check_order, MenuRefusal};
pub use outbox::{Outbox, OutboxEntry, OutboxError, OutcomeReport, MAX_OUTBOX_ENTRIES};
pub use pdf_check::{check_document, DocumentCheckError};
pub use session::{OpenCardSession, OrderAnswer, PreparedOrder, Session};
