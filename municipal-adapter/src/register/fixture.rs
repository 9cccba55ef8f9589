//! The register fixture: the JSON file a municipality's register is loaded from.
//!
//! Layout (documented for operators in the crate's README.md):
//!
//! ```json
//! { "municipality_code": "212113",
//!   "households": [ { "household_id": "H0001", "address": "岐阜県美濃加茂市太田町1234番地の5",
//!       "members": [ { "resident_id": "R0001", "name": "髙橋 健一", "name_kana": "たかはし けんいち",
//!                      "birth_date": "1978-04-12", "sex": "male", "relationship": "世帯主",
//!                      "became_resident_on": "2010-04-01", "previous_address": "…",
//!                      "domicile": "…", "domicile_head": "髙橋 健一", "remarks": [] } ] } ],
//!   "card_bindings": [ { "card_serial": "2121130000000001", "resident_id": "R0001" } ] }
//! ```
//!
//! Optional member fields: `previous_address`, `domicile` + `domicile_head` (both or
//! neither), `remarks` (default `[]`), `status` (`active` default, `moving_out`,
//! `moved_out`, `deceased`, `erased`), `support_measures` (default `false`).
//!
//! Unknown fields are rejected so that a misspelt optional field cannot silently lose a
//! 支援措置 flag. Parsing reports JSON syntax and type errors with their line and column;
//! validation then reports every semantic problem at once, each with the path of the
//! field and the ids of its household and resident.

use std::collections::{HashMap, HashSet};

use jiff::civil::Date;
use schemas::{CardSerial, MunicipalityCode};
use serde::{Deserialize, Serialize};

use super::{CardBinding, Household, Register, Resident, ResidentStatus, Sex, HOUSEHOLD_HEAD};
use crate::wareki::GREGORIAN_ADOPTION;

