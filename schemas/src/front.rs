//! Front-side data (おもて面): one type per certificate, display-ready (every date
//! already in 和暦, every amount in integer yen), and the one pagination rule that the
//! municipality (one seal per front page) and the composer (one page per slice) share.
//!
//! 住民票コード and 個人番号 have no field anywhere here: a certificate never prints them
//! (ARCHITECTURE.md, "What is never printed").

use crate::b64::Base64Bytes;
use crate::certificate::CertificateType;
use crate::kiosk_api::Digest32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Members printed on one front page of 住民票の写し / 記載事項証明書.
pub const RESIDENT_ROWS_PER_PAGE: usize = 6;
/// Persons printed on one front page of a 戸籍 certificate.
pub const FAMILY_REGISTER_PERSONS_PER_PAGE: usize = 2;
/// Address entries printed on one front page of 戸籍の附票の写し.
pub const ATTACHMENT_ADDRESSES_PER_PAGE: usize = 8;
/// Bounds that keep every single-page certificate on its page and every person's
/// block inside its slot.
pub const MAX_AMOUNT_LINES: usize = 16;
pub const MAX_EVENTS_PER_PERSON: usize = 8;
pub const MAX_EVENT_LINES: usize = 3;
/// 戸籍事項 entries printed on the first page of a 戸籍 certificate.
pub const MAX_REGISTER_EVENTS: usize = 3;
/// Front pages of one copy; the composer lays out at most this many (a longer
/// register is a counter matter), and a seal can number far more.
pub const MAX_FRONT_PAGES: usize = 10;

/// The block every certificate ends with: 認証文, 交付日, and the mayor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// 市区町村名, e.g. 美濃加茂市.
    pub municipality_name: String,
    /// 認証文, e.g. 「この写しは、世帯全員の住民票の原本と相違ないことを証明する。」
    pub certification: String,
    /// 交付日 in 和暦, e.g. 令和8年11月23日.
    pub issue_date_wareki: String,
    /// 市区町村長の職名, e.g. 美濃加茂市長.
    pub mayor_title: String,
    /// 市区町村長の氏名.
    pub mayor_name: String,
}

impl Attestation {
    fn printed_texts(&self) -> [&str; 5] {
        [
            &self.municipality_name,
            &self.certification,
            &self.issue_date_wareki,
            &self.mayor_title,
            &self.mayor_name,
        ]
    }
}

/// Front-side data, one variant per certificate type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrontSide {
    ResidentRecord(ResidentRecordFront),
    ResidentRecordItems(ResidentRecordItemsFront),
    SealRegistration(SealRegistrationFront),
    IncomeTax(IncomeTaxFront),
    TaxPayment(TaxPaymentFront),
    /// 戸籍全部事項証明書 and 戸籍個人事項証明書 share one layout.
    FamilyRegister(FamilyRegisterFront),
    FamilyRegisterAttachment(FamilyRegisterAttachmentFront),
}

impl FrontSide {
    /// SHA-256 of the canonical front data; every page's seal carries it.
    pub fn digest(&self) -> Result<Digest32, crate::SigningError> {
        Ok(Digest32::of(&crate::canonical_bytes(self)?))
    }

    pub fn title(&self) -> &str {
        match self {
            Self::ResidentRecord(f) => &f.title,
            Self::ResidentRecordItems(f) => &f.title,
            Self::SealRegistration(f) => &f.title,
            Self::IncomeTax(f) => &f.title,
            Self::TaxPayment(f) => &f.title,
            Self::FamilyRegister(f) => &f.title,
            Self::FamilyRegisterAttachment(f) => &f.title,
        }
    }

    pub fn attestation(&self) -> &Attestation {
        match self {
            Self::ResidentRecord(f) => &f.attestation,
            Self::ResidentRecordItems(f) => &f.attestation,
            Self::SealRegistration(f) => &f.attestation,
            Self::IncomeTax(f) => &f.attestation,
            Self::TaxPayment(f) => &f.attestation,
            Self::FamilyRegister(f) => &f.attestation,
            Self::FamilyRegisterAttachment(f) => &f.attestation,
        }
    }

    /// Whether this front is a layout for `certificate` (the center checks the answer
    /// against the order).
    pub fn fits(&self, certificate: CertificateType) -> bool {
        match self {
            Self::ResidentRecord(_) => certificate == CertificateType::ResidentRecord,
            Self::ResidentRecordItems(_) => certificate == CertificateType::ResidentRecordItems,
            Self::SealRegistration(_) => certificate == CertificateType::SealRegistration,
            Self::IncomeTax(_) => certificate == CertificateType::IncomeTax,
            Self::TaxPayment(_) => certificate == CertificateType::TaxPayment,
            Self::FamilyRegister(f) => {
                certificate
                    == if f.individual {
                        CertificateType::FamilyRegisterIndividual
                    } else {
                        CertificateType::FamilyRegisterAll
                    }
            }
            Self::FamilyRegisterAttachment(_) => {
                certificate == CertificateType::FamilyRegisterAttachment
            }
        }
    }

