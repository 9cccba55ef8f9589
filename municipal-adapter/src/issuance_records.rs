//! The issuance record (交付記録): the certificates the center reports as printed, each
//! once, from its [`schemas::IssuanceNotice`]s (see `schemas::notice` for the contract).
//!
//! A notice is accepted only for a request this adapter itself answered with a
//! certificate, and only when the notice agrees with that stored, signed answer on
//! municipality, request id, card digest and certificate type (the binding guard, seen
//! from the municipality's side). Delivery is at-least-once, so the request id is the
//! idempotency key: the primary key of `issuance_records` lets exactly one of any number
//! of concurrent identical notices insert, and the SHA-256 of the notice's canonical
//! JSON tells a repeat from a different notice under the same id.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use schemas::{
    AnswerOutcome, CertificateType, Digest32, IssuanceNotice, KioskId, MunicipalityCode,
    OperatorId, RequestId, SignedCertificateAnswer, SignedSeal, MAX_COPIES,
};
use sqlx::sqlite::SqlitePool;
use sqlx::Row as _;

use crate::answers::AnswerStore;

/// Most records one [`list`] call returns; a day of one municipality is far below it
/// (the busiest real municipalities issue a few thousand certificates a day).
pub const MAX_LISTED_RECORDS: usize = 100_000;

/// Why a notice is not recorded.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("invalid notice: {0}")]
    Invalid(String),
    #[error("no certificate answer for request {0} in municipality {1}")]
    NotFound(RequestId, MunicipalityCode),
    #[error("the notice for request {request_id} does not match the adapter's answer: {detail}")]
    BindingMismatch {
        request_id: RequestId,
        detail: String,
    },
    #[error("request {0} is already recorded with a different notice")]
    RequestIdReused(RequestId),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

/// What a notice did to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// This notice created the record.
    Recorded,
    /// The same notice was recorded before (a retry or a concurrent duplicate).
    AlreadyRecorded,
}

/// One row of the issuance record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IssuanceRecord {
    pub request_id: RequestId,
    pub municipality_code: MunicipalityCode,
    pub certificate_type: CertificateType,
    pub copies: u32,
    /// Pages of one copy.
    pub page_count: u32,
    pub total_fee_yen: i64,
    pub document_sha256: String,
    pub card_digest: String,
    pub operator_id: OperatorId,
    pub kiosk_id: KioskId,
    pub printed_at_unix_ms: i64,
    pub recorded_at_unix_ms: i64,
    /// The holder's name as this adapter's signed answer (its seal) named it; `None`
    /// when the answer's seal could not be read at record time.
    pub subject_name: Option<String>,
}

/// Lower-case hex SHA-256 of the notice's canonical JSON (JCS).
pub fn notice_sha256(notice: &IssuanceNotice) -> Result<String, NoticeError> {
    let bytes = schemas::canonical_bytes(notice)
        .map_err(|e| NoticeError::Internal(format!("canonical notice: {e}")))?;
    Ok(Digest32::of(&bytes).to_string())
}

/// Field checks that need no database.
fn validate(notice: &IssuanceNotice) -> Result<(), NoticeError> {
    if !(1..=u32::from(MAX_COPIES)).contains(&notice.copies) {
        return Err(NoticeError::Invalid(format!(
            "copies must be 1..={MAX_COPIES}, got {}",
            notice.copies
        )));
    }
    if notice.page_count == 0 {
        return Err(NoticeError::Invalid("page_count must be at least 1".into()));
    }
    if notice.printed_at_unix_ms < 0 {
        return Err(NoticeError::Invalid(
            "printed_at_unix_ms is before 1970".into(),
        ));
    }
    Ok(())
}

/// The certificate type a front is the layout of.
fn front_type(front: &schemas::FrontSide) -> Option<CertificateType> {
    CertificateType::ALL.into_iter().find(|t| front.fits(*t))
}

