//! The resident register (住民基本台帳) as this adapter serves it.
//!
//! - [`fixture`]: the JSON file the register is loaded from, and its validation;
//! - [`store`]: the adapter's database tables and the look-ups issuance needs.
//!
//! The types here are the validated form: a value of [`Register`] has valid dates,
//! unique ids, one 世帯主 per household and bindings that point at known residents.

pub mod fixture;
pub mod store;

pub use fixture::{parse_fixture, Fixture, FixtureError, FixtureIssue};
pub use store::{RegisterStore, StoreError};

use jiff::civil::Date;
use schemas::{CardSerial, MunicipalityCode};

/// 続柄 of the head of a household; exactly one member of each household has it.
pub const HOUSEHOLD_HEAD: &str = "世帯主";

/// The whole register of one municipality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    pub municipality_code: MunicipalityCode,
    pub households: Vec<Household>,
    pub card_bindings: Vec<CardBinding>,
}

impl Register {
    pub fn resident_count(&self) -> usize {
        self.households.iter().map(|h| h.members.len()).sum()
    }
    pub fn active_resident_count(&self) -> usize {
        self.households
            .iter()
            .flat_map(|h| &h.members)
            .filter(|m| m.status == ResidentStatus::Active)
            .count()
    }
}

/// 世帯: one address and its members in register order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Household {
    pub household_id: String,
    /// 住所, display-ready (e.g. 岐阜県美濃加茂市太田町1234番地の5).
    pub address: String,
    pub members: Vec<Resident>,
}

impl Household {
    /// The active member whose 続柄 is 世帯主.
    pub fn head(&self) -> Option<&Resident> {
        self.members
            .iter()
            .find(|m| m.relationship == HOUSEHOLD_HEAD && m.status == ResidentStatus::Active)
    }
    pub fn member(&self, resident_id: &str) -> Option<&Resident> {
        self.members.iter().find(|m| m.resident_id == resident_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "male" => Some(Self::Male),
            "female" => Some(Self::Female),
            _ => None,
        }
    }
    /// As printed in the 性別 column.
    pub fn printed(self) -> &'static str {
        match self {
            Self::Male => "男",
            Self::Female => "女",
        }
    }
}

/// Where a resident's record stands. Anything but `Active` and `MovingOut` is a
/// 消除者 (removed from the household's current rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ResidentStatus {
    #[default]
    Active,
    /// 転出予定: a move-out notice was filed; still a current member.
    MovingOut,
    /// 転出: moved to another municipality.
    MovedOut,
    /// 死亡.
    Deceased,
    /// 職権消除 and other erasures.
    Erased,
}

impl ResidentStatus {
    pub const ALL: [Self; 5] = [
        Self::Active,
        Self::MovingOut,
        Self::MovedOut,
        Self::Deceased,
        Self::Erased,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::MovingOut => "moving_out",
            Self::MovedOut => "moved_out",
            Self::Deceased => "deceased",
            Self::Erased => "erased",
        }
    }
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
    /// Still a current member of the household (printed in 世帯全員).
    pub fn is_current(self) -> bool {
        matches!(self, Self::Active | Self::MovingOut)
    }
}

/// One resident as the register holds them. 住民票コード and 個人番号 are deliberately
/// absent: nothing the adapter prints may carry them, so it never holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resident {
    pub resident_id: String,
    pub name: String,
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: Sex,
    /// 続柄, e.g. 世帯主, 妻, 子.
    pub relationship: String,
    /// 住民となった年月日.
    pub became_resident_on: Date,
    pub previous_address: Option<String>,
    /// 本籍.
    pub domicile: Option<String>,
    /// 筆頭者.
    pub domicile_head: Option<String>,
    pub remarks: Vec<String>,
    pub status: ResidentStatus,
    /// 支援措置 (DV / stalking support measures).
    pub support_measures: bool,
}

/// Card serial → resident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardBinding {
    pub card_serial: CardSerial,
    pub resident_id: String,
}
