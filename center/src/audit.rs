//! 監査ログ (the tamper-evident audit log) over `audit_events`.
//!
//! Three layers, each catching what the one before cannot:
//! - **Guards** ([`install_guards`]): triggers make the database refuse UPDATE, DELETE
//!   (and on PostgreSQL TRUNCATE) of `audit_events`, `audit_batches` and
//!   `audit_batch_members`. Syntax differs per back-end, so they are installed from code
//!   after the migrations, idempotently.
//! - **Seals** ([`seal_pending`]): events not yet in a batch (queued in
//!   `audit_seal_queue` by the transaction that appends them) are taken in (time, id)
//!   order, hashed into an RFC 6962 Merkle tree, and summed up in a header signed with
//!   the center's key that chains the previous header (`schemas::audit`). Replicas may
//!   seal concurrently: the batch number is a primary key, the parent digest and each
//!   member are unique, so of two racing sealers one fails cleanly ([`AuditError::Conflict`])
//!   and the chain never forks.
//! - **Verification** ([`verify`]): recomputes every batch from the rows, so an
//!   attacker who drops the guards and edits rows is still found out; truncation of
//!   whole trailing batches only against a published head.

use schemas::audit::{
    audit_path, header_sha256, merkle_root, AuditEvent, AuditProof, BatchHeader, EventInclusion,
    ExportHeader, ExportLine, ExportTrailer, IssuanceRecord, SignedBatchHeader, EXPORT_FORMAT,
    EXPORT_SIGNATURE_DOMAIN, GENESIS_PREV_SHA256, PROOF_FORMAT,
};
use schemas::b64::Base64Bytes;
use schemas::settlement::DetachedSignature;
use schemas::{KeyPair, Kid, PublicKey, SignatureBytes, Signed};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row as _};

use crate::store::{Decision, Store};
use futures_util::{FutureExt as _, TryStreamExt as _};

/// Upper bound on the events of one batch.
pub const MAX_BATCH_EVENTS: u32 = 65_536;
/// Events sealed per batch by default by `center audit seal`.
pub const DEFAULT_BATCH_EVENTS: u32 = 1_024;
/// Events per batch sealed by a running center ([`seal_in_rounds`]): a seal is one write
/// that every issuance on SQLite queues behind, and 1,024 members held the writer
/// ~15 ms; 256 hold it a few.
pub const ROUND_BATCH_EVENTS: u32 = 256;

/// Members written per `INSERT` when sealing (4 bound values each: far below both
/// back-ends' limits on bound parameters, 32,766 in SQLite and 65,535 in PostgreSQL).
const MEMBER_ROWS_PER_INSERT: usize = 256;
/// Unsealed events older than this are suspicious by default (a running center seals
/// every second).
pub const DEFAULT_GRACE_MS: i64 = 60_000;
/// Problems a verification lists before it stops collecting (it still counts them).
const MAX_REPORTED_PROBLEMS: usize = 100;
/// Events of one request in a proof (a request has a handful).
const MAX_PROOF_EVENTS: i64 = 1_000;

/// Tables the database refuses to update or delete from.
pub const GUARDED_TABLES: [&str; 3] = ["audit_events", "audit_batches", "audit_batch_members"];

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Another sealer won the race (same batch number, parent or event): retry later.
    #[error("another sealer took batch {batch_no} first; retry: {detail}")]
    Conflict { batch_no: u64, detail: String },
    #[error("signing: {0}")]
    Signing(#[from] schemas::SigningError),
    #[error("stored audit data is malformed: {0}")]
    Corrupt(String),
    #[error("request {request_id} has no audit event")]
    UnknownRequest { request_id: String },
    #[error("request {request_id}: event {event_id} is not sealed yet (run `center audit seal`)")]
    NotSealed {
        request_id: String,
        event_id: String,
    },
    #[error("{0}")]
    BadArgument(String),
}

