//! The kiosk control interface ([`schemas::kiosk_control`]): plain HTTP on loopback
//! through which a test, the conformance suite or the touch screen drives this kiosk
//! step by step, as a resident and the store's hardware would.
//!
//! [`Controller`] is the kiosk behind the screen: it owns the [`Kiosk`], the current
//! [`Session`] and the physical state (card in the reader, pages in the tray), decides
//! which step fits the screen, and runs each step through the same session code as
//! `kiosk-sim issue`. [`server`] puts it behind HTTP, one step at a time (a mutex: one
//! session per kiosk, as at a real machine).
//!
//! The card is returned at once (DESIGN.md §1): right after the PIN the kiosk opens a
//! card session with the center, and from then on the resident may take the card on
//! any screen of the visit; the visit's orders ride on the card session. While it has
//! orders left, `route` on a screen that ends an order (`take_card` after a print,
//! `take_certificate`, `refused`, `voided`) starts another order of the same visit.
//! When the card is already out, an order that ends without a certificate is left with
//! `cancel` (終了). A center that does not open a card session (other than by refusing
//! the card) leaves the kiosk as before: the card signs the order and is taken at the
//! end.

pub mod server;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use schemas::kiosk_control::{
    ChooseOrder, ChooseRoute, ControlInfo, ControlState, EnterPin, Pay, PlaceCard, PrintedRef,
    PrinterBehaviour, Screen, SetPrinter,
};
use schemas::outcome::PrintOutcome;
use schemas::{
    CertificateOrder, ErrorCode, IdempotencyKey, Menu, MunicipalityCode, MunicipalityDirectory,
    RefusalReason, RequestId, Route,
};

use crate::atomic_file;
use crate::card::CardError;
use crate::client::ClientError;
use crate::configuration::KioskSettings;
use crate::devices::{SimulatedPayment, SimulatedPrinter};
use crate::kiosk::{IssueOutcome, Kiosk, KioskError};
use crate::menu::answering_municipality;
use crate::outbox::OutcomeReport;
use crate::session::{fresh_idempotency_key, OrderAnswer, Session};

/// Documents kept for `GET /control/v1/documents/{request_id}`.
pub const MAX_KEPT_DOCUMENTS: usize = 100;

/// Why a step was not taken (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// 409 `control_step_not_allowed`.
    #[error("{step} is not allowed on screen {screen:?}")]
    NotAllowed { step: &'static str, screen: Screen },
    /// 400 `bad_request`.
    #[error("{0}")]
    BadRequest(String),
    /// 500 `internal`.
    #[error("{0}")]
    Internal(String),
    /// A read passed on to the center (menu, municipalities) failed: the center's own
    /// error body and status, or 503 `catalogue_unavailable` when it did not answer.
    #[error(transparent)]
    Center(ClientError),
}

/// Screens on which an order of the visit is under way: with a card session open the
/// card may be taken there and the visit goes on.
const MID_VISIT_SCREENS: [Screen; 4] = [
    Screen::Route,
    Screen::Menu,
    Screen::ConfirmFee,
    Screen::Paying,
];

/// Screens that end an order; with the card session open and orders left, `route`
/// starts the next order of the visit there.
const ORDER_ENDED_SCREENS: [Screen; 4] = [
    Screen::TakeCard,
    Screen::TakeCertificate,
    Screen::Refused,
    Screen::Voided,
];

/// A message on the screen, Japanese first with its English gloss.
#[derive(Clone, Debug)]
struct Message {
    ja: String,
    en: String,
}

fn message(ja: impl Into<String>, en: impl Into<String>) -> Option<Message> {
    Some(Message {
        ja: ja.into(),
        en: en.into(),
    })
}

/// Shown for anything that went wrong on the kiosk's or the center's side: never the
/// reason (that is for the operator's log).
fn unavailable() -> Option<Message> {
    message(
        "ただいまお取り扱いできません。店員にお知らせください。",
        "This service is unavailable right now. Please tell the staff.",
    )
}

fn route_prompt() -> Option<Message> {
    message(
        "住所地（お住まいの市区町村）か本籍地かを選んでください。",
        "Choose your place of residence or your place of domicile.",
    )
}

fn menu_prompt() -> Option<Message> {
    message(
        "証明書の種類と通数を選んでください。",
        "Choose the certificate and the number of copies.",
    )
}

