//! The adapter through its HTTP API, over real mTLS: transport, signatures,
//! idempotency, concurrency and the fault modes. Certificate content and rules are in
//! `tests/certificates.rs`, the catalogue and 利用登録 in `tests/catalogue_domicile.rs`.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use municipal_adapter::{FaultMode, FaultSettings};
use schemas::{
    card_binding_digest, AdapterInfo, CertificateAnswer, Digest32, ErrorCode, FrontSide, KeyPair,
    RefusalReason, ResidentRecordFront, Signed, SignedCertificateAnswer, SignedSeal, SigningError,
};

async fn answer(response: reqwest::Response) -> SignedCertificateAnswer {
    assert_eq!(response.status().as_u16(), 200, "expected an answer");
    response.json().await.expect("signed answer")
}

fn record(answer: &CertificateAnswer) -> (&ResidentRecordFront, &Vec<String>, u32) {
    match issued(answer) {
        (FrontSide::ResidentRecord(front), seals, fee) => (front, seals, fee),
        (other, _, _) => panic!("expected 住民票の写し, got {}", other.title()),
    }
}

#[tokio::test]
async fn happy_path_household_with_all_options() {
    let adapter = spawn_adapter().await;
    let mut fetch = adapter.fetch(MINOKAMO, "2121130000000001", household_order(true));
    fetch.requested_at_unix_s = NOV_24_NOON_JST;
    let request_id = fetch.request_id;
    let response = adapter.post(&adapter.sign(fetch.clone())).await;
    assert!(response.headers().get("x-request-id").is_some());
    let signed = answer(response).await;

    let key = adapter.municipality_public(MINOKAMO);
    let verified = signed
        .verify(&key)
        .expect("answer signed by the municipality");
    assert_eq!(verified.request_id, request_id);
    assert_eq!(verified.municipality_code, code(MINOKAMO));
    assert_eq!(
        verified.card_digest,
        Digest32(card_binding_digest(
            &request_id,
            &serial("2121130000000001")
        ))
    );
    let (front, seals, fee) = record(verified);
    assert_eq!(fee, 200);
    assert_eq!(front.title, "住民票の写し");
    assert_eq!(front.attestation.municipality_name, "美濃加茂市");
    assert_eq!(front.address, "岐阜県美濃加茂市太田町1234番地の5");
    assert_eq!(front.household_head.as_deref(), Some("髙橋 健一"));
    assert_eq!(front.members.len(), 4);
    assert_eq!(front.members[0].name, "髙橋 健一");
    assert_eq!(front.members[0].birth_date_wareki, "昭和53年4月12日");
    assert_eq!(front.members[0].sex, "男");
    assert_eq!(front.members[0].relationship.as_deref(), Some("世帯主"));
    assert_eq!(front.members[1].relationship.as_deref(), Some("妻"));
    assert_eq!(front.members[0].became_resident_on_wareki, "平成22年4月1日");
    assert_eq!(
        front.members[0].domicile.as_deref(),
        Some("岐阜県美濃加茂市太田町1234番地")
    );
    assert_eq!(front.members[0].domicile_head.as_deref(), Some("髙橋 健一"));
    assert_eq!(
        front.attestation.certification,
        "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
    );
    assert!(
        front.attestation.issue_date_wareki == "令和8年11月24日",
        "{}",
        front.attestation.issue_date_wareki
    );
    assert_eq!(front.attestation.mayor_title, "美濃加茂市長");
    assert_eq!(front.attestation.mayor_name, "藤井 浩人");

    // One seal per front page; it verifies with the municipality key and covers this
    // front, this request and this card holder.
    assert_eq!(seals.len(), 1);
    let seal = SignedSeal::from_qr_text(&seals[0]).expect("seal parses");
    let payload = seal.verify(&key).expect("seal verifies");
    assert_eq!(
        payload.front_digest,
        FrontSide::ResidentRecord(front.clone()).digest().unwrap().0
    );
    assert_eq!(payload.serial, request_id);
    assert_eq!(payload.issuer, code(MINOKAMO));
    assert_eq!(
        payload.doc_type,
        schemas::CertificateType::ResidentRecord.seal_doc_type()
    );
    assert_eq!((payload.page, payload.page_count), (1, 1));
    assert_eq!(payload.name, "髙橋 健一");
    assert_eq!(payload.birth_date, 19_780_412);
    assert_eq!(payload.address.as_deref(), Some(front.address.as_str()));
    assert_eq!(payload.seal_registration_number, None);
    assert_eq!(
        payload.verify_until_unix_s - payload.issued_at_unix_s,
        365 * 86_400
    );
    // The center's clock is the one clock.
    assert_eq!(verified.answered_at_unix_s, fetch.requested_at_unix_s);
    assert_eq!(
        payload.issued_at_unix_s,
        u64::try_from(fetch.requested_at_unix_s).unwrap()
    );
}

