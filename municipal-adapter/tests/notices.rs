//! `POST /v1/issuance-notices` and the issuance record (交付記録): idempotency by
//! request id, the binding checks against the adapter's own answer, municipality
//! isolation, concurrency, and the `records list` CLI.

mod common;

use common::*;
use municipal_adapter::issuance_records;
use schemas::{
    CertificateAnswer, CertificateKind, CertificateType, Digest32, ErrorCode, IssuanceNotice,
    IssuanceNoticeAck, KeyPair, KioskId, OperatorId, RefusalReason, Signed, SignedIssuanceNotice,
};

const NOTICES: &str = "/v1/issuance-notices";
/// 2026-11-24 12:00:05 JST, a few seconds after the answers asked at noon.
const PRINTED_AT_UNIX_MS: i64 = NOV_24_NOON_JST * 1000 + 5_000;

/// The notice the center would send after printing `copies` of `answer`'s certificate.
fn notice_for(answer: &CertificateAnswer, copies: u32) -> IssuanceNotice {
    let (front, _, fee_yen_per_copy) = issued(answer);
    let certificate_type = CertificateType::ALL
        .into_iter()
        .find(|t| front.fits(*t))
        .expect("the front fits a type");
    IssuanceNotice {
        request_id: answer.request_id,
        municipality_code: answer.municipality_code,
        card_digest: answer.card_digest,
        certificate_type,
        copies,
        page_count: u32::try_from(front.page_count()).unwrap(),
        total_fee_yen: fee_yen_per_copy * copies,
        document_sha256: Digest32::of(b"the composed PDF"),
        operator_id: OperatorId::parse("seven").unwrap(),
        kiosk_id: KioskId::parse("gifu-0001").unwrap(),
        printed_at_unix_ms: PRINTED_AT_UNIX_MS,
    }
}

fn sign(adapter: &TestAdapter, notice: IssuanceNotice) -> SignedIssuanceNotice {
    Signed::sign(notice, &adapter.center_key).expect("sign notice")
}

/// Posts a notice; the status and the body as text.
async fn send(adapter: &TestAdapter, signed: &SignedIssuanceNotice) -> (u16, String) {
    let response = adapter.post_json(NOTICES, signed).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn ack(adapter: &TestAdapter, signed: &SignedIssuanceNotice) -> IssuanceNoticeAck {
    let (status, text) = send(adapter, signed).await;
    assert_eq!(status, 200, "{text}");
    let ack: IssuanceNoticeAck = serde_json::from_str(&text).expect("ack");
    assert_eq!(ack.request_id, signed.payload.request_id);
    ack
}

async fn rejected(adapter: &TestAdapter, signed: &SignedIssuanceNotice, status: u16) -> ErrorCode {
    let response = adapter.post_json(NOTICES, signed).await;
    error_body(response, status).await.code
}

async fn rows_for(adapter: &TestAdapter, notice: &IssuanceNotice) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM issuance_records WHERE request_id = ?")
        .bind(notice.request_id.to_string())
        .fetch_one(&adapter.pool().await)
        .await
        .expect("count")
}

/// An issued 住民票の写し (self, 2 copies) of the first sample resident of 美濃加茂市.
async fn issued_answer(adapter: &TestAdapter) -> CertificateAnswer {
    adapter
        .ask(MINOKAMO, &card(MINOKAMO, 1), self_order())
        .await
}

