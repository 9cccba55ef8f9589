//! The spine, end to end: kiosk-sim → center → municipal-adapter → PDF, over real
//! mTLS on loopback. Every test runs on SQLite and on PostgreSQL.

use e2e::on_both_backends;
use e2e::*;
use kiosk_sim::{IssueOutcome, KioskError, SimCard};
use sandbox::CardKind;
use schemas::{CertificateOrder, ErrorCode, HouseholdScope, IssuanceResponse, RefusalReason};

on_both_backends!(
    happy_path_prints_the_residents_certificate,
    three_wrong_pins_lock_the_card,
    revoked_and_expired_cards_are_refused,
    challenges_are_single_use,
    a_nonce_authorizes_one_order_whatever_becomes_of_it,
    unregistered_card_is_refused,
    unprintable_character_is_refused,
    fifty_concurrent_residents_each_get_their_own_certificate,
    idempotent_retry_replays_and_conflicts,
    expired_challenge_is_refused,
);

fn printed(outcome: IssueOutcome) -> kiosk_sim::PrintedDocument {
    match outcome {
        IssueOutcome::Printed(doc) => doc,
        IssueOutcome::Refused { reason, .. } => panic!("refused: {reason:?}"),
        other => panic!("not printed: {other:?}"),
    }
}

async fn happy_path_prints_the_residents_certificate(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    // 髙 is a rare but printable kanji: pick a holder whose name has one if the
    // register has them, else any printable resident.
    let cards = sb.printable_resident_cards();
    let card = cards
        .iter()
        .find(|c| c.holder_name.contains('髙'))
        .copied()
        .unwrap_or(cards[0]);
    let mut kiosk = sb.kiosk();
    let doc = printed(
        kiosk
            .issue(
                &card.path,
                &pin_of(card),
                resident_record(HouseholdScope::Household),
                &sb.out,
            )
            .await
            .expect("issued"),
    );
    assert_eq!(doc.municipality_code, card.municipality);
    assert_eq!(doc.total_fee_yen, doc.fee_yen_per_copy);
    assert_eq!(doc.page_count, 2, "front and back");

    let text = squeeze(&pdf_text(&doc.pdf_path));
    assert!(
        text.contains(&squeeze(&card.holder_name)),
        "holder's name in {text}"
    );
    assert!(text.contains("住民票の写し"));
    let address = household_address_of(&sb, card);
    assert!(
        text.contains(&squeeze(&address)),
        "address {address} in {text}"
    );
    assert!(
        text.contains(&doc.request_id.to_string()),
        "request id printed"
    );

    for id in page_request_ids(&doc.pdf_path) {
        assert_eq!(id, doc.request_id.to_string());
    }
    let fonts = embedded_font_names(&doc.pdf_path);
    assert!(!fonts.is_empty(), "a font is embedded");
    for font in fonts {
        let (tag, _) = font
            .split_once('+')
            .expect("subset fonts are named TAG+Name");
        assert!(
            tag.len() == 6 && tag.chars().all(|c| c.is_ascii_uppercase()),
            "subset tag {font}"
        );
    }
    let size = std::fs::metadata(&doc.pdf_path).unwrap().len();
    assert!(
        size < 400_000,
        "a subset font keeps the PDF small, got {size} bytes"
    );

    // The center kept ids, digests and states, nothing personal.
    let row = center::db::find_issuance(&sb.running.center_pool, &doc.request_id.to_string())
        .await
        .unwrap()
        .expect("row");
    // The kiosk paid, printed and reported both before it returned.
    assert_eq!(row.state, center::db::IssuanceState::Printed);
    assert_eq!(
        row.document_sha256.as_deref(),
        Some(doc.sha256.to_string().as_str())
    );
    let events = center::db::audit_events(&sb.running.center_pool, &doc.request_id.to_string())
        .await
        .unwrap();
    assert_eq!(events, vec!["authorized", "prepared", "paid", "printed"]);
    // The running center seals its audit log every second: an inclusion proof for
    // every event of the visit exists within a few of those (the sweep runs every 10 s).
    let request_id = doc.request_id.to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    let proof = loop {
        match center::audit::prove(&sb.running.center_pool, &request_id).await {
            Ok(proof) => break proof,
            Err(center::audit::AuditError::NotSealed { .. })
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no inclusion proof for {request_id} within 6 s: {error}"),
        }
    };
    let proved: Vec<&str> = proof
        .events
        .iter()
        .map(|e| e.event.event.as_str())
        .collect();
    assert_eq!(proved, events);
    sb.stop().await;
}

