//! The test-only fault `release_lock_on_timeout` against a fake center whose issuance
//! answers come late: the honest kiosk drops a late answer with its request, the
//! faulty one keeps it and hands it to the next resident.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{build_pdf, write_card_file, Fixture, TempDir, MUNICIPALITY, PIN};
use kiosk_sim::client::DetachedIssuance;
use kiosk_sim::{
    CenterApi, ClientError, FaultMode, IssueOutcome, Kiosk, KioskState, PrintedDocument,
};
use schemas::outcome::{IssuanceStatus, OutcomeAck, PaymentReport, PrintOutcome, PrintReport};
use schemas::{
    CardCertificateBody, CardFile, CardSerial, CertificateKind, CertificateOption,
    CertificateOrder, CertificateType, ChallengeRequest, ChallengeResponse, Digest32, DocumentPdf,
    DomicileRegistrationRequest, DomicileRegistrationResponse, IssuanceRequest, IssuanceResponse,
    KeyPair, KioskId, Menu, MenuItem, MunicipalityCode, MunicipalityDirectory, PublicKey,
    RequestId, Route, RouteKind, ServiceHours, Signed, MAX_PIN_ATTEMPTS,
};

/// The kiosk's usual wait for an answer (its request timeout).
const WAIT: Duration = Duration::from_millis(150);
/// How late a slow answer comes, counted from the request.
const LATE_BY: Duration = Duration::from_millis(900);

/// A center that composes every answer at once but, while `slow`, delivers it only
/// [`LATE_BY`] later: too late for the kiosk's usual wait.
#[derive(Clone)]
struct LateCenter(Arc<Inner>);

struct Inner {
    authority: PublicKey,
    slow: AtomicBool,
    /// The answer stored per idempotency key (replayed for the same key).
    answers: Mutex<HashMap<String, IssuanceResponse>>,
    /// Which card signed each request id the center composed.
    signer_of: Mutex<HashMap<RequestId, CardSerial>>,
    /// Issuance requests received, with the card that signed them.
    requests: Mutex<Vec<CardSerial>>,
}

impl LateCenter {
    fn new(authority: PublicKey) -> Self {
        Self(Arc::new(Inner {
            authority,
            slow: AtomicBool::new(false),
            answers: Mutex::new(HashMap::new()),
            signer_of: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        }))
    }

    fn set_slow(&self, slow: bool) {
        self.0.slow.store(slow, Ordering::SeqCst);
    }

    fn signer_of(&self, request_id: RequestId) -> CardSerial {
        self.0.signer_of.lock().unwrap()[&request_id].clone()
    }

    fn requests_from(&self, serial: &CardSerial) -> usize {
        self.0
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|s| *s == serial)
            .count()
    }

    /// The center's work, done when the request arrives: the answer, bound to a fresh
    /// request id whose pages carry it (or the stored one for a known key).
    fn process(&self, request: &IssuanceRequest) -> IssuanceResponse {
        let schemas::CardProof::Signed(proof) = &request.card else {
            panic!("the fake center takes signed orders only");
        };
        let serial = proof
            .card_certificate
            .verify(&self.0.authority)
            .unwrap()
            .serial
            .clone();
        self.0.requests.lock().unwrap().push(serial.clone());
        let key = request.idempotency_key.to_string();
        let mut answers = self.0.answers.lock().unwrap();
        if let Some(stored) = answers.get(&key) {
            return stored.clone();
        }
        let request_id = RequestId::new_random();
        self.0.signer_of.lock().unwrap().insert(request_id, serial);
        let pdf = build_pdf(&[Some(request_id.to_string())]);
        let answer = IssuanceResponse::Prepared {
            request_id,
            municipality_code: home(),
            municipality_name: "新宿区".into(),
            certificate_title: request.order.certificate.title_ja().into(),
            copies: 1,
            fee_yen_per_copy: 300,
            total_fee_yen: 300,
            document: DocumentPdf {
                sha256: Digest32::of(&pdf),
                page_count: 1,
                pdf: pdf.into(),
            },
        };
        answers.insert(key, answer.clone());
        answer
    }
}

/// A real client timeout: a listener that accepts and never answers.
async fn timeout_error(after: Duration) -> ClientError {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/issuances", listener.local_addr().unwrap());
    let source = reqwest::Client::builder()
        .timeout(after)
        .build()
        .unwrap()
        .post(&url)
        .send()
        .await
        .unwrap_err();
    assert!(source.is_timeout());
    drop(listener);
    ClientError::Transport {
        endpoint: url,
        source,
    }
}

