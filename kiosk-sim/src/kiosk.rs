//! One resident session at the kiosk, as a state machine:
//!
//! ```text
//! Idle → CardPlaced → PinVerified → Ordered → Prepared → Paid → Printed
//!            │             (any non-terminal) → Failed      │        └→ PrintUnknown
//!            └→ Locked         Ordered → Refused            └→ Voided ← Paid
//!                              Ordered → Registered   (本籍地 利用登録 only)
//! ```
//!
//! - `CardPlaced`: the card file is read and the PIN pad is shown. In the one-call
//!   session ([`Kiosk::issue`]) the order is known up front and must first be valid
//!   and on the center's menu for the municipality and route (offered, available now,
//!   options offered, copies within the maximum), or the session fails before the PIN;
//!   a controlled session ([`crate::session`], [`crate::control`]) checks the menu
//!   when the resident picks from it, after the PIN.
//! - `PinVerified`: the card accepted the PIN. A wrong PIN ends the session *before any
//!   request leaves the kiosk*; the third wrong PIN ends it in `Locked`.
//! - `Ordered`: the card signed the center's challenge and the order, or (on the
//!   control path, [`crate::session`]) the order rides on the card session the card
//!   opened right after the PIN; the issuance request is on its way (ordered again
//!   under the same idempotency key, with a fresh challenge for a signed order, only
//!   when no answer came back).
//! - `Prepared`: the center's document passed [`crate::pdf_check::check_document`] and
//!   the answer matches the order: the municipality of the route (住所地: the card's;
//!   本籍地: the chosen one), copies, title, and the fee the menu showed.
//! - `Paid`: the resident confirmed the fee and paid ([`SimulatedPayment`]), the payment
//!   report was written to the outbox and the center acknowledged `paid`. Only then
//!   does the kiosk print.
//! - `Voided`: no certificate and no fee kept: the resident cancelled or timed out, the
//!   payment report got no answer (the money is returned and a `cancelled` report
//!   queued), the center declined the payment, or the printer jammed (refund).
//! - `Printed`: the document is written to `<out_dir>/<request_id>.pdf`, which stands in
//!   for the printer ([`SimulatedPrinter`]), and the `ok` print report is on its way.
//!   Nothing that failed a check is ever written.
//! - `PrintUnknown`: power was lost mid-job; `unknown` is reported, and the printer's
//!   later answer goes out with [`Kiosk::resolve_print`].
//!
//! Every outcome report goes through the persistent [`Outbox`]: written before it is
//! sent, removed only when acknowledged; [`Kiosk::flush_outbox`] re-sends the rest
//! (before each session and on `kiosk-sim outbox flush`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::b64::Base64Bytes;
use schemas::outcome::{
    IssuanceStatus, OutcomeAck, PaymentOutcome, PaymentReport, PrintOutcome, PrintReport,
};
use schemas::{
    registration_digest, CardCertificate, CardSessionRequest, CardSessionResponse,
    CertificateOrder, ChallengeRequest, Digest32, DomicileRegistration,
    DomicileRegistrationRequest, DomicileRegistrationResponse, ErrorCode, IdempotencyKey,
    IssuanceRequest, IssuanceResponse, KioskId, MunicipalityCode, RefusalReason, RequestId,
    SignatureBytes, SigningError,
};
use serde::Serialize;
use tracing::Instrument as _;

use crate::atomic_file;
use crate::card::{CardError, PinSession, SimCard};
use crate::client::{CenterApi, CenterClient, ClientError, DetachedIssuance};
use crate::configuration::{FaultMode, KioskSettings};
use crate::devices::{SimulatedPayment, SimulatedPrinter};
use crate::menu::MenuRefusal;
use crate::outbox::{Outbox, OutboxError, OutcomeReport};
use crate::pdf_check::DocumentCheckError;

/// Bytes in a center challenge nonce (the contract says 32; their content is the center's).
pub const CHALLENGE_NONCE_BYTES: usize = 32;
/// Issuance requests per session by default: one more when no answer came back.
pub const DEFAULT_ISSUANCE_ATTEMPTS: u32 = 2;
/// Pause before re-sending, so a briefly overloaded center is not hit again at once.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KioskState {
    Idle,
    CardPlaced,
    PinVerified,
    Ordered,
    Prepared,
    /// The center acknowledged the payment.
    Paid,
    Printed,
    /// Ended without a certificate and without keeping a fee (none taken, or refunded).
    Voided,
    /// Power was lost while printing; the outcome is reported `unknown`.
    PrintUnknown,
    Refused,
    /// A 本籍地 利用登録 was accepted by the center (pending or already approved).
    Registered,
    Failed,
    Locked,
}

