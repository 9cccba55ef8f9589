//! The tamper corpus: each altered seal or list, at the text level, with the verdict and
//! reason it must get.

mod common;

use ciborium::value::Value;
use common::*;
use schemas::{sha256, Digest32, KeyPair, KeyStatus, RevokedDocument, SignedSeal};
use verifier::{verify_seal, Reason, Verdict, Verification};

fn check(text: &str) -> Verification {
    verify_seal(text, &default_list(), &center().public(), NOW)
}

#[track_caller]
fn assert_outcome(v: &Verification, verdict: Verdict, reason: Reason) {
    assert_eq!(
        (v.verdict, v.reason),
        (verdict, reason),
        "got {} {}",
        v.verdict,
        v.reason
    );
}

#[track_caller]
fn assert_invalid(text: &str, reason: Reason) -> Verification {
    let v = check(text);
    assert_outcome(&v, Verdict::Invalid, reason);
    v
}

#[test]
fn genuine_seal_is_valid_with_its_fields() {
    let v = check(&seal_text(&payload(), &mino_kamo()));
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
    assert_eq!(v.fields, Some(payload()));
    assert_eq!(v.kid, Some(mino_kamo().kid()));
    assert_eq!(v.trust_list_version, Some(7));
    assert_eq!(v.trust_list_age_s, Some(3_600));
}

#[test]
fn json_output_has_stable_names() {
    let v = check(&seal_text(&payload(), &mino_kamo()));
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["verdict"], "VALID");
    assert_eq!(json["reason"], "ok");
    assert_eq!(json["kid"], mino_kamo().kid().to_string());
    assert_eq!(json["trust_list_version"], 7);
    let fields = &json["fields"];
    assert_eq!(fields["issuer"], "212113");
    assert_eq!(fields["certificate_type"], "resident_record");
    assert_eq!(fields["serial"], "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a");
    assert_eq!(fields["name"], "髙橋 邉子");
    assert_eq!(fields["front_digest"], hex::encode([7u8; 32]));
    assert!(fields["seal_registration_number"].is_null());
    let bad = serde_json::to_value(check("HC1:ABC")).unwrap();
    assert_eq!(bad["verdict"], "INVALID");
    assert_eq!(bad["reason"], "prefix");
    assert!(bad["fields"].is_null());
}

#[test]
fn altered_name_with_the_old_signature_is_bad_signature() {
    let mut seal = SignedSeal::sign(&payload(), &mino_kamo());
    let mut altered = payload();
    altered.name = "山田 太郎".into();
    seal.payload_cbor = altered.to_cbor();
    let v = assert_invalid(&seal.to_qr_text(), Reason::BadSignature);
    assert_eq!(v.fields, None, "an altered seal must not show its fields");
    assert_eq!(v.kid, Some(mino_kamo().kid()));
}

#[test]
fn bit_flip_in_the_base45_text() {
    let text = seal_text(&payload(), &mino_kamo());
    // The signature is the envelope's last 64 bytes; Base45 turns bytes 2k, 2k+1 into
    // characters 3k..3k+3 with the least significant digit first. Changing that digit
    // by one flips the low bits of byte 2k+1, inside the signature.
    let envelope_len = base45::decode(&text[4..]).unwrap().len();
    let pair = (envelope_len - 32) / 2;
    let at = 4 + 3 * pair;
    let mut chars = text.clone().into_bytes();
    chars[at] = if chars[at] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(chars).unwrap();
    let (before, after) = (
        base45::decode(&text[4..]).unwrap(),
        base45::decode(&flipped[4..]).unwrap(),
    );
    assert_eq!(before[..envelope_len - 64], after[..envelope_len - 64]);
    assert_ne!(before, after, "the flip must land in the signature");
    assert_invalid(&flipped, Reason::BadSignature);

    // A triple worth more than 65535 ("::" is 44 + 44·45 + …) is not Base45 at all.
    let mut chars = text.clone().into_bytes();
    chars[4..7].copy_from_slice(b":::");
    assert_invalid(&String::from_utf8(chars).unwrap(), Reason::Base45);
}

