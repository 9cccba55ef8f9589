//! The kiosk state machine against an in-process fake center that checks the card's
//! signature like the real one and can misbehave on purpose.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;

use common::{build_pdf, read_card_file, Fixture, TempDir, MUNICIPALITY, PIN};
use kiosk_sim::{
    CardError, CenterApi, ClientError, IssueOutcome, Kiosk, KioskError, KioskState, MenuRefusal,
    OrderAnswer, OutcomeReport, RefundCause, SimulatedPayment, SimulatedPrinter,
};
use schemas::outcome::{
    IssuanceStatus, OutcomeAck, PaymentOutcome, PaymentReport, PrintOutcome, PrintReport,
};
use schemas::{
    card_session_digest, order_digest, registration_digest, CardAuthMessage, CardProof,
    CardSessionId, CardSessionRef, CardSessionRequest, CardSessionResponse, CertificateKind,
    CertificateOption, CertificateOrder, CertificateType, ChallengeRequest, ChallengeResponse,
    Digest32, DocumentPdf, DomicileRegistration, DomicileRegistrationRequest,
    DomicileRegistrationResponse, DomicileRegistrationStatus, ErrorBody, ErrorCode, HouseholdScope,
    IdempotencyKey, IssuanceRequest, IssuanceResponse, KioskId, Menu, MenuItem, MunicipalityCode,
    MunicipalityDirectory, MunicipalityEntry, PublicKey, RefusalReason, RequestId, Route,
    RouteKind, ServiceHours, SignedMessage as _,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Page 2 of 3 carries another request's id (the 2023–24 incident).
    ForeignPage,
    Refuse,
    /// Answers with one copy more than ordered.
    WrongCopies,
    /// Always answers with the same request id.
    FixedRequestId(RequestId),
    /// A 16-byte nonce.
    ShortNonce,
    /// Processes the first `n` issuance requests but loses the answers.
    DropFirst(u32),
    /// The first challenge request gets no answer.
    LoseFirstChallenge,
    /// The center's payment timeout voids every issuance before the kiosk reports.
    PaymentTimeoutAtCenter,
    /// Opens the first card session but loses the answer.
    LoseFirstCardSessionAnswer,
    /// The card is revoked: no card session (a signed order would be refused too).
    RevokedCard,
}

/// The fake center's record of one card session.
#[derive(Clone, Debug)]
struct FakeCardSession {
    id: CardSessionId,
    kiosk_id: KioskId,
    serial: String,
    orders_left: u8,
}

/// Orders a fake card session may carry.
const FAKE_ORDERS_PER_SESSION: u8 = 2;

/// What happens to outcome reports on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportLink {
    Up,
    /// Payment reports are processed, but their answers are lost.
    PaymentAnswersLost,
    /// Print reports never reach the center.
    PrintDown,
    /// No report reaches the center.
    Down,
    /// The first report of this kind ("payment" | "print") is never answered: the
    /// center signals, and the kiosk waits until the test "crashes" it.
    Hang(&'static str),
}

/// The fake center's record of one issuance.
#[derive(Clone, Debug)]
struct Issued {
    status: IssuanceStatus,
    paid_yen: u32,
    refund_yen: u32,
    print: Option<PrintOutcome>,
}

struct FakeCenter {
    authority: PublicKey,
    behaviour: Behaviour,
    challenges: Mutex<Vec<Vec<u8>>>,
    used_nonces: Mutex<HashSet<Vec<u8>>>,
    issuances: Mutex<Vec<IssuanceRequest>>,
    /// Every card-session opening that reached the center.
    card_session_openings: Mutex<Vec<CardSessionRequest>>,
    /// Per visit key.
    card_sessions: Mutex<HashMap<String, FakeCardSession>>,
    /// Idempotency: the answer stored per key, replayed for the same key.
    answers: Mutex<HashMap<String, IssuanceResponse>>,
    /// What the menu says, per (municipality, route); a pair not listed gets
    /// [`full_menu`].
    menus: Mutex<HashMap<(MunicipalityCode, RouteKind), Menu>>,
    menu_requests: Mutex<Vec<(MunicipalityCode, RouteKind)>>,
    registrations: Mutex<Vec<DomicileRegistrationRequest>>,
    /// Cards whose 利用登録 the 本籍地 approved.
    approved_cards: Mutex<HashSet<String>>,
    /// Every report that reached the center, in arrival order.
    reports: Mutex<Vec<(RequestId, OutcomeReport)>>,
    issued: Mutex<HashMap<RequestId, Issued>>,
    link: Mutex<ReportLink>,
    hang_signal: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// The kiosk's print directory; the number of PDFs in it is noted at each
    /// payment report, to prove nothing is printed before the payment is reported.
    watched_out: Mutex<Option<PathBuf>>,
    pdfs_at_payment: Mutex<Vec<usize>>,
}

/// Every type with every option, available now, up to 10 copies at 300 yen.
fn full_menu(municipality: MunicipalityCode, route: RouteKind) -> Menu {
    Menu {
        municipality_code: municipality,
        municipality_name: "新宿区".into(),
        route,
        as_of_unix_s: 1_800_000_000,
        open_now: true,
        items: CertificateType::ALL
            .into_iter()
            .map(|certificate| MenuItem {
                certificate,
                title_ja: certificate.title_ja().into(),
                title_en: certificate.title_en().into(),
                fee_yen_per_copy: 300,
                max_copies: 10,
                options: vec![
                    CertificateOption::Household,
                    CertificateOption::SelectedMembers,
                    CertificateOption::Domicile,
                    CertificateOption::Relationship,
                    CertificateOption::PastFiscalYear,
                ],
                hours: ServiceHours::NATIONAL,
                available_now: true,
                unavailable_reason: None,
            })
            .collect(),
    }
}

fn home() -> MunicipalityCode {
    MunicipalityCode::parse(MUNICIPALITY).unwrap()
}

/// 千代田区, a 本籍地 elsewhere.
fn chiyoda() -> MunicipalityCode {
    MunicipalityCode::parse("131016").unwrap()
}

impl FakeCenter {
    fn new(authority: PublicKey, behaviour: Behaviour) -> Self {
        Self {
            authority,
            behaviour,
            challenges: Mutex::new(Vec::new()),
            used_nonces: Mutex::new(HashSet::new()),
            issuances: Mutex::new(Vec::new()),
            card_session_openings: Mutex::new(Vec::new()),
            card_sessions: Mutex::new(HashMap::new()),
            answers: Mutex::new(HashMap::new()),
            menus: Mutex::new(HashMap::new()),
            menu_requests: Mutex::new(Vec::new()),
            registrations: Mutex::new(Vec::new()),
            approved_cards: Mutex::new(HashSet::new()),
            reports: Mutex::new(Vec::new()),
            issued: Mutex::new(HashMap::new()),
            link: Mutex::new(ReportLink::Up),
            hang_signal: Mutex::new(None),
            watched_out: Mutex::new(None),
            pdfs_at_payment: Mutex::new(Vec::new()),
        }
    }

    fn set_link(&self, link: ReportLink) {
        *self.link.lock().unwrap() = link;
    }

    fn reports(&self) -> Vec<(RequestId, OutcomeReport)> {
        self.reports.lock().unwrap().clone()
    }

    fn issued(&self, request_id: RequestId) -> Issued {
        self.issued.lock().unwrap()[&request_id].clone()
    }

    fn ack(request_id: RequestId, issued: &Issued) -> OutcomeAck {
        OutcomeAck {
            request_id,
            status: issued.status,
            paid_yen: issued.paid_yen,
            refund_yen: issued.refund_yen,
            print_outcome: issued.print,
        }
    }

