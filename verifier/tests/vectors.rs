//! Seal test vectors (`tests/vectors/seal-v1.json`, format in `tests/vectors/README.md`):
//! every output is regenerated from the file's seed and payload and must match byte for
//! byte (Ed25519 signatures are deterministic). `KOFU_WRITE_SEAL_VECTORS=1` rewrites the
//! outputs instead, after a deliberate change of the seal format.

mod common;

use common::*;
use schemas::{KeyPair, KeyStatus, RequestId, SealPayload, SignedSeal, TrustedKey};
use serde::{Deserialize, Serialize};
use verifier::{verify_seal, Reason};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/seal-v1.json");

#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    vectors: Vec<Vector>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    // Inputs.
    seed_hex: String,
    payload: Payload,
    // Outputs.
    public_key_hex: String,
    kid_hex: String,
    payload_cbor_hex: String,
    signed_bytes_hex: String,
    signature_hex: String,
    envelope_hex: String,
    qr_text: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct Payload {
    doc_type: u64,
    issuer: String,
    serial_hex: String,
    issued_at_unix_s: u64,
    verify_until_unix_s: u64,
    page: u8,
    page_count: u8,
    name: String,
    birth_date: u32,
    address: Option<String>,
    seal_registration_number: Option<String>,
    front_digest_hex: String,
}

impl Payload {
    fn to_seal(&self) -> SealPayload {
        SealPayload {
            doc_type: self.doc_type,
            issuer: code(&self.issuer),
            serial: RequestId::from_bytes(
                hex::decode(&self.serial_hex).unwrap().try_into().unwrap(),
            ),
            issued_at_unix_s: self.issued_at_unix_s,
            verify_until_unix_s: self.verify_until_unix_s,
            page: self.page,
            page_count: self.page_count,
            name: self.name.clone(),
            birth_date: self.birth_date,
            address: self.address.clone(),
            seal_registration_number: self.seal_registration_number.clone(),
            front_digest: hex::decode(&self.front_digest_hex)
                .unwrap()
                .try_into()
                .unwrap(),
        }
    }
}

fn key_of(vector: &Vector) -> KeyPair {
    KeyPair::from_seed(hex::decode(&vector.seed_hex).unwrap().try_into().unwrap())
}

/// Every output of `vector`, recomputed from its inputs.
fn regenerate(vector: &Vector) -> Vector {
    let key = key_of(vector);
    let payload = vector.payload.to_seal();
    let seal = SignedSeal::sign(&payload, &key);
    let qr_text = seal.to_qr_text();
    let envelope = base45::decode(&qr_text["KC1:".len()..]).unwrap();
    Vector {
        public_key_hex: hex::encode(key.public().0),
        kid_hex: key.kid().to_string(),
        payload_cbor_hex: hex::encode(&seal.payload_cbor),
        // Built by this test, not by `schemas`: the two must agree.
        signed_bytes_hex: hex::encode(signed_bytes(ALG, &key.kid().0, &seal.payload_cbor)),
        signature_hex: hex::encode(seal.signature.0),
        envelope_hex: hex::encode(envelope),
        qr_text,
        ..vector.clone()
    }
}

fn read() -> File {
    serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap()
}

#[test]
fn vectors_regenerate_identically() {
    let file = read();
    assert_eq!(file.format, "konbini-kofu/seal-vectors/1");
    assert!(file.vectors.len() >= 3);
    let regenerated = File {
        format: file.format.clone(),
        vectors: file.vectors.iter().map(regenerate).collect(),
    };
    if std::env::var_os("KOFU_WRITE_SEAL_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&regenerated).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
        return;
    }
    for (stored, fresh) in file.vectors.iter().zip(&regenerated.vectors) {
        assert_eq!(stored, fresh, "vector {}", stored.name);
    }
}

#[test]
fn vectors_decode_verify_and_are_valid() {
    for vector in read().vectors {
        let key = key_of(&vector);
        let payload = vector.payload.to_seal();
        // The stored signature verifies over the stored signed bytes.
        let signature = schemas::SignatureBytes(
            hex::decode(&vector.signature_hex)
                .unwrap()
                .try_into()
                .unwrap(),
        );
        key.public()
            .verify(&hex::decode(&vector.signed_bytes_hex).unwrap(), &signature)
            .unwrap();
        // The stored QR text decodes to the stored payload bytes and fields.
        let seal = SignedSeal::from_qr_text(&vector.qr_text).unwrap();
        assert_eq!(hex::encode(&seal.payload_cbor), vector.payload_cbor_hex);
        assert_eq!(seal.verify(&key.public()).unwrap(), payload);
        // And a relying party with a list naming the key says VALID.
        let entry = TrustedKey {
            status: KeyStatus::Active,
            ..trusted(&key, &vector.payload.issuer)
        };
        let now = payload.issued_at_unix_s as i64 + DAY_S;
        let v = verify_seal(
            &vector.qr_text,
            &fresh_at(list(vec![entry]), now),
            &center().public(),
            now,
        );
        assert_eq!(v.reason, Reason::Ok, "vector {}", vector.name);
        assert_eq!(v.fields, Some(payload));
    }
}