    /// The rows that paginate and how many fit on one front page.
    fn paginated(&self) -> (usize, usize) {
        match self {
            Self::ResidentRecord(f) => (f.members.len(), RESIDENT_ROWS_PER_PAGE),
            Self::ResidentRecordItems(f) => (f.members.len(), RESIDENT_ROWS_PER_PAGE),
            Self::FamilyRegister(f) => (f.persons.len(), FAMILY_REGISTER_PERSONS_PER_PAGE),
            Self::FamilyRegisterAttachment(f) => (f.addresses.len(), ATTACHMENT_ADDRESSES_PER_PAGE),
            Self::SealRegistration(_) | Self::IncomeTax(_) | Self::TaxPayment(_) => (1, 1),
        }
    }

    /// Front pages of one copy: at least one.
    pub fn page_count(&self) -> usize {
        let (rows, per_page) = self.paginated();
        rows.div_ceil(per_page).max(1)
    }

    /// The paginating rows (members, persons, addresses) printed on each front page,
    /// as index ranges; single-page types give `[0..1]`.
    pub fn page_ranges(&self) -> Vec<Range<usize>> {
        let (rows, per_page) = self.paginated();
        (0..self.page_count())
            .map(|page| page * per_page..((page + 1) * per_page).min(rows))
            .collect()
    }

    /// Shape bounds the layouts rely on. The municipality checks before signing and
    /// the center checks again before composing.
    pub fn validate(&self) -> Result<(), String> {
        if self.page_count() > MAX_FRONT_PAGES {
            return Err(format!("front needs more than {MAX_FRONT_PAGES} pages"));
        }
        match self {
            Self::IncomeTax(f) if f.income_lines.len() + f.tax_lines.len() > MAX_AMOUNT_LINES => {
                Err(format!("more than {MAX_AMOUNT_LINES} amount lines"))
            }
            Self::TaxPayment(f) if f.lines.len() > MAX_AMOUNT_LINES => {
                Err(format!("more than {MAX_AMOUNT_LINES} tax lines"))
            }
            Self::TaxPayment(f)
                if f.lines
                    .iter()
                    .any(|l| l.paid_yen + l.unpaid_yen != l.assessed_yen) =>
            {
                Err("a tax line's paid and unpaid amounts do not add up to the assessment".into())
            }
            Self::FamilyRegister(f) => {
                for person in &f.persons {
                    if person.events.len() > MAX_EVENTS_PER_PERSON {
                        return Err(format!(
                            "a person has more than {MAX_EVENTS_PER_PERSON} events"
                        ));
                    }
                    if person
                        .events
                        .iter()
                        .any(|e| e.lines.is_empty() || e.lines.len() > MAX_EVENT_LINES)
                    {
                        return Err(format!("an event must have 1..={MAX_EVENT_LINES} lines"));
                    }
                }
                if f.register_events.len() > MAX_REGISTER_EVENTS
                    || f.register_events
                        .iter()
                        .any(|e| e.lines.is_empty() || e.lines.len() > MAX_EVENT_LINES)
                {
                    return Err(format!(
                        "戸籍事項 must be at most {MAX_REGISTER_EVENTS} entries of 1..={MAX_EVENT_LINES} lines"
                    ));
                }
                if f.persons.is_empty() {
                    return Err("a family register certificate prints at least one person".into());
                }
                Ok(())
            }
            Self::ResidentRecord(f) if f.members.is_empty() => {
                Err("a resident record prints at least one member".into())
            }
            Self::ResidentRecordItems(f) if f.members.is_empty() => {
                Err("a resident record prints at least one member".into())
            }
            _ => Ok(()),
        }
    }

