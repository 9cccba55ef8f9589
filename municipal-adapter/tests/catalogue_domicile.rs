//! The signed catalogue (`POST /v1/catalogue`), 本籍地 利用登録
//! (`POST /v1/domicile-registrations` and the clerk's functions) and tenant isolation
//! between the two municipalities one adapter serves.

mod common;

use common::*;
use municipal_adapter::cli::domicile::{run, DomicileCommand};
use municipal_adapter::domicile::{self, DomicileError};
use schemas::{
    Catalogue, CatalogueRequest, CertificateKind, CertificateType, DomicileRegistrationStatus,
    ErrorCode, FrontSide, KeyPair, RefusalReason, RouteKind, ServiceDays, Signed,
};

fn catalogue_request(municipality: &str, at: i64) -> CatalogueRequest {
    CatalogueRequest {
        municipality_code: code(municipality),
        requested_at_unix_s: at,
    }
}

#[tokio::test]
async fn catalogue_is_signed_by_the_municipality() {
    let adapter = spawn_adapter().await;
    for municipality in [MINOKAMO, SAKAHOGI] {
        let signed = Signed::sign(
            catalogue_request(municipality, NOV_24_NOON_JST),
            &adapter.center_key,
        )
        .unwrap();
        let response = adapter.post_json("/v1/catalogue", &signed).await;
        assert_eq!(response.status().as_u16(), 200);
        let catalogue: Signed<Catalogue> = response.json().await.unwrap();
        let other = if municipality == MINOKAMO {
            SAKAHOGI
        } else {
            MINOKAMO
        };
        assert!(
            catalogue
                .verify(&adapter.municipality_public(other))
                .is_err(),
            "another municipality's key does not verify it"
        );
        let catalogue = catalogue
            .verify(&adapter.municipality_public(municipality))
            .expect("signed with the municipality key");
        catalogue.validate().unwrap();
        assert_eq!(catalogue.municipality_code, code(municipality));
        assert_eq!(catalogue.published_at_unix_s, NOV_24_NOON_JST);
        assert_eq!(catalogue.valid_until_unix_s, NOV_24_NOON_JST + 3600);
        assert_eq!(catalogue.tax_switchover, "06-01");
        assert_eq!(catalogue.offerings.len(), 8);
        let all = catalogue
            .offering(CertificateType::FamilyRegisterAll)
            .unwrap();
        assert_eq!(all.fee_yen_per_copy, 350);
        assert_eq!(all.max_copies, 5);
        assert_eq!(all.routes, vec![RouteKind::Residence, RouteKind::Domicile]);
        assert_eq!(all.hours.days, ServiceDays::Weekdays);
        assert_eq!(all.hours.opens_at.to_string(), "08:30");
        assert_eq!(all.hours.closes_at.to_string(), "17:15");
        let record = catalogue.offering(CertificateType::ResidentRecord).unwrap();
        assert_eq!(record.fee_yen_per_copy, 200);
        assert_eq!(record.routes, vec![RouteKind::Residence]);
    }
}

#[tokio::test]
async fn catalogue_requests_must_be_the_centers() {
    let adapter = spawn_adapter().await;
    let request = catalogue_request(MINOKAMO, NOV_24_NOON_JST);
    let forged = Signed::sign(request.clone(), &KeyPair::generate()).unwrap();
    let body = error_body(adapter.post_json("/v1/catalogue", &forged).await, 401).await;
    assert_eq!(body.code, ErrorCode::RequestSignatureInvalid);
    // Unsigned: a bare request body is not a signed message at all.
    let body = error_body(adapter.post_json("/v1/catalogue", &request).await, 400).await;
    assert_eq!(body.code, ErrorCode::BadRequest);
    let unserved = Signed::sign(
        catalogue_request("112330", NOV_24_NOON_JST),
        &adapter.center_key,
    )
    .unwrap();
    let body = error_body(adapter.post_json("/v1/catalogue", &unserved).await, 404).await;
    assert_eq!(body.code, ErrorCode::MunicipalityUnknown);
    let operator = client(&adapter.pki.operator);
    let signed = Signed::sign(request, &adapter.center_key).unwrap();
    let response = operator
        .post(adapter.url("/v1/catalogue"))
        .json(&signed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(response, 403).await.code,
        ErrorCode::ClientNotAuthorized
    );
}