/// Which SQL dialect the pool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn backend(pool: &AnyPool) -> Result<Backend, AuditError> {
    let conn = pool.acquire().await?;
    match conn.backend_name() {
        "SQLite" => Ok(Backend::Sqlite),
        "PostgreSQL" => Ok(Backend::Postgres),
        other => Err(AuditError::BadArgument(format!(
            "unsupported database back-end {other}"
        ))),
    }
}

/// Installs the append-only triggers on [`GUARDED_TABLES`]; idempotent, safe for
/// several replicas at once. Call after the migrations, at every start.
pub async fn install_guards(pool: &AnyPool) -> Result<(), AuditError> {
    match backend(pool).await? {
        Backend::Sqlite => {
            for table in GUARDED_TABLES {
                for op in ["UPDATE", "DELETE"] {
                    let sql = format!(
                        "CREATE TRIGGER IF NOT EXISTS {table}_no_{} BEFORE {op} ON {table} \
                         BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END",
                        op.to_lowercase()
                    );
                    sqlx::query(&sql).execute(pool).await?;
                }
            }
        }
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            // Replicas start together: concurrent CREATE OR REPLACE on one function
            // fails with "tuple concurrently updated"; the lock serialises them.
            sqlx::query("SELECT pg_advisory_xact_lock(824301)")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "CREATE OR REPLACE FUNCTION kofu_append_only() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP; \
                 END $$",
            )
            .execute(&mut *tx)
            .await?;
            for table in GUARDED_TABLES {
                sqlx::query(&format!(
                    "CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE \
                     ON {table} FOR EACH ROW EXECUTE FUNCTION kofu_append_only()"
                ))
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE \
                     ON {table} FOR EACH STATEMENT EXECUTE FUNCTION kofu_append_only()"
                ))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "e.event_id, e.request_id, e.at_unix_ms, e.event, e.from_state, \
                             e.to_state, e.detail";

fn row_to_event(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    Ok(AuditEvent {
        event_id: row.try_get("event_id")?,
        request_id: row.try_get("request_id")?,
        at_unix_ms: row.try_get("at_unix_ms")?,
        event: row.try_get("event")?,
        from_state: row.try_get("from_state")?,
        to_state: row.try_get("to_state")?,
        detail: row.try_get("detail")?,
    })
}

struct BatchRow {
    header: SignedBatchHeader,
    header_sha256: String,
}

fn to_u64(value: i64, what: &str) -> Result<u64, AuditError> {
    u64::try_from(value).map_err(|_| AuditError::Corrupt(format!("{what} is negative: {value}")))
}

fn row_to_batch(row: &AnyRow) -> Result<BatchRow, AuditError> {
    let kid: String = row.try_get("center_kid")?;
    let signature: String = row.try_get("signature")?;
    let batch_no = to_u64(row.try_get("batch_no")?, "batch_no")?;
    let corrupt =
        |what: &str, e: String| AuditError::Corrupt(format!("batch {batch_no}: {what}: {e}"));
    let kid = Kid::try_from(kid).map_err(|e| corrupt("center_kid", e.to_string()))?;
    let signature = Base64Bytes::decode(&signature)
        .map_err(|e| corrupt("signature", e.to_string()))
        .and_then(|b| {
            SignatureBytes::try_from(Base64Bytes::from(b))
                .map_err(|e| corrupt("signature", e.to_string()))
        })?;
    Ok(BatchRow {
        header: Signed {
            payload: BatchHeader {
                batch_no,
                leaf_count: to_u64(row.try_get("leaf_count")?, "leaf_count")?,
                merkle_root: row.try_get("merkle_root")?,
                prev_header_sha256: row.try_get("prev_header_sha256")?,
                sealed_at_unix_ms: row.try_get("sealed_at_unix_ms")?,
            },
            kid,
            signature,
        },
        header_sha256: row.try_get("header_sha256")?,
    })
}

const BATCH_COLUMNS: &str = "batch_no, leaf_count, merkle_root, prev_header_sha256, \
                             header_sha256, sealed_at_unix_ms, center_kid, signature";

fn is_race(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                // SQLite: the snapshot went stale or the writer lock stayed busy.
                || matches!(db.code().as_deref(), Some("5" | "517" | "6"))
                // PostgreSQL: serialization failure.
                || db.code().as_deref() == Some("40001")
        }
        _ => false,
    }
}

