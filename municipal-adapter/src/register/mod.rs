//! The resident register (住民基本台帳) as this adapter serves it.
//!
//! - [`import`]: the CSV register directory, its validation and its import;
//! - [`store`]: the adapter's database tables and the look-ups issuance needs.
//!
//! The types here are the validated form: a value of [`Register`] has valid dates,
//! unique ids, one 世帯主 per household and bindings that point at known residents.

pub mod import;
pub mod store;

pub use import::{
    import_register_dir, read_register_dir, ImportError, ImportOutcome, ImportStatus,
    ParsedRegister, RowError,
};
pub use store::{CardLookup, ImportSummary, RegisterStore, StoreError};

use jiff::civil::Date;
use schemas::{CardSerial, MunicipalityCode};

/// 続柄 of the head of a household; exactly one member of each household has it.
pub const HOUSEHOLD_HEAD: &str = "世帯主";

/// The whole register of one municipality: 住民基本台帳 (households), and the other
/// ledgers its certificates draw on (印鑑登録, 課税・納税, 戸籍 with its 附票). Card
/// bindings are not part of it: they are managed by `municipal-adapter card …` (and
/// may be seeded from an import's optional `cards.csv`), and a re-import never drops
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    pub municipality_code: MunicipalityCode,
    pub households: Vec<Household>,
    pub seal_registrations: Vec<SealRegistration>,
    pub tax_records: Vec<TaxRecord>,
    pub tax_payments: Vec<TaxPayment>,
    /// 戸籍 whose 本籍 is in this municipality.
    pub family_registers: Vec<FamilyRegister>,
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
/// absent: an import accepts the columns (real exports carry them), checks their
/// format and drops them, so nothing the adapter prints can ever carry them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resident {
    pub resident_id: String,
    pub name: String,
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: Sex,
    /// 続柄, e.g. 世帯主, 妻, 子.
    pub relationship: String,
    /// 住民となった年月日 (also the 転入日 of the moving-in-day rule).
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
    /// The resident's entry in a 戸籍 kept by this same municipality (本籍 here), for
    /// 戸籍 certificates through the 住所地 route.
    pub family_register: Option<FamilyRegisterRef>,
}

/// A person in one of this municipality's 戸籍.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FamilyRegisterRef {
    pub family_register_id: String,
    pub person_id: String,
}

/// Card serial → resident, with the day the card was handed over (カード交付日: a card
/// issued today cannot be used at a kiosk the same day).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardBinding {
    pub card_serial: CardSerial,
    pub resident_id: String,
    pub issued_on: Date,
}

/// 印鑑登録.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRegistration {
    pub resident_id: String,
    /// 登録番号, e.g. 12345.
    pub registration_number: String,
    pub registered_on: Date,
    /// `false` once abolished (廃止); only an active registration is certified.
    pub active: bool,
    /// The registered impression (印影), PNG bytes (≤ 64 KiB).
    pub impression_png: Vec<u8>,
}

/// 課税台帳: one resident's assessment for one fiscal year (年度), integer yen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxRecord {
    pub resident_id: String,
    /// 年度, the Gregorian year it starts in (2026 = 令和8年度); the income year is the
    /// year before.
    pub fiscal_year: u16,
    /// 住所 as of 1 January of the fiscal year.
    pub address_on_jan1: String,
    /// 給与収入.
    pub salary_income_yen: i64,
    /// 総所得金額.
    pub total_income_yen: i64,
    /// 所得控除合計.
    pub deductions_yen: i64,
    /// 課税標準額.
    pub taxable_income_yen: i64,
    /// 市町村民税 (所得割 + 均等割).
    pub municipal_tax_yen: i64,
    /// 道府県民税 (所得割 + 均等割).
    pub prefectural_tax_yen: i64,
}

/// 収納: one tax item of one fiscal year, integer yen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxPayment {
    pub resident_id: String,
    pub fiscal_year: u16,
    /// 税目, e.g. 市県民税, 固定資産税, 軽自動車税.
    pub tax_name: String,
    pub assessed_yen: u64,
    /// 0..=assessed.
    pub paid_yen: u64,
}

/// 戸籍: one register kept by this municipality (本籍 here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRegister {
    pub family_register_id: String,
    /// 本籍.
    pub domicile: String,
    /// 筆頭者氏名.
    pub head_name: String,
    /// 戸籍編製日.
    pub created_on: Date,
    /// A filing (届出) was accepted but not yet entered: no certificate until it is.
    pub pending_filing: bool,
    /// In register order (筆頭者 first).
    pub persons: Vec<FamilyRegisterPerson>,
}

impl FamilyRegister {
    pub fn person(&self, person_id: &str) -> Option<&FamilyRegisterPerson> {
        self.persons.iter().find(|p| p.person_id == person_id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRegisterPerson {
    pub person_id: String,
    pub name: String,
    pub birth_date: Date,
    pub sex: Sex,
    /// 続柄, e.g. 長男, 妻 (the 筆頭者 has none printed: empty string).
    pub relationship: String,
    pub father: Option<String>,
    pub mother: Option<String>,
    /// 除籍 (by marriage, death, 分籍...).
    pub removed: bool,
    /// 身分事項 in order (出生, 婚姻...).
    pub events: Vec<FamilyRegisterEvent>,
    /// 附票: address history, oldest first.
    pub addresses: Vec<AttachmentAddress>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRegisterEvent {
    /// 出生, 婚姻, 死亡...
    pub label: String,
    pub date: Date,
    /// Free text printed after the date, e.g. 【出生地】岐阜県美濃加茂市.
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentAddress {
    pub address: String,
    /// 住所を定めた年月日.
    pub since: Date,
}
