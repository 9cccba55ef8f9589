//! Outcome notices to municipalities (`schemas::notice`): the delivery side of the
//! transactional outbox. `db::apply_outcome` writes an `outcome_notices` row in the
//! transaction that records a print; this loop sends each due row, signed by the
//! center, to the municipality's adapter and marks it delivered on a 2xx answer, or
//! backs off exponentially. Every replica runs the loop; a row is claimed by a
//! conditional update before it is sent, and the adapter is idempotent by request id,
//! so a rare double send is harmless.
//!
//! A notice the municipality refuses (a 4xx other than 408/429) is retried too, but
//! after `dead_letter_after_rejections` refusals it becomes a dead letter: an alert
//! names it, and it waits for `center notices requeue` (after the municipality fixed
//! its side). Network errors and 5xx are retried with back-off indefinitely.

use std::time::Duration;

use futures_util::stream::{self, StreamExt as _};
use futures_util::FutureExt as _;

use schemas::{
    CertificateType, Digest32, IssuanceNotice, KeyPair, KioskId, MunicipalityCode, OperatorId,
    RequestId, Signed,
};
use sqlx::{AnyConnection, AnyPool, Row as _};

use crate::adapter_client::{AdapterClient, UpstreamError};
use crate::configuration::NoticeSettings;
use crate::directory::Directory;
use crate::store::{Decision, Store};

/// Notices sent per round (bounded work per round).
const BATCH: i64 = 64;
/// Rounds per delivery call: at most `MAX_ROUNDS × BATCH` notices per interval.
const MAX_ROUNDS: usize = 16;
/// Notices in flight at once within a round (bounded load on the adapters).
const MAX_CONCURRENT_SENDS: usize = 16;
/// After this many failed attempts every further failure is logged as an alert.
const ALERT_AFTER_ATTEMPTS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
}

/// What one delivery round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    pub delivered: u64,
    pub failed: u64,
    /// Of the failed, those that became dead letters in this round.
    pub dead: u64,
}

/// A notice this replica claimed for one round.
struct Claimed {
    request_id: String,
    municipality: String,
    attempts: i64,
    rejections: i64,
}

/// A failed attempt's counters as they are recorded (and logged) after it.
struct Failed {
    reason: String,
    attempts: i64,
    rejections: i64,
    dead: bool,
}

/// Why one attempt failed; `refused` when the municipality answered 4xx (not 408/429).
struct SendFailure {
    reason: String,
    refused: bool,
}

/// A failed attempt as it is written back.
struct FailureRecord {
    request_id: String,
    attempts: i64,
    next_attempt_at_unix_ms: i64,
    reason: String,
    rejections: i64,
    dead_at_unix_ms: Option<i64>,
}

