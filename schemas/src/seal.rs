//! The signed seal printed as a QR code on the back side (うら面).
//!
//! A machine-checkable replacement for the by-eye comparison of the real service, in
//! the manner of ICAO Visible Digital Seals and the EU Digital COVID Certificate.
//!
//! Payload: a deterministic CBOR map (RFC 8949 §4.2.1: definite lengths, shortest
//! integer forms, keys in ascending order, no duplicates) with small integer keys:
//!
//! | key | field | type |
//! | --- | --- | --- |
//! | 0 | format version (1) | uint |
//! | 1 | document type ([`crate::CertificateType::seal_doc_type`]: 1 住民票の写し … 8 戸籍の附票の写し) | uint |
//! | 2 | issuer municipality code | uint (6 digits) |
//! | 3 | document serial = the center's request id | bstr(16) |
//! | 4 | issued at | uint, Unix seconds |
//! | 5 | verify until | uint, Unix seconds |
//! | 6 | page i of n | [uint, uint] |
//! | 7 | name | tstr |
//! | 8 | date of birth | uint yyyymmdd |
//! | 9 | address (omitted for 戸籍 types, which never carry an address or 本籍) | tstr, optional |
//! | 10 | seal-registration number (印鑑登録証明書 only) | tstr, optional |
//! | 11 | SHA-256 of the canonical front data | bstr(32) |
//!
//! The decoder also refuses (`SealError::Field`) a payload whose fields disagree:
//! an issuer that is not a 6-digit code with its check digit; page `i` outside
//! `1..=n` (so `n >= 1`); a date of birth that is not a real calendar date written as
//! 8 digits; verify-until not after issued-at; an address on a 戸籍 type (6 戸籍全部
//! 事項証明書, 7 個人事項証明書, 8 戸籍の附票の写し: the adapter signs none, not even
//! for the 附票, whose front lists addresses); a seal-registration number on any type
//! but 3 印鑑登録証明書, or none on it.
//!
//! Envelope: the CBOR array `[alg, kid, payload, signature]` with `alg = -8` (EdDSA,
//! as in COSE; nothing else is accepted), `kid` the 8-byte key id and `signature` the
//! Ed25519 signature over `"konbini-kofu/v1/seal" 0x00 || CBOR([alg, kid, payload])`.
//! The QR text is `"KC1:" + Base45(envelope)`.

use crate::crypto::{KeyPair, Kid, PublicKey, SignatureBytes};
use crate::ids::{MunicipalityCode, RequestId};
use ciborium::value::{Integer, Value};

pub const SEAL_VERSION: u64 = 1;
pub const SEAL_PREFIX: &str = "KC1:";
/// COSE algorithm identifier for EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// Upper bound on a QR text we are willing to decode (a version-25 QR holds ~1,800
/// alphanumeric characters; anything longer is not ours).
pub const MAX_SEAL_TEXT_LEN: usize = 2_000;

/// Document type of 住民票の写し in the seal; every type's number is
/// [`crate::CertificateType::seal_doc_type`].
pub const DOC_RESIDENT_RECORD: u64 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("seal text is too long")]
    TooLong,
    #[error("seal text does not start with {SEAL_PREFIX}")]
    Prefix,
    #[error("seal text is not valid Base45")]
    Base45,
    #[error("seal is not well-formed CBOR: {0}")]
    Cbor(String),
    #[error("seal has trailing bytes")]
    TrailingBytes,
    #[error("seal is not in canonical CBOR form")]
    NonCanonical,
    /// A map repeats a key. Checked on its own because ciborium's `Value` keeps both
    /// entries and re-encodes them byte for byte, so the re-encoding check cannot see it.
    #[error("seal has a duplicate map key")]
    DuplicateKey,
    #[error("seal field {0} is missing or has the wrong type")]
    Field(&'static str),
    #[error("seal has an unknown field {0}")]
    UnknownField(i128),
    #[error("seal uses an algorithm other than Ed25519")]
    Algorithm,
    #[error("seal format version {0} is not supported")]
    Version(u64),
    #[error("seal signature does not verify")]
    BadSignature,
}

