//! Deterministic keys, lists and seals shared by the verifier's tests.
#![allow(dead_code)]

use ciborium::value::Value;
use schemas::seal::ALG_EDDSA;
use schemas::{
    KeyPair, KeyStatus, MunicipalityCode, RequestId, SealPayload, Signed, SignedSeal,
    SignedTrustList, TrustList, TrustedKey, TRUST_LIST_FORMAT,
};

pub const DAY_S: i64 = 86_400;
/// The seal's issue time in most scenarios (2026-11-18).
pub const T0: i64 = 1_795_000_000;
/// The verifier's clock in most scenarios: ten days after issue.
pub const NOW: i64 = T0 + 10 * DAY_S;

pub fn center() -> KeyPair {
    KeyPair::from_seed([1; 32])
}
/// 美濃加茂市 212113's current seal key.
pub fn mino_kamo() -> KeyPair {
    KeyPair::from_seed([10; 32])
}
/// 岐阜県 215015's key (another municipality).
pub fn gifu() -> KeyPair {
    KeyPair::from_seed([20; 32])
}
pub fn code(text: &str) -> MunicipalityCode {
    MunicipalityCode::parse(text).unwrap()
}

/// A key active from two years before T0 until a year after, verifying for six years.
pub fn trusted(key: &KeyPair, municipality: &str) -> TrustedKey {
    TrustedKey {
        kid: key.kid(),
        public_key: key.public(),
        municipality_code: code(municipality),
        not_before_unix_s: T0 - 730 * DAY_S,
        usage_end_unix_s: T0 + 365 * DAY_S,
        verify_until_unix_s: T0 + 6 * 365 * DAY_S,
        status: KeyStatus::Active,
    }
}

/// A list issued an hour before NOW, fresh for a day.
pub fn list(keys: Vec<TrustedKey>) -> TrustList {
    TrustList {
        format: TRUST_LIST_FORMAT.into(),
        version: 7,
        issued_at_unix_s: NOW - 3_600,
        next_update_unix_s: NOW + DAY_S,
        keys,
        revoked_documents: Vec::new(),
    }
}

/// `list` re-dated to be fresh at `now` (issued a minute before, fresh for a minute).
pub fn fresh_at(mut list: TrustList, now: i64) -> SignedTrustList {
    list.issued_at_unix_s = now - 60;
    list.next_update_unix_s = now + 60;
    signed(list)
}

pub fn signed(list: TrustList) -> SignedTrustList {
    Signed::sign(list, &center()).unwrap()
}

/// The usual list: 212113's key only.
pub fn default_list() -> SignedTrustList {
    signed(list(vec![trusted(&mino_kamo(), "212113")]))
}

pub fn payload() -> SealPayload {
    SealPayload {
        doc_type: 1,
        issuer: code("212113"),
        serial: RequestId::from_bytes([0x5a; 16]),
        issued_at_unix_s: T0 as u64,
        verify_until_unix_s: (T0 + 90 * DAY_S) as u64,
        page: 1,
        page_count: 1,
        name: "髙橋 邉子".into(),
        birth_date: 19_850_412,
        address: Some("岐阜県美濃加茂市太田町１２３４番地の５".into()),
        seal_registration_number: None,
        front_digest: [7; 32],
    }
}

pub fn issued_at(at: i64) -> SealPayload {
    SealPayload {
        issued_at_unix_s: at as u64,
        ..payload()
    }
}

pub fn seal_text(payload: &SealPayload, key: &KeyPair) -> String {
    SignedSeal::sign(payload, key).to_qr_text()
}

pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// The bytes a seal signature covers, built here independently of `schemas`:
/// `"konbini-kofu/v1/seal" 0x00 || CBOR([alg, kid, payload])`.
pub fn signed_bytes(alg: i64, kid: &[u8], payload_cbor: &[u8]) -> Vec<u8> {
    let mut bytes = b"konbini-kofu/v1/seal\0".to_vec();
    bytes.extend_from_slice(&encode(&Value::Array(vec![
        int(alg),
        Value::Bytes(kid.to_vec()),
        Value::Bytes(payload_cbor.to_vec()),
    ])));
    bytes
}

/// QR text of an arbitrary envelope `[alg, kid, payload, signature]`.
pub fn envelope_text(alg: i64, kid: &[u8], payload_cbor: &[u8], signature: &[u8]) -> String {
    let envelope = encode(&Value::Array(vec![
        int(alg),
        Value::Bytes(kid.to_vec()),
        Value::Bytes(payload_cbor.to_vec()),
        Value::Bytes(signature.to_vec()),
    ]));
    format!("KC1:{}", base45::encode(envelope))
}

/// Signs arbitrary payload bytes with the real key, so that only the encoding can be
/// at fault (the issuer's own software producing a bad seal, or an attacker who holds
/// the key trying an ambiguity between decoders).
pub fn sign_raw(key: &KeyPair, alg: i64, payload_cbor: &[u8]) -> String {
    let kid = key.kid().0;
    let signature = key.sign(&signed_bytes(alg, &kid, payload_cbor));
    envelope_text(alg, &kid, payload_cbor, &signature.0)
}

/// The genuine payload's map entries.
pub fn entries() -> Vec<(Value, Value)> {
    let value: Value = ciborium::from_reader(payload().to_cbor().as_slice()).unwrap();
    match value {
        Value::Map(entries) => entries,
        other => panic!("payload is not a map: {other:?}"),
    }
}

pub const ALG: i64 = ALG_EDDSA;