/// The card holder's household address, from the register files the adapter imported.
fn household_address_of(sb: &TestSandbox, card: &sandbox::CardInfo) -> String {
    let dir = sb
        .running
        .layout
        .register_dir(&card.municipality.to_string());
    let parsed = municipal_adapter::register::import::read_register_dir(
        card.municipality,
        &dir,
        jiff::civil::date(2099, 12, 31),
    )
    .expect("sample register parses");
    let binding = parsed
        .cards
        .iter()
        .find(|b| b.card_serial == card.serial)
        .expect("card bound");
    parsed
        .register
        .households
        .iter()
        .find(|h| h.member(&binding.resident_id).is_some())
        .map(|h| h.address.clone())
        .expect("holder in a household")
}

async fn three_wrong_pins_lock_the_card(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let card = sb.printable_resident_cards()[1];
    let pin = pin_of(card);
    let wrong = if pin == "0000" { "1111" } else { "0000" };
    let mut kiosk = sb.kiosk();
    let order = resident_record(HouseholdScope::SelfOnly);
    for expected_left in [2u8, 1, 0] {
        let error = kiosk
            .issue(&card.path, wrong, order.clone(), &sb.out)
            .await
            .unwrap_err();
        match error {
            KioskError::Card(kiosk_sim::CardError::WrongPin { attempts_left }) => {
                assert_eq!(attempts_left, expected_left)
            }
            other => panic!("expected a wrong PIN, got {other}"),
        }
    }
    // Now even the right PIN is refused by the card, and nothing is printed.
    let error = kiosk
        .issue(&card.path, &pin, order, &sb.out)
        .await
        .unwrap_err();
    assert!(error.card_locked(), "{error}");
    assert!(
        SimCard::open(&card.path).unwrap().is_locked(),
        "the lock is stored on the card"
    );
    assert_eq!(pdfs_in(&sb.out), 0);
    sb.stop().await;
}

async fn revoked_and_expired_cards_are_refused(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let mut kiosk = sb.kiosk();
    for (kind, code) in [
        (CardKind::Revoked, ErrorCode::CardRevoked),
        (CardKind::Expired, ErrorCode::CardExpired),
    ] {
        let card = sb.cards(kind)[0];
        let error = kiosk
            .issue(
                &card.path,
                &pin_of(card),
                resident_record(HouseholdScope::SelfOnly),
                &sb.out,
            )
            .await
            .unwrap_err();
        assert_eq!(center_code(&error), Some(code), "{error}");
    }
    assert_eq!(pdfs_in(&sb.out), 0);
    sb.stop().await;
}

async fn challenges_are_single_use(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let settings = sb.kiosk_settings("seven", "seven-0002");
    let client = kiosk_sim::CenterClient::new(&settings).unwrap();
    let card = sb.printable_resident_cards()[2];
    let pin = pin_of(card);
    let order = resident_record(HouseholdScope::SelfOnly);

    let challenge = client.challenge().await.unwrap();
    let nonce = challenge.nonce.as_slice().to_vec();
    let first = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "key-first-0001",
        &nonce,
        order.clone(),
    );
    assert!(matches!(
        client.issue(&first).await.unwrap(),
        IssuanceResponse::Prepared { .. }
    ));

    // The same nonce again, even under a new key with a fresh card signature: replay.
    let again = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "key-second-0002",
        &nonce,
        order.clone(),
    );
    let error = client.issue(&again).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeUsed),
        "{error}"
    );

    // A nonce the center never issued.
    let forged = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "key-third-0003",
        &[7u8; 32],
        order.clone(),
    );
    let error = client.issue(&forged).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeUnknown),
        "{error}"
    );

    // A challenge issued to another kiosk cannot be used by this one.
    let other = kiosk_sim::CenterClient::new(&sb.kiosk_settings("seven", "seven-0003")).unwrap();
    let foreign = other.challenge().await.unwrap();
    let stolen = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "key-fourth-0004",
        foreign.nonce.as_slice(),
        order.clone(),
    );
    let error = client.issue(&stolen).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeUnknown),
        "{error}"
    );

    // A signature over another order does not verify (and does not burn the nonce).
    let fresh = client.challenge().await.unwrap();
    let mut tampered = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "key-fifth-00005",
        fresh.nonce.as_slice(),
        order,
    );
    tampered.order.copies = 2;
    let error = client.issue(&tampered).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::CardSignatureInvalid),
        "{error}"
    );
    sb.stop().await;
}