/// The signed fields of one page's seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealPayload {
    pub doc_type: u64,
    pub issuer: MunicipalityCode,
    pub serial: RequestId,
    pub issued_at_unix_s: u64,
    pub verify_until_unix_s: u64,
    pub page: u8,
    pub page_count: u8,
    pub name: String,
    /// yyyymmdd.
    pub birth_date: u32,
    pub address: Option<String>,
    /// 印鑑登録番号, for 印鑑登録証明書.
    pub seal_registration_number: Option<String>,
    pub front_digest: [u8; 32],
}

fn int(v: impl Into<Integer>) -> Value {
    Value::Integer(v.into())
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail.
    ciborium::into_writer(value, &mut out).expect("CBOR into Vec");
    out
}

/// Decodes exactly one CBOR item and insists that it is in deterministic form.
///
/// Re-encoding must give the same bytes: this rejects indefinite lengths, non-shortest
/// integers and lengths, bignums that fit an integer, `undefined` for `null`. Re-encoding
/// keeps map entries in their order, duplicates included, so key order and uniqueness
/// are checked separately ([`check_map_keys`]).
fn decode_canonical(bytes: &[u8]) -> Result<Value, SealError> {
    let mut rest = bytes;
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|e| SealError::Cbor(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SealError::TrailingBytes);
    }
    check_map_keys(&value)?;
    if encode(&value) != bytes {
        return Err(SealError::NonCanonical);
    }
    Ok(value)
}

/// RFC 8949 §4.2.1: in every map the keys' encodings are strictly ascending in bytewise
/// order; an equal pair is a duplicate key, a descending pair is non-canonical.
/// Recursion depth is bounded by ciborium's decoder (which refuses deeper nesting).
fn check_map_keys(value: &Value) -> Result<(), SealError> {
    match value {
        Value::Map(entries) => {
            let mut previous: Option<Vec<u8>> = None;
            for (key, item) in entries {
                let encoded = encode(key);
                if let Some(previous) = &previous {
                    match previous.as_slice().cmp(encoded.as_slice()) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => return Err(SealError::DuplicateKey),
                        std::cmp::Ordering::Greater => return Err(SealError::NonCanonical),
                    }
                }
                check_map_keys(key)?;
                check_map_keys(item)?;
                previous = Some(encoded);
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_map_keys),
        Value::Tag(_, inner) => check_map_keys(inner),
        _ => Ok(()),
    }
}