#[test]
fn no_single_character_change_is_valid() {
    let text = seal_text(&payload(), &mino_kamo());
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let list = default_list();
    for at in 4..text.len() {
        let mut chars = text.clone().into_bytes();
        let index = alphabet.iter().position(|&c| c == chars[at]).unwrap();
        chars[at] = alphabet[(index + 1) % alphabet.len()];
        let changed = String::from_utf8(chars).unwrap();
        let v = verify_seal(&changed, &list, &center().public(), NOW);
        assert_eq!(v.verdict, Verdict::Invalid, "char {at}: {}", v.reason);
    }
}

#[test]
fn no_single_bit_flip_of_the_envelope_is_valid() {
    let text = seal_text(&payload(), &mino_kamo());
    let envelope = base45::decode(&text[4..]).unwrap();
    let list = default_list();
    for bit in 0..envelope.len() * 8 {
        let mut bytes = envelope.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let changed = format!("KC1:{}", base45::encode(&bytes));
        let v = verify_seal(&changed, &list, &center().public(), NOW);
        assert_eq!(v.verdict, Verdict::Invalid, "bit {bit}: {}", v.reason);
        assert_eq!(v.fields, None, "bit {bit}");
    }
}

#[test]
fn truncation() {
    let text = seal_text(&payload(), &mino_kamo());
    // Three characters fewer is still Base45 (two bytes fewer): the CBOR ends early.
    assert_invalid(&text[..text.len() - 3], Reason::Cbor);
    // A body of length 3k+1 is not Base45.
    let body_len = text.len() - 4;
    let cut = 4 + body_len - (body_len % 3) - 2;
    assert_eq!((cut - 4) % 3, 1);
    assert_invalid(&text[..cut], Reason::Base45);
    assert_invalid("KC1:", Reason::Cbor);
}

#[test]
fn non_canonical_reencoding_signed_by_the_real_key() {
    // Version 1 as 0x18 0x01 (two bytes) where 0x01 suffices.
    let canonical = payload().to_cbor();
    assert_eq!(&canonical[1..3], &[0x00, 0x01]);
    let mut long = canonical[..2].to_vec();
    long.extend_from_slice(&[0x18, 0x01]);
    long.extend_from_slice(&canonical[3..]);
    assert_invalid(&sign_raw(&mino_kamo(), ALG, &long), Reason::NonCanonical);

    // Keys out of order.
    let mut map = entries();
    map.swap(7, 8);
    let unsorted = encode(&Value::Map(map));
    assert_invalid(
        &sign_raw(&mino_kamo(), ALG, &unsorted),
        Reason::NonCanonical,
    );

    // The envelope itself with a two-byte alg.
    let genuine = base45::decode(&seal_text(&payload(), &mino_kamo())[4..]).unwrap();
    assert_eq!(&genuine[..2], &[0x84, 0x27]);
    let mut envelope = vec![0x84, 0x38, 0x07];
    envelope.extend_from_slice(&genuine[2..]);
    assert_invalid(
        &format!("KC1:{}", base45::encode(&envelope)),
        Reason::NonCanonical,
    );
}

#[test]
fn algorithm_changed() {
    // -7 (ES256) signed over its own structure: only the algorithm is wrong.
    let text = sign_raw(&mino_kamo(), -7, &payload().to_cbor());
    let v = assert_invalid(&text, Reason::Algorithm);
    assert_eq!(v.kid, None);
}

#[test]
fn duplicate_keys() {
    // A second name after the first, each position otherwise ascending; signed by the
    // real key so that only the duplicate is wrong (a decoder keeping either name would
    // accept it).
    let mut map = entries();
    let name_at = map.iter().position(|(k, _)| *k == int(7)).unwrap();
    map.insert(name_at + 1, (int(7), Value::Text("山田 太郎".into())));
    let duplicated = encode(&Value::Map(map));
    assert_invalid(
        &sign_raw(&mino_kamo(), ALG, &duplicated),
        Reason::DuplicateKey,
    );
    // The same entry twice.
    let mut map = entries();
    let entry = map[name_at].clone();
    map.insert(name_at, entry);
    let doubled = encode(&Value::Map(map));
    assert_invalid(&sign_raw(&mino_kamo(), ALG, &doubled), Reason::DuplicateKey);
}