/// The challenge is used in the transaction that records the order it authorizes
/// (`center::challenge`): two orders racing on one nonce get one record, and a nonce
/// is spent too when its order is replayed or never reaches a municipality.
async fn a_nonce_authorizes_one_order_whatever_becomes_of_it(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let settings = sb.kiosk_settings("seven", "seven-0006");
    let client = kiosk_sim::CenterClient::new(&settings).unwrap();
    let card = sb.printable_resident_cards()[5];
    let pin = pin_of(card);
    let order = resident_record(HouseholdScope::SelfOnly);
    let signed = |key: &str, nonce: &[u8], order: &CertificateOrder| {
        signed_request(
            &card.path,
            &pin,
            &settings.kiosk_id,
            key,
            nonce,
            order.clone(),
        )
    };

    // Two orders under different keys race on one nonce: exactly one is recorded.
    let nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    let keys: Vec<String> = (0..4).map(|i| format!("race-key-000{i}")).collect();
    let racers: Vec<_> = keys.iter().map(|key| signed(key, &nonce, &order)).collect();
    let answers = futures_util::future::join_all(racers.iter().map(|r| client.issue(r))).await;
    let mut winners = Vec::new();
    for (key, answer) in keys.iter().zip(answers) {
        match answer {
            Ok(IssuanceResponse::Prepared { request_id, .. }) => winners.push((key, request_id)),
            Ok(other) => panic!("{other:?}"),
            Err(error) => assert_eq!(
                error.error_code(),
                Some(ErrorCode::ChallengeUsed),
                "{error}"
            ),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "one nonce, one recorded order: {winners:?}"
    );
    let (winner_key, winner_id) = winners.remove(0);

    // A retry under the recorded key replays it, and spends its fresh nonce.
    let retry_nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    match client
        .issue(&signed(winner_key, &retry_nonce, &order))
        .await
        .unwrap()
    {
        IssuanceResponse::Prepared { request_id, .. } => assert_eq!(request_id, winner_id),
        other => panic!("{other:?}"),
    }
    let error = client
        .issue(&signed("after-replay-0001", &retry_nonce, &order))
        .await
        .unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeUsed),
        "a replay spends its nonce: {error}"
    );

    // An order for a municipality not connected here spends its nonce as well.
    let lost_nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    let unconnected = CertificateOrder {
        route: schemas::Route::Domicile {
            municipality_code: schemas::MunicipalityCode::parse("131016").unwrap(),
        },
        certificate: schemas::CertificateKind::FamilyRegisterAll,
        copies: 1,
    };
    let error = client
        .issue(&signed("unconnected-0001", &lost_nonce, &unconnected))
        .await
        .unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::MunicipalityUnknown),
        "{error}"
    );
    let error = client
        .issue(&signed("unconnected-0002", &lost_nonce, &order))
        .await
        .unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeUsed),
        "{error}"
    );
    sb.stop().await;
}

