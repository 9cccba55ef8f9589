//! Fuzz target bodies, as plain functions so that two drivers share them: the
//! cargo-fuzz binaries in `fuzz_targets/` (libFuzzer, nightly features via
//! `RUSTC_BOOTSTRAP=1`) and `tests/replay.rs`, which runs every file of
//! `corpus/<target>/` through them under plain `cargo test` on stable.
//!
//! Every body must return normally for any input: a panic is a finding. Besides "no
//! panic", the bodies assert the properties hostile input must not break:
//!
//! - `seal_decoder`: a payload the strict decoder accepts re-encodes to the same bytes
//!   (there is one encoding per seal), and the QR text it accepts is the one it prints;
//! - `wire_messages`: whatever a server accepts it can write back, and what it writes
//!   back it accepts again as the same value;
//! - `answer_guard`: the binding guard either refuses or hands back exactly the
//!   answer's front and seals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemas::{
    CardSessionRequest, CertificateType, ChallengeRequest, DomicileRegistrationRequest,
    IssuanceRequest, KeyPair, KeyStatus, MunicipalityCode, PaymentReport, PrintReport, PublicKey,
    SealPayload, Signed, SignedCatalogue, SignedCatalogueRequest, SignedCertificateAnswer,
    SignedCertificateFetch, SignedDomicileRegistrationReceipt, SignedDomicileRegistrationSubmit,
    SignedIssuanceNotice, SignedMessage, SignedSeal, SignedTrustList, TrustList, TrustedKey,
    TRUST_LIST_FORMAT,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The names of the targets, as in `fuzz_targets/` and `corpus/`.
pub const TARGETS: [&str; 5] = [
    "seal_decoder",
    "register_import",
    "wire_messages",
    "answer_guard",
    "pdf_verifier",
];

/// Runs target `name` on `data` (the replay test's dispatcher).
pub fn run(name: &str, data: &[u8]) {
    match name {
        "seal_decoder" => seal_decoder(data),
        "register_import" => register_import(data),
        "wire_messages" => wire_messages(data),
        "answer_guard" => answer_guard(data),
        "pdf_verifier" => pdf_verifier(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// The municipality every fixture is about (美濃加茂市).
pub const MUNICIPALITY: &str = "212113";
/// A fixed clock for every target (2026-11-23T00:00:00Z): runs are reproducible.
pub const NOW_UNIX_S: i64 = 1_795_392_000;

/// Fixed keys: the municipality's seal key and the center's trust-list key.
pub fn municipality_key() -> KeyPair {
    KeyPair::from_seed([7; 32])
}

pub fn center_key() -> KeyPair {
    KeyPair::from_seed([9; 32])
}

pub fn municipality_code() -> MunicipalityCode {
    MunicipalityCode::parse(MUNICIPALITY).expect("fixture municipality code is valid")
}

/// The municipality's key as the center and relying parties trust it: active over
/// the whole fixture period.
pub fn trusted_key() -> TrustedKey {
    let public = municipality_key().public();
    TrustedKey {
        kid: public.kid(),
        public_key: public,
        municipality_code: municipality_code(),
        not_before_unix_s: 0,
        usage_end_unix_s: NOW_UNIX_S + 10 * 365 * 86_400,
        verify_until_unix_s: NOW_UNIX_S + 20 * 365 * 86_400,
        status: KeyStatus::Active,
    }
}

fn trust_list() -> &'static SignedTrustList {
    static LIST: OnceLock<SignedTrustList> = OnceLock::new();
    LIST.get_or_init(|| {
        Signed::sign(
            TrustList {
                format: TRUST_LIST_FORMAT.to_owned(),
                version: 1,
                issued_at_unix_s: NOW_UNIX_S - 60,
                next_update_unix_s: NOW_UNIX_S + 86_400,
                keys: vec![trusted_key()],
                revoked_documents: vec![],
            },
            &center_key(),
        )
        .expect("fixture trust list signs")
    })
}

fn municipality_public() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| municipality_key().public())
}

/// The compact seal: the first byte picks the layer the rest is fed to, so the fuzzer
/// reaches the CBOR payload decoder without having to get through Base45 first.
///
/// - 0: QR text (`KC1:` + Base45) → strict decode → verify against the fixed key, and
///   the relying party's whole check (`verifier::verify_seal`) against a fixed list;
/// - 1: the payload's CBOR bytes → [`SealPayload::from_cbor`];
/// - 2: the envelope's CBOR bytes, Base45-encoded here → as 0.
pub fn seal_decoder(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => seal_text(&String::from_utf8_lossy(rest)),
        1 => {
            if let Ok(payload) = SealPayload::from_cbor(rest) {
                assert_eq!(
                    payload.to_cbor(),
                    rest,
                    "an accepted seal payload has exactly one encoding"
                );
            }
        }
        _ => seal_text(&format!("{}{}", schemas::seal::SEAL_PREFIX, base45(rest))),
    }
}

