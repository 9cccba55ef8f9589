//! The suite's test residents: a register directory in the documented CSV layout
//! (`schemas/register/README.md`) under `conformance/residents/`, produced by
//! [`generate`] and checked in (a test keeps the files equal to the generator's output).
//!
//! A municipality imports it into a test tenant with the suite code [`SUITE_CODE`]
//! (`municipal-adapter import --config FILE --municipality 999997 conformance/residents`).
//!
//! | card suffix | resident | purpose |
//! | --- | --- | --- |
//! | 1 | R0001 | every ledger: all eight types are issued (catalogue scenario) |
//! | 2..=121 | R0002..R0121 | [`ORDINARY_COUNT`] ordinary residents with distinct names, one per household |
//! | 201.. | see [`SPECIAL_RESIDENTS`] | one refusal reason each, and a name outside the font |
//! | 299 | none | never bound: `card_not_registered` |
//!
//! Every date is fixed; the requests are made at [`SUITE_DAY_NOON_UNIX_S`] (the
//! clock-dependent residents are about that day).

use schemas::{CardSerial, CertificateKind, HouseholdScope, RefusalReason};

/// 地方公共団体コード of the suite's fictional municipality (prefecture 99 does not
/// exist; check digit valid).
pub const SUITE_CODE: &str = "999997";
/// Name, prefecture and mayor of the suite municipality on the reference target.
pub const SUITE_NAME: &str = "適合試験市";
pub const SUITE_PREFECTURE: &str = "試験県";
pub const SUITE_MAYOR: &str = "試験 太郎";

/// 2026-11-20 12:00 Asia/Tokyo (a Friday, not a holiday): `requested_at` of every fetch.
pub const SUITE_DAY_NOON_UNIX_S: i64 = 1_795_143_600;
/// The same day as `yyyy-mm-dd` (the clock-dependent residents' dates).
pub const SUITE_DAY: &str = "2026-11-20";

/// Ordinary residents (card suffixes 2..=ORDINARY_COUNT+1).
pub const ORDINARY_COUNT: usize = 120;
/// The full-service resident's card suffix.
pub const FULL_SERVICE_SUFFIX: u64 = 1;
/// A serial that is never bound.
pub const UNBOUND_SUFFIX: u64 = 299;
/// The special resident whose name has a character outside the certificate font
/// (IPAex Mincho lacks 𠮷 U+20BB7, a CJK Extension B character).
pub const UNPRINTABLE_SUFFIX: u64 = 213;
pub const UNPRINTABLE_NAME: &str = "𠮷野 試験";

/// A special resident: card suffix, name, the order to send, the expected refusal.
#[derive(Clone, Copy, Debug)]
pub struct SpecialResident {
    pub suffix: u64,
    pub reason: RefusalReason,
    /// What the order asks for (the reason only applies to some types).
    pub order: SpecialOrder,
    pub note: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialOrder {
    ResidentRecordSelf,
    SealRegistration,
    IncomeTaxNewest,
    TaxPaymentNewest,
    FamilyRegisterAll,
}

impl SpecialOrder {
    pub fn kind(self) -> CertificateKind {
        match self {
            Self::ResidentRecordSelf => resident_record_self(),
            Self::SealRegistration => CertificateKind::SealRegistration,
            Self::IncomeTaxNewest => CertificateKind::IncomeTax { fiscal_year: None },
            Self::TaxPaymentNewest => CertificateKind::TaxPayment { fiscal_year: None },
            Self::FamilyRegisterAll => CertificateKind::FamilyRegisterAll,
        }
    }
}

/// 住民票の写し, the holder only, no options.
pub fn resident_record_self() -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope: HouseholdScope::SelfOnly,
        include_domicile: false,
        include_relationship: false,
    }
}

