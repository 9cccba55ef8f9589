//! The sample registers shipped with the crate (fictional residents), for the sandbox,
//! the conformance suite and the tests: CSV register directories under
//! `municipal-adapter/fixtures/<code>/` (layout: `schemas/register/README.md`).
//!
//! | code | municipality | households | bound cards |
//! | --- | --- | --- | --- |
//! | 212113 | 岐阜県美濃加茂市 | 24 (one of six, one of eight members) | 27 issuable + 17 special |
//! | 112330 | 埼玉県北本市 | 11 (one of six, one of seven members: two front pages) | 29 issuable |
//! | 215015 | 岐阜県加茂郡坂祝町 | 7 (one of six members); the 戸籍 of card 212113…0068 | 15 issuable |
//!
//! Card serials are `<code>` + 10 digits. Serials `…0001` up to [`issuable_card_count`]
//! per code are plain adult residents whose 住民票 is issued and printable; card
//! `2121130000000001` ([`FULL_SERVICE_CARD`]) obtains all eight certificate types
//! through the 住所地 route. The special cards of 212113 are in [`SPECIAL_CARDS`].
//! `…0097`, `…0098` and `…0099` are never bound (the sandbox issues them as expired,
//! revoked and unregistered cards). Every date in the samples is fixed; every card was
//! handed over on 2024-04-01 or earlier except `…0063` (2026-11-20).

use std::path::PathBuf;

use jiff::civil::{date, Date};
use schemas::{CardSerial, CertificateType, RefusalReason};

/// Codes of the shipped sample registers.
pub const SAMPLE_CODES: [&str; 3] = ["212113", "112330", "215015"];

/// Card serial suffixes (last 10 digits) that are never bound in any sample.
pub const UNBOUND_SUFFIXES: [u64; 3] = [97, 98, 99];

/// The card of 212113 whose holder (髙橋 健一) has every ledger: an active 印鑑登録,
/// 課税 and 納税 for fiscal years 2025 and 2026 (軽自動車税 2026 partly unpaid), and a
/// three-person 戸籍 with 附票 in 美濃加茂市.
pub const FULL_SERVICE_CARD: &str = "2121130000000001";

/// The card of 212113 whose holder lives in a household of eight current members
/// (住民票 世帯全員: two front pages).
pub const LARGE_HOUSEHOLD_CARD: &str = "2121130000000069";

/// The 本籍地 利用登録 sample: card 212113…0068 (松本 隆) has his 本籍 in 坂祝町; the
/// 戸籍 is kept by 215015 (five persons, one 除籍: 戸籍全部事項証明書 has three
/// front pages), and the clerk approves the registration for this person.
pub const DOMICILE_SAMPLE: DomicileSample = DomicileSample {
    card_serial: "2121130000000068",
    domicile_municipality: "215015",
    domicile: "岐阜県加茂郡坂祝町取組46番地",
    domicile_head: "松本 隆",
    family_register_id: "F2001",
    person_id: "P1",
};

/// See [`DOMICILE_SAMPLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomicileSample {
    pub card_serial: &'static str,
    pub domicile_municipality: &'static str,
    /// 本籍 and 筆頭者 as the resident enters them at the kiosk.
    pub domicile: &'static str,
    pub domicile_head: &'static str,
    pub family_register_id: &'static str,
    pub person_id: &'static str,
}

/// The three 戸籍 types.
pub const FAMILY_REGISTER_TYPES: &[CertificateType] = &[
    CertificateType::FamilyRegisterAll,
    CertificateType::FamilyRegisterIndividual,
    CertificateType::FamilyRegisterAttachment,
];

/// The sample register directory for `code` (in the source tree: it exists only in a
/// checkout of the workspace).
pub fn sample_register_dir(code: &str) -> Option<PathBuf> {
    SAMPLE_CODES.contains(&code).then(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(code)
    })
}

const CARDS_212113: &str = include_str!("../fixtures/212113/cards.csv");
const CARDS_112330: &str = include_str!("../fixtures/112330/cards.csv");
const CARDS_215015: &str = include_str!("../fixtures/215015/cards.csv");

/// (serial, カード交付日) of every card the sample for `code` binds, in serial order, for
/// the sandbox to make card files (compiled in: no checkout needed).
pub fn sample_card_bindings(code: &str) -> Vec<(CardSerial, Date)> {
    let text = match code {
        "212113" => CARDS_212113,
        "112330" => CARDS_112330,
        "215015" => CARDS_215015,
        _ => return Vec::new(),
    };
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut bindings: Vec<(CardSerial, Date)> = reader
        .records()
        .filter_map(Result::ok)
        .filter_map(|record| {
            let serial = CardSerial::parse(record.get(0)?).ok()?;
            let issued_on = crate::register::import::parse_iso_date(record.get(2)?).ok()?;
            Some((serial, issued_on))
        })
        .collect();
    bindings.sort();
    bindings
}

/// The serial `<code>` + `suffix` as 10 digits, e.g. (212113, 99) → 2121130000000099.
/// `None` if `code` is not 6 digits.
pub fn sample_card_serial(code: &str, suffix: u64) -> Option<CardSerial> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) || suffix >= 10_000_000_000 {
        return None;
    }
    CardSerial::parse(format!("{code}{suffix:010}")).ok()
}