    /// The center's half of the outcome protocol (schemas::outcome), simplified.
    fn process(
        &self,
        request_id: RequestId,
        report: &OutcomeReport,
    ) -> Result<OutcomeAck, ClientError> {
        use IssuanceStatus as S;
        let mut issued = self.issued.lock().unwrap();
        let Some(issuance) = issued.get_mut(&request_id) else {
            return Err(Self::rejected(ErrorCode::NotFound, 404));
        };
        let conflict = || Err(Self::rejected(ErrorCode::OutcomeConflict, 409));
        match report {
            OutcomeReport::Payment(payment) => match (issuance.status, payment.outcome) {
                (S::Prepared, PaymentOutcome::Paid) => {
                    issuance.status = S::Paid;
                    issuance.paid_yen = payment.amount_yen;
                }
                (S::Prepared, _) => issuance.status = S::Voided,
                (S::Paid | S::Printed, PaymentOutcome::Paid) => {}
                (S::Paid, PaymentOutcome::Cancelled) if issuance.print.is_none() => {
                    issuance.status = S::Voided;
                    issuance.refund_yen = issuance.paid_yen;
                }
                (S::Voided, PaymentOutcome::Cancelled | PaymentOutcome::TimedOut) => {}
                _ => return conflict(),
            },
            OutcomeReport::Print(print) => match (issuance.status, print.outcome) {
                (S::Paid, PrintOutcome::Ok) => {
                    issuance.status = S::Printed;
                    issuance.print = Some(PrintOutcome::Ok);
                }
                (S::Paid, PrintOutcome::Failed) => {
                    issuance.status = S::Voided;
                    issuance.refund_yen = issuance.paid_yen;
                    issuance.print = Some(PrintOutcome::Failed);
                }
                (S::Paid, PrintOutcome::Unknown) => issuance.print = Some(PrintOutcome::Unknown),
                (S::Printed, PrintOutcome::Ok) => {}
                (S::Voided, PrintOutcome::Failed) if issuance.print.is_some() => {}
                (S::Prepared, _) => {
                    return Err(Self::rejected(ErrorCode::IllegalTransition, 409));
                }
                _ => return conflict(),
            },
        }
        Ok(Self::ack(request_id, issuance))
    }

    fn report(
        &self,
        request_id: RequestId,
        report: OutcomeReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send + '_ {
        let link = *self.link.lock().unwrap();
        let hang = match link {
            ReportLink::Hang(kind) if kind == report.kind() => {
                self.hang_signal.lock().unwrap().take()
            }
            _ => None,
        };
        if matches!(report, OutcomeReport::Payment(_)) {
            let pdfs = self
                .watched_out
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|dir| std::fs::read_dir(dir).ok())
                .map_or(0, |entries| entries.count());
            self.pdfs_at_payment.lock().unwrap().push(pdfs);
        }
        async move {
            if let Some(signal) = hang {
                let _ = signal.send(());
                std::future::pending::<()>().await;
            }
            let is_print = matches!(report, OutcomeReport::Print(_));
            if link == ReportLink::Down || (link == ReportLink::PrintDown && is_print) {
                return Err(transport_error().await);
            }
            self.reports
                .lock()
                .unwrap()
                .push((request_id, report.clone()));
            let answer = self.process(request_id, &report);
            if link == ReportLink::PaymentAnswersLost && !is_print {
                return Err(transport_error().await);
            }
            answer
        }
    }

    /// Serves `menu` for its municipality and route.
    fn with_menu(self, menu: Menu) -> Self {
        self.menus
            .lock()
            .unwrap()
            .insert((menu.municipality_code, menu.route), menu);
        self
    }

    fn menu_request_count(&self) -> usize {
        self.menu_requests.lock().unwrap().len()
    }

    fn registration_count(&self) -> usize {
        self.registrations.lock().unwrap().len()
    }

    /// What the center checks of a 利用登録: card certificate, the card's signature over
    /// nonce and registration digest, a single-use challenge.
    fn register(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> Result<DomicileRegistrationResponse, ClientError> {
        let Ok(card) = request.card_certificate.verify(&self.authority) else {
            return Err(Self::rejected(ErrorCode::CardCertificateInvalid, 403));
        };
        let digest = registration_digest(
            &request.kiosk_id,
            &request.idempotency_key,
            &request.registration,
        )
        .unwrap();
        let message = CardAuthMessage {
            nonce: request.challenge_nonce.clone(),
            order_digest: digest,
        };
        if card
            .public_key
            .verify(&message.signed_bytes().unwrap(), &request.card_signature)
            .is_err()
        {
            return Err(Self::rejected(ErrorCode::CardSignatureInvalid, 403));
        }
        let nonce = &request.challenge_nonce.0;
        if !self.challenges.lock().unwrap().contains(nonce)
            || !self.used_nonces.lock().unwrap().insert(nonce.clone())
        {
            return Err(Self::rejected(ErrorCode::ChallengeUsed, 409));
        }
        let approved = self
            .approved_cards
            .lock()
            .unwrap()
            .contains(card.serial.as_str());
        Ok(DomicileRegistrationResponse {
            registration_id: RequestId::new_random(),
            municipality_code: request.registration.municipality_code,
            municipality_name: "千代田区".into(),
            status: if approved {
                DomicileRegistrationStatus::Approved
            } else {
                DomicileRegistrationStatus::Pending
            },
            message_ja: "受け付けました。".into(),
            message_en: "Received.".into(),
        })
    }

    fn challenge_count(&self) -> usize {
        self.challenges.lock().unwrap().len()
    }

    fn issuance_count(&self) -> usize {
        self.issuances.lock().unwrap().len()
    }

    fn rejected(code: ErrorCode, status: u16) -> ClientError {
        ClientError::Rejected {
            endpoint: "/v1/issuances".into(),
            status,
            body: ErrorBody {
                code,
                message: "fake center".into(),
                request_id: None,
            },
        }
    }

    /// What the real center checks of a card-session opening: card certificate, the
    /// card's signature over nonce and session digest, a single-use challenge; the same
    /// visit key answers the same session.
    fn open(&self, request: &CardSessionRequest) -> Result<CardSessionResponse, ClientError> {
        self.card_session_openings
            .lock()
            .unwrap()
            .push(request.clone());
        let Ok(card) = request.card_certificate.verify(&self.authority) else {
            return Err(Self::rejected(ErrorCode::CardCertificateInvalid, 403));
        };
        let message = CardAuthMessage {
            nonce: request.challenge_nonce.clone(),
            order_digest: card_session_digest(&request.kiosk_id, &request.visit_key).unwrap(),
        };
        if card
            .public_key
            .verify(&message.signed_bytes().unwrap(), &request.card_signature)
            .is_err()
        {
            return Err(Self::rejected(ErrorCode::CardSignatureInvalid, 403));
        }
        let nonce = &request.challenge_nonce.0;
        if !self.challenges.lock().unwrap().contains(nonce)
            || !self.used_nonces.lock().unwrap().insert(nonce.clone())
        {
            return Err(Self::rejected(ErrorCode::ChallengeUsed, 409));
        }
        if self.behaviour == Behaviour::RevokedCard {
            return Err(Self::rejected(ErrorCode::CardRevoked, 403));
        }
        let mut sessions = self.card_sessions.lock().unwrap();
        let session = sessions
            .entry(request.visit_key.to_string())
            .or_insert_with(|| FakeCardSession {
                id: CardSessionId::new_random(),
                kiosk_id: request.kiosk_id.clone(),
                serial: card.serial.as_str().to_owned(),
                orders_left: FAKE_ORDERS_PER_SESSION,
            });
        if session.serial != card.serial.as_str() {
            return Err(Self::rejected(ErrorCode::IdempotencyConflict, 409));
        }
        Ok(CardSessionResponse {
            card_session_id: session.id,
            card_municipality: card.municipality_code,
            expires_at_unix_s: 4_000_000_000,
            orders_left: session.orders_left,
        })
    }

    fn card_session_count(&self) -> usize {
        self.card_sessions.lock().unwrap().len()
    }

    fn answer(&self, request: &IssuanceRequest) -> Result<IssuanceResponse, ClientError> {
        // What the real center checks about the card, so the kiosk's signing is tested.
        let proof = match &request.card {
            CardProof::Signed(proof) => proof,
            CardProof::Session(reference) => return self.answer_on_session(request, reference),
        };
        let Ok(card) = proof.card_certificate.verify(&self.authority) else {
            return Err(Self::rejected(ErrorCode::CardCertificateInvalid, 403));
        };
        let digest =
            order_digest(&request.kiosk_id, &request.idempotency_key, &request.order).unwrap();
        let message = CardAuthMessage {
            nonce: proof.challenge_nonce.clone(),
            order_digest: digest,
        };
        if card
            .public_key
            .verify(&message.signed_bytes().unwrap(), &proof.card_signature)
            .is_err()
        {
            return Err(Self::rejected(ErrorCode::CardSignatureInvalid, 403));
        }
        // Single-use challenges, consumed before the idempotency look-up (as the center does).
        let nonce = &proof.challenge_nonce.0;
        if !self.challenges.lock().unwrap().contains(nonce) {
            return Err(Self::rejected(ErrorCode::ChallengeUnknown, 400));
        }
        if !self.used_nonces.lock().unwrap().insert(nonce.clone()) {
            return Err(Self::rejected(ErrorCode::ChallengeUsed, 409));
        }
        let key = request.idempotency_key.to_string();
        if let Some(stored) = self.answers.lock().unwrap().get(&key) {
            return Ok(stored.clone());
        }
        let response = self.compose(request);
        if let IssuanceResponse::Prepared { request_id, .. } = &response {
            let status = if self.behaviour == Behaviour::PaymentTimeoutAtCenter {
                IssuanceStatus::Voided
            } else {
                IssuanceStatus::Prepared
            };
            self.issued
                .lock()
                .unwrap()
                .entry(*request_id)
                .or_insert(Issued {
                    status,
                    paid_yen: 0,
                    refund_yen: 0,
                    print: None,
                });
        }
        self.answers.lock().unwrap().insert(key, response.clone());
        Ok(response)
    }

    /// An order riding on a card session of this kiosk with orders left; a replay
    /// (same key) uses none.
    fn answer_on_session(
        &self,
        request: &IssuanceRequest,
        reference: &CardSessionRef,
    ) -> Result<IssuanceResponse, ClientError> {
        let key = request.idempotency_key.to_string();
        let mut sessions = self.card_sessions.lock().unwrap();
        let Some(session) = sessions
            .values_mut()
            .find(|s| s.id == reference.card_session_id && s.kiosk_id == request.kiosk_id)
        else {
            return Err(Self::rejected(ErrorCode::CardSessionInvalid, 401));
        };
        if let Some(stored) = self.answers.lock().unwrap().get(&key) {
            return Ok(stored.clone());
        }
        if session.orders_left == 0 {
            return Err(Self::rejected(ErrorCode::CardSessionInvalid, 401));
        }
        session.orders_left -= 1;
        let response = self.compose(request);
        if let IssuanceResponse::Prepared { request_id, .. } = &response {
            self.issued.lock().unwrap().insert(
                *request_id,
                Issued {
                    status: IssuanceStatus::Prepared,
                    paid_yen: 0,
                    refund_yen: 0,
                    print: None,
                },
            );
        }
        self.answers.lock().unwrap().insert(key, response.clone());
        Ok(response)
    }

    fn compose(&self, request: &IssuanceRequest) -> IssuanceResponse {
        let request_id = match self.behaviour {
            Behaviour::FixedRequestId(id) => id,
            _ => RequestId::new_random(),
        };
        if self.behaviour == Behaviour::Refuse {
            return IssuanceResponse::Refused {
                request_id,
                reason: RefusalReason::SupportMeasures,
                // A center that leaks detail: the kiosk must not show it.
                message_ja: "支援措置のため発行できません".into(),
                message_en: "support measures".into(),
            };
        }
        let ours = Some(request_id.to_string());
        let pages = if self.behaviour == Behaviour::ForeignPage {
            vec![
                ours.clone(),
                Some(RequestId::new_random().to_string()),
                ours,
            ]
        } else {
            vec![ours; 2 * usize::from(request.order.copies)]
        };
        let pdf = build_pdf(&pages);
        let copies = match self.behaviour {
            Behaviour::WrongCopies => request.order.copies + 1,
            _ => request.order.copies,
        };
        IssuanceResponse::Prepared {
            request_id,
            municipality_code: match request.order.route {
                Route::Residence => home(),
                Route::Domicile { municipality_code } => municipality_code,
            },
            municipality_name: "新宿区".into(),
            certificate_title: request.order.certificate.title_ja().into(),
            copies,
            fee_yen_per_copy: 300,
            total_fee_yen: 300 * u32::from(copies),
            document: DocumentPdf {
                sha256: Digest32::of(&pdf),
                page_count: u32::try_from(pages.len()).unwrap(),
                pdf: pdf.into(),
            },
        }
    }
}

