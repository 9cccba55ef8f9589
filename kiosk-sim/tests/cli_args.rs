//! The command line: every certificate type, scope, route and option parses into the
//! order the kiosk sends; options that do not apply to a type are usage errors.

use clap::Parser as _;
use kiosk_sim::cli::{parse_route, parse_scope, IssueArgs, MenuArgs, RegisterDomicileArgs};
use schemas::{
    CertificateKind, CertificateType, HouseholdScope, MunicipalityCode, Route, RouteKind,
};

fn issue(extra: &[&str]) -> Result<IssueArgs, clap::Error> {
    let mut argv = vec![
        "issue", "--config", "k.toml", "--card", "c.json", "--pin", "1234", "--out", "out",
    ];
    argv.extend_from_slice(extra);
    IssueArgs::try_parse_from(argv)
}

fn order_kind(extra: &[&str]) -> CertificateKind {
    issue(extra).unwrap().order().unwrap().certificate
}

#[test]
fn every_type_parses_into_its_kind() {
    let cases = [
        ("resident-record", CertificateType::ResidentRecord),
        (
            "resident-record-items",
            CertificateType::ResidentRecordItems,
        ),
        ("seal-registration", CertificateType::SealRegistration),
        ("income-tax", CertificateType::IncomeTax),
        ("tax-payment", CertificateType::TaxPayment),
        ("family-register-all", CertificateType::FamilyRegisterAll),
        (
            "family-register-individual",
            CertificateType::FamilyRegisterIndividual,
        ),
        (
            "family-register-attachment",
            CertificateType::FamilyRegisterAttachment,
        ),
    ];
    for (flag, expected) in cases {
        let kind = order_kind(&["--type", flag]);
        assert_eq!(kind.certificate_type(), expected, "{flag}");
    }
    assert!(issue(&["--type", "passport"]).is_err());
}

#[test]
fn defaults_are_a_resident_record_of_self_through_the_residence() {
    let args = issue(&[]).unwrap();
    let order = args.order().unwrap();
    assert_eq!(order.route, Route::Residence);
    assert_eq!(order.copies, 1);
    assert_eq!(
        order.certificate,
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        }
    );
    assert!(!args.json);
}

#[test]
fn scopes_and_toggles() {
    assert_eq!(
        order_kind(&["--scope", "household", "--relationship", "--domicile"]),
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::Household,
            include_domicile: true,
            include_relationship: true,
        }
    );
    assert_eq!(
        order_kind(&[
            "--type",
            "resident-record-items",
            "--scope",
            "members:3,1",
            "--relationship"
        ]),
        CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::Selected {
                members: vec![1, 3]
            },
            include_relationship: true,
        }
    );
    assert_eq!(
        order_kind(&["--scope", "self"]).scope(),
        Some(&HouseholdScope::SelfOnly)
    );
    assert_eq!(
        order_kind(&["--type", "family-register-attachment", "--domicile"]),
        CertificateKind::FamilyRegisterAttachment {
            include_domicile: true
        }
    );
}

#[test]
fn bad_scopes_are_rejected() {
    for bad in [
        "everyone",
        "members:",
        "members:0",
        "members:a",
        "members:1,,2",
        "members:300",
    ] {
        assert!(parse_scope(bad).is_err(), "{bad}");
        assert!(issue(&["--scope", bad]).is_err(), "{bad}");
    }
}

#[test]
fn fiscal_years() {
    assert_eq!(
        order_kind(&["--type", "income-tax", "--fiscal-year", "2025"]),
        CertificateKind::IncomeTax {
            fiscal_year: Some(2025)
        }
    );
    assert_eq!(
        order_kind(&["--type", "tax-payment"]),
        CertificateKind::TaxPayment { fiscal_year: None }
    );
    assert!(issue(&["--type", "income-tax", "--fiscal-year", "26"]).is_err());
}