impl CenterApi for LateCenter {
    fn request_challenge(
        &self,
        _request: &ChallengeRequest,
    ) -> impl Future<Output = Result<ChallengeResponse, ClientError>> + Send {
        let mut nonce = uuid::Uuid::new_v4().as_bytes().to_vec();
        nonce.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        async move {
            Ok(ChallengeResponse {
                nonce: nonce.into(),
                expires_at_unix_s: 4_000_000_000,
            })
        }
    }

    /// As the honest kiosk's client sees it: a slow answer is a timeout after
    /// [`WAIT`], and the answer is lost with the request.
    fn request_issuance(
        &self,
        request: &IssuanceRequest,
    ) -> impl Future<Output = Result<IssuanceResponse, ClientError>> + Send {
        let answer = self.process(request);
        let slow = self.0.slow.load(Ordering::SeqCst);
        async move {
            if slow {
                return Err(timeout_error(WAIT).await);
            }
            Ok(answer)
        }
    }

    fn request_issuance_detached(&self, request: &IssuanceRequest) -> Option<DetachedIssuance> {
        let answer = self.process(request);
        let slow = self.0.slow.load(Ordering::SeqCst);
        Some(DetachedIssuance {
            session_wait: WAIT,
            answer: Box::pin(async move {
                if slow {
                    tokio::time::sleep(LATE_BY).await;
                }
                Ok(answer)
            }),
        })
    }

    async fn open_card_session(
        &self,
        _request: &schemas::CardSessionRequest,
    ) -> Result<schemas::CardSessionResponse, ClientError> {
        unreachable!("the one-call kiosk has the card sign each order")
    }

    async fn municipalities(&self) -> Result<MunicipalityDirectory, ClientError> {
        unreachable!("not used by an issuance")
    }

    async fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> Result<Menu, ClientError> {
        Ok(menu(municipality, route))
    }

    async fn register_domicile(
        &self,
        _request: &DomicileRegistrationRequest,
    ) -> Result<DomicileRegistrationResponse, ClientError> {
        unreachable!("not used by an issuance")
    }

    fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> impl Future<Output = Result<OutcomeAck, ClientError>> + Send {
        let paid_yen = report.amount_yen;
        async move {
            Ok(OutcomeAck {
                request_id,
                status: IssuanceStatus::Paid,
                paid_yen,
                refund_yen: 0,
                print_outcome: None,
            })
        }
    }

    async fn report_print(
        &self,
        request_id: RequestId,
        _report: &PrintReport,
    ) -> Result<OutcomeAck, ClientError> {
        Ok(OutcomeAck {
            request_id,
            status: IssuanceStatus::Printed,
            paid_yen: 300,
            refund_yen: 0,
            print_outcome: Some(PrintOutcome::Ok),
        })
    }
}

fn home() -> MunicipalityCode {
    MunicipalityCode::parse(MUNICIPALITY).unwrap()
}

fn menu(municipality: MunicipalityCode, route: RouteKind) -> Menu {
    Menu {
        municipality_code: municipality,
        municipality_name: "新宿区".into(),
        route,
        as_of_unix_s: 1_800_000_000,
        open_now: true,
        items: vec![MenuItem {
            certificate: CertificateType::ResidentRecord,
            title_ja: CertificateType::ResidentRecord.title_ja().into(),
            title_en: CertificateType::ResidentRecord.title_en().into(),
            fee_yen_per_copy: 300,
            max_copies: 10,
            options: vec![CertificateOption::Relationship],
            hours: ServiceHours::NATIONAL,
            available_now: true,
            unavailable_reason: None,
        }],
    }
}

fn order() -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: schemas::HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: true,
        },
        copies: 1,
    }
}

/// Two residents of the same municipality, each with a card in a folder of its own.
struct Residents {
    fixture: Fixture,
    first: PathBuf,
    second: PathBuf,
    second_serial: CardSerial,
}

impl Residents {
    fn new(dir: &Path) -> Self {
        let fixture = Fixture::new();
        let first_dir = dir.join("first");
        std::fs::create_dir_all(&first_dir).unwrap();
        let first = fixture.write_card(&first_dir);
        let key = KeyPair::generate();
        let second_serial = CardSerial::parse("00B1B2C3D4E5F608").unwrap();
        let body = CardCertificateBody {
            serial: second_serial.clone(),
            municipality_code: home(),
            public_key: key.public(),
            not_before_unix_s: 1_700_000_000,
            not_after_unix_s: 2_000_000_000,
        };
        let card = CardFile {
            label: "next resident".into(),
            certificate: Signed::sign(body, &fixture.authority).unwrap(),
            key_seed: key.seed_base64(),
            pin: PIN.into(),
            pin_attempts_left: MAX_PIN_ATTEMPTS,
        };
        let second_dir = dir.join("second");
        std::fs::create_dir_all(&second_dir).unwrap();
        let second = write_card_file(&second_dir, &card);
        Self {
            fixture,
            first,
            second,
            second_serial,
        }
    }