/// Seals up to `max_events` unsealed events into the next batch, in one transaction.
/// `Ok(None)` when nothing waits. [`AuditError::Conflict`] when another sealer took the
/// same batch or events first: nothing was written, retry on the next sweep.
///
/// The head and the unsealed events (`audit_seal_queue`, in time order) are read,
/// hashed and signed on the pool, outside the write: on SQLite the write path is one
/// writer for every issuance. The write then inserts the batch and its members and takes
/// them off the queue; had another sealer sealed meanwhile, the primary keys (batch
/// number, member event id), the unique previous-header digest or the queue rows already
/// gone refuse it whole.
pub async fn seal_pending(
    store: &Store,
    center_key: &KeyPair,
    now_unix_ms: i64,
    max_events: u32,
) -> Result<Option<SignedBatchHeader>, AuditError> {
    if max_events == 0 || max_events > MAX_BATCH_EVENTS {
        return Err(AuditError::BadArgument(format!(
            "max_events must be 1..={MAX_BATCH_EVENTS}, got {max_events}"
        )));
    }
    let pool = store.pool();
    let head = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM audit_batches ORDER BY batch_no DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    let (prev_no, prev_sha256) = match head {
        Some(row) => {
            let batch = row_to_batch(&row)?;
            (batch.header.payload.batch_no, batch.header_sha256)
        }
        None => (0, GENESIS_PREV_SHA256.to_owned()),
    };
    let batch_no = prev_no + 1;
    // The queue, not an anti-join over every event ever written: this read costs what
    // waits, however long the log has grown.
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM audit_seal_queue q \
         JOIN audit_events e ON e.event_id = q.event_id \
         ORDER BY q.at_unix_ms, q.event_id LIMIT $1"
    ))
    .bind(i64::from(max_events))
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let events = rows
        .iter()
        .map(row_to_event)
        .collect::<Result<Vec<_>, _>>()?;
    let leaves = events
        .iter()
        .map(AuditEvent::leaf_hash)
        .collect::<Result<Vec<_>, _>>()?;
    assert!(leaves.len() <= max_events as usize);
    let header = BatchHeader {
        batch_no,
        leaf_count: leaves.len() as u64,
        merkle_root: hex::encode(merkle_root(&leaves)),
        prev_header_sha256: prev_sha256,
        sealed_at_unix_ms: now_unix_ms,
    };
    let digest = header_sha256(&header)?;
    let signed = Signed::sign(header, center_key)?;
    let members: Vec<(String, String)> = events
        .into_iter()
        .zip(&leaves)
        .map(|(event, leaf)| (event.event_id, hex::encode(leaf)))
        .collect();
    let sealed = signed.clone();
    let written = store
        .write(move |connection| {
            async move {
                insert_batch(connection, &sealed, &digest, &members).await?;
                Ok::<_, AuditError>(Decision::Commit(()))
            }
            .boxed()
        })
        .await;
    match written {
        Ok(()) => Ok(Some(signed)),
        Err(AuditError::Db(error)) if is_race(&error) => Err(AuditError::Conflict {
            batch_no,
            detail: error.to_string(),
        }),
        Err(other) => Err(other),
    }
}