#[test]
fn options_that_do_not_apply_are_usage_errors() {
    let cases: [&[&str]; 5] = [
        &["--type", "seal-registration", "--scope", "household"],
        &["--type", "family-register-all", "--relationship"],
        &["--type", "income-tax", "--domicile"],
        &["--type", "resident-record", "--fiscal-year", "2026"],
        &["--type", "family-register-individual", "--scope", "self"],
    ];
    for argv in cases {
        let args = issue(argv).unwrap();
        let error = args.order().unwrap_err();
        assert!(error.contains("does not apply"), "{argv:?}: {error}");
    }
}

#[test]
fn routes_and_copies() {
    let order = issue(&[
        "--type",
        "family-register-all",
        "--route",
        "domicile:215015",
        "--copies",
        "3",
    ])
    .unwrap()
    .order()
    .unwrap();
    assert_eq!(
        order.route,
        Route::Domicile {
            municipality_code: MunicipalityCode::parse("215015").unwrap()
        }
    );
    assert_eq!(order.copies, 3);
    assert_eq!(parse_route("residence").unwrap(), Route::Residence);
    // A code with a wrong check digit, or no code at all.
    for bad in ["domicile:215016", "domicile:", "home"] {
        assert!(parse_route(bad).is_err(), "{bad}");
    }
    for bad in ["0", "11"] {
        assert!(issue(&["--copies", bad]).is_err(), "{bad}");
    }
}

#[test]
fn menu_arguments() {
    let args = MenuArgs::try_parse_from([
        "menu",
        "--config",
        "k.toml",
        "--municipality",
        "212113",
        "--route",
        "domicile",
    ])
    .unwrap();
    assert_eq!(args.municipality.to_string(), "212113");
    assert_eq!(args.route, RouteKind::Domicile);
    let default =
        MenuArgs::try_parse_from(["menu", "--config", "k", "--municipality", "112330"]).unwrap();
    assert_eq!(default.route, RouteKind::Residence);
    assert!(
        MenuArgs::try_parse_from(["menu", "--config", "k", "--municipality", "999999"]).is_err()
    );
}

#[test]
fn register_domicile_arguments() {
    let args = RegisterDomicileArgs::try_parse_from([
        "register-domicile",
        "--config",
        "k.toml",
        "--card",
        "c.json",
        "--pin",
        "1234",
        "--municipality",
        "215015",
        "--domicile",
        "岐阜県加茂郡坂祝町取組46番地",
        "--head",
        "坂祝 一郎",
    ])
    .unwrap();
    let registration = args.registration();
    assert_eq!(registration.municipality_code.to_string(), "215015");
    assert_eq!(registration.domicile, "岐阜県加茂郡坂祝町取組46番地");
    assert_eq!(registration.domicile_head, "坂祝 一郎");
    assert!(registration.validate().is_ok());
    // Every field is required.
    assert!(RegisterDomicileArgs::try_parse_from([
        "register-domicile",
        "--config",
        "k",
        "--card",
        "c",
        "--pin",
        "1234",
        "--municipality",
        "215015",
        "--domicile",
        "x",
    ])
    .is_err());
}

#[test]
fn payment_and_printer_default_to_the_happy_path_and_parse_every_choice() {
    use kiosk_sim::{SimulatedPayment, SimulatedPrinter};
    let args = issue(&[]).unwrap();
    assert_eq!(args.payment, SimulatedPayment::Pays);
    assert_eq!(args.printer, SimulatedPrinter::Prints);
    for (text, expected) in [
        ("paid", SimulatedPayment::Pays),
        ("cancel", SimulatedPayment::Cancels),
        ("timeout", SimulatedPayment::TimesOut),
    ] {
        assert_eq!(issue(&["--payment", text]).unwrap().payment, expected);
    }
    for (text, expected) in [
        ("ok", SimulatedPrinter::Prints),
        ("jam", SimulatedPrinter::JamsBeforeFirstPage),
        ("power-loss", SimulatedPrinter::LosesPower),
    ] {
        assert_eq!(issue(&["--printer", text]).unwrap().printer, expected);
    }
    assert!(issue(&["--payment", "card"]).is_err());
    assert!(issue(&["--printer", "smoke"]).is_err());
}
