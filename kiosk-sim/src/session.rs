//! One resident session, step by step: the card is placed, the PIN entered, the order
//! checked against the menu and sent, the fee paid, the document printed.
//!
//! A [`Session`] owns what lives between the steps (the card in the reader, the PIN
//! the resident entered, the order, the center's prepared document); the steps are
//! methods of [`Kiosk`], which owns the center link, the outbox and the state machine.
//! [`Kiosk::issue_with_key`] runs every step in one call (the CLI, the demo, the tests);
//! the control interface ([`crate::control`]) runs them one HTTP call at a time, as a
//! resident and the store's hardware would. Both go through the same code: the PIN on
//! the card, the card signature, the retry rule, the document check, the
//! print-only-after-paid rule, the refund, the outbox.
//!
//! The card is returned at once (DESIGN.md §1): on the control path, right after the
//! PIN, [`Kiosk::open_card_session`] has the card sign a card-session opening, and the
//! visit's orders then ride on that card session ([`CardProof::Session`]) without the
//! card; [`Kiosk::next_order`] starts another order of the same visit. The one-call
//! session ([`Kiosk::issue_with_key`]) keeps the card in the reader and has it sign the
//! order itself ([`CardProof::Signed`]).
//!
//! The order of the steps is checked here, not trusted from the caller: a step out of
//! order is a [`KioskError::Internal`] and changes nothing.

use std::path::Path;

use tracing::Instrument as _;

use schemas::outcome::PrintOutcome;
use schemas::{
    card_session_digest, order_digest, CardProof, CardSessionId, CardSessionRef,
    CardSessionRequest, CertificateOrder, DocumentPdf, IdempotencyKey, IssuanceRequest,
    IssuanceResponse, MunicipalityCode, RefusalReason, RequestId, SignedByCard,
};

use crate::card::{CardError, PinSession, SimCard};
use crate::client::CenterApi;
use crate::configuration::FaultMode;
use crate::devices::{SimulatedPayment, SimulatedPrinter};
use crate::kiosk::{IssueOutcome, Kiosk, KioskError, KioskState, PrintedDocument, RefundCause};
use crate::menu::{answering_municipality, check_order};
use crate::pdf_check::check_document;

/// The PIN as entered, kept only while the card is in the reader. The simulated card
/// keeps no "PIN verified" status between calls (a real IC card does, until it leaves
/// the reader), so the kiosk presents it again when the card signs. Never logged;
/// overwritten when dropped.
struct EnteredPin(String);

impl Drop for EnteredPin {
    fn drop(&mut self) {
        // Best effort in a simulator: overwrite the digits before the memory is freed.
        let len = self.0.len();
        self.0.clear();
        self.0.extend(std::iter::repeat_n('0', len));
    }
}

/// The order as the menu accepted it.
#[derive(Debug)]
struct CheckedOrder {
    order: CertificateOrder,
    expected_municipality: MunicipalityCode,
    shown_fee_yen_per_copy: u32,
}

/// The center's answer that passed every check, waiting for the fee.
#[derive(Debug)]
struct Prepared {
    request_id: RequestId,
    municipality_code: MunicipalityCode,
    municipality_name: String,
    certificate_title: String,
    copies: u8,
    fee_yen_per_copy: u32,
    total_fee_yen: u32,
    document: DocumentPdf,
}

/// What the screen shows once the center prepared the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedOrder {
    pub request_id: RequestId,
    pub municipality_code: MunicipalityCode,
    pub municipality_name: String,
    pub copies: u8,
    pub total_fee_yen: u32,
    pub page_count: u32,
}

/// The center's answer to an order.
#[derive(Clone, Debug)]
pub enum OrderAnswer {
    /// Declined: the session is over ([`IssueOutcome::Refused`], generic message only).
    Refused(IssueOutcome),
    /// The fee is shown for confirmation.
    Prepared(PreparedOrder),
}

/// The card session the center opened for this visit (`POST /v1/card-sessions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCardSession {
    pub card_session_id: CardSessionId,
    /// The residence municipality in the card certificate (住所地).
    pub card_municipality: MunicipalityCode,
    /// Center clock.
    pub expires_at_unix_s: i64,
    /// Orders the session may still carry, as far as this kiosk knows (the center
    /// decides; a replay under the same idempotency key does not use one up there).
    pub orders_left: u8,
}