/// Writes a signed batch header and its members, `(event id, leaf hash hex)` in leaf
/// order, and takes the members off the seal queue.
async fn insert_batch(
    connection: &mut AnyConnection,
    signed: &SignedBatchHeader,
    header_sha256: &str,
    members: &[(String, String)],
) -> Result<(), AuditError> {
    let batch_no = i64::try_from(signed.payload.batch_no)
        .map_err(|_| AuditError::BadArgument(format!("batch {}", signed.payload.batch_no)))?;
    sqlx::query(&format!(
        "INSERT INTO audit_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(batch_no)
    .bind(signed.payload.leaf_count as i64)
    .bind(&signed.payload.merkle_root)
    .bind(&signed.payload.prev_header_sha256)
    .bind(header_sha256)
    .bind(signed.payload.sealed_at_unix_ms)
    .bind(signed.kid.to_string())
    .bind(Base64Bytes::encode(&signed.signature.0))
    .execute(&mut *connection)
    .await?;
    // Many rows per statement: a statement per member (1,024 round trips to the
    // database thread) kept every issuance waiting behind a seal on SQLite.
    for (chunk_no, chunk) in members.chunks(MEMBER_ROWS_PER_INSERT).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * 4;
                format!(
                    "(${}, ${}, ${}, ${})",
                    first + 1,
                    first + 2,
                    first + 3,
                    first + 4
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_batch_members (event_id, batch_no, leaf_index, leaf_hash) \
             VALUES {}",
            values.join(", ")
        );
        let mut insert = sqlx::query(&sql);
        for (row, (event_id, leaf_hex)) in chunk.iter().enumerate() {
            let leaf_index = chunk_no * MEMBER_ROWS_PER_INSERT + row;
            insert = insert
                .bind(event_id)
                .bind(batch_no)
                .bind(leaf_index as i64)
                .bind(leaf_hex);
        }
        let inserted = insert.execute(&mut *connection).await?;
        assert_eq!(inserted.rows_affected(), chunk.len() as u64);
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "DELETE FROM audit_seal_queue WHERE event_id IN ({})",
            placeholders.join(", ")
        );
        let mut dequeue = sqlx::query(&sql);
        for (event_id, _) in chunk {
            dequeue = dequeue.bind(event_id);
        }
        let dequeued = dequeue.execute(&mut *connection).await?.rows_affected();
        if dequeued != chunk.len() as u64 {
            // Another sealer took some of these events off the queue first.
            return Err(AuditError::Conflict {
                batch_no: signed.payload.batch_no,
                detail: format!(
                    "{} of {} events were no longer queued for sealing",
                    chunk.len() as u64 - dequeued,
                    chunk.len()
                ),
            });
        }
    }
    Ok(())
}