#[test]
fn unknown_field_wrong_version_and_malformed_fields() {
    let mut map = entries();
    map.push((int(12), int(0)));
    let extra = encode(&Value::Map(map));
    assert_invalid(&sign_raw(&mino_kamo(), ALG, &extra), Reason::UnknownField);

    let mut map = entries();
    map[0].1 = int(2);
    let v2 = encode(&Value::Map(map));
    assert_invalid(&sign_raw(&mino_kamo(), ALG, &v2), Reason::Version);

    let mut map = entries();
    map.retain(|(k, _)| *k != int(7));
    let no_name = encode(&Value::Map(map));
    assert_invalid(&sign_raw(&mino_kamo(), ALG, &no_name), Reason::Field);

    // A 7-byte kid.
    let kid = mino_kamo().kid().0;
    let payload_cbor = payload().to_cbor();
    let text = envelope_text(ALG, &kid[..7], &payload_cbor, &[0; 64]);
    assert_invalid(&text, Reason::Field);

    // One extra byte after the envelope.
    let mut envelope = base45::decode(&seal_text(&payload(), &mino_kamo())[4..]).unwrap();
    envelope.push(0x00);
    assert_invalid(
        &format!("KC1:{}", base45::encode(&envelope)),
        Reason::TrailingBytes,
    );
}

#[test]
fn wrong_prefix_and_too_long() {
    let text = seal_text(&payload(), &mino_kamo());
    assert_invalid(&text.replacen("KC1:", "HC1:", 1), Reason::Prefix);
    assert_invalid(&text.replacen("KC1:", "kc1:", 1), Reason::Prefix);
    assert_invalid(&format!(" {text}"), Reason::Prefix);
    // Taken as scanned: a trailing newline is not Base45.
    assert_invalid(&format!("{text}\n"), Reason::Base45);
    assert_invalid(&format!("KC1:{}", "0".repeat(1_997)), Reason::TooLong);
}

#[test]
fn unknown_kid() {
    let stranger = KeyPair::from_seed([99; 32]);
    let v = assert_invalid(&seal_text(&payload(), &stranger), Reason::UnknownKid);
    assert_eq!(v.kid, Some(stranger.kid()));
}

#[test]
fn key_of_another_municipality() {
    // 岐阜県's key is listed for 215015; the seal claims 212113.
    let list = signed(list(vec![
        trusted(&mino_kamo(), "212113"),
        trusted(&gifu(), "215015"),
    ]));
    let v = verify_seal(
        &seal_text(&payload(), &gifu()),
        &list,
        &center().public(),
        NOW,
    );
    assert_outcome(&v, Verdict::Invalid, Reason::WrongMunicipality);
    assert_eq!(v.fields, None);
    // The same key on a seal naming its own municipality is fine.
    let own = schemas::SealPayload {
        issuer: code("215015"),
        ..payload()
    };
    let v = verify_seal(&seal_text(&own, &gifu()), &list, &center().public(), NOW);
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
}

#[test]
fn issued_outside_the_key_period() {
    let key = trusted(&mino_kamo(), "212113");
    let (not_before, usage_end) = (key.not_before_unix_s, key.usage_end_unix_s);
    let l = list(vec![key]);
    // Each seal checked a day after its issue, with its own 90-day verify-until.
    let at = |issued: i64| {
        let seal = schemas::SealPayload {
            verify_until_unix_s: (issued + 90 * DAY_S) as u64,
            ..issued_at(issued)
        };
        let now = issued + DAY_S;
        verify_seal(
            &seal_text(&seal, &mino_kamo()),
            &fresh_at(l.clone(), now),
            &center().public(),
            now,
        )
    };
    assert_outcome(&at(usage_end), Verdict::Valid, Reason::Ok);
    assert_outcome(
        &at(usage_end + 1),
        Verdict::Invalid,
        Reason::KeyNotValidAtIssue,
    );
    assert_outcome(&at(not_before), Verdict::Valid, Reason::Ok);
    assert_outcome(
        &at(not_before - 1),
        Verdict::Invalid,
        Reason::KeyNotValidAtIssue,
    );
    // The fields of a genuine but out-of-period seal are shown.
    assert!(at(usage_end + 1).fields.is_some());
}

