//! `center verify --qr` through the binary: verdicts, exit codes, the signed fields for
//! side-by-side comparison, and UNKNOWN when the trust list cannot be trusted.

mod common;

use schemas::{
    KeyPair, KeyStatus, MunicipalityCode, RequestId, SealPayload, Signed, SignedSeal, TrustList,
    TrustedKey, TRUST_LIST_FORMAT,
};

const DAY_S: i64 = 86_400;

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn seal(key: &KeyPair, name: &str) -> String {
    let now = u64::try_from(now_s()).unwrap();
    let payload = SealPayload {
        doc_type: schemas::CertificateType::ResidentRecord.seal_doc_type(),
        issuer: MunicipalityCode::parse("212113").unwrap(),
        serial: RequestId::new_random(),
        issued_at_unix_s: now - 60,
        verify_until_unix_s: now + 90 * 86_400,
        page: 1,
        page_count: 2,
        name: name.to_owned(),
        birth_date: 19_800_401,
        address: Some("岐阜県美濃加茂市太田町1番地".to_owned()),
        seal_registration_number: None,
        front_digest: [7; 32],
    };
    SignedSeal::sign(&payload, key).to_qr_text()
}

fn trust_list(center: &KeyPair, municipality: &KeyPair, next_update_unix_s: i64) -> String {
    let list = TrustList {
        format: TRUST_LIST_FORMAT.to_owned(),
        version: 3,
        issued_at_unix_s: now_s() - 3_600,
        next_update_unix_s,
        keys: vec![TrustedKey {
            kid: municipality.kid(),
            public_key: municipality.public(),
            municipality_code: MunicipalityCode::parse("212113").unwrap(),
            not_before_unix_s: now_s() - 365 * DAY_S,
            usage_end_unix_s: now_s() + 365 * DAY_S,
            verify_until_unix_s: now_s() + 3_650 * DAY_S,
            status: KeyStatus::Active,
        }],
        revoked_documents: vec![],
    };
    serde_json::to_string(&Signed::sign(list, center).unwrap()).unwrap()
}

fn verify(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    common::center_cli(&all)
}