/// One round of a running center's sealer (every replica): seals up to `max_batches`
/// batches of [`ROUND_BATCH_EVENTS`]; returns the events sealed. Losing a race to
/// another replica is normal and ends the round quietly: the winner sealed those events.
pub async fn seal_in_rounds(
    store: &Store,
    center_key: &KeyPair,
    now_unix_ms: i64,
    max_batches: u32,
) -> Result<u64, AuditError> {
    let mut sealed = 0;
    for _ in 0..max_batches {
        match seal_pending(store, center_key, now_unix_ms, ROUND_BATCH_EVENTS).await {
            Ok(Some(header)) => sealed += header.payload.leaf_count,
            Ok(None) => break,
            Err(AuditError::Conflict { batch_no, .. }) => {
                tracing::debug!(batch_no, "another replica sealed this batch first");
                break;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(sealed)
}

/// Adds a problem for each row of `sql`, which selects `event_id` and an integer `at`.
async fn report_dangling(
    pool: &AnyPool,
    report: &mut VerifyReport,
    sql: &str,
    describe: impl Fn(&str, i64) -> String,
) -> Result<(), AuditError> {
    for row in sqlx::query(sql).fetch_all(pool).await? {
        let event_id: String = row.try_get("event_id")?;
        let at: i64 = row.try_get("at")?;
        report.problem(describe(&event_id, at));
    }
    Ok(())
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub batches: u64,
    pub sealed_events: u64,
    /// Unsealed events younger than the grace (normal between two seals).
    pub unsealed_recent: u64,
    /// `batch count:header digest` of the last batch (`0:` + genesis when empty).
    pub head: String,
    /// Every inconsistency, each naming its batch and event where known.
    pub problems: Vec<String>,
    /// Problems beyond the listed ones.
    pub more_problems: u64,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(text);
        } else {
            self.more_problems += 1;
        }
    }
}

/// Recomputes every batch from the rows: signatures, chain, counts, leaf order, roots,
/// and events left out of every batch for longer than `grace_ms`. `expect_head` is a
/// published header digest (hex), which must be one of the chain's headers.
pub async fn verify(
    pool: &AnyPool,
    center_key: &PublicKey,
    now_unix_ms: i64,
    grace_ms: i64,
    expect_head: Option<&str>,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport::default();
    let batch_rows = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM audit_batches ORDER BY batch_no"
    ))
    .fetch_all(pool)
    .await?;
    let mut prev_sha256 = GENESIS_PREV_SHA256.to_owned();
    let mut expected_no = 1u64;
    let mut head_found = false;
    for row in &batch_rows {
        let batch = match row_to_batch(row) {
            Ok(batch) => batch,
            Err(error) => {
                report.problem(error.to_string());
                continue;
            }
        };
        let header = &batch.header.payload;
        let no = header.batch_no;
        if no != expected_no {
            report.problem(format!(
                "batch {expected_no} is missing (next stored batch is {no})"
            ));
            expected_no = no;
        }
        expected_no += 1;
        if let Err(error) = batch.header.verify(center_key) {
            report.problem(format!("batch {no}: header signature: {error}"));
        }
        if header.prev_header_sha256 != prev_sha256 {
            report.problem(format!(
                "batch {no}: chains {} but the previous header's digest is {prev_sha256}",
                header.prev_header_sha256
            ));
        }
        let digest = header_sha256(header)?;
        if digest != batch.header_sha256 {
            report.problem(format!(
                "batch {no}: stored header digest {} differs from the header's {digest}",
                batch.header_sha256
            ));
        }
        if expect_head.is_some_and(|h| h.eq_ignore_ascii_case(&digest)) {
            head_found = true;
        }
        prev_sha256 = digest;
        verify_members(pool, header, &mut report).await?;
        report.batches += 1;
    }
    report.head = format!("{}:{prev_sha256}", report.batches);
    if let Some(expected) = expect_head {
        if !head_found {
            report.problem(format!(
                "the published head {expected} is not in the chain (head is {}): batches were \
                 removed or rewritten",
                report.head
            ));
        }
    }
    // Rows that point at nothing: a member of no batch, or a queue entry whose event is
    // gone (the queue is no evidence, but such an entry shows an event deleted before
    // any batch could hold it).
    report_dangling(
        pool,
        &mut report,
        "SELECT m.event_id, m.batch_no AS at FROM audit_batch_members m WHERE NOT EXISTS \
         (SELECT 1 FROM audit_batches b WHERE b.batch_no = m.batch_no) \
         ORDER BY m.batch_no, m.leaf_index LIMIT 100",
        |event_id, batch_no| {
            format!("event {event_id} is a member of batch {batch_no}, which does not exist")
        },
    )
    .await?;
    report_dangling(
        pool,
        &mut report,
        "SELECT q.event_id, q.at_unix_ms AS at FROM audit_seal_queue q WHERE NOT EXISTS \
         (SELECT 1 FROM audit_events e WHERE e.event_id = q.event_id) \
         ORDER BY q.at_unix_ms, q.event_id LIMIT 100",
        |event_id, at_unix_ms| {
            format!(
                "event {event_id} (at {at_unix_ms} ms) was queued for sealing but is not in \
                 the log: deleted before it was sealed"
            )
        },
    )
    .await?;
    // Streamed, not collected: after a long outage of sealing there may be millions.
    let unsealed_sql = format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events e WHERE NOT EXISTS \
         (SELECT 1 FROM audit_batch_members m WHERE m.event_id = e.event_id) \
         ORDER BY e.at_unix_ms, e.event_id"
    );
    let mut unsealed = sqlx::query(&unsealed_sql).fetch(pool);
    while let Some(row) = unsealed.try_next().await? {
        let event = row_to_event(&row)?;
        if event.at_unix_ms < now_unix_ms - grace_ms {
            report.problem(format!(
                "event {} (request {}, {} at {} ms) is in no batch and older than {grace_ms} ms: \
                 inserted after sealing, or no center is sealing",
                event.event_id, event.request_id, event.event, event.at_unix_ms
            ));
        } else {
            report.unsealed_recent += 1;
        }
    }
    Ok(report)
}

