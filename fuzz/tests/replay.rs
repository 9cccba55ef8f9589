//! Replays every checked-in corpus file through its target body on stable Rust (no
//! libFuzzer): CI runs this, and a crash file a fuzz run leaves in
//! `artifacts/<target>/` becomes a regression test once copied into `corpus/<target>/`.
//!
//! `write_seeds` (ignored) regenerates the seed files named `seed-*`:
//! `cargo test --manifest-path fuzz/Cargo.toml --test replay -- --ignored write_seeds`.

use std::path::{Path, PathBuf};

use konbini_fuzz::{
    center_key, municipality_code, municipality_key, run, trusted_key, MUNICIPALITY, NOW_UNIX_S,
    REGISTER_FILES, TARGETS,
};
use schemas::{
    AmountLine, AnswerOutcome, Attestation, CardCertificateBody, CardProof, CardSerial,
    CardSessionId, CardSessionRef, CardSessionRequest, CatalogueRequest, CertificateAnswer,
    CertificateFetch, CertificateKind, CertificateOrder, CertificateType, ChallengeRequest,
    Digest32, DomicileRegistration, DomicileRegistrationReceipt, DomicileRegistrationRequest,
    DomicileRegistrationStatus, DomicileRegistrationSubmit, FrontSide, IdempotencyKey,
    IncomeTaxFront, IssuanceNotice, IssuanceRequest, KioskId, OperatorId, PaymentMethod,
    PaymentOutcome, PaymentReport, PrintOutcome, PrintReport, RefusalReason, RequestId, Route,
    SealPayload, Signed, SignedSeal, TrustList, TRUST_LIST_FORMAT,
};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

#[test]
fn every_corpus_file_runs_clean_through_its_target() {
    for target in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target} has no corpus");
        for file in files {
            let data = std::fs::read(&file).expect("read corpus file");
            let outcome = std::panic::catch_unwind(|| run(target, &data));
            assert!(outcome.is_ok(), "{target} panics on {}", file.display());
        }
    }
}

/// The seeds must reach past the first parser: a seed the target rejects at once
/// teaches the fuzzer nothing about the layers behind it.
#[test]
fn seeds_are_accepted_by_the_first_layer() {
    for file in seed_files("seal_decoder") {
        let data = std::fs::read(&file).unwrap();
        if data[0] == 0 {
            let text = std::str::from_utf8(&data[1..]).unwrap();
            let seal = SignedSeal::from_qr_text(text).expect("seed seal decodes");
            seal.verify(&municipality_key().public())
                .expect("seed seal verifies");
        }
    }
    for file in seed_files("answer_guard") {
        let data = std::fs::read(&file).unwrap();
        let answer: schemas::SignedCertificateAnswer =
            serde_json::from_slice(&data).expect("seed answer");
        // The issued seed passes the whole guard, so mutations start from a good answer.
        if let AnswerOutcome::Issued {
            fee_yen_per_copy, ..
        } = &answer.payload.outcome
        {
            let expected = center::binding_guard::Expected {
                request_id: answer.payload.request_id,
                municipality: answer.payload.municipality_code,
                card_digest: answer.payload.card_digest,
                certificate: CertificateType::IncomeTax,
                fee_yen_per_copy: *fee_yen_per_copy,
                requested_at_unix_s: answer.payload.answered_at_unix_s,
            };
            let keys = [(trusted_key().kid, trusted_key())].into();
            let verified = center::binding_guard::check_answer(&expected, answer.clone(), &keys);
            assert!(
                matches!(
                    verified,
                    Ok(center::binding_guard::VerifiedAnswer::Issued { .. })
                ),
                "{verified:?}"
            );
        }
    }
    let wire = seed_files("wire_messages");
    assert!(wire.len() >= 13, "a seed for every wire type");
    for file in wire {
        let data = std::fs::read(&file).unwrap();
        serde_json::from_slice::<serde_json::Value>(&data[1..]).expect("seed is JSON");
    }
}