async fn unregistered_card_is_refused(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let card = sb.cards(CardKind::Unregistered)[0];
    let outcome = sb
        .issue(card, resident_record(HouseholdScope::SelfOnly))
        .await
        .expect("an answer");
    match outcome {
        IssueOutcome::Refused {
            reason, message_ja, ..
        } => {
            assert_eq!(reason, RefusalReason::CardNotRegistered);
            assert_eq!(message_ja, RefusalReason::RESIDENT_MESSAGE_JA);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(pdfs_in(&sb.out), 0);
    sb.stop().await;
}

async fn unprintable_character_is_refused(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let card = sb.card_with_name_containing("\u{20BB7}");
    let outcome = sb
        .issue(card, resident_record(HouseholdScope::SelfOnly))
        .await
        .expect("an answer");
    let request_id = match outcome {
        IssueOutcome::Refused {
            reason, request_id, ..
        } => {
            assert_eq!(reason, RefusalReason::UnprintableCharacter);
            request_id
        }
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(pdfs_in(&sb.out), 0);
    let row = center::db::find_issuance(&sb.running.center_pool, &request_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, center::db::IssuanceState::Refused);
    assert_eq!(row.refusal_reason.as_deref(), Some("unprintable_character"));
    assert_eq!(row.total_fee_yen, None, "no fee without a certificate");
    sb.stop().await;
}

/// 住民票の写し of the holder alone, without 世帯主 or 筆頭者 (who may be someone else),
/// so the holder's is the only name on the page.
fn holder_only() -> CertificateOrder {
    let mut order = resident_record(HouseholdScope::SelfOnly);
    order.certificate = schemas::CertificateKind::ResidentRecord {
        scope: HouseholdScope::SelfOnly,
        include_domicile: false,
        include_relationship: false,
    };
    order
}

async fn fifty_concurrent_residents_each_get_their_own_certificate(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let cards: Vec<_> = sb
        .printable_resident_cards()
        .into_iter()
        .take(50)
        .cloned()
        .collect();
    assert_eq!(
        cards.len(),
        50,
        "the sample registers bind at least 50 printable residents"
    );
    let all_names: Vec<String> = cards.iter().map(|c| c.holder_name.clone()).collect();
    let mut tasks = Vec::new();
    for (i, card) in cards.iter().enumerate() {
        let settings = sb.kiosk_settings(
            if i % 2 == 0 { "seven" } else { "lawson" },
            &format!(
                "{}-{:04}",
                if i % 2 == 0 { "seven" } else { "lawson" },
                i / 2 + 1
            ),
        );
        let out = sb.out.join(format!("kiosk-{i}"));
        let card = card.clone();
        tasks.push(tokio::spawn(async move {
            let mut kiosk = kiosk_sim::Kiosk::from_settings(&settings).unwrap();
            let outcome = kiosk
                .issue(&card.path, &pin_of(&card), holder_only(), &out)
                .await;
            (card, outcome)
        }));
    }
    let mut request_ids = std::collections::HashSet::new();
    for task in tasks {
        let (card, outcome) = task.await.unwrap();
        let doc = printed(outcome.unwrap_or_else(|e| panic!("{}: {e}", card.serial)));
        assert!(request_ids.insert(doc.request_id), "request ids are unique");
        for id in page_request_ids(&doc.pdf_path) {
            assert_eq!(
                id,
                doc.request_id.to_string(),
                "every page is bound to its own request"
            );
        }
        let text = squeeze(&pdf_text(&doc.pdf_path));
        assert!(
            text.contains(&squeeze(&card.holder_name)),
            "{} in its own certificate",
            card.holder_name
        );
        for other in all_names.iter().filter(|n| **n != card.holder_name) {
            assert!(
                !text.contains(&squeeze(other)),
                "{other} printed on {}'s certificate",
                card.holder_name
            );
        }
        assert!(text.contains(&doc.request_id.to_string()));
    }
    sb.stop().await;
}

async fn idempotent_retry_replays_and_conflicts(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let settings = sb.kiosk_settings("seven", "seven-0004");
    let client = kiosk_sim::CenterClient::new(&settings).unwrap();
    let card = sb.printable_resident_cards()[3];
    let pin = pin_of(card);
    let order = resident_record(HouseholdScope::SelfOnly);

    let nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    let first = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "retry-key-0001",
        &nonce,
        order.clone(),
    );
    let IssuanceResponse::Prepared {
        request_id,
        document,
        ..
    } = client.issue(&first).await.unwrap()
    else {
        panic!("prepared expected")
    };
    // The kiosk lost the answer and retries under the same key with a new challenge.
    let nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    let retry = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "retry-key-0001",
        &nonce,
        order.clone(),
    );
    let IssuanceResponse::Prepared {
        request_id: again,
        document: again_doc,
        ..
    } = client.issue(&retry).await.unwrap()
    else {
        panic!("prepared expected")
    };
    assert_eq!(
        again, request_id,
        "same key, same content: the same request"
    );
    assert_eq!(again_doc.sha256, document.sha256, "and the same document");

    // Same key, different order: a conflict.
    let nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    let mut other_order = order;
    other_order.copies = 2;
    let conflict = signed_request(
        &card.path,
        &pin,
        &settings.kiosk_id,
        "retry-key-0001",
        &nonce,
        other_order,
    );
    let error = client.issue(&conflict).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::IdempotencyConflict),
        "{error}"
    );
    sb.stop().await;
}

async fn expired_challenge_is_refused(backend: Backend) {
    // Challenges live 50 ms in this sandbox.
    let Some(sb) = spawn_sandbox_with(backend, |layout| {
        set_center_timeouts(layout, &[("challenge_ttl_ms", 50)])
    })
    .await
    else {
        return;
    };
    let settings = sb.kiosk_settings("seven", "seven-0005");
    let client = kiosk_sim::CenterClient::new(&settings).unwrap();
    let card = sb.printable_resident_cards()[4];
    let nonce = client.challenge().await.unwrap().nonce.as_slice().to_vec();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let late = signed_request(
        &card.path,
        &pin_of(card),
        &settings.kiosk_id,
        "late-key-0001",
        &nonce,
        resident_record(HouseholdScope::SelfOnly),
    );
    let error = client.issue(&late).await.unwrap_err();
    assert_eq!(
        error.error_code(),
        Some(ErrorCode::ChallengeExpired),
        "{error}"
    );
    sb.stop().await;
}
