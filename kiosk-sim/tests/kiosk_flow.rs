//! The kiosk state machine against an in-process fake center that checks the card's
//! signature like the real one and can misbehave on purpose.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use common::{build_pdf, read_card_file, Fixture, TempDir, MUNICIPALITY, PIN};
use kiosk_sim::{CardError, CenterApi, ClientError, IssueOutcome, Kiosk, KioskError, KioskState};
use schemas::{
    order_digest, CardAuthMessage, CertificateKind, CertificateOrder, ChallengeRequest,
    ChallengeResponse, Digest32, DocumentPdf, ErrorBody, ErrorCode, HouseholdScope,
    IssuanceRequest, IssuanceResponse, KioskId, MunicipalityCode, PublicKey, RefusalReason,
    RequestId, Route, SignedMessage as _,
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
}

struct FakeCenter {
    authority: PublicKey,
    behaviour: Behaviour,
    challenges: Mutex<Vec<Vec<u8>>>,
    used_nonces: Mutex<HashSet<Vec<u8>>>,
    issuances: Mutex<Vec<IssuanceRequest>>,
    /// Idempotency: the answer stored per key, replayed for the same key.
    answers: Mutex<HashMap<String, IssuanceResponse>>,
}

impl FakeCenter {
    fn new(authority: PublicKey, behaviour: Behaviour) -> Self {
        Self {
            authority,
            behaviour,
            challenges: Mutex::new(Vec::new()),
            used_nonces: Mutex::new(HashSet::new()),
            issuances: Mutex::new(Vec::new()),
            answers: Mutex::new(HashMap::new()),
        }
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

    fn answer(&self, request: &IssuanceRequest) -> Result<IssuanceResponse, ClientError> {
        // What the real center checks about the card, so the kiosk's signing is tested.
        let Ok(card) = request.card_certificate.verify(&self.authority) else {
            return Err(Self::rejected(ErrorCode::CardCertificateInvalid, 403));
        };
        let digest =
            order_digest(&request.kiosk_id, &request.idempotency_key, &request.order).unwrap();
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
        // Single-use challenges, consumed before the idempotency look-up (as the center does).
        let nonce = &request.challenge_nonce.0;
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
            municipality_code: MunicipalityCode::parse(MUNICIPALITY).unwrap(),
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
            KioskState::Printed
        ]
    );
    assert_eq!(kiosk.center().challenge_count(), 1);
    assert_eq!(kiosk.center().issuance_count(), 1);
    let sent = kiosk.center().issuances.lock().unwrap()[0].clone();
    assert_eq!(sent.idempotency_key, printed.idempotency_key);
    assert_eq!(sent.kiosk_id.as_str(), "tokyo-0001");

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
    let error = kiosk.issue(&card, PIN, order(1), &out).await.unwrap_err();
    assert!(matches!(error, KioskError::AlreadyPrinted { request_id, .. } if request_id == fixed));
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
    assert_ne!(sent[0].challenge_nonce, sent[1].challenge_nonce);
    assert_ne!(sent[0].card_signature, sent[1].card_signature);
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