async fn verify_members(
    pool: &AnyPool,
    header: &BatchHeader,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let no = header.batch_no;
    let rows = sqlx::query(&format!(
        "SELECT m.event_id AS member_event_id, m.leaf_index, m.leaf_hash, {EVENT_COLUMNS} \
         FROM audit_batch_members m LEFT JOIN audit_events e ON e.event_id = m.event_id \
         WHERE m.batch_no = $1 ORDER BY m.leaf_index"
    ))
    .bind(no as i64)
    .fetch_all(pool)
    .await?;
    if rows.len() as u64 != header.leaf_count {
        report.problem(format!(
            "batch {no}: {} member rows, the signed header counts {}",
            rows.len(),
            header.leaf_count
        ));
    }
    let mut leaves = Vec::with_capacity(rows.len());
    let mut previous: Option<(i64, String)> = None;
    for (expected_index, row) in rows.iter().enumerate() {
        let member_event_id: String = row.try_get("member_event_id")?;
        let leaf_index: i64 = row.try_get("leaf_index")?;
        let stored_leaf: String = row.try_get("leaf_hash")?;
        if leaf_index != expected_index as i64 {
            report.problem(format!(
                "batch {no}: event {member_event_id} has leaf index {leaf_index}, expected {expected_index}"
            ));
        }
        let present: Option<String> = row.try_get("event_id")?;
        if present.is_none() {
            report.problem(format!(
                "batch {no} leaf {leaf_index}: event {member_event_id} was deleted"
            ));
            // Keep the stored leaf so the root check does not hide later findings.
            leaves.push(hex_leaf(&stored_leaf));
            continue;
        }
        let event = row_to_event(row)?;
        let leaf = event.leaf_hash()?;
        if hex::encode(leaf) != stored_leaf {
            report.problem(format!(
                "batch {no} leaf {leaf_index}: event {member_event_id} (request {}) was altered",
                event.request_id
            ));
        }
        let key = (event.at_unix_ms, event.event_id.clone());
        if previous.as_ref().is_some_and(|p| *p > key) {
            report.problem(format!(
                "batch {no} leaf {leaf_index}: event {member_event_id} is out of order \
                 (records reordered)"
            ));
        }
        previous = Some(key);
        leaves.push(leaf);
    }
    let root = hex::encode(merkle_root(&leaves));
    if root != header.merkle_root {
        report.problem(format!(
            "batch {no}: Merkle root of the stored events {root} differs from the signed root {} \
             (events altered, removed, inserted or reordered)",
            header.merkle_root
        ));
    }
    report.sealed_events += rows.len() as u64;
    Ok(())
}

fn hex_leaf(text: &str) -> [u8; 32] {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0u8; 32])
}

/// Inclusion proofs for every audit event of `request_id`; every event must be sealed.
pub async fn prove(pool: &AnyPool, request_id: &str) -> Result<AuditProof, AuditError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}, m.batch_no, m.leaf_index FROM audit_events e \
         LEFT JOIN audit_batch_members m ON m.event_id = e.event_id \
         WHERE e.request_id = $1 ORDER BY e.at_unix_ms, e.event_id LIMIT $2"
    ))
    .bind(request_id)
    .bind(MAX_PROOF_EVENTS)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Err(AuditError::UnknownRequest {
            request_id: request_id.to_owned(),
        });
    }
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let event = row_to_event(row)?;
        let (Some(batch_no), Some(leaf_index)) = (
            row.try_get::<Option<i64>, _>("batch_no")?,
            row.try_get::<Option<i64>, _>("leaf_index")?,
        ) else {
            return Err(AuditError::NotSealed {
                request_id: request_id.to_owned(),
                event_id: event.event_id,
            });
        };
        let batch = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM audit_batches WHERE batch_no = $1"
        ))
        .bind(batch_no)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AuditError::Corrupt(format!("batch {batch_no} is missing")))?;
        let batch = row_to_batch(&batch)?;
        let leaf_rows = sqlx::query(
            "SELECT leaf_hash FROM audit_batch_members WHERE batch_no = $1 ORDER BY leaf_index",
        )
        .bind(batch_no)
        .fetch_all(pool)
        .await?;
        let leaves = leaf_rows
            .iter()
            .map(|r| r.try_get::<String, _>("leaf_hash").map(|h| hex_leaf(&h)))
            .collect::<Result<Vec<_>, _>>()?;
        let index = to_u64(leaf_index, "leaf_index")?;
        let path = audit_path(&leaves, index as usize).ok_or_else(|| {
            AuditError::Corrupt(format!("batch {batch_no}: leaf {leaf_index} out of range"))
        })?;
        events.push(EventInclusion {
            event,
            leaf_index: index,
            audit_path: path.iter().map(hex::encode).collect(),
            header: batch.header,
        });
    }
    Ok(AuditProof {
        format: PROOF_FORMAT.to_owned(),
        request_id: request_id.to_owned(),
        events,
    })
}