/// A real transport error: connection refused on a port nobody listens on.
async fn transport_error() -> ClientError {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1/issuances");
    let source = reqwest::Client::new().post(&url).send().await.unwrap_err();
    ClientError::Transport {
        endpoint: url,
        source,
    }
}

impl CenterApi for FakeCenter {
    fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> impl Future<Output = Result<CardSessionResponse, ClientError>> + Send {
        let first = self.card_session_openings.lock().unwrap().is_empty();
        let answer = self.open(request);
        let lose = first && self.behaviour == Behaviour::LoseFirstCardSessionAnswer;
        async move {
            if lose {
                return Err(transport_error().await);
            }
            answer
        }
    }

    fn request_challenge(
        &self,
        _request: &ChallengeRequest,
    ) -> impl Future<Output = Result<ChallengeResponse, ClientError>> + Send {
        let mut nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        if self.behaviour != Behaviour::ShortNonce {
            nonce.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        let first = {
            let mut challenges = self.challenges.lock().unwrap();
            challenges.push(nonce.clone());
            challenges.len() == 1
        };
        let lose = first && self.behaviour == Behaviour::LoseFirstChallenge;
        async move {
            if lose {
                return Err(transport_error().await);
            }
            Ok(ChallengeResponse {
                nonce: nonce.into(),
                expires_at_unix_s: 4_000_000_000,
            })
        }
    }

    fn request_issuance(
        &self,
        request: &IssuanceRequest,
    ) -> impl Future<Output = Result<IssuanceResponse, ClientError>> + Send {
        let sends = {
            let mut issuances = self.issuances.lock().unwrap();
            issuances.push(request.clone());
            u32::try_from(issuances.len()).unwrap()
        };
        async move {
            let answer = self.answer(request);
            if let Behaviour::DropFirst(n) = self.behaviour {
                if sends <= n {
                    return Err(transport_error().await);
                }
            }
            answer
        }
    }

    fn municipalities(
        &self,
    ) -> impl Future<Output = Result<MunicipalityDirectory, ClientError>> + Send {
        let directory = MunicipalityDirectory {
            municipalities: vec![MunicipalityEntry {
                code: home(),
                name: "新宿区".into(),
            }],
        };
        async move { Ok(directory) }
    }

    fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> impl Future<Output = Result<Menu, ClientError>> + Send {
        self.menu_requests
            .lock()
            .unwrap()
            .push((municipality, route));
        let menu = self
            .menus
            .lock()
            .unwrap()
            .get(&(municipality, route))
            .cloned()
            .unwrap_or_else(|| full_menu(municipality, route));
        async move { Ok(menu) }
    }

    fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> impl Future<Output = Result<DomicileRegistrationResponse, ClientError>> + Send {
        self.registrations.lock().unwrap().push(request.clone());
        let answer = self.register(request);
        async move { answer }
    }

    fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send {
        self.report(request_id, OutcomeReport::Payment(report.clone()))
    }

    fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send {
        self.report(request_id, OutcomeReport::Print(report.clone()))
    }
}

fn order(copies: u8) -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: true,
        },
        copies,
    }
}