/// How many plain issuable cards (suffixes 1..=n) each sample has.
pub fn issuable_card_count(code: &str) -> usize {
    match code {
        "212113" => 27,
        "112330" => 29,
        "215015" => 15,
        _ => 0,
    }
}

/// Every plain issuable card of the sample for `code` (suffixes 1..=n).
pub fn issuable_cards(code: &str) -> Vec<CardSerial> {
    (1..=issuable_card_count(code) as u64)
        .filter_map(|suffix| sample_card_serial(code, suffix))
        .collect()
}

/// The day the clock-dependent samples are about (JST).
pub const SPECIAL_DAY: Date = date(2026, 11, 20);

/// What a special sample card is for. Unless stated otherwise a request goes through
/// the 住所地 route with the default options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleExpectation {
    /// The adapter issues, but the name has a character the certificate font lacks
    /// (𠮷, U+20BB7): the center must refuse with `unprintable_character`.
    UnprintableAtCenter,
    /// The adapter refuses every certificate type with this reason.
    RefusedByAdapter(RefusalReason),
    /// These types are refused with `reason`; 住民票の写し and 住民票記載事項証明書 are
    /// issued.
    RefusedFor {
        types: &'static [CertificateType],
        reason: RefusalReason,
    },
    /// 住民票 with the household scope (世帯全員 or selected others) is refused with
    /// `reason`; the holder alone (本人のみ) is issued.
    RefusedForHousehold(RefusalReason),
    /// Refused with `reason` when the clock says `on` (JST); issued on other days.
    RefusedOn { on: Date, reason: RefusalReason },
    /// 所得・課税証明書 and 納税証明書 for `fiscal_year` are refused with `reason`;
    /// the year before is issued.
    RefusedForFiscalYear {
        fiscal_year: u16,
        reason: RefusalReason,
    },
    /// The 戸籍 is kept by another municipality ([`DOMICILE_SAMPLE`]): 戸籍 types
    /// through the 住所地 route are refused `domicile_elsewhere`; through the 本籍地
    /// route `domicile_not_registered` until a 利用登録 is approved, then issued.
    DomicileElsewhere,
    /// Issued; 住民票 世帯全員 has this many front pages.
    HouseholdPages(usize),
}

/// (card serial, expectation) for the special cards of the 212113 sample.
pub const SPECIAL_CARDS: [(&str, SampleExpectation); 17] = [
    ("2121130000000090", SampleExpectation::UnprintableAtCenter),
    (
        "2121130000000091",
        SampleExpectation::RefusedByAdapter(RefusalReason::Deceased),
    ),
    (
        "2121130000000092",
        SampleExpectation::RefusedByAdapter(RefusalReason::MovedOut),
    ),
    (
        "2121130000000093",
        SampleExpectation::RefusedByAdapter(RefusalReason::SupportMeasures),
    ),
    (
        "2121130000000094",
        SampleExpectation::RefusedByAdapter(RefusalReason::Under15),
    ),
    (
        "2121130000000095",
        SampleExpectation::RefusedByAdapter(RefusalReason::MovedOut),
    ),
    // 支援措置 on the holder's wife, not on the holder.
    (
        "2121130000000060",
        SampleExpectation::RefusedForHousehold(RefusalReason::SupportMeasures),
    ),
    (
        "2121130000000061",
        SampleExpectation::RefusedByAdapter(RefusalReason::ErasedRecord),
    ),
    // became_resident_on 2026-11-20.
    (
        "2121130000000062",
        SampleExpectation::RefusedOn {
            on: SPECIAL_DAY,
            reason: RefusalReason::MovingInDay,
        },
    ),
    // Card handed over on 2026-11-20.
    (
        "2121130000000063",
        SampleExpectation::RefusedOn {
            on: SPECIAL_DAY,
            reason: RefusalReason::CardIssuedToday,
        },
    ),
    (
        "2121130000000064",
        SampleExpectation::RefusedFor {
            types: &[CertificateType::SealRegistration],
            reason: RefusalReason::NoSealRegistration,
        },
    ),
    // The only registration was abolished.
    (
        "2121130000000065",
        SampleExpectation::RefusedFor {
            types: &[CertificateType::SealRegistration],
            reason: RefusalReason::NoSealRegistration,
        },
    ),
    (
        "2121130000000066",
        SampleExpectation::RefusedFor {
            types: &[CertificateType::IncomeTax, CertificateType::TaxPayment],
            reason: RefusalReason::NoTaxRecord,
        },
    ),
    // 本籍 in 美濃加茂市, a filing not yet entered.
    (
        "2121130000000067",
        SampleExpectation::RefusedFor {
            types: FAMILY_REGISTER_TYPES,
            reason: RefusalReason::FamilyRegisterPending,
        },
    ),
    ("2121130000000068", SampleExpectation::DomicileElsewhere),
    ("2121130000000069", SampleExpectation::HouseholdPages(2)),
    // 課税 for 2025 only.
    (
        "2121130000000070",
        SampleExpectation::RefusedForFiscalYear {
            fiscal_year: 2026,
            reason: RefusalReason::NoTaxRecord,
        },
    ),
];

/// The sample's unregistered card (never bound): `<code>0000000099`.
pub fn unregistered_card(code: &str) -> Option<CardSerial> {
    sample_card_serial(code, 99)
}
