//! Catalogues, hours, holidays and maintenance with the controllable clock: what the
//! kiosk's menu shows and what the center decides at each edge.

use e2e::*;
use schemas::{
    CertificateKind, CertificateOrder, CertificateType, HouseholdScope, IssuanceResponse, Menu,
    MunicipalityCode, RefusalReason, Route, RouteKind,
};

fn code(text: &str) -> MunicipalityCode {
    MunicipalityCode::parse(text).expect("code")
}

async fn menu(sb: &TestSandbox, municipality: &str, route: RouteKind) -> Menu {
    let client =
        kiosk_sim::CenterClient::new(&sb.kiosk_settings("lawson", "lawson-0001")).expect("client");
    client
        .menu(code(municipality), route)
        .await
        .expect("menu answered")
}

fn item(menu: &Menu, certificate: CertificateType) -> &schemas::MenuItem {
    menu.items
        .iter()
        .find(|i| i.certificate == certificate)
        .unwrap_or_else(|| panic!("{certificate} not on the menu"))
}

fn self_only() -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope: HouseholdScope::SelfOnly,
        include_domicile: false,
        include_relationship: false,
    }
}

/// The center's decision for card 0001 ordering `certificate` at `at`.
async fn decision_at(
    sb: &TestSandbox,
    at: &str,
    certificate: CertificateKind,
) -> Option<RefusalReason> {
    sb.set_clock(at);
    let card = sb.card("2121130000000001").clone();
    let response = sb
        .direct_issue(
            &card,
            CertificateOrder {
                route: Route::Residence,
                certificate,
                copies: 1,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("at {at}: {e}"));
    match response {
        IssuanceResponse::Prepared { .. } => None,
        IssuanceResponse::Refused { reason, .. } => Some(reason),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menus_follow_each_municipalitys_signed_catalogue() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let client =
        kiosk_sim::CenterClient::new(&sb.kiosk_settings("lawson", "lawson-0001")).expect("client");
    let directory = client.municipalities().await.expect("directory");
    let codes: Vec<String> = directory
        .municipalities
        .iter()
        .map(|m| m.code.to_string())
        .collect();
    assert_eq!(codes, ["112330", "212113", "215015"]);

    // 美濃加茂市, Wednesday morning: all eight types, all available.
    let minokamo = menu(&sb, "212113", RouteKind::Residence).await;
    assert!(minokamo.open_now);
    assert_eq!(minokamo.municipality_name, "美濃加茂市");
    assert_eq!(minokamo.items.len(), 8);
    assert!(minokamo.items.iter().all(|i| i.available_now));
    assert_eq!(
        item(&minokamo, CertificateType::ResidentRecord).fee_yen_per_copy,
        200
    );
    assert_eq!(
        item(&minokamo, CertificateType::FamilyRegisterAll).fee_yen_per_copy,
        350
    );

    // 坂祝町 on the same shared adapter: its own catalogue — no 納税証明書, 住民票 at 300.
    let sakahogi = menu(&sb, "215015", RouteKind::Residence).await;
    assert_eq!(sakahogi.municipality_name, "坂祝町");
    assert!(sakahogi
        .items
        .iter()
        .all(|i| i.certificate != CertificateType::TaxPayment));
    assert_eq!(
        item(&sakahogi, CertificateType::ResidentRecord).fee_yen_per_copy,
        300
    );

    // The 本籍地 menu lists only the 戸籍 types.
    let domicile = menu(&sb, "215015", RouteKind::Domicile).await;
    assert!(!domicile.items.is_empty());
    assert!(domicile
        .items
        .iter()
        .all(|i| i.certificate.is_family_register()));

    // Saturday: 戸籍 (weekdays only) unavailable, the rest available.
    sb.set_clock("2026-11-28T10:00:00+09:00");
    let saturday = menu(&sb, "212113", RouteKind::Residence).await;
    assert!(saturday.open_now);
    for entry in &saturday.items {
        assert_eq!(
            entry.available_now,
            !entry.certificate.is_family_register(),
            "{}",
            entry.certificate
        );
    }
    assert_eq!(
        item(&saturday, CertificateType::FamilyRegisterAll).unavailable_reason,
        Some(RefusalReason::OutOfHours)
    );

    // 勤労感謝の日 (Monday 2026-11-23), a closed date in 美濃加茂市's catalogue.
    sb.set_clock("2026-11-23T10:00:00+09:00");
    let holiday = menu(&sb, "212113", RouteKind::Residence).await;
    assert!(!item(&holiday, CertificateType::FamilyRegisterIndividual).available_now);
    assert!(item(&holiday, CertificateType::ResidentRecord).available_now);

    // Maintenance window and the national closing time.
    sb.set_clock("2026-12-06T08:00:00+09:00");
    let maintenance = menu(&sb, "212113", RouteKind::Residence).await;
    assert!(!maintenance.open_now);
    assert_eq!(
        item(&maintenance, CertificateType::ResidentRecord).unavailable_reason,
        Some(RefusalReason::Maintenance)
    );
    // 北本市 has no maintenance then.
    assert!(menu(&sb, "112330", RouteKind::Residence).await.open_now);
    sb.set_clock("2026-11-25T23:00:00+09:00");
    assert!(!menu(&sb, "212113", RouteKind::Residence).await.open_now);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_center_enforces_hours_at_every_edge() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    let family = CertificateKind::FamilyRegisterIndividual;
    let cases: Vec<(&str, CertificateKind, Option<RefusalReason>)> = vec![
        // National hours 06:30–23:00.
        (
            "2026-11-25T06:29:00+09:00",
            self_only(),
            Some(RefusalReason::OutOfHours),
        ),
        ("2026-11-25T06:30:00+09:00", self_only(), None),
        ("2026-11-25T22:59:00+09:00", self_only(), None),
        (
            "2026-11-25T23:00:00+09:00",
            self_only(),
            Some(RefusalReason::OutOfHours),
        ),
        // 年末年始 12/29–1/3.
        ("2026-12-28T12:00:00+09:00", self_only(), None),
        (
            "2026-12-29T12:00:00+09:00",
            self_only(),
            Some(RefusalReason::OutOfHours),
        ),
        (
            "2027-01-03T12:00:00+09:00",
            self_only(),
            Some(RefusalReason::OutOfHours),
        ),
        ("2027-01-04T12:00:00+09:00", self_only(), None),
        // 戸籍: weekdays 08:30–17:15, not on closed dates.
        (
            "2026-11-25T08:29:00+09:00",
            family.clone(),
            Some(RefusalReason::OutOfHours),
        ),
        ("2026-11-25T08:30:00+09:00", family.clone(), None),
        ("2026-11-25T17:14:00+09:00", family.clone(), None),
        (
            "2026-11-25T17:15:00+09:00",
            family.clone(),
            Some(RefusalReason::OutOfHours),
        ),
        (
            "2026-11-29T10:00:00+09:00",
            family.clone(),
            Some(RefusalReason::OutOfHours),
        ),
        (
            "2026-11-23T10:00:00+09:00",
            family.clone(),
            Some(RefusalReason::OutOfHours),
        ),
        ("2026-11-23T10:00:00+09:00", self_only(), None),
        // Maintenance [05:00, 09:00) on 2026-12-06 (a Sunday): before 06:30 the
        // national hours decide.
        (
            "2026-12-06T06:00:00+09:00",
            self_only(),
            Some(RefusalReason::OutOfHours),
        ),
        (
            "2026-12-06T08:59:00+09:00",
            self_only(),
            Some(RefusalReason::Maintenance),
        ),
        ("2026-12-06T09:00:00+09:00", self_only(), None),
    ];
    for (at, kind, expected) in cases {
        assert_eq!(
            decision_at(&sb, at, kind.clone()).await,
            expected,
            "{kind:?} at {at}"
        );
    }
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_and_copies_outside_the_catalogue_are_refused() {
    let Some(sb) = spawn_sandbox(Backend::Sqlite).await else {
        return;
    };
    // 納税証明書 is not in 坂祝町's catalogue.
    let sakahogi_card = sb.card("2150150000000001").clone();
    let response = sb
        .direct_issue(
            &sakahogi_card,
            CertificateOrder {
                route: Route::Residence,
                certificate: CertificateKind::TaxPayment { fiscal_year: None },
                copies: 1,
            },
        )
        .await
        .expect("answered");
    assert!(matches!(
        response,
        IssuanceResponse::Refused {
            reason: RefusalReason::TypeNotOffered,
            ..
        }
    ));
    // 住民票 through the 本籍地 route is not a thing.
    let card = sb.card("2121130000000001").clone();
    let response = sb
        .direct_issue(
            &card,
            CertificateOrder {
                route: Route::Domicile {
                    municipality_code: code("215015"),
                },
                certificate: self_only(),
                copies: 1,
            },
        )
        .await
        .expect("answered");
    assert!(matches!(
        response,
        IssuanceResponse::Refused {
            reason: RefusalReason::TypeNotOffered,
            ..
        }
    ));
    // 戸籍: at most 5 copies in the default catalogue.
    let error = sb
        .direct_issue(
            &card,
            CertificateOrder {
                route: Route::Residence,
                certificate: CertificateKind::FamilyRegisterAll,
                copies: 6,
            },
        )
        .await
        .expect_err("too many copies");
    assert_eq!(error.error_code(), Some(schemas::ErrorCode::BadRequest));
    sb.stop().await;
}