fn kiosk(fixture: &Fixture, behaviour: Behaviour) -> Kiosk<FakeCenter> {
    Kiosk::new(
        KioskId::parse("tokyo-0001").unwrap(),
        FakeCenter::new(fixture.authority.public(), behaviour),
    )
}

/// A kiosk whose center serves `menu` (for its municipality and route).
fn kiosk_with_menu(fixture: &Fixture, menu: Menu) -> Kiosk<FakeCenter> {
    Kiosk::new(
        KioskId::parse("tokyo-0001").unwrap(),
        FakeCenter::new(fixture.authority.public(), Behaviour::Honest).with_menu(menu),
    )
}

#[tokio::test]
async fn honest_center_prints_a_checked_document() {
    let dir = TempDir::new("flow-ok");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);

    let outcome = kiosk.issue(&card, PIN, order(2), &out).await.unwrap();
    let IssueOutcome::Printed(printed) = outcome else {
        panic!("expected a print, got {outcome:?}");
    };
    assert_eq!(printed.copies, 2);
    assert_eq!(printed.total_fee_yen, 600);
    assert_eq!(printed.page_count, 4);
    assert_eq!(
        printed.pdf_path,
        out.join(format!("{}.pdf", printed.request_id))
    );
    let bytes = std::fs::read(&printed.pdf_path).unwrap();
    assert_eq!(Digest32::of(&bytes), printed.sha256);
    assert_eq!(
        kiosk.history(),
        [
            KioskState::Idle,
            KioskState::CardPlaced,
            KioskState::PinVerified,
            KioskState::Ordered,
            KioskState::Prepared,
            KioskState::Paid,
            KioskState::Printed
        ]
    );
    assert!(!printed.print_report_queued);
    assert_eq!(kiosk.center().challenge_count(), 1);
    assert_eq!(kiosk.center().issuance_count(), 1);
    let sent = kiosk.center().issuances.lock().unwrap()[0].clone();
    assert_eq!(sent.idempotency_key, printed.idempotency_key);
    assert_eq!(sent.kiosk_id.as_str(), "tokyo-0001");
    // The one-call path keeps the card in the reader and has it sign the order.
    assert!(matches!(sent.card, CardProof::Signed(_)), "{:?}", sent.card);
    assert!(kiosk
        .center()
        .card_session_openings
        .lock()
        .unwrap()
        .is_empty());

    // A second session gets a new idempotency key and a new document.
    let again = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert_ne!(again.request_id(), printed.request_id);
    assert_eq!(kiosk.state(), KioskState::Printed);
}

#[tokio::test]
async fn a_page_of_another_request_is_never_printed() {
    let dir = TempDir::new("flow-foreign");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::ForeignPage);

    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert!(
        matches!(
            &error,
            KioskError::DocumentNotOurs {
                source: kiosk_sim::DocumentCheckError::ForeignPage { page: 2, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "document_not_ours");
    assert!(error.request_id().is_some());
    assert_eq!(kiosk.state(), KioskState::Failed);
    assert!(!kiosk.history().contains(&KioskState::Prepared));
    // Nothing written at all.
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[tokio::test]
async fn wrong_pin_stops_before_any_request_and_three_lock() {
    let dir = TempDir::new("flow-pin");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);

    for expected_left in [2u8, 1] {
        let error = kiosk
            .issue(&card, "0000", order(1), &out)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            KioskError::Card(CardError::WrongPin { attempts_left }) if attempts_left == expected_left
        ));
        assert_eq!(error.code(), "wrong_pin");
        assert_eq!(kiosk.state(), KioskState::Failed);
    }
    let error = kiosk
        .issue(&card, "0000", order(1), &out)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "card_locked");
    assert_eq!(kiosk.state(), KioskState::Locked);
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert!(matches!(error, KioskError::Card(CardError::Locked)));
    assert_eq!(kiosk.state(), KioskState::Locked);

    // Not one message reached the center.
    assert_eq!(kiosk.center().challenge_count(), 0);
    assert_eq!(kiosk.center().issuance_count(), 0);
    assert_eq!(read_card_file(&card).pin_attempts_left, 0);
}

#[tokio::test]
async fn a_pin_that_is_not_four_digits_costs_nothing() {
    let dir = TempDir::new("flow-format");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);
    let error = kiosk
        .issue(&card, "47210", order(1), dir.path())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "bad_pin_format");
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
    assert_eq!(kiosk.center().challenge_count(), 0);
}

#[tokio::test]
async fn refusal_shows_only_the_generic_message() {
    let dir = TempDir::new("flow-refused");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::Refuse);

    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let IssueOutcome::Refused {
        reason,
        message_ja,
        message_en,
        ..
    } = &outcome
    else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert_eq!(*reason, RefusalReason::SupportMeasures);
    assert_eq!(*message_ja, RefusalReason::RESIDENT_MESSAGE_JA);
    assert_eq!(*message_en, RefusalReason::RESIDENT_MESSAGE_EN);
    assert_eq!(kiosk.state(), KioskState::Refused);
    assert!(!out.exists());
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["status"], "refused");
    assert_eq!(json["reason"], "support_measures");
}

#[tokio::test]
async fn an_answer_that_does_not_match_the_order_is_not_printed() {
    let dir = TempDir::new("flow-mismatch");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::WrongCopies);
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert!(matches!(
        error,
        KioskError::AnswerMismatch {
            field: "copies",
            ..
        }
    ));
    assert!(!out.exists());
}

#[tokio::test]
async fn the_same_request_id_twice_is_not_printed_twice() {
    let dir = TempDir::new("flow-twice");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let fixed = RequestId::new_random();
    let mut kiosk = kiosk(&fixture, Behaviour::FixedRequestId(fixed));
    kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let first = std::fs::read(out.join(format!("{fixed}.pdf"))).unwrap();
    // The center says the issuance is already printed: the second fee goes back and
    // nothing is printed again.
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert!(
        matches!(
            outcome,
            IssueOutcome::Refunded { request_id, cause: RefundCause::PaymentDeclined, refund_yen: 300, .. }
                if request_id == fixed
        ),
        "{outcome:?}"
    );
    assert_eq!(kiosk.state(), KioskState::Voided);
    // The first print is untouched.
    assert_eq!(
        std::fs::read(out.join(format!("{fixed}.pdf"))).unwrap(),
        first
    );
}

#[tokio::test]
async fn a_lost_answer_is_ordered_again_under_the_same_key() {
    let dir = TempDir::new("flow-retry");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::DropFirst(1));
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert!(matches!(outcome, IssueOutcome::Printed(_)));
    let sent = kiosk.center().issuances.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    // Same key and order, so the center replays its first answer...
    assert_eq!(sent[0].idempotency_key, sent[1].idempotency_key);
    assert_eq!(sent[0].order, sent[1].order);
    let answers = kiosk.center().answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 1);
    let Some(IssuanceResponse::Prepared { request_id, .. }) = answers.values().next() else {
        panic!("expected a stored Prepared answer");
    };
    assert_eq!(outcome.request_id(), *request_id);
    // ...under a fresh single-use challenge, signed again by the card.
    let (CardProof::Signed(first), CardProof::Signed(second)) = (&sent[0].card, &sent[1].card)
    else {
        panic!("the one-call path signs every order with the card");
    };
    assert_ne!(first.challenge_nonce, second.challenge_nonce);
    assert_ne!(first.card_signature, second.card_signature);
    assert_eq!(kiosk.center().challenge_count(), 2);
    // No PIN was asked again and the counter is intact.
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
}