#[test]
fn expired_by_the_seal_or_by_the_key() {
    let text = seal_text(&payload(), &mino_kamo());
    let until = payload().verify_until_unix_s as i64;
    let l = list(vec![trusted(&mino_kamo(), "212113")]);
    let at = |now: i64| verify_seal(&text, &fresh_at(l.clone(), now), &center().public(), now);
    assert_outcome(&at(until), Verdict::Valid, Reason::Ok);
    assert_outcome(&at(until + 1), Verdict::Invalid, Reason::Expired);

    // The key's verify-until earlier than the seal's.
    let mut key = trusted(&mino_kamo(), "212113");
    key.verify_until_unix_s = NOW - 1;
    let v = verify_seal(
        &text,
        &signed(common::list(vec![key])),
        &center().public(),
        NOW,
    );
    assert_outcome(&v, Verdict::Invalid, Reason::Expired);
}

#[test]
fn revoked_key_depends_on_the_compromise_time() {
    let text = seal_text(&payload(), &mino_kamo());
    let with_compromise = |at: i64| {
        let mut key = trusted(&mino_kamo(), "212113");
        key.status = KeyStatus::Revoked {
            compromised_at_unix_s: at,
        };
        verify_seal(&text, &signed(list(vec![key])), &center().public(), NOW)
    };
    assert_outcome(
        &with_compromise(T0 - DAY_S),
        Verdict::Invalid,
        Reason::KeyRevoked,
    );
    assert_outcome(&with_compromise(T0), Verdict::Invalid, Reason::KeyRevoked);
    assert_outcome(&with_compromise(T0 + 1), Verdict::Valid, Reason::Ok);
    // A seal issued after the compromise by the same key.
    let late = seal_text(&issued_at(T0 + 2 * DAY_S), &mino_kamo());
    let mut key = trusted(&mino_kamo(), "212113");
    key.status = KeyStatus::Revoked {
        compromised_at_unix_s: T0 + DAY_S,
    };
    let v = verify_seal(&late, &signed(list(vec![key])), &center().public(), NOW);
    assert_outcome(&v, Verdict::Invalid, Reason::KeyRevoked);
}

#[test]
fn revoked_document() {
    let text = seal_text(&payload(), &mino_kamo());
    let mut l = list(vec![trusted(&mino_kamo(), "212113")]);
    l.revoked_documents.push(RevokedDocument {
        serial_sha256: Digest32(sha256(&[0x11; 16])),
        revoked_at_unix_s: T0,
    });
    let v = verify_seal(&text, &signed(l.clone()), &center().public(), NOW);
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
    l.revoked_documents.push(RevokedDocument {
        serial_sha256: Digest32(sha256(payload().serial.as_bytes())),
        revoked_at_unix_s: T0 + DAY_S,
    });
    let v = verify_seal(&text, &signed(l), &center().public(), NOW);
    assert_outcome(&v, Verdict::Invalid, Reason::DocumentRevoked);
    assert_eq!(v.fields, Some(payload()));
}

#[test]
fn stale_list_is_unknown() {
    let text = seal_text(&payload(), &mino_kamo());
    let list = default_list();
    let next_update = list.payload.next_update_unix_s;
    let v = verify_seal(&text, &list, &center().public(), next_update);
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
    let v = verify_seal(&text, &list, &center().public(), next_update + 1);
    assert_outcome(&v, Verdict::Unknown, Reason::TrustListStale);
    assert_eq!(v.fields, None);
    assert_eq!(v.trust_list_version, Some(7));
    assert_eq!(v.trust_list_age_s, Some(next_update + 1 - (NOW - 3_600)));
    // Stale wins over a malformed seal: nothing is decided on an old list.
    let v = verify_seal("garbage", &list, &center().public(), next_update + 1);
    assert_outcome(&v, Verdict::Unknown, Reason::TrustListStale);
}

