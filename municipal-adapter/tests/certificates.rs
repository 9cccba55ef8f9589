//! Every certificate type and every refusal rule, through the adapter's HTTP API with
//! the checked-in sample registers of 212113 美濃加茂市 and 215015 坂祝町, at fixed
//! center clocks (`requested_at_unix_s`).

mod common;

use common::*;
use schemas::{
    CertificateKind, CertificateType, FrontSide, HouseholdScope, PublicKey, RefusalReason,
    SealPayload, SignedSeal,
};

const HOLDER_0001: &str = "髙橋 健一";

fn resident_record(scope: HouseholdScope, options: bool) -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope,
        include_domicile: options,
        include_relationship: options,
    }
}

fn self_record() -> CertificateKind {
    resident_record(HouseholdScope::SelfOnly, false)
}

fn household_record() -> CertificateKind {
    resident_record(HouseholdScope::Household, true)
}

/// Every seal verifies with `key`, numbers its page i/n with n = the front's
/// page_count, carries the type's document number and covers exactly this front.
fn check_seals(
    front: &FrontSide,
    seals: &[String],
    certificate: CertificateType,
    key: &PublicKey,
) -> Vec<SealPayload> {
    assert_eq!(seals.len(), front.page_count(), "one seal per front page");
    let digest = front.digest().unwrap().0;
    seals
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let payload = SignedSeal::from_qr_text(text)
                .expect("seal parses")
                .verify(key)
                .expect("seal verifies");
            assert_eq!(usize::from(payload.page), i + 1);
            assert_eq!(usize::from(payload.page_count), seals.len());
            assert_eq!(payload.doc_type, certificate.seal_doc_type());
            assert_eq!(payload.front_digest, digest);
            if certificate.is_family_register() {
                assert_eq!(payload.address, None, "戸籍 seals never carry an address");
            } else {
                assert!(payload.address.is_some());
            }
            payload
        })
        .collect()
}

#[tokio::test]
async fn card_0001_obtains_all_eight_types() {
    let adapter = spawn_adapter().await;
    let key = adapter.municipality_public(MINOKAMO);
    let holder = card(MINOKAMO, 1);
    let kinds = [
        household_record(),
        CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::Household,
            include_relationship: true,
        },
        CertificateKind::SealRegistration,
        CertificateKind::IncomeTax { fiscal_year: None },
        CertificateKind::TaxPayment { fiscal_year: None },
        CertificateKind::FamilyRegisterAll,
        CertificateKind::FamilyRegisterIndividual,
        CertificateKind::FamilyRegisterAttachment {
            include_domicile: true,
        },
    ];
    for kind in kinds {
        let certificate = kind.certificate_type();
        let answer = adapter.ask(MINOKAMO, &holder, order(kind.clone())).await;
        let (front, seals, fee) = issued(&answer);
        assert!(front.fits(certificate), "{certificate}");
        assert_eq!(front.title(), certificate.title_ja());
        front.validate().unwrap();
        let expected_fee = match certificate {
            CertificateType::FamilyRegisterAll | CertificateType::FamilyRegisterIndividual => 350,
            _ => 200,
        };
        assert_eq!(fee, expected_fee, "{certificate}");
        let attestation = front.attestation();
        assert_eq!(attestation.issue_date_wareki, "令和8年11月24日");
        assert_eq!(attestation.mayor_title, "美濃加茂市長");
        let payloads = check_seals(front, seals, certificate, &key);
        assert_eq!(payloads[0].name, HOLDER_0001);
        assert_eq!(payloads[0].serial, answer.request_id);
        let texts = front.printed_texts();
        assert!(
            texts.iter().any(|t| t.contains(HOLDER_0001)),
            "{certificate}: the holder's name is printed"
        );
        match front {
            FrontSide::ResidentRecord(f) => {
                assert_eq!(f.members[0].name, HOLDER_0001);
                assert_eq!(f.household_head.as_deref(), Some(HOLDER_0001));
                assert!(f.members[0].domicile.is_some());
                assert_eq!(
                    attestation.certification,
                    "この写しは、世帯全員の住民票の原本と相違ないことを証明する。"
                );
            }
            FrontSide::ResidentRecordItems(f) => {
                assert_eq!(f.members[0].name, HOLDER_0001);
                assert_eq!(f.members[0].relationship.as_deref(), Some("世帯主"));
            }
            FrontSide::SealRegistration(f) => {
                assert!(!f.registration_number.is_empty());
                assert!(f.seal_impression_png.0.starts_with(b"\x89PNG"));
                assert_eq!(
                    payloads[0].seal_registration_number.as_deref(),
                    Some(f.registration_number.as_str())
                );
                assert_eq!(
                    attestation.certification,
                    "上記の印影は、登録されている印鑑と相違ないことを証明します。"
                );
            }
            FrontSide::IncomeTax(f) => {
                // 2026-11-24 is after the 06-01 switch-over: 2026 = 令和8年度.
                assert_eq!(f.fiscal_year_wareki, "令和8年度");
                assert_eq!(f.income_year_wareki, "令和7年分");
                assert!(!f.income_lines.is_empty() && !f.tax_lines.is_empty());
                assert_eq!(f.tax_lines[0].label, "市民税");
            }
            FrontSide::TaxPayment(f) => {
                assert_eq!(f.fiscal_year_wareki, "令和8年度");
                assert!(
                    f.lines.iter().any(|l| l.unpaid_yen > 0),
                    "軽自動車税 partly unpaid"
                );
                assert!(f.lines.iter().any(|l| l.unpaid_yen == 0));
            }
            FrontSide::FamilyRegister(f) => {
                if f.individual {
                    assert_eq!(f.persons.len(), 1);
                    assert_eq!(f.persons[0].name, HOLDER_0001);
                } else {
                    assert_eq!(f.persons.len(), 3);
                    assert_eq!(
                        attestation.certification,
                        "これは、戸籍に記録されている事項の全部を証明した書面である。"
                    );
                }
                assert!(f.domicile.contains("美濃加茂市"));
                let event = &f.persons[0].events[0];
                assert!(
                    event.lines[0].starts_with("【出生日】")
                        && ["昭和", "平成", "令和"]
                            .iter()
                            .any(|era| event.lines[0].contains(era)),
                    "{:?}",
                    event.lines
                );
            }
            FrontSide::FamilyRegisterAttachment(f) => {
                assert_eq!(f.name, HOLDER_0001);
                assert_eq!(f.addresses.len(), 3);
                assert!(f.domicile.is_some() && f.head_name.is_some());
            }
        }
    }
    // 附票 without the option leaves 本籍・筆頭者 out.
    let answer = adapter
        .ask(
            MINOKAMO,
            &holder,
            order(CertificateKind::FamilyRegisterAttachment {
                include_domicile: false,
            }),
        )
        .await;
    let (FrontSide::FamilyRegisterAttachment(f), _, _) = issued(&answer) else {
        panic!("附票")
    };
    assert_eq!((f.domicile.as_ref(), f.head_name.as_ref()), (None, None));
}

