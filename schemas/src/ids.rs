//! Identifiers that cross the wire. Each parses at the boundary and is valid by
//! construction afterwards.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("municipality code must be 6 ASCII digits, got {0:?}")]
    MunicipalityCodeFormat(String),
    #[error("municipality code {0} has a wrong check digit")]
    MunicipalityCodeCheckDigit(String),
    #[error("{kind} must match {pattern}, got {value:?}")]
    Format {
        kind: &'static str,
        pattern: &'static str,
        value: String,
    },
    #[error("request id must be a UUID: {0}")]
    RequestId(String),
}

/// Defines a string newtype that is validated by `$check` on every construction,
/// including deserialization, and documents `$pattern` in its JSON Schema.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $pattern:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PATTERN: &'static str = $pattern;
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError::Format { kind: $kind, pattern: $pattern, value })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

fn is_token(value: &str, max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

checked_string!(
    /// Serial number of a resident card (個人番号カード), as the card authority assigns it:
    /// 16 upper-case hexadecimal digits.
    CardSerial,
    "card serial",
    "^[0-9A-F]{16}$",
    |v| v.len() == 16 && v.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
);

checked_string!(
    /// A chain operator (コンビニ事業者), e.g. `seven` or `lawson`.
    OperatorId,
    "operator id",
    "^[a-z][a-z0-9-]{1,31}$",
    |v| (2..=32).contains(&v.len())
        && v.as_bytes()[0].is_ascii_lowercase()
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
);

checked_string!(
    /// A kiosk terminal (マルチコピー機) within its operator, e.g. `tokyo-0001`.
    KioskId,
    "kiosk id",
    "^[A-Za-z0-9._-]{1,64}$",
    |v| is_token(v, 64)
);

checked_string!(
    /// The kiosk's idempotency key for one resident request: retries carry the same key.
    IdempotencyKey,
    "idempotency key",
    "^[A-Za-z0-9._-]{8,64}$",
    |v| v.len() >= 8 && is_token(v, 64)
);

/// 地方公共団体コード (local government code): five digits and a check digit.
///
/// The check digit is `(11 - (6a+5b+4c+3d+2e) mod 11) mod 10`: 千代田区 131016,
/// 新宿区 131041, 横浜市 141003.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MunicipalityCode(u32);

impl MunicipalityCode {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let bytes = value.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(IdError::MunicipalityCodeFormat(value.to_owned()));
        }
        let digits: Vec<u32> = bytes.iter().map(|b| u32::from(b - b'0')).collect();
        let weighted: u32 = digits[..5]
            .iter()
            .zip([6, 5, 4, 3, 2])
            .map(|(d, w)| d * w)
            .sum();
        let expected = (11 - weighted % 11) % 10;
        if digits[5] != expected {
            return Err(IdError::MunicipalityCodeCheckDigit(value.to_owned()));
        }
        let number = digits.iter().fold(0, |acc, d| acc * 10 + d);
        Ok(Self(number))
    }

    /// The code as a number (used in the compact seal).
    pub fn as_u32(self) -> u32 {
        self.0
    }

    pub fn from_u32(value: u32) -> Result<Self, IdError> {
        Self::parse(&format!("{value:06}"))
    }
}

impl TryFrom<String> for MunicipalityCode {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<MunicipalityCode> for String {
    fn from(value: MunicipalityCode) -> String {
        value.to_string()
    }
}
impl std::fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06}", self.0)
    }
}
impl std::str::FromStr for MunicipalityCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl JsonSchema for MunicipalityCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MunicipalityCode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]{6}$",
            "description": "地方公共団体コード: 5 digits and a check digit"
        })
    }
}

/// The center's id for one issuance request. Random (UUID v4), so it is also
/// unguessable; it is the idempotency key towards the municipality and is printed
/// on every page.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct RequestId(pub uuid::Uuid);

impl RequestId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl std::str::FromStr for RequestId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| IdError::RequestId(e.to_string()))
    }
}

/// The center's id for a card session: the card authenticated once at a kiosk (PIN,
/// then returned) and the resident's orders of that visit ride on it. Random (UUID v4),
/// unguessable; valid only for the kiosk that opened it, for a bounded time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct CardSessionId(pub uuid::Uuid);

impl CardSessionId {
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl std::fmt::Display for CardSessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl std::str::FromStr for CardSessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| IdError::RequestId(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn municipality_check_digits() {
        for good in ["131016", "131041", "141003", "212113", "215015", "112330"] {
            let code = MunicipalityCode::parse(good).unwrap();
            assert_eq!(code.to_string(), good);
        }
        assert!(matches!(
            MunicipalityCode::parse("131017"),
            Err(IdError::MunicipalityCodeCheckDigit(_))
        ));
        assert!(matches!(
            MunicipalityCode::parse("13101"),
            Err(IdError::MunicipalityCodeFormat(_))
        ));
        assert!(serde_json::from_str::<MunicipalityCode>("\"141004\"").is_err());
    }

    #[test]
    fn card_serial_format() {
        assert!(CardSerial::parse("00A1B2C3D4E5F607").is_ok());
        assert!(CardSerial::parse("00a1b2c3d4e5f607").is_err());
        assert!(CardSerial::parse("00A1").is_err());
        assert!(serde_json::from_str::<CardSerial>("\"ZZZZZZZZZZZZZZZZ\"").is_err());
    }
}