impl SealPayload {
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut entries = vec![
            (int(0), int(SEAL_VERSION)),
            (int(1), int(self.doc_type)),
            (int(2), int(self.issuer.as_u32())),
            (int(3), Value::Bytes(self.serial.as_bytes().to_vec())),
            (int(4), int(self.issued_at_unix_s)),
            (int(5), int(self.verify_until_unix_s)),
            (
                int(6),
                Value::Array(vec![int(self.page), int(self.page_count)]),
            ),
            (int(7), Value::Text(self.name.clone())),
            (int(8), int(self.birth_date)),
        ];
        if let Some(address) = &self.address {
            entries.push((int(9), Value::Text(address.clone())));
        }
        if let Some(number) = &self.seal_registration_number {
            entries.push((int(10), Value::Text(number.clone())));
        }
        entries.push((int(11), Value::Bytes(self.front_digest.to_vec())));
        encode(&Value::Map(entries))
    }

    pub fn from_cbor(bytes: &[u8]) -> Result<Self, SealError> {
        let Value::Map(entries) = decode_canonical(bytes)? else {
            return Err(SealError::Field("payload map"));
        };
        let mut fields: [Option<Value>; 12] = Default::default();
        for (key, value) in entries {
            let key = match key {
                Value::Integer(i) => i128::from(i),
                _ => return Err(SealError::Field("integer key")),
            };
            match usize::try_from(key) {
                // Already refused by `decode_canonical`; kept so that a later change
                // there can never turn a duplicate into "last one wins".
                Ok(k) if k < fields.len() && fields[k].is_some() => {
                    return Err(SealError::DuplicateKey)
                }
                Ok(k) if k < fields.len() => fields[k] = Some(value),
                _ => return Err(SealError::UnknownField(key)),
            }
        }
        let uint = |k: usize, name: &'static str| -> Result<u64, SealError> {
            match &fields[k] {
                Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| SealError::Field(name)),
                _ => Err(SealError::Field(name)),
            }
        };
        let bytes_n = |k: usize, n: usize, name: &'static str| -> Result<Vec<u8>, SealError> {
            match &fields[k] {
                Some(Value::Bytes(b)) if b.len() == n => Ok(b.clone()),
                _ => Err(SealError::Field(name)),
            }
        };
        let text = |k: usize, name: &'static str| -> Result<String, SealError> {
            match &fields[k] {
                Some(Value::Text(t)) => Ok(t.clone()),
                _ => Err(SealError::Field(name)),
            }
        };
        let optional_text = |k: usize, name: &'static str| -> Result<Option<String>, SealError> {
            match &fields[k] {
                None => Ok(None),
                Some(Value::Text(t)) => Ok(Some(t.clone())),
                _ => Err(SealError::Field(name)),
            }
        };
        let version = uint(0, "version")?;
        if version != SEAL_VERSION {
            return Err(SealError::Version(version));
        }
        let issuer = u32::try_from(uint(2, "issuer")?)
            .ok()
            .and_then(|c| MunicipalityCode::from_u32(c).ok())
            .ok_or(SealError::Field("issuer"))?;
        let serial: [u8; 16] = bytes_n(3, 16, "serial")?
            .try_into()
            .map_err(|_| SealError::Field("serial"))?;
        let (page, page_count) = match &fields[6] {
            Some(Value::Array(items)) if items.len() == 2 => {
                let get = |v: &Value| match v {
                    Value::Integer(i) => u8::try_from(*i).ok(),
                    _ => None,
                };
                match (get(&items[0]), get(&items[1])) {
                    (Some(i), Some(n)) if i >= 1 && i <= n => (i, n),
                    _ => return Err(SealError::Field("page")),
                }
            }
            _ => return Err(SealError::Field("page")),
        };
        let front_digest: [u8; 32] = bytes_n(11, 32, "front digest")?
            .try_into()
            .map_err(|_| SealError::Field("front digest"))?;
        let doc_type = uint(1, "document type")?;
        if crate::CertificateType::from_seal_doc_type(doc_type).is_none() {
            return Err(SealError::Field("document type"));
        }
        let payload = Self {
            doc_type,
            issuer,
            serial: RequestId::from_bytes(serial),
            issued_at_unix_s: uint(4, "issued at")?,
            verify_until_unix_s: uint(5, "verify until")?,
            page,
            page_count,
            name: text(7, "name")?,
            birth_date: u32::try_from(uint(8, "birth date")?)
                .map_err(|_| SealError::Field("birth date"))?,
            address: optional_text(9, "address")?,
            seal_registration_number: optional_text(10, "seal registration number")?,
            front_digest,
        };
        payload.check_consistency()?;
        Ok(payload)
    }

    /// The rules between fields (module docs): a payload that breaks one is refused
    /// even with a good signature, so no verifier ever shows such a seal as VALID.
    fn check_consistency(&self) -> Result<(), SealError> {
        // `MunicipalityCode` holds only valid codes; kept explicit as the rule.
        if self.issuer.as_u32() > 999_999 {
            return Err(SealError::Field("issuer"));
        }
        if self.page_count < 1 || self.page < 1 || self.page > self.page_count {
            return Err(SealError::Field("page"));
        }
        if !is_calendar_date(self.birth_date) {
            return Err(SealError::Field("birth date"));
        }
        if self.verify_until_unix_s <= self.issued_at_unix_s {
            return Err(SealError::Field("verify until"));
        }
        let doc_type = crate::CertificateType::from_seal_doc_type(self.doc_type)
            .ok_or(SealError::Field("document type"))?;
        if doc_type.is_family_register() && self.address.is_some() {
            return Err(SealError::Field("address"));
        }
        let needs_number = doc_type == crate::CertificateType::SealRegistration;
        if needs_number != self.seal_registration_number.is_some() {
            return Err(SealError::Field("seal registration number"));
        }
        Ok(())
    }
}

