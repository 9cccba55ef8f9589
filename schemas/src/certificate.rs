//! What a resident can order: the certificate types (証明書の種類), their options, and
//! the route (住所地 / 本籍地) that decides which municipality answers.

use crate::ids::MunicipalityCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The eight certificate types of the real service. The snake_case names are stable
/// wire names; [`CertificateType::seal_doc_type`] gives the stable number in the seal.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CertificateType {
    /// 住民票の写し.
    ResidentRecord,
    /// 住民票記載事項証明書.
    ResidentRecordItems,
    /// 印鑑登録証明書.
    SealRegistration,
    /// 所得・課税証明書.
    IncomeTax,
    /// 納税証明書.
    TaxPayment,
    /// 戸籍全部事項証明書 (戸籍謄本).
    FamilyRegisterAll,
    /// 戸籍個人事項証明書 (戸籍抄本).
    FamilyRegisterIndividual,
    /// 戸籍の附票の写し.
    FamilyRegisterAttachment,
}

impl CertificateType {
    pub const ALL: [Self; 8] = [
        Self::ResidentRecord,
        Self::ResidentRecordItems,
        Self::SealRegistration,
        Self::IncomeTax,
        Self::TaxPayment,
        Self::FamilyRegisterAll,
        Self::FamilyRegisterIndividual,
        Self::FamilyRegisterAttachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResidentRecord => "resident_record",
            Self::ResidentRecordItems => "resident_record_items",
            Self::SealRegistration => "seal_registration",
            Self::IncomeTax => "income_tax",
            Self::TaxPayment => "tax_payment",
            Self::FamilyRegisterAll => "family_register_all",
            Self::FamilyRegisterIndividual => "family_register_individual",
            Self::FamilyRegisterAttachment => "family_register_attachment",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// 証明書名 as printed and shown on the kiosk.
    pub fn title_ja(self) -> &'static str {
        match self {
            Self::ResidentRecord => "住民票の写し",
            Self::ResidentRecordItems => "住民票記載事項証明書",
            Self::SealRegistration => "印鑑登録証明書",
            Self::IncomeTax => "所得・課税証明書",
            Self::TaxPayment => "納税証明書",
            Self::FamilyRegisterAll => "戸籍全部事項証明書",
            Self::FamilyRegisterIndividual => "戸籍個人事項証明書",
            Self::FamilyRegisterAttachment => "戸籍の附票の写し",
        }
    }

    pub fn title_en(self) -> &'static str {
        match self {
            Self::ResidentRecord => "Certificate of residence (copy of the resident record)",
            Self::ResidentRecordItems => "Certificate of resident record items",
            Self::SealRegistration => "Seal registration certificate",
            Self::IncomeTax => "Income and taxation certificate",
            Self::TaxPayment => "Tax payment certificate",
            Self::FamilyRegisterAll => "Family register, all entries",
            Self::FamilyRegisterIndividual => "Family register, individual entry",
            Self::FamilyRegisterAttachment => "Copy of the family register attachment",
        }
    }

    /// Kept by the 本籍地 (family-register municipality) rather than the 住所地.
    pub fn is_family_register(self) -> bool {
        matches!(
            self,
            Self::FamilyRegisterAll
                | Self::FamilyRegisterIndividual
                | Self::FamilyRegisterAttachment
        )
    }

    /// The stable document-type number carried in the seal (key 1).
    pub fn seal_doc_type(self) -> u64 {
        match self {
            Self::ResidentRecord => 1,
            Self::ResidentRecordItems => 2,
            Self::SealRegistration => 3,
            Self::IncomeTax => 4,
            Self::TaxPayment => 5,
            Self::FamilyRegisterAll => 6,
            Self::FamilyRegisterIndividual => 7,
            Self::FamilyRegisterAttachment => 8,
        }
    }

    pub fn from_seal_doc_type(number: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.seal_doc_type() == number)
    }
}

impl std::fmt::Display for CertificateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which municipality the resident asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Route {
    /// 住所地: the municipality in the card certificate. 戸籍 certificates through this
    /// route only when the resident's 本籍 is in the same municipality.
    Residence,
    /// 本籍地: the municipality that keeps the resident's 戸籍, which must have approved
    /// the card's 利用登録 (see [`crate::DomicileRegistrationRequest`]).
    Domicile { municipality_code: MunicipalityCode },
}

impl Route {
    pub fn kind(&self) -> RouteKind {
        match self {
            Self::Residence => RouteKind::Residence,
            Self::Domicile { .. } => RouteKind::Domicile,
        }
    }
}

/// [`Route`] without its municipality, as a catalogue lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    Residence,
    Domicile,
}

/// Upper bound on members a resident can pick for 世帯一部.
pub const MAX_SELECTED_MEMBERS: usize = 20;

/// 住民票の写し / 記載事項証明書: whose rows are printed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HouseholdScope {
    /// 本人のみ: the card holder only.
    SelfOnly,
    /// 世帯全員: every current member of the household.
    Household,
    /// 世帯一部: the chosen members, by their 1-based position among the household's
    /// current members in register order (世帯主 first). Positions are unique, sorted
    /// ascending, and at most [`MAX_SELECTED_MEMBERS`].
    Selected { members: Vec<u8> },
}