    fn first_serial(&self) -> CardSerial {
        self.fixture
            .card_file
            .certificate
            .verify(&self.fixture.authority.public())
            .unwrap()
            .serial
            .clone()
    }
}

fn kiosk(residents: &Residents, fault: FaultMode) -> (Kiosk<LateCenter>, LateCenter) {
    let center = LateCenter::new(residents.fixture.authority.public());
    let kiosk = Kiosk::new(KioskId::parse("tokyo-0001").unwrap(), center.clone()).with_fault(fault);
    (kiosk, center)
}

/// The first resident's issuance gets no answer in time: the session fails with
/// nothing printed, without waiting for the late answer.
async fn first_session_times_out(
    kiosk: &mut Kiosk<LateCenter>,
    center: &LateCenter,
    residents: &Residents,
    out: &Path,
) {
    center.set_slow(true);
    let started = Instant::now();
    let error = kiosk
        .issue(&residents.first, PIN, order(), out)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "center_timeout", "{error}");
    assert_eq!(kiosk.state(), KioskState::Failed);
    assert!(
        started.elapsed() < LATE_BY,
        "the session waited for the late answer: {:?}",
        started.elapsed()
    );
    assert!(!out.exists() || std::fs::read_dir(out).unwrap().next().is_none());
    // Sent twice under one key (the retry): one request id, signed by the first card.
    assert_eq!(center.requests_from(&residents.first_serial()), 2);
    center.set_slow(false);
}

fn printed(outcome: IssueOutcome) -> PrintedDocument {
    match outcome {
        IssueOutcome::Printed(printed) => printed,
        other => panic!("expected a print, got {other:?}"),
    }
}

#[tokio::test]
async fn honest_kiosk_drops_a_late_answer_and_prints_the_next_residents_own() {
    let dir = TempDir::new("late-honest");
    let residents = Residents::new(dir.path());
    let out = dir.path().join("out");
    let (mut kiosk, center) = kiosk(&residents, FaultMode::None);

    first_session_times_out(&mut kiosk, &center, &residents, &out).await;
    // The late answer would have come by now.
    tokio::time::sleep(LATE_BY).await;

    let second = printed(
        kiosk
            .issue(&residents.second, PIN, order(), &out)
            .await
            .unwrap(),
    );
    assert_eq!(center.requests_from(&residents.second_serial), 1);
    assert_eq!(
        center.signer_of(second.request_id),
        residents.second_serial,
        "the next resident got another resident's document"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "only the next resident's document is printed"
    );
}

#[tokio::test]
async fn faulty_kiosk_hands_the_late_answer_to_the_next_resident() {
    let dir = TempDir::new("late-fault");
    let residents = Residents::new(dir.path());
    let out = dir.path().join("out");
    let (mut kiosk, center) = kiosk(&residents, FaultMode::ReleaseLockOnTimeout);

    first_session_times_out(&mut kiosk, &center, &residents, &out).await;

    // The next resident orders at once; the first resident's request is still running.
    let second = printed(
        kiosk
            .issue(&residents.second, PIN, order(), &out)
            .await
            .unwrap(),
    );
    assert_eq!(
        center.signer_of(second.request_id),
        residents.first_serial(),
        "the fault should print the first resident's document"
    );
    // The next resident's own order never left the kiosk.
    assert_eq!(center.requests_from(&residents.second_serial), 0);
    // The kiosk's own document check passed: the pages carry the late answer's id.
    let pdf = std::fs::read(&second.pdf_path).unwrap();
    assert_eq!(Digest32::of(&pdf), second.sha256);
    assert_eq!(
        second.pdf_path,
        out.join(format!("{}.pdf", second.request_id))
    );

    // Used once: the resident after that gets their own document again.
    let third = printed(
        kiosk
            .issue(&residents.second, PIN, order(), &out)
            .await
            .unwrap(),
    );
    assert_eq!(center.signer_of(third.request_id), residents.second_serial);
    assert_eq!(center.requests_from(&residents.second_serial), 1);
}

#[tokio::test]
async fn faulty_kiosk_answers_in_time_as_the_honest_one() {
    let dir = TempDir::new("late-fault-fast");
    let residents = Residents::new(dir.path());
    let out = dir.path().join("out");
    let (mut kiosk, center) = kiosk(&residents, FaultMode::ReleaseLockOnTimeout);

    for card in [&residents.first, &residents.second] {
        let doc = printed(kiosk.issue(card, PIN, order(), &out).await.unwrap());
        let serial = common::read_card_file(card)
            .certificate
            .verify(&residents.fixture.authority.public())
            .unwrap()
            .serial
            .clone();
        assert_eq!(center.signer_of(doc.request_id), serial);
    }
}