/// The center did not accept the card itself: its certificate is revoked, expired or
/// not yet valid.
fn card_not_accepted(error: &KioskError) -> bool {
    matches!(
        error,
        KioskError::Center(center) if matches!(
            center.error_code(),
            Some(ErrorCode::CardRevoked | ErrorCode::CardExpired | ErrorCode::CardNotYetValid)
        )
    )
}

/// The kiosk behind the control interface.
pub struct Controller {
    settings: KioskSettings,
    state_dir: PathBuf,
    kiosk: Kiosk,
    session: Option<Session>,
    route: Option<Route>,
    screen: Screen,
    card_in_reader: bool,
    certificate_in_tray: bool,
    pin_attempts_left: Option<u8>,
    request_id: Option<RequestId>,
    municipality: Option<MunicipalityCode>,
    fee_yen: Option<u32>,
    change_yen: Option<u32>,
    message: Option<Message>,
    printed: VecDeque<PrintedRef>,
    next_printer: PrinterBehaviour,
    /// Power went out mid-job: only a restart helps. The job, for after the restart.
    power_lost: Option<PrintedRef>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("kiosk_id", self.kiosk.kiosk_id())
            .field("screen", &self.screen)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A kiosk from `settings`, keeping its outbox, the card in the reader and the
    /// printed documents under `state_dir`.
    pub fn new(mut settings: KioskSettings, state_dir: PathBuf) -> Result<Self, KioskError> {
        settings.state_dir = Some(state_dir.clone());
        let kiosk = Kiosk::from_settings(&settings)?;
        Ok(Self {
            settings,
            state_dir,
            kiosk,
            session: None,
            route: None,
            screen: Screen::Idle,
            card_in_reader: false,
            certificate_in_tray: false,
            pin_attempts_left: None,
            request_id: None,
            municipality: None,
            fee_yen: None,
            change_yen: None,
            message: None,
            printed: VecDeque::new(),
            next_printer: PrinterBehaviour::Ok,
            power_lost: None,
        })
    }

    fn reader_path(&self) -> PathBuf {
        self.state_dir.join("reader").join("card.json")
    }

    /// Where the printer's pages (PDFs) go.
    pub fn out_dir(&self) -> PathBuf {
        self.state_dir.join("printed")
    }

    pub fn info(&self) -> ControlInfo {
        ControlInfo {
            kiosk_id: self.kiosk.kiosk_id().clone(),
            software: format!("kiosk-sim {}", env!("CARGO_PKG_VERSION")),
            wire_version: schemas::WIRE_VERSION.to_owned(),
        }
    }

    pub fn state(&self) -> ControlState {
        ControlState {
            screen: self.screen,
            card_in_reader: self.card_in_reader,
            certificate_in_tray: self.certificate_in_tray,
            pin_attempts_left: self.pin_attempts_left,
            request_id: self.request_id,
            municipality: self.municipality,
            fee_yen: self.fee_yen,
            change_yen: self.change_yen,
            message_ja: self.message.as_ref().map(|m| m.ja.clone()),
            message_en: self.message.as_ref().map(|m| m.en.clone()),
            printed: self.printed.iter().cloned().collect(),
            outbox_pending: u32::try_from(self.kiosk.outbox().len()).unwrap_or(u32::MAX),
            card_session_open: self.card_session_open(),
        }
    }