#[tokio::test]
async fn self_only_without_options() {
    let adapter = spawn_adapter().await;
    let fetch = adapter.fetch(MINOKAMO, "2121130000000002", self_order());
    let signed = answer(adapter.post(&adapter.sign(fetch)).await).await;
    let verified = signed
        .verify(&adapter.municipality_public(MINOKAMO))
        .unwrap();
    let (front, seals, _) = record(verified);
    assert_eq!(front.members.len(), 1);
    assert_eq!(front.members[0].name, "髙橋 由美子");
    assert_eq!(front.household_head, None);
    assert_eq!(front.members[0].relationship, None);
    assert_eq!(front.members[0].domicile, None);
    assert_eq!(front.members[0].domicile_head, None);
    assert_eq!(
        front.attestation.certification,
        "この写しは、住民票の原本と相違ないことを証明する。"
    );
    assert_eq!(seals.len(), 1);
}

#[tokio::test]
async fn unknown_card_is_refused_card_not_registered() {
    let adapter = spawn_adapter().await;
    for (municipality, card) in [
        (MINOKAMO, "2121130000000099"),
        (SAKAHOGI, "2150150000000098"),
        // Bound in 212113, asked of 215015 (same process): bindings are per municipality.
        (SAKAHOGI, "2121130000000001"),
        (MINOKAMO, "2150150000000001"),
    ] {
        let fetch = adapter.fetch(municipality, card, household_order(false));
        let request_id = fetch.request_id;
        let signed = answer(adapter.post(&adapter.sign(fetch)).await).await;
        let verified = signed
            .verify(&adapter.municipality_public(municipality))
            .unwrap();
        assert_eq!(refusal(verified), RefusalReason::CardNotRegistered);
        assert_eq!(verified.request_id, request_id);
        assert_eq!(
            verified.card_digest,
            Digest32(card_binding_digest(&request_id, &serial(card)))
        );
    }
}

#[tokio::test]
async fn bad_center_signature_is_401() {
    let adapter = spawn_adapter().await;
    let fetch = adapter.fetch(MINOKAMO, "2121130000000001", household_order(true));
    let request_id = fetch.request_id;
    let forged = Signed::sign(fetch.clone(), &KeyPair::generate()).unwrap();
    let body = error_body(adapter.post(&forged).await, 401).await;
    assert_eq!(body.code, ErrorCode::RequestSignatureInvalid);
    assert_eq!(body.request_id, Some(request_id));

    // Right key, tampered payload.
    let mut tampered = adapter.sign(fetch);
    tampered.payload.card_serial = serial("2121130000000002");
    let body = error_body(adapter.post(&tampered).await, 401).await;
    assert_eq!(body.code, ErrorCode::RequestSignatureInvalid);
}