/// The fixture file as written (strings not yet validated).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub municipality_code: String,
    pub households: Vec<FixtureHousehold>,
    #[serde(default)]
    pub card_bindings: Vec<FixtureCardBinding>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureHousehold {
    pub household_id: String,
    pub address: String,
    pub members: Vec<FixtureMember>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMember {
    pub resident_id: String,
    pub name: String,
    pub name_kana: String,
    /// yyyy-mm-dd.
    pub birth_date: String,
    /// `male` | `female`.
    pub sex: String,
    pub relationship: String,
    /// yyyy-mm-dd.
    pub became_resident_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile_head: Option<String>,
    #[serde(default)]
    pub remarks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub support_measures: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCardBinding {
    pub card_serial: String,
    pub resident_id: String,
}

/// One semantic problem: where (`households[2].members[0].birth_date (H0003/R0007)`)
/// and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureIssue {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FixtureIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("register fixture is not valid JSON for the layout at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("register fixture has {} problem(s):\n{}", .0.len(), render_issues(.0))]
    Invalid(Vec<FixtureIssue>),
}

impl FixtureError {
    /// The semantic issues (empty for a JSON error).
    pub fn issues(&self) -> &[FixtureIssue] {
        match self {
            Self::Invalid(issues) => issues,
            Self::Json { .. } => &[],
        }
    }
}

fn render_issues(issues: &[FixtureIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and validates a fixture. `today` (in Asia/Tokyo) bounds dates: nobody is
/// born, or became a resident, in the future.
pub fn parse_fixture(text: &str, today: Date) -> Result<Register, FixtureError> {
    let fixture: Fixture = serde_json::from_str(text).map_err(|e| FixtureError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    fixture.validate(today)
}

/// `yyyy-mm-dd`, strictly (no time, no week dates, no two-digit years).
pub fn parse_iso_date(value: &str) -> Result<Date, String> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(format!("{value:?} is not a date in the form yyyy-mm-dd"));
    }
    // The shape check guarantees ASCII digits at these positions.
    let number = |range: std::ops::Range<usize>| value[range].parse::<i16>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let month = i8::try_from(month).map_err(|_| format!("{value:?}: month out of range"))?;
    let day = i8::try_from(day).map_err(|_| format!("{value:?}: day out of range"))?;
    Date::new(year, month, day).map_err(|e| format!("{value:?} is not a calendar date: {e}"))
}

/// Kana as printed in the ふりがな column: hiragana, katakana, 長音 and spaces.
fn is_kana_text(value: &str) -> bool {
    value.chars().all(|c| {
        matches!(c,
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' // hiragana, ゝゞ
            | '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FE}' // katakana, ー, ヽヾ
            | ' ' | '\u{3000}')
    })
}

struct Issues(Vec<FixtureIssue>);

impl Issues {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FixtureIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Printed text must be non-empty (when required) and free of control characters,
    /// which would break the certificate layout.
    fn text(&mut self, path: &str, value: &str, required: bool) {
        if required && value.trim().is_empty() {
            self.push(path, "must not be empty");
        } else if value.chars().any(char::is_control) {
            self.push(path, "contains a control character");
        } else if value != value.trim() {
            self.push(path, "has leading or trailing white space");
        }
    }

    fn date(&mut self, path: &str, value: &str, today: Date) -> Option<Date> {
        match parse_iso_date(value) {
            Err(message) => {
                self.push(path, message);
                None
            }
            Ok(day) if day > today => {
                self.push(path, format!("{day} is in the future (today is {today})"));
                None
            }
            Ok(day) if day < GREGORIAN_ADOPTION => {
                self.push(
                    path,
                    format!("{day} is before 1873-01-01 and has no 和暦 date"),
                );
                None
            }
            Ok(day) => Some(day),
        }
    }
}

impl Fixture {
    /// Checks everything and returns the typed register, or every problem found.
    pub fn validate(&self, today: Date) -> Result<Register, FixtureError> {
        let mut issues = Issues(Vec::new());
        let code = match MunicipalityCode::parse(&self.municipality_code) {
            Ok(code) => Some(code),
            Err(e) => {
                issues.push("municipality_code", e.to_string());
                None
            }
        };

        let mut household_ids = HashSet::new();
        // resident id → (household index, member index) of its first occurrence.
        let mut resident_ids: HashMap<&str, String> = HashMap::new();
        let mut households = Vec::with_capacity(self.households.len());
        for (h, household) in self.households.iter().enumerate() {
            let hpath = format!("households[{h}] ({})", household.household_id);
            issues.text(
                &format!("{hpath}.household_id"),
                &household.household_id,
                true,
            );
            if !household.household_id.is_empty()
                && !household_ids.insert(household.household_id.as_str())
            {
                issues.push(
                    format!("{hpath}.household_id"),
                    format!("duplicate household id {:?}", household.household_id),
                );
            }
            issues.text(&format!("{hpath}.address"), &household.address, true);
            if household.members.is_empty() {
                issues.push(
                    format!("{hpath}.members"),
                    "a household has at least one member",
                );
            }
            let mut members = Vec::with_capacity(household.members.len());
            for (m, member) in household.members.iter().enumerate() {
                let mpath = format!(
                    "households[{h}].members[{m}] ({}/{})",
                    household.household_id, member.resident_id
                );
                let field = |name: &str| format!("{mpath}.{name}");
                issues.text(&field("resident_id"), &member.resident_id, true);
                if !member.resident_id.is_empty() {
                    if let Some(first) =
                        resident_ids.insert(member.resident_id.as_str(), mpath.clone())
                    {
                        issues.push(
                            field("resident_id"),
                            format!(
                                "duplicate resident id {:?} (first at {first})",
                                member.resident_id
                            ),
                        );
                    }
                }
                issues.text(&field("name"), &member.name, true);
                issues.text(&field("name_kana"), &member.name_kana, true);
                if !is_kana_text(&member.name_kana) {
                    issues.push(
                        field("name_kana"),
                        format!(
                            "{:?} must be kana (hiragana or katakana) and spaces",
                            member.name_kana
                        ),
                    );
                }
                let birth = issues.date(&field("birth_date"), &member.birth_date, today);
                let sex = Sex::parse(&member.sex);
                if sex.is_none() {
                    issues.push(
                        field("sex"),
                        format!("{:?} must be \"male\" or \"female\"", member.sex),
                    );
                }
                issues.text(&field("relationship"), &member.relationship, true);
                let since = issues.date(
                    &field("became_resident_on"),
                    &member.became_resident_on,
                    today,
                );
                if let (Some(birth), Some(since)) = (birth, since) {
                    if since < birth {
                        issues.push(
                            field("became_resident_on"),
                            format!("{since} is before the birth date {birth}"),
                        );
                    }
                }
                for (name, value) in [
                    ("previous_address", &member.previous_address),
                    ("domicile", &member.domicile),
                    ("domicile_head", &member.domicile_head),
                ] {
                    if let Some(value) = value {
                        issues.text(&field(name), value, true);
                    }
                }
                if member.domicile.is_some() != member.domicile_head.is_some() {
                    issues.push(
                        field("domicile_head"),
                        "本籍 (domicile) and 筆頭者 (domicile_head) go together: give both or neither",
                    );
                }
                for (r, remark) in member.remarks.iter().enumerate() {
                    issues.text(&field(&format!("remarks[{r}]")), remark, true);
                }
                let status = match &member.status {
                    None => Some(ResidentStatus::Active),
                    Some(value) => {
                        let status = ResidentStatus::parse(value);
                        if status.is_none() {
                            let known: Vec<_> =
                                ResidentStatus::ALL.iter().map(|s| s.as_str()).collect();
                            issues.push(
                                field("status"),
                                format!("{value:?} is not one of {}", known.join(", ")),
                            );
                        }
                        status
                    }
                };
                if let (Some(birth_date), Some(sex), Some(became_resident_on), Some(status)) =
                    (birth, sex, since, status)
                {
                    members.push(Resident {
                        resident_id: member.resident_id.clone(),
                        name: member.name.clone(),
                        name_kana: member.name_kana.clone(),
                        birth_date,
                        sex,
                        relationship: member.relationship.clone(),
                        became_resident_on,
                        previous_address: member.previous_address.clone(),
                        domicile: member.domicile.clone(),
                        domicile_head: member.domicile_head.clone(),
                        remarks: member.remarks.clone(),
                        status,
                        support_measures: member.support_measures,
                    });
                }
            }
            // A 世帯主 must be a current member, and there is exactly one.
            let heads: Vec<_> = household
                .members
                .iter()
                .filter(|m| m.relationship == HOUSEHOLD_HEAD)
                .collect();
            if heads.len() != 1 {
                issues.push(
                    format!("{hpath}.members"),
                    format!(
                        "needs exactly one member with relationship {HOUSEHOLD_HEAD}, found {}",
                        heads.len()
                    ),
                );
            }
            for (m, member) in members.iter().enumerate() {
                if member.relationship == HOUSEHOLD_HEAD && !member.status.is_current() {
                    issues.push(
                        format!(
                            "households[{h}].members[{m}] ({}/{}).status",
                            household.household_id, member.resident_id
                        ),
                        format!(
                            "the {HOUSEHOLD_HEAD} must be a current member, not {}",
                            member.status.as_str()
                        ),
                    );
                }
            }
            households.push(Household {
                household_id: household.household_id.clone(),
                address: household.address.clone(),
                members,
            });
        }

        let mut serials = HashSet::new();
        let mut bound_residents: HashMap<&str, &str> = HashMap::new();
        let mut card_bindings = Vec::with_capacity(self.card_bindings.len());
        for (b, binding) in self.card_bindings.iter().enumerate() {
            let bpath = format!("card_bindings[{b}] ({})", binding.card_serial);
            let serial = match CardSerial::parse(binding.card_serial.as_str()) {
                Ok(serial) => Some(serial),
                Err(e) => {
                    issues.push(format!("{bpath}.card_serial"), e.to_string());
                    None
                }
            };
            if !serials.insert(binding.card_serial.as_str()) {
                issues.push(
                    format!("{bpath}.card_serial"),
                    format!("duplicate card serial {}", binding.card_serial),
                );
            }
            if !resident_ids.contains_key(binding.resident_id.as_str()) {
                issues.push(
                    format!("{bpath}.resident_id"),
                    format!(
                        "unknown resident {:?} (no household member has this id)",
                        binding.resident_id
                    ),
                );
            }
            // A resident holds one valid card; a second binding is a typo or a card
            // that should have been unbound when it was replaced.
            if let Some(other) =
                bound_residents.insert(binding.resident_id.as_str(), binding.card_serial.as_str())
            {
                issues.push(
                    format!("{bpath}.resident_id"),
                    format!(
                        "resident {:?} is already bound to card {other}",
                        binding.resident_id
                    ),
                );
            }
            if let Some(card_serial) = serial {
                card_bindings.push(CardBinding {
                    card_serial,
                    resident_id: binding.resident_id.clone(),
                });
            }
        }

        match code {
            Some(municipality_code) if issues.0.is_empty() => Ok(Register {
                municipality_code,
                households,
                card_bindings,
            }),
            _ => Err(FixtureError::Invalid(issues.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_are_strict() {
        assert_eq!(
            parse_iso_date("1978-04-12").unwrap(),
            jiff::civil::date(1978, 4, 12)
        );
        assert!(parse_iso_date("1978-02-30").is_err());
        assert!(parse_iso_date("1978-4-12").is_err());
        assert!(parse_iso_date("1978-04-12T00:00").is_err());
        assert!(parse_iso_date("２０００-01-01").is_err());
        assert_eq!(
            parse_iso_date("2000-02-29").unwrap(),
            jiff::civil::date(2000, 2, 29)
        );
        assert!(parse_iso_date("1900-02-29").is_err());
    }

    #[test]
    fn kana() {
        assert!(is_kana_text("たかはし けんいち"));
        assert!(is_kana_text("タカハシ　ケンイチ"));
        assert!(!is_kana_text("髙橋"));
        assert!(!is_kana_text("takahashi"));
    }
}