#[tokio::test]
async fn a_lost_challenge_is_asked_again() {
    let dir = TempDir::new("flow-challenge");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::LoseFirstChallenge);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert!(matches!(outcome, IssueOutcome::Printed(_)));
    assert_eq!(kiosk.center().challenge_count(), 2);
    assert_eq!(kiosk.center().issuance_count(), 1);
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
}

#[tokio::test]
async fn no_answer_at_all_fails_as_unreachable() {
    let dir = TempDir::new("flow-down");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::DropFirst(5)).with_issuance_attempts(2);
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert_eq!(error.code(), "center_unreachable");
    assert_eq!(kiosk.center().issuance_count(), 2);
    assert_eq!(kiosk.state(), KioskState::Failed);
    assert!(!out.exists());
}

#[tokio::test]
async fn a_short_nonce_is_not_signed() {
    let dir = TempDir::new("flow-nonce");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::ShortNonce);
    let error = kiosk
        .issue(&card, PIN, order(1), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        KioskError::MalformedChallenge { len_bytes: 16 }
    ));
    assert_eq!(kiosk.center().issuance_count(), 0);
}

#[tokio::test]
async fn invalid_orders_never_reach_the_pin_pad() {
    let dir = TempDir::new("flow-order");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);
    let error = kiosk
        .issue(&card, "0000", order(11), dir.path())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_order");
    // The wrong PIN was never tried.
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
}

// --- The menu check: refused at the kiosk before the PIN, the card never signs ---

/// Asserts that nothing past the menu happened: the PIN was not tried (the wrong PIN
/// given would have cost an attempt), no challenge was asked, nothing was signed or
/// sent, nothing printed.
fn assert_stopped_at_the_menu(
    kiosk: &Kiosk<FakeCenter>,
    card: &std::path::Path,
    out: &std::path::Path,
) {
    assert_eq!(
        read_card_file(card).pin_attempts_left,
        3,
        "the PIN was tried"
    );
    assert_eq!(kiosk.center().menu_request_count(), 1);
    assert_eq!(kiosk.center().challenge_count(), 0, "a challenge was asked");
    assert_eq!(kiosk.center().issuance_count(), 0, "an order was sent");
    assert_eq!(kiosk.state(), KioskState::Failed);
    assert!(!kiosk.history().contains(&KioskState::PinVerified));
    assert!(!out.exists());
}

#[tokio::test]
async fn a_type_not_on_the_menu_is_refused_before_the_pin() {
    let dir = TempDir::new("menu-type");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut menu = full_menu(home(), RouteKind::Residence);
    menu.items
        .retain(|item| item.certificate != CertificateType::TaxPayment);
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let order = CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::TaxPayment { fiscal_year: None },
        copies: 1,
    };
    let error = kiosk.issue(&card, "0000", order, &out).await.unwrap_err();
    assert!(
        matches!(
            &error,
            KioskError::NotOnMenu(MenuRefusal::NotOffered {
                certificate: CertificateType::TaxPayment,
                route: RouteKind::Residence,
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "type_not_offered");
    assert!(error.to_string().contains("納税証明書"));
    assert_stopped_at_the_menu(&kiosk, &card, &out);
    // Another type of the same menu goes through.
    let outcome = kiosk
        .issue(&card, PIN, order_of_type(), &out)
        .await
        .unwrap();
    assert!(matches!(outcome, IssueOutcome::Printed(_)));
}

fn order_of_type() -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::IncomeTax { fiscal_year: None },
        copies: 1,
    }
}

#[tokio::test]
async fn a_type_not_available_now_is_refused_before_the_pin() {
    let dir = TempDir::new("menu-hours");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut menu = full_menu(home(), RouteKind::Residence);
    for item in &mut menu.items {
        if item.certificate == CertificateType::ResidentRecord {
            item.available_now = false;
            item.unavailable_reason = Some(RefusalReason::OutOfHours);
        }
    }
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let error = kiosk
        .issue(&card, "0000", order(1), &out)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_available_now", "{error:?}");
    assert!(matches!(
        error,
        KioskError::NotOnMenu(MenuRefusal::NotAvailableNow {
            reason: Some(RefusalReason::OutOfHours),
            ..
        })
    ));
    assert_stopped_at_the_menu(&kiosk, &card, &out);
}

#[tokio::test]
async fn a_closed_municipality_refuses_every_type() {
    let dir = TempDir::new("menu-closed");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut menu = full_menu(home(), RouteKind::Residence);
    menu.open_now = false;
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let error = kiosk
        .issue(&card, "0000", order(1), &out)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "not_available_now");
    assert_stopped_at_the_menu(&kiosk, &card, &out);
}

#[tokio::test]
async fn more_copies_than_the_menu_allows_are_refused_before_the_pin() {
    let dir = TempDir::new("menu-copies");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut menu = full_menu(home(), RouteKind::Residence);
    for item in &mut menu.items {
        item.max_copies = 2;
    }
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let error = kiosk
        .issue(&card, "0000", order(3), &out)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KioskError::NotOnMenu(MenuRefusal::TooManyCopies {
                copies: 3,
                max_copies: 2,
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "too_many_copies");
    assert_stopped_at_the_menu(&kiosk, &card, &out);
    // The maximum itself is fine.
    let outcome = kiosk.issue(&card, PIN, order(2), &out).await.unwrap();
    assert!(matches!(outcome, IssueOutcome::Printed(doc) if doc.copies == 2));
}

#[tokio::test]
async fn an_option_not_offered_is_refused_before_the_pin() {
    let dir = TempDir::new("menu-option");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut menu = full_menu(home(), RouteKind::Residence);
    for item in &mut menu.items {
        item.options.retain(|o| *o != CertificateOption::Household);
    }
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let household = CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::Household,
            include_domicile: false,
            include_relationship: false,
        },
        copies: 1,
    };
    let error = kiosk
        .issue(&card, "0000", household, &out)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            KioskError::NotOnMenu(MenuRefusal::OptionNotOffered {
                option: CertificateOption::Household,
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "type_not_offered");
    assert_stopped_at_the_menu(&kiosk, &card, &out);
}

#[tokio::test]
async fn the_domicile_route_checks_the_domicile_municipalitys_menu() {
    let dir = TempDir::new("menu-domicile");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    // The 本籍地 offers only 戸籍全部事項証明書.
    let mut menu = full_menu(chiyoda(), RouteKind::Domicile);
    menu.items
        .retain(|item| item.certificate == CertificateType::FamilyRegisterAll);
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let route = Route::Domicile {
        municipality_code: chiyoda(),
    };
    let individual = CertificateOrder {
        route,
        certificate: CertificateKind::FamilyRegisterIndividual,
        copies: 1,
    };
    let error = kiosk.issue(&card, PIN, individual, &out).await.unwrap_err();
    assert_eq!(error.code(), "type_not_offered");
    assert_eq!(kiosk.center().challenge_count(), 0);

    let all = CertificateOrder {
        route,
        certificate: CertificateKind::FamilyRegisterAll,
        copies: 1,
    };
    let outcome = kiosk.issue(&card, PIN, all, &out).await.unwrap();
    let IssueOutcome::Printed(doc) = outcome else {
        panic!("expected a print, got {outcome:?}");
    };
    assert_eq!(doc.municipality_code, chiyoda());
    assert_eq!(
        kiosk.center().menu_requests.lock().unwrap().clone(),
        vec![
            (chiyoda(), RouteKind::Domicile),
            (chiyoda(), RouteKind::Domicile)
        ]
    );
}