    /// Every string that will be printed, for the font check before composing.
    pub fn printed_texts(&self) -> Vec<&str> {
        let mut texts: Vec<&str> = vec![self.title()];
        texts.extend(self.attestation().printed_texts());
        match self {
            Self::ResidentRecord(f) => {
                texts.push(&f.address);
                texts.extend(f.household_head.as_deref());
                for row in &f.members {
                    texts.extend([
                        row.name.as_str(),
                        &row.name_kana,
                        &row.birth_date_wareki,
                        &row.sex,
                        &row.became_resident_on_wareki,
                    ]);
                    texts.extend(row.relationship.as_deref());
                    texts.extend(row.domicile.as_deref());
                    texts.extend(row.domicile_head.as_deref());
                    texts.extend(row.previous_address.as_deref());
                    texts.extend(row.remarks.iter().map(String::as_str));
                }
            }
            Self::ResidentRecordItems(f) => {
                texts.push(&f.address);
                texts.extend(f.household_head.as_deref());
                for row in &f.members {
                    texts.extend([
                        row.name.as_str(),
                        &row.name_kana,
                        &row.birth_date_wareki,
                        &row.sex,
                    ]);
                    texts.extend(row.relationship.as_deref());
                }
            }
            Self::SealRegistration(f) => texts.extend([
                f.registration_number.as_str(),
                &f.name,
                &f.name_kana,
                &f.birth_date_wareki,
                &f.sex,
                &f.address,
                &f.registered_on_wareki,
            ]),
            Self::IncomeTax(f) => {
                texts.extend([
                    f.fiscal_year_wareki.as_str(),
                    &f.income_year_wareki,
                    &f.name,
                    &f.birth_date_wareki,
                    &f.address,
                ]);
                texts.extend(
                    f.income_lines
                        .iter()
                        .chain(&f.tax_lines)
                        .map(|l| l.label.as_str()),
                );
            }
            Self::TaxPayment(f) => {
                texts.extend([f.fiscal_year_wareki.as_str(), &f.name, &f.address]);
                texts.extend(f.lines.iter().map(|l| l.tax_name.as_str()));
            }
            Self::FamilyRegister(f) => {
                texts.extend([f.domicile.as_str(), &f.head_name]);
                for event in &f.register_events {
                    texts.push(&event.label);
                    texts.extend(event.lines.iter().map(String::as_str));
                }
                for person in &f.persons {
                    texts.extend([
                        person.name.as_str(),
                        &person.birth_date_wareki,
                        &person.relationship,
                        &person.sex,
                    ]);
                    texts.extend(person.father.as_deref());
                    texts.extend(person.mother.as_deref());
                    for event in &person.events {
                        texts.push(&event.label);
                        texts.extend(event.lines.iter().map(String::as_str));
                    }
                }
            }
            Self::FamilyRegisterAttachment(f) => {
                texts.extend([f.name.as_str(), &f.birth_date_wareki]);
                texts.extend(f.domicile.as_deref());
                texts.extend(f.head_name.as_deref());
                for entry in &f.addresses {
                    texts.extend([entry.address.as_str(), &entry.since_wareki]);
                }
            }
        }
        texts
    }
}

/// 住民票の写し.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentRecordFront {
    /// 「住民票の写し」.
    pub title: String,
    /// 住所.
    pub address: String,
    /// 世帯主 (printed only when relationships were asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_head: Option<String>,
    /// One row per printed member; paginates by [`RESIDENT_ROWS_PER_PAGE`].
    pub members: Vec<ResidentRow>,
    pub attestation: Attestation,
}

/// One member of the household as printed on 住民票の写し.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentRow {
    /// 氏名.
    pub name: String,
    /// ふりがな.
    pub name_kana: String,
    /// 生年月日 in 和暦.
    pub birth_date_wareki: String,
    /// 性別: 男 / 女.
    pub sex: String,
    /// 続柄 (when asked for), e.g. 世帯主, 妻, 子.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// 住民となった年月日 in 和暦.
    pub became_resident_on_wareki: String,
    /// 前住所.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_address: Option<String>,
    /// 本籍 (when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile: Option<String>,
    /// 筆頭者 (when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile_head: Option<String>,
    /// 備考.
    #[serde(default)]
    pub remarks: Vec<String>,
}

/// 住民票記載事項証明書: the basic four items (氏名・生年月日・性別・住所) certified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentRecordItemsFront {
    /// 「住民票記載事項証明書」.
    pub title: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_head: Option<String>,
    /// Paginates by [`RESIDENT_ROWS_PER_PAGE`].
    pub members: Vec<ResidentItemsRow>,
    pub attestation: Attestation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentItemsRow {
    pub name: String,
    pub name_kana: String,
    pub birth_date_wareki: String,
    pub sex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
}

/// 印鑑登録証明書: the registered seal impression (印影) and its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealRegistrationFront {
    /// 「印鑑登録証明書」.
    pub title: String,
    /// 登録番号.
    pub registration_number: String,
    /// The registered impression as a PNG (at most 64 KiB, square-ish, ≤ 512 px).
    pub seal_impression_png: Base64Bytes,
    pub name: String,
    pub name_kana: String,
    pub birth_date_wareki: String,
    pub sex: String,
    pub address: String,
    /// 登録年月日 in 和暦.
    pub registered_on_wareki: String,
    pub attestation: Attestation,
}

/// One labelled amount (所得, 控除, 税額...), integer yen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountLine {
    pub label: String,
    pub amount_yen: i64,
}