/// The certificate the resident chose, with its options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CertificateKind {
    /// 住民票の写し. 住民票コード and 個人番号 are never printed (not an option).
    ResidentRecord {
        scope: HouseholdScope,
        /// 本籍・筆頭者を記載する.
        include_domicile: bool,
        /// 世帯主・続柄を記載する.
        include_relationship: bool,
    },
    /// 住民票記載事項証明書: 氏名・生年月日・性別・住所 (and optionally 世帯主・続柄)
    /// certified for the chosen members.
    ResidentRecordItems {
        scope: HouseholdScope,
        include_relationship: bool,
    },
    /// 印鑑登録証明書: the card holder's own active registration only.
    SealRegistration,
    /// 所得・課税証明書 for a fiscal year (年度, the Gregorian year it starts in, e.g.
    /// 2026 = 令和8年度); `None` is the newest year already switched over.
    IncomeTax { fiscal_year: Option<u16> },
    /// 納税証明書 for a fiscal year, as [`CertificateKind::IncomeTax`].
    TaxPayment { fiscal_year: Option<u16> },
    /// 戸籍全部事項証明書: every person in the card holder's 戸籍.
    FamilyRegisterAll,
    /// 戸籍個人事項証明書: the card holder's own entry.
    FamilyRegisterIndividual,
    /// 戸籍の附票の写し: the card holder's address history; 本籍・筆頭者 printed only when
    /// asked for (since 2022 they are left out by default).
    FamilyRegisterAttachment { include_domicile: bool },
}

/// Options a municipality may or may not offer for a type (see
/// [`crate::Offering::options`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CertificateOption {
    /// 世帯全員.
    Household,
    /// 世帯一部.
    SelectedMembers,
    /// 本籍・筆頭者 printed.
    Domicile,
    /// 世帯主・続柄 printed.
    Relationship,
    /// A fiscal year other than the newest.
    PastFiscalYear,
}

impl CertificateKind {
    pub fn certificate_type(&self) -> CertificateType {
        match self {
            Self::ResidentRecord { .. } => CertificateType::ResidentRecord,
            Self::ResidentRecordItems { .. } => CertificateType::ResidentRecordItems,
            Self::SealRegistration => CertificateType::SealRegistration,
            Self::IncomeTax { .. } => CertificateType::IncomeTax,
            Self::TaxPayment { .. } => CertificateType::TaxPayment,
            Self::FamilyRegisterAll => CertificateType::FamilyRegisterAll,
            Self::FamilyRegisterIndividual => CertificateType::FamilyRegisterIndividual,
            Self::FamilyRegisterAttachment { .. } => CertificateType::FamilyRegisterAttachment,
        }
    }

    /// 証明書名 as printed and shown on the kiosk.
    pub fn title_ja(&self) -> &'static str {
        self.certificate_type().title_ja()
    }

    pub fn scope(&self) -> Option<&HouseholdScope> {
        match self {
            Self::ResidentRecord { scope, .. } | Self::ResidentRecordItems { scope, .. } => {
                Some(scope)
            }
            _ => None,
        }
    }

    /// The options this order uses; each must be offered by the catalogue. A specific
    /// fiscal year is reported as [`CertificateOption::PastFiscalYear`] only by the
    /// center, which knows the current one.
    pub fn options_used(&self) -> Vec<CertificateOption> {
        let mut used = Vec::new();
        match self.scope() {
            Some(HouseholdScope::Household) => used.push(CertificateOption::Household),
            Some(HouseholdScope::Selected { .. }) => used.push(CertificateOption::SelectedMembers),
            _ => {}
        }
        match self {
            Self::ResidentRecord {
                include_domicile,
                include_relationship,
                ..
            } => {
                if *include_domicile {
                    used.push(CertificateOption::Domicile);
                }
                if *include_relationship {
                    used.push(CertificateOption::Relationship);
                }
            }
            Self::ResidentRecordItems {
                include_relationship: true,
                ..
            } => used.push(CertificateOption::Relationship),
            Self::FamilyRegisterAttachment {
                include_domicile: true,
            } => used.push(CertificateOption::Domicile),
            _ => {}
        }
        used
    }

    /// Shape checks that need no register: member positions, fiscal year range.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(HouseholdScope::Selected { members }) = self.scope() {
            if members.is_empty() || members.len() > MAX_SELECTED_MEMBERS {
                return Err(format!(
                    "selected members must be 1..={MAX_SELECTED_MEMBERS} positions"
                ));
            }
            if members.contains(&0) {
                return Err("member positions start at 1".into());
            }
            if !members.windows(2).all(|w| w[0] < w[1]) {
                return Err("member positions must be unique and ascending".into());
            }
        }
        if let Self::IncomeTax {
            fiscal_year: Some(year),
        }
        | Self::TaxPayment {
            fiscal_year: Some(year),
        } = self
        {
            if !(1990..=2200).contains(year) {
                return Err(format!("fiscal year {year} is out of range"));
            }
        }
        Ok(())
    }
}
