//! One resident session at the kiosk, as a state machine:
//!
//! ```text
//! Idle → CardPlaced → PinVerified → Ordered → Prepared → Printed
//!            │             (any non-terminal) → Failed
//!            └→ Locked         Ordered → Refused
//!                              Ordered → Registered   (本籍地 利用登録 only)
//! ```
//!
//! - `CardPlaced`: the card file is read, the order is valid and on the center's menu
//!   for the municipality and route (offered, available now, options offered, copies
//!   within the maximum); otherwise the session fails here, before the PIN.
//! - `PinVerified`: the card accepted the PIN. A wrong PIN ends the session *before any
//!   request leaves the kiosk*; the third wrong PIN ends it in `Locked`.
//! - `Ordered`: the card signed the center's challenge and the order; the issuance
//!   request is on its way (ordered again under the same idempotency key, with a fresh
//!   challenge, only when no answer came back).
//! - `Prepared`: the center's document passed [`crate::pdf_check::check_document`] and
//!   the answer matches the order: the municipality of the route (住所地: the card's;
//!   本籍地: the chosen one), copies, title, and the fee the menu showed.
//! - `Printed`: the document is written to `<out_dir>/<request_id>.pdf`, which stands in
//!   for the printer. Nothing that failed a check is ever written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::{
    order_digest, registration_digest, CertificateOrder, ChallengeRequest, Digest32,
    DomicileRegistration, DomicileRegistrationRequest, DomicileRegistrationResponse,
    IdempotencyKey, IssuanceRequest, IssuanceResponse, KioskId, MunicipalityCode, RefusalReason,
    RequestId, SigningError,
};
use serde::Serialize;
use tracing::Instrument as _;

use crate::atomic_file;
use crate::card::{CardError, PinSession, SimCard};
use crate::client::{CenterApi, CenterClient, ClientError};
use crate::configuration::KioskSettings;
use crate::menu::{answering_municipality, check_order, MenuRefusal};
use crate::pdf_check::{check_document, DocumentCheckError};

/// Bytes in a center challenge nonce (the contract says 32).
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
    Printed,
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
            Self::Printed | Self::Refused | Self::Registered | Self::Failed | Self::Locked
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
            | (Prepared, Printed) => true,
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
            Self::Center(ClientError::Transport { .. }) => "center_unreachable",
            Self::Center(ClientError::Tls(_)) => "tls_setup",
            Self::Center(ClientError::UnexpectedResponse { .. })
            | Self::MalformedChallenge { .. }
            | Self::MenuMismatch { .. } => "center_protocol_error",
            Self::AnswerMismatch { .. } => "answer_mismatch",
            Self::DocumentNotOurs { .. } => "document_not_ours",
            Self::AlreadyPrinted { .. } => "already_printed",
            Self::Output { .. } => "output_error",
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
}

impl IssueOutcome {
    pub fn request_id(&self) -> RequestId {
        match self {
            Self::Printed(printed) => printed.request_id,
            Self::Refused { request_id, .. } => *request_id,
        }
    }
}

/// A kiosk terminal. One resident session at a time (`&mut self`), as at a real
/// multi-copy machine.
#[derive(Debug)]
pub struct Kiosk<C = CenterClient> {
    kiosk_id: KioskId,
    center: C,
    issuance_attempts: u32,
    state: KioskState,
    history: Vec<KioskState>,
}

impl Kiosk<CenterClient> {
    /// A kiosk talking to the center named in `settings` over mTLS.
    pub fn from_settings(settings: &KioskSettings) -> Result<Self, KioskError> {
        Ok(Self::new(
            settings.kiosk_id.clone(),
            CenterClient::new(settings)?,
        ))
    }
}

