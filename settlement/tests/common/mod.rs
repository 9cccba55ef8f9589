//! A hand-made settlement fixture: two operators × two municipalities.
//!
//! Operators: `seven` (commission 115 yen per copy), `lawson` (120 yen per copy).
//! Municipalities: 212113 美濃加茂市, 215015 坂祝町.
//!
//! | id | operator | municipality | type                          | copies × fee | gross | commission    | net  | adj |
//! |----|----------|--------------|-------------------------------|--------------|-------|---------------|------|-----|
//! |  1 | seven    | 212113       | resident_record               | 2 × 300      |   600 | 2 × 115 = 230 |  370 |     |
//! |  2 | seven    | 212113       | seal_registration             | 1 × 300      |   300 | 1 × 115 = 115 |  185 |     |
//! |  3 | seven    | 212113       | family_register_all           | 1 × 450      |   450 | 1 × 115 = 115 |  335 | yes |
//! |  4 | seven    | 215015       | income_tax                    | 3 × 200      |   600 | 3 × 115 = 345 |  255 |     |
//! |  5 | seven    | 215015       | resident_record_items (free)  | 1 × 0        |     0 | 1 × 115 = 115 | −115 |     |
//! |  6 | lawson   | 212113       | family_register_individual    | 2 × 450      |   900 | 2 × 120 = 240 |  660 |     |
//! |  7 | lawson   | 212113       | family_register_attachment    | 1 × 350      |   350 | 1 × 120 = 120 |  230 | yes |
//! |  8 | lawson   | 212113       | tax_payment                   | 1 × 200      |   200 | 1 × 120 = 120 |   80 |     |
//! |  9 | lawson   | 215015       | resident_record               | 3 × 300      |   900 | 3 × 120 = 360 |  540 | yes |
//! | 10 | lawson   | 215015       | seal_registration             | 2 × 350      |   700 | 2 × 120 = 240 |  460 |     |
//!
//! Pair totals (sorted by operator, then municipality):
//!
//! | operator | municipality | items | copies | gross | commission | net  | adj items | adj gross | per copy |
//! |----------|--------------|-------|--------|-------|------------|------|-----------|-----------|----------|
//! | lawson   | 212113       |     3 |      4 |  1450 |        480 |  970 |         1 |       350 |      120 |
//! | lawson   | 215015       |     2 |      5 |  1600 |        600 | 1000 |         1 |       900 |      120 |
//! | seven    | 212113       |     3 |      4 |  1350 |        460 |  890 |         1 |       450 |      115 |
//! | seven    | 215015       |     2 |      4 |   600 |        460 |  140 |         0 |         0 |      115 |
//! | (all)    |              |    10 |     17 |  5000 |       2000 | 3000 |         3 |      1700 |          |
//!
//! Recon required (paid, outcome unknown): id 11 seven/212113 300 yen, id 12
//! lawson/215015 450 yen.
#![allow(dead_code)]

use schemas::settlement::WindowState;
use schemas::{CertificateType, KioskId, MunicipalityCode, OperatorId, RequestId};
use settlement::{BusinessDate, Item, ReconItem, WindowInfo};

pub const MINOKAMO: &str = "212113";
pub const SAKAHOGI: &str = "215015";

/// Request ids whose order is *not* the table's: byte 0 runs backwards, so sorting
/// by id must reorder the items (id n sorts before id n−1).
pub fn rid(n: u8) -> RequestId {
    let mut bytes = [0u8; 16];
    bytes[0] = 0xf0 - n;
    bytes[6] = 0x40;
    bytes[8] = 0x80;
    bytes[15] = n;
    RequestId::from_bytes(bytes)
}

pub fn op(id: &str) -> OperatorId {
    OperatorId::parse(id).unwrap()
}

pub fn muni(code: &str) -> MunicipalityCode {
    MunicipalityCode::parse(code).unwrap()
}

pub fn kiosk(id: &str) -> KioskId {
    KioskId::parse(id).unwrap()
}

pub fn date() -> BusinessDate {
    BusinessDate::parse("2026-11-25").unwrap()
}

pub fn window() -> WindowInfo {
    WindowInfo {
        business_date: date(),
        state: WindowState::Closed,
        // 2026-11-24 23:30 JST and 2026-11-25 23:30 JST (14:30 UTC).
        starts_at_unix_ms: 1_795_530_600_000,
        ends_at_unix_ms: 1_795_617_000_000,
    }
}

#[allow(clippy::too_many_arguments)]
fn item(
    n: u8,
    operator: &str,
    per_copy: i64,
    code: &str,
    certificate_type: CertificateType,
    copies: u32,
    gross_yen: i64,
    adjustment: bool,
) -> Item {
    Item {
        request_id: rid(n),
        operator_id: op(operator),
        kiosk_id: kiosk(&format!("{operator}-000{}", n % 3)),
        municipality_code: muni(code),
        certificate_type,
        copies,
        gross_yen,
        commission_per_copy_yen: per_copy,
        // From 2026-11-25 12:00 JST on.
        printed_at_unix_ms: 1_795_575_600_000 + i64::from(n) * 1000,
        adjustment,
    }
}

/// The table above, in table order (which is not request-id order).
pub fn items() -> Vec<Item> {
    use CertificateType::*;
    vec![
        item(1, "seven", 115, MINOKAMO, ResidentRecord, 2, 600, false),
        item(2, "seven", 115, MINOKAMO, SealRegistration, 1, 300, false),
        item(3, "seven", 115, MINOKAMO, FamilyRegisterAll, 1, 450, true),
        item(4, "seven", 115, SAKAHOGI, IncomeTax, 3, 600, false),
        item(5, "seven", 115, SAKAHOGI, ResidentRecordItems, 1, 0, false),
        item(
            6,
            "lawson",
            120,
            MINOKAMO,
            FamilyRegisterIndividual,
            2,
            900,
            false,
        ),
        item(
            7,
            "lawson",
            120,
            MINOKAMO,
            FamilyRegisterAttachment,
            1,
            350,
            true,
        ),
        item(8, "lawson", 120, MINOKAMO, TaxPayment, 1, 200, false),
        item(9, "lawson", 120, SAKAHOGI, ResidentRecord, 3, 900, true),
        item(10, "lawson", 120, SAKAHOGI, SealRegistration, 2, 700, false),
    ]
}

pub fn recon() -> Vec<ReconItem> {
    vec![
        ReconItem {
            request_id: rid(11),
            operator_id: op("seven"),
            kiosk_id: kiosk("seven-0002"),
            municipality_code: muni(MINOKAMO),
            paid_yen: 300,
        },
        ReconItem {
            request_id: rid(12),
            operator_id: op("lawson"),
            kiosk_id: kiosk("lawson-0000"),
            municipality_code: muni(SAKAHOGI),
            paid_yen: 450,
        },
    ]
}