impl KioskState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Printed
                | Self::Voided
                | Self::PrintUnknown
                | Self::Refused
                | Self::Registered
                | Self::Failed
                | Self::Locked
        )
    }

    /// The transitions of the diagram in the module docs, and no others.
    pub fn may_become(self, next: Self) -> bool {
        use KioskState::*;
        match (self, next) {
            (Idle, CardPlaced)
            | (CardPlaced, PinVerified)
            | (CardPlaced, Locked)
            | (PinVerified, Ordered)
            | (Ordered, Prepared)
            | (Ordered, Refused)
            | (Ordered, Registered)
            | (Prepared, Paid)
            | (Prepared, Voided)
            | (Paid, Printed)
            | (Paid, Voided)
            | (Paid, PrintUnknown) => true,
            (from, Failed) => !from.is_terminal(),
            // A new session starts from a finished one (or from a fresh kiosk).
            (from, Idle) => from == Idle || from.is_terminal(),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error("order rejected before sending: {0}")]
    InvalidOrder(String),
    /// Refused at the kiosk against the center's menu, before the PIN.
    #[error("not on the menu: {0}")]
    NotOnMenu(#[from] MenuRefusal),
    /// The center sent the menu of another municipality or route than asked for.
    #[error("center sent a menu for {actual}, asked for {expected}")]
    MenuMismatch { expected: String, actual: String },
    /// From the card: wrong PIN (with attempts left), locked, bad PIN format, unreadable.
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("cannot compute the order digest: {0}")]
    OrderDigest(#[from] SigningError),
    #[error(transparent)]
    Center(#[from] ClientError),
    #[error("center sent a {len_bytes}-byte challenge nonce, expected {CHALLENGE_NONCE_BYTES}")]
    MalformedChallenge { len_bytes: usize },
    /// The center's answer does not fit what this kiosk ordered for this card.
    #[error("answer for request {request_id} does not match the order: {field} is {actual:?}, expected {expected:?}; not printed")]
    AnswerMismatch {
        request_id: RequestId,
        field: &'static str,
        expected: String,
        actual: String,
    },
    /// The center opened a card session for another municipality than the card in the
    /// reader names: nothing is ordered on it.
    #[error("card session opened for municipality {actual}, the card names {expected}")]
    CardSessionMismatch {
        expected: MunicipalityCode,
        actual: MunicipalityCode,
    },
    /// The binding guard's kiosk half failed: never printed.
    #[error("document for request {request_id} failed the check and was not printed: {source}")]
    DocumentNotOurs {
        request_id: RequestId,
        #[source]
        source: DocumentCheckError,
    },
    #[error("{} already exists; request {request_id} is not printed twice", path.display())]
    AlreadyPrinted {
        request_id: RequestId,
        path: PathBuf,
    },
    #[error("cannot print to {}: {source}", path.display())]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The outcome outbox could not be read or written, or is full: no money is
    /// taken then.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// No answer in time, and the request was left running instead of aborted: only
    /// under the test-only fault [`FaultMode::ReleaseLockOnTimeout`].
    #[error("no answer from the center within {waited_ms} ms; the request was left running")]
    CenterTimeout { waited_ms: u64 },
    #[error("kiosk internal error: {0}")]
    Internal(String),
}

impl KioskError {
    /// A stable, machine-readable code (the center's wire code when it sent one).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidOrder(_) => "invalid_order",
            Self::NotOnMenu(refusal) => refusal.code(),
            Self::Card(CardError::BadPinFormat) => "bad_pin_format",
            Self::Card(CardError::WrongPin { attempts_left: 0 })
            | Self::Card(CardError::Locked) => "card_locked",
            Self::Card(CardError::WrongPin { .. }) => "wrong_pin",
            Self::Card(CardError::Io { .. } | CardError::Malformed { .. }) => "card_unreadable",
            Self::Card(CardError::Signing(_)) => "card_error",
            Self::OrderDigest(_) | Self::Internal(_) => "internal",
            Self::Center(ClientError::Rejected { body, .. }) => body.code.as_str(),
            Self::Center(error) if error.is_timeout() => "center_timeout",
            Self::CenterTimeout { .. } => "center_timeout",
            Self::Center(ClientError::Transport { .. }) => "center_unreachable",
            Self::Center(ClientError::Tls(_)) => "tls_setup",
            Self::Center(ClientError::UnexpectedResponse { .. })
            | Self::MalformedChallenge { .. }
            | Self::MenuMismatch { .. } => "center_protocol_error",
            Self::AnswerMismatch { .. } | Self::CardSessionMismatch { .. } => "answer_mismatch",
            Self::DocumentNotOurs { .. } => "document_not_ours",
            Self::AlreadyPrinted { .. } => "already_printed",
            Self::Output { .. } => "output_error",
            Self::Outbox(OutboxError::Full) => "outbox_full",
            Self::Outbox(_) => "outbox_error",
        }
    }

    /// The center's request id, when the failure happened after the center assigned one.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            Self::AnswerMismatch { request_id, .. }
            | Self::DocumentNotOurs { request_id, .. }
            | Self::AlreadyPrinted { request_id, .. } => Some(*request_id),
            Self::Center(ClientError::Rejected { body, .. }) => body.request_id,
            _ => None,
        }
    }

    /// True when the card is (now) locked.
    pub fn card_locked(&self) -> bool {
        matches!(
            self,
            Self::Card(CardError::Locked | CardError::WrongPin { attempts_left: 0 })
        )
    }
}

/// A certificate that passed every check and was "printed".
#[derive(Clone, Debug, Serialize)]
pub struct PrintedDocument {
    pub request_id: RequestId,
    pub idempotency_key: IdempotencyKey,
    pub municipality_code: MunicipalityCode,
    pub municipality_name: String,
    pub certificate_title: String,
    pub copies: u8,
    pub fee_yen_per_copy: u32,
    pub total_fee_yen: u32,
    pub page_count: u32,
    pub sha256: Digest32,
    pub pdf_path: PathBuf,
    /// The `ok` print report is still in the outbox (no answer yet).
    pub print_report_queued: bool,
}

/// Why a fee that was taken went back to the resident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundCause {
    /// The payment report got no answer: refunded at once, `cancelled` queued.
    PaymentNotAcknowledged,
    /// The center did not record the payment (e.g. its payment timeout had voided
    /// the issuance: `outcome_conflict`).
    PaymentDeclined,
    /// The printer jammed before the first page.
    PrintFailed,
}