/// One resident's session at the kiosk (see the module docs).
pub struct Session {
    /// The visit's own key, made when the card was placed: the idempotency key of the
    /// card session's opening (and, unless chosen otherwise, of the first order).
    visit_key: IdempotencyKey,
    idempotency_key: IdempotencyKey,
    /// Once opened, the orders ride on it and the card is no longer needed.
    card_session: Option<OpenCardSession>,
    card: SimCard,
    pin: Option<EnteredPin>,
    order: Option<CheckedOrder>,
    prepared: Option<Prepared>,
    paid: bool,
}

impl Session {
    /// Pages and copies of the prepared document, once the center prepared it (what a
    /// job interrupted by a power loss is remembered as).
    pub(crate) fn prepared_pages_and_copies(&self) -> Option<(u32, u8)> {
        self.prepared
            .as_ref()
            .map(|p| (p.document.page_count, p.copies))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("visit_key", &self.visit_key)
            .field("idempotency_key", &self.idempotency_key)
            .field("card_session", &self.card_session)
            .field("card", &self.card)
            .field("pin_entered", &self.pin.is_some())
            .field("order", &self.order)
            .field("request_id", &self.request_id())
            .field("paid", &self.paid)
            .finish()
    }
}

impl Session {
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.idempotency_key
    }

    /// Chooses the idempotency key before the order is sent (a conformance suite
    /// provokes replays with it). Refused once the order went out.
    pub fn set_idempotency_key(&mut self, key: IdempotencyKey) -> Result<(), KioskError> {
        if self.prepared.is_some() {
            return Err(KioskError::Internal(
                "the idempotency key cannot change after the order was sent".into(),
            ));
        }
        self.idempotency_key = key;
        Ok(())
    }

    /// Wrong PINs left on the card in the reader.
    pub fn pin_attempts_left(&self) -> u8 {
        self.card.attempts_left()
    }

    pub fn card_municipality(&self) -> MunicipalityCode {
        self.card.municipality_code()
    }

    /// The card approved the visit's orders: by a PIN still held for signing, or by
    /// the card session it opened.
    pub fn pin_verified(&self) -> bool {
        self.pin.is_some() || self.card_session.is_some()
    }

    /// The card session of this visit, once the center opened one.
    pub fn card_session(&self) -> Option<&OpenCardSession> {
        self.card_session.as_ref()
    }

    /// The visit's key (see [`Kiosk::open_card_session`]).
    pub fn visit_key(&self) -> &IdempotencyKey {
        &self.visit_key
    }

    /// The center's request id, once it prepared the document.
    pub fn request_id(&self) -> Option<RequestId> {
        self.prepared.as_ref().map(|p| p.request_id)
    }

    pub fn total_fee_yen(&self) -> Option<u32> {
        self.prepared.as_ref().map(|p| p.total_fee_yen)
    }

    pub fn paid(&self) -> bool {
        self.paid
    }
}

/// A fresh idempotency key (one per session).
/// The span a step after the center's answer runs in (payment, printing and their
/// reports), so its log lines carry the request id the center and the municipality
/// log too.
fn step_span(
    kiosk_id: &schemas::KioskId,
    step: &'static str,
    request_id: Option<RequestId>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "kiosk_step",
        kiosk_id = %kiosk_id,
        step,
        request_id = tracing::field::Empty,
    );
    if let Some(request_id) = request_id {
        span.record("request_id", tracing::field::display(request_id));
    }
    span
}

pub fn fresh_idempotency_key() -> Result<IdempotencyKey, KioskError> {
    IdempotencyKey::parse(uuid::Uuid::new_v4().simple().to_string())
        .map_err(|e| KioskError::Internal(e.to_string()))
}