#[tokio::test]
async fn fiscal_years_follow_the_switchover() {
    let adapter = spawn_adapter().await;
    let holder = card(MINOKAMO, 1);
    // 2026-05-20: before 06-01, the newest year is 2025, and 2026 is not yet issued.
    let may_20 = NOV_20_NOON_JST - 184 * 86_400;
    for kind in [
        CertificateKind::IncomeTax {
            fiscal_year: Some(2026),
        },
        CertificateKind::TaxPayment {
            fiscal_year: Some(2026),
        },
    ] {
        let answer = adapter.ask_at(MINOKAMO, &holder, order(kind), may_20).await;
        assert_eq!(refusal(&answer), RefusalReason::BeforeTaxSwitchover);
    }
    let answer = adapter
        .ask_at(
            MINOKAMO,
            &holder,
            order(CertificateKind::IncomeTax { fiscal_year: None }),
            may_20,
        )
        .await;
    let (FrontSide::IncomeTax(f), _, _) = issued(&answer) else {
        panic!("所得・課税証明書")
    };
    assert_eq!(f.fiscal_year_wareki, "令和7年度");
    // 0070 has 2025 only.
    let only_2025 = card(MINOKAMO, 70);
    let answer = adapter
        .ask(
            MINOKAMO,
            &only_2025,
            order(CertificateKind::IncomeTax {
                fiscal_year: Some(2026),
            }),
        )
        .await;
    assert_eq!(refusal(&answer), RefusalReason::NoTaxRecord);
    let answer = adapter
        .ask(
            MINOKAMO,
            &only_2025,
            order(CertificateKind::IncomeTax {
                fiscal_year: Some(2025),
            }),
        )
        .await;
    let (FrontSide::IncomeTax(f), _, _) = issued(&answer) else {
        panic!("所得・課税証明書")
    };
    assert_eq!(f.fiscal_year_wareki, "令和7年度");
}