/// How a session ended when the center answered.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IssueOutcome {
    Printed(PrintedDocument),
    /// Declined. The kiosk shows only the generic message, whatever the reason: the
    /// reason is for the operator's log, never for the screen.
    Refused {
        request_id: RequestId,
        idempotency_key: IdempotencyKey,
        reason: RefusalReason,
        message_ja: &'static str,
        message_en: &'static str,
    },
    /// The resident cancelled or timed out: no fee taken, nothing printed.
    Voided {
        request_id: RequestId,
        idempotency_key: IdempotencyKey,
        payment: PaymentOutcome,
        /// The payment report is still in the outbox.
        report_queued: bool,
    },
    /// The fee was taken and given back; nothing (usable) printed.
    Refunded {
        request_id: RequestId,
        idempotency_key: IdempotencyKey,
        refund_yen: u32,
        cause: RefundCause,
        /// A report about it is still in the outbox.
        report_queued: bool,
    },
    /// Paid, then power was lost mid-job: `unknown` reported (or queued); the printer's
    /// later answer is sent with [`Kiosk::resolve_print`].
    PrintUnknown {
        request_id: RequestId,
        idempotency_key: IdempotencyKey,
        paid_yen: u32,
        /// Where the pages would be, if any came out.
        pdf_path: PathBuf,
        report_queued: bool,
    },
}

impl IssueOutcome {
    pub fn request_id(&self) -> RequestId {
        match self {
            Self::Printed(printed) => printed.request_id,
            Self::Refused { request_id, .. }
            | Self::Voided { request_id, .. }
            | Self::Refunded { request_id, .. }
            | Self::PrintUnknown { request_id, .. } => *request_id,
        }
    }
}

/// What one [`Kiosk::flush_outbox`] achieved.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlushSummary {
    /// Acknowledgements received, in sending order.
    pub acknowledged: Vec<OutcomeAck>,
    /// Reports the center answered `outcome_conflict` to: logged and dropped.
    pub conflicts: usize,
    /// Reports still in the outbox.
    pub pending: usize,
}

/// How one send of an outbox entry ended.
enum Delivery {
    Acknowledged(OutcomeAck),
    /// `outcome_conflict`: final, dropped from the outbox.
    Conflict,
    Undelivered,
}

/// A kiosk terminal. One resident session at a time (`&mut self`), as at a real
/// multi-copy machine.
#[derive(Debug)]
pub struct Kiosk<C = CenterClient> {
    pub(crate) kiosk_id: KioskId,
    pub(crate) center: C,
    issuance_attempts: u32,
    pub(crate) state: KioskState,
    pub(crate) history: Vec<KioskState>,
    pub(crate) outbox: Outbox,
    payment: SimulatedPayment,
    printer: SimulatedPrinter,
    /// Test-only deliberate fault ([`FaultMode::None`] unless the settings say).
    pub(crate) fault: FaultMode,
    /// The last document received, kept only under [`FaultMode::SkipDocumentCheck`]
    /// (the fault prints it in place of the next one).
    pub(crate) last_document: Option<Vec<u8>>,
    /// The issuance a failed session left running, only under
    /// [`FaultMode::ReleaseLockOnTimeout`] (the next order takes its answer).
    pub(crate) late_answer: Option<LateAnswer>,
}

impl Kiosk<CenterClient> {
    /// A kiosk talking to the center named in `settings` over mTLS, with its outbox
    /// in the settings' state directory. The outbox is flushed before each session.
    pub fn from_settings(settings: &KioskSettings) -> Result<Self, KioskError> {
        Ok(
            Self::new(settings.kiosk_id.clone(), CenterClient::new(settings)?)
                .with_state_dir(&settings.effective_state_dir())?
                .with_fault(settings.fault.mode),
        )
    }
}

/// A kiosk request the card signs over a fresh single-use challenge (or, for an
/// issuance on a card session, a request sent the same way without the card).
pub(crate) trait CardSignedRequest {
    type Answer;
    /// Whether sending it moves the session to `Ordered` (an order or a 利用登録; not
    /// the opening of a card session, which only approves the orders to come).
    const ORDERS: bool = true;
    fn send<C: CenterApi>(
        &self,
        center: &C,
    ) -> impl std::future::Future<Output = Result<Self::Answer, ClientError>> + Send;

    /// Fault [`FaultMode::ReleaseLockOnTimeout`] only: [`Self::send`], except that a
    /// request with no answer within the link's usual wait is left running in `late`
    /// instead of aborted. Only an issuance can be; any other request is sent as usual.
    fn send_leaving_late<C: CenterApi>(
        &self,
        center: &C,
        _late: &mut Option<LateAnswer>,
    ) -> impl std::future::Future<Output = Result<Sent<Self::Answer>, KioskError>> + Send {
        let answer = self.send(center);
        async move { Ok(Sent::Answered(answer.await)) }
    }
}

impl CardSignedRequest for IssuanceRequest {
    type Answer = IssuanceResponse;
    fn send<C: CenterApi>(
        &self,
        center: &C,
    ) -> impl std::future::Future<Output = Result<IssuanceResponse, ClientError>> + Send {
        center.request_issuance(self)
    }