#[tokio::test]
async fn a_notice_is_recorded_once_and_a_repeat_is_acknowledged() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 2);
    let signed = sign(&adapter, notice.clone());

    assert!(ack(&adapter, &signed).await.recorded);
    assert_eq!(rows_for(&adapter, &notice).await, 1);

    // The center's retry: same notice, re-signed (a fresh signature, same content).
    let again = sign(&adapter, notice.clone());
    assert!(!ack(&adapter, &again).await.recorded);
    assert!(!ack(&adapter, &signed).await.recorded);
    assert_eq!(rows_for(&adapter, &notice).await, 1);

    // What was recorded is the notice, plus the holder's name from the adapter's answer.
    let pool = adapter.pool().await;
    let records = issuance_records::list(&pool, code(MINOKAMO), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let (schemas::FrontSide::ResidentRecord(front), _, fee) = issued(&answer) else {
        panic!("住民票の写し")
    };
    assert_eq!(record.request_id, notice.request_id);
    assert_eq!(record.certificate_type, CertificateType::ResidentRecord);
    assert_eq!(record.copies, 2);
    assert_eq!(record.total_fee_yen, i64::from(fee) * 2);
    assert_eq!(record.operator_id.as_str(), "seven");
    assert_eq!(record.kiosk_id.as_str(), "gifu-0001");
    assert_eq!(record.printed_at_unix_ms, PRINTED_AT_UNIX_MS);
    assert_eq!(record.card_digest, notice.card_digest.to_string());
    assert_eq!(
        record.subject_name.as_deref(),
        Some(front.members[0].name.as_str())
    );
    // The other municipality's record is its own.
    let sakahogi = issuance_records::list(&pool, code(SAKAHOGI), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert!(sakahogi.is_empty());
}

#[tokio::test]
async fn a_different_notice_under_a_recorded_id_is_a_conflict() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 2);
    assert!(
        ack(&adapter, &sign(&adapter, notice.clone()))
            .await
            .recorded
    );

    let mut other_copies = notice_for(&answer, 1);
    other_copies.printed_at_unix_ms = notice.printed_at_unix_ms;
    let mut other_kiosk = notice.clone();
    other_kiosk.kiosk_id = KioskId::parse("gifu-0002").unwrap();
    for different in [other_copies, other_kiosk] {
        assert_eq!(
            rejected(&adapter, &sign(&adapter, different), 409).await,
            ErrorCode::RequestIdReused
        );
    }
    // The first notice stays what was recorded.
    let records = issuance_records::list(&adapter.pool().await, code(MINOKAMO), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].copies, 2);
    assert_eq!(records[0].kiosk_id.as_str(), "gifu-0001");
}

#[tokio::test]
async fn notices_that_do_not_match_an_issued_answer_are_refused() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;

    // A request id the adapter never answered.
    let mut unknown = notice_for(&answer, 1);
    unknown.request_id = schemas::RequestId::new_random();
    assert_eq!(
        rejected(&adapter, &sign(&adapter, unknown.clone()), 404).await,
        ErrorCode::NotFound
    );
    assert_eq!(rows_for(&adapter, &unknown).await, 0);

    // Another card's digest.
    let mut wrong_card = notice_for(&answer, 1);
    wrong_card.card_digest = Digest32::of(b"another card");
    assert_eq!(
        rejected(&adapter, &sign(&adapter, wrong_card), 409).await,
        ErrorCode::BindingMismatch
    );

    // Another certificate type than the one answered.
    let mut wrong_type = notice_for(&answer, 1);
    wrong_type.certificate_type = CertificateType::SealRegistration;
    assert_eq!(
        rejected(&adapter, &sign(&adapter, wrong_type), 409).await,
        ErrorCode::BindingMismatch
    );

    // A request the adapter refused (the holder is deceased): nothing to print.
    let refused_answer = adapter
        .ask(MINOKAMO, &card(MINOKAMO, 91), self_order())
        .await;
    assert_eq!(refusal(&refused_answer), RefusalReason::Deceased);
    let mut for_refused = notice_for(&answer, 1);
    for_refused.request_id = refused_answer.request_id;
    for_refused.card_digest = refused_answer.card_digest;
    assert_eq!(
        rejected(&adapter, &sign(&adapter, for_refused.clone()), 409).await,
        ErrorCode::BindingMismatch
    );

    // Nonsense counts are refused before any lookup.
    let mut no_copies = notice_for(&answer, 1);
    no_copies.copies = 0;
    assert_eq!(
        rejected(&adapter, &sign(&adapter, no_copies), 400).await,
        ErrorCode::BadRequest
    );

    // None of these left a record, and the matching notice is still accepted.
    let pool = adapter.pool().await;
    let all = issuance_records::list(&pool, code(MINOKAMO), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert!(all.is_empty(), "{all:?}");
    assert!(
        ack(&adapter, &sign(&adapter, notice_for(&answer, 1)))
            .await
            .recorded
    );
}