#[tokio::test]
async fn every_refusal_rule_with_the_sample_residents() {
    let adapter = spawn_adapter().await;
    let nov_20 = NOV_20_NOON_JST;
    let nov_24 = NOV_24_NOON_JST;
    let seal = CertificateKind::SealRegistration;
    let income = CertificateKind::IncomeTax { fiscal_year: None };
    let payment = CertificateKind::TaxPayment { fiscal_year: None };
    let all = CertificateKind::FamilyRegisterAll;
    let cases: Vec<(u64, CertificateKind, i64, RefusalReason)> = vec![
        (91, self_record(), nov_24, RefusalReason::Deceased),
        (92, self_record(), nov_24, RefusalReason::MovedOut),
        (95, self_record(), nov_24, RefusalReason::MovedOut),
        (93, self_record(), nov_24, RefusalReason::SupportMeasures),
        (94, self_record(), nov_24, RefusalReason::Under15),
        (
            60,
            household_record(),
            nov_24,
            RefusalReason::SupportMeasures,
        ),
        (
            60,
            CertificateKind::ResidentRecordItems {
                scope: HouseholdScope::Household,
                include_relationship: false,
            },
            nov_24,
            RefusalReason::SupportMeasures,
        ),
        (61, self_record(), nov_24, RefusalReason::ErasedRecord),
        (62, self_record(), nov_20, RefusalReason::MovingInDay),
        (63, self_record(), nov_20, RefusalReason::CardIssuedToday),
        (64, seal.clone(), nov_24, RefusalReason::NoSealRegistration),
        (65, seal.clone(), nov_24, RefusalReason::NoSealRegistration),
        (66, income.clone(), nov_24, RefusalReason::NoTaxRecord),
        (66, payment.clone(), nov_24, RefusalReason::NoTaxRecord),
        (
            67,
            all.clone(),
            nov_24,
            RefusalReason::FamilyRegisterPending,
        ),
        (68, all.clone(), nov_24, RefusalReason::DomicileElsewhere),
        (
            69,
            resident_record(HouseholdScope::Selected { members: vec![9] }, false),
            nov_24,
            RefusalReason::MemberSelectionInvalid,
        ),
        (99, self_record(), nov_24, RefusalReason::CardNotRegistered),
    ];
    for (suffix, kind, at, expected) in cases {
        let answer = adapter
            .ask_at(MINOKAMO, &card(MINOKAMO, suffix), order(kind.clone()), at)
            .await;
        assert_eq!(
            refusal(&answer),
            expected,
            "card {suffix} {}",
            kind.certificate_type()
        );
    }
    // The same residents are issued what the rules do not stop, or on another day.
    let issued_cases: Vec<(u64, CertificateKind, i64)> = vec![
        (60, self_record(), nov_24),
        (62, self_record(), nov_24),
        (63, self_record(), nov_24),
        (64, self_record(), nov_24),
        (66, self_record(), nov_24),
    ];
    for (suffix, kind, at) in issued_cases {
        let answer = adapter
            .ask_at(MINOKAMO, &card(MINOKAMO, suffix), order(kind), at)
            .await;
        issued(&answer);
    }
}

#[tokio::test]
async fn type_not_offered_is_checked_again_by_the_adapter() {
    let adapter = spawn_adapter().await;
    // 印鑑登録証明書 is offered through the 住所地 only.
    let answer = adapter
        .ask(
            MINOKAMO,
            &card(MINOKAMO, 1),
            domicile_order(MINOKAMO, CertificateKind::SealRegistration),
        )
        .await;
    assert_eq!(refusal(&answer), RefusalReason::TypeNotOffered);
}

#[tokio::test]
async fn selected_members_and_pagination() {
    let adapter = spawn_adapter().await;
    let key = adapter.municipality_public(MINOKAMO);
    let big = card(MINOKAMO, 69);
    let answer = adapter.ask(MINOKAMO, &big, order(household_record())).await;
    let (front, seals, _) = issued(&answer);
    let FrontSide::ResidentRecord(all) = front else {
        panic!("住民票の写し")
    };
    assert_eq!(all.members.len(), 8);
    assert_eq!(front.page_count(), 2);
    let payloads = check_seals(front, seals, CertificateType::ResidentRecord, &key);
    assert_eq!(payloads.len(), 2);

    let answer = adapter
        .ask(
            MINOKAMO,
            &big,
            order(resident_record(
                HouseholdScope::Selected {
                    members: vec![2, 5, 8],
                },
                false,
            )),
        )
        .await;
    let (FrontSide::ResidentRecord(chosen), seals, _) = issued(&answer) else {
        panic!("住民票の写し")
    };
    let names: Vec<_> = chosen.members.iter().map(|m| m.name.clone()).collect();
    let expected: Vec<_> = [1, 4, 7]
        .iter()
        .map(|&i| all.members[i].name.clone())
        .collect();
    assert_eq!(names, expected);
    assert_eq!(seals.len(), 1);
    assert_eq!(
        chosen.attestation.certification,
        "この写しは、住民票の原本と相違ないことを証明する。"
    );
}

#[tokio::test]
async fn family_register_of_five_paginates_to_three_sealed_pages() {
    use schemas::DomicileRegistrationStatus;
    let adapter = spawn_adapter().await;
    let key = adapter.municipality_public(SAKAHOGI);
    let holder = card(MINOKAMO, 68);
    let (registration_id, status) = register_domicile_of(&adapter, SAKAHOGI, &holder).await;
    assert_eq!(status, DomicileRegistrationStatus::Pending);
    approve_as_clerk(&adapter, registration_id, &holder).await;
    let answer = adapter
        .ask(
            SAKAHOGI,
            &holder,
            domicile_order(SAKAHOGI, CertificateKind::FamilyRegisterAll),
        )
        .await;
    let (front, seals, fee) = issued(&answer);
    assert_eq!(fee, 350);
    let FrontSide::FamilyRegister(f) = front else {
        panic!("戸籍")
    };
    assert_eq!(f.persons.len(), 5);
    assert_eq!(f.persons.iter().filter(|p| p.removed).count(), 1);
    assert_eq!(front.page_count(), 3);
    check_seals(front, seals, CertificateType::FamilyRegisterAll, &key);
}
