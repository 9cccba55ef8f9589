//! The idempotency store: every signed answer, kept byte-for-byte under the center's
//! request id together with the digest of the canonical fetch it answers.
//!
//! Replaying the stored bytes (rather than rebuilding the answer) is what makes a retry
//! safe: the center gets exactly what it may already have half-received, with the same
//! seals and timestamps, never a second, different certificate for one request.

use schemas::{MunicipalityCode, RequestId};

/// How long answers (which hold certificate content) are kept for replay. The center's
/// retries come within a request's deadline, seconds after the first attempt; a month
/// leaves room for investigating incidents without keeping copies forever.
pub const ANSWER_RETENTION_DAYS: i64 = 30;
use sqlx::sqlite::SqlitePool;
use sqlx::Row as _;

/// A stored answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    /// Lower-case hex SHA-256 of the fetch's signed bytes (domain tag + JCS payload).
    pub fetch_sha256: String,
    /// The signed answer exactly as it was first sent.
    pub answer_json: String,
}

/// What happened to an attempt to store a fresh answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Ours is now the answer for this request id.
    Inserted,
    /// Another attempt stored an answer first (a concurrent retry); that one wins.
    AlreadyStored(StoredAnswer),
}

#[derive(Clone, Debug)]
pub struct AnswerStore {
    pool: SqlitePool,
}

impl AnswerStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub async fn find(&self, request_id: RequestId) -> Result<Option<StoredAnswer>, sqlx::Error> {
        let row = sqlx::query("SELECT fetch_sha256, answer_json FROM answers WHERE request_id = ?")
            .bind(request_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(StoredAnswer {
                fetch_sha256: row.try_get("fetch_sha256")?,
                answer_json: row.try_get("answer_json")?,
            })
        })
        .transpose()
    }

    /// The signed answer JSON for `request_id`, only if it was answered for
    /// `municipality` (one adapter may serve several; each sees only its own).
    pub async fn find_in(
        &self,
        request_id: RequestId,
        municipality: MunicipalityCode,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT answer_json FROM answers WHERE request_id = ? AND municipality_code = ?",
        )
        .bind(request_id.to_string())
        .bind(municipality.to_string())
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores `answer_json` unless an answer for `request_id` exists; the primary key
    /// decides between concurrent first attempts, so exactly one of them wins.
    pub async fn insert_or_get(
        &self,
        request_id: RequestId,
        municipality_code: MunicipalityCode,
        fetch_sha256: &str,
        answer_json: &str,
        now_unix_s: i64,
    ) -> Result<StoreOutcome, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO answers (request_id, municipality_code, fetch_sha256, answer_json, created_at_unix_s) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(request_id.to_string())
        .bind(municipality_code.to_string())
        .bind(fetch_sha256)
        .bind(answer_json)
        .bind(now_unix_s)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(StoreOutcome::Inserted);
        }
        match self.find(request_id).await? {
            Some(existing) => Ok(StoreOutcome::AlreadyStored(existing)),
            // Rows are never deleted while the server runs, so the conflicting row is
            // there; report it as a database inconsistency rather than guessing.
            None => Err(sqlx::Error::RowNotFound),
        }
    }

    /// Deletes answers stored before `cutoff_unix_s` and returns how many. Safe for
    /// idempotency: a fetch that old is past its deadline, so a retry of it gets 504
    /// rather than a fresh answer.
    pub async fn purge_older_than(&self, cutoff_unix_s: i64) -> Result<u64, sqlx::Error> {
        Ok(
            sqlx::query("DELETE FROM answers WHERE created_at_unix_s < ?")
                .bind(cutoff_unix_s)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub async fn count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM answers")
            .fetch_one(&self.pool)
            .await
    }
}