#[tokio::test]
async fn only_the_center_may_send_notices() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 1);

    // Signed by some other key.
    let forged = Signed::sign(notice.clone(), &KeyPair::generate()).unwrap();
    assert_eq!(
        rejected(&adapter, &forged, 401).await,
        ErrorCode::RequestSignatureInvalid
    );
    // Signed by the center, then altered.
    let mut altered = sign(&adapter, notice.clone());
    altered.payload.copies = 2;
    assert_eq!(
        rejected(&adapter, &altered, 401).await,
        ErrorCode::RequestSignatureInvalid
    );
    // The center's signature over a notice, sent with an operator's TLS certificate.
    let response = client(&adapter.pki.operator)
        .post(adapter.url(NOTICES))
        .json(&sign(&adapter, notice.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(response, 403).await.code,
        ErrorCode::ClientNotAuthorized
    );
    assert_eq!(rows_for(&adapter, &notice).await, 0);

    // A municipality this adapter does not serve (千代田区).
    let mut elsewhere = notice.clone();
    elsewhere.municipality_code = code("131016");
    assert_eq!(
        rejected(&adapter, &sign(&adapter, elsewhere), 404).await,
        ErrorCode::MunicipalityUnknown
    );
    // GET is not a way in.
    let response = adapter
        .center
        .get(adapter.url(NOTICES))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_body(response, 405).await.code,
        ErrorCode::MethodNotAllowed
    );
}

#[tokio::test]
async fn a_notice_naming_another_municipality_is_not_found() {
    let adapter = spawn_adapter().await;
    // 坂祝町's request…
    let answer = adapter
        .ask(SAKAHOGI, &card(SAKAHOGI, 1), self_order())
        .await;
    let notice = notice_for(&answer, 1);
    // …claimed for 美濃加茂市, which this same process also serves.
    let mut misrouted = notice.clone();
    misrouted.municipality_code = code(MINOKAMO);
    assert_eq!(
        rejected(&adapter, &sign(&adapter, misrouted), 404).await,
        ErrorCode::NotFound
    );
    assert_eq!(rows_for(&adapter, &notice).await, 0);

    // Under its own municipality it is recorded, and listed only there.
    assert!(
        ack(&adapter, &sign(&adapter, notice.clone()))
            .await
            .recorded
    );
    let pool = adapter.pool().await;
    let minokamo = issuance_records::list(&pool, code(MINOKAMO), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert!(minokamo.is_empty());
    let sakahogi = issuance_records::list(&pool, code(SAKAHOGI), i64::MIN, i64::MAX)
        .await
        .unwrap();
    assert_eq!(sakahogi.len(), 1);
    assert_eq!(sakahogi[0].request_id, notice.request_id);
}

#[tokio::test]
async fn twenty_concurrent_identical_notices_make_one_record() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 2);
    let signed = sign(&adapter, notice.clone());
    let url = adapter.url(NOTICES);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = adapter.center.clone();
        let url = url.clone();
        let signed = signed.clone();
        tasks.spawn(async move {
            let response = client.post(url).json(&signed).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_eq!(status, 200, "{text}");
            serde_json::from_str::<IssuanceNoticeAck>(&text).unwrap()
        });
    }
    let mut recorded = 0;
    while let Some(result) = tasks.join_next().await {
        let ack = result.expect("task");
        assert_eq!(ack.request_id, notice.request_id);
        recorded += usize::from(ack.recorded);
    }
    assert_eq!(recorded, 1, "exactly one notice creates the record");
    assert_eq!(rows_for(&adapter, &notice).await, 1);
}

#[tokio::test]
async fn a_recorded_notice_is_still_acknowledged_after_its_answer_is_purged() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 2);
    assert!(
        ack(&adapter, &sign(&adapter, notice.clone()))
            .await
            .recorded
    );

    let pool = adapter.pool().await;
    let purged = municipal_adapter::answers::AnswerStore::new(pool.clone())
        .purge_older_than(i64::MAX)
        .await
        .unwrap();
    assert!(purged >= 1);

    assert!(
        !ack(&adapter, &sign(&adapter, notice.clone()))
            .await
            .recorded
    );
    let mut different = notice.clone();
    different.copies = 1;
    assert_eq!(
        rejected(&adapter, &sign(&adapter, different), 409).await,
        ErrorCode::RequestIdReused
    );
    // Under another municipality it is still unknown.
    let mut misrouted = notice.clone();
    misrouted.municipality_code = code(SAKAHOGI);
    assert_eq!(
        rejected(&adapter, &sign(&adapter, misrouted), 404).await,
        ErrorCode::NotFound
    );
    assert_eq!(rows_for(&adapter, &notice).await, 1);
}

