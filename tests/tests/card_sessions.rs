//! Card sessions end to end (DESIGN.md §1: the card is returned right after the PIN):
//! the card signs a session opening once (`POST /v1/card-sessions`), the visit's orders
//! name the session. Over real mTLS against the sandbox center, on SQLite and
//! PostgreSQL: several certificates in one visit, replays that take no order, the
//! visit key's idempotency, the kiosk and operator binding, expiry at the center clock,
//! the order limit under concurrency, and the card checks at the opening and at each
//! order (revocation after the opening, across a restart).

use e2e::on_both_backends;
use e2e::*;
use kiosk_sim::{CenterClient, ClientError, KioskSettings, SimCard};
use sandbox::{CardInfo, CardKind};
use schemas::{
    card_binding_digest, card_session_digest, CardProof, CardSessionId, CardSessionRef,
    CardSessionRequest, CardSessionResponse, CertificateOrder, Digest32, ErrorCode, HouseholdScope,
    IdempotencyKey, IssuanceRequest, IssuanceResponse, KeyPair, KioskId, RequestId, RevocationList,
    Signed, MAX_ORDERS_PER_CARD_SESSION,
};

on_both_backends!(
    one_visit_orders_two_certificates_on_one_session,
    a_session_serves_only_its_kiosk_and_its_lifetime,
    orders_run_out_and_the_last_one_goes_once,
    the_card_is_checked_at_the_opening_and_at_each_order,
);

const CARD_SESSIONS_PATH: &str = "/v1/card-sessions";

/// One kiosk of the sandbox speaking to the center directly.
struct Terminal {
    settings: KioskSettings,
    client: CenterClient,
    http: reqwest::Client,
}

impl Terminal {
    fn new(sb: &TestSandbox, operator: &str, kiosk: &str) -> Self {
        let settings = sb.kiosk_settings(operator, kiosk);
        let client = CenterClient::new(&settings).expect("center client");
        let http =
            mtls::http_client(&settings.tls, settings.request_timeout()).expect("mTLS client");
        Self {
            settings,
            client,
            http,
        }
    }

    fn kiosk_id(&self) -> &KioskId {
        &self.settings.kiosk_id
    }

    async fn nonce(&self) -> Vec<u8> {
        self.client
            .challenge()
            .await
            .expect("challenge")
            .nonce
            .as_slice()
            .to_vec()
    }

    async fn send_opening(
        &self,
        request: &CardSessionRequest,
    ) -> Result<CardSessionResponse, ClientError> {
        let url = self.settings.endpoint(CARD_SESSIONS_PATH);
        let response = self
            .http
            .post(&url)
            .json(request)
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        kiosk_sim::client::decode_response(&url, status, &body)
    }

    /// Fresh challenge, the card signs the opening of `visit_key` after its PIN.
    async fn open(
        &self,
        card: &CardInfo,
        visit_key: &str,
    ) -> Result<CardSessionResponse, ClientError> {
        let nonce = self.nonce().await;
        let request = opening(card, self.kiosk_id(), visit_key, &nonce);
        self.send_opening(&request).await
    }

    async fn order(
        &self,
        session: CardSessionId,
        key: &str,
        order: CertificateOrder,
    ) -> Result<IssuanceResponse, ClientError> {
        self.client
            .issue(&session_order(self.kiosk_id(), session, key, order))
            .await
    }
}

/// The card's signature over a fresh nonce and the opening of `visit_key` at `kiosk`.
fn opening(card: &CardInfo, kiosk: &KioskId, visit_key: &str, nonce: &[u8]) -> CardSessionRequest {
    let visit_key = IdempotencyKey::parse(visit_key).expect("visit key");
    let digest = card_session_digest(kiosk, &visit_key).expect("digest");
    signed_opening(card, kiosk, visit_key, nonce, digest)
}

fn signed_opening(
    card: &CardInfo,
    kiosk: &KioskId,
    visit_key: IdempotencyKey,
    nonce: &[u8],
    digest: Digest32,
) -> CardSessionRequest {
    let mut sim = SimCard::open(&card.path).expect("card file");
    let pin_session = sim.verify_pin(&pin_of(card)).expect("right PIN");
    CardSessionRequest {
        kiosk_id: kiosk.clone(),
        visit_key,
        challenge_nonce: nonce.to_vec().into(),
        card_certificate: pin_session.certificate().clone(),
        card_signature: pin_session.sign_auth(nonce, digest).expect("card signs"),
    }
}

fn session_order(
    kiosk: &KioskId,
    session: CardSessionId,
    key: &str,
    order: CertificateOrder,
) -> IssuanceRequest {
    IssuanceRequest {
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
        kiosk_id: kiosk.clone(),
        order,
        card: CardProof::Session(CardSessionRef {
            card_session_id: session,
        }),
    }
}