/// Writes a round's results: delivered notices in one statement, failures one by one.
async fn record_results(
    connection: &mut AnyConnection,
    delivered: &[String],
    failures: &[FailureRecord],
    now_unix_ms: i64,
) -> Result<(), NoticeError> {
    if !delivered.is_empty() {
        let placeholders: Vec<String> = (0..delivered.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "UPDATE outcome_notices SET delivered_at_unix_ms = $1, \
               attempts = attempts + 1, last_error = NULL WHERE request_id IN ({})",
            placeholders.join(", ")
        );
        let mut update = sqlx::query(&sql).bind(now_unix_ms);
        for request_id in delivered {
            update = update.bind(request_id);
        }
        update.execute(&mut *connection).await?;
    }
    for failure in failures {
        sqlx::query(
            "UPDATE outcome_notices SET attempts = $1, next_attempt_at_unix_ms = $2, \
               last_error = $3, rejections = $4, dead_at_unix_ms = $5 \
             WHERE request_id = $6",
        )
        .bind(failure.attempts)
        .bind(failure.next_attempt_at_unix_ms)
        .bind(&failure.reason)
        .bind(failure.rejections)
        .bind(failure.dead_at_unix_ms)
        .bind(&failure.request_id)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Puts dead letters back in the queue (`center notices requeue`): the given request's,
/// or every one. Returns how many were requeued.
pub async fn requeue(
    store: &Store,
    request_id: Option<&str>,
    now_unix_ms: i64,
) -> Result<u64, NoticeError> {
    let request_id = request_id.map(str::to_owned);
    store
        .write(move |connection| {
            async move {
                let result =
                    match &request_id {
                        Some(id) => sqlx::query(
                            "UPDATE outcome_notices SET dead_at_unix_ms = NULL, rejections = 0, \
                               next_attempt_at_unix_ms = $1 \
                             WHERE request_id = $2 AND dead_at_unix_ms IS NOT NULL",
                        )
                        .bind(now_unix_ms)
                        .bind(id)
                        .execute(&mut *connection)
                        .await?,
                        None => sqlx::query(
                            "UPDATE outcome_notices SET dead_at_unix_ms = NULL, rejections = 0, \
                               next_attempt_at_unix_ms = $1 WHERE dead_at_unix_ms IS NOT NULL",
                        )
                        .bind(now_unix_ms)
                        .execute(&mut *connection)
                        .await?,
                    };
                Ok::<_, NoticeError>(Decision::Commit(result.rows_affected()))
            }
            .boxed()
        })
        .await
}

/// Delivery state of one notice, for tests and operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoticeRow {
    pub request_id: String,
    pub municipality_code: String,
    pub attempts: i64,
    pub next_attempt_at_unix_ms: i64,
    pub delivered_at_unix_ms: Option<i64>,
    pub last_error: Option<String>,
    pub rejections: i64,
    pub dead_at_unix_ms: Option<i64>,
}

pub async fn list(pool: &AnyPool) -> Result<Vec<NoticeRow>, NoticeError> {
    let rows = sqlx::query(
        "SELECT request_id, municipality_code, attempts, next_attempt_at_unix_ms, \
           delivered_at_unix_ms, last_error, rejections, dead_at_unix_ms \
         FROM outcome_notices ORDER BY created_at_unix_ms",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NoticeRow {
                request_id: row.try_get("request_id")?,
                municipality_code: row.try_get("municipality_code")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at_unix_ms: row.try_get("next_attempt_at_unix_ms")?,
                delivered_at_unix_ms: row.try_get("delivered_at_unix_ms")?,
                last_error: row.try_get("last_error")?,
                rejections: row.try_get("rejections")?,
                dead_at_unix_ms: row.try_get("dead_at_unix_ms")?,
            })
        })
        .collect()
}

/// Everything a delivery round needs.
pub struct Deliverer<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub adapters: &'a AdapterClient,
    pub center_key: &'a KeyPair,
    pub settings: &'a NoticeSettings,
}