/// `yyyymmdd` with four year digits and a day that exists (29 February only in leap
/// years).
fn is_calendar_date(yyyymmdd: u32) -> bool {
    if !(10_000_101..=99_991_231).contains(&yyyymmdd) {
        return false;
    }
    let (year, month, day) = (yyyymmdd / 10_000, yyyymmdd / 100 % 100, yyyymmdd % 100);
    match (i16::try_from(year), i8::try_from(month), i8::try_from(day)) {
        (Ok(y), Ok(m), Ok(d)) => jiff::civil::Date::new(y, m, d).is_ok(),
        _ => false,
    }
}

/// A decoded seal: payload plus the key id and signature, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedSeal {
    pub kid: Kid,
    pub payload_cbor: Vec<u8>,
    pub signature: SignatureBytes,
}

fn signed_part(kid: &Kid, payload_cbor: &[u8]) -> Vec<u8> {
    let protected = Value::Array(vec![
        int(ALG_EDDSA),
        Value::Bytes(kid.0.to_vec()),
        Value::Bytes(payload_cbor.to_vec()),
    ]);
    let mut bytes = b"konbini-kofu/v1/seal\0".to_vec();
    bytes.extend_from_slice(&encode(&protected));
    bytes
}

impl SignedSeal {
    pub fn sign(payload: &SealPayload, key: &KeyPair) -> Self {
        let payload_cbor = payload.to_cbor();
        let kid = key.kid();
        let signature = key.sign(&signed_part(&kid, &payload_cbor));
        Self {
            kid,
            payload_cbor,
            signature,
        }
    }

    pub fn to_qr_text(&self) -> String {
        let envelope = Value::Array(vec![
            int(ALG_EDDSA),
            Value::Bytes(self.kid.0.to_vec()),
            Value::Bytes(self.payload_cbor.clone()),
            Value::Bytes(self.signature.0.to_vec()),
        ]);
        format!("{SEAL_PREFIX}{}", base45::encode(encode(&envelope)))
    }

    /// Parses QR text strictly; does not verify the signature.
    pub fn from_qr_text(text: &str) -> Result<Self, SealError> {
        if text.len() > MAX_SEAL_TEXT_LEN {
            return Err(SealError::TooLong);
        }
        let body = text.strip_prefix(SEAL_PREFIX).ok_or(SealError::Prefix)?;
        let bytes = base45::decode(body).map_err(|_| SealError::Base45)?;
        // The base45 crate truncates an out-of-range final pair (RFC 9285 requires an
        // error), so two texts could decode to one seal; only the canonical text passes.
        if base45::encode(&bytes) != body {
            return Err(SealError::Base45);
        }
        let Value::Array(items) = decode_canonical(&bytes)? else {
            return Err(SealError::Field("envelope"));
        };
        let [alg, kid, payload, signature]: [Value; 4] =
            items.try_into().map_err(|_| SealError::Field("envelope"))?;
        match alg {
            Value::Integer(i) if i128::from(i) == i128::from(ALG_EDDSA) => {}
            _ => return Err(SealError::Algorithm),
        }
        let kid: [u8; 8] = match kid {
            Value::Bytes(b) => b.try_into().map_err(|_| SealError::Field("kid"))?,
            _ => return Err(SealError::Field("kid")),
        };
        let Value::Bytes(payload_cbor) = payload else {
            return Err(SealError::Field("payload"));
        };
        let signature: [u8; 64] = match signature {
            Value::Bytes(b) => b.try_into().map_err(|_| SealError::Field("signature"))?,
            _ => return Err(SealError::Field("signature")),
        };
        // Reject a malformed payload before anyone looks at the signature.
        SealPayload::from_cbor(&payload_cbor)?;
        Ok(Self {
            kid: Kid(kid),
            payload_cbor,
            signature: SignatureBytes(signature),
        })
    }

