//! `sandbox::init` writes what the parties load: register CSV directories and catalogues
//! in the adapter settings, card files for every sample binding plus the special
//! cards, with validity that survives a moved clock.

use schemas::{CardFile, CertificateType, RevocationList};

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix_s(instant: &str) -> i64 {
    instant.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn card_file(path: &std::path::Path) -> CardFile {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn init_writes_registers_catalogues_and_durable_cards() {
    let tmp = TempDir(std::env::temp_dir().join(format!("sandbox-init-{}", uuid_like())));
    let layout = sandbox::init(&tmp.0).unwrap();
    let now_s = jiff::Timestamp::now().as_second();
    let year_s = 365 * 24 * 3600;

    // Adapter settings load as the adapter reads them.
    let mut catalogues = std::collections::HashMap::new();
    for (_, path) in &layout.adapter_configs {
        let settings = municipal_adapter::Settings::load(path).unwrap();
        for m in settings.municipalities {
            assert!(m.register_dir.join("cards.csv").is_file(), "{}", m.code);
            assert!(m.register_dir.starts_with(&layout.dir));
            catalogues.insert(m.code.to_string(), m.catalogue);
        }
    }
    assert_eq!(catalogues.len(), 3);
    let minokamo = &catalogues["212113"];
    for holiday in ["2026-11-23", "2027-01-11", "2027-02-11"] {
        assert!(
            minokamo.closed_dates.iter().any(|d| d == holiday),
            "{holiday}"
        );
    }
    assert_eq!(minokamo.maintenance.len(), 1);
    assert_eq!(
        unix_s(&minokamo.maintenance[0].starts_at),
        unix_s("2026-12-05T20:00:00Z")
    );
    let sakahogi = catalogues["215015"].offerings.as_ref().unwrap();
    assert!(sakahogi
        .iter()
        .all(|o| o.certificate != CertificateType::TaxPayment));
    let record = sakahogi
        .iter()
        .find(|o| o.certificate == CertificateType::ResidentRecord)
        .unwrap();
    assert_eq!(record.fee_yen_per_copy, 300);
    assert_eq!(sakahogi.len(), CertificateType::ALL.len() - 1);
    assert!(catalogues["112330"].offerings.is_none());
    assert!(catalogues["112330"].closed_dates.is_empty());

    // A card per sample binding, plus 97/98/99 per municipality.
    for code in municipal_adapter::SAMPLE_CODES {
        for (serial, _) in municipal_adapter::samples::sample_card_bindings(code) {
            let card = layout.card(serial.as_str()).unwrap();
            assert_eq!(card.kind, sandbox::CardKind::Resident);
            let body = card_file(&card.path).certificate.payload;
            assert_eq!(body.not_before_unix_s, unix_s("2020-01-01T00:00:00+09:00"));
            assert!(body.not_after_unix_s >= now_s + 5 * year_s);
        }
        for (suffix, kind) in [
            (97, sandbox::CardKind::Expired),
            (98, sandbox::CardKind::Revoked),
            (99, sandbox::CardKind::Unregistered),
        ] {
            let serial = format!("{code}{suffix:010}");
            assert_eq!(layout.card(&serial).unwrap().kind, kind, "{serial}");
        }
        let expired = layout.card(&format!("{code}0000000097")).unwrap();
        assert_eq!(
            card_file(&expired.path)
                .certificate
                .payload
                .not_after_unix_s,
            unix_s("2025-01-01T00:00:00+09:00")
        );
    }
    assert_eq!(
        layout.card("2121130000000001").unwrap().holder_name,
        "髙橋 健一"
    );
    assert!(layout
        .card("2121130000000090")
        .unwrap()
        .holder_name
        .contains('\u{20BB7}'));

    let list: RevocationList = serde_json::from_str(
        &std::fs::read_to_string(layout.dir.join("revocation-list.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        list.payload.issued_at_unix_s,
        unix_s("2020-01-01T00:00:00+09:00")
    );
    assert!(list.payload.next_update_unix_s >= now_s + year_s);
    assert!(list
        .payload
        .revoked
        .iter()
        .any(|s| s.as_str() == "2121130000000098"));

    // The layout reads back the same.
    let reopened = sandbox::Layout::open(&layout.dir).unwrap();
    assert_eq!(reopened.cards.len(), layout.cards.len());
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    )
}