impl Deliverer<'_> {
    /// Sends every notice due at `now_unix_ms`, a batch per round, until a round finds
    /// fewer than a batch due or `MAX_ROUNDS` rounds ran (bounded work per call; the
    /// next interval goes on). One batch per interval would cap delivery at `BATCH`
    /// notices per interval, below the issuance rate under load.
    pub async fn deliver_due(&self, now_unix_ms: i64) -> Result<DeliverySummary, NoticeError> {
        let mut summary = DeliverySummary::default();
        for _ in 0..MAX_ROUNDS {
            let (round, full) = self.deliver_round(now_unix_ms).await?;
            summary.delivered += round.delivered;
            summary.failed += round.failed;
            summary.dead += round.dead;
            if !full {
                break;
            }
        }
        Ok(summary)
    }

    /// One round: read at most `BATCH` due notices, claim them in one transaction,
    /// send them (at most `MAX_CONCURRENT_SENDS` at a time), record every result in
    /// one transaction. Two commits per round rather than two per notice. Returns the
    /// round's summary and whether a full batch was due.
    async fn deliver_round(
        &self,
        now_unix_ms: i64,
    ) -> Result<(DeliverySummary, bool), NoticeError> {
        let due = sqlx::query(
            "SELECT n.request_id, n.attempts, n.rejections, n.next_attempt_at_unix_ms, \
               i.municipality_code, \
               i.card_digest, i.certificate_type, i.copies, i.page_count, i.paid_yen, \
               i.document_sha256, i.operator_id, i.kiosk_id, i.printed_at_unix_ms \
             FROM outcome_notices n JOIN issuances i ON i.request_id = n.request_id \
             WHERE n.delivered_at_unix_ms IS NULL AND n.dead_at_unix_ms IS NULL \
               AND n.next_attempt_at_unix_ms <= $1 \
             ORDER BY n.next_attempt_at_unix_ms LIMIT $2",
        )
        .bind(now_unix_ms)
        .bind(BATCH)
        .fetch_all(self.store.pool())
        .await?;
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= BATCH;
        if due.is_empty() {
            return Ok((DeliverySummary::default(), false));
        }

        // Claim: push each next attempt past this one's timeout, conditional on no
        // other replica having claimed it since we read it.
        let claim_until = now_unix_ms.saturating_add(
            i64::try_from(self.settings.timeout_ms.saturating_mul(2)).unwrap_or(i64::MAX),
        );
        // One statement for the whole batch (it is atomic on its own): on SQLite the
        // write lock is held for one statement rather than across a round trip per
        // notice. Each row's own condition is kept, so the claim is exact.
        let mut candidates = Vec::with_capacity(due.len());
        for row in &due {
            let request_id: String = row.try_get("request_id")?;
            let attempts: i64 = row.try_get("attempts")?;
            let scheduled: i64 = row.try_get("next_attempt_at_unix_ms")?;
            candidates.push((request_id, attempts, scheduled));
        }
        let conditions: Vec<String> = (0..candidates.len())
            .map(|row| {
                let first = 2 + row * 3;
                format!(
                    "(request_id = ${} AND attempts = ${} AND next_attempt_at_unix_ms = ${})",
                    first,
                    first + 1,
                    first + 2
                )
            })
            .collect();
        let sql = format!(
            "UPDATE outcome_notices SET next_attempt_at_unix_ms = $1 \
             WHERE delivered_at_unix_ms IS NULL AND ({}) RETURNING request_id",
            conditions.join(" OR ")
        );
        let claim_rows = candidates.clone();
        let won: std::collections::HashSet<String> = self
            .store
            .write(move |connection| {
                async move {
                    let mut claim = sqlx::query(&sql).bind(claim_until);
                    for (request_id, attempts, scheduled) in &claim_rows {
                        claim = claim.bind(request_id).bind(*attempts).bind(*scheduled);
                    }
                    let won = claim
                        .fetch_all(&mut *connection)
                        .await?
                        .iter()
                        .map(|row| row.try_get::<String, _>("request_id"))
                        .collect::<Result<_, _>>()?;
                    Ok::<_, NoticeError>(Decision::Commit(won))
                }
                .boxed()
            })
            .await?;
        assert!(won.len() <= due.len());
        let mut claimed = Vec::with_capacity(won.len());
        for (row, (request_id, attempts, _)) in due.iter().zip(candidates) {
            if won.contains(&request_id) {
                let claim = Claimed {
                    request_id,
                    municipality: row.try_get("municipality_code")?,
                    attempts,
                    rejections: row.try_get("rejections")?,
                };
                claimed.push((claim, notice_of(row)));
            }
        }

        let results: Vec<(Claimed, Result<(), Failed>)> = stream::iter(claimed)
            .map(|(claim, notice)| self.send_claimed(claim, notice))
            .buffer_unordered(MAX_CONCURRENT_SENDS)
            .collect()
            .await;

        let mut summary = DeliverySummary::default();
        // Delivered notices in one statement (the common case); failures one by one,
        // each with its own counters.
        let delivered: Vec<String> = results
            .iter()
            .filter(|(_, result)| result.is_ok())
            .map(|(claim, _)| claim.request_id.clone())
            .collect();
        let failures: Vec<FailureRecord> = results
            .iter()
            .filter_map(|(claim, result)| {
                let failed = result.as_ref().err()?;
                Some(FailureRecord {
                    request_id: claim.request_id.clone(),
                    attempts: failed.attempts,
                    next_attempt_at_unix_ms: now_unix_ms
                        .saturating_add(backoff_ms(self.settings, failed.attempts)),
                    reason: failed.reason.clone(),
                    rejections: failed.rejections,
                    dead_at_unix_ms: failed.dead.then_some(now_unix_ms),
                })
            })
            .collect();
        summary.delivered = delivered.len() as u64;
        summary.failed = failures.len() as u64;
        summary.dead = failures
            .iter()
            .filter(|f| f.dead_at_unix_ms.is_some())
            .count() as u64;
        self.store
            .write(move |connection| {
                async move {
                    record_results(connection, &delivered, &failures, now_unix_ms).await?;
                    Ok::<_, NoticeError>(Decision::Commit(()))
                }
                .boxed()
            })
            .await?;

        // Logged once the results are recorded, so a log line never claims what the
        // store does not hold.
        for (claim, result) in &results {
            let request_id = &claim.request_id;
            let municipality = &claim.municipality;
            match result {
                Ok(()) => tracing::info!(%request_id, "outcome notice delivered"),
                Err(Failed {
                    reason,
                    attempts,
                    rejections,
                    dead: true,
                }) => {
                    tracing::error!(alert = "notice_dead_letter", %request_id, %municipality, attempts, rejections, %reason, "outcome notice refused by the municipality; no more attempts until requeued");
                }
                Err(Failed {
                    reason, attempts, ..
                }) if *attempts >= ALERT_AFTER_ATTEMPTS => {
                    tracing::error!(alert = "notice_undelivered", %request_id, %municipality, attempts, %reason, "outcome notice still undelivered");
                }
                Err(Failed {
                    reason, attempts, ..
                }) => {
                    tracing::warn!(%request_id, attempts, %reason, "outcome notice not delivered; will retry");
                }
            }
        }
        Ok((summary, full))
    }

    /// Sends one claimed notice (or fails it when the store could not give it) and
    /// works out the counters a failure leaves.
    async fn send_claimed(
        &self,
        claim: Claimed,
        notice: Result<IssuanceNotice, String>,
    ) -> (Claimed, Result<(), Failed>) {
        let sent = match notice {
            Ok(notice) => self.send(notice).await,
            Err(reason) => Err(SendFailure {
                reason,
                refused: false,
            }),
        };
        let result = sent.map_err(|SendFailure { reason, refused }| {
            let rejections = claim.rejections.saturating_add(i64::from(refused));
            Failed {
                reason,
                attempts: claim.attempts.saturating_add(1),
                rejections,
                dead: rejections >= i64::from(self.settings.dead_letter_after_rejections.max(1)),
            }
        });
        (claim, result)
    }

    async fn send(&self, notice: IssuanceNotice) -> Result<(), SendFailure> {
        let transient = |reason: String| SendFailure {
            reason,
            refused: false,
        };
        let municipality = self
            .directory
            .municipality(&notice.municipality_code)
            .ok_or_else(|| {
                transient(format!(
                    "municipality {} is not configured",
                    notice.municipality_code
                ))
            })?;
        let signed = Signed::sign(notice, self.center_key).map_err(|e| transient(e.to_string()))?;
        self.adapters
            .send_notice(
                &municipality.adapter_url,
                &signed,
                Duration::from_millis(self.settings.timeout_ms),
            )
            .await
            .map(|_ack| ())
            .map_err(|e| match e {
                UpstreamError::Rejected { status, body } => SendFailure {
                    reason: format!(
                        "rejected with {status} {}",
                        body.map(|b| format!("{}: {}", b.code, b.message))
                            .unwrap_or_default()
                    ),
                    // 408 and 429 say "not now"; any other 4xx says "not this".
                    refused: (400..500).contains(&status) && status != 408 && status != 429,
                },
                other => transient(other.to_string()),
            })
    }
}