#[tokio::test]
async fn domicile_registration_from_pending_to_issued() {
    let adapter = spawn_adapter().await;
    let holder = card(MINOKAMO, 68);
    let individual = || domicile_order(SAKAHOGI, CertificateKind::FamilyRegisterIndividual);

    // Through the 住所地 the 戸籍 is elsewhere; through the 本籍地 not yet registered.
    let answer = adapter
        .ask(MINOKAMO, &holder, order(CertificateKind::FamilyRegisterAll))
        .await;
    assert_eq!(refusal(&answer), RefusalReason::DomicileElsewhere);
    let answer = adapter.ask(SAKAHOGI, &holder, individual()).await;
    assert_eq!(refusal(&answer), RefusalReason::DomicileNotRegistered);

    let (domicile, head, name) = domicile_of(&adapter, &holder).await;
    let signed = domicile_submit(&adapter, SAKAHOGI, &holder, &domicile, &head);
    let receipt = post_domicile(&adapter, &signed).await;
    assert_eq!(receipt.status, DomicileRegistrationStatus::Pending);
    assert_eq!(receipt.municipality_code, code(SAKAHOGI));
    // Idempotent by registration id.
    assert_eq!(
        post_domicile(&adapter, &signed).await.status,
        DomicileRegistrationStatus::Pending
    );
    // Pending is not approved.
    let answer = adapter.ask(SAKAHOGI, &holder, individual()).await;
    assert_eq!(refusal(&answer), RefusalReason::DomicileNotRegistered);

    // The clerk's list shows the entered values and the matching 戸籍.
    let mut out = Vec::new();
    run(
        DomicileCommand::List {
            config: adapter.dir.path().join("adapter.toml"),
            municipality: Some(SAKAHOGI.to_owned()),
            status: Some("pending".to_owned()),
        },
        &mut out,
    )
    .await
    .unwrap();
    let listing = String::from_utf8(out).unwrap();
    assert!(
        listing.contains(&receipt.registration_id.to_string()),
        "{listing}"
    );
    assert!(
        listing.contains(&domicile) && listing.contains(&name),
        "{listing}"
    );

    approve_as_clerk(&adapter, receipt.registration_id, &holder).await;
    assert_eq!(
        post_domicile(&adapter, &signed).await.status,
        DomicileRegistrationStatus::Approved
    );
    // A second registration of an approved card answers approved.
    let again = domicile_submit(&adapter, SAKAHOGI, &holder, &domicile, &head);
    assert_eq!(
        post_domicile(&adapter, &again).await.status,
        DomicileRegistrationStatus::Approved
    );

    let answer = adapter.ask(SAKAHOGI, &holder, individual()).await;
    let (front, seals, fee) = issued(&answer);
    assert_eq!(fee, 350);
    let FrontSide::FamilyRegister(f) = front else {
        panic!("戸籍個人事項証明書")
    };
    assert!(f.individual);
    assert_eq!(f.persons.len(), 1);
    assert_eq!(f.persons[0].name, name);
    assert_eq!(f.attestation.municipality_name, "坂祝町");
    assert_eq!(seals.len(), 1);

    // Tenant isolation: the approval at 215015 means nothing at 212113, and the card
    // bound in 212113 does not resolve in 215015 through the 住所地 route.
    let answer = adapter
        .ask(
            MINOKAMO,
            &holder,
            domicile_order(MINOKAMO, CertificateKind::FamilyRegisterIndividual),
        )
        .await;
    assert_eq!(refusal(&answer), RefusalReason::DomicileNotRegistered);
    let answer = adapter
        .ask(
            SAKAHOGI,
            &holder,
            order(CertificateKind::FamilyRegisterIndividual),
        )
        .await;
    assert_eq!(refusal(&answer), RefusalReason::CardNotRegistered);
    // A 本籍地 route naming another municipality than the fetch is a malformed fetch.
    let mut fetch = adapter.fetch(MINOKAMO, &holder, individual());
    fetch.requested_at_unix_s = NOV_24_NOON_JST;
    let body = error_body(adapter.post(&adapter.sign(fetch)).await, 400).await;
    assert_eq!(body.code, ErrorCode::BadRequest);
}