#[tokio::test]
async fn unserved_municipality_is_404_and_late_fetch_is_504() {
    let adapter = spawn_adapter().await;
    let fetch = adapter.fetch("131016", "1310160000000001", household_order(true));
    let body = error_body(adapter.post(&adapter.sign(fetch)).await, 404).await;
    assert_eq!(body.code, ErrorCode::MunicipalityUnknown);

    let mut fetch = adapter.fetch(MINOKAMO, "2121130000000001", household_order(true));
    fetch.deadline_unix_ms = now_ms() - 1;
    let body = error_body(adapter.post(&adapter.sign(fetch)).await, 504).await;
    assert_eq!(body.code, ErrorCode::UpstreamTimeout);

    let mut fetch = adapter.fetch(MINOKAMO, "2121130000000001", household_order(true));
    fetch.order.copies = 0;
    let body = error_body(adapter.post(&adapter.sign(fetch)).await, 400).await;
    assert_eq!(body.code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn replay_is_byte_identical_and_reuse_is_409() {
    let adapter = spawn_adapter().await;
    let fetch = adapter.fetch(MINOKAMO, "2121130000000005", household_order(true));
    let signed = adapter.sign(fetch.clone());
    let first = adapter.post(&signed).await;
    assert_eq!(first.status().as_u16(), 200);
    let first = first.bytes().await.unwrap();

    // Sequential and concurrent retries all get the stored bytes.
    let second = adapter.post(&signed).await;
    assert_eq!(second.headers().get("x-kofu-replayed").unwrap(), "true");
    assert_eq!(second.bytes().await.unwrap(), first);
    let mut retries = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = adapter.center.clone();
        let url = adapter.url("/v1/certificates");
        let signed = signed.clone();
        retries.spawn(async move {
            client
                .post(url)
                .json(&signed)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        });
    }
    while let Some(bytes) = retries.join_next().await {
        assert_eq!(bytes.unwrap(), first);
    }
    // A retry of the same request with new timing (the center re-fetching for a
    // kiosk's idempotent retry) replays the same answer.
    let mut later = fetch.clone();
    later.requested_at_unix_s += 5;
    later.deadline_unix_ms += 5_000;
    let replay = adapter.post(&adapter.sign(later)).await;
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(replay.bytes().await.unwrap(), first);
    // A replay is still served after the deadline: the answer exists already.
    // Same request id, different content → conflict.
    let mut other = fetch.clone();
    other.order = self_order();
    let body = error_body(adapter.post(&adapter.sign(other)).await, 409).await;
    assert_eq!(body.code, ErrorCode::RequestIdReused);
    assert_eq!(body.request_id, Some(fetch.request_id));
}

#[tokio::test]
async fn concurrent_first_attempts_of_one_request_get_one_answer() {
    let adapter = spawn_adapter().await;
    let signed = adapter.sign(adapter.fetch(SAKAHOGI, "2150150000000008", household_order(true)));
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = adapter.center.clone();
        let url = adapter.url("/v1/certificates");
        let signed = signed.clone();
        attempts.spawn(async move {
            let response = client.post(url).json(&signed).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.bytes().await.unwrap()
        });
    }
    let mut bodies = Vec::new();
    while let Some(bytes) = attempts.join_next().await {
        bodies.push(bytes.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "all attempts must see the same bytes"
    );
}

#[tokio::test]
async fn hundred_concurrent_distinct_requests_never_mix() {
    let adapter = spawn_adapter().await;
    // Every plain issuable card of both municipalities, and its holder's name as a
    // sequential self-only answer gives it.
    let mut cards = Vec::new();
    let mut names = HashMap::new();
    for (municipality, count) in [(MINOKAMO, 27), (SAKAHOGI, 15)] {
        for suffix in 1..=count {
            let card = card(municipality, suffix);
            let answer = adapter
                .ask_at(
                    municipality,
                    &card,
                    self_order(),
                    jiff::Timestamp::now().as_second(),
                )
                .await;
            let (front, _, _) = record(&answer);
            names.insert(card.clone(), front.members[0].name.clone());
            cards.push((municipality, card));
        }
    }
    assert_eq!(cards.len(), 42);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (municipality, card) = cards[i % cards.len()].clone();
        let order = if i % 2 == 0 {
            household_order(true)
        } else {
            self_order()
        };
        let fetch = adapter.fetch(municipality, &card, order);
        let signed = adapter.sign(fetch.clone());
        let client = adapter.center.clone();
        let url = adapter.url("/v1/certificates");
        tasks.spawn(async move {
            let response = client.post(url).json(&signed).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            (
                fetch,
                response.json::<SignedCertificateAnswer>().await.unwrap(),
            )
        });
    }
    let mut seen = 0;
    while let Some(result) = tasks.join_next().await {
        let (fetch, signed) = result.unwrap();
        let key = adapter.municipality_keys[&fetch.municipality_code].public();
        let verified = signed.verify(&key).unwrap();
        assert_eq!(verified.request_id, fetch.request_id);
        assert_eq!(verified.card_digest, fetch.card_digest);
        let (front, seals, _) = record(verified);
        let holder = &names[fetch.card_serial.as_str()];
        assert!(
            front.members.iter().any(|m| &m.name == holder),
            "front of another resident"
        );
        for text in seals {
            let payload = SignedSeal::from_qr_text(text)
                .unwrap()
                .verify(&key)
                .unwrap();
            assert_eq!(payload.serial, fetch.request_id);
            assert_eq!(&payload.name, holder);
            assert_eq!(
                payload.front_digest,
                FrontSide::ResidentRecord(front.clone()).digest().unwrap().0
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 100);
}

#[tokio::test]
async fn only_the_center_may_fetch() {
    let adapter = spawn_adapter().await;
    let operator = client(&adapter.pki.operator);
    let signed = adapter.sign(adapter.fetch(MINOKAMO, "2121130000000001", household_order(true)));
    let body = error_body(adapter.post_with(&operator, &signed).await, 403).await;
    assert_eq!(body.code, ErrorCode::ClientNotAuthorized);
    // Even a body that would not parse gets 403 first: the role is checked before it.
    let response = operator
        .post(adapter.url("/v1/certificates"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(response, 403).await.code,
        ErrorCode::ClientNotAuthorized
    );
    // Other endpoints are open to any client of the deployment's CA.
    let info: AdapterInfo = operator
        .get(adapter.url("/v1/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info.software, "municipal-adapter");
    assert_eq!(info.municipalities, vec![code(MINOKAMO), code(SAKAHOGI)]);
    let health = adapter
        .center
        .get(adapter.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn plaintext_and_certificate_less_connections_fail() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let adapter = spawn_adapter().await;

    // Plain HTTP on the TLS port never gets an HTTP answer.
    let mut stream = tokio::net::TcpStream::connect(adapter.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    assert!(!reply.starts_with(b"HTTP/"), "plaintext got an HTTP answer");

    // TLS without a client certificate fails the handshake.
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        for cert in mtls::load_certs(&adapter.pki.ca).unwrap() {
            roots.add(cert).unwrap();
        }
        roots
    };
    let config = rustls::ClientConfig::builder_with_provider(mtls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let anonymous = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap();
    assert!(anonymous.get(adapter.url("/health")).send().await.is_err());

    // A client certificate from another CA fails too, even naming the center.
    let stranger = client(&adapter.pki.stranger);
    assert!(stranger.get(adapter.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn malformed_requests_get_clean_error_bodies() {
    let adapter = spawn_adapter().await;
    let url = adapter.url("/v1/certificates");
    let post = |body: &'static str, content_type: &'static str| {
        adapter
            .center
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let body = error_body(post("{not json", "application/json").await.unwrap(), 400).await;
    assert_eq!(body.code, ErrorCode::BadRequest);
    let body = error_body(post("{}", "application/json").await.unwrap(), 400).await;
    assert_eq!(body.code, ErrorCode::BadRequest);
    let body = error_body(post("{}", "text/plain").await.unwrap(), 415).await;
    assert_eq!(body.code, ErrorCode::UnsupportedMediaType);
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let response = adapter
        .center
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(response, 413).await.code,
        ErrorCode::PayloadTooLarge
    );
    let response = adapter
        .center
        .get(adapter.url("/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_body(response, 404).await.code, ErrorCode::NotFound);
    let response = adapter.center.get(&url).send().await.unwrap();
    assert_eq!(
        error_body(response, 405).await.code,
        ErrorCode::MethodNotAllowed
    );
    for path in ["/v1/catalogue", "/v1/domicile-registrations"] {
        let response = adapter.center.get(adapter.url(path)).send().await.unwrap();
        assert_eq!(
            error_body(response, 405).await.code,
            ErrorCode::MethodNotAllowed
        );
    }
}

async fn faulty(
    mode: FaultMode,
) -> (
    TestAdapter,
    schemas::CertificateFetch,
    SignedCertificateAnswer,
) {
    let adapter = spawn_adapter_with(FaultSettings { mode, delay_ms: 0 }).await;
    let fetch = adapter.fetch(MINOKAMO, "2121130000000001", household_order(true));
    let signed = answer(adapter.post(&adapter.sign(fetch.clone())).await).await;
    (adapter, fetch, signed)
}

#[tokio::test]
async fn fault_wrong_request_id() {
    let (adapter, fetch, signed) = faulty(FaultMode::WrongRequestId).await;
    let key = adapter.municipality_public(MINOKAMO);
    let verified = signed.verify(&key).expect("still correctly signed");
    assert_ne!(verified.request_id, fetch.request_id);
    assert_eq!(verified.card_digest, fetch.card_digest);
    let (_, seals, _) = record(verified);
    let payload = SignedSeal::from_qr_text(&seals[0])
        .unwrap()
        .verify(&key)
        .unwrap();
    assert_eq!(
        payload.serial, verified.request_id,
        "the seals carry the wrong id too"
    );
}

#[tokio::test]
async fn fault_wrong_card_digest() {
    let (adapter, fetch, signed) = faulty(FaultMode::WrongCardDigest).await;
    let verified = signed
        .verify(&adapter.municipality_public(MINOKAMO))
        .unwrap();
    assert_eq!(verified.request_id, fetch.request_id);
    assert_ne!(verified.card_digest, fetch.card_digest);
}

#[tokio::test]
async fn fault_foreign_front() {
    let (adapter, fetch, signed) = faulty(FaultMode::ForeignFront).await;
    let key = adapter.municipality_public(MINOKAMO);
    let verified = signed.verify(&key).unwrap();
    assert_eq!(verified.request_id, fetch.request_id);
    assert_eq!(verified.card_digest, fetch.card_digest);
    let (front, seals, _) = record(verified);
    assert!(
        front.members.iter().all(|m| m.name != "髙橋 健一")
            || front.address != "岐阜県美濃加茂市太田町1234番地の5",
        "front is another resident's"
    );
    let payload = SignedSeal::from_qr_text(&seals[0])
        .unwrap()
        .verify(&key)
        .unwrap();
    assert_eq!(
        payload.name, "髙橋 健一",
        "seal is for the requested resident"
    );
    assert_eq!(payload.serial, fetch.request_id);
    assert_ne!(
        payload.front_digest,
        FrontSide::ResidentRecord(front.clone()).digest().unwrap().0
    );
}

#[tokio::test]
async fn fault_bad_signature() {
    let (adapter, fetch, signed) = faulty(FaultMode::BadSignature).await;
    assert!(matches!(
        signed.verify(&adapter.municipality_public(MINOKAMO)),
        Err(SigningError::WrongKey { .. })
    ));
    assert_eq!(signed.payload.request_id, fetch.request_id);
    assert_eq!(signed.payload.card_digest, fetch.card_digest);
}

#[tokio::test]
async fn fault_delay_answers_late_but_stores_first() {
    let adapter = spawn_adapter_with(FaultSettings {
        mode: FaultMode::None,
        delay_ms: 600,
    })
    .await;
    let signed = adapter.sign(adapter.fetch(MINOKAMO, "2121130000000003", self_order()));
    let started = Instant::now();
    let first = adapter.post(&signed).await.bytes().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    let again = adapter.post(&signed).await.bytes().await.unwrap();
    assert_eq!(first, again);
    let verified: SignedCertificateAnswer = serde_json::from_slice(&first).unwrap();
    assert!(verified
        .verify(&adapter.municipality_public(MINOKAMO))
        .is_ok());
}