/// `initial × 2^(attempts−1)`, capped at `max_backoff_ms`.
pub fn backoff_ms(settings: &NoticeSettings, attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = settings
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(settings.max_backoff_ms);
    i64::try_from(delay).unwrap_or(i64::MAX)
}

fn notice_of(row: &sqlx::any::AnyRow) -> Result<IssuanceNotice, String> {
    fn field<T>(
        row: &sqlx::any::AnyRow,
        name: &str,
        parse: impl FnOnce(String) -> Option<T>,
    ) -> Result<T, String> {
        let text: Option<String> = row.try_get(name).map_err(|e| e.to_string())?;
        text.and_then(parse)
            .ok_or_else(|| format!("stored {name} is missing or malformed"))
    }
    fn number<T: TryFrom<i64>>(row: &sqlx::any::AnyRow, name: &str) -> Result<T, String> {
        let value: Option<i64> = row.try_get(name).map_err(|e| e.to_string())?;
        value
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| format!("stored {name} is missing or out of range"))
    }
    Ok(IssuanceNotice {
        request_id: field(row, "request_id", |t| t.parse::<RequestId>().ok())?,
        municipality_code: field(row, "municipality_code", |t| {
            MunicipalityCode::parse(&t).ok()
        })?,
        card_digest: field(row, "card_digest", |t| Digest32::try_from(t).ok())?,
        certificate_type: field(row, "certificate_type", |t| CertificateType::parse(&t))?,
        copies: number(row, "copies")?,
        page_count: number(row, "page_count")?,
        total_fee_yen: number(row, "paid_yen")?,
        document_sha256: field(row, "document_sha256", |t| Digest32::try_from(t).ok())?,
        operator_id: field(row, "operator_id", |t| OperatorId::parse(t).ok())?,
        kiosk_id: field(row, "kiosk_id", |t| KioskId::parse(t).ok())?,
        printed_at_unix_ms: number(row, "printed_at_unix_ms")?,
    })
}