/// One special resident per refusal reason the municipality decides from its register.
/// `card_not_registered` is [`UNBOUND_SUFFIX`]; `member_selection_invalid` is asked of
/// an ordinary resident. The reasons decided by the catalogue or the request alone
/// (`out_of_hours`, `maintenance`, `type_not_offered`, `before_tax_switchover`,
/// `domicile_not_registered`) and by the center (`unprintable_character`) have no
/// resident.
pub const SPECIAL_RESIDENTS: [SpecialResident; 12] = [
    SpecialResident {
        suffix: 201,
        reason: RefusalReason::Deceased,
        order: SpecialOrder::ResidentRecordSelf,
        note: "status deceased",
    },
    SpecialResident {
        suffix: 202,
        reason: RefusalReason::MovedOut,
        order: SpecialOrder::ResidentRecordSelf,
        note: "status moved_out",
    },
    SpecialResident {
        suffix: 203,
        reason: RefusalReason::SupportMeasures,
        order: SpecialOrder::ResidentRecordSelf,
        note: "支援措置 on the holder",
    },
    SpecialResident {
        suffix: 204,
        reason: RefusalReason::Under15,
        order: SpecialOrder::ResidentRecordSelf,
        note: "born 2015-01-10",
    },
    SpecialResident {
        suffix: 205,
        reason: RefusalReason::ErasedRecord,
        order: SpecialOrder::ResidentRecordSelf,
        note: "status erased",
    },
    SpecialResident {
        suffix: 206,
        reason: RefusalReason::MovingInDay,
        order: SpecialOrder::ResidentRecordSelf,
        note: "became resident on the suite day",
    },
    SpecialResident {
        suffix: 207,
        reason: RefusalReason::CardIssuedToday,
        order: SpecialOrder::ResidentRecordSelf,
        note: "card handed over on the suite day",
    },
    SpecialResident {
        suffix: 208,
        reason: RefusalReason::NoSealRegistration,
        order: SpecialOrder::SealRegistration,
        note: "no 印鑑登録",
    },
    SpecialResident {
        suffix: 209,
        reason: RefusalReason::NoTaxRecord,
        order: SpecialOrder::IncomeTaxNewest,
        note: "no 課税 record",
    },
    SpecialResident {
        suffix: 210,
        reason: RefusalReason::FamilyRegisterPending,
        order: SpecialOrder::FamilyRegisterAll,
        note: "戸籍 F0002 has a filing not yet entered",
    },
    SpecialResident {
        suffix: 211,
        reason: RefusalReason::DomicileElsewhere,
        order: SpecialOrder::FamilyRegisterAll,
        note: "本籍 in another municipality",
    },
    SpecialResident {
        suffix: 212,
        reason: RefusalReason::FieldTooLong,
        order: SpecialOrder::TaxPaymentNewest,
        note: "17 tax items in one year (the layout holds 16)",
    },
];

/// The serial `<SUITE_CODE>` + 10 digits.
pub fn suite_serial(suffix: u64) -> Option<CardSerial> {
    CardSerial::parse(format!("{SUITE_CODE}{suffix:010}")).ok()
}

/// An ordinary resident: (card suffix, name, birth date yyyy-mm-dd).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrdinaryResident {
    pub suffix: u64,
    pub name: String,
    pub birth_date: String,
}

const FAMILY_NAMES: [(&str, &str); 12] = [
    ("青木", "あおき"),
    ("石田", "いしだ"),
    ("上野", "うえの"),
    ("遠藤", "えんどう"),
    ("岡本", "おかもと"),
    ("加藤", "かとう"),
    ("木村", "きむら"),
    ("工藤", "くどう"),
    ("小松", "こまつ"),
    ("佐野", "さの"),
    ("杉山", "すぎやま"),
    ("関口", "せきぐち"),
];

const GIVEN_NAMES: [(&str, &str, &str); 10] = [
    ("一郎", "いちろう", "male"),
    ("花子", "はなこ", "female"),
    ("健太", "けんた", "male"),
    ("美香", "みか", "female"),
    ("大輔", "だいすけ", "male"),
    ("陽子", "ようこ", "female"),
    ("誠", "まこと", "male"),
    ("直美", "なおみ", "female"),
    ("修", "おさむ", "male"),
    ("理恵", "りえ", "female"),
];

struct Person {
    name: String,
    kana: String,
    sex: &'static str,
    birth_date: String,
}

/// The i-th (0-based) ordinary person: distinct names for i < 120.
fn ordinary_person(index: usize) -> Person {
    let (family, family_kana) = FAMILY_NAMES[index % FAMILY_NAMES.len()];
    let (given, given_kana, sex) = GIVEN_NAMES[(index / FAMILY_NAMES.len()) % GIVEN_NAMES.len()];
    Person {
        name: format!("{family} {given}"),
        kana: format!("{family_kana} {given_kana}"),
        sex,
        birth_date: format!(
            "{:04}-{:02}-{:02}",
            1950 + index % 40,
            1 + index % 12,
            1 + index % 28
        ),
    }
}

/// Every ordinary resident (card suffixes 2..=121).
pub fn ordinary_residents() -> Vec<OrdinaryResident> {
    (0..ORDINARY_COUNT)
        .map(|i| {
            let person = ordinary_person(i);
            OrdinaryResident {
                suffix: i as u64 + 2,
                name: person.name,
                birth_date: person.birth_date,
            }
        })
        .collect()
}