    /// The visit's card session is open: the card may leave the reader.
    fn card_session_open(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.card_session().is_some())
    }

    /// The visit may go on with another order on its card session.
    fn may_order_again(&self) -> bool {
        self.power_lost.is_none()
            && self
                .session
                .as_ref()
                .and_then(|s| s.card_session())
                .is_some_and(|c| c.orders_left > 0)
    }

    /// `GET /menu`: the chosen municipality's menu for the chosen route, from the
    /// center (as the kiosk itself checks an order against it).
    pub async fn menu(&self) -> Result<Menu, StepError> {
        let (Some(route), Some(session)) = (&self.route, &self.session) else {
            return Err(StepError::NotAllowed {
                step: "menu",
                screen: self.screen,
            });
        };
        if self.power_lost.is_some() {
            return Err(StepError::NotAllowed {
                step: "menu",
                screen: self.screen,
            });
        }
        let municipality = answering_municipality(route, session.card_municipality());
        self.kiosk
            .center()
            .menu(municipality, route.kind())
            .await
            .map_err(StepError::Center)
    }

    /// `GET /municipalities`: every municipality the center serves (本籍地 picker).
    pub async fn municipalities(&self) -> Result<MunicipalityDirectory, StepError> {
        self.kiosk
            .center()
            .municipalities()
            .await
            .map_err(StepError::Center)
    }

    /// The PDF printed for `request_id`, while it is among the last
    /// [`MAX_KEPT_DOCUMENTS`].
    pub fn document(&self, request_id: &RequestId) -> Option<Vec<u8>> {
        if !self.printed.iter().any(|p| p.request_id == *request_id) {
            return None;
        }
        std::fs::read(self.out_dir().join(format!("{request_id}.pdf"))).ok()
    }

    fn allow(&self, step: &'static str, screens: &[Screen]) -> Result<(), StepError> {
        if self.power_lost.is_some() || !screens.contains(&self.screen) {
            return Err(StepError::NotAllowed {
                step,
                screen: self.screen,
            });
        }
        Ok(())
    }

    /// Forgets the session's details (a new resident, or after a restart).
    fn clear_session(&mut self) {
        self.session = None;
        self.route = None;
        self.pin_attempts_left = None;
        self.request_id = None;
        self.municipality = None;
        self.fee_yen = None;
        self.change_yen = None;
    }

    /// The session ended on a failure: the error screen (or locked), generic text.
    fn fail(&mut self, error: &KioskError) {
        tracing::warn!(code = error.code(), error = %error, "control: session failed");
        self.kiosk.end_failed(error);
        self.session = None;
        if let Some(request_id) = error.request_id() {
            self.request_id = Some(request_id);
        }
        if error.card_locked() {
            self.lock();
        } else if card_not_accepted(error) {
            // Nothing can be done for this card at any kiosk: as for a refusal, the
            // resident is sent to the municipal counter (the real service does the same).
            self.screen = Screen::Refused;
            self.message = message(
                RefusalReason::RESIDENT_MESSAGE_JA,
                RefusalReason::RESIDENT_MESSAGE_EN,
            );
        } else {
            self.screen = Screen::Error;
            self.message = unavailable();
        }
    }

    fn lock(&mut self) {
        self.session = None;
        self.pin_attempts_left = Some(0);
        self.screen = Screen::Locked;
        self.message = message(
            "暗証番号がロックされました。市区町村の窓口でお尋ねください。",
            "The PIN is locked. Please ask at the municipal counter.",
        );
    }

    /// `POST /card`.
    pub async fn place_card(&mut self, body: PlaceCard) -> Result<ControlState, StepError> {
        self.allow("card", &[Screen::Idle])?;
        let path = self.reader_path();
        let bytes = serde_json::to_vec_pretty(&body.card)
            .map_err(|e| StepError::Internal(format!("card file: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StepError::Internal(format!("{}: {e}", dir.display())))?;
        }
        atomic_file::replace(&path, &bytes)
            .map_err(|e| StepError::Internal(format!("{}: {e}", path.display())))?;
        let key = fresh_idempotency_key().map_err(|e| StepError::Internal(e.to_string()))?;
        self.clear_session();
        self.card_in_reader = true;
        match self.kiosk.begin_session(key, &path).await {
            Ok(session) => {
                self.pin_attempts_left = Some(session.pin_attempts_left());
                self.session = Some(session);
                self.screen = Screen::CardPlaced;
                self.message = message(
                    "暗証番号（数字4桁）を入力してください。",
                    "Enter your 4-digit PIN.",
                );
            }
            Err(error @ KioskError::Card(_)) => {
                tracing::warn!(error = %error, "control: card not readable");
                self.screen = Screen::Error;
                self.message = message("このカードは読み取れません。", "This card cannot be read.");
            }
            Err(error) => self.fail(&error),
        }
        Ok(self.state())
    }

    /// `POST /pin`: the card verifies the PIN; then the card session is opened, and
    /// the card may be taken.
    pub async fn enter_pin(&mut self, body: EnterPin) -> Result<ControlState, StepError> {
        self.allow("pin", &[Screen::CardPlaced])?;
        let Some(session) = self.session.as_mut() else {
            return Err(StepError::Internal("no session with the card".into()));
        };
        let result = self.kiosk.enter_pin(session, &body.pin);
        self.pin_attempts_left = Some(session.pin_attempts_left());
        match result {
            Ok(()) => match self.kiosk.open_card_session(session).await {
                Ok(_) => {
                    self.screen = Screen::Route;
                    self.message = message("カードをお取りください。", "Please take your card.");
                }
                // Nothing can be done for this card: refused as a signed order would be.
                Err(error) if card_not_accepted(&error) => self.fail(&error),
                Err(error @ KioskError::Center(_)) => {
                    // The center did not open one: the card stays and signs the order.
                    tracing::warn!(code = error.code(), error = %error, "control: no card session; the card signs the order");
                    self.screen = Screen::Route;
                    self.message = route_prompt();
                }
                Err(error) => self.fail(&error),
            },
            Err(KioskError::Card(CardError::BadPinFormat)) => {
                self.message = message("暗証番号は数字4桁です。", "The PIN is 4 digits.");
            }
            Err(KioskError::Card(CardError::WrongPin { attempts_left })) if attempts_left > 0 => {
                self.message = message(
                    format!("暗証番号が違います（あと{attempts_left}回）。"),
                    format!("Wrong PIN ({attempts_left} attempts left)."),
                );
            }
            Err(error) if error.card_locked() => self.lock(),
            Err(error) => self.fail(&error),
        }
        Ok(self.state())
    }

    /// `POST /route`: on the route screen; or, to start another order of the visit on
    /// its card session, on a screen that ended the last order.
    pub async fn choose_route(&mut self, body: ChooseRoute) -> Result<ControlState, StepError> {
        if ORDER_ENDED_SCREENS.contains(&self.screen) && self.may_order_again() {
            let Some(session) = self.session.as_mut() else {
                return Err(StepError::Internal("no session with the card".into()));
            };
            if let Err(error) = self.kiosk.next_order(session).await {
                self.fail(&error);
                return Ok(self.state());
            }
            tracing::info!(screen = ?self.screen, "control: another order in the same visit");
            self.request_id = None;
            self.municipality = None;
            self.fee_yen = None;
            self.change_yen = None;
        } else {
            self.allow("route", &[Screen::Route])?;
        }
        self.route = Some(body.route);
        self.screen = Screen::Menu;
        self.message = menu_prompt();
        Ok(self.state())
    }

    /// `POST /order`: the menu check, then the center (challenge, card signature,
    /// issuance request).
    pub async fn choose_order(&mut self, body: ChooseOrder) -> Result<ControlState, StepError> {
        self.allow("order", &[Screen::Menu])?;
        let key = body
            .idempotency_key
            .map(IdempotencyKey::parse)
            .transpose()
            .map_err(|e| StepError::BadRequest(format!("idempotency_key: {e}")))?;
        let Some(route) = self.route else {
            return Err(StepError::Internal("no route chosen".into()));
        };
        let Some(session) = self.session.as_mut() else {
            return Err(StepError::Internal("no session with the card".into()));
        };
        if let Some(key) = key {
            session
                .set_idempotency_key(key)
                .map_err(|e| StepError::Internal(e.to_string()))?;
        }
        let order = CertificateOrder {
            route,
            certificate: body.certificate,
            copies: body.copies,
        };
        match self.kiosk.check_menu(session, order).await {
            Ok(()) => {}
            // The kiosk's own refusal: the resident stays on the menu.
            Err(KioskError::NotOnMenu(refusal)) => {
                tracing::info!(code = refusal.code(), "control: not on the menu");
                self.message = message(
                    "選んだ証明書はただいま発行できません。",
                    "The chosen certificate cannot be issued now.",
                );
                return Ok(self.state());
            }
            Err(KioskError::InvalidOrder(reason)) => {
                tracing::info!(%reason, "control: invalid order");
                self.message = message(
                    "選んだ内容では発行できません。",
                    "This choice cannot be issued.",
                );
                return Ok(self.state());
            }
            Err(error) => {
                self.fail(&error);
                return Ok(self.state());
            }
        }
        match self.kiosk.place_order(session).await {
            Ok(OrderAnswer::Refused(outcome)) => {
                self.end_order();
                self.request_id = Some(outcome.request_id());
                self.screen = Screen::Refused;
                self.message = message(
                    RefusalReason::RESIDENT_MESSAGE_JA,
                    RefusalReason::RESIDENT_MESSAGE_EN,
                );
            }
            Ok(OrderAnswer::Prepared(prepared)) => {
                self.request_id = Some(prepared.request_id);
                self.municipality = Some(prepared.municipality_code);
                self.fee_yen = Some(prepared.total_fee_yen);
                self.screen = Screen::ConfirmFee;
                self.message = message(
                    format!(
                        "{} 手数料 {}円（{}通）。お支払いください。",
                        prepared.municipality_name, prepared.total_fee_yen, prepared.copies
                    ),
                    format!(
                        "Fee {} yen ({} copies). Please pay.",
                        prepared.total_fee_yen, prepared.copies
                    ),
                );
            }
            Err(error) => self.fail(&error),
        }
        Ok(self.state())
    }

    /// `POST /printer`: what the printer does with the next job.
    pub fn set_printer(&mut self, body: SetPrinter) -> Result<ControlState, StepError> {
        if self.power_lost.is_some() || self.screen == Screen::Printing {
            return Err(StepError::NotAllowed {
                step: "printer",
                screen: self.screen,
            });
        }
        self.next_printer = body.behaviour;
        Ok(self.state())
    }

    /// `POST /payment`: then, once the center acknowledged `paid`, the printer.
    pub async fn pay(&mut self, body: Pay) -> Result<ControlState, StepError> {
        self.allow("payment", &[Screen::ConfirmFee, Screen::Paying])?;
        let Some(fee_yen) = self.fee_yen else {
            return Err(StepError::Internal("no fee shown".into()));
        };
        let payment = match body {
            Pay::Coins { inserted_yen } if inserted_yen < fee_yen => {
                // Not enough: the money comes back, the kiosk keeps waiting.
                self.screen = Screen::Paying;
                self.change_yen = Some(inserted_yen);
                self.message = message(
                    format!("{fee_yen}円に足りません。お金をお返しします。"),
                    format!("Less than {fee_yen} yen; your money is returned."),
                );
                return Ok(self.state());
            }
            Pay::Coins { inserted_yen } => SimulatedPayment::Coins { inserted_yen },
            Pay::Emoney => SimulatedPayment::Emoney,
            Pay::Cancel => SimulatedPayment::Cancels,
            Pay::WalkAway => SimulatedPayment::TimesOut,
        };
        let out_dir = self.out_dir();
        let Some(session) = self.session.as_mut() else {
            return Err(StepError::Internal("no session with the card".into()));
        };
        self.change_yen = None;
        match self.kiosk.pay(session, payment).await {
            Ok(None) => {}
            Ok(Some(outcome)) => {
                self.end_without_certificate(&outcome);
                return Ok(self.state());
            }
            Err(error) => {
                self.fail(&error);
                return Ok(self.state());
            }
        }
        if matches!(payment, SimulatedPayment::Coins { .. }) {
            self.change_yen = Some(payment.change_yen(fee_yen));
        }
        let printer = match std::mem::replace(&mut self.next_printer, PrinterBehaviour::Ok) {
            PrinterBehaviour::Ok => SimulatedPrinter::Prints,
            PrinterBehaviour::Jam => SimulatedPrinter::JamsBeforeFirstPage,
            PrinterBehaviour::PowerLoss => SimulatedPrinter::LosesPower,
        };
        let (job_pages, job_copies) = session.prepared_pages_and_copies().unwrap_or((0, 0));
        let result = self
            .kiosk
            .print_paid(session, printer, &out_dir, true)
            .await;
        self.end_order();
        match result {
            Ok(IssueOutcome::Printed(printed)) => {
                // Under the skip-void fault a jam is "printed" with nothing in the tray.
                if printed.pdf_path.exists() {
                    self.certificate_in_tray = true;
                    self.keep_document(PrintedRef {
                        request_id: printed.request_id,
                        pages: printed.page_count,
                        copies: printed.copies,
                    });
                }
                if self.card_in_reader {
                    self.screen = Screen::TakeCard;
                    self.message = message(
                        "カードと証明書をお取りください。",
                        "Please take your card and your certificate.",
                    );
                } else {
                    // The card went back after the PIN: no card reminder.
                    self.after_session_screen();
                }
            }
            Ok(IssueOutcome::PrintUnknown {
                request_id,
                pdf_path,
                ..
            }) => {
                // Only a restart helps now, and it loses the visit.
                self.session = None;
                self.screen = Screen::Printing;
                self.certificate_in_tray = pdf_path.exists();
                self.power_lost = Some(PrintedRef {
                    request_id,
                    pages: job_pages,
                    copies: job_copies,
                });
                self.message = message("電源が切れました。", "The power went out.");
            }
            Ok(outcome) => self.end_without_certificate(&outcome),
            Err(error) => self.fail(&error),
        }
        Ok(self.state())
    }

    /// An order ended: without a card session, so did the session; with one, the
    /// visit goes on (another order, or taking what is left).
    fn end_order(&mut self) {
        if !self.card_session_open() {
            self.session = None;
        }
    }

    /// Voided or refunded: no certificate, no fee kept.
    fn end_without_certificate(&mut self, outcome: &IssueOutcome) {
        self.end_order();
        self.screen = Screen::Voided;
        self.message = match outcome {
            IssueOutcome::Refunded { refund_yen, .. } => message(
                format!("発行できませんでした。{refund_yen}円をお返しします。"),
                format!("The certificate could not be issued; {refund_yen} yen is returned."),
            ),
            _ => message(
                "取引を中止しました。料金はいただいていません。",
                "Cancelled; no fee was taken.",
            ),
        };
    }

    /// Remembers a printed document, forgetting (and deleting) the oldest beyond
    /// [`MAX_KEPT_DOCUMENTS`].
    fn keep_document(&mut self, printed: PrintedRef) {
        self.printed.retain(|p| p.request_id != printed.request_id);
        self.printed.push_back(printed);
        while self.printed.len() > MAX_KEPT_DOCUMENTS {
            if let Some(old) = self.printed.pop_front() {
                let path = self.out_dir().join(format!("{}.pdf", old.request_id));
                if let Err(error) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), %error, "cannot remove an old document");
                }
            }
        }
    }

    /// The screen once a session is over: the card first, then the pages.
    fn after_session_screen(&mut self) {
        if self.card_in_reader {
            self.screen = Screen::TakeCard;
            self.message = message("カードをお取りください。", "Please take your card.");
        } else if self.certificate_in_tray {
            self.screen = Screen::TakeCertificate;
            self.message = message("証明書をお取りください。", "Please take your certificate.");
        } else {
            self.clear_session();
            self.screen = Screen::Idle;
            self.message = None;
        }
    }

    /// `POST /cancel`: 取消 pressed before the order went to the center (PIN pad, route,
    /// menu). Nothing was sent, so nothing is reported; the session (the visit) ends
    /// and the card is handed back, if it is still in. On the fee screen the order is
    /// out: `payment` `cancel` voids it. With the card already out, `cancel` also
    /// leaves an order that ended without a certificate (終了): refused, voided, error.
    pub fn cancel(&mut self) -> Result<ControlState, StepError> {
        let ended = [Screen::Refused, Screen::Voided, Screen::Error];
        if !self.card_in_reader && ended.contains(&self.screen) {
            self.allow("cancel", &ended)?;
            tracing::info!(screen = ?self.screen, "control: visit ended without the card");
            self.session = None;
            self.after_session_screen();
            return Ok(self.state());
        }
        self.allow("cancel", &[Screen::CardPlaced, Screen::Route, Screen::Menu])?;
        tracing::info!(screen = ?self.screen, "control: cancelled before the order");
        self.session = None;
        if self.card_in_reader {
            self.screen = Screen::TakeCard;
            self.message = message("カードをお取りください。", "Please take your card.");
        } else {
            self.after_session_screen();
        }
        Ok(self.state())
    }

    /// `POST /take-card`: at the end of the visit; or, once the card session is open,
    /// on any screen of the visit (the visit goes on without the card).
    pub fn take_card(&mut self) -> Result<ControlState, StepError> {
        if self.card_session_open() && MID_VISIT_SCREENS.contains(&self.screen) {
            self.allow("take-card", &MID_VISIT_SCREENS)?;
            if !self.card_in_reader {
                return Err(StepError::NotAllowed {
                    step: "take-card",
                    screen: self.screen,
                });
            }
            self.remove_card();
            match self.screen {
                Screen::Route => self.message = route_prompt(),
                Screen::Menu => self.message = menu_prompt(),
                // The fee (or the payment prompt) stays on screen.
                _ => {}
            }
            return Ok(self.state());
        }
        self.allow(
            "take-card",
            &[
                Screen::TakeCard,
                Screen::Refused,
                Screen::Locked,
                Screen::Voided,
                Screen::Error,
            ],
        )?;
        if !self.card_in_reader {
            return Err(StepError::NotAllowed {
                step: "take-card",
                screen: self.screen,
            });
        }
        self.remove_card();
        if !self.card_session_open() {
            self.session = None;
        }
        self.after_session_screen();
        Ok(self.state())
    }

    /// The card leaves the reader.
    fn remove_card(&mut self) {
        let path = self.reader_path();
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), %error, "cannot remove the card file");
        }
        self.card_in_reader = false;
        self.pin_attempts_left = None;
    }

    /// `POST /take-certificate`.
    pub fn take_certificate(&mut self) -> Result<ControlState, StepError> {
        self.allow("take-certificate", &[Screen::TakeCertificate])?;
        self.certificate_in_tray = false;
        self.after_session_screen();
        Ok(self.state())
    }

    /// `POST /restart`: a power cycle. The session in memory is lost; the outbox on
    /// disk is kept and re-sent, and a job cut by a power loss is resolved with what
    /// the printer says now (pages in the tray: `ok`; none: `failed`).
    pub async fn restart(&mut self) -> Result<ControlState, StepError> {
        let kiosk = Kiosk::from_settings(&self.settings)
            .map_err(|e| StepError::Internal(format!("kiosk restart: {e}")))?;
        self.kiosk = kiosk;
        self.clear_session();
        let interrupted: Vec<RequestId> = self
            .kiosk
            .outbox()
            .entries()
            .iter()
            .filter(|e| {
                matches!(&e.report, OutcomeReport::Print(r) if r.outcome == PrintOutcome::Unknown)
            })
            .map(|e| e.request_id)
            .collect();
        match self.kiosk.flush_outbox().await {
            Ok(summary) => {
                tracing::info!(
                    pending = summary.pending,
                    "control: outbox re-sent after the restart"
                );
            }
            Err(error) => tracing::warn!(%error, "control: outbox not re-sent after the restart"),
        }
        let power_lost = self.power_lost.take();
        let mut resolved: Vec<RequestId> = interrupted;
        if let Some(job) = &power_lost {
            if !resolved.contains(&job.request_id) {
                resolved.push(job.request_id);
            }
        }
        for request_id in resolved {
            let came_out = self.out_dir().join(format!("{request_id}.pdf")).exists();
            let outcome = if came_out {
                PrintOutcome::Ok
            } else {
                PrintOutcome::Failed
            };
            match self.kiosk.resolve_print(request_id, outcome).await {
                Ok(ack) => {
                    tracing::info!(%request_id, ?outcome, acknowledged = ack.is_some(), "control: print resolved after the restart")
                }
                Err(error) => tracing::warn!(%request_id, %error, "control: print not resolved"),
            }
            if came_out {
                if let Some(job) = power_lost.as_ref().filter(|j| j.request_id == request_id) {
                    let pages = self.document_pages(&request_id).unwrap_or(job.pages);
                    self.keep_document(PrintedRef {
                        request_id,
                        pages,
                        copies: job.copies,
                    });
                }
            }
        }
        self.after_session_screen();
        if self.screen == Screen::Idle {
            self.message = message("再起動しました。", "Restarted.");
        }
        Ok(self.state())
    }

    /// Pages of a printed PDF (after a power loss the kiosk counts what came out).
    fn document_pages(&self, request_id: &RequestId) -> Option<u32> {
        let bytes = std::fs::read(self.out_dir().join(format!("{request_id}.pdf"))).ok()?;
        let document = lopdf::Document::load_mem(&bytes).ok()?;
        u32::try_from(document.get_pages().len()).ok()
    }
}

/// `kiosk-sim control serve`.
#[derive(clap::Args, Debug)]
pub struct ControlServeArgs {
    /// The kiosk settings (TOML), as for `kiosk-sim issue`.
    #[arg(long)]
    pub config: PathBuf,
    /// Loopback address to listen on, e.g. 127.0.0.1:7070 (plain HTTP: loopback only).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where the outbox, the card in the reader and the printed PDFs live (default:
    /// the settings' state directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Serves the control interface until Ctrl-C.
pub async fn run_control_serve(args: ControlServeArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "the control interface is plain HTTP without authentication: listen on loopback, not {}",
            args.listen
        );
    }
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| settings.effective_state_dir());
    let controller = Controller::new(settings, state_dir).context("setting up the kiosk")?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let server = server::start(controller, listener).context("starting the control server")?;
    println!(
        "kiosk control interface on http://{}{}",
        server.local_addr,
        schemas::kiosk_control::CONTROL_BASE_PATH
    );
    let handle = server.server.handle();
    tokio::select! {
        result = server.server => result.context("control server")?,
        _ = crate::shutdown::stop_requested() => handle.stop(true).await,
    }
    Ok(())
}