#[tokio::test]
async fn a_menu_for_another_municipality_is_not_trusted() {
    let dir = TempDir::new("menu-foreign");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let center = FakeCenter::new(fixture.authority.public(), Behaviour::Honest);
    // The center answers the home municipality's menu with 千代田区's.
    center.menus.lock().unwrap().insert(
        (home(), RouteKind::Residence),
        full_menu(chiyoda(), RouteKind::Residence),
    );
    let mut kiosk = Kiosk::new(KioskId::parse("tokyo-0001").unwrap(), center);
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert_eq!(error.code(), "center_protocol_error", "{error:?}");
    assert_eq!(kiosk.center().challenge_count(), 0);
}

// --- 本籍地 利用登録 ---

fn registration() -> DomicileRegistration {
    DomicileRegistration {
        municipality_code: chiyoda(),
        domicile: "東京都千代田区千代田1番".into(),
        domicile_head: "山田 太郎".into(),
    }
}

#[tokio::test]
async fn a_registration_is_signed_by_the_card_and_answered_pending() {
    let dir = TempDir::new("register-ok");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);

    let response = kiosk
        .register_domicile(&card, PIN, registration())
        .await
        .unwrap();
    assert_eq!(response.status, DomicileRegistrationStatus::Pending);
    assert_eq!(response.municipality_code, chiyoda());
    assert_eq!(
        kiosk.history(),
        [
            KioskState::Idle,
            KioskState::CardPlaced,
            KioskState::PinVerified,
            KioskState::Ordered,
            KioskState::Registered
        ]
    );
    let sent = kiosk.center().registrations.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].registration, registration());
    assert_eq!(sent[0].kiosk_id.as_str(), "tokyo-0001");

    // Once the 本籍地 approved the card, registering again says so.
    kiosk
        .center()
        .approved_cards
        .lock()
        .unwrap()
        .insert(fixture.card_file.certificate.payload.serial.to_string());
    let again = kiosk
        .register_domicile(&card, PIN, registration())
        .await
        .unwrap();
    assert_eq!(again.status, DomicileRegistrationStatus::Approved);
    let sent = kiosk.center().registrations.lock().unwrap().clone();
    assert_ne!(sent[0].idempotency_key, sent[1].idempotency_key);
}

#[tokio::test]
async fn a_registration_with_a_wrong_pin_sends_nothing() {
    let dir = TempDir::new("register-pin");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);
    let error = kiosk
        .register_domicile(&card, "0000", registration())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        KioskError::Card(CardError::WrongPin { attempts_left: 2 })
    ));
    assert_eq!(kiosk.center().challenge_count(), 0);
    assert_eq!(kiosk.center().registration_count(), 0);
    assert_eq!(kiosk.state(), KioskState::Failed);
}

#[tokio::test]
async fn an_empty_domicile_is_refused_before_the_pin() {
    let dir = TempDir::new("register-empty");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);
    let mut entry = registration();
    entry.domicile = "  ".into();
    let error = kiosk
        .register_domicile(&card, "0000", entry)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_order");
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
    assert_eq!(kiosk.center().registration_count(), 0);
}

#[tokio::test]
async fn a_lost_challenge_during_registration_is_asked_again() {
    let dir = TempDir::new("register-retry");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    // The first challenge gets no answer: asked again, then the registration goes out.
    let mut kiosk = kiosk(&fixture, Behaviour::LoseFirstChallenge);
    let response = kiosk
        .register_domicile(&card, PIN, registration())
        .await
        .unwrap();
    assert_eq!(response.status, DomicileRegistrationStatus::Pending);
    assert_eq!(kiosk.center().challenge_count(), 2);
    assert_eq!(kiosk.center().registration_count(), 1);
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
}

#[tokio::test]
async fn a_fee_other_than_the_menu_showed_is_not_printed() {
    let dir = TempDir::new("menu-fee");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    // The menu shows 200 yen; the fake center charges 300.
    let mut menu = full_menu(home(), RouteKind::Residence);
    for item in &mut menu.items {
        item.fee_yen_per_copy = 200;
    }
    let mut kiosk = kiosk_with_menu(&fixture, menu);
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert!(
        matches!(
            &error,
            KioskError::AnswerMismatch {
                field: "fee_yen_per_copy",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!out.exists());
}

// --- Payment, printing and the outcome outbox ---

/// (kind, outcome, amount for payments, repeat) of each report the center received.
fn summary_of(reports: &[(RequestId, OutcomeReport)]) -> Vec<(&'static str, String, u32, bool)> {
    reports
        .iter()
        .map(|(_, report)| match report {
            OutcomeReport::Payment(p) => ("payment", report.outcome_str(), p.amount_yen, p.repeat),
            OutcomeReport::Print(p) => ("print", report.outcome_str(), 0, p.repeat),
        })
        .collect()
}

fn persistent(
    fixture: &Fixture,
    state: &std::path::Path,
    behaviour: Behaviour,
) -> Kiosk<FakeCenter> {
    kiosk(fixture, behaviour).with_state_dir(state).unwrap()
}

/// The same center, a new kiosk process on the same state directory.
fn restart(kiosk: Kiosk<FakeCenter>, state: &std::path::Path) -> Kiosk<FakeCenter> {
    let id = kiosk.kiosk_id().clone();
    Kiosk::new(id, kiosk.into_center())
        .with_state_dir(state)
        .unwrap()
}

fn pdf_count(out: &std::path::Path) -> usize {
    std::fs::read_dir(out).map_or(0, |entries| entries.count())
}

#[tokio::test]
async fn payment_is_reported_and_acknowledged_before_anything_is_printed() {
    let dir = TempDir::new("pay-ok");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = persistent(&fixture, &dir.path().join("state"), Behaviour::Honest);
    *kiosk.center().watched_out.lock().unwrap() = Some(out.clone());

    let outcome = kiosk.issue(&card, PIN, order(2), &out).await.unwrap();
    let IssueOutcome::Printed(doc) = outcome else {
        panic!("expected a print, got {outcome:?}");
    };
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [
            ("payment", "paid".to_owned(), 600, false),
            ("print", "ok".to_owned(), 0, false)
        ]
    );
    // No PDF existed when the payment was reported.
    assert_eq!(*kiosk.center().pdfs_at_payment.lock().unwrap(), [0]);
    assert!(doc.pdf_path.exists());
    let issued = kiosk.center().issued(doc.request_id);
    assert_eq!(issued.status, IssuanceStatus::Printed);
    assert_eq!(issued.paid_yen, 600);
    assert!(kiosk.outbox().is_empty());
}

#[tokio::test]
async fn a_payment_the_center_does_not_acknowledge_as_paid_is_refunded_unprinted() {
    let dir = TempDir::new("pay-declined");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    // The center's payment timeout voided the issuance: `paid` is outcome_conflict.
    let mut kiosk = kiosk(&fixture, Behaviour::PaymentTimeoutAtCenter);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert!(
        matches!(
            outcome,
            IssueOutcome::Refunded {
                cause: RefundCause::PaymentDeclined,
                refund_yen: 300,
                report_queued: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(pdf_count(&out), 0);
    assert_eq!(kiosk.state(), KioskState::Voided);
    assert!(!kiosk.history().contains(&KioskState::Paid));
    // Only the payment report went out; the conflict is final, so nothing stays queued.
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [("payment", "paid".to_owned(), 300, false)]
    );
    assert!(kiosk.outbox().is_empty());
}

#[tokio::test]
async fn a_cancelled_or_timed_out_payment_prints_nothing() {
    for (payment, wire, expected) in [
        (
            SimulatedPayment::Cancels,
            "cancelled",
            PaymentOutcome::Cancelled,
        ),
        (
            SimulatedPayment::TimesOut,
            "timed_out",
            PaymentOutcome::TimedOut,
        ),
    ] {
        let dir = TempDir::new("pay-cancel");
        let fixture = Fixture::new();
        let card = fixture.write_card(dir.path());
        let out = dir.path().join("out");
        let mut kiosk = kiosk(&fixture, Behaviour::Honest).with_payment(payment);
        let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
        let IssueOutcome::Voided {
            request_id,
            payment: reported,
            report_queued,
            ..
        } = outcome
        else {
            panic!("expected voided, got {outcome:?}");
        };
        assert_eq!(reported, expected);
        assert!(!report_queued);
        assert_eq!(
            summary_of(&kiosk.center().reports()),
            [("payment", wire.to_owned(), 0, false)]
        );
        assert_eq!(
            kiosk.center().issued(request_id).status,
            IssuanceStatus::Voided
        );
        assert_eq!(pdf_count(&out), 0);
        assert_eq!(kiosk.state(), KioskState::Voided);
    }
}

#[tokio::test]
async fn a_jam_before_the_first_page_is_reported_failed_and_refunded() {
    let dir = TempDir::new("print-jam");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk =
        kiosk(&fixture, Behaviour::Honest).with_printer(SimulatedPrinter::JamsBeforeFirstPage);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let IssueOutcome::Refunded {
        request_id,
        refund_yen,
        cause,
        ..
    } = outcome
    else {
        panic!("expected a refund, got {outcome:?}");
    };
    assert_eq!((refund_yen, cause), (300, RefundCause::PrintFailed));
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [
            ("payment", "paid".to_owned(), 300, false),
            ("print", "failed".to_owned(), 0, false)
        ]
    );
    let issued = kiosk.center().issued(request_id);
    assert_eq!(
        (issued.status, issued.refund_yen),
        (IssuanceStatus::Voided, 300)
    );
    assert_eq!(pdf_count(&out), 0);
}

#[tokio::test]
async fn power_loss_is_reported_unknown_and_the_printers_later_answer_resolves_it() {
    let dir = TempDir::new("print-power");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::Honest).with_printer(SimulatedPrinter::LosesPower);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let IssueOutcome::PrintUnknown {
        request_id,
        paid_yen,
        report_queued,
        ..
    } = outcome
    else {
        panic!("expected unknown, got {outcome:?}");
    };
    assert_eq!((paid_yen, report_queued), (300, false));
    assert_eq!(kiosk.state(), KioskState::PrintUnknown);
    let issued = kiosk.center().issued(request_id);
    assert_eq!(issued.status, IssuanceStatus::Paid);
    assert_eq!(issued.print, Some(PrintOutcome::Unknown));

    let ack = kiosk
        .resolve_print(request_id, PrintOutcome::Ok)
        .await
        .unwrap()
        .expect("acknowledged");
    assert_eq!(ack.status, IssuanceStatus::Printed);
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [
            ("payment", "paid".to_owned(), 300, false),
            ("print", "unknown".to_owned(), 0, false),
            ("print", "ok".to_owned(), 0, false)
        ]
    );
    assert!(kiosk.outbox().is_empty());
}