/// Compares the notice with the adapter's stored answer; on agreement returns the
/// holder's name from the answer's first seal (if readable).
fn check_binding(
    notice: &IssuanceNotice,
    answer_json: &str,
) -> Result<Option<String>, NoticeError> {
    let mismatch = |detail: String| NoticeError::BindingMismatch {
        request_id: notice.request_id,
        detail,
    };
    // The stored bytes are this adapter's own signed answer, so its payload is read
    // without re-verifying the municipality's signature.
    let signed: SignedCertificateAnswer = serde_json::from_str(answer_json)
        .map_err(|e| NoticeError::Internal(format!("stored answer is not readable: {e}")))?;
    let answer = &signed.payload;
    if answer.request_id != notice.request_id {
        return Err(mismatch(format!(
            "the answer carries request id {}",
            answer.request_id
        )));
    }
    if answer.municipality_code != notice.municipality_code {
        return Err(mismatch(format!(
            "the answer is from municipality {}",
            answer.municipality_code
        )));
    }
    if answer.card_digest != notice.card_digest {
        return Err(mismatch("the card digest differs".into()));
    }
    let AnswerOutcome::Issued {
        front,
        seals,
        fee_yen_per_copy,
    } = &answer.outcome
    else {
        return Err(mismatch("the adapter refused this request".into()));
    };
    let answered_type = front_type(front)
        .ok_or_else(|| NoticeError::Internal("the stored front fits no certificate type".into()))?;
    if answered_type != notice.certificate_type {
        return Err(mismatch(format!(
            "the adapter answered a {answered_type}, the notice names a {}",
            notice.certificate_type
        )));
    }
    // Amount and pages are the center's business (it composed and charged); a
    // disagreement is worth an operator's look but does not make the print untrue.
    let expected_fee_yen = u64::from(*fee_yen_per_copy) * u64::from(notice.copies);
    if expected_fee_yen != u64::from(notice.total_fee_yen) {
        tracing::warn!(
            expected_fee_yen,
            notice_fee_yen = notice.total_fee_yen,
            "the notice's fee differs from the answered fee times copies"
        );
    }
    let name = seals
        .first()
        .and_then(|text| SignedSeal::from_qr_text(text).ok())
        .and_then(|seal| seal.unverified_payload().ok())
        .map(|payload| payload.name);
    if name.is_none() {
        tracing::warn!("the stored answer's seal cannot be read; recorded without a name");
    }
    Ok(name)
}

/// Records `notice` (already verified as the center's) at `now_unix_ms`.
///
/// Order of checks: fields; the stored answer of this municipality (none → not found,
/// unless the same notice was recorded before the answer's retention ran out);
/// agreement with it; then one insert that the primary key arbitrates.
pub async fn record_notice(
    pool: &SqlitePool,
    notice: &IssuanceNotice,
    now_unix_ms: i64,
) -> Result<RecordOutcome, NoticeError> {
    validate(notice)?;
    let sha256 = notice_sha256(notice)?;
    let answers = AnswerStore::new(pool.clone());
    let stored = answers
        .find_in(notice.request_id, notice.municipality_code)
        .await?;
    let subject_name = match stored {
        Some(answer_json) => check_binding(notice, &answer_json)?,
        None => {
            // Answers are purged after their retention; a notice retried after that
            // must still be acknowledged if it was recorded.
            return match recorded_sha256(pool, notice.request_id, notice.municipality_code).await? {
                Some(existing) if existing == sha256 => Ok(RecordOutcome::AlreadyRecorded),
                Some(_) => Err(NoticeError::RequestIdReused(notice.request_id)),
                None => Err(NoticeError::NotFound(
                    notice.request_id,
                    notice.municipality_code,
                )),
            };
        }
    };

    let inserted = sqlx::query(
        "INSERT INTO issuance_records (request_id, municipality_code, certificate_type, copies, \
         page_count, total_fee_yen, document_sha256, card_digest, operator_id, kiosk_id, \
         printed_at_unix_ms, recorded_at_unix_ms, notice_sha256, subject_name) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(notice.request_id.to_string())
    .bind(notice.municipality_code.to_string())
    .bind(notice.certificate_type.as_str())
    .bind(i64::from(notice.copies))
    .bind(i64::from(notice.page_count))
    .bind(i64::from(notice.total_fee_yen))
    .bind(notice.document_sha256.to_string())
    .bind(notice.card_digest.to_string())
    .bind(notice.operator_id.as_str())
    .bind(notice.kiosk_id.as_str())
    .bind(notice.printed_at_unix_ms)
    .bind(now_unix_ms)
    .bind(&sha256)
    .bind(subject_name)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(RecordOutcome::Recorded);
    }
    match recorded_sha256(pool, notice.request_id, notice.municipality_code).await? {
        Some(existing) if existing == sha256 => Ok(RecordOutcome::AlreadyRecorded),
        Some(_) => Err(NoticeError::RequestIdReused(notice.request_id)),
        // The conflicting row is in another municipality: request ids are unique
        // across municipalities, and the answer lookup above already matched this one,
        // so this is an inconsistency worth surfacing rather than a retry.
        None => Err(NoticeError::Internal(format!(
            "request {} is recorded under another municipality",
            notice.request_id
        ))),
    }
}

async fn recorded_sha256(
    pool: &SqlitePool,
    request_id: RequestId,
    municipality: MunicipalityCode,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT notice_sha256 FROM issuance_records WHERE request_id = ? AND municipality_code = ?",
    )
    .bind(request_id.to_string())
    .bind(municipality.to_string())
    .fetch_optional(pool)
    .await
}