/// Runs the binary's `records list` with `args` after `--config FILE`.
fn records_list(adapter: &TestAdapter, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_municipal-adapter"))
        .args(["records", "list", "--config"])
        .arg(adapter.dir.path().join("adapter.toml"))
        .args(args)
        .output()
        .expect("run the binary")
}

fn stdout_of(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_records_list_cli_shows_what_was_printed() {
    let adapter = spawn_adapter().await;
    let answer = issued_answer(&adapter).await;
    let notice = notice_for(&answer, 2);
    assert!(
        ack(&adapter, &sign(&adapter, notice.clone()))
            .await
            .recorded
    );
    // A second one, of another type, printed the next day.
    let seal = adapter
        .ask(
            MINOKAMO,
            &card(MINOKAMO, 1),
            order(CertificateKind::SealRegistration),
        )
        .await;
    let mut next_day = notice_for(&seal, 1);
    next_day.printed_at_unix_ms = PRINTED_AT_UNIX_MS + 86_400_000;
    assert!(
        ack(&adapter, &sign(&adapter, next_day.clone()))
            .await
            .recorded
    );
    let (schemas::FrontSide::ResidentRecord(front), _, fee) = issued(&answer) else {
        panic!("住民票の写し")
    };
    let name = &front.members[0].name;
    let id = notice.request_id.to_string();
    let next_id = next_day.request_id.to_string();

    // The table for 2026-11-24 (JST) holds the first only.
    let table = stdout_of(&records_list(
        &adapter,
        &["--municipality", MINOKAMO, "--date", "2026-11-24"],
    ));
    let line = table
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{table}"));
    for expected in [
        "2026-11-24 12:00:05",
        "住民票の写し",
        "2通",
        &format!("{}円", fee * 2),
        "seven/gifu-0001",
        name.as_str(),
    ] {
        assert!(line.contains(expected), "{expected} missing in {line}");
    }
    assert!(!table.contains(&next_id), "{table}");
    assert!(
        table.contains(&format!("1件  2通  {}円", fee * 2)),
        "{table}"
    );

    // Without --date: both, oldest first; as JSON lines.
    let json = stdout_of(&records_list(
        &adapter,
        &["--municipality", MINOKAMO, "--json"],
    ));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert_eq!(lines[0]["request_id"], id.as_str());
    assert_eq!(lines[0]["certificate_type"], "resident_record");
    assert_eq!(lines[0]["certificate_title_ja"], "住民票の写し");
    assert_eq!(lines[0]["copies"], 2);
    assert_eq!(lines[0]["total_fee_yen"], i64::from(fee * 2));
    assert_eq!(lines[0]["printed_at_unix_ms"], PRINTED_AT_UNIX_MS);
    assert_eq!(lines[0]["printed_at_jst"], "2026-11-24 12:00:05");
    assert_eq!(lines[0]["subject_name"], name.as_str());
    assert_eq!(lines[1]["request_id"], next_id.as_str());
    assert_eq!(lines[1]["certificate_title_ja"], "印鑑登録証明書");

    // 坂祝町 has none.
    let empty = stdout_of(&records_list(
        &adapter,
        &["--municipality", SAKAHOGI, "--json"],
    ));
    assert!(empty.is_empty(), "{empty}");

    // Clear errors for a municipality not configured and a bad date.
    for (args, expected) in [
        (
            vec!["--municipality", "131016"],
            "municipality 131016 is not configured",
        ),
        (vec!["--municipality", "123456"], "--municipality"),
        (
            vec!["--municipality", MINOKAMO, "--date", "2026-02-30"],
            "--date",
        ),
        (
            vec!["--municipality", MINOKAMO, "--date", "24/11/2026"],
            "YYYY-MM-DD",
        ),
    ] {
        let output = records_list(&adapter, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
