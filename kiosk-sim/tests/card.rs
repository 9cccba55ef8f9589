//! The simulated card: PIN counter, lock persistence, and signatures.

mod common;

use common::{read_card_file, write_card_file, Fixture, TempDir, PIN};
use kiosk_sim::{CardError, SimCard};
use schemas::{CardAuthMessage, Digest32, SignedMessage as _, MAX_PIN_ATTEMPTS};

#[test]
fn correct_pin_signs_what_the_certificate_key_verifies() {
    let dir = TempDir::new("card-sign");
    let fixture = Fixture::new();
    let path = fixture.write_card(dir.path());
    let mut card = SimCard::open(&path).unwrap();
    assert_eq!(card.attempts_left(), MAX_PIN_ATTEMPTS);

    // The certificate is the card authority's.
    let body = card
        .certificate()
        .verify(&fixture.authority.public())
        .unwrap()
        .clone();

    let nonce = [7u8; 32];
    let digest = Digest32::of(b"order");
    let session = card.verify_pin(PIN).unwrap();
    let signature = session.sign_auth(&nonce, digest).unwrap();
    let message = CardAuthMessage {
        nonce: nonce.to_vec().into(),
        order_digest: digest,
    };
    body.public_key
        .verify(&message.signed_bytes().unwrap(), &signature)
        .unwrap();
    assert_eq!(session.certificate().payload, body);

    // Bound to exactly this nonce and this order.
    let other_order = CardAuthMessage {
        nonce: nonce.to_vec().into(),
        order_digest: Digest32::of(b"another order"),
    };
    assert!(body
        .public_key
        .verify(&other_order.signed_bytes().unwrap(), &signature)
        .is_err());
    let other_nonce = CardAuthMessage {
        nonce: [8u8; 32].to_vec().into(),
        order_digest: digest,
    };
    assert!(body
        .public_key
        .verify(&other_nonce.signed_bytes().unwrap(), &signature)
        .is_err());
}

#[test]
fn three_wrong_pins_lock_the_card_for_good() {
    let dir = TempDir::new("card-lock");
    let path = Fixture::new().write_card(dir.path());
    let mut card = SimCard::open(&path).unwrap();
    for expected_left in [2, 1, 0] {
        match card.verify_pin("0000") {
            Err(CardError::WrongPin { attempts_left }) => assert_eq!(attempts_left, expected_left),
            other => panic!("expected a wrong PIN, got {other:?}"),
        }
        assert_eq!(read_card_file(&path).pin_attempts_left, expected_left);
    }
    assert!(card.is_locked());
    // Even the right PIN opens nothing now.
    assert!(matches!(card.verify_pin(PIN), Err(CardError::Locked)));
    drop(card);

    // The lock lives on the card, not in the process.
    let mut reopened = SimCard::open(&path).unwrap();
    assert!(reopened.is_locked());
    assert!(matches!(reopened.verify_pin(PIN), Err(CardError::Locked)));
    assert_eq!(read_card_file(&path).pin_attempts_left, 0);
    // No temp files left beside the card.
    assert_eq!(dir.file_names(), ["card.json"]);
}

#[test]
fn correct_pin_resets_the_counter_and_persists_it() {
    let dir = TempDir::new("card-reset");
    let path = Fixture::new().write_card(dir.path());
    let mut card = SimCard::open(&path).unwrap();
    assert!(matches!(
        card.verify_pin("1111"),
        Err(CardError::WrongPin { attempts_left: 2 })
    ));
    assert!(matches!(
        card.verify_pin("2222"),
        Err(CardError::WrongPin { attempts_left: 1 })
    ));
    card.verify_pin(PIN).unwrap();
    assert_eq!(card.attempts_left(), MAX_PIN_ATTEMPTS);
    drop(card);
    assert_eq!(read_card_file(&path).pin_attempts_left, MAX_PIN_ATTEMPTS);
    // A fresh run gets the full three attempts again.
    let mut card = SimCard::open(&path).unwrap();
    assert!(matches!(
        card.verify_pin("3333"),
        Err(CardError::WrongPin { attempts_left: 2 })
    ));
}

#[test]
fn malformed_pins_cost_no_attempt() {
    let dir = TempDir::new("card-format");
    let path = Fixture::new().write_card(dir.path());
    let mut card = SimCard::open(&path).unwrap();
    for bad in ["", "123", "12345", "12a4", "１２３４", " 1234"] {
        assert!(
            matches!(card.verify_pin(bad), Err(CardError::BadPinFormat)),
            "{bad:?}"
        );
    }
    assert_eq!(card.attempts_left(), MAX_PIN_ATTEMPTS);
    assert_eq!(read_card_file(&path).pin_attempts_left, MAX_PIN_ATTEMPTS);
}

#[test]
fn a_wrong_pin_yields_no_session() {
    // Signing needs a PinSession, which only a correct PIN returns; the type system
    // rules out the rest. Here: the wrong-PIN path really returns none.
    let dir = TempDir::new("card-nosession");
    let path = Fixture::new().write_card(dir.path());
    let mut card = SimCard::open(&path).unwrap();
    let result = card.verify_pin("9999");
    assert!(result.is_err());
    assert!(result.ok().is_none());
}

#[test]
fn a_second_handle_cannot_grant_extra_attempts() {
    let dir = TempDir::new("card-handles");
    let path = Fixture::new().write_card(dir.path());
    let mut first = SimCard::open(&path).unwrap();
    let mut second = SimCard::open(&path).unwrap();
    assert!(first.verify_pin("0000").is_err());
    assert!(first.verify_pin("0000").is_err());
    // `second` was opened with 3 attempts, but the card says 1.
    assert!(matches!(
        second.verify_pin("0000"),
        Err(CardError::WrongPin { attempts_left: 0 })
    ));
    assert!(matches!(first.verify_pin(PIN), Err(CardError::Locked)));
}

#[test]
fn inconsistent_card_files_are_refused() {
    let dir = TempDir::new("card-malformed");
    let fixture = Fixture::new();

    let mut wrong_key = fixture.card_file.clone();
    wrong_key.key_seed = schemas::KeyPair::generate().seed_base64();
    let path = write_card_file(dir.path(), &wrong_key);
    assert!(matches!(
        SimCard::open(&path),
        Err(CardError::Malformed { .. })
    ));

    let mut bad_counter = fixture.card_file.clone();
    bad_counter.pin_attempts_left = MAX_PIN_ATTEMPTS + 1;
    let path = write_card_file(dir.path(), &bad_counter);
    assert!(matches!(
        SimCard::open(&path),
        Err(CardError::Malformed { .. })
    ));

    assert!(matches!(
        SimCard::open(dir.path().join("missing.json")),
        Err(CardError::Io { .. })
    ));
}

#[test]
fn debug_output_hides_the_secrets() {
    let dir = TempDir::new("card-debug");
    let fixture = Fixture::new();
    let path = fixture.write_card(dir.path());
    let card = SimCard::open(&path).unwrap();
    let text = format!("{card:?}");
    // Quoted, because a random temp path could contain the four digits by chance.
    assert!(!text.contains(&format!("{PIN:?}")));
    assert!(!text.contains(&fixture.card_file.key_seed));
}