    fn send_leaving_late<C: CenterApi>(
        &self,
        center: &C,
        late: &mut Option<LateAnswer>,
    ) -> impl std::future::Future<Output = Result<Sent<IssuanceResponse>, KioskError>> + Send {
        enum Way<H> {
            Honest(H),
            Detached(DetachedIssuance),
        }
        // One late answer pending at most: while one is, a request that times out is
        // aborted as by the honest kiosk (and its answer dropped).
        let way = match late
            .is_none()
            .then(|| center.request_issuance_detached(self))
            .flatten()
        {
            Some(detached) => Way::Detached(detached),
            None => Way::Honest(center.request_issuance(self)),
        };
        async move {
            let detached = match way {
                Way::Honest(answer) => return Ok(Sent::Answered(answer.await)),
                Way::Detached(detached) => detached,
            };
            let (answer, wait) = (detached.answer, detached.session_wait);
            let sent_at = tokio::time::Instant::now();
            let mut task = tokio::spawn(async move {
                let answer = answer.await;
                if answer.is_ok() && sent_at.elapsed() >= wait {
                    tracing::error!("FAULT release_lock_on_timeout: the late answer arrived; kept for the next order");
                }
                answer
            });
            match tokio::time::timeout(wait, &mut task).await {
                Ok(Ok(answer)) => Ok(Sent::Answered(answer)),
                Ok(Err(join)) => Err(KioskError::Internal(format!(
                    "detached issuance request: {join}"
                ))),
                Err(_elapsed) => {
                    *late = Some(LateAnswer(task));
                    Ok(Sent::LeftRunning { waited: wait })
                }
            }
        }
    }
}

impl CardSignedRequest for DomicileRegistrationRequest {
    type Answer = DomicileRegistrationResponse;
    fn send<C: CenterApi>(
        &self,
        center: &C,
    ) -> impl std::future::Future<Output = Result<DomicileRegistrationResponse, ClientError>> + Send
    {
        center.register_domicile(self)
    }
}

impl CardSignedRequest for CardSessionRequest {
    type Answer = CardSessionResponse;
    const ORDERS: bool = false;
    fn send<C: CenterApi>(
        &self,
        center: &C,
    ) -> impl std::future::Future<Output = Result<CardSessionResponse, ClientError>> + Send {
        center.open_card_session(self)
    }
}

/// How a send under [`FaultMode::ReleaseLockOnTimeout`] ended.
pub(crate) enum Sent<A> {
    Answered(Result<A, ClientError>),
    /// No answer within `waited`; the request runs on in [`Kiosk::late_answer`].
    LeftRunning {
        waited: Duration,
    },
}

/// An issuance request a failed session left running, its answer to come
/// ([`FaultMode::ReleaseLockOnTimeout`] only). Bounded: the request has its own
/// deadline ([`crate::client::detached_timeout`]), and it is aborted when dropped (a
/// kiosk restart), so it never outlives its kiosk.
#[derive(Debug)]
pub(crate) struct LateAnswer(tokio::task::JoinHandle<Result<IssuanceResponse, ClientError>>);

impl Drop for LateAnswer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<C: CenterApi> Kiosk<C> {
    pub fn new(kiosk_id: KioskId, center: C) -> Self {
        Self {
            center,
            issuance_attempts: DEFAULT_ISSUANCE_ATTEMPTS,
            state: KioskState::Idle,
            history: vec![KioskState::Idle],
            outbox: Outbox::in_memory(kiosk_id.clone()),
            kiosk_id,
            payment: SimulatedPayment::default(),
            printer: SimulatedPrinter::default(),
            fault: FaultMode::None,
            last_document: None,
            late_answer: None,
        }
    }

    /// Breaks one rule on purpose (test-only; see [`FaultMode`]).
    pub fn with_fault(mut self, fault: FaultMode) -> Self {
        if fault != FaultMode::None {
            tracing::warn!(
                fault = fault.as_str(),
                "kiosk runs with a deliberate fault (test only)"
            );
        }
        self.fault = fault;
        self
    }

    pub fn fault(&self) -> FaultMode {
        self.fault
    }

    /// What the resident of the next sessions does at the payment screen.
    pub fn payment(&self) -> SimulatedPayment {
        self.payment
    }

    /// How the printer ends the next sessions' jobs.
    pub fn printer(&self) -> SimulatedPrinter {
        self.printer
    }

    /// Keeps the outbox in `state_dir` (created if missing), picking up whatever a
    /// previous run left there. Without it the outbox lives in memory only.
    ///
    /// A `paid` report still there is from a session that crashed before the center
    /// acknowledged it, so nothing was printed: the fee is returned (simulated) and the
    /// report becomes `cancelled`, which voids the issuance whether or not `paid` had
    /// reached the center.
    pub fn with_state_dir(mut self, state_dir: &Path) -> Result<Self, KioskError> {
        let mut outbox = Outbox::open(state_dir, self.kiosk_id.clone())?;
        let unacknowledged_payments: Vec<(u64, RequestId, PaymentReport)> = outbox
            .entries()
            .iter()
            .filter_map(|entry| match &entry.report {
                OutcomeReport::Payment(report) if report.outcome == PaymentOutcome::Paid => {
                    Some((entry.id, entry.request_id, report.clone()))
                }
                _ => None,
            })
            .collect();
        for (id, request_id, report) in unacknowledged_payments {
            tracing::warn!(%request_id, refund_yen = report.amount_yen, "payment of an interrupted session was never acknowledged; fee returned, cancelled queued");
            outbox.replace(
                id,
                OutcomeReport::Payment(PaymentReport {
                    outcome: PaymentOutcome::Cancelled,
                    amount_yen: 0,
                    repeat: false,
                    ..report
                }),
            )?;
        }
        self.outbox = outbox;
        Ok(self)
    }

    pub fn with_payment(mut self, payment: SimulatedPayment) -> Self {
        self.payment = payment;
        self
    }

    pub fn with_printer(mut self, printer: SimulatedPrinter) -> Self {
        self.printer = printer;
        self
    }

    /// What the resident of the next sessions does at the payment screen.
    pub fn set_payment(&mut self, payment: SimulatedPayment) {
        self.payment = payment;
    }

    /// How the printer ends the next sessions' jobs.
    pub fn set_printer(&mut self, printer: SimulatedPrinter) {
        self.printer = printer;
    }