/// `"konbini-kofu/v1/audit-export\0"` followed by the file's bytes.
fn export_signed_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut message = format!("konbini-kofu/v1/{EXPORT_SIGNATURE_DOMAIN}\0").into_bytes();
    message.extend_from_slice(bytes);
    message
}

/// Detached signature of an export file (the settlement reports' shape, own domain).
pub fn sign_export(file_name: &str, bytes: &[u8], key: &KeyPair) -> DetachedSignature {
    DetachedSignature {
        alg: "Ed25519".to_owned(),
        kid: key.kid(),
        file: file_name.to_owned(),
        sha256: hex::encode(schemas::sha256(bytes)),
        signature: key.sign(&export_signed_bytes(bytes)),
    }
}

/// Checks an export's detached signature and its trailer (count and digest).
pub fn verify_export(
    bytes: &[u8],
    signature: &DetachedSignature,
    key: &PublicKey,
) -> Result<Vec<IssuanceRecord>, String> {
    if signature.kid != key.kid() {
        return Err(format!(
            "signed by {}, expected {}",
            signature.kid,
            key.kid()
        ));
    }
    if signature.sha256 != hex::encode(schemas::sha256(bytes)) {
        return Err("the file's SHA-256 differs from the signature's".into());
    }
    key.verify(&export_signed_bytes(bytes), &signature.signature)
        .map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let body_len = text.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    let mut records = Vec::new();
    let mut trailer = None;
    for (number, line) in text.lines().enumerate() {
        let parsed: ExportLine =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        match (number, parsed) {
            (0, ExportLine::Header(h)) if h.format == EXPORT_FORMAT => {}
            (0, _) => return Err("line 1 is not an export header".into()),
            (_, ExportLine::Record(r)) if trailer.is_none() => records.push(r),
            (_, ExportLine::Trailer(t)) if trailer.is_none() => trailer = Some(t),
            (n, _) => return Err(format!("line {}: out of place", n + 1)),
        }
    }
    let trailer = trailer.ok_or("no trailer (truncated?)")?;
    if trailer.record_count != records.len() as u64 {
        return Err(format!(
            "trailer counts {}, the file has {}",
            trailer.record_count,
            records.len()
        ));
    }
    if trailer.sha256 != hex::encode(schemas::sha256(&bytes[..body_len])) {
        return Err("trailer SHA-256 differs from the lines above it".into());
    }
    Ok(records)
}