#[tokio::test]
async fn rejected_and_unknown_registrations() {
    let adapter = spawn_adapter().await;
    let holder = card(MINOKAMO, 68);
    let pool = adapter.pool().await;
    let signed = domicile_submit(&adapter, SAKAHOGI, &holder, "岐阜県どこか1番地", "誰か");
    let receipt = post_domicile(&adapter, &signed).await;
    assert_eq!(receipt.status, DomicileRegistrationStatus::Pending);
    // No such person in 215015's 戸籍: the approval is refused and nothing changes.
    let nobody = municipal_adapter::register::FamilyRegisterRef {
        family_register_id: "no-such-register".into(),
        person_id: "no-such-person".into(),
    };
    assert!(matches!(
        domicile::approve_registration(&pool, receipt.registration_id, &nobody).await,
        Err(DomicileError::PersonNotFound { .. })
    ));
    let rejected = domicile::reject_registration(&pool, receipt.registration_id)
        .await
        .unwrap();
    assert_eq!(rejected.status, DomicileRegistrationStatus::Rejected);
    assert!(matches!(
        domicile::reject_registration(&pool, receipt.registration_id).await,
        Err(DomicileError::AlreadyDecided { .. })
    ));
    assert_eq!(
        post_domicile(&adapter, &signed).await.status,
        DomicileRegistrationStatus::Rejected
    );
    let answer = adapter
        .ask(
            SAKAHOGI,
            &holder,
            domicile_order(SAKAHOGI, CertificateKind::FamilyRegisterAll),
        )
        .await;
    assert_eq!(refusal(&answer), RefusalReason::DomicileNotRegistered);

    // Not the center's signature; a municipality not served here.
    let forged = Signed::sign(signed.payload.clone(), &KeyPair::generate()).unwrap();
    let body = error_body(
        adapter
            .post_json("/v1/domicile-registrations", &forged)
            .await,
        401,
    )
    .await;
    assert_eq!(body.code, ErrorCode::RequestSignatureInvalid);
    let elsewhere = domicile_submit(&adapter, "112330", &holder, "埼玉県北本市1番地", "誰か");
    let body = error_body(
        adapter
            .post_json("/v1/domicile-registrations", &elsewhere)
            .await,
        404,
    )
    .await;
    assert_eq!(body.code, ErrorCode::MunicipalityUnknown);
}

#[tokio::test]
async fn cards_never_cross_municipalities() {
    let adapter = spawn_adapter().await;
    for (municipality, holder) in [(SAKAHOGI, card(MINOKAMO, 1)), (MINOKAMO, card(SAKAHOGI, 1))] {
        for kind in [
            CertificateKind::ResidentRecord {
                scope: schemas::HouseholdScope::SelfOnly,
                include_domicile: false,
                include_relationship: false,
            },
            CertificateKind::SealRegistration,
            CertificateKind::FamilyRegisterAll,
        ] {
            let answer = adapter.ask(municipality, &holder, order(kind)).await;
            assert_eq!(refusal(&answer), RefusalReason::CardNotRegistered);
        }
    }
    // Each card is answered by its own municipality.
    issued(
        &adapter
            .ask(MINOKAMO, &card(MINOKAMO, 1), self_order())
            .await,
    );
    issued(
        &adapter
            .ask(SAKAHOGI, &card(SAKAHOGI, 1), self_order())
            .await,
    );
}

/// The clerk's commands through the real binary, against a running adapter's database.
#[tokio::test]
async fn clerk_cli_lists_and_approves() {
    let adapter = spawn_adapter().await;
    let holder = card(MINOKAMO, 68);
    let (registration_id, status) = register_domicile_of(&adapter, SAKAHOGI, &holder).await;
    assert_eq!(status, DomicileRegistrationStatus::Pending);
    let (_, _, name) = domicile_of(&adapter, &holder).await;
    let config = adapter.dir.path().join("adapter.toml");
    let cli = |args: &[&str]| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
                .arg("domicile")
                .args(&args)
                .arg("--config")
                .arg(&config)
                .output()
                .await
                .expect("run the binary")
        }
    };
    let listed = cli(&["list", "--municipality", SAKAHOGI, "--status", "pending"]).await;
    assert!(listed.status.success());
    let stdout = String::from_utf8(listed.stdout).unwrap();
    assert!(stdout.contains(&registration_id.to_string()), "{stdout}");
    // The line that names the holder carries the `--person` to approve with.
    let person = stdout
        .lines()
        .find(|line| line.contains("--person") && line.contains(&name))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no matching person in {stdout}"))
        .to_owned();
    let id = registration_id.to_string();
    let bad = cli(&["approve", "--registration", &id, "--person", "nobody/none"]).await;
    assert!(!bad.status.success(), "an unknown person is refused");
    let approved = cli(&["approve", "--registration", &id, "--person", &person]).await;
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let again = cli(&["reject", "--registration", &id]).await;
    assert!(
        !again.status.success(),
        "an approved registration stays approved"
    );
    let answer = adapter
        .ask(
            SAKAHOGI,
            &holder,
            domicile_order(
                SAKAHOGI,
                CertificateKind::FamilyRegisterAttachment {
                    include_domicile: false,
                },
            ),
        )
        .await;
    let (FrontSide::FamilyRegisterAttachment(f), _, _) = issued(&answer) else {
        panic!("戸籍の附票の写し")
    };
    assert_eq!(f.name, name);
}