fn seed_files(target: &str) -> Vec<PathBuf> {
    std::fs::read_dir(corpus_dir(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .collect()
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn with_pick(pick: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![pick];
    out.extend_from_slice(body);
    out
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn request_id(n: u8) -> RequestId {
    RequestId(uuid::Uuid::from_bytes([n; 16]))
}

fn attestation() -> Attestation {
    Attestation {
        municipality_name: "美濃加茂市".into(),
        certification: "上記のとおり相違ないことを証明する。".into(),
        issue_date_wareki: "令和8年11月23日".into(),
        mayor_title: "美濃加茂市長".into(),
        mayor_name: "加茂野 太郎".into(),
    }
}

fn income_tax_front() -> FrontSide {
    let line = |label: &str, amount_yen: i64| AmountLine {
        label: label.into(),
        amount_yen,
    };
    FrontSide::IncomeTax(IncomeTaxFront {
        title: "所得・課税証明書".into(),
        fiscal_year_wareki: "令和8年度".into(),
        income_year_wareki: "令和7年分".into(),
        name: "髙橋 一郎".into(),
        birth_date_wareki: "昭和50年4月12日".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        income_lines: vec![line("給与収入", 5_200_000), line("事業所得", -120_000)],
        tax_lines: vec![line("市民税", 125_700)],
        attestation: attestation(),
    })
}

fn issued_answer() -> Signed<CertificateAnswer> {
    let front = income_tax_front();
    let serial = request_id(1);
    let subject = municipal_adapter::seal::SealSubject {
        name: "髙橋 一郎".into(),
        birth_date: jiff::civil::date(1975, 4, 12),
        address: Some("岐阜県美濃加茂市太田町1234番地の5".into()),
        seal_registration_number: None,
    };
    let seals = municipal_adapter::seal::build_seals(
        CertificateType::IncomeTax,
        municipality_code(),
        serial,
        &subject,
        &front,
        u64::try_from(NOW_UNIX_S).unwrap(),
        &municipality_key(),
    )
    .expect("seed seals build");
    Signed::sign(
        CertificateAnswer {
            request_id: serial,
            municipality_code: municipality_code(),
            card_digest: Digest32([3; 32]),
            answered_at_unix_s: NOW_UNIX_S,
            outcome: AnswerOutcome::Issued {
                fee_yen_per_copy: 300,
                front,
                seals,
            },
        },
        &municipality_key(),
    )
    .unwrap()
}

fn refused_answer() -> Signed<CertificateAnswer> {
    Signed::sign(
        CertificateAnswer {
            request_id: request_id(2),
            municipality_code: municipality_code(),
            card_digest: Digest32([4; 32]),
            answered_at_unix_s: NOW_UNIX_S,
            outcome: AnswerOutcome::Refused {
                reason: RefusalReason::ALL[0],
            },
        },
        &municipality_key(),
    )
    .unwrap()
}

fn seal_payload(doc_type: CertificateType, registration: Option<&str>) -> SealPayload {
    SealPayload {
        doc_type: doc_type.seal_doc_type(),
        issuer: municipality_code(),
        serial: request_id(5),
        issued_at_unix_s: u64::try_from(NOW_UNIX_S).unwrap(),
        verify_until_unix_s: u64::try_from(NOW_UNIX_S).unwrap() + 90 * 86_400,
        page: 1,
        page_count: 1,
        name: "髙橋 一郎".into(),
        birth_date: 19_750_412,
        address: (!doc_type.is_family_register())
            .then(|| "岐阜県美濃加茂市太田町1234番地の5".to_owned()),
        seal_registration_number: registration.map(str::to_owned),
        front_digest: [6; 32],
    }
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a wire change"]
fn write_seeds() {
    // The compact seal, at each of its three entry points.
    for (name, payload) in [
        (
            "resident",
            seal_payload(CertificateType::ResidentRecord, None),
        ),
        (
            "seal-registration",
            seal_payload(CertificateType::SealRegistration, Some("12345")),
        ),
        (
            "family-register",
            seal_payload(CertificateType::FamilyRegisterAll, None),
        ),
    ] {
        let seal = SignedSeal::sign(&payload, &municipality_key());
        let text = seal.to_qr_text();
        write(
            "seal_decoder",
            &format!("text-{name}"),
            &with_pick(0, text.as_bytes()),
        );
        write(
            "seal_decoder",
            &format!("payload-{name}"),
            &with_pick(1, &payload.to_cbor()),
        );
        let envelope = base45_decode(text.strip_prefix("KC1:").unwrap());
        write(
            "seal_decoder",
            &format!("envelope-{name}"),
            &with_pick(2, &envelope),
        );
    }

    // The register: each file of the sample, as it ships.
    let sample = municipal_adapter::samples::sample_register_dir(MUNICIPALITY).unwrap();
    for (index, file) in REGISTER_FILES.iter().enumerate() {
        let bytes = std::fs::read(sample.join(file)).unwrap();
        // Small seeds fuzz faster: the header and a handful of rows are enough.
        let head: Vec<u8> = bytes
            .split_inclusive(|b| *b == b'\n')
            .take(8)
            .flatten()
            .copied()
            .collect();
        let stem = file.trim_end_matches(".csv");
        write(
            "register_import",
            stem,
            &with_pick(u8::try_from(index).unwrap(), &head),
        );
    }

    // Every wire type a server accepts, one seed each, by its selector.
    let kiosk = KioskId::parse("seven-0001").unwrap();
    let key = IdempotencyKey::parse("4f3c2b1a-0000-4000-8000-000000000001").unwrap();
    let serial = CardSerial::parse("2121130000000001").unwrap();
    let card_key = schemas::KeyPair::from_seed([11; 32]);
    let card_certificate = Signed::sign(
        CardCertificateBody {
            serial: serial.clone(),
            municipality_code: municipality_code(),
            public_key: card_key.public(),
            not_before_unix_s: NOW_UNIX_S - 86_400,
            not_after_unix_s: NOW_UNIX_S + 86_400,
        },
        &center_key(),
    )
    .unwrap();
    let order = CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::IncomeTax { fiscal_year: None },
        copies: 1,
    };
    let nonce = schemas::b64::Base64Bytes(vec![1; 32]);
    let issuance = IssuanceRequest {
        idempotency_key: key.clone(),
        kiosk_id: kiosk.clone(),
        order: order.clone(),
        card: CardProof::Session(CardSessionRef {
            card_session_id: CardSessionId(uuid::Uuid::from_bytes([8; 16])),
        }),
    };
    let card_session = CardSessionRequest {
        kiosk_id: kiosk.clone(),
        visit_key: key.clone(),
        challenge_nonce: nonce.clone(),
        card_certificate: card_certificate.clone(),
        card_signature: card_key.sign(b"seed"),
    };
    let domicile_request = DomicileRegistrationRequest {
        idempotency_key: key.clone(),
        kiosk_id: kiosk.clone(),
        registration: DomicileRegistration {
            municipality_code: municipality_code(),
            domicile: "岐阜県美濃加茂市太田町1234番地".into(),
            domicile_head: "髙橋 一郎".into(),
        },
        challenge_nonce: nonce,
        card_certificate,
        card_signature: card_key.sign(b"seed"),
    };
    let muni = municipality_key();
    let fetch = Signed::sign(
        CertificateFetch {
            request_id: request_id(1),
            municipality_code: municipality_code(),
            card_serial: serial.clone(),
            card_digest: Digest32([3; 32]),
            order,
            requested_at_unix_s: NOW_UNIX_S,
            deadline_unix_ms: NOW_UNIX_S * 1000 + 10_000,
        },
        &center_key(),
    )
    .unwrap();
    let notice = Signed::sign(
        IssuanceNotice {
            request_id: request_id(1),
            municipality_code: municipality_code(),
            card_digest: Digest32([3; 32]),
            certificate_type: CertificateType::IncomeTax,
            copies: 1,
            page_count: 1,
            total_fee_yen: 300,
            document_sha256: Digest32([10; 32]),
            operator_id: OperatorId::parse("seven").unwrap(),
            kiosk_id: kiosk.clone(),
            printed_at_unix_ms: NOW_UNIX_S * 1000,
        },
        &center_key(),
    )
    .unwrap();
    let catalogue_request = Signed::sign(
        CatalogueRequest {
            municipality_code: municipality_code(),
            requested_at_unix_s: NOW_UNIX_S,
        },
        &center_key(),
    )
    .unwrap();
    let submit = Signed::sign(
        DomicileRegistrationSubmit {
            registration_id: request_id(9),
            municipality_code: municipality_code(),
            card_serial: serial,
            card_digest: Digest32([3; 32]),
            residence_municipality_code: municipality_code(),
            domicile: "岐阜県美濃加茂市太田町1234番地".into(),
            domicile_head: "髙橋 一郎".into(),
            submitted_at_unix_s: NOW_UNIX_S,
        },
        &center_key(),
    )
    .unwrap();
    let receipt = Signed::sign(
        DomicileRegistrationReceipt {
            registration_id: request_id(9),
            municipality_code: municipality_code(),
            card_digest: Digest32([3; 32]),
            status: DomicileRegistrationStatus::Pending,
            answered_at_unix_s: NOW_UNIX_S,
        },
        &muni,
    )
    .unwrap();
    let trust_list = Signed::sign(
        TrustList {
            format: TRUST_LIST_FORMAT.into(),
            version: 1,
            issued_at_unix_s: NOW_UNIX_S,
            next_update_unix_s: NOW_UNIX_S + 86_400,
            keys: vec![trusted_key()],
            revoked_documents: vec![],
        },
        &center_key(),
    )
    .unwrap();
    let seeds: [(&str, Vec<u8>); 14] = [
        ("issuance-request", json(&issuance)),
        ("card-session-request", json(&card_session)),
        (
            "challenge-request",
            json(&ChallengeRequest {
                kiosk_id: kiosk.clone(),
            }),
        ),
        (
            "payment-report",
            json(&PaymentReport {
                kiosk_id: kiosk.clone(),
                outcome: PaymentOutcome::Paid,
                amount_yen: 300,
                method: PaymentMethod::Cash,
                repeat: false,
            }),
        ),
        (
            "print-report",
            json(&PrintReport {
                kiosk_id: kiosk,
                outcome: PrintOutcome::Ok,
                repeat: true,
            }),
        ),
        ("domicile-registration-request", json(&domicile_request)),
        ("certificate-fetch", json(&fetch)),
        ("certificate-answer-issued", json(&issued_answer())),
        ("issuance-notice", json(&notice)),
        ("catalogue-request", json(&catalogue_request)),
        ("domicile-submit", json(&submit)),
        ("domicile-receipt", json(&receipt)),
        ("trust-list", json(&trust_list)),
        ("certificate-answer-refused", json(&refused_answer())),
    ];
    for (index, (name, body)) in seeds.iter().enumerate() {
        // The refused answer shares the answer's selector (7).
        let pick = if index == 13 {
            7
        } else {
            u8::try_from(index).unwrap()
        };
        write("wire_messages", name, &with_pick(pick, body));
    }

    write("answer_guard", "issued", &json(&issued_answer()));
    write("answer_guard", "refused", &json(&refused_answer()));

    // The document check: pasted text, and the first bytes of each sniffed kind.
    let seal = SignedSeal::sign(
        &seal_payload(CertificateType::ResidentRecord, None),
        &municipality_key(),
    );
    write("pdf_verifier", "qr-text", seal.to_qr_text().as_bytes());
    write(
        "pdf_verifier",
        "pdf-minimal",
        b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    );
    write(
        "pdf_verifier",
        "png-header",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\0\0\0\0",
    );
}

fn base45_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let values: Vec<usize> = text
        .chars()
        .map(|c| ALPHABET.find(c).expect("base45 character"))
        .collect();
    let mut out = Vec::new();
    for chunk in values.chunks(3) {
        match chunk {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                out.push(u8::try_from(n / 256).unwrap());
                out.push(u8::try_from(n % 256).unwrap());
            }
            [c, d] => out.push(u8::try_from(c + d * 45).unwrap()),
            _ => panic!("bad base45 length"),
        }
    }
    out
}