/// The export file's bytes: header, one record per issuance of `municipality_code`
/// created in `[from_unix_ms, to_unix_ms)`, trailer.
pub async fn export_municipality(
    pool: &AnyPool,
    center_key: &KeyPair,
    municipality_code: &schemas::MunicipalityCode,
    range: ExportRange,
    now_unix_ms: i64,
) -> Result<(Vec<u8>, u64), AuditError> {
    let rows = sqlx::query(
        "SELECT request_id, operator_id, kiosk_id, certificate_type, copies, state, \
         refusal_reason, error_code, fee_yen_per_copy, total_fee_yen, created_at_unix_ms, \
         updated_at_unix_ms, card_digest, document_sha256, page_count FROM issuances \
         WHERE municipality_code = $1 AND created_at_unix_ms >= $2 AND created_at_unix_ms < $3 \
         ORDER BY created_at_unix_ms, request_id",
    )
    .bind(municipality_code.to_string())
    .bind(range.from_unix_ms)
    .bind(range.to_unix_ms)
    .fetch_all(pool)
    .await?;
    let mut text = String::new();
    fn push(text: &mut String, line: &ExportLine) -> Result<(), AuditError> {
        let json = serde_json::to_string(line).map_err(|e| AuditError::Corrupt(e.to_string()))?;
        text.push_str(&json);
        text.push('\n');
        Ok(())
    }
    push(
        &mut text,
        &ExportLine::Header(ExportHeader {
            format: EXPORT_FORMAT.to_owned(),
            municipality_code: municipality_code.to_string(),
            from_date: range.from_date.clone(),
            to_date: range.to_date.clone(),
            generated_at_unix_ms: now_unix_ms,
            center_kid: center_key.kid(),
        }),
    )?;
    for row in &rows {
        let request_id: String = row.try_get("request_id")?;
        let ids = sqlx::query(
            "SELECT event_id FROM audit_events WHERE request_id = $1 \
             ORDER BY at_unix_ms, event_id LIMIT $2",
        )
        .bind(&request_id)
        .bind(MAX_PROOF_EVENTS)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("event_id"))
        .collect::<Result<Vec<_>, _>>()?;
        push(
            &mut text,
            &ExportLine::Record(IssuanceRecord {
                request_id,
                operator_id: row.try_get("operator_id")?,
                kiosk_id: row.try_get("kiosk_id")?,
                certificate_type: row.try_get("certificate_type")?,
                copies: row.try_get("copies")?,
                state: row.try_get("state")?,
                refusal_reason: row.try_get("refusal_reason")?,
                error_code: row.try_get("error_code")?,
                fee_yen_per_copy: row.try_get("fee_yen_per_copy")?,
                total_fee_yen: row.try_get("total_fee_yen")?,
                created_at_unix_ms: row.try_get("created_at_unix_ms")?,
                updated_at_unix_ms: row.try_get("updated_at_unix_ms")?,
                card_digest: row.try_get("card_digest")?,
                document_sha256: row.try_get("document_sha256")?,
                page_count: row.try_get("page_count")?,
                audit_event_ids: ids,
            }),
        )?;
    }
    let digest = hex::encode(schemas::sha256(text.as_bytes()));
    let count = rows.len() as u64;
    push(
        &mut text,
        &ExportLine::Trailer(ExportTrailer {
            record_count: count,
            sha256: digest,
        }),
    )?;
    Ok((text.into_bytes(), count))
}

/// Which issuances an export covers: JST calendar dates, inclusive.
#[derive(Clone, Debug)]
pub struct ExportRange {
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub from_unix_ms: i64,
    pub to_unix_ms: i64,
}

impl ExportRange {
    /// `from`/`to` as `YYYY-MM-DD` (JST), both optional and inclusive.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, AuditError> {
        fn midnight_jst(text: &str, days_after: i64) -> Result<i64, AuditError> {
            let bad = |e: String| AuditError::BadArgument(format!("date {text:?}: {e}"));
            let date: jiff::civil::Date =
                text.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
            let date = date
                .checked_add(jiff::Span::new().days(days_after))
                .map_err(|e| bad(e.to_string()))?;
            let zoned = date
                .to_zoned(jiff::tz::TimeZone::get("Asia/Tokyo").map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
            Ok(zoned.timestamp().as_millisecond())
        }
        let from_unix_ms = from
            .map(|d| midnight_jst(d, 0))
            .transpose()?
            .unwrap_or(i64::MIN);
        let to_unix_ms = to
            .map(|d| midnight_jst(d, 1))
            .transpose()?
            .unwrap_or(i64::MAX);
        if from_unix_ms >= to_unix_ms {
            return Err(AuditError::BadArgument("--from is after --to".into()));
        }
        Ok(Self {
            from_date: from.map(str::to_owned),
            to_date: to.map(str::to_owned),
            from_unix_ms,
            to_unix_ms,
        })
    }
}