fn prepared(
    answer: Result<IssuanceResponse, ClientError>,
) -> (RequestId, schemas::MunicipalityCode) {
    match answer.expect("prepared") {
        IssuanceResponse::Prepared {
            request_id,
            municipality_code,
            ..
        } => (request_id, municipality_code),
        other => panic!("expected a prepared document, got {other:?}"),
    }
}

fn refused_with<T: std::fmt::Debug>(answer: Result<T, ClientError>, code: ErrorCode, status: u16) {
    match answer {
        Err(error) => {
            assert_eq!(error.error_code(), Some(code), "{error}");
            assert_eq!(error.http_status(), Some(status), "{error}");
        }
        Ok(answer) => panic!("expected {code}, got {answer:?}"),
    }
}

fn self_record() -> CertificateOrder {
    resident_record(HouseholdScope::SelfOnly)
}

fn household_record() -> CertificateOrder {
    resident_record(HouseholdScope::Household)
}

async fn one_visit_orders_two_certificates_on_one_session(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let terminal = Terminal::new(&sb, "seven", "seven-0010");
    let card = sb.printable_resident_cards()[0];
    let center_now_s = || {
        use center::clock::Clock as _;
        sb.clock.now_unix_s()
    };

    let before_s = center_now_s();
    let session = terminal.open(card, "visit-one-0001").await.expect("opened");
    let after_s = center_now_s();
    assert_eq!(session.card_municipality, card.municipality);
    assert_eq!(session.orders_left, MAX_ORDERS_PER_CARD_SESSION);
    // Default lifetime: ten minutes from the opening, at the center clock.
    assert!(
        (before_s + 599..=after_s + 600).contains(&session.expires_at_unix_s),
        "expires at {} (opened in {before_s}..={after_s})",
        session.expires_at_unix_s
    );

    // Two certificates in one visit; the card is no longer involved.
    let (first, first_code) = prepared(
        terminal
            .order(session.card_session_id, "visit-one-order-a", self_record())
            .await,
    );
    let (second, second_code) = prepared(
        terminal
            .order(
                session.card_session_id,
                "visit-one-order-b",
                household_record(),
            )
            .await,
    );
    assert_ne!(first, second);
    assert_eq!(
        (first_code, second_code),
        (card.municipality, card.municipality)
    );
    // Bound to the card exactly as a signed order is (the municipality's signed answer
    // carried the same digest, or nothing would have been composed).
    for request_id in [first, second] {
        let row = center::db::find_issuance(&sb.running.center_pool, &request_id.to_string())
            .await
            .unwrap()
            .expect("row");
        assert_eq!(
            row.card_digest,
            Digest32(card_binding_digest(&request_id, &card.serial)).to_string()
        );
    }

    // A replay of the first order (lost answer) is the same request and takes no order.
    let (replayed, _) = prepared(
        terminal
            .order(session.card_session_id, "visit-one-order-a", self_record())
            .await,
    );
    assert_eq!(replayed, first);
    // The same key with another order is a conflict, and takes none either.
    refused_with(
        terminal
            .order(
                session.card_session_id,
                "visit-one-order-a",
                household_record(),
            )
            .await,
        ErrorCode::IdempotencyConflict,
        409,
    );

    // The opening retried (fresh challenge, same card): the same session, two orders
    // taken.
    let again = terminal.open(card, "visit-one-0001").await.expect("same");
    assert_eq!(again.card_session_id, session.card_session_id);
    assert_eq!(again.orders_left, MAX_ORDERS_PER_CARD_SESSION - 2);
    assert_eq!(again.expires_at_unix_s, session.expires_at_unix_s);

    // Another card under the same visit key: conflict; the session stays the first
    // card's.
    let other_card = sb.printable_resident_cards()[1];
    assert_ne!(other_card.serial, card.serial);
    refused_with(
        terminal.open(other_card, "visit-one-0001").await,
        ErrorCode::IdempotencyConflict,
        409,
    );
    let (third, _) = prepared(
        terminal
            .order(session.card_session_id, "visit-one-order-c", self_record())
            .await,
    );
    let row = center::db::find_issuance(&sb.running.center_pool, &third.to_string())
        .await
        .unwrap()
        .expect("row");
    assert_eq!(
        row.card_digest,
        Digest32(card_binding_digest(&third, &card.serial)).to_string()
    );

    // Signed orders keep working beside sessions.
    prepared(sb.direct_issue(card, self_record()).await);
    sb.stop().await;
}