/// The full-service resident's name and birth date.
pub const FULL_SERVICE_NAME: &str = "試験 一郎";
pub const FULL_SERVICE_BIRTH: &str = "1975-06-15";

const ADDRESS_BASE: &str = "試験県適合試験市本町";
const SEAL_PNG: &[u8] =
    include_bytes!("../../../municipal-adapter/fixtures/212113/seals/10001.png");

/// One file of the register directory: relative path and bytes.
pub struct RegisterFile {
    pub path: &'static str,
    pub bytes: Vec<u8>,
}

fn csv_line(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                (*f).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The whole register directory, deterministically.
pub fn generate() -> Vec<RegisterFile> {
    let mut residents = csv_line(&[
        "household_id",
        "household_address",
        "resident_id",
        "name",
        "name_kana",
        "birth_date",
        "sex",
        "relationship",
        "became_resident_on",
        "domicile",
        "domicile_head",
        "status",
        "support_measures",
        "family_register_id",
        "family_register_person_id",
    ]);
    let mut cards = csv_line(&["card_serial", "resident_id", "issued_on"]);
    let card = |suffix: u64| format!("{SUITE_CODE}{suffix:010}");

    // The full-service resident.
    let domicile = format!("{ADDRESS_BASE}1番地");
    residents.push_str(&csv_line(&[
        "H0001",
        &format!("{ADDRESS_BASE}1番地の1"),
        "R0001",
        FULL_SERVICE_NAME,
        "しけん いちろう",
        FULL_SERVICE_BIRTH,
        "male",
        "世帯主",
        "2010-04-01",
        &domicile,
        FULL_SERVICE_NAME,
        "active",
        "false",
        "F0001",
        "P1",
    ]));
    cards.push_str(&csv_line(&[
        &card(FULL_SERVICE_SUFFIX),
        "R0001",
        "2020-04-01",
    ]));

    for (i, resident) in ordinary_residents().iter().enumerate() {
        let person = ordinary_person(i);
        let household = format!("H{:04}", resident.suffix);
        let id = format!("R{:04}", resident.suffix);
        residents.push_str(&csv_line(&[
            &household,
            &format!("{ADDRESS_BASE}{}番地", resident.suffix + 100),
            &id,
            &person.name,
            &person.kana,
            &person.birth_date,
            person.sex,
            "世帯主",
            "2015-04-01",
            "",
            "",
            "active",
            "false",
            "",
            "",
        ]));
        cards.push_str(&csv_line(&[&card(resident.suffix), &id, "2020-04-01"]));
    }

    // Residents no longer current live in a household headed by a current member.
    residents.push_str(&csv_line(&[
        "H0200",
        &format!("{ADDRESS_BASE}200番地"),
        "R0200",
        "特別 世帯主",
        "とくべつ せたいぬし",
        "1960-02-02",
        "male",
        "世帯主",
        "2000-04-01",
        "",
        "",
        "active",
        "false",
        "",
        "",
    ]));
    for special in SPECIAL_RESIDENTS
        .iter()
        .map(|s| (s.suffix, Some(s.reason)))
        .chain([(UNPRINTABLE_SUFFIX, None)])
    {
        let (suffix, reason) = special;
        let id = format!("R{suffix:04}");
        let mut name = format!("特別 {}", suffix - 200);
        let mut kana = "とくべつ".to_owned();
        let mut household = format!("H{suffix:04}");
        let mut relationship = "世帯主";
        let mut birth = "1970-03-03".to_owned();
        let mut became = "2012-04-01".to_owned();
        let mut status = "active";
        let mut support = "false";
        let (mut domicile, mut head, mut fr, mut fp) = ("", "", "", "");
        let mut issued_on = "2020-04-01";
        match reason {
            Some(RefusalReason::Deceased) => {
                status = "deceased";
                household = "H0200".into();
                relationship = "弟";
            }
            Some(RefusalReason::MovedOut) => {
                status = "moved_out";
                household = "H0200".into();
                relationship = "妹";
            }
            Some(RefusalReason::ErasedRecord) => {
                status = "erased";
                household = "H0200".into();
                relationship = "同居人";
            }
            Some(RefusalReason::SupportMeasures) => support = "true",
            Some(RefusalReason::Under15) => birth = "2015-01-10".into(),
            Some(RefusalReason::MovingInDay) => became = SUITE_DAY.into(),
            Some(RefusalReason::CardIssuedToday) => issued_on = SUITE_DAY,
            Some(RefusalReason::FamilyRegisterPending) => {
                domicile = "試験県適合試験市本町210番地";
                head = "特別 10";
                fr = "F0002";
                fp = "P1";
            }
            Some(RefusalReason::DomicileElsewhere) => {
                domicile = "北海道札幌市中央区北一条西二丁目1番地";
                head = "特別 11";
            }
            None => {
                name = UNPRINTABLE_NAME.into();
                kana = "よしの しけん".into();
            }
            _ => {}
        }
        if name.starts_with("特別") {
            kana = format!("とくべつ {}", kana_number(suffix - 200));
        }
        let address = if household == "H0200" {
            format!("{ADDRESS_BASE}200番地")
        } else {
            format!("{ADDRESS_BASE}{suffix}番地")
        };
        if became.as_str() < birth.as_str() {
            became = birth.clone();
        }
        residents.push_str(&csv_line(&[
            &household,
            &address,
            &id,
            &name,
            &kana,
            &birth,
            "female",
            relationship,
            &became,
            domicile,
            head,
            status,
            support,
            fr,
            fp,
        ]));
        cards.push_str(&csv_line(&[&card(suffix), &id, issued_on]));
    }

    let seal_registrations =
        csv_line(&[
            "resident_id",
            "registration_number",
            "registered_on",
            "status",
            "impression_file",
        ]) + &csv_line(&["R0001", "90001", "2011-05-10", "active", "seals/90001.png"]);

    let mut tax_records = csv_line(&[
        "resident_id",
        "fiscal_year",
        "address_on_jan1",
        "salary_income_yen",
        "total_income_yen",
        "deductions_yen",
        "taxable_income_yen",
        "municipal_tax_yen",
        "prefectural_tax_yen",
    ]);
    for year in ["2025", "2026"] {
        tax_records.push_str(&csv_line(&[
            "R0001",
            year,
            &format!("{ADDRESS_BASE}1番地の1"),
            "5000000",
            "3560000",
            "1200000",
            "2360000",
            "141600",
            "94400",
        ]));
    }
    let mut tax_payments = csv_line(&[
        "resident_id",
        "fiscal_year",
        "tax_name",
        "assessed_yen",
        "paid_yen",
    ]);
    tax_payments.push_str(&csv_line(&[
        "R0001",
        "2026",
        "市県民税",
        "236000",
        "236000",
    ]));
    for item in 1..=17 {
        tax_payments.push_str(&csv_line(&[
            "R0212",
            "2026",
            &format!("試験税目{item:02}"),
            "1000",
            "1000",
        ]));
    }

    let family_registers =
        csv_line(&[
            "family_register_id",
            "domicile",
            "head_name",
            "created_on",
            "pending_filing",
        ]) + &csv_line(&["F0001", &domicile, FULL_SERVICE_NAME, "2005-06-18", "false"])
            + &csv_line(&[
                "F0002",
                "試験県適合試験市本町210番地",
                "特別 10",
                "1998-05-05",
                "true",
            ]);
    let family_register_persons = csv_line(&[
        "family_register_id",
        "person_id",
        "name",
        "birth_date",
        "sex",
        "relationship",
        "father",
        "mother",
        "removed",
    ]) + &csv_line(&[
        "F0001",
        "P1",
        FULL_SERVICE_NAME,
        FULL_SERVICE_BIRTH,
        "male",
        "",
        "試験 正一",
        "試験 節子",
        "false",
    ]) + &csv_line(&[
        "F0002",
        "P1",
        "特別 10",
        "1970-03-03",
        "female",
        "",
        "特別 父",
        "特別 母",
        "false",
    ]);
    let family_register_events =
        csv_line(&["family_register_id", "person_id", "label", "date", "detail"])
            + &csv_line(&[
                "F0001",
                "P1",
                "出生",
                FULL_SERVICE_BIRTH,
                "【出生地】試験県適合試験市",
            ])
            + &csv_line(&[
                "F0002",
                "P1",
                "出生",
                "1970-03-03",
                "【出生地】試験県適合試験市",
            ]);
    let attachment_addresses = csv_line(&["family_register_id", "person_id", "address", "since"])
        + &csv_line(&[
            "F0001",
            "P1",
            &format!("{ADDRESS_BASE}1番地の1"),
            "2010-04-01",
        ]);

    vec![
        RegisterFile {
            path: "residents.csv",
            bytes: residents.into_bytes(),
        },
        RegisterFile {
            path: "cards.csv",
            bytes: cards.into_bytes(),
        },
        RegisterFile {
            path: "seal_registrations.csv",
            bytes: seal_registrations.into_bytes(),
        },
        RegisterFile {
            path: "tax_records.csv",
            bytes: tax_records.into_bytes(),
        },
        RegisterFile {
            path: "tax_payments.csv",
            bytes: tax_payments.into_bytes(),
        },
        RegisterFile {
            path: "family_registers.csv",
            bytes: family_registers.into_bytes(),
        },
        RegisterFile {
            path: "family_register_persons.csv",
            bytes: family_register_persons.into_bytes(),
        },
        RegisterFile {
            path: "family_register_events.csv",
            bytes: family_register_events.into_bytes(),
        },
        RegisterFile {
            path: "attachment_addresses.csv",
            bytes: attachment_addresses.into_bytes(),
        },
        RegisterFile {
            path: "seals/90001.png",
            bytes: SEAL_PNG.to_vec(),
        },
    ]
}

/// Hiragana for 1..=13 (names' ふりがな must be kana).
fn kana_number(n: u64) -> &'static str {
    const NUMBERS: [&str; 14] = [
        "ぜろ",
        "いち",
        "に",
        "さん",
        "よん",
        "ご",
        "ろく",
        "なな",
        "はち",
        "きゅう",
        "じゅう",
        "じゅういち",
        "じゅうに",
        "じゅうさん",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NUMBERS.get(i))
        .copied()
        .unwrap_or("すう")
}