    /// The payload, if `key` (whose kid must match) signed it.
    pub fn verify(&self, key: &PublicKey) -> Result<SealPayload, SealError> {
        if key.kid() != self.kid {
            return Err(SealError::BadSignature);
        }
        key.verify(&signed_part(&self.kid, &self.payload_cbor), &self.signature)
            .map_err(|_| SealError::BadSignature)?;
        SealPayload::from_cbor(&self.payload_cbor)
    }

    /// The payload without checking the signature (for display of an INVALID seal only).
    pub fn unverified_payload(&self) -> Result<SealPayload, SealError> {
        SealPayload::from_cbor(&self.payload_cbor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SealPayload {
        SealPayload {
            doc_type: DOC_RESIDENT_RECORD,
            issuer: MunicipalityCode::parse("212113").unwrap(),
            serial: RequestId::new_random(),
            issued_at_unix_s: 1_795_000_000,
            verify_until_unix_s: 1_826_000_000,
            page: 1,
            page_count: 1,
            name: "髙橋 邉子".into(),
            birth_date: 19_850_412,
            address: Some("岐阜県美濃加茂市太田町１２３４番地の５".into()),
            seal_registration_number: None,
            front_digest: [7; 32],
        }
    }

    #[test]
    fn round_trip_and_size() {
        let key = KeyPair::generate();
        let seal = SignedSeal::sign(&sample(), &key);
        let text = seal.to_qr_text();
        let parsed = SignedSeal::from_qr_text(&text).unwrap();
        assert_eq!(parsed.verify(&key.public()).unwrap(), sample_with(&parsed));
        let envelope_len = base45::decode(&text[4..]).unwrap().len();
        assert!(envelope_len <= 260, "seal is {envelope_len} bytes");
    }

    fn sample_with(parsed: &SignedSeal) -> SealPayload {
        parsed.unverified_payload().unwrap()
    }

    #[test]
    fn optional_fields_round_trip() {
        let key = KeyPair::generate();
        let mut payload = sample();
        payload.doc_type = crate::CertificateType::SealRegistration.seal_doc_type();
        payload.address = None;
        payload.seal_registration_number = Some("第12345号".into());
        let parsed = SignedSeal::from_qr_text(&SignedSeal::sign(&payload, &key).to_qr_text())
            .unwrap()
            .verify(&key.public())
            .unwrap();
        assert_eq!(parsed, payload);
    }

    #[test]
    fn tampering_is_caught() {
        let key = KeyPair::generate();
        let mut seal = SignedSeal::sign(&sample(), &key);
        let mut other = sample();
        other.name = "山田 太郎".into();
        seal.payload_cbor = other.to_cbor();
        assert_eq!(seal.verify(&key.public()), Err(SealError::BadSignature));
        let foreign = KeyPair::generate();
        let seal = SignedSeal::sign(&sample(), &key);
        assert_eq!(seal.verify(&foreign.public()), Err(SealError::BadSignature));
    }

    #[test]
    fn non_canonical_and_trailing_are_rejected() {
        let bytes = sample().to_cbor();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            SealPayload::from_cbor(&trailing),
            Err(SealError::TrailingBytes)
        );
        // 0xa? map header replaced by an indefinite-length map (0xbf ... 0xff).
        let mut indefinite = vec![0xbf];
        indefinite.extend_from_slice(&bytes[1..]);
        indefinite.push(0xff);
        assert!(SealPayload::from_cbor(&indefinite).is_err());
        assert!(SignedSeal::from_qr_text("HC1:ABC").is_err());
        assert_eq!(
            SignedSeal::from_qr_text(&"KC1:".repeat(600)),
            Err(SealError::TooLong)
        );
    }

    /// The payload's map entries, to rebuild maps in orders the encoder never makes.
    fn entries() -> Vec<(Value, Value)> {
        match decode_canonical(&sample().to_cbor()).unwrap() {
            Value::Map(entries) => entries,
            other => panic!("payload is not a map: {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        // The same key twice with different values, and twice with the same value; both
        // placed in ascending position so only the duplicate is wrong.
        for replacement in [int(2), int(1)] {
            let mut map = entries();
            map.insert(2, (int(1), replacement));
            let bytes = encode(&Value::Map(map));
            assert_eq!(SealPayload::from_cbor(&bytes), Err(SealError::DuplicateKey));
        }
    }

    #[test]
    fn unsorted_keys_and_long_integers_are_rejected() {
        let mut map = entries();
        map.swap(1, 2);
        let bytes = encode(&Value::Map(map));
        assert_eq!(SealPayload::from_cbor(&bytes), Err(SealError::NonCanonical));
        // Version 1 as a two-byte integer (0x18 0x01) instead of the one-byte 0x01.
        let canonical = sample().to_cbor();
        assert_eq!(&canonical[1..3], &[0x00, 0x01]);
        let mut long = canonical[..2].to_vec();
        long.extend_from_slice(&[0x18, 0x01]);
        long.extend_from_slice(&canonical[3..]);
        assert_eq!(SealPayload::from_cbor(&long), Err(SealError::NonCanonical));
    }

    #[test]
    fn unknown_document_type_is_rejected() {
        let mut payload = sample();
        payload.doc_type = 9;
        assert_eq!(
            SealPayload::from_cbor(&payload.to_cbor()),
            Err(SealError::Field("document type"))
        );
    }

    #[test]
    fn only_canonical_base45_is_accepted() {
        let key = KeyPair::generate();
        let text = SignedSeal::sign(&sample(), &key).to_qr_text();
        // Envelope lengths are even or odd depending on the payload; make one with a
        // final single byte by adding a character to the name until it is odd.
        let mut payload = sample();
        let mut text_odd = text.clone();
        while base45::decode(&text_odd[4..]).unwrap().len() & 1 == 0 {
            payload.name.push('x');
            text_odd = SignedSeal::sign(&payload, &key).to_qr_text();
        }
        assert!(SignedSeal::from_qr_text(&text_odd).is_ok());
        // The final pair (c, d) stands for one byte c + 45 d; the crate keeps only the
        // low 8 bits, so the value + 256 spells the same byte with another text.
        let (head, tail) = text_odd.split_at(text_odd.len() - 2);
        let byte = *base45::decode(&text_odd[4..]).unwrap().last().unwrap();
        let value = usize::from(byte) + 256;
        let table = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        let forged = format!(
            "{head}{}{}",
            table[value % 45] as char,
            table[value / 45] as char
        );
        assert_ne!(&forged[forged.len() - 2..], tail);
        assert_eq!(
            base45::decode(&forged[4..]).unwrap(),
            base45::decode(&text_odd[4..]).unwrap()
        );
        assert_eq!(SignedSeal::from_qr_text(&forged), Err(SealError::Base45));
    }

    /// Decoding `payload` (encoded as is, signed with a fresh key) fails on `field`,
    /// through the payload decoder and through the QR text.
    fn refused(payload: &SealPayload, field: &'static str) {
        assert_eq!(
            SealPayload::from_cbor(&payload.to_cbor()),
            Err(SealError::Field(field)),
            "{payload:?}"
        );
        let text = SignedSeal::sign(payload, &KeyPair::generate()).to_qr_text();
        assert_eq!(
            SignedSeal::from_qr_text(&text),
            Err(SealError::Field(field))
        );
    }

    fn of_type(certificate: crate::CertificateType) -> SealPayload {
        let mut payload = sample();
        payload.doc_type = certificate.seal_doc_type();
        if certificate.is_family_register() {
            payload.address = None;
        }
        if certificate == crate::CertificateType::SealRegistration {
            payload.seal_registration_number = Some("12345".into());
        }
        payload
    }

    #[test]
    fn every_type_as_the_adapter_signs_it_is_accepted() {
        for certificate in crate::CertificateType::ALL {
            let payload = of_type(certificate);
            assert_eq!(
                SealPayload::from_cbor(&payload.to_cbor()),
                Ok(payload),
                "{certificate}"
            );
        }
    }

    #[test]
    fn no_address_on_family_register_types() {
        for certificate in [
            crate::CertificateType::FamilyRegisterAll,
            crate::CertificateType::FamilyRegisterIndividual,
            crate::CertificateType::FamilyRegisterAttachment,
        ] {
            let mut payload = of_type(certificate);
            payload.address = Some("岐阜県美濃加茂市太田町１番地".into());
            refused(&payload, "address");
        }
    }

    #[test]
    fn seal_registration_number_only_and_always_on_seal_registration() {
        let mut payload = of_type(crate::CertificateType::SealRegistration);
        payload.seal_registration_number = None;
        refused(&payload, "seal registration number");
        for certificate in crate::CertificateType::ALL {
            if certificate == crate::CertificateType::SealRegistration {
                continue;
            }
            let mut payload = of_type(certificate);
            payload.seal_registration_number = Some("12345".into());
            refused(&payload, "seal registration number");
        }
    }

    #[test]
    fn pages_are_one_to_n() {
        for (page, page_count) in [(0, 1), (2, 1), (0, 0), (1, 0), (4, 3)] {
            let payload = SealPayload {
                page,
                page_count,
                ..sample()
            };
            refused(&payload, "page");
        }
        for (page, page_count) in [(1, 1), (3, 3), (2, 5)] {
            let payload = SealPayload {
                page,
                page_count,
                ..sample()
            };
            assert!(SealPayload::from_cbor(&payload.to_cbor()).is_ok());
        }
    }

    #[test]
    fn birth_date_is_a_real_date() {
        for birth_date in [
            0,
            1_985_041,
            19_850_230,
            20_230_229,
            19_851_301,
            19_850_001,
            19_850_400,
            19_850_431,
            100_000_101,
        ] {
            let payload = SealPayload {
                birth_date,
                ..sample()
            };
            refused(&payload, "birth date");
        }
        for birth_date in [20_240_229, 20_000_229, 19_001_231, 19_850_101] {
            let payload = SealPayload {
                birth_date,
                ..sample()
            };
            assert!(
                SealPayload::from_cbor(&payload.to_cbor()).is_ok(),
                "{birth_date}"
            );
        }
    }

    #[test]
    fn issuer_is_a_six_digit_code() {
        // Codes with a leading zero (北海道: 011002 札幌市) are 6 digits too.
        let mut sapporo = sample();
        sapporo.issuer = MunicipalityCode::parse("011002").unwrap();
        assert!(SealPayload::from_cbor(&sapporo.to_cbor()).is_ok());
        // Seven digits, a wrong check digit, a negative number.
        for issuer in [int(2_121_130), int(212_114), int(-212_113)] {
            let mut map = entries();
            map[2].1 = issuer;
            assert_eq!(
                SealPayload::from_cbor(&encode(&Value::Map(map))),
                Err(SealError::Field("issuer"))
            );
        }
    }

    #[test]
    fn verify_until_is_after_issue() {
        let at = sample().issued_at_unix_s;
        for verify_until_unix_s in [at, at - 1, 0] {
            let payload = SealPayload {
                verify_until_unix_s,
                ..sample()
            };
            refused(&payload, "verify until");
        }
        let payload = SealPayload {
            verify_until_unix_s: at + 1,
            ..sample()
        };
        assert!(SealPayload::from_cbor(&payload.to_cbor()).is_ok());
    }
}