    /// The undelivered outcome reports.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// How many times one issuance request may be sent when no answer comes back
    /// (at least 1). Only transport failures are retried; an answer is final.
    pub fn with_issuance_attempts(mut self, attempts: u32) -> Self {
        self.issuance_attempts = attempts.max(1);
        self
    }

    pub fn kiosk_id(&self) -> &KioskId {
        &self.kiosk_id
    }

    pub fn center(&self) -> &C {
        &self.center
    }

    /// Gives the center link back (tests restart a kiosk against the same center).
    pub fn into_center(self) -> C {
        self.center
    }

    /// The state the current or last session is in.
    pub fn state(&self) -> KioskState {
        self.state
    }

    /// The states of the last session, from `Idle`.
    pub fn history(&self) -> &[KioskState] {
        &self.history
    }

    /// Runs one resident session under a fresh idempotency key.
    pub async fn issue(
        &mut self,
        card_path: &Path,
        pin: &str,
        order: CertificateOrder,
        out_dir: &Path,
    ) -> Result<IssueOutcome, KioskError> {
        let key = IdempotencyKey::parse(uuid::Uuid::new_v4().simple().to_string())
            .map_err(|e| KioskError::Internal(e.to_string()))?;
        self.issue_with_key(key, card_path, pin, order, out_dir)
            .await
    }