impl<C: CenterApi> Kiosk<C> {
    /// The card is placed: a new session starts. Earlier sessions' undelivered
    /// reports go out first, so the center hears them in order.
    pub async fn begin_session(
        &mut self,
        idempotency_key: IdempotencyKey,
        card_path: &Path,
    ) -> Result<Session, KioskError> {
        self.state = KioskState::Idle;
        self.history = vec![KioskState::Idle];
        if !self.outbox.is_empty() {
            let summary = self.flush_outbox().await?;
            if summary.pending > 0 {
                tracing::warn!(
                    pending = summary.pending,
                    "outcome reports still undelivered"
                );
            }
        }
        let card = SimCard::open(card_path)?;
        Ok(Session {
            visit_key: idempotency_key.clone(),
            idempotency_key,
            card_session: None,
            card,
            pin: None,
            order: None,
            prepared: None,
            paid: false,
        })
    }

    /// Checks `order` against the center's menu for the municipality that answers
    /// its route: offered, available now, options offered, copies within the
    /// maximum. Nothing is signed or sent; a refusal leaves the session as it was.
    pub async fn check_menu(
        &mut self,
        session: &mut Session,
        order: CertificateOrder,
    ) -> Result<(), KioskError> {
        if session.prepared.is_some() {
            return Err(KioskError::Internal(
                "the order was already sent in this session".into(),
            ));
        }
        order.validate().map_err(KioskError::InvalidOrder)?;
        let expected_municipality =
            answering_municipality(&order.route, session.card.municipality_code());
        let menu = self
            .center
            .menu(expected_municipality, order.route.kind())
            .await?;
        if menu.municipality_code != expected_municipality || menu.route != order.route.kind() {
            return Err(KioskError::MenuMismatch {
                expected: format!("{expected_municipality}/{:?}", order.route.kind()),
                actual: format!("{}/{:?}", menu.municipality_code, menu.route),
            });
        }
        let shown_fee_yen_per_copy = check_order(&menu, &order)?.fee_yen_per_copy;
        session.order = Some(CheckedOrder {
            order,
            expected_municipality,
            shown_fee_yen_per_copy,
        });
        Ok(())
    }

