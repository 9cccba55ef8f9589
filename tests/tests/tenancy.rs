//! One adapter serves 美濃加茂市 and 坂祝町 (their joint municipal cloud): a request
//! routed to one municipality can never reach the other's residents.

use e2e::*;
use kiosk_sim::IssueOutcome;
use schemas::{
    CardCertificateBody, CardFile, HouseholdScope, KeyPair, MunicipalityCode, RefusalReason, Signed,
};

/// A card the card authority issued for `municipality` but with the serial of a
/// resident registered in another municipality.
fn card_with_foreign_serial(
    sb: &TestSandbox,
    serial: &schemas::CardSerial,
    municipality: &str,
) -> std::path::PathBuf {
    let authority = KeyPair::from_seed_base64(
        &std::fs::read_to_string(sb.dir.join("keys").join("card-authority.seed")).unwrap(),
    )
    .unwrap();
    let card_key = KeyPair::generate();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let certificate = Signed::sign(
        CardCertificateBody {
            serial: serial.clone(),
            municipality_code: MunicipalityCode::parse(municipality).unwrap(),
            public_key: card_key.public(),
            // Valid whatever the sandbox's (moved) clock says.
            not_before_unix_s: 1_577_804_400, // 2020-01-01 JST
            not_after_unix_s: now_s + 10 * 365 * 86_400,
        },
        &authority,
    )
    .unwrap();
    let file = CardFile {
        label: "crafted".into(),
        certificate,
        key_seed: card_key.seed_base64(),
        pin: "2468".into(),
        pin_attempts_left: schemas::MAX_PIN_ATTEMPTS,
    };
    let path = sb
        .dir
        .join("cards")
        .join(format!("crafted-{municipality}-{serial}.json"));
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_adapter_keeps_its_municipalities_apart() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let resident_of = |code: &str| {
        sb.printable_resident_cards()
            .into_iter()
            .find(|c| c.municipality.to_string() == code)
            .unwrap()
            .clone()
    };
    // Both directions across the shared adapter.
    for (registered_in, routed_to) in [("212113", "215015"), ("215015", "212113")] {
        let resident = resident_of(registered_in);
        let crafted = card_with_foreign_serial(&sb, &resident.serial, routed_to);
        let mut kiosk = sb.kiosk();
        let outcome = kiosk
            .issue(
                &crafted,
                "2468",
                resident_record(HouseholdScope::Household),
                &sb.out,
            )
            .await
            .expect("an answer");
        match outcome {
            IssueOutcome::Refused { reason, .. } => {
                assert_eq!(reason, RefusalReason::CardNotRegistered)
            }
            IssueOutcome::Printed(doc) => panic!(
                "{}'s record was printed through {routed_to} as {}",
                resident.holder_name, doc.request_id
            ),
            other => panic!("not refused: {other:?}"),
        }
    }
    assert_eq!(pdfs_in(&sb.out), 0);

    // And each municipality's own residents are served by the same process.
    for code in ["212113", "215015"] {
        let card = resident_of(code);
        let mut kiosk = sb.kiosk();
        let IssueOutcome::Printed(doc) = kiosk
            .issue(
                &card.path,
                &pin_of(&card),
                resident_record(HouseholdScope::SelfOnly),
                &sb.out,
            )
            .await
            .unwrap()
        else {
            panic!("{code} resident refused")
        };
        assert_eq!(doc.municipality_code.to_string(), code);
        assert!(squeeze(&pdf_text(&doc.pdf_path)).contains(&squeeze(&card.holder_name)));
    }
    sb.stop().await;
}