#[tokio::test]
async fn a_lost_payment_report_refunds_queues_cancelled_and_prints_nothing() {
    let dir = TempDir::new("pay-lost");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = persistent(&fixture, &dir.path().join("state"), Behaviour::Honest);
    kiosk.center().set_link(ReportLink::PaymentAnswersLost);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let IssueOutcome::Refunded {
        request_id,
        refund_yen,
        cause,
        report_queued,
        ..
    } = outcome
    else {
        panic!("expected a refund, got {outcome:?}");
    };
    assert_eq!(
        (refund_yen, cause, report_queued),
        (300, RefundCause::PaymentNotAcknowledged, true)
    );
    assert_eq!(pdf_count(&out), 0);
    assert!(!kiosk.history().contains(&KioskState::Paid));
    let queued = kiosk.outbox().entries();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].request_id, request_id);
    assert_eq!(queued[0].report.outcome_str(), "cancelled");
    // The center did record `paid`, then the `cancelled` sent at once (only the
    // answers were lost): voided with a refund record.
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [
            ("payment", "paid".to_owned(), 300, false),
            ("payment", "cancelled".to_owned(), 0, false)
        ]
    );
    let issued = kiosk.center().issued(request_id);
    assert_eq!(
        (issued.status, issued.refund_yen),
        (IssuanceStatus::Voided, 300)
    );

    // The queued `cancelled` is re-sent until acknowledged.
    kiosk.center().set_link(ReportLink::Up);
    let summary = kiosk.flush_outbox().await.unwrap();
    assert_eq!(summary.pending, 0);
    assert_eq!(summary.acknowledged.len(), 1);
    let issued = kiosk.center().issued(request_id);
    assert_eq!(
        (issued.status, issued.refund_yen),
        (IssuanceStatus::Voided, 300)
    );
    let sent = summary_of(&kiosk.center().reports());
    assert_eq!(
        sent.last().unwrap(),
        &("payment", "cancelled".to_owned(), 0, true)
    );
    assert!(kiosk.outbox().is_empty());
}

#[tokio::test]
async fn a_lost_print_report_stays_queued_and_a_restarted_kiosk_resends_it() {
    let dir = TempDir::new("print-lost");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let mut kiosk = persistent(&fixture, &state, Behaviour::Honest);
    kiosk.center().set_link(ReportLink::PrintDown);
    let outcome = kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    let IssueOutcome::Printed(doc) = outcome else {
        panic!("expected a print, got {outcome:?}");
    };
    assert!(doc.print_report_queued);
    assert_eq!(kiosk.outbox().len(), 1);
    assert_eq!(
        kiosk.center().issued(doc.request_id).status,
        IssuanceStatus::Paid
    );

    // A restart: a new kiosk on the same state directory finds the report and
    // re-sends it with repeat = true.
    let mut restarted = restart(kiosk, &state);
    assert_eq!(restarted.outbox().len(), 1);
    restarted.center().set_link(ReportLink::Up);
    let summary = restarted.flush_outbox().await.unwrap();
    assert_eq!(summary.pending, 0);
    assert_eq!(
        summary_of(&restarted.center().reports()),
        [
            ("payment", "paid".to_owned(), 300, false),
            ("print", "ok".to_owned(), 0, true)
        ]
    );
    assert_eq!(
        restarted.center().issued(doc.request_id).status,
        IssuanceStatus::Printed
    );
    assert!(restarted.outbox().is_empty());
    // And a third start finds nothing left on disk.
    let again = restart(restarted, &state);
    assert!(again.outbox().is_empty());
}

#[tokio::test]
async fn queued_reports_go_out_before_the_next_session() {
    let dir = TempDir::new("print-next");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = persistent(&fixture, &dir.path().join("state"), Behaviour::Honest);
    kiosk.center().set_link(ReportLink::PrintDown);
    kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    kiosk.center().set_link(ReportLink::Up);
    kiosk.issue(&card, PIN, order(1), &out).await.unwrap();
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [
            ("payment", "paid".to_owned(), 300, false),
            ("print", "ok".to_owned(), 0, true),
            ("payment", "paid".to_owned(), 300, false),
            ("print", "ok".to_owned(), 0, false)
        ]
    );
    assert!(kiosk.outbox().is_empty());
}