/// The checked-in files, compiled in (so the binary needs no checkout).
pub fn shipped() -> Vec<RegisterFile> {
    macro_rules! file {
        ($path:literal) => {
            RegisterFile {
                path: $path,
                bytes: include_bytes!(concat!("../../residents/", $path)).to_vec(),
            }
        };
    }
    vec![
        file!("residents.csv"),
        file!("cards.csv"),
        file!("seal_registrations.csv"),
        file!("tax_records.csv"),
        file!("tax_payments.csv"),
        file!("family_registers.csv"),
        file!("family_register_persons.csv"),
        file!("family_register_events.csv"),
        file!("attachment_addresses.csv"),
        file!("seals/90001.png"),
    ]
}

/// Writes `files` below `dir`.
pub fn write_all(files: &[RegisterFile], dir: &std::path::Path) -> std::io::Result<()> {
    for file in files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &file.bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residents_dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("residents")
    }

    /// Regenerates the checked-in files: `cargo test -p conformance -- --ignored regenerate`.
    #[test]
    #[ignore]
    fn regenerate_residents() {
        write_all(&generate(), &residents_dir()).unwrap();
    }

    #[test]
    fn checked_in_residents_equal_the_generator() {
        let shipped = shipped();
        let generated = generate();
        assert_eq!(shipped.len(), generated.len());
        for (a, b) in shipped.iter().zip(&generated) {
            assert_eq!(a.path, b.path);
            assert!(
                a.bytes == b.bytes,
                "{} differs from the generator: run `cargo test -p conformance -- --ignored regenerate`",
                a.path
            );
        }
    }

    #[test]
    fn ordinary_names_are_distinct_and_enough() {
        let names: std::collections::HashSet<_> =
            ordinary_residents().into_iter().map(|r| r.name).collect();
        assert!(names.len() >= 100);
        assert_eq!(names.len(), ORDINARY_COUNT);
        assert!(suite_serial(UNBOUND_SUFFIX).is_some());
        assert!(schemas::MunicipalityCode::parse(SUITE_CODE).is_ok());
        assert!(UNPRINTABLE_NAME.chars().any(|c| u32::from(c) > 0xFFFF));
    }

    /// The special name must be one the center's composer refuses, and only because
    /// of that one character; every other suite name must be printable.
    #[test]
    fn the_unprintable_name_is_outside_the_certificate_font_and_the_others_are_not() {
        let composer = composer::Composer::with_embedded_font().unwrap();
        assert!(composer.check_printable([UNPRINTABLE_NAME]).is_err());
        assert!(composer
            .check_printable([UNPRINTABLE_NAME.replace('𠮷', "吉").as_str()])
            .is_ok());
        let names: Vec<String> = ordinary_residents().into_iter().map(|r| r.name).collect();
        assert!(composer
            .check_printable(names.iter().map(String::as_str))
            .is_ok());
        assert!(composer.check_printable([FULL_SERVICE_NAME]).is_ok());
    }
}