    /// Verifies `pin` on the card (which counts the attempt). The card is accepted
    /// (`CardPlaced`) at the first entry; the PIN that locks it ends the session in
    /// `Locked`.
    fn verify_on_card<'card>(
        &mut self,
        card: &'card mut SimCard,
        pin: &str,
    ) -> Result<PinSession<'card>, KioskError> {
        if self.state == KioskState::Idle {
            self.advance(KioskState::CardPlaced)?;
        }
        match card.verify_pin(pin) {
            Ok(verified) => {
                if self.state == KioskState::CardPlaced {
                    self.advance(KioskState::PinVerified)?;
                }
                Ok(verified)
            }
            Err(error @ (CardError::Locked | CardError::WrongPin { attempts_left: 0 })) => {
                if self.state.may_become(KioskState::Locked) {
                    self.enter(KioskState::Locked);
                }
                Err(error.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The resident enters the PIN on the PIN pad, before choosing anything: the card
    /// verifies it now, so a wrong one is answered at once and the session waits for
    /// another (the card counts). Once verified, the session keeps it until the card
    /// signs the order.
    pub fn enter_pin(&mut self, session: &mut Session, pin: &str) -> Result<(), KioskError> {
        if session.pin.is_some() {
            return Err(KioskError::Internal("the PIN was already verified".into()));
        }
        self.verify_on_card(&mut session.card, pin)?;
        session.pin = Some(EnteredPin(pin.to_owned()));
        Ok(())
    }

    /// The card signs the center's challenge and the order, and the issuance request
    /// goes out (again under the same key, with a fresh challenge, only when no answer
    /// came back). A prepared answer must match the order and its document must pass
    /// [`check_document`] before the fee is even shown. Needs the PIN verified with
    /// [`Self::enter_pin`] and the order checked with [`Self::check_menu`].
    pub async fn place_order(&mut self, session: &mut Session) -> Result<OrderAnswer, KioskError> {
        self.send_order(session, None).await
    }

    /// [`Self::place_order`]; with `pin_now`, the PIN is verified here, once, right
    /// before the card signs (the one-call session, whose resident typed it up front).
    async fn send_order(
        &mut self,
        session: &mut Session,
        pin_now: Option<&str>,
    ) -> Result<OrderAnswer, KioskError> {
        let Some(checked) = &session.order else {
            return Err(KioskError::Internal(
                "no order checked against the menu".into(),
            ));
        };
        if session.prepared.is_some() {
            return Err(KioskError::Internal("the order was already sent".into()));
        }
        let order = checked.order.clone();
        let expected_municipality = checked.expected_municipality;
        let shown_fee_yen_per_copy = checked.shown_fee_yen_per_copy;
        let idempotency_key = session.idempotency_key.clone();
        let kiosk_id = self.kiosk_id.clone();
        let response = if let Some(card_session) = &mut session.card_session {
            if pin_now.is_some() {
                return Err(KioskError::Internal(
                    "the card session already holds the card's approval".into(),
                ));
            }
            if card_session.orders_left == 0 {
                return Err(KioskError::Internal(
                    "the card session has no orders left".into(),
                ));
            }
            let request = IssuanceRequest {
                idempotency_key: idempotency_key.clone(),
                kiosk_id,
                order: order.clone(),
                card: CardProof::Session(CardSessionRef {
                    card_session_id: card_session.card_session_id,
                }),
            };
            let response = match self.late_answer_for_fault().await? {
                Some(late) => late,
                None => self.send_on_card_session(&request).await?,
            };
            card_session.orders_left = card_session.orders_left.saturating_sub(1);
            response
        } else {
            let pin: &str = match (pin_now, &session.pin) {
                (Some(pin), None) => pin,
                (None, Some(entered)) => &entered.0,
                (Some(_), Some(_)) => {
                    return Err(KioskError::Internal("the PIN was already verified".into()))
                }
                (None, None) => {
                    return Err(KioskError::Internal("the PIN was not verified".into()))
                }
            };
            let digest = order_digest(&self.kiosk_id, &idempotency_key, &order)?;
            // PIN before anything goes on the wire: a wrong or locked card costs the
            // center nothing and leaves no half-open request behind. The card signs only
            // under a verified PIN; the simulated card keeps no verified status between
            // calls, so a PIN entered at an earlier step is presented again here.
            let pin_session = self.verify_on_card(&mut session.card, pin)?;
            match self.late_answer_for_fault().await? {
                Some(late) => late,
                None => {
                    self.send_card_signed(
                        &pin_session,
                        digest,
                        |challenge_nonce, card_certificate, card_signature| IssuanceRequest {
                            idempotency_key: idempotency_key.clone(),
                            kiosk_id: kiosk_id.clone(),
                            order: order.clone(),
                            card: CardProof::Signed(Box::new(SignedByCard {
                                challenge_nonce,
                                card_certificate,
                                card_signature,
                            })),
                        },
                    )
                    .await?
                }
            }
        };

        match response {
            IssuanceResponse::Refused {
                request_id,
                reason,
                message_ja,
                ..
            } => {
                tracing::Span::current().record("request_id", tracing::field::display(&request_id));
                if message_ja != RefusalReason::RESIDENT_MESSAGE_JA {
                    tracing::warn!(%request_id, "center's refusal text is not the generic one; showing the generic one");
                }
                self.advance(KioskState::Refused)?;
                tracing::info!(%request_id, ?reason, "refused");
                Ok(OrderAnswer::Refused(IssueOutcome::Refused {
                    request_id,
                    idempotency_key,
                    reason,
                    message_ja: RefusalReason::RESIDENT_MESSAGE_JA,
                    message_en: RefusalReason::RESIDENT_MESSAGE_EN,
                }))
            }
            IssuanceResponse::Prepared {
                request_id,
                municipality_code,
                municipality_name,
                certificate_title,
                copies,
                fee_yen_per_copy,
                total_fee_yen,
                document,
            } => {
                tracing::Span::current().record("request_id", tracing::field::display(&request_id));
                let mismatch = |field: &'static str, expected: String, actual: String| {
                    KioskError::AnswerMismatch {
                        request_id,
                        field,
                        expected,
                        actual,
                    }
                };
                if municipality_code != expected_municipality {
                    return Err(mismatch(
                        "municipality_code",
                        expected_municipality.to_string(),
                        municipality_code.to_string(),
                    ));
                }
                if copies != order.copies {
                    return Err(mismatch(
                        "copies",
                        order.copies.to_string(),
                        copies.to_string(),
                    ));
                }
                let expected_title = order.certificate.title_ja();
                if certificate_title != expected_title {
                    return Err(mismatch(
                        "certificate_title",
                        expected_title.to_owned(),
                        certificate_title,
                    ));
                }
                // The resident pays what the menu showed: that fee, exactly × copies.
                if fee_yen_per_copy != shown_fee_yen_per_copy {
                    return Err(mismatch(
                        "fee_yen_per_copy",
                        shown_fee_yen_per_copy.to_string(),
                        fee_yen_per_copy.to_string(),
                    ));
                }
                let expected_total = fee_yen_per_copy.checked_mul(u32::from(copies));
                if expected_total != Some(total_fee_yen) {
                    return Err(mismatch(
                        "total_fee_yen",
                        expected_total.map_or_else(|| "overflow".into(), |t| t.to_string()),
                        total_fee_yen.to_string(),
                    ));
                }
                if self.fault == FaultMode::SkipDocumentCheck {
                    tracing::error!(%request_id, "FAULT skip_document_check: document not checked");
                } else {
                    check_document(
                        document.pdf.as_slice(),
                        &request_id,
                        &document.sha256,
                        document.page_count,
                    )
                    .map_err(|source| KioskError::DocumentNotOurs { request_id, source })?;
                }
                self.advance(KioskState::Prepared)?;
                let shown = PreparedOrder {
                    request_id,
                    municipality_code,
                    municipality_name: municipality_name.clone(),
                    copies,
                    total_fee_yen,
                    page_count: document.page_count,
                };
                session.prepared = Some(Prepared {
                    request_id,
                    municipality_code,
                    municipality_name,
                    certificate_title,
                    copies,
                    fee_yen_per_copy,
                    total_fee_yen,
                    document,
                });
                Ok(OrderAnswer::Prepared(shown))
            }
        }
    }

    /// Fault [`FaultMode::ReleaseLockOnTimeout`] only: the previous session's late
    /// answer, taken as this order's (`Ordered` then); `None` for the honest kiosk.
    async fn late_answer_for_fault(&mut self) -> Result<Option<IssuanceResponse>, KioskError> {
        if self.fault != FaultMode::ReleaseLockOnTimeout {
            return Ok(None);
        }
        let Some(late) = self.take_late_answer().await else {
            return Ok(None);
        };
        let (IssuanceResponse::Prepared { request_id, .. }
        | IssuanceResponse::Refused { request_id, .. }) = &late;
        tracing::error!(%request_id, "FAULT release_lock_on_timeout: the previous session's late answer is taken as this order's answer");
        self.advance(KioskState::Ordered)?;
        Ok(Some(late))
    }

    /// Right after the PIN, the card approves the visit once: it signs a fresh
    /// challenge and [`card_session_digest`] of this kiosk and the visit's key, and the
    /// center opens a card session (`POST /v1/card-sessions`; sent again under the same
    /// visit key, with a fresh challenge, only when no answer came back, bounded as an
    /// order is). From then on the card may leave the reader: the PIN is forgotten and
    /// the visit's orders ride on the card session. A center error (the card revoked,
    /// expired, …) is returned as is and changes nothing in the session.
    pub async fn open_card_session(
        &mut self,
        session: &mut Session,
    ) -> Result<OpenCardSession, KioskError> {
        if session.card_session.is_some() {
            return Err(KioskError::Internal(
                "the card session is already open".into(),
            ));
        }
        if session.order.is_some() || session.prepared.is_some() {
            return Err(KioskError::Internal(
                "a card session is opened before any order".into(),
            ));
        }
        let Some(pin) = &session.pin else {
            return Err(KioskError::Internal("the PIN was not verified".into()));
        };
        let visit_key = session.visit_key.clone();
        let digest = card_session_digest(&self.kiosk_id, &visit_key)?;
        let pin_session = self.verify_on_card(&mut session.card, &pin.0)?;
        let kiosk_id = self.kiosk_id.clone();
        let response = self
            .send_card_signed(
                &pin_session,
                digest,
                |challenge_nonce, card_certificate, card_signature| CardSessionRequest {
                    kiosk_id: kiosk_id.clone(),
                    visit_key: visit_key.clone(),
                    challenge_nonce,
                    card_certificate,
                    card_signature,
                },
            )
            .await?;
        let expected = session.card.municipality_code();
        if response.card_municipality != expected {
            return Err(KioskError::CardSessionMismatch {
                expected,
                actual: response.card_municipality,
            });
        }
        let opened = OpenCardSession {
            card_session_id: response.card_session_id,
            card_municipality: response.card_municipality,
            expires_at_unix_s: response.expires_at_unix_s,
            orders_left: response.orders_left,
        };
        tracing::info!(card_session_id = %opened.card_session_id, orders_left = opened.orders_left, "card session opened; the card may be taken");
        session.card_session = Some(opened.clone());
        // Wiped on drop: the card session now holds the card's approval.
        session.pin = None;
        Ok(opened)
    }

    /// Another order in the same visit, on its card session: the last order ended
    /// (printed, voided or refused), the session is reset to the PIN-verified step under
    /// a fresh idempotency key. Undelivered reports go out first, as before a session.
    pub async fn next_order(&mut self, session: &mut Session) -> Result<(), KioskError> {
        let Some(card_session) = &session.card_session else {
            return Err(KioskError::Internal(
                "another order needs the visit's card session".into(),
            ));
        };
        if card_session.orders_left == 0 {
            return Err(KioskError::Internal(
                "the card session has no orders left".into(),
            ));
        }
        if !self.state.is_terminal() {
            return Err(KioskError::Internal(format!(
                "the order in progress has not ended ({:?})",
                self.state
            )));
        }
        let idempotency_key = fresh_idempotency_key()?;
        self.advance(KioskState::Idle)?;
        self.history = vec![KioskState::Idle];
        if !self.outbox.is_empty() {
            let summary = self.flush_outbox().await?;
            if summary.pending > 0 {
                tracing::warn!(
                    pending = summary.pending,
                    "outcome reports still undelivered"
                );
            }
        }
        self.advance(KioskState::CardPlaced)?;
        self.advance(KioskState::PinVerified)?;
        session.idempotency_key = idempotency_key;
        session.order = None;
        session.prepared = None;
        session.paid = false;
        Ok(())
    }

    /// The resident confirms the fee and pays (or cancels, or walks away). `None`
    /// once the center acknowledged `paid` (the printer may run); otherwise the
    /// session's outcome (voided, or refunded when the payment was not recorded).
    pub async fn pay(
        &mut self,
        session: &mut Session,
        payment: SimulatedPayment,
    ) -> Result<Option<IssueOutcome>, KioskError> {
        let span = step_span(&self.kiosk_id, "pay", session.request_id());
        self.pay_in_span(session, payment).instrument(span).await
    }

    async fn pay_in_span(
        &mut self,
        session: &mut Session,
        payment: SimulatedPayment,
    ) -> Result<Option<IssueOutcome>, KioskError> {
        let Some(prepared) = &session.prepared else {
            return Err(KioskError::Internal("nothing prepared to pay for".into()));
        };
        if session.paid {
            return Err(KioskError::Internal("already paid".into()));
        }
        let request_id = prepared.request_id;
        let total_fee_yen = prepared.total_fee_yen;
        let idempotency_key = session.idempotency_key.clone();
        match self
            .collect_fee(payment, request_id, &idempotency_key, total_fee_yen)
            .await?
        {
            Ok(()) => {
                session.paid = true;
                Ok(None)
            }
            Err(outcome) => Ok(Some(outcome)),
        }
    }

    /// Prints the paid document into `out_dir` (the PDF stands in for the pages) and
    /// reports the print outcome. `power_cut` only matters when the printer loses
    /// power: the `unknown` report is then written to the outbox but not sent, as the
    /// kiosk went dark with it (the restarted kiosk sends it).
    pub async fn print_paid(
        &mut self,
        session: &mut Session,
        printer: SimulatedPrinter,
        out_dir: &Path,
        power_cut: bool,
    ) -> Result<IssueOutcome, KioskError> {
        let span = step_span(&self.kiosk_id, "print", session.request_id());
        self.print_paid_in_span(session, printer, out_dir, power_cut)
            .instrument(span)
            .await
    }

    async fn print_paid_in_span(
        &mut self,
        session: &mut Session,
        printer: SimulatedPrinter,
        out_dir: &Path,
        power_cut: bool,
    ) -> Result<IssueOutcome, KioskError> {
        let Some(prepared) = session.prepared.take() else {
            return Err(KioskError::Internal("nothing prepared to print".into()));
        };
        if !session.paid || self.state != KioskState::Paid {
            // Never print without the center's `paid` acknowledgement.
            session.prepared = Some(prepared);
            return Err(KioskError::Internal("not paid: nothing is printed".into()));
        }
        let Prepared {
            request_id,
            municipality_code,
            municipality_name,
            certificate_title,
            copies,
            fee_yen_per_copy,
            total_fee_yen,
            document,
        } = prepared;
        let idempotency_key = session.idempotency_key.clone();
        let mut pdf: &[u8] = document.pdf.as_slice();
        let previous = if self.fault == FaultMode::SkipDocumentCheck {
            self.last_document.replace(pdf.to_vec())
        } else {
            None
        };
        if let Some(previous) = &previous {
            tracing::error!(%request_id, "FAULT skip_document_check: printing the previous session's document");
            pdf = previous;
        }
        let (mut print_outcome, pdf_path) = self.run_printer(printer, out_dir, &request_id, pdf)?;
        if print_outcome == PrintOutcome::Failed && self.fault == FaultMode::SkipVoidOnPrintFailure
        {
            tracing::error!(%request_id, "FAULT skip_void_on_print_failure: jam reported ok, fee kept");
            print_outcome = PrintOutcome::Ok;
        }
        let send_now = !(power_cut && print_outcome == PrintOutcome::Unknown);
        let print_report_queued = self
            .send_print_report(request_id, print_outcome, send_now)
            .await?;
        match print_outcome {
            PrintOutcome::Ok => {
                self.advance(KioskState::Printed)?;
                tracing::info!(%request_id, pages = document.page_count, path = %pdf_path.display(), "printed");
                Ok(IssueOutcome::Printed(PrintedDocument {
                    request_id,
                    idempotency_key,
                    municipality_code,
                    municipality_name,
                    certificate_title,
                    copies,
                    fee_yen_per_copy,
                    total_fee_yen,
                    page_count: document.page_count,
                    sha256: document.sha256,
                    pdf_path,
                    print_report_queued,
                }))
            }
            PrintOutcome::Failed => {
                self.advance(KioskState::Voided)?;
                tracing::warn!(%request_id, refund_yen = total_fee_yen, "printer jammed; fee returned");
                Ok(IssueOutcome::Refunded {
                    request_id,
                    idempotency_key,
                    refund_yen: total_fee_yen,
                    cause: RefundCause::PrintFailed,
                    report_queued: print_report_queued,
                })
            }
            PrintOutcome::Unknown => {
                self.advance(KioskState::PrintUnknown)?;
                tracing::warn!(%request_id, "print outcome unknown (power loss)");
                Ok(IssueOutcome::PrintUnknown {
                    request_id,
                    idempotency_key,
                    paid_yen: total_fee_yen,
                    pdf_path,
                    report_queued: print_report_queued,
                })
            }
        }
    }

    /// The whole session in one call, with the kiosk's simulated resident and printer:
    /// the order is known up front, so the menu is checked before the PIN pad.
    pub(crate) async fn run_session(
        &mut self,
        idempotency_key: IdempotencyKey,
        card_path: &Path,
        pin: &str,
        order: CertificateOrder,
        out_dir: &Path,
    ) -> Result<IssueOutcome, KioskError> {
        let mut session = self.begin_session(idempotency_key, card_path).await?;
        // The menu first, as on the kiosk's screen: an order the municipality would
        // refuse anyway never reaches the PIN pad.
        self.check_menu(&mut session, order).await?;
        if let OrderAnswer::Refused(outcome) = self.send_order(&mut session, Some(pin)).await? {
            return Ok(outcome);
        }
        if let Some(outcome) = self.pay(&mut session, self.payment()).await? {
            return Ok(outcome);
        }
        let printer = self.printer();
        self.print_paid(&mut session, printer, out_dir, false).await
    }
}