    /// [`Self::issue`] under a caller-chosen idempotency key (conformance tests use it
    /// to provoke replays and conflicts).
    pub async fn issue_with_key(
        &mut self,
        idempotency_key: IdempotencyKey,
        card_path: &Path,
        pin: &str,
        order: CertificateOrder,
        out_dir: &Path,
    ) -> Result<IssueOutcome, KioskError> {
        let span = tracing::info_span!(
            "kiosk_session",
            kiosk_id = %self.kiosk_id,
            idempotency_key = %idempotency_key,
            request_id = tracing::field::Empty,
        );
        async {
            let result = self
                .run_session(idempotency_key, card_path, pin, order, out_dir)
                .await;
            match &result {
                Ok(outcome) => {
                    tracing::info!(request_id = %outcome.request_id(), state = ?self.state, "session ended");
                }
                Err(error) => {
                    self.end_failed(error);
                    tracing::warn!(code = error.code(), error = %error, state = ?self.state, "session failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// 本籍地 利用登録: the resident enters the 本籍 and 筆頭者, approves with the PIN,
    /// and the card signs `{nonce, registration_digest}`. The answer is the center's
    /// receipt (`pending` for a new registration). Sent again under the same
    /// idempotency key, with a fresh challenge, only when no answer came back.
    pub async fn register_domicile(
        &mut self,
        card_path: &Path,
        pin: &str,
        registration: DomicileRegistration,
    ) -> Result<DomicileRegistrationResponse, KioskError> {
        let idempotency_key = IdempotencyKey::parse(uuid::Uuid::new_v4().simple().to_string())
            .map_err(|e| KioskError::Internal(e.to_string()))?;
        let span = tracing::info_span!(
            "kiosk_registration",
            kiosk_id = %self.kiosk_id,
            idempotency_key = %idempotency_key,
        );
        async {
            self.state = KioskState::Idle;
            self.history = vec![KioskState::Idle];
            let result = self
                .run_registration(&idempotency_key, card_path, pin, registration)
                .await;
            match &result {
                Ok(response) => {
                    tracing::info!(registration_id = %response.registration_id, status = ?response.status, "registration answered");
                }
                Err(error) => {
                    self.end_failed(error);
                    tracing::warn!(code = error.code(), error = %error, state = ?self.state, "registration failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn run_registration(
        &mut self,
        idempotency_key: &IdempotencyKey,
        card_path: &Path,
        pin: &str,
        registration: DomicileRegistration,
    ) -> Result<DomicileRegistrationResponse, KioskError> {
        let mut card = SimCard::open(card_path)?;
        registration.validate().map_err(KioskError::InvalidOrder)?;
        self.advance(KioskState::CardPlaced)?;
        let digest = registration_digest(&self.kiosk_id, idempotency_key, &registration)?;
        let session = card.verify_pin(pin)?;
        self.advance(KioskState::PinVerified)?;

        let kiosk_id = self.kiosk_id.clone();
        let response = self
            .send_card_signed(
                &session,
                digest,
                |challenge_nonce, card_certificate, card_signature| DomicileRegistrationRequest {
                    idempotency_key: idempotency_key.clone(),
                    kiosk_id: kiosk_id.clone(),
                    registration: registration.clone(),
                    challenge_nonce,
                    card_certificate,
                    card_signature,
                },
            )
            .await?;
        drop(card);
        if response.municipality_code != registration.municipality_code {
            return Err(KioskError::AnswerMismatch {
                request_id: response.registration_id,
                field: "municipality_code",
                expected: registration.municipality_code.to_string(),
                actual: response.municipality_code.to_string(),
            });
        }
        self.advance(KioskState::Registered)?;
        Ok(response)
    }

    /// Challenge, card signature, request (an issuance or a 利用登録); `Ordered` once
    /// the first request is signed.
    ///
    /// When no answer comes back the outcome is unknown, so the request is sent again
    /// under the *same idempotency key* (the center then replays instead of acting
    /// twice), with a fresh challenge signed by the card: challenges are single-use and
    /// the center consumes one before it looks the key up. The card stays in the reader
    /// until then, its PIN session still open, so the resident is not asked again. An
    /// answer, even an error, is final and never re-sent.
    pub(crate) async fn send_card_signed<R: CardSignedRequest>(
        &mut self,
        session: &PinSession<'_>,
        digest: Digest32,
        build: impl Fn(Base64Bytes, CardCertificate, SignatureBytes) -> R,
    ) -> Result<R::Answer, KioskError> {
        let mut attempt = 1;
        loop {
            // Fetched only after the PIN, so it is as fresh as possible when signed.
            let challenge = match self
                .center
                .request_challenge(&ChallengeRequest {
                    kiosk_id: self.kiosk_id.clone(),
                })
                .await
            {
                Ok(challenge) => challenge,
                // Asking for another challenge is always safe: an unused nonce only
                // expires. It counts against the same bound as a request retry.
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
                    tracing::warn!(attempt, error = %error, "no challenge from the center; asking again");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if challenge.nonce.as_slice().len() != CHALLENGE_NONCE_BYTES {
                return Err(KioskError::MalformedChallenge {
                    len_bytes: challenge.nonce.as_slice().len(),
                });
            }
            let card_signature = session.sign_auth(challenge.nonce.as_slice(), digest)?;
            let request = build(
                challenge.nonce,
                session.certificate().clone(),
                card_signature,
            );
            if R::ORDERS && self.state != KioskState::Ordered {
                self.advance(KioskState::Ordered)?;
            }
            match self.send_once(&request, attempt).await? {
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
                    tracing::warn!(attempt, error = %error, "no answer from the center; sending again under the same idempotency key");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                result => return Ok(result?),
            }
        }
    }

    /// An issuance riding on a card session (no card, no challenge): sent again, the
    /// same request under the same idempotency key, only when no answer came back, as
    /// [`Self::send_card_signed`] does; `Ordered` once it is first sent.
    pub(crate) async fn send_on_card_session(
        &mut self,
        request: &IssuanceRequest,
    ) -> Result<IssuanceResponse, KioskError> {
        let mut attempt = 1;
        loop {
            if self.state != KioskState::Ordered {
                self.advance(KioskState::Ordered)?;
            }
            match self.send_once(request, attempt).await? {
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
                    tracing::warn!(attempt, error = %error, "no answer from the center; sending again under the same idempotency key");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                result => return Ok(result?),
            }
        }
    }

    /// One send of `request` (attempt number `attempt`). Under the test-only fault
    /// [`FaultMode::ReleaseLockOnTimeout`] the last attempt is left running when no
    /// answer comes in time, instead of being aborted.
    async fn send_once<R: CardSignedRequest>(
        &mut self,
        request: &R,
        attempt: u32,
    ) -> Result<Result<R::Answer, ClientError>, KioskError> {
        if self.fault == FaultMode::ReleaseLockOnTimeout && attempt >= self.issuance_attempts {
            match request
                .send_leaving_late(&self.center, &mut self.late_answer)
                .await?
            {
                Sent::Answered(result) => Ok(result),
                Sent::LeftRunning { waited } => {
                    tracing::error!(attempt, "FAULT release_lock_on_timeout: no answer in time; session released, request left running");
                    Err(KioskError::CenterTimeout {
                        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    })
                }
            }
        } else {
            Ok(request.send(&self.center).await)
        }
    }

    /// Fault [`FaultMode::ReleaseLockOnTimeout`] only: the answer to the request a
    /// failed session left running, waited for (within that request's own deadline).
    /// `None` when there is none, or it ended without an answer.
    pub(crate) async fn take_late_answer(&mut self) -> Option<IssuanceResponse> {
        let mut late = self.late_answer.take()?;
        match (&mut late.0).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "FAULT release_lock_on_timeout: the request left running got no answer");
                None
            }
            Err(join) => {
                tracing::warn!(error = %join, "FAULT release_lock_on_timeout: the request left running was lost");
                None
            }
        }
    }

    /// Fee confirmation and payment. `Ok(Ok(()))` once the center acknowledged `paid`
    /// (state `Paid`); `Ok(Err(outcome))` when the session ends here without a fee
    /// (state `Voided`).
    pub(crate) async fn collect_fee(
        &mut self,
        payment: SimulatedPayment,
        request_id: RequestId,
        idempotency_key: &IdempotencyKey,
        total_fee_yen: u32,
    ) -> Result<Result<(), IssueOutcome>, KioskError> {
        // Room for the payment and the print report, or no money is taken at all.
        if !self.outbox.has_room_for(2) {
            return Err(OutboxError::Full.into());
        }
        tracing::info!(%request_id, fee_yen = total_fee_yen, "fee shown for confirmation");
        let (outcome, amount_yen) = payment.collect(total_fee_yen);
        let report = |outcome, amount_yen| {
            OutcomeReport::Payment(PaymentReport {
                kiosk_id: self.kiosk_id.clone(),
                outcome,
                amount_yen,
                method: payment.method(),
                repeat: false,
            })
        };
        let first = report(outcome, amount_yen);
        let cancelled = report(PaymentOutcome::Cancelled, 0);
        let entry = self.outbox.push(request_id, first)?;
        let delivery = self.deliver(entry, false).await?;
        if outcome != PaymentOutcome::Paid {
            self.advance(KioskState::Voided)?;
            tracing::info!(%request_id, ?outcome, "not paid; nothing printed");
            return Ok(Err(IssueOutcome::Voided {
                request_id,
                idempotency_key: idempotency_key.clone(),
                payment: outcome,
                report_queued: matches!(delivery, Delivery::Undelivered),
            }));
        }
        let refunded = |cause, report_queued| IssueOutcome::Refunded {
            request_id,
            idempotency_key: idempotency_key.clone(),
            refund_yen: amount_yen,
            cause,
            report_queued,
        };
        match delivery {
            Delivery::Acknowledged(ack) if ack.status == IssuanceStatus::Paid => {
                if ack.paid_yen != amount_yen {
                    tracing::warn!(%request_id, paid_yen = ack.paid_yen, amount_yen, "center recorded another amount");
                }
                self.advance(KioskState::Paid)?;
                Ok(Ok(()))
            }
            Delivery::Acknowledged(ack) => {
                // Paid but not recorded as such (voided, already printed…): the fee goes
                // back and nothing is printed.
                tracing::warn!(%request_id, status = ?ack.status, "center did not record the payment; fee returned");
                self.advance(KioskState::Voided)?;
                Ok(Err(refunded(RefundCause::PaymentDeclined, false)))
            }
            Delivery::Conflict => {
                tracing::warn!(%request_id, "payment conflicts with the center's record; fee returned");
                self.advance(KioskState::Voided)?;
                Ok(Err(refunded(RefundCause::PaymentDeclined, false)))
            }
            Delivery::Undelivered => {
                // No answer: the center may or may not have recorded `paid`. The money
                // goes back now and `cancelled` replaces `paid`, which voids the
                // issuance either way (with a refund record if `paid` got through).
                self.outbox.replace(entry, cancelled)?;
                tracing::warn!(%request_id, refund_yen = amount_yen, "payment report unanswered; fee returned, cancelled queued");
                let queued = matches!(self.deliver(entry, false).await?, Delivery::Undelivered);
                self.advance(KioskState::Voided)?;
                Ok(Err(refunded(RefundCause::PaymentNotAcknowledged, queued)))
            }
        }
    }

    /// Runs the simulated printer; the PDF stands in for the pages that came out.
    pub(crate) fn run_printer(
        &self,
        printer: SimulatedPrinter,
        out_dir: &Path,
        request_id: &RequestId,
        pdf: &[u8],
    ) -> Result<(PrintOutcome, PathBuf), KioskError> {
        let outcome = printer.outcome();
        if !printer.writes_pages() {
            return Ok((outcome, out_dir.join(format!("{request_id}.pdf"))));
        }
        match print(out_dir, request_id, pdf) {
            Ok(path) => Ok((outcome, path)),
            // Nothing came out: as a jam before the first page, the fee is refunded.
            Err(error @ (KioskError::Output { .. } | KioskError::AlreadyPrinted { .. })) => {
                tracing::error!(%request_id, error = %error, "printing failed");
                Ok((
                    PrintOutcome::Failed,
                    out_dir.join(format!("{request_id}.pdf")),
                ))
            }
            Err(other) => Err(other),
        }
    }

    /// Writes the print report to the outbox and, when `send_now`, sends it; true when
    /// it stays queued. (`send_now` is false when the power went out mid-job: the
    /// report is on disk, and the restarted kiosk sends it.)
    pub(crate) async fn send_print_report(
        &mut self,
        request_id: RequestId,
        outcome: PrintOutcome,
        send_now: bool,
    ) -> Result<bool, KioskError> {
        let report = OutcomeReport::Print(PrintReport {
            kiosk_id: self.kiosk_id.clone(),
            outcome,
            repeat: false,
        });
        let entry = self.outbox.push(request_id, report)?;
        if !send_now {
            return Ok(true);
        }
        Ok(matches!(
            self.deliver(entry, false).await?,
            Delivery::Undelivered
        ))
    }

    /// The printer's later answer for a job whose outcome was unknown (power loss):
    /// written to the outbox (replacing a still-queued `unknown`) and sent. `None`
    /// when it stays queued or the center answered `outcome_conflict`.
    pub async fn resolve_print(
        &mut self,
        request_id: RequestId,
        outcome: PrintOutcome,
    ) -> Result<Option<OutcomeAck>, KioskError> {
        let report = OutcomeReport::Print(PrintReport {
            kiosk_id: self.kiosk_id.clone(),
            outcome,
            repeat: false,
        });
        let entry = self.outbox.push(request_id, report)?;
        Ok(match self.deliver(entry, false).await? {
            Delivery::Acknowledged(ack) => Some(ack),
            Delivery::Conflict | Delivery::Undelivered => None,
        })
    }

    /// Re-sends every undelivered report, oldest first, with `repeat = true`. A report
    /// is removed when acknowledged or answered `outcome_conflict`; the rest stay.
    /// While a request's payment report is undelivered its later reports wait, so the
    /// center never hears of a print before the payment.
    pub async fn flush_outbox(&mut self) -> Result<FlushSummary, KioskError> {
        let mut summary = FlushSummary::default();
        let ids: Vec<(u64, RequestId)> = self
            .outbox
            .entries()
            .iter()
            .map(|e| (e.id, e.request_id))
            .collect();
        let mut blocked: Vec<RequestId> = Vec::new();
        for (id, request_id) in ids {
            if blocked.contains(&request_id) {
                continue;
            }
            match self.deliver(id, true).await? {
                Delivery::Acknowledged(ack) => summary.acknowledged.push(ack),
                Delivery::Conflict => summary.conflicts += 1,
                Delivery::Undelivered => blocked.push(request_id),
            }
        }
        summary.pending = self.outbox.len();
        tracing::info!(
            acknowledged = summary.acknowledged.len(),
            conflicts = summary.conflicts,
            pending = summary.pending,
            "outbox flushed"
        );
        Ok(summary)
    }

    /// Sends outbox entry `id` once. Acknowledged or `outcome_conflict` → removed;
    /// anything else → kept, with the failure counted.
    async fn deliver(&mut self, id: u64, repeat: bool) -> Result<Delivery, KioskError> {
        let Some(entry) = self.outbox.get(id).cloned() else {
            return Ok(Delivery::Undelivered);
        };
        let span = tracing::info_span!(
            "outbox_delivery",
            kiosk_id = %self.kiosk_id,
            request_id = %entry.request_id,
            kind = entry.report.kind(),
        );
        self.deliver_entry(id, entry, repeat).instrument(span).await
    }

    async fn deliver_entry(
        &mut self,
        id: u64,
        entry: crate::outbox::OutboxEntry,
        repeat: bool,
    ) -> Result<Delivery, KioskError> {
        let mut report = entry.report.clone();
        report.set_repeat(repeat);
        let result = match &report {
            OutcomeReport::Payment(r) => self.center.report_payment(entry.request_id, r).await,
            OutcomeReport::Print(r) => self.center.report_print(entry.request_id, r).await,
        };
        match result {
            Ok(ack) if ack.request_id == entry.request_id => {
                self.outbox.remove(id)?;
                tracing::info!(request_id = %entry.request_id, kind = report.kind(), outcome = %report.outcome_str(), status = ?ack.status, "report acknowledged");
                Ok(Delivery::Acknowledged(ack))
            }
            Ok(ack) => {
                let error = format!("acknowledgement for request {}", ack.request_id);
                tracing::error!(request_id = %entry.request_id, %error, "report answered for another request; kept");
                self.outbox.record_failure(id, &error)?;
                Ok(Delivery::Undelivered)
            }
            Err(error) if error.error_code() == Some(ErrorCode::OutcomeConflict) => {
                tracing::error!(request_id = %entry.request_id, kind = report.kind(), outcome = %report.outcome_str(), error = %error, "report conflicts with the center's record; dropped");
                self.outbox.remove(id)?;
                Ok(Delivery::Conflict)
            }
            Err(error) => {
                tracing::warn!(request_id = %entry.request_id, kind = report.kind(), error = %error, "report not delivered; kept in the outbox");
                self.outbox.record_failure(id, &error.to_string())?;
                Ok(Delivery::Undelivered)
            }
        }
    }

    /// Ends the current session on `error`: `Locked` when the card just locked,
    /// `Failed` otherwise (a session that already ended stays as it ended).
    pub fn end_failed(&mut self, error: &KioskError) {
        let end = if error.card_locked() && self.state.may_become(KioskState::Locked) {
            KioskState::Locked
        } else {
            KioskState::Failed
        };
        if self.state.may_become(end) {
            self.enter(end);
        }
    }

    pub(crate) fn advance(&mut self, next: KioskState) -> Result<(), KioskError> {
        if !self.state.may_become(next) {
            return Err(KioskError::Internal(format!(
                "illegal transition {:?} → {next:?}",
                self.state
            )));
        }
        self.enter(next);
        Ok(())
    }

    pub(crate) fn enter(&mut self, next: KioskState) {
        tracing::debug!(from = ?self.state, to = ?next, "kiosk state");
        self.state = next;
        self.history.push(next);
    }
}

/// "Prints" by writing `<out_dir>/<request_id>.pdf`, atomically and never over an
/// existing file: a request id seen twice is a fault to report, not a reprint.
fn print(out_dir: &Path, request_id: &RequestId, pdf: &[u8]) -> Result<PathBuf, KioskError> {
    std::fs::create_dir_all(out_dir).map_err(|source| KioskError::Output {
        path: out_dir.to_owned(),
        source,
    })?;
    let path = out_dir.join(format!("{request_id}.pdf"));
    match atomic_file::create_new(&path, pdf) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(KioskError::AlreadyPrinted {
                request_id: *request_id,
                path,
            })
        }
        Err(source) => Err(KioskError::Output { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::KioskState::{self, *};

    /// A session can run on a multi-threaded runtime (`tokio::spawn`).
    #[allow(dead_code)]
    fn issue_future_is_send(kiosk: &mut super::Kiosk, order: schemas::CertificateOrder) {
        fn assert_send<T: Send>(_: &T) {}
        let path = std::path::Path::new("");
        let future = kiosk.issue(path, "", order, path);
        assert_send(&future);
    }

    #[test]
    fn transitions_follow_the_diagram() {
        let happy = [
            Idle,
            CardPlaced,
            PinVerified,
            Ordered,
            Prepared,
            Paid,
            Printed,
        ];
        for pair in happy.windows(2) {
            assert!(pair[0].may_become(pair[1]), "{pair:?}");
        }
        assert!(CardPlaced.may_become(Locked));
        assert!(Ordered.may_become(Refused));
        // No skipping the PIN or the document check.
        assert!(!CardPlaced.may_become(Ordered));
        assert!(!Ordered.may_become(Printed));
        // No print without the paid acknowledgement.
        assert!(!Prepared.may_become(Printed));
        assert!(!Prepared.may_become(PrintUnknown));
        assert!(Prepared.may_become(Voided) && Paid.may_become(Voided));
        assert!(!PinVerified.may_become(Locked));
        // Terminal states only lead to a new session.
        assert!(Ordered.may_become(Registered));
        assert!(!PinVerified.may_become(Registered));
        for end in [
            Printed,
            Voided,
            PrintUnknown,
            Refused,
            Registered,
            Failed,
            Locked,
        ] {
            assert!(end.is_terminal());
            assert!(!end.may_become(Failed));
            assert!(end.may_become(Idle));
        }
        let all: [KioskState; 13] = [
            Idle,
            CardPlaced,
            PinVerified,
            Ordered,
            Prepared,
            Paid,
            Printed,
            Voided,
            PrintUnknown,
            Refused,
            Registered,
            Failed,
            Locked,
        ];
        for from in all {
            assert_eq!(from.may_become(Failed), !from.is_terminal());
        }
    }
}