#[test]
fn verdicts_and_exit_codes() {
    let dir = std::env::temp_dir().join(format!("verify-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let center = KeyPair::from_seed([1; 32]);
    let municipality = KeyPair::from_seed([2; 32]);
    let fresh = dir.join("fresh.json");
    std::fs::write(&fresh, trust_list(&center, &municipality, now_s() + DAY_S)).unwrap();
    let stale = dir.join("stale.json");
    std::fs::write(&stale, trust_list(&center, &municipality, now_s() - 60)).unwrap();
    let center_key = schemas::b64::Base64Bytes::encode(&center.public().0);
    let genuine = seal(&municipality, "美濃 太郎");
    let list = |path: &std::path::Path| path.to_str().unwrap().to_owned();

    // Genuine: VALID with the fields to compare with the front (a scanner's newline
    // is tolerated).
    let qr = format!("{genuine}\n");
    let (code, out, err) = verify(&[
        "--qr",
        &qr,
        "--trust-list",
        &list(&fresh),
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("VALID (ok)"), "{out}");
    assert!(
        out.contains("美濃 太郎") && out.contains("住民票の写し") && out.contains("1980-04-01"),
        "{out}"
    );
    assert!(out.contains("not that this sheet is the original"), "{out}");

    // --json: one object with the verdict, reason and fields.
    let (code, out, _) = verify(&[
        "--qr",
        &genuine,
        "--trust-list",
        &list(&fresh),
        "--center-key",
        &center_key,
        "--json",
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["verdict"], "VALID");
    assert_eq!(json["reason"], "ok");
    assert_eq!(json["fields"]["name"], "美濃 太郎");
    assert_eq!(json["trust_list_version"], 3);

    // Forged by another key: INVALID, exit 1, no fields shown.
    let forged = seal(&KeyPair::from_seed([9; 32]), "美濃 太郎");
    let (code, out, _) = verify(&[
        "--qr",
        &forged,
        "--trust-list",
        &list(&fresh),
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID (unknown_kid)"), "{out}");
    assert!(!out.contains("美濃 太郎"), "{out}");

    // Stale list, a list signed by someone else, or no list at all: UNKNOWN, exit 2.
    let (code, out, _) = verify(&[
        "--qr",
        &genuine,
        "--trust-list",
        &list(&stale),
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("UNKNOWN (trust_list_stale)"), "{out}");
    let other_center = schemas::b64::Base64Bytes::encode(&KeyPair::from_seed([3; 32]).public().0);
    let (code, out, _) = verify(&[
        "--qr",
        &genuine,
        "--trust-list",
        &list(&fresh),
        "--center-key",
        &other_center,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("UNKNOWN (trust_list_invalid)"), "{out}");
    let (code, _, err) = verify(&[
        "--qr",
        &genuine,
        "--trust-list",
        &list(&dir.join("missing.json")),
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("UNKNOWN"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `center trust-list export` publishes the list from the settings; a seal signed with
/// a configured municipality key then verifies against the exported file.
#[tokio::test]
async fn an_exported_trust_list_verifies_the_municipality_s_seals() {
    let store = common::TempStore::new("trust-list-export").await;
    let dir = std::env::temp_dir().join(format!("trust-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let center = KeyPair::from_seed([4; 32]);
    let municipality = KeyPair::from_seed([5; 32]);
    let settings = common::settings_file(&dir, &store.url(), &center, &[municipality.public()]);
    let out = dir.join("trust-list.json");
    let (code, stdout, stderr) = common::center_cli(&[
        "trust-list",
        "export",
        "--config",
        settings.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("version 1 with 1 key(s)"), "{stdout}");
    let center_key = schemas::b64::Base64Bytes::encode(&center.public().0);
    let qr = seal(&municipality, "坂祝 花子");
    let (code, stdout, _) = verify(&[
        "--qr",
        &qr,
        "--trust-list",
        out.to_str().unwrap(),
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("坂祝 花子"), "{stdout}");
    // Exporting again with nothing changed keeps the version.
    let (code, stdout, _) = common::center_cli(&[
        "trust-list",
        "export",
        "--config",
        settings.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("version 1 "), "{stdout}");
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The seal's QR as a scan would show it: black modules on white, a 4-module quiet
/// zone, `px` pixels per module.
fn qr_image(text: &str, px: u32) -> image::GrayImage {
    let matrix = composer::encode_seal_qr(text).unwrap();
    let quiet = 4;
    let modules = u32::try_from(matrix.width_modules).unwrap() + 2 * quiet;
    image::GrayImage::from_fn(modules * px, modules * px, |x, y| {
        let (mx, my) = (x / px, y / px);
        let inside =
            (quiet..modules - quiet).contains(&mx) && (quiet..modules - quiet).contains(&my);
        let dark = inside && matrix.is_dark((mx - quiet) as usize, (my - quiet) as usize);
        image::Luma([if dark { 0 } else { 255 }])
    })
}

/// A scan (PNG) or a photo (JPEG) of the back side: the QR is found and checked.
#[test]
fn scans_and_photos_are_read() {
    let dir = std::env::temp_dir().join(format!("verify-scan-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let center = KeyPair::from_seed([6; 32]);
    let municipality = KeyPair::from_seed([7; 32]);
    let list_path = dir.join("list.json");
    std::fs::write(
        &list_path,
        trust_list(&center, &municipality, now_s() + DAY_S),
    )
    .unwrap();
    let list = list_path.to_str().unwrap();
    let center_key = schemas::b64::Base64Bytes::encode(&center.public().0);

    let genuine = qr_image(&seal(&municipality, "加茂 一郎"), 4);
    let png = dir.join("scan.png");
    genuine.save(&png).unwrap();
    let jpeg = dir.join("photo.jpg");
    genuine.save(&jpeg).unwrap();
    for file in [&png, &jpeg] {
        let (code, out, err) = verify(&[
            file.to_str().unwrap(),
            "--trust-list",
            list,
            "--center-key",
            &center_key,
        ]);
        assert_eq!(code, 0, "{}: {out}{err}", file.display());
        assert!(
            out.starts_with("VALID (ok)") && out.contains("加茂 一郎"),
            "{out}"
        );
    }

    // A forged seal in a scan is INVALID; a picture without a QR, or a file that is
    // not a PDF, PNG or JPEG, is UNKNOWN with the reason.
    let forged = dir.join("forged.png");
    qr_image(&seal(&KeyPair::from_seed([8; 32]), "加茂 一郎"), 4)
        .save(&forged)
        .unwrap();
    let (code, out, _) = verify(&[
        forged.to_str().unwrap(),
        "--trust-list",
        list,
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 1, "{out}");
    let blank = dir.join("blank.png");
    image::GrayImage::from_pixel(200, 200, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let (code, err, _) = verify(&[
        blank.to_str().unwrap(),
        "--trust-list",
        list,
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("UNKNOWN (unreadable)") && err.contains("no QR code"),
        "{err}"
    );
    let pdf = dir.join("doc.pdf");
    std::fs::write(&pdf, b"GIF89a not a certificate").unwrap();
    let (code, _, err) = verify(&[
        pdf.to_str().unwrap(),
        "--trust-list",
        list,
        "--center-key",
        &center_key,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("neither a PDF nor a PNG or JPEG"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