async fn a_session_serves_only_its_kiosk_and_its_lifetime(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let terminal = Terminal::new(&sb, "seven", "seven-0011");
    let card = sb.printable_resident_cards()[2];
    let session = terminal.open(card, "visit-two-0001").await.expect("opened");
    let id = session.card_session_id;

    // Another kiosk of the same operator, a kiosk of another operator, an unknown id.
    let neighbour = Terminal::new(&sb, "seven", "seven-0012");
    refused_with(
        neighbour
            .order(id, "visit-two-order-n", self_record())
            .await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    let other_chain = Terminal::new(&sb, "lawson", "lawson-0001");
    refused_with(
        other_chain
            .order(id, "visit-two-order-l", self_record())
            .await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    refused_with(
        terminal
            .order(
                CardSessionId::new_random(),
                "visit-two-order-u",
                self_record(),
            )
            .await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    // None of those took an order.
    prepared(terminal.order(id, "visit-two-order-a", self_record()).await);
    let again = terminal.open(card, "visit-two-0001").await.expect("same");
    assert_eq!(again.orders_left, MAX_ORDERS_PER_CARD_SESSION - 1);

    // At its expiry (center clock) the session carries no order, and the visit cannot
    // have it again.
    // (The answer's whole seconds round down: one more is surely past it.)
    let expiry = jiff::Timestamp::from_second(session.expires_at_unix_s + 1).unwrap();
    sb.set_clock(&expiry.to_string());
    refused_with(
        terminal.order(id, "visit-two-order-b", self_record()).await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    refused_with(
        terminal.open(card, "visit-two-0001").await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    // A replay of an order it carried is refused too: the session is over.
    refused_with(
        terminal.order(id, "visit-two-order-a", self_record()).await,
        ErrorCode::CardSessionInvalid,
        401,
    );

    // The sweep deletes it (and the card certificate it kept); the center's own sweep
    // may get there first.
    let pool = &sb.running.center_pool;
    let now_ms = {
        use center::clock::Clock as _;
        sb.clock.now_unix_ms()
    };
    center::lifecycle::sweep(pool, &center::configuration::Timeouts::default(), now_ms)
        .await
        .unwrap();
    assert!(center::db::find_card_session(pool, &id.to_string())
        .await
        .unwrap()
        .is_none());
    refused_with(
        terminal.order(id, "visit-two-order-c", self_record()).await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    sb.stop().await;
}

async fn orders_run_out_and_the_last_one_goes_once(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let terminal = Terminal::new(&sb, "seven", "seven-0013");
    let card = sb.printable_resident_cards()[3];
    let session = terminal
        .open(card, "visit-three-0001")
        .await
        .expect("opened");
    let id = session.card_session_id;
    let kiosk = terminal.kiosk_id().clone();

    // All but one order, concurrently.
    let send = |key: String| {
        let client = terminal.client.clone();
        let request = session_order(&kiosk, id, &key, self_record());
        tokio::spawn(async move { client.issue(&request).await })
    };
    let tasks: Vec<_> = (1..MAX_ORDERS_PER_CARD_SESSION)
        .map(|i| send(format!("visit-three-order-{i:02}")))
        .collect();
    for task in tasks {
        prepared(task.await.unwrap());
    }
    let again = terminal.open(card, "visit-three-0001").await.expect("same");
    assert_eq!(again.orders_left, 1);

    // Two new orders race for the last one: exactly one is recorded.
    let racing = [
        send("visit-three-race-a".into()),
        send("visit-three-race-b".into()),
    ];
    let mut won = Vec::new();
    for (task, key) in racing
        .into_iter()
        .zip(["visit-three-race-a", "visit-three-race-b"])
    {
        match task.await.unwrap() {
            Ok(answer) => won.push((key, prepared(Ok(answer)).0)),
            Err(error) => {
                assert_eq!(
                    error.error_code(),
                    Some(ErrorCode::CardSessionInvalid),
                    "{error}"
                )
            }
        }
    }
    assert_eq!(won.len(), 1, "exactly one order takes the last one");
    let (winner_key, winner) = won[0];
    let loser_key = if winner_key == "visit-three-race-a" {
        "visit-three-race-b"
    } else {
        "visit-three-race-a"
    };
    // The loser was not recorded at all.
    assert!(
        center::db::find_by_idempotency_key(&sb.running.center_pool, "seven", loser_key)
            .await
            .unwrap()
            .is_none()
    );

    let spent = terminal.open(card, "visit-three-0001").await.expect("same");
    assert_eq!(spent.orders_left, 0);
    refused_with(
        terminal
            .order(id, "visit-three-order-xx", self_record())
            .await,
        ErrorCode::CardSessionInvalid,
        401,
    );
    // A replay needs no order left: the kiosk that lost the answer still gets it.
    let (replayed, _) = prepared(terminal.order(id, winner_key, self_record()).await);
    assert_eq!(replayed, winner);
    sb.stop().await;
}

async fn the_card_is_checked_at_the_opening_and_at_each_order(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let terminal = Terminal::new(&sb, "seven", "seven-0014");
    let kiosk = terminal.kiosk_id().clone();

    // Revoked and expired cards cannot open a session.
    for (kind, code) in [
        (CardKind::Revoked, ErrorCode::CardRevoked),
        (CardKind::Expired, ErrorCode::CardExpired),
    ] {
        let card = sb.cards(kind)[0];
        refused_with(terminal.open(card, "visit-four-bad1").await, code, 401);
    }

    // A card signature over an order digest does not open a session (the two digests
    // never stand for each other), and does not burn the challenge.
    // Owned: the sandbox restarts below.
    let card = &sb.printable_resident_cards()[4].clone();
    let nonce = terminal.nonce().await;
    let visit_key = IdempotencyKey::parse("visit-four-0001").unwrap();
    let order_digest = schemas::order_digest(&kiosk, &visit_key, &self_record()).unwrap();
    let wrong = signed_opening(card, &kiosk, visit_key, &nonce, order_digest);
    refused_with(
        terminal.send_opening(&wrong).await,
        ErrorCode::CardSignatureInvalid,
        401,
    );
    let right = opening(card, &kiosk, "visit-four-0001", &nonce);
    let session = terminal.send_opening(&right).await.expect("opened");
    // The challenge is single use, for openings as for orders.
    let reused = opening(card, &kiosk, "visit-four-0002", &nonce);
    refused_with(
        terminal.send_opening(&reused).await,
        ErrorCode::ChallengeUsed,
        401,
    );
    // A retried opening of the same visit answers the same session and spends its
    // fresh nonce too.
    let retry_nonce = terminal.nonce().await;
    let retried = opening(card, &kiosk, "visit-four-0001", &retry_nonce);
    let again = terminal.send_opening(&retried).await.expect("same session");
    assert_eq!(again.card_session_id, session.card_session_id);
    let after_retry = opening(card, &kiosk, "visit-four-0004", &retry_nonce);
    refused_with(
        terminal.send_opening(&after_retry).await,
        ErrorCode::ChallengeUsed,
        401,
    );
    // A session opening signed for another kiosk does not verify here.
    let nonce = terminal.nonce().await;
    let elsewhere = KioskId::parse("seven-0015").unwrap();
    let mut foreign = opening(card, &elsewhere, "visit-four-0003", &nonce);
    foreign.kiosk_id = kiosk.clone();
    refused_with(
        terminal.send_opening(&foreign).await,
        ErrorCode::CardSignatureInvalid,
        401,
    );

    // A second resident's session at the same kiosk, in another visit.
    let other = &sb.printable_resident_cards()[5].clone();
    let other_session = terminal
        .open(other, "visit-four-0004")
        .await
        .expect("opened");
    prepared(
        terminal
            .order(session.card_session_id, "visit-four-order-a", self_record())
            .await,
    );

    // The card authority revokes the first card; the center restarts with the new
    // list. The sessions outlived the restart (they are in the database), but the
    // revoked card's carries no further order.
    revoke(&sb, card);
    let sb = sb.restart().await;
    let terminal = Terminal::new(&sb, "seven", "seven-0014");
    refused_with(
        terminal
            .order(session.card_session_id, "visit-four-order-b", self_record())
            .await,
        ErrorCode::CardRevoked,
        401,
    );
    prepared(
        terminal
            .order(
                other_session.card_session_id,
                "visit-four-order-c",
                self_record(),
            )
            .await,
    );
    let again = terminal.open(other, "visit-four-0004").await.expect("same");
    assert_eq!(again.card_session_id, other_session.card_session_id);
    assert_eq!(again.orders_left, MAX_ORDERS_PER_CARD_SESSION - 1);
    sb.stop().await;
}

/// Adds `card` to the card authority's revocation list (re-signed with its key).
fn revoke(sb: &TestSandbox, card: &CardInfo) {
    let authority = KeyPair::from_seed_base64(
        &std::fs::read_to_string(sb.dir.join("keys").join("card-authority.seed")).unwrap(),
    )
    .unwrap();
    let path = sb.dir.join("revocation-list.json");
    let list: RevocationList =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut body = list.payload;
    body.revoked.push(card.serial.clone());
    let signed = Signed::sign(body, &authority).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&signed).unwrap()).unwrap();
}