fn seal_text(text: &str) {
    if let Ok(seal) = SignedSeal::from_qr_text(text) {
        assert_eq!(seal.to_qr_text(), text, "an accepted seal has one text");
        let unverified = seal.unverified_payload();
        if let Ok(payload) = seal.verify(municipality_public()) {
            assert_eq!(Ok(payload), unverified);
        }
    }
    let verification =
        verifier::verify_seal(text, trust_list(), &center_key().public(), NOW_UNIX_S);
    // Serialising the verdict is what the verification page and API do with it.
    serde_json::to_vec(&verification).expect("a verification serialises");
}

/// RFC 9285 Base45, written out here so the fuzz crate needs no encoder of its own
/// dependency just to build seed-shaped inputs.
fn base45(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let mut out = String::with_capacity(bytes.len() / 2 * 3 + 2);
    for chunk in bytes.chunks(2) {
        let (mut n, digits) = match chunk {
            [a, b] => (usize::from(*a) * 256 + usize::from(*b), 3),
            [a] => (usize::from(*a), 2),
            _ => unreachable!("chunks(2) yields one or two bytes"),
        };
        for _ in 0..digits {
            out.push(char::from(ALPHABET[n % 45]));
            n /= 45;
        }
    }
    out
}

/// The register files `register_import` can replace, by the input's first byte.
pub const REGISTER_FILES: [&str; 9] = municipal_adapter::register::import::REGISTER_FILES;