impl<C: CenterApi> Kiosk<C> {
    pub fn new(kiosk_id: KioskId, center: C) -> Self {
        Self {
            kiosk_id,
            center,
            issuance_attempts: DEFAULT_ISSUANCE_ATTEMPTS,
            state: KioskState::Idle,
            history: vec![KioskState::Idle],
        }
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
            self.state = KioskState::Idle;
            self.history = vec![KioskState::Idle];
            let result = self
                .run(idempotency_key, card_path, pin, order, out_dir)
                .await;
            match &result {
                Ok(outcome) => {
                    tracing::info!(request_id = %outcome.request_id(), state = ?self.state, "session ended");
                }
                Err(error) => {
                    let end = if error.card_locked() && self.state.may_become(KioskState::Locked) {
                        KioskState::Locked
                    } else {
                        KioskState::Failed
                    };
                    if self.state.may_become(end) {
                        self.enter(end);
                    }
                    tracing::warn!(code = error.code(), error = %error, state = ?self.state, "session failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn run(
        &mut self,
        idempotency_key: IdempotencyKey,
        card_path: &Path,
        pin: &str,
        order: CertificateOrder,
        out_dir: &Path,
    ) -> Result<IssueOutcome, KioskError> {
        let mut card = SimCard::open(card_path)?;
        order.validate().map_err(KioskError::InvalidOrder)?;
        let card_municipality = card.municipality_code();
        let expected_municipality = answering_municipality(&order.route, card_municipality);
        // The menu first, as on the kiosk's screen: an order the municipality would
        // refuse anyway never reaches the PIN pad.
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
        self.advance(KioskState::CardPlaced)?;
        let digest = order_digest(&self.kiosk_id, &idempotency_key, &order)?;

        // PIN before anything goes on the wire: a wrong or locked card costs the center
        // nothing and leaves no half-open request behind.
        let session = card.verify_pin(pin)?;
        self.advance(KioskState::PinVerified)?;

        let response = self
            .order_with_card(&session, &idempotency_key, &order, digest)
            .await?;
        // The card goes back to the resident now (取り忘れ対策): the center has answered
        // and nothing after this point needs it.
        drop(card);

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
                Ok(IssueOutcome::Refused {
                    request_id,
                    idempotency_key,
                    reason,
                    message_ja: RefusalReason::RESIDENT_MESSAGE_JA,
                    message_en: RefusalReason::RESIDENT_MESSAGE_EN,
                })
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
                check_document(
                    document.pdf.as_slice(),
                    &request_id,
                    &document.sha256,
                    document.page_count,
                )
                .map_err(|source| KioskError::DocumentNotOurs { request_id, source })?;
                self.advance(KioskState::Prepared)?;

                let pdf_path = print(out_dir, &request_id, document.pdf.as_slice())?;
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
                }))
            }
        }
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
                    let end = if error.card_locked() && self.state.may_become(KioskState::Locked) {
                        KioskState::Locked
                    } else {
                        KioskState::Failed
                    };
                    if self.state.may_become(end) {
                        self.enter(end);
                    }
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

        let mut attempt = 1;
        let response = loop {
            let challenge = match self
                .center
                .request_challenge(&ChallengeRequest {
                    kiosk_id: self.kiosk_id.clone(),
                })
                .await
            {
                Ok(challenge) => challenge,
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
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
            let request = DomicileRegistrationRequest {
                idempotency_key: idempotency_key.clone(),
                kiosk_id: self.kiosk_id.clone(),
                registration: registration.clone(),
                challenge_nonce: challenge.nonce,
                card_certificate: session.certificate().clone(),
                card_signature,
            };
            if self.state != KioskState::Ordered {
                self.advance(KioskState::Ordered)?;
            }
            match self.center.register_domicile(&request).await {
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
                    tracing::warn!(attempt, error = %error, "no answer to the registration; sending again under the same idempotency key");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                result => break result?,
            }
        };
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

    /// Challenge, card signature, issuance request; `Ordered` once the first request
    /// is signed.
    ///
    /// When no answer comes back the outcome is unknown, so the order is sent again
    /// under the *same idempotency key* (the center then replays instead of issuing
    /// twice), with a fresh challenge signed by the card: challenges are single-use and
    /// the center consumes one before it looks the key up. The card stays in the reader
    /// until then, its PIN session still open, so the resident is not asked again. An
    /// answer, even an error, is final and never re-sent.
    async fn order_with_card(
        &mut self,
        session: &PinSession<'_>,
        idempotency_key: &IdempotencyKey,
        order: &CertificateOrder,
        digest: Digest32,
    ) -> Result<IssuanceResponse, KioskError> {
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
                // expires. It counts against the same bound as an issuance retry.
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
            let request = IssuanceRequest {
                idempotency_key: idempotency_key.clone(),
                kiosk_id: self.kiosk_id.clone(),
                order: order.clone(),
                challenge_nonce: challenge.nonce,
                card_certificate: session.certificate().clone(),
                card_signature,
            };
            if self.state != KioskState::Ordered {
                self.advance(KioskState::Ordered)?;
            }
            match self.center.request_issuance(&request).await {
                Err(error) if error.is_transport() && attempt < self.issuance_attempts => {
                    tracing::warn!(attempt, error = %error, "no answer from the center; ordering again under the same idempotency key");
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                result => return Ok(result?),
            }
        }
    }

    fn advance(&mut self, next: KioskState) -> Result<(), KioskError> {
        if !self.state.may_become(next) {
            return Err(KioskError::Internal(format!(
                "illegal transition {:?} → {next:?}",
                self.state
            )));
        }
        self.enter(next);
        Ok(())
    }

    fn enter(&mut self, next: KioskState) {
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
        let happy = [Idle, CardPlaced, PinVerified, Ordered, Prepared, Printed];
        for pair in happy.windows(2) {
            assert!(pair[0].may_become(pair[1]), "{pair:?}");
        }
        assert!(CardPlaced.may_become(Locked));
        assert!(Ordered.may_become(Refused));
        // No skipping the PIN or the document check.
        assert!(!CardPlaced.may_become(Ordered));
        assert!(!Ordered.may_become(Printed));
        assert!(!PinVerified.may_become(Locked));
        // Terminal states only lead to a new session.
        assert!(Ordered.may_become(Registered));
        assert!(!PinVerified.may_become(Registered));
        for end in [Printed, Refused, Registered, Failed, Locked] {
            assert!(end.is_terminal());
            assert!(!end.may_become(Failed));
            assert!(end.may_become(Idle));
        }
        let all: [KioskState; 10] = [
            Idle,
            CardPlaced,
            PinVerified,
            Ordered,
            Prepared,
            Printed,
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
