//! The sample registers shipped with the crate (fictional residents), for the sandbox,
//! the conformance suite and the tests.
//!
//! | code | municipality | households | bound cards |
//! | --- | --- | --- | --- |
//! | 212113 | 岐阜県美濃加茂市 | 13 (one of six members) | 27 issuable + 6 special |
//! | 112330 | 埼玉県北本市 | 11 (one of six, one of seven members: two front pages) | 29 issuable |
//! | 215015 | 岐阜県加茂郡坂祝町 | 7 (one of six members) | 15 issuable |
//!
//! Card serials are `<code>` + 10 digits. Serials `…0001` up to [`issuable_card_count`]
//! per code are plain adult residents whose certificate is issued and printable;
//! `…0090`–`…0095` of 212113 are the special cases in [`SPECIAL_CARDS`]; `…0098` and
//! `…0099` are never bound (the sandbox issues `…0099` as an unregistered card).

use std::path::PathBuf;

use schemas::{CardSerial, RefusalReason};

/// Codes of the shipped sample registers.
pub const SAMPLE_CODES: [&str; 3] = ["212113", "112330", "215015"];

const FIXTURE_212113: &str = include_str!("../fixtures/212113.json");
const FIXTURE_112330: &str = include_str!("../fixtures/112330.json");
const FIXTURE_215015: &str = include_str!("../fixtures/215015.json");

/// Card serial suffixes (last 10 digits) that are never bound in any sample.
pub const UNBOUND_SUFFIXES: [u64; 2] = [98, 99];

/// The sample register (JSON text) for `code`, if one is shipped.
pub fn sample_fixture(code: &str) -> Option<&'static str> {
    match code {
        "212113" => Some(FIXTURE_212113),
        "112330" => Some(FIXTURE_112330),
        "215015" => Some(FIXTURE_215015),
        _ => None,
    }
}

/// Where the sample register for `code` lives in the source tree
/// (`municipal-adapter/fixtures/<code>.json`); it exists only in a checkout, so
/// prefer [`sample_fixture`] and write the text where it is needed.
pub fn sample_fixture_path(code: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{code}.json"))
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

/// What a special sample card is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleExpectation {
    /// The adapter issues, but the name has a character the certificate font lacks
    /// (𠮷, U+20BB7): the center must refuse with `unprintable_character`.
    UnprintableAtCenter,
    /// The adapter itself refuses with this reason.
    RefusedByAdapter(RefusalReason),
}

/// (card serial, expectation) for the special cards of the 212113 sample.
pub const SPECIAL_CARDS: [(&str, SampleExpectation); 6] = [
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
];

/// The sample's unregistered card (never bound): `<code>0000000099`.
pub fn unregistered_card(code: &str) -> Option<CardSerial> {
    sample_card_serial(code, 99)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::parse_fixture;

    fn today() -> jiff::civil::Date {
        jiff::Timestamp::now()
            .in_tz(crate::issuance::ISSUE_TIME_ZONE)
            .unwrap()
            .date()
    }

    #[test]
    fn samples_are_valid_and_match_their_documentation() {
        let mut total_issuable = 0;
        for code in SAMPLE_CODES {
            let text = sample_fixture(code).unwrap();
            let register = parse_fixture(text, today()).unwrap();
            assert_eq!(register.municipality_code.to_string(), code);
            assert!(register.households.len() >= 6);
            assert!(register.households.iter().any(|h| h.members.len() == 6));
            let bound: Vec<_> = register
                .card_bindings
                .iter()
                .map(|b| b.card_serial.clone())
                .collect();
            for serial in issuable_cards(code) {
                assert!(bound.contains(&serial), "{serial} is not bound");
            }
            for suffix in UNBOUND_SUFFIXES {
                let serial = sample_card_serial(code, suffix).unwrap();
                assert!(!bound.contains(&serial), "{serial} must stay unbound");
            }
            total_issuable += issuable_cards(code).len();
            assert_eq!(
                std::fs::read_to_string(sample_fixture_path(code)).unwrap(),
                text
            );
        }
        assert!(total_issuable >= 50);
    }

    #[test]
    fn sakahogi_sample_binds_exactly_its_plain_issuable_cards() {
        use schemas::HouseholdScope;

        let code = "215015";
        let register = parse_fixture(sample_fixture(code).unwrap(), today()).unwrap();
        assert!(register.households.iter().any(|h| h.members.len() >= 5));
        let mut bound: Vec<_> = register
            .card_bindings
            .iter()
            .map(|b| b.card_serial.clone())
            .collect();
        bound.sort();
        assert_eq!(bound, issuable_cards(code), "no special cards in 215015");
        assert!((12..=16).contains(&bound.len()));
        for suffix in [97, 98, 99] {
            let serial = sample_card_serial(code, suffix).unwrap();
            assert!(!bound.contains(&serial), "{serial} must stay unbound");
        }
        for binding in &register.card_bindings {
            let household = register
                .households
                .iter()
                .find(|h| h.member(&binding.resident_id).is_some())
                .unwrap();
            let holder = household.member(&binding.resident_id).unwrap();
            for scope in [HouseholdScope::SelfOnly, HouseholdScope::Household] {
                assert_eq!(
                    crate::front::refusal(household, holder, scope, today()),
                    None,
                    "{} ({scope:?})",
                    binding.card_serial
                );
            }
        }
        for member in register.households.iter().flat_map(|h| &h.members) {
            assert!(
                member.status == crate::register::ResidentStatus::Active
                    && !member.support_measures,
                "{} is not a plain resident",
                member.resident_id
            );
        }
    }
}