#[test]
fn list_signed_by_another_key_or_altered_is_unknown() {
    let text = seal_text(&payload(), &mino_kamo());
    let impostor = KeyPair::from_seed([2; 32]);
    let forged =
        schemas::Signed::sign(list(vec![trusted(&mino_kamo(), "212113")]), &impostor).unwrap();
    let v = verify_seal(&text, &forged, &center().public(), NOW);
    assert_outcome(&v, Verdict::Unknown, Reason::TrustListInvalid);
    assert_eq!((v.trust_list_version, v.kid), (None, None));

    // The center's list with an attacker's key slipped in after signing.
    let stranger = KeyPair::from_seed([99; 32]);
    let mut altered = default_list();
    altered.payload.keys.push(trusted(&stranger, "212113"));
    let v = verify_seal(
        &seal_text(&payload(), &stranger),
        &altered,
        &center().public(),
        NOW,
    );
    assert_outcome(&v, Verdict::Unknown, Reason::TrustListInvalid);
}

#[test]
fn malformed_lists_are_unknown_even_when_signed() {
    let text = seal_text(&payload(), &mino_kamo());
    let verdict = |l: schemas::TrustList| verify_seal(&text, &signed(l), &center().public(), NOW);

    let mut l = list(vec![trusted(&mino_kamo(), "212113")]);
    l.format = "konbini-kofu/trust-list/2".into();
    assert_outcome(&verdict(l), Verdict::Unknown, Reason::TrustListInvalid);

    // A kid that is not its key's kid.
    let mut key = trusted(&mino_kamo(), "212113");
    key.kid = gifu().kid();
    assert_outcome(
        &verdict(list(vec![key])),
        Verdict::Unknown,
        Reason::TrustListInvalid,
    );

    // The same kid twice (for two municipalities: which one would decide?).
    let l = list(vec![
        trusted(&mino_kamo(), "212113"),
        trusted(&mino_kamo(), "215015"),
    ]);
    assert_outcome(&verdict(l), Verdict::Unknown, Reason::TrustListInvalid);

    // More keys than MAX_TRUSTED_KEYS (all distinct and consistent).
    let mut keys: Vec<_> = (0..=schemas::MAX_TRUSTED_KEYS)
        .map(|i| {
            let mut key = trusted(&mino_kamo(), "212113");
            key.public_key = schemas::PublicKey(sha256(&i.to_le_bytes()));
            key.kid = key.public_key.kid();
            key
        })
        .collect();
    keys.push(trusted(&mino_kamo(), "212113"));
    assert_outcome(
        &verdict(list(keys)),
        Verdict::Unknown,
        Reason::TrustListInvalid,
    );
}

#[test]
fn key_rotation_drill() {
    // 美濃加茂市 rotates: the old key stopped signing yesterday (T0 - 1 day) but its seals
    // verify for five more years; the new key signs from then on.
    let old = mino_kamo();
    let new = KeyPair::from_seed([11; 32]);
    let mut old_entry = trusted(&old, "212113");
    old_entry.not_before_unix_s = T0 - 2 * 365 * DAY_S;
    old_entry.usage_end_unix_s = T0 - DAY_S;
    old_entry.verify_until_unix_s = T0 + 5 * 365 * DAY_S;
    let mut new_entry = trusted(&new, "212113");
    new_entry.not_before_unix_s = T0 - DAY_S;
    new_entry.usage_end_unix_s = T0 + 365 * DAY_S;
    let list = signed(list(vec![old_entry, new_entry]));
    let run = |text: &str| verify_seal(text, &list, &center().public(), NOW);

    let old_seal = seal_text(&issued_at(T0 - 30 * DAY_S), &old);
    let v = run(&old_seal);
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
    assert_eq!(v.kid, Some(old.kid()));

    let late_old_seal = seal_text(&issued_at(T0), &old);
    assert_outcome(
        &run(&late_old_seal),
        Verdict::Invalid,
        Reason::KeyNotValidAtIssue,
    );

    let new_seal = seal_text(&issued_at(T0), &new);
    let v = run(&new_seal);
    assert_outcome(&v, Verdict::Valid, Reason::Ok);
    assert_eq!(v.kid, Some(new.kid()));

    // A seal with the old key's kid but signed by the new key does not verify.
    let mut swapped = SignedSeal::sign(&issued_at(T0 - 30 * DAY_S), &new);
    swapped.kid = old.kid();
    assert_outcome(
        &run(&swapped.to_qr_text()),
        Verdict::Invalid,
        Reason::BadSignature,
    );
}
