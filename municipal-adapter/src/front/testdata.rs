//! Hand-built register values for the front and rule tests.

use jiff::civil::{date, Date};
use schemas::{CardSerial, Catalogue, MunicipalityCode};

use super::FrontIssuer;
use crate::catalogue::default_offerings;
use crate::register::store::CardLookup;
use crate::register::{
    AttachmentAddress, FamilyRegister, FamilyRegisterEvent, FamilyRegisterPerson,
    FamilyRegisterRef, Household, Resident, ResidentStatus, SealRegistration, Sex, TaxPayment,
    TaxRecord,
};

pub fn issuer() -> FrontIssuer {
    FrontIssuer {
        municipality_name: "美濃加茂市".into(),
        prefecture: "岐阜県".into(),
        mayor_title: "美濃加茂市長".into(),
        mayor_name: "藤井 浩人".into(),
    }
}

pub fn catalogue() -> Catalogue {
    Catalogue {
        municipality_code: MunicipalityCode::parse("212113").unwrap(),
        municipality_name: "美濃加茂市".into(),
        published_at_unix_s: 0,
        valid_until_unix_s: 3600,
        offerings: default_offerings(),
        closed_dates: vec![],
        maintenance: vec![],
        tax_switchover: "06-01".into(),
    }
}

pub fn resident(id: &str, relationship: &str, birth: Date) -> Resident {
    Resident {
        resident_id: id.into(),
        name: format!("名 {id}"),
        name_kana: "な".into(),
        birth_date: birth,
        sex: Sex::Female,
        relationship: relationship.into(),
        became_resident_on: date(2010, 4, 1),
        previous_address: None,
        domicile: Some("岐阜県美濃加茂市太田町1番地".into()),
        domicile_head: Some("名 R1".into()),
        remarks: vec![],
        status: ResidentStatus::Active,
        support_measures: false,
        family_register: None,
    }
}

/// R1 世帯主, R2 妻, R3 子 (under 15), R4 子 (moved out: not current).
pub fn household() -> Household {
    let mut child = resident("R3", "子", date(2015, 6, 1));
    child.domicile = None;
    child.domicile_head = None;
    let mut gone = resident("R4", "子", date(1999, 6, 1));
    gone.status = ResidentStatus::MovedOut;
    let mut head = resident("R1", "世帯主", date(1970, 1, 1));
    head.family_register = Some(FamilyRegisterRef {
        family_register_id: "FR1".into(),
        person_id: "P1".into(),
    });
    Household {
        household_id: "H1".into(),
        address: "岐阜県美濃加茂市太田町1番地".into(),
        members: vec![head, resident("R2", "妻", date(1972, 2, 29)), child, gone],
    }
}

/// Card of R1 with a seal registration, tax records for 2025 and 2026 and payments.
pub fn lookup() -> CardLookup {
    let record = |year: u16| TaxRecord {
        resident_id: "R1".into(),
        fiscal_year: year,
        address_on_jan1: "岐阜県美濃加茂市太田町1番地".into(),
        salary_income_yen: 5_000_000,
        total_income_yen: 3_560_000,
        deductions_yen: 1_200_000,
        taxable_income_yen: 2_360_000,
        municipal_tax_yen: 141_600,
        prefectural_tax_yen: 94_400,
    };
    let payment = |year: u16, name: &str, paid: u64| TaxPayment {
        resident_id: "R1".into(),
        fiscal_year: year,
        tax_name: name.into(),
        assessed_yen: 10_800,
        paid_yen: paid,
    };
    CardLookup {
        card_serial: CardSerial::parse("2121130000000001").unwrap(),
        card_issued_on: date(2024, 4, 1),
        holder_id: "R1".into(),
        household: household(),
        seal_registration: Some(SealRegistration {
            resident_id: "R1".into(),
            registration_number: "12345".into(),
            registered_on: date(2019, 5, 1),
            active: true,
            impression_png: vec![0x89, b'P', b'N', b'G'],
        }),
        tax_records: vec![record(2025), record(2026)],
        tax_payments: vec![
            payment(2026, "市県民税", 10_800),
            payment(2026, "軽自動車税", 5_400),
        ],
    }
}

/// FR1: P1 (筆頭者, the card holder), P2 妻, P3 長男 (除籍).
pub fn family_register() -> FamilyRegister {
    let person = |id: &str, name: &str, relationship: &str, removed: bool| FamilyRegisterPerson {
        person_id: id.into(),
        name: name.into(),
        birth_date: date(1970, 1, 1),
        sex: Sex::Male,
        relationship: relationship.into(),
        father: Some("父".into()),
        mother: Some("母".into()),
        removed,
        events: vec![FamilyRegisterEvent {
            label: "出生".into(),
            date: date(2019, 5, 1),
            detail: "【出生地】岐阜県美濃加茂市".into(),
        }],
        addresses: vec![
            AttachmentAddress {
                address: "岐阜県美濃加茂市太田町1番地".into(),
                since: date(1989, 1, 8),
            },
            AttachmentAddress {
                address: "岐阜県美濃加茂市太田町2番地".into(),
                since: date(2019, 4, 30),
            },
        ],
    };
    FamilyRegister {
        family_register_id: "FR1".into(),
        domicile: "岐阜県美濃加茂市太田町1番地".into(),
        head_name: "名 R1".into(),
        created_on: date(1995, 6, 1),
        pending_filing: false,
        persons: vec![
            person("P1", "名 R1", "", false),
            person("P2", "名 R2", "妻", false),
            person("P3", "名 R5", "長男", true),
        ],
    }
}
