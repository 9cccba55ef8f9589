//! Fixtures shared by the tests and the benchmark: a fictional household in
//! 美濃加茂市 (212113), one builder per certificate type, and seals signed the way the
//! municipal adapter signs them.
#![allow(dead_code)]

use schemas::b64::Base64Bytes;
use schemas::{
    AmountLine, AttachmentAddress, Attestation, CertificateType, FamilyRegisterAttachmentFront,
    FamilyRegisterFront, FamilyRegisterPerson, FrontSide, IncomeTaxFront, KeyPair,
    MunicipalityCode, RegisterEvent, RequestId, ResidentItemsRow, ResidentRecordFront,
    ResidentRecordItemsFront, ResidentRow, SealPayload, SealRegistrationFront, SignedSeal,
    TaxPaymentFront, TaxPaymentLine,
};

pub const VERIFY_URL: &str = "https://verify.kofu.example.jp/v1/seal";

fn member(
    name: &str,
    kana: &str,
    birth: &str,
    sex: &str,
    relationship: &str,
    became: &str,
    remarks: &[&str],
) -> ResidentRow {
    ResidentRow {
        name: name.into(),
        name_kana: kana.into(),
        birth_date_wareki: birth.into(),
        sex: sex.into(),
        relationship: Some(relationship.into()),
        became_resident_on_wareki: became.into(),
        previous_address: Some("愛知県名古屋市中区三の丸三丁目1番1号".into()),
        domicile: Some("岐阜県美濃加茂市太田町1234番地".into()),
        domicile_head: Some("髙橋 一郎".into()),
        remarks: remarks.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// A six-member household: the size the issue's performance target names.
pub fn six_member_front() -> FrontSide {
    front_with_members(six_members())
}

pub fn six_members() -> Vec<ResidentRow> {
    vec![
        member(
            "髙橋 一郎",
            "たかはし いちろう",
            "昭和50年4月12日",
            "男",
            "世帯主",
            "平成22年3月1日",
            &["平成22年3月1日 愛知県名古屋市中区から転入"],
        ),
        member(
            "髙橋 﨑子",
            "たかはし さきこ",
            "昭和52年11月3日",
            "女",
            "妻",
            "平成22年3月1日",
            &["平成22年3月1日 愛知県名古屋市中区から転入"],
        ),
        member(
            "髙橋 邉太",
            "たかはし へんた",
            "平成23年6月30日",
            "男",
            "子",
            "平成23年6月30日",
            &["平成23年7月5日 出生届出"],
        ),
        member(
            "髙橋 美濃",
            "たかはし みの",
            "平成26年1月8日",
            "女",
            "子",
            "平成26年1月8日",
            &["平成26年1月14日 出生届出"],
        ),
        member(
            "髙橋 葛男",
            "たかはし くずお",
            "昭和22年2月20日",
            "男",
            "父",
            "令和2年10月1日",
            &[
                "令和2年10月1日 岐阜県可児市広見一丁目1番地から転入",
                "令和2年10月1日 世帯合併",
            ],
        ),
        member(
            "髙橋 ハナ",
            "たかはし はな",
            "昭和24年9月9日",
            "女",
            "母",
            "令和2年10月1日",
            &[],
        ),
    ]
}

pub fn attestation(certification: &str) -> Attestation {
    Attestation {
        municipality_name: "美濃加茂市".into(),
        certification: certification.into(),
        issue_date_wareki: "令和8年11月23日".into(),
        mayor_title: "美濃加茂市長".into(),
        mayor_name: "加茂野 太郎".into(),
    }
}

pub fn front_with_members(members: Vec<ResidentRow>) -> FrontSide {
    FrontSide::ResidentRecord(ResidentRecordFront {
        title: "住民票の写し".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        household_head: Some("髙橋 一郎".into()),
        members,
        attestation: attestation("この写しは、世帯全員の住民票の原本と相違ないことを証明する。"),
    })
}

/// A household of `n` members (cycling through the six).
pub fn front_with_n_members(n: usize) -> FrontSide {
    let six = six_members();
    front_with_members((0..n).map(|i| six[i % six.len()].clone()).collect())
}

/// 住民票記載事項証明書 for `n` members (cycling through the six).
pub fn resident_items_front(n: usize) -> FrontSide {
    let six = six_members();
    FrontSide::ResidentRecordItems(ResidentRecordItemsFront {
        title: "住民票記載事項証明書".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        household_head: Some("髙橋 一郎".into()),
        members: (0..n)
            .map(|i| {
                let m = &six[i % six.len()];
                ResidentItemsRow {
                    name: m.name.clone(),
                    name_kana: m.name_kana.clone(),
                    birth_date_wareki: m.birth_date_wareki.clone(),
                    sex: m.sex.clone(),
                    relationship: m.relationship.clone(),
                }
            })
            .collect(),
        attestation: attestation("上記の事項は、住民票の記載事項と相違ないことを証明する。"),
    })
}

/// A registered impression: a 200 px seal reading 髙橋 (the composer's own renderer).
pub fn impression_png() -> Vec<u8> {
    composer::render_official_seal_png("髙橋", IMPRESSION_EDGE_PX).expect("impression renders")
}

/// Edge of [`impression_png`], distinct from the 256 px official seal so tests can tell
/// the two image XObjects apart.
pub const IMPRESSION_EDGE_PX: u32 = 200;

pub fn seal_registration_front(png: Vec<u8>) -> FrontSide {
    FrontSide::SealRegistration(SealRegistrationFront {
        title: "印鑑登録証明書".into(),
        registration_number: "第2024-000317号".into(),
        seal_impression_png: Base64Bytes(png),
        name: "髙橋 一郎".into(),
        name_kana: "たかはし いちろう".into(),
        birth_date_wareki: "昭和50年4月12日".into(),
        sex: "男".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        registered_on_wareki: "平成22年3月8日".into(),
        attestation: attestation("この写しは、登録されている印影と相違ないことを証明する。"),
    })
}

fn amount(label: &str, amount_yen: i64) -> AmountLine {
    AmountLine {
        label: label.into(),
        amount_yen,
    }
}

pub fn income_tax_front() -> FrontSide {
    FrontSide::IncomeTax(IncomeTaxFront {
        title: "所得・課税証明書".into(),
        fiscal_year_wareki: "令和8年度".into(),
        income_year_wareki: "令和7年分".into(),
        name: "髙橋 一郎".into(),
        birth_date_wareki: "昭和50年4月12日".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        income_lines: vec![
            amount("給与収入", 5_200_000),
            amount("給与所得", 3_450_000),
            amount("事業所得", -120_000),
            amount("所得控除合計", 1_234_567),
            amount("課税標準額", 2_095_433),
        ],
        tax_lines: vec![amount("市民税", 125_700), amount("県民税", 83_800)],
        attestation: attestation("上記のとおり相違ないことを証明する。"),
    })
}

pub fn tax_payment_front() -> FrontSide {
    let line = |tax_name: &str, assessed_yen: u64, paid_yen: u64| TaxPaymentLine {
        tax_name: tax_name.into(),
        assessed_yen,
        paid_yen,
        unpaid_yen: assessed_yen - paid_yen,
    };
    FrontSide::TaxPayment(TaxPaymentFront {
        title: "納税証明書".into(),
        fiscal_year_wareki: "令和8年度".into(),
        name: "髙橋 一郎".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        lines: vec![
            line("市県民税", 209_500, 209_500),
            line("固定資産税", 1_048_200, 786_150),
            line("軽自動車税", 10_800, 10_800),
        ],
        attestation: attestation("上記のとおり納付済であることを証明する。"),
    })
}

fn event(label: &str, lines: &[&str]) -> RegisterEvent {
    RegisterEvent {
        label: label.into(),
        lines: lines.iter().map(|l| (*l).to_owned()).collect(),
    }
}

fn register_person(i: usize) -> FamilyRegisterPerson {
    let given = ["一郎", "﨑子", "邉太", "美濃", "葛男", "ハナ", "次郎"];
    let relationship = ["", "", "長男", "長女", "二男", "二女", "三男"];
    let name = format!("髙橋 {}", given[i % given.len()]);
    let head = i == 0;
    FamilyRegisterPerson {
        name,
        birth_date_wareki: format!("平成{}年4月1日", 2 + i),
        father: (!head && i != 1).then(|| "髙橋 一郎".to_owned()),
        mother: (!head && i != 1).then(|| "髙橋 﨑子".to_owned()),
        relationship: if i == 1 {
            "妻".into()
        } else if head {
            "長男".into()
        } else {
            relationship[i % relationship.len()].into()
        },
        sex: if i % 2 == 0 { "男" } else { "女" }.into(),
        // The eldest daughter married out: 除籍.
        removed: i == 3,
        events: vec![
            event(
                "出生",
                &[
                    format!("【出生日】平成{}年4月1日", 2 + i).as_str(),
                    "【出生地】岐阜県美濃加茂市",
                    "【届出日】同月5日",
                ],
            ),
            if i == 3 {
                event(
                    "婚姻",
                    &[
                        "【婚姻日】令和6年6月6日",
                        "【配偶者氏名】渡邊 太一",
                        "【新本籍】愛知県名古屋市中区三の丸三丁目1番",
                    ],
                )
            } else {
                event("住所", &["【住所を定めた日】平成22年3月1日"])
            },
        ],
    }
}

/// 戸籍全部事項証明書 (or 個人事項証明書 when `individual`) with `persons` persons.
pub fn family_register_front(persons: usize, individual: bool) -> FrontSide {
    FrontSide::FamilyRegister(FamilyRegisterFront {
        title: if individual {
            "戸籍個人事項証明書"
        } else {
            "戸籍全部事項証明書"
        }
        .into(),
        individual,
        domicile: "岐阜県美濃加茂市太田町1234番地".into(),
        head_name: "髙橋 一郎".into(),
        register_events: vec![event("戸籍編製", &["【編製日】平成22年3月8日"])],
        persons: (0..persons).map(register_person).collect(),
        attestation: attestation(if individual {
            "これは、戸籍中の一部の者について記録されている事項を証明した書面である。"
        } else {
            "これは、戸籍に記録されている事項の全部を証明した書面である。"
        }),
    })
}

/// 戸籍の附票の写し with `addresses` entries, with 本籍 and 筆頭者.
pub fn attachment_front(addresses: usize) -> FrontSide {
    FrontSide::FamilyRegisterAttachment(FamilyRegisterAttachmentFront {
        title: "戸籍の附票の写し".into(),
        domicile: Some("岐阜県美濃加茂市太田町1234番地".into()),
        head_name: Some("髙橋 一郎".into()),
        name: "髙橋 邉太".into(),
        birth_date_wareki: "平成23年6月30日".into(),
        addresses: (0..addresses)
            .map(|i| AttachmentAddress {
                address: format!("岐阜県美濃加茂市太田町{}番地", 100 + i),
                since_wareki: format!("平成{}年4月1日", 23 + i),
            })
            .collect(),
        attestation: attestation("この写しは、戸籍の附票の原本と相違ないことを証明する。"),
    })
}

/// The certificate type a front is a layout for (the first that fits).
pub fn certificate_type(front: &FrontSide) -> CertificateType {
    CertificateType::ALL
        .into_iter()
        .find(|t| front.fits(*t))
        .expect("every front fits some type")
}

/// One signed seal per front page, bound to `request_id`, as the adapter makes them.
pub fn seals_for(front: &FrontSide, request_id: RequestId, key: &KeyPair) -> Vec<String> {
    seals_with(
        front,
        request_id,
        key,
        certificate_type(front).seal_doc_type(),
    )
}

/// As [`seals_for`], with an explicit seal document type.
pub fn seals_with(
    front: &FrontSide,
    request_id: RequestId,
    key: &KeyPair,
    doc_type: u64,
) -> Vec<String> {
    let pages = front.page_count();
    let digest = front.digest().expect("front digest");
    let seal_registration_number = match front {
        FrontSide::SealRegistration(f) => Some(f.registration_number.clone()),
        _ => None,
    };
    (1..=pages)
        .map(|page| {
            let payload = SealPayload {
                doc_type,
                issuer: MunicipalityCode::parse("212113").expect("valid code"),
                serial: request_id,
                issued_at_unix_s: 1_795_400_000,
                verify_until_unix_s: 1_826_936_000,
                page: u8::try_from(page).expect("few pages"),
                page_count: u8::try_from(pages).expect("few pages"),
                name: "髙橋 一郎".into(),
                birth_date: 19_750_412,
                // As the adapter signs: 戸籍 types never carry an address.
                address: (!schemas::CertificateType::from_seal_doc_type(doc_type)
                    .is_some_and(|t| t.is_family_register()))
                .then(|| "岐阜県美濃加茂市太田町1234番地の5".into()),
                seal_registration_number: seal_registration_number.clone(),
                front_digest: digest.0,
            };
            SignedSeal::sign(&payload, key).to_qr_text()
        })
        .collect()
}

/// Text of a PDF as poppler's pdftotext extracts it, or `None` (skip) on a developer
/// machine without poppler; under CI (CI=true) a missing pdftotext is a failure.
pub fn pdf_text(pdf: &[u8]) -> Option<String> {
    let pdftotext = std::path::Path::new("/usr/bin/pdftotext");
    if !pdftotext.exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must have poppler-utils (pdftotext) installed"
        );
        eprintln!("skipping: /usr/bin/pdftotext not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("composer-text-{}", RequestId::new_random()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("doc.pdf");
    std::fs::write(&path, pdf).expect("write PDF");
    let output = std::process::Command::new(pdftotext)
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("run pdftotext");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("UTF-8 text"))
}
