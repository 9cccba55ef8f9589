//! Fixtures shared by the tests and the benchmark: a fictional household in
//! 美濃加茂市 (212113) and seals signed the way the municipal adapter signs them.
#![allow(dead_code)]

use schemas::seal::DOC_RESIDENT_RECORD;
use schemas::{
    FrontSide, KeyPair, MunicipalityCode, RequestId, ResidentRecordFront, ResidentRow, SealPayload,
    SignedSeal, RESIDENT_ROWS_PER_PAGE,
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

pub fn front_with_members(members: Vec<ResidentRow>) -> FrontSide {
    FrontSide::ResidentRecord(ResidentRecordFront {
        title: "住民票の写し".into(),
        municipality_name: "美濃加茂市".into(),
        address: "岐阜県美濃加茂市太田町1234番地の5".into(),
        household_head: Some("髙橋 一郎".into()),
        members,
        certification: "この写しは、世帯全員の住民票の原本と相違ないことを証明する。".into(),
        issue_date_wareki: "令和8年11月23日".into(),
        mayor_title: "美濃加茂市長".into(),
        mayor_name: "加茂野 太郎".into(),
    })
}

/// A household of `n` members (cycling through the six).
pub fn front_with_n_members(n: usize) -> FrontSide {
    let six = six_members();
    front_with_members((0..n).map(|i| six[i % six.len()].clone()).collect())
}

/// One signed seal per front page, bound to `request_id`, as the adapter makes them.
pub fn seals_for(front: &FrontSide, request_id: RequestId, key: &KeyPair) -> Vec<String> {
    let FrontSide::ResidentRecord(record) = front;
    let pages = record.members.len().div_ceil(RESIDENT_ROWS_PER_PAGE).max(1);
    let digest = front.digest().expect("front digest");
    (1..=pages)
        .map(|page| {
            let payload = SealPayload {
                doc_type: DOC_RESIDENT_RECORD,
                issuer: MunicipalityCode::parse("212113").expect("valid code"),
                serial: request_id,
                issued_at_unix_s: 1_795_400_000,
                verify_until_unix_s: 1_826_936_000,
                page: u8::try_from(page).expect("few pages"),
                page_count: u8::try_from(pages).expect("few pages"),
                name: record.members[0].name.clone(),
                birth_date: 19_750_412,
                address: record.address.clone(),
                front_digest: digest.0,
            };
            SignedSeal::sign(&payload, key).to_qr_text()
        })
        .collect()
}