/// 所得・課税証明書.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomeTaxFront {
    /// 「所得・課税証明書」.
    pub title: String,
    /// e.g. 令和8年度.
    pub fiscal_year_wareki: String,
    /// The income year, e.g. 令和7年分.
    pub income_year_wareki: String,
    pub name: String,
    pub birth_date_wareki: String,
    /// 住所 (as of 1 January of the fiscal year).
    pub address: String,
    /// 収入・所得・控除 lines.
    pub income_lines: Vec<AmountLine>,
    /// 税額 lines (市民税, 県民税...).
    pub tax_lines: Vec<AmountLine>,
    pub attestation: Attestation,
}

/// One tax item of 納税証明書, integer yen; `paid + unpaid == assessed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxPaymentLine {
    /// 税目, e.g. 市県民税, 固定資産税, 軽自動車税.
    pub tax_name: String,
    pub assessed_yen: u64,
    pub paid_yen: u64,
    pub unpaid_yen: u64,
}

/// 納税証明書.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxPaymentFront {
    /// 「納税証明書」.
    pub title: String,
    pub fiscal_year_wareki: String,
    pub name: String,
    pub address: String,
    pub lines: Vec<TaxPaymentLine>,
    pub attestation: Attestation,
}

/// A 戸籍 entry: a label (出生, 婚姻, 戸籍編製...) and its text lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterEvent {
    pub label: String,
    /// 1..=[`MAX_EVENT_LINES`] lines, e.g. 【出生日】平成2年4月1日.
    pub lines: Vec<String>,
}

/// 戸籍全部事項証明書 / 戸籍個人事項証明書.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyRegisterFront {
    /// 「戸籍全部事項証明書」 or 「戸籍個人事項証明書」.
    pub title: String,
    /// 個人事項証明 (only the card holder's entry).
    pub individual: bool,
    /// 本籍.
    pub domicile: String,
    /// 筆頭者氏名.
    pub head_name: String,
    /// 戸籍事項 (戸籍編製, 転籍...).
    pub register_events: Vec<RegisterEvent>,
    /// 戸籍に記録されている者; paginates by [`FAMILY_REGISTER_PERSONS_PER_PAGE`].
    pub persons: Vec<FamilyRegisterPerson>,
    pub attestation: Attestation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyRegisterPerson {
    /// 【名】 with the surname, e.g. 髙橋 健一.
    pub name: String,
    pub birth_date_wareki: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mother: Option<String>,
    /// 【続柄】, e.g. 長男.
    pub relationship: String,
    pub sex: String,
    /// 除籍 (removed by marriage, death...): printed with the 除籍 mark.
    pub removed: bool,
    /// 身分事項, at most [`MAX_EVENTS_PER_PERSON`].
    pub events: Vec<RegisterEvent>,
}

/// 戸籍の附票の写し.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FamilyRegisterAttachmentFront {
    /// 「戸籍の附票の写し」.
    pub title: String,
    /// 本籍 (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domicile: Option<String>,
    /// 筆頭者 (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_name: Option<String>,
    pub name: String,
    pub birth_date_wareki: String,
    /// 住所の履歴, oldest first; paginates by [`ATTACHMENT_ADDRESSES_PER_PAGE`].
    pub addresses: Vec<AttachmentAddress>,
    pub attestation: Attestation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentAddress {
    pub address: String,
    /// 住所を定めた年月日 in 和暦.
    pub since_wareki: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attestation() -> Attestation {
        Attestation {
            municipality_name: "美濃加茂市".into(),
            certification: "証明する。".into(),
            issue_date_wareki: "令和8年11月23日".into(),
            mayor_title: "美濃加茂市長".into(),
            mayor_name: "山田 一郎".into(),
        }
    }

    fn attachment(addresses: usize) -> FrontSide {
        FrontSide::FamilyRegisterAttachment(FamilyRegisterAttachmentFront {
            title: "戸籍の附票の写し".into(),
            domicile: None,
            head_name: None,
            name: "髙橋 健一".into(),
            birth_date_wareki: "昭和53年4月12日".into(),
            addresses: (0..addresses)
                .map(|i| AttachmentAddress {
                    address: format!("住所{i}"),
                    since_wareki: "平成2年4月1日".into(),
                })
                .collect(),
            attestation: attestation(),
        })
    }

    #[test]
    fn pagination_covers_every_row_once() {
        for rows in [0, 1, 7, 8, 9, 17] {
            let front = attachment(rows);
            let ranges = front.page_ranges();
            assert_eq!(ranges.len(), front.page_count());
            assert_eq!(
                ranges.len(),
                rows.div_ceil(ATTACHMENT_ADDRESSES_PER_PAGE).max(1)
            );
            let covered: Vec<usize> = ranges.into_iter().flatten().collect();
            assert_eq!(covered, (0..rows).collect::<Vec<_>>());
        }
    }

    #[test]
    fn fits_only_its_type() {
        let front = attachment(1);
        assert!(front.fits(CertificateType::FamilyRegisterAttachment));
        assert!(!front.fits(CertificateType::FamilyRegisterAll));
    }
}