/// Records of `municipality` printed in `[from_unix_ms, to_unix_ms)`, oldest first.
pub async fn list(
    pool: &SqlitePool,
    municipality: MunicipalityCode,
    from_unix_ms: i64,
    to_unix_ms: i64,
) -> Result<Vec<IssuanceRecord>, NoticeError> {
    // One more than the bound, to tell "exactly the bound" from "more".
    let limit = i64::try_from(MAX_LISTED_RECORDS + 1).unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT request_id, municipality_code, certificate_type, copies, page_count, \
         total_fee_yen, document_sha256, card_digest, operator_id, kiosk_id, \
         printed_at_unix_ms, recorded_at_unix_ms, subject_name \
         FROM issuance_records \
         WHERE municipality_code = ? AND printed_at_unix_ms >= ? AND printed_at_unix_ms < ? \
         ORDER BY printed_at_unix_ms, request_id LIMIT ?",
    )
    .bind(municipality.to_string())
    .bind(from_unix_ms)
    .bind(to_unix_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    if rows.len() > MAX_LISTED_RECORDS {
        return Err(NoticeError::Invalid(format!(
            "more than {MAX_LISTED_RECORDS} records in the range; narrow it"
        )));
    }
    rows.iter().map(record_from_row).collect()
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<IssuanceRecord, NoticeError> {
    let corrupt = |column: &str, detail: String| {
        NoticeError::Internal(format!("issuance_records.{column}: {detail}"))
    };
    let text = |column: &str| -> Result<String, NoticeError> { Ok(row.try_get(column)?) };
    let count = |column: &str| -> Result<u32, NoticeError> {
        let value: i64 = row.try_get(column)?;
        u32::try_from(value).map_err(|e| corrupt(column, e.to_string()))
    };
    let certificate_type = text("certificate_type")?;
    Ok(IssuanceRecord {
        request_id: text("request_id")?
            .parse()
            .map_err(|e: schemas::IdError| corrupt("request_id", e.to_string()))?,
        municipality_code: MunicipalityCode::parse(&text("municipality_code")?)
            .map_err(|e| corrupt("municipality_code", e.to_string()))?,
        certificate_type: CertificateType::parse(&certificate_type)
            .ok_or_else(|| corrupt("certificate_type", certificate_type.clone()))?,
        copies: count("copies")?,
        page_count: count("page_count")?,
        total_fee_yen: row.try_get("total_fee_yen")?,
        document_sha256: text("document_sha256")?,
        card_digest: text("card_digest")?,
        operator_id: OperatorId::parse(text("operator_id")?)
            .map_err(|e| corrupt("operator_id", e.to_string()))?,
        kiosk_id: KioskId::parse(text("kiosk_id")?)
            .map_err(|e| corrupt("kiosk_id", e.to_string()))?,
        printed_at_unix_ms: row.try_get("printed_at_unix_ms")?,
        recorded_at_unix_ms: row.try_get("recorded_at_unix_ms")?,
        subject_name: row.try_get("subject_name")?,
    })
}

/// `[start, end)` in Unix ms of the JST calendar day `date` (`YYYY-MM-DD`).
pub fn jst_day_range_unix_ms(date: &str) -> Result<(i64, i64), NoticeError> {
    let bad = |detail: String| NoticeError::Invalid(format!("date {date:?}: {detail}"));
    let day: jiff::civil::Date = date
        .trim()
        .parse()
        .map_err(|e: jiff::Error| bad(format!("expected YYYY-MM-DD ({e})")))?;
    let tz = TimeZone::get(crate::issuance::ISSUE_TIME_ZONE)
        .map_err(|e| NoticeError::Internal(format!("time zone: {e}")))?;
    let start = day
        .to_zoned(tz.clone())
        .map_err(|e| bad(e.to_string()))?
        .timestamp();
    let next = day.tomorrow().map_err(|e| bad(e.to_string()))?;
    let end = next
        .to_zoned(tz)
        .map_err(|e| bad(e.to_string()))?
        .timestamp();
    Ok((start.as_millisecond(), end.as_millisecond()))
}

/// `unix_ms` as `YYYY-MM-DD HH:MM:SS` in JST (the raw number if out of range).
pub fn format_jst(unix_ms: i64) -> String {
    let zoned = Timestamp::from_millisecond(unix_ms)
        .ok()
        .and_then(|t| t.in_tz(crate::issuance::ISSUE_TIME_ZONE).ok());
    match zoned {
        Some(z) => z.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        None => unix_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jst_days_start_at_jst_midnight() {
        let (start, end) = jst_day_range_unix_ms("2026-11-24").unwrap();
        // 2026-11-24 00:00 JST = 2026-11-23 15:00 UTC.
        assert_eq!(start, 1_795_446_000_000);
        assert_eq!(end - start, 86_400_000);
        assert_eq!(format_jst(start), "2026-11-24 00:00:00");
        assert_eq!(format_jst(end - 1), "2026-11-24 23:59:59");
        for bad in ["2026-13-01", "24/11/2026", "", "2026-11-31"] {
            assert!(
                matches!(jst_day_range_unix_ms(bad), Err(NoticeError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