/// A private copy of the sample register of 美濃加茂市 (one per process, so parallel
/// fuzz jobs and test threads do not share files).
fn register_copy() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let source = municipal_adapter::samples::sample_register_dir(MUNICIPALITY)
            .expect("the sample register ships with the adapter");
        let dir = std::env::temp_dir().join(format!(
            "konbini-fuzz-register-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        copy_dir(&source, &dir).expect("copy the sample register");
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The CSV register import: the first byte picks one of [`REGISTER_FILES`], the rest
/// replaces it in a copy of the sample register (the other files stay valid, so
/// cross-file checks run too), then the directory is read and validated the way
/// `register import` does before touching a database.
pub fn register_import(data: &[u8]) {
    use std::sync::Mutex;
    // libFuzzer runs one input at a time per process; the lock is for the replay
    // test, whose corpus files may run on several threads.
    static LOCK: Mutex<()> = Mutex::new(());
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = register_copy();
    let file = REGISTER_FILES[usize::from(pick) % REGISTER_FILES.len()];
    let path = dir.join(file);
    let original = std::fs::read(&path).ok();
    std::fs::write(&path, content).expect("write the fuzzed register file");
    let today = jiff::civil::date(2026, 11, 23);
    let result =
        municipal_adapter::register::import::read_register_dir(municipality_code(), dir, today);
    if let Err(error) = &result {
        // Every report is printable and names its file and line.
        let _ = error.to_string();
        for row in error.row_errors() {
            let _ = row.to_string();
        }
    }
    match original {
        Some(bytes) => std::fs::write(&path, bytes).expect("restore the register file"),
        None => std::fs::remove_file(&path).expect("remove the fuzzed register file"),
    }
}

/// Every JSON body a server accepts: the first byte picks the type, the rest is the
/// body. Kiosk → center, center → adapter, and adapter → center answers.
pub fn wire_messages(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 13 {
        0 => drop(round_trip::<IssuanceRequest>(body)),
        1 => drop(round_trip::<CardSessionRequest>(body)),
        2 => drop(round_trip::<ChallengeRequest>(body)),
        3 => drop(round_trip::<PaymentReport>(body)),
        4 => drop(round_trip::<PrintReport>(body)),
        5 => drop(round_trip::<DomicileRegistrationRequest>(body)),
        6 => signed::<schemas::CertificateFetch>(body),
        7 => signed::<schemas::CertificateAnswer>(body),
        8 => signed::<schemas::IssuanceNotice>(body),
        9 => signed::<schemas::CatalogueRequest>(body),
        10 => signed::<schemas::DomicileRegistrationSubmit>(body),
        11 => signed::<schemas::DomicileRegistrationReceipt>(body),
        _ => {
            signed::<schemas::Catalogue>(body);
            signed::<TrustList>(body);
        }
    }
    // The type aliases the routes name are the ones decoded above.
    let _: fn(&[u8]) -> Option<SignedCertificateFetch> = decode;
    let _: fn(&[u8]) -> Option<SignedCertificateAnswer> = decode;
    let _: fn(&[u8]) -> Option<SignedIssuanceNotice> = decode;
    let _: fn(&[u8]) -> Option<SignedCatalogueRequest> = decode;
    let _: fn(&[u8]) -> Option<SignedCatalogue> = decode;
    let _: fn(&[u8]) -> Option<SignedDomicileRegistrationSubmit> = decode;
    let _: fn(&[u8]) -> Option<SignedDomicileRegistrationReceipt> = decode;
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// Decodes `body`; when accepted, writes it back and decodes that again: the result
/// must write the same bytes (the servers store and sign what they accepted).
fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = decode(body)?;
    let written = serde_json::to_vec(&value).expect("an accepted message serialises");
    let again: T = serde_json::from_slice(&written).expect("a written message is accepted");
    assert_eq!(
        serde_json::to_vec(&again).expect("serialises"),
        written,
        "write → read → write is stable"
    );
    Some(value)
}

/// A signed message: decode, canonical bytes, verify against the fixed key.
fn signed<T: SignedMessage + Serialize + DeserializeOwned>(body: &[u8]) {
    if let Some(message) = round_trip::<Signed<T>>(body) {
        let _ = message.payload.signed_bytes();
        let _ = message.verify(municipality_public());
    }
}

/// The center's binding guard on a municipality's answer (`center::binding_guard`).
///
/// The body is a `Signed<CertificateAnswer>`. The fuzzer cannot forge a signature, so
/// the answer is checked twice: as given (the signature path) and re-signed with the
/// trusted municipality key against an expectation taken from the answer itself, so
/// that the checks after the signature (catalogue fit, front validation, seals) see
/// fuzzed data.
pub fn answer_guard(data: &[u8]) {
    use center::binding_guard::{check_answer, Expected, VerifiedAnswer};
    use schemas::AnswerOutcome;

    let Ok(answer) = serde_json::from_slice::<SignedCertificateAnswer>(data) else {
        return;
    };
    let keys: HashMap<_, _> = [(trusted_key().kid, trusted_key())].into();
    let (certificate, fee_yen_per_copy) = match &answer.payload.outcome {
        AnswerOutcome::Issued {
            fee_yen_per_copy,
            front,
            ..
        } => (
            CertificateType::ALL
                .into_iter()
                .find(|t| front.fits(*t))
                .unwrap_or(CertificateType::ResidentRecord),
            *fee_yen_per_copy,
        ),
        AnswerOutcome::Refused { .. } => (CertificateType::ResidentRecord, 300),
    };
    let expected = Expected {
        request_id: answer.payload.request_id,
        municipality: answer.payload.municipality_code,
        card_digest: answer.payload.card_digest,
        certificate,
        fee_yen_per_copy,
        requested_at_unix_s: answer.payload.answered_at_unix_s,
    };
    let _ = check_answer(&expected, answer.clone(), &keys);
    let Ok(resigned) = Signed::sign(answer.payload.clone(), &municipality_key()) else {
        return;
    };
    match check_answer(&expected, resigned, &keys) {
        Ok(VerifiedAnswer::Issued {
            fee_yen_per_copy,
            front,
            seals,
        }) => match answer.payload.outcome {
            AnswerOutcome::Issued {
                fee_yen_per_copy: fee,
                front: sent_front,
                seals: sent_seals,
            } => {
                assert_eq!(fee_yen_per_copy, fee);
                assert_eq!(front, sent_front);
                assert_eq!(seals, sent_seals);
                assert_eq!(seals.len(), front.page_count(), "one seal per front page");
            }
            AnswerOutcome::Refused { .. } => panic!("a refusal came back issued"),
        },
        Ok(VerifiedAnswer::Refused { reason }) => {
            assert!(
                matches!(answer.payload.outcome, AnswerOutcome::Refused { reason: r } if r == reason)
            );
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// The relying party's document check on arbitrary bytes: sniffed as PDF, PNG/JPEG
/// or else taken as pasted QR text, then verified against the fixed trust list.
pub fn pdf_verifier(data: &[u8]) {
    let text;
    let input = match verifier::Input::sniff(data) {
        Some(input) => input,
        None => {
            text = String::from_utf8_lossy(data);
            verifier::Input::QrText(&text)
        }
    };
    let result = verifier::verify_input(input, trust_list(), &center_key().public(), NOW_UNIX_S);
    serde_json::to_vec(&result).expect("a document verification serialises");
}