/// Runs a session until the center has been sent a report of `kind`, then drops it
/// mid-send, as a crash would.
async fn crash_while_sending(
    kiosk: &mut Kiosk<FakeCenter>,
    kind: &'static str,
    card: &std::path::Path,
    out: &std::path::Path,
) {
    let (signal, crashed) = tokio::sync::oneshot::channel();
    *kiosk.center().hang_signal.lock().unwrap() = Some(signal);
    kiosk.center().set_link(ReportLink::Hang(kind));
    tokio::select! {
        outcome = kiosk.issue(card, PIN, order(1), out) => panic!("session ended: {outcome:?}"),
        _ = crashed => {}
    }
    kiosk.center().set_link(ReportLink::Up);
}

#[tokio::test]
async fn the_outbox_survives_a_crash_between_writing_and_sending_the_print_report() {
    let dir = TempDir::new("crash-print");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let mut kiosk = persistent(&fixture, &state, Behaviour::Honest);
    crash_while_sending(&mut kiosk, "print", &card, &out).await;
    // The print report never reached the center.
    assert_eq!(
        summary_of(&kiosk.center().reports()),
        [("payment", "paid".to_owned(), 300, false)]
    );

    let mut restarted = restart(kiosk, &state);
    let queued = restarted.outbox().entries().to_vec();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].report.kind(), queued[0].report.outcome_str()),
        ("print", "ok".to_owned())
    );
    restarted.flush_outbox().await.unwrap();
    assert_eq!(
        restarted.center().issued(queued[0].request_id).status,
        IssuanceStatus::Printed
    );
    let sent = summary_of(&restarted.center().reports());
    assert_eq!(sent.last().unwrap(), &("print", "ok".to_owned(), 0, true));
    assert_eq!(pdf_count(&out), 1);
}

#[tokio::test]
async fn a_crash_before_the_payment_was_acknowledged_refunds_and_cancels() {
    let dir = TempDir::new("crash-pay");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let mut kiosk = persistent(&fixture, &state, Behaviour::Honest);
    crash_while_sending(&mut kiosk, "payment", &card, &out).await;
    assert!(kiosk.center().reports().is_empty());

    // After the restart the unacknowledged `paid` has become `cancelled`: nothing was
    // printed, so no fee may be kept.
    let mut restarted = restart(kiosk, &state);
    let queued = restarted.outbox().entries().to_vec();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].report.outcome_str(), "cancelled");
    restarted.flush_outbox().await.unwrap();
    assert_eq!(
        summary_of(&restarted.center().reports()),
        [("payment", "cancelled".to_owned(), 0, true)]
    );
    assert_eq!(
        restarted.center().issued(queued[0].request_id).status,
        IssuanceStatus::Voided
    );
    assert_eq!(pdf_count(&out), 0);
    assert!(restarted.outbox().is_empty());
}

fn visit_key() -> IdempotencyKey {
    IdempotencyKey::parse(uuid::Uuid::new_v4().simple().to_string()).unwrap()
}

/// The control path: right after the PIN the card opens a card session and leaves the
/// reader; the visit's two orders ride on the session, each under its own key.
#[tokio::test]
async fn a_card_session_carries_two_orders_after_the_card_is_taken() {
    let dir = TempDir::new("flow-card-session");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let out = dir.path().join("out");
    let mut kiosk = kiosk(&fixture, Behaviour::Honest);
    let visit = visit_key();
    let mut session = kiosk.begin_session(visit.clone(), &card).await.unwrap();
    kiosk.enter_pin(&mut session, PIN).unwrap();
    let opened = kiosk.open_card_session(&mut session).await.unwrap();
    assert_eq!(opened.card_municipality, home());
    assert_eq!(opened.orders_left, FAKE_ORDERS_PER_SESSION);
    assert_eq!(
        kiosk.state(),
        KioskState::PinVerified,
        "nothing ordered yet"
    );
    let opening = kiosk.center().card_session_openings.lock().unwrap()[0].clone();
    assert_eq!(opening.visit_key, visit);
    assert_eq!(opening.kiosk_id.as_str(), "tokyo-0001");
    // The card is taken: nothing below reads it.
    std::fs::remove_file(&card).unwrap();

    let mut printed = Vec::new();
    for copies in [1, 2] {
        if copies == 2 {
            kiosk.next_order(&mut session).await.unwrap();
        }
        kiosk.check_menu(&mut session, order(copies)).await.unwrap();
        let answer = kiosk.place_order(&mut session).await.unwrap();
        assert!(matches!(answer, OrderAnswer::Prepared(_)), "{answer:?}");
        let paid = kiosk
            .pay(&mut session, SimulatedPayment::Emoney)
            .await
            .unwrap();
        assert!(paid.is_none(), "{paid:?}");
        let outcome = kiosk
            .print_paid(&mut session, SimulatedPrinter::Prints, &out, false)
            .await
            .unwrap();
        let IssueOutcome::Printed(document) = outcome else {
            panic!("expected a print, got {outcome:?}");
        };
        assert_eq!(document.copies, copies);
        printed.push(document);
    }
    assert_ne!(printed[0].request_id, printed[1].request_id);
    // The first order goes under the visit's key, the next one under a fresh key.
    assert_eq!(printed[0].idempotency_key, visit);
    assert_ne!(printed[1].idempotency_key, visit);
    let sent = kiosk.center().issuances.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        let CardProof::Session(reference) = &request.card else {
            panic!(
                "an order of the visit rides on its card session: {:?}",
                request.card
            );
        };
        assert_eq!(reference.card_session_id, opened.card_session_id);
    }
    assert_eq!(
        kiosk.center().challenge_count(),
        1,
        "the card signed once, at the opening"
    );
    // Both orders used: no third order on this session.
    assert_eq!(session.card_session().unwrap().orders_left, 0);
    assert!(kiosk.next_order(&mut session).await.is_err());
}

#[tokio::test]
async fn a_lost_card_session_answer_is_asked_again_under_the_same_visit_key() {
    let dir = TempDir::new("flow-card-session-retry");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::LoseFirstCardSessionAnswer);
    let visit = visit_key();
    let mut session = kiosk.begin_session(visit.clone(), &card).await.unwrap();
    kiosk.enter_pin(&mut session, PIN).unwrap();
    let opened = kiosk.open_card_session(&mut session).await.unwrap();
    let openings = kiosk.center().card_session_openings.lock().unwrap().clone();
    assert_eq!(openings.len(), 2);
    assert!(openings.iter().all(|o| o.visit_key == visit));
    assert_ne!(openings[0].challenge_nonce, openings[1].challenge_nonce);
    assert_eq!(kiosk.center().card_session_count(), 1, "the same session");
    assert_eq!(
        session.card_session().map(|c| c.card_session_id),
        Some(opened.card_session_id)
    );
    assert_eq!(read_card_file(&card).pin_attempts_left, 3);
}

#[tokio::test]
async fn a_card_the_center_refuses_opens_no_card_session_and_orders_nothing() {
    let dir = TempDir::new("flow-card-session-revoked");
    let fixture = Fixture::new();
    let card = fixture.write_card(dir.path());
    let mut kiosk = kiosk(&fixture, Behaviour::RevokedCard);
    let mut session = kiosk.begin_session(visit_key(), &card).await.unwrap();
    kiosk.enter_pin(&mut session, PIN).unwrap();
    let error = kiosk.open_card_session(&mut session).await.unwrap_err();
    assert_eq!(error.code(), "card_revoked");
    assert!(session.card_session().is_none());
    assert_eq!(kiosk.state(), KioskState::PinVerified);
    assert_eq!(kiosk.center().issuance_count(), 0);
}
