//! 本籍地 route: a resident of 美濃加茂市 whose 戸籍 is kept by 坂祝町 registers once
//! from a kiosk (利用登録); until 坂祝町 approves it, 戸籍 orders through the 本籍地
//! route are refused; after approval they are issued from 坂祝町's register, and the
//! registration is usable only at 坂祝町 (tenant isolation on the shared adapter).

use e2e::on_both_backends;
use e2e::*;
use kiosk_sim::IssueOutcome;
use schemas::{
    CertificateKind, DomicileRegistration, DomicileRegistrationStatus, MunicipalityCode,
    RefusalReason, Route,
};

on_both_backends!(registration_then_approval_opens_the_domicile_route);

use municipal_adapter::register::FamilyRegisterRef;
use municipal_adapter::samples::DOMICILE_SAMPLE;

const APPLICANT: &str = DOMICILE_SAMPLE.card_serial;

fn sample_domicile_of_applicant() -> String {
    DOMICILE_SAMPLE.domicile.to_owned()
}

fn sample_domicile_head_of_applicant() -> String {
    DOMICILE_SAMPLE.domicile_head.to_owned()
}

fn sample_person_of_applicant() -> FamilyRegisterRef {
    FamilyRegisterRef {
        family_register_id: DOMICILE_SAMPLE.family_register_id.to_owned(),
        person_id: DOMICILE_SAMPLE.person_id.to_owned(),
    }
}

fn sakahogi() -> MunicipalityCode {
    MunicipalityCode::parse("215015").expect("code")
}

fn minokamo() -> MunicipalityCode {
    MunicipalityCode::parse("212113").expect("code")
}

fn refusal(outcome: IssueOutcome) -> RefusalReason {
    match outcome {
        IssueOutcome::Refused { reason, .. } => reason,
        IssueOutcome::Printed(doc) => panic!("printed {}", doc.certificate_title),
        other => panic!("not refused: {other:?}"),
    }
}

async fn registration_then_approval_opens_the_domicile_route(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let card = sb.card(APPLICANT).clone();
    let domicile_route = Route::Domicile {
        municipality_code: sakahogi(),
    };

    // Before any registration.
    let before = sb
        .order(&card, domicile_route, CertificateKind::FamilyRegisterAll)
        .await
        .expect("answered");
    assert_eq!(refusal(before), RefusalReason::DomicileNotRegistered);

    // 利用登録 from the kiosk: pending.
    let registration = DomicileRegistration {
        municipality_code: sakahogi(),
        domicile: sample_domicile_of_applicant(),
        domicile_head: sample_domicile_head_of_applicant(),
    };
    let response = sb
        .register_domicile(&card, registration.clone())
        .await
        .expect("registration accepted");
    assert_eq!(response.status, DomicileRegistrationStatus::Pending);
    assert_eq!(response.municipality_code, sakahogi());

    // Still refused while pending.
    let pending = sb
        .order(&card, domicile_route, CertificateKind::FamilyRegisterAll)
        .await
        .expect("answered");
    assert_eq!(refusal(pending), RefusalReason::DomicileNotRegistered);

    // 坂祝町's clerk approves it (the adapter's admin path).
    sb.approve_domicile(
        response.registration_id,
        sample_person_of_applicant(),
        "215015",
    )
    .await;

    // Now issued, from 坂祝町, three front pages for the five-person 戸籍.
    let outcome = sb
        .order(&card, domicile_route, CertificateKind::FamilyRegisterAll)
        .await
        .expect("answered");
    let IssueOutcome::Printed(doc) = outcome else {
        panic!("still refused after approval: {outcome:?}");
    };
    assert_eq!(doc.municipality_code, sakahogi());
    assert_eq!(doc.certificate_title, "戸籍全部事項証明書");
    assert_eq!(doc.page_count, 6, "3 front pages + 3 backs");
    let ids = page_request_ids(&doc.pdf_path);
    assert!(ids.iter().all(|id| *id == doc.request_id.to_string()));
    let text = squeeze(&pdf_text(&doc.pdf_path));
    assert!(text.contains(&squeeze(&card.holder_name)));
    assert!(text.contains(&squeeze("坂祝町長")), "attested by 坂祝町");
    assert!(text.contains("除籍"), "the removed person is marked");

    // A registration again for an approved card stays approved (idempotent domain).
    let again = sb
        .register_domicile(&card, registration)
        .await
        .expect("registration answered");
    assert_eq!(again.status, DomicileRegistrationStatus::Approved);

    // Isolation: the approval at 坂祝町 opens nothing at 美濃加茂市 (which keeps no
    // 戸籍 for this resident) — the 本籍地 route to 美濃加茂市 stays refused.
    let elsewhere = sb
        .order(
            &card,
            Route::Domicile {
                municipality_code: minokamo(),
            },
            CertificateKind::FamilyRegisterAll,
        )
        .await
        .expect("answered");
    assert_eq!(refusal(elsewhere), RefusalReason::DomicileNotRegistered);

    // And the 住所地 route still says the 戸籍 is elsewhere.
    let residence = sb
        .order(&card, Route::Residence, CertificateKind::FamilyRegisterAll)
        .await
        .expect("answered");
    assert_eq!(refusal(residence), RefusalReason::DomicileElsewhere);

    // A 坂祝町 resident's card cannot use the 本籍地 route registered by another card.
    let other = sb.card("2150150000000001").clone();
    let foreign = sb
        .order(&other, domicile_route, CertificateKind::FamilyRegisterAll)
        .await
        .expect("answered");
    assert_eq!(refusal(foreign), RefusalReason::DomicileNotRegistered);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_registration_keeps_the_route_closed() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let card = sb.card(APPLICANT).clone();
    let response = sb
        .register_domicile(
            &card,
            DomicileRegistration {
                municipality_code: sakahogi(),
                domicile: "岐阜県加茂郡坂祝町存在しない番地".into(),
                domicile_head: "誰でもない".into(),
            },
        )
        .await
        .expect("registration accepted");
    assert_eq!(response.status, DomicileRegistrationStatus::Pending);
    sb.reject_domicile(response.registration_id, "215015").await;
    let outcome = sb
        .order(
            &card,
            Route::Domicile {
                municipality_code: sakahogi(),
            },
            CertificateKind::FamilyRegisterIndividual,
        )
        .await
        .expect("answered");
    assert_eq!(refusal(outcome), RefusalReason::DomicileNotRegistered);
    sb.stop().await;
}
