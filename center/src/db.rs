//! The center's store: challenges, issuance states and the audit trail.
//!
//! One code path for SQLite (embedded default) and PostgreSQL (production): sqlx's
//! `Any` driver with portable SQL and `$n` placeholders, which both back-ends accept.
//! Every state transition is one transaction that also appends an audit event, and
//! is conditional on the current state, so two replicas can never both move the same
//! request.

use crate::store::{Decision, Store};
use futures_util::FutureExt as _;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row as _};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("illegal transition of {request_id} from {from} to {to} (state is {actual:?})")]
    IllegalTransition {
        request_id: String,
        from: &'static str,
        to: &'static str,
        actual: Option<String>,
    },
    #[error("stored row is malformed: {0}")]
    Corrupt(String),
    #[error("installing the audit log's append-only guards: {0}")]
    AuditGuards(String),
}

/// Upper bound on pooled connections per center process.
const MAX_CONNECTIONS: u32 = 16;

/// Opens the store: the pool (migrated, audit guards installed) and, on SQLite, its
/// group-commit writer (`crate::store`).
pub async fn connect(url: &str) -> Result<Store, DbError> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(if is_sqlite { 8 } else { MAX_CONNECTIONS })
        .acquire_timeout(std::time::Duration::from_secs(10))
        // No ping before every acquire: it was a round trip per statement (8% of the
        // center's CPU under load on PostgreSQL). A connection that died fails its
        // query, which the request answers as an error, and the pool replaces it.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if is_sqlite {
                    // Durable commits and concurrent readers; wait rather than fail on a
                    // busy writer.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(&format!(
                        "PRAGMA busy_timeout = {}",
                        crate::store::BUSY_TIMEOUT_MS
                    ))
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    // Every path that opens the store (serve, the CLI, tests) gets the audit log's
    // append-only triggers; they are backend-specific, hence not in the migrations.
    crate::audit::install_guards(&pool)
        .await
        .map_err(|e| DbError::AuditGuards(e.to_string()))?;
    Ok(Store::new(pool).await?)
}

/// Lifecycle of one issuance at the center (DESIGN.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuanceState {
    Authorized,
    Prepared,
    Paid,
    Printed,
    Settled,
    Refused,
    Voided,
    Expired,
    ReconRequired,
}

impl IssuanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Prepared => "prepared",
            Self::Paid => "paid",
            Self::Printed => "printed",
            Self::Settled => "settled",
            Self::Refused => "refused",
            Self::Voided => "voided",
            Self::Expired => "expired",
            Self::ReconRequired => "recon_required",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Authorized,
            Self::Prepared,
            Self::Paid,
            Self::Printed,
            Self::Settled,
            Self::Refused,
            Self::Voided,
            Self::Expired,
            Self::ReconRequired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The transitions DESIGN.md §4 allows; anything else is rejected and logged.
    pub fn may_become(self, next: Self) -> bool {
        use IssuanceState::*;
        matches!(
            (self, next),
            (Authorized, Prepared | Refused | Expired | Voided)
                | (Prepared, Paid | Voided | Expired)
                | (Paid, Printed | Voided | ReconRequired)
                | (Printed, Settled)
                | (ReconRequired, Printed | Voided)
        )
    }
}

/// What the center keeps about one issuance: ids, digests, amounts, states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceRow {
    pub request_id: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub idempotency_key: String,
    pub order_digest: String,
    pub municipality_code: String,
    pub card_digest: String,
    pub certificate_type: String,
    pub copies: i64,
    pub state: IssuanceState,
    pub refusal_reason: Option<String>,
    pub error_code: Option<String>,
    pub fee_yen_per_copy: Option<i64>,
    pub total_fee_yen: Option<i64>,
    pub document_sha256: Option<String>,
    pub page_count: Option<i64>,
}

fn row_to_issuance(row: &AnyRow) -> Result<IssuanceRow, DbError> {
    let state: String = row.try_get("state")?;
    Ok(IssuanceRow {
        request_id: row.try_get("request_id")?,
        operator_id: row.try_get("operator_id")?,
        kiosk_id: row.try_get("kiosk_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        order_digest: row.try_get("order_digest")?,
        municipality_code: row.try_get("municipality_code")?,
        card_digest: row.try_get("card_digest")?,
        certificate_type: row.try_get("certificate_type")?,
        copies: row.try_get("copies")?,
        state: IssuanceState::parse(&state).ok_or_else(|| DbError::Corrupt(state.clone()))?,
        refusal_reason: row.try_get("refusal_reason")?,
        error_code: row.try_get("error_code")?,
        fee_yen_per_copy: row.try_get("fee_yen_per_copy")?,
        total_fee_yen: row.try_get("total_fee_yen")?,
        document_sha256: row.try_get("document_sha256")?,
        page_count: row.try_get("page_count")?,
    })
}

const ISSUANCE_COLUMNS: &str = "request_id, operator_id, kiosk_id, idempotency_key, order_digest, \
     municipality_code, card_digest, certificate_type, copies, state, refusal_reason, error_code, \
     fee_yen_per_copy, total_fee_yen, document_sha256, page_count";

/// One use of a challenge nonce (see `crate::challenge`): the row that makes it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeUse {
    pub nonce_hex: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub expires_at_unix_ms: i64,
}

/// Whether the nonce has been used (read only; the use itself is decided by the
/// insert in `use_challenge` or `insert_authorized_with_challenge`).
pub async fn challenge_used(pool: &AnyPool, nonce_hex: &str) -> Result<bool, DbError> {
    let row = sqlx::query("SELECT 1 FROM challenges WHERE nonce_hex = $1")
        .bind(nonce_hex)
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// Records the use of a nonce, atomically: of two uses on any replicas exactly one
/// returns `true` (the primary key decides). `false`: it was already used.
pub async fn use_challenge(
    store: &Store,
    used: &ChallengeUse,
    now_unix_ms: i64,
) -> Result<bool, DbError> {
    let used = used.clone();
    store
        .write(move |connection| {
            async move {
                let inserted = insert_challenge_use(connection, &used, now_unix_ms).await?;
                Ok::<_, DbError>(Decision::Commit(inserted))
            }
            .boxed()
        })
        .await
}

async fn insert_challenge_use(
    connection: &mut sqlx::AnyConnection,
    used: &ChallengeUse,
    now_unix_ms: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO challenges (nonce_hex, operator_id, kiosk_id, created_at_unix_ms, expires_at_unix_ms, used_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (nonce_hex) DO NOTHING",
    )
    .bind(&used.nonce_hex)
    .bind(&used.operator_id)
    .bind(&used.kiosk_id)
    .bind(now_unix_ms)
    .bind(used.expires_at_unix_ms)
    .bind(now_unix_ms)
    .execute(&mut *connection)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_by_idempotency_key(
    pool: &AnyPool,
    operator_id: &str,
    idempotency_key: &str,
) -> Result<Option<IssuanceRow>, DbError> {
    let sql = format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances WHERE operator_id = $1 AND idempotency_key = $2"
    );
    let row = sqlx::query(&sql)
        .bind(operator_id)
        .bind(idempotency_key)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(row_to_issuance).transpose()
}

pub async fn find_issuance(
    pool: &AnyPool,
    request_id: &str,
) -> Result<Option<IssuanceRow>, DbError> {
    find_issuance_on(pool, request_id).await
}

/// [`find_issuance`] on any executor (a write job's own connection).
async fn find_issuance_on<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    request_id: &str,
) -> Result<Option<IssuanceRow>, DbError> {
    let sql = format!("SELECT {ISSUANCE_COLUMNS} FROM issuances WHERE request_id = $1");
    let row = sqlx::query(&sql)
        .bind(request_id)
        .fetch_optional(executor)
        .await?;
    row.as_ref().map(row_to_issuance).transpose()
}

pub(crate) async fn append_event(
    connection: &mut AnyConnection,
    request_id: &str,
    now_unix_ms: i64,
    event: &str,
    from: Option<IssuanceState>,
    to: Option<IssuanceState>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    let event_id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO audit_events (event_id, request_id, at_unix_ms, event, from_state, to_state, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&event_id)
    .bind(request_id)
    .bind(now_unix_ms)
    .bind(event)
    .bind(from.map(IssuanceState::as_str))
    .bind(to.map(IssuanceState::as_str))
    .bind(detail)
    .execute(&mut *connection)
    .await?;
    // Same transaction: an event is never stored without its place in the queue.
    sqlx::query("INSERT INTO audit_seal_queue (event_id, at_unix_ms) VALUES ($1, $2)")
        .bind(&event_id)
        .bind(now_unix_ms)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// What became of a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizedInsert {
    /// Recorded, with what authorized it: the challenge used, or one of the card
    /// session's orders taken.
    Inserted,
    /// The operator's idempotency key is already taken: nothing written, no order
    /// taken, no challenge used (the caller replays or reports a conflict).
    KeyTaken,
    /// The card session has no order left, has expired, or is not this kiosk's:
    /// nothing written.
    SessionSpent,
    /// The challenge was used meanwhile (a concurrent request with the same nonce, on
    /// any replica): nothing written.
    ChallengeUsed,
}

/// What authorizes a new request, recorded in the same transaction as the request.
#[derive(Clone, Debug)]
enum Authorization {
    /// The card signed this order over a challenge: the challenge becomes used.
    Challenge(ChallengeUse),
    /// The card opened this session: one of its orders is taken.
    CardSession(String),
}

/// Inserts a new request in state `authorized` and uses the card's challenge in the
/// same transaction (one commit instead of two), so that the challenge is used exactly
/// when a request is recorded on it; a replayed key (not inserted) uses none.
pub async fn insert_authorized_with_challenge(
    store: &Store,
    row: &IssuanceRow,
    challenge: &ChallengeUse,
    now_unix_ms: i64,
) -> Result<AuthorizedInsert, DbError> {
    let authorization = Authorization::Challenge(challenge.clone());
    insert_authorized_row(store, row, authorization, now_unix_ms).await
}

/// Inserts a new request in state `authorized` and takes one order of the card
/// session in the same transaction, so that two concurrent orders cannot both take
/// the last one and a replayed key (not inserted) takes none.
pub async fn insert_authorized_on_card_session(
    store: &Store,
    row: &IssuanceRow,
    card_session_id: &str,
    now_unix_ms: i64,
) -> Result<AuthorizedInsert, DbError> {
    let authorization = Authorization::CardSession(card_session_id.to_owned());
    insert_authorized_row(store, row, authorization, now_unix_ms).await
}

async fn insert_authorized_row(
    store: &Store,
    row: &IssuanceRow,
    authorization: Authorization,
    now_unix_ms: i64,
) -> Result<AuthorizedInsert, DbError> {
    assert_eq!(row.state, IssuanceState::Authorized);
    let row = row.clone();
    store
        .write(move |connection| {
            async move { insert_authorized(connection, &row, &authorization, now_unix_ms).await }
                .boxed()
        })
        .await
}

async fn insert_authorized(
    connection: &mut AnyConnection,
    row: &IssuanceRow,
    authorization: &Authorization,
    now_unix_ms: i64,
) -> Result<Decision<AuthorizedInsert>, DbError> {
    // The insert first: a concurrent retry under the same key waits on it, then finds
    // the key taken and rolls back before touching the session or the challenge.
    let inserted = sqlx::query(
        "INSERT INTO issuances (request_id, operator_id, kiosk_id, idempotency_key, order_digest, \
         municipality_code, card_digest, certificate_type, copies, state, created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (operator_id, idempotency_key) DO NOTHING",
    )
    .bind(&row.request_id)
    .bind(&row.operator_id)
    .bind(&row.kiosk_id)
    .bind(&row.idempotency_key)
    .bind(&row.order_digest)
    .bind(&row.municipality_code)
    .bind(&row.card_digest)
    .bind(&row.certificate_type)
    .bind(row.copies)
    .bind(row.state.as_str())
    .bind(now_unix_ms)
    .bind(now_unix_ms)
    .execute(&mut *connection)
    .await?;
    if inserted.rows_affected() != 1 {
        return Ok(Decision::Rollback(AuthorizedInsert::KeyTaken));
    }
    let mut detail = None;
    match authorization {
        Authorization::Challenge(challenge) => {
            if !insert_challenge_use(connection, challenge, now_unix_ms).await? {
                return Ok(Decision::Rollback(AuthorizedInsert::ChallengeUsed));
            }
        }
        Authorization::CardSession(session_id) => {
            // Conditional on what the order was checked against, so a concurrent order
            // taking the last one (on any replica) makes this one fail, not overdraw.
            let taken = sqlx::query(
                "UPDATE card_sessions SET orders_used = orders_used + 1 \
                 WHERE card_session_id = $1 AND operator_id = $2 AND kiosk_id = $3 \
                   AND orders_used < max_orders AND expires_at_unix_ms > $4",
            )
            .bind(session_id)
            .bind(&row.operator_id)
            .bind(&row.kiosk_id)
            .bind(now_unix_ms)
            .execute(&mut *connection)
            .await?;
            if taken.rows_affected() != 1 {
                return Ok(Decision::Rollback(AuthorizedInsert::SessionSpent));
            }
            detail = Some(format!("card_session {session_id}"));
        }
    }
    append_event(
        connection,
        &row.request_id,
        now_unix_ms,
        "authorized",
        None,
        Some(IssuanceState::Authorized),
        detail.as_deref(),
    )
    .await?;
    Ok(Decision::Commit(AuthorizedInsert::Inserted))
}

/// Fields a transition may set (all optional; `None` leaves the column alone).
#[derive(Clone, Debug, Default)]
pub struct TransitionFields<'a> {
    pub refusal_reason: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub fee_yen_per_copy: Option<i64>,
    pub total_fee_yen: Option<i64>,
    pub document_sha256: Option<&'a str>,
    pub page_count: Option<i64>,
}

/// [`TransitionFields`], owned by the write job.
#[derive(Clone, Debug)]
struct OwnedTransitionFields {
    refusal_reason: Option<String>,
    error_code: Option<String>,
    fee_yen_per_copy: Option<i64>,
    total_fee_yen: Option<i64>,
    document_sha256: Option<String>,
    page_count: Option<i64>,
}

impl From<&TransitionFields<'_>> for OwnedTransitionFields {
    fn from(fields: &TransitionFields<'_>) -> Self {
        Self {
            refusal_reason: fields.refusal_reason.map(str::to_owned),
            error_code: fields.error_code.map(str::to_owned),
            fee_yen_per_copy: fields.fee_yen_per_copy,
            total_fee_yen: fields.total_fee_yen,
            document_sha256: fields.document_sha256.map(str::to_owned),
            page_count: fields.page_count,
        }
    }
}

/// Moves `request_id` from `from` to `to` in one transaction with its audit event.
/// Fails with `IllegalTransition` if the move is not allowed or the row is no longer
/// in `from` (another replica got there first).
pub async fn transition(
    store: &Store,
    request_id: &str,
    from: IssuanceState,
    to: IssuanceState,
    fields: &TransitionFields<'_>,
    now_unix_ms: i64,
) -> Result<(), DbError> {
    if !from.may_become(to) {
        tracing::error!(
            request_id,
            from = from.as_str(),
            to = to.as_str(),
            "illegal transition rejected"
        );
        return Err(DbError::IllegalTransition {
            request_id: request_id.to_owned(),
            from: from.as_str(),
            to: to.as_str(),
            actual: None,
        });
    }
    let request_id = request_id.to_owned();
    let fields = OwnedTransitionFields::from(fields);
    store
        .write(move |connection| {
            async move {
                transition_row(connection, &request_id, from, to, &fields, now_unix_ms).await
            }
            .boxed()
        })
        .await
}

async fn transition_row(
    connection: &mut AnyConnection,
    request_id: &str,
    from: IssuanceState,
    to: IssuanceState,
    fields: &OwnedTransitionFields,
    now_unix_ms: i64,
) -> Result<Decision<()>, DbError> {
    let updated = sqlx::query(
        "UPDATE issuances SET state = $1, updated_at_unix_ms = $2, \
           refusal_reason = COALESCE($3, refusal_reason), error_code = COALESCE($4, error_code), \
           fee_yen_per_copy = COALESCE($5, fee_yen_per_copy), total_fee_yen = COALESCE($6, total_fee_yen), \
           document_sha256 = COALESCE($7, document_sha256), page_count = COALESCE($8, page_count) \
         WHERE request_id = $9 AND state = $10",
    )
    .bind(to.as_str())
    .bind(now_unix_ms)
    .bind(fields.refusal_reason.as_deref())
    .bind(fields.error_code.as_deref())
    .bind(fields.fee_yen_per_copy)
    .bind(fields.total_fee_yen)
    .bind(fields.document_sha256.as_deref())
    .bind(fields.page_count)
    .bind(request_id)
    .bind(from.as_str())
    .execute(&mut *connection)
    .await?;
    if updated.rows_affected() != 1 {
        // Nothing was written; the row as it stands says who won.
        let actual = find_issuance_on(&mut *connection, request_id)
            .await?
            .map(|r| r.state.as_str().to_owned());
        tracing::error!(
            request_id,
            from = from.as_str(),
            to = to.as_str(),
            ?actual,
            "transition lost: state changed"
        );
        return Err(DbError::IllegalTransition {
            request_id: request_id.to_owned(),
            from: from.as_str(),
            to: to.as_str(),
            actual,
        });
    }
    let detail = fields
        .refusal_reason
        .as_deref()
        .or(fields.error_code.as_deref());
    append_event(
        connection,
        request_id,
        now_unix_ms,
        to.as_str(),
        Some(from),
        Some(to),
        detail,
    )
    .await?;
    Ok(Decision::Commit(()))
}

/// Records an event that changes no state (e.g. an idempotent replay).
pub async fn record_event(
    store: &Store,
    request_id: &str,
    event: &str,
    detail: Option<&str>,
    now_unix_ms: i64,
) -> Result<(), DbError> {
    let request_id = request_id.to_owned();
    let event = event.to_owned();
    let detail = detail.map(str::to_owned);
    store
        .write(move |connection| {
            async move {
                append_event(
                    connection,
                    &request_id,
                    now_unix_ms,
                    &event,
                    None,
                    None,
                    detail.as_deref(),
                )
                .await?;
                Ok::<_, DbError>(Decision::Commit(()))
            }
            .boxed()
        })
        .await
}

/// Count of audit events for a request (tests and operators).
pub async fn audit_events(pool: &AnyPool, request_id: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT event FROM audit_events WHERE request_id = $1 ORDER BY at_unix_ms, event_id",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("event").map_err(DbError::from))
        .collect()
}

/// The money side of one issuance: what the payment and print reports are checked
/// against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeRecord {
    pub request_id: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub state: IssuanceState,
    pub total_fee_yen: Option<i64>,
    /// Integer yen taken, once the payment was recorded (kept after a voiding).
    pub paid_yen: Option<i64>,
    /// `cash` or `e_money`.
    pub payment_method: Option<String>,
    /// `ok`, `failed` or `unknown`.
    pub print_outcome: Option<String>,
    /// `cancelled`, `payment_timeout`, `kiosk_refunded` or `print_failed`.
    pub void_reason: Option<String>,
    /// Integer yen of the refund record, if any.
    pub refund_yen: Option<i64>,
}

pub async fn find_outcome_record(
    pool: &AnyPool,
    request_id: &str,
) -> Result<Option<OutcomeRecord>, DbError> {
    let row = sqlx::query(
        "SELECT i.request_id, i.operator_id, i.kiosk_id, i.state, i.total_fee_yen, i.paid_yen, \
           i.payment_method, i.print_outcome, i.void_reason, r.amount_yen AS refund_yen \
         FROM issuances i LEFT JOIN refunds r ON r.request_id = i.request_id \
         WHERE i.request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let state: String = row.try_get("state")?;
    Ok(Some(OutcomeRecord {
        request_id: row.try_get("request_id")?,
        operator_id: row.try_get("operator_id")?,
        kiosk_id: row.try_get("kiosk_id")?,
        state: IssuanceState::parse(&state).ok_or_else(|| DbError::Corrupt(state.clone()))?,
        total_fee_yen: row.try_get("total_fee_yen")?,
        paid_yen: row.try_get("paid_yen")?,
        payment_method: row.try_get("payment_method")?,
        print_outcome: row.try_get("print_outcome")?,
        void_reason: row.try_get("void_reason")?,
        refund_yen: row.try_get("refund_yen")?,
    }))
}

/// One move of the money lifecycle (a payment or print report, or the sweep).
#[derive(Clone, Debug)]
pub struct OutcomeUpdate<'a> {
    pub request_id: &'a str,
    pub from: IssuanceState,
    /// May equal `from` only for `paid → paid` (print outcome `unknown` recorded).
    pub to: IssuanceState,
    /// Guard on the recorded print outcome (`None`: must be absent); checked together
    /// with the state, so a concurrent report cannot slip in between.
    pub expect_print_outcome: Option<&'a str>,
    pub paid_yen: Option<i64>,
    pub payment_method: Option<&'a str>,
    pub print_outcome: Option<&'a str>,
    pub void_reason: Option<&'a str>,
    /// `(amount_yen, reason)` of the refund record written with this move.
    pub refund: Option<(i64, &'a str)>,
    /// The audit event's name.
    pub event: &'a str,
    pub now_unix_ms: i64,
}

impl<'a> OutcomeUpdate<'a> {
    pub fn new(
        request_id: &'a str,
        from: IssuanceState,
        to: IssuanceState,
        event: &'a str,
        now_unix_ms: i64,
    ) -> Self {
        Self {
            request_id,
            from,
            to,
            expect_print_outcome: None,
            paid_yen: None,
            payment_method: None,
            print_outcome: None,
            void_reason: None,
            refund: None,
            event,
            now_unix_ms,
        }
    }
}

/// Applies `update` in one transaction: state, amounts, outcome, refund row and audit
/// event, conditional on the row still being in `from` with the expected print
/// outcome. `Ok(false)`: the row was not in that state any more (a concurrent report
/// or sweep won), nothing was written; the caller re-reads and decides again.
pub async fn apply_outcome(store: &Store, update: &OutcomeUpdate<'_>) -> Result<bool, DbError> {
    let same_state_allowed = update.from == IssuanceState::Paid
        && update.to == IssuanceState::Paid
        && update.print_outcome.is_some();
    if !(update.from.may_become(update.to) || same_state_allowed) {
        tracing::warn!(
            request_id = update.request_id,
            from = update.from.as_str(),
            to = update.to.as_str(),
            "illegal transition rejected"
        );
        return Err(DbError::IllegalTransition {
            request_id: update.request_id.to_owned(),
            from: update.from.as_str(),
            to: update.to.as_str(),
            actual: None,
        });
    }
    let update = OwnedOutcomeUpdate::from(update);
    store
        .write(move |connection| {
            async move { apply_outcome_row(connection, &update).await }.boxed()
        })
        .await
}

/// [`OutcomeUpdate`], owned by the write job.
#[derive(Clone, Debug)]
struct OwnedOutcomeUpdate {
    request_id: String,
    from: IssuanceState,
    to: IssuanceState,
    expect_print_outcome: Option<String>,
    paid_yen: Option<i64>,
    payment_method: Option<String>,
    print_outcome: Option<String>,
    void_reason: Option<String>,
    refund: Option<(i64, String)>,
    event: String,
    now_unix_ms: i64,
}

impl From<&OutcomeUpdate<'_>> for OwnedOutcomeUpdate {
    fn from(update: &OutcomeUpdate<'_>) -> Self {
        Self {
            request_id: update.request_id.to_owned(),
            from: update.from,
            to: update.to,
            expect_print_outcome: update.expect_print_outcome.map(str::to_owned),
            paid_yen: update.paid_yen,
            payment_method: update.payment_method.map(str::to_owned),
            print_outcome: update.print_outcome.map(str::to_owned),
            void_reason: update.void_reason.map(str::to_owned),
            refund: update
                .refund
                .map(|(amount_yen, reason)| (amount_yen, reason.to_owned())),
            event: update.event.to_owned(),
            now_unix_ms: update.now_unix_ms,
        }
    }
}

async fn apply_outcome_row(
    connection: &mut AnyConnection,
    update: &OwnedOutcomeUpdate,
) -> Result<Decision<bool>, DbError> {
    let now_unix_ms = update.now_unix_ms;
    // The print time is set in the same statement (one round trip fewer while
    // SQLite's write lock is held).
    let printed_at_unix_ms = (update.to == IssuanceState::Printed).then_some(now_unix_ms);
    // COALESCE(.., '') = '' stands for IS NULL in a way both back-ends bind alike.
    let updated = sqlx::query(
        "UPDATE issuances SET state = $1, updated_at_unix_ms = $2, \
           paid_yen = COALESCE($3, paid_yen), payment_method = COALESCE($4, payment_method), \
           print_outcome = COALESCE($5, print_outcome), void_reason = COALESCE($6, void_reason), \
           printed_at_unix_ms = COALESCE($10, printed_at_unix_ms) \
         WHERE request_id = $7 AND state = $8 AND COALESCE(print_outcome, '') = $9",
    )
    .bind(update.to.as_str())
    .bind(now_unix_ms)
    .bind(update.paid_yen)
    .bind(update.payment_method.as_deref())
    .bind(update.print_outcome.as_deref())
    .bind(update.void_reason.as_deref())
    .bind(&update.request_id)
    .bind(update.from.as_str())
    .bind(update.expect_print_outcome.as_deref().unwrap_or(""))
    .bind(printed_at_unix_ms)
    .execute(&mut *connection)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(Decision::Rollback(false));
    }
    if update.to == IssuanceState::Printed {
        // The print and its notice to the municipality commit together (transactional
        // outbox): a crash can delay the notice, never lose it.
        sqlx::query(
            "INSERT INTO outcome_notices (request_id, municipality_code, created_at_unix_ms, \
               attempts, next_attempt_at_unix_ms) \
             SELECT request_id, municipality_code, $1, 0, $1 FROM issuances WHERE request_id = $2",
        )
        .bind(now_unix_ms)
        .bind(&update.request_id)
        .execute(&mut *connection)
        .await?;
    }
    if let Some((amount_yen, reason)) = &update.refund {
        sqlx::query(
            "INSERT INTO refunds (request_id, amount_yen, reason, created_at_unix_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&update.request_id)
        .bind(*amount_yen)
        .bind(reason)
        .bind(now_unix_ms)
        .execute(&mut *connection)
        .await?;
    }
    let detail = update
        .void_reason
        .as_deref()
        .or(update.print_outcome.as_deref());
    append_event(
        connection,
        &update.request_id,
        now_unix_ms,
        &update.event,
        Some(update.from),
        Some(update.to),
        detail,
    )
    .await?;
    Ok(Decision::Commit(true))
}

/// Request ids in `state` whose last change is at or before `updated_before_unix_ms`
/// (the sweep's candidates), at most `limit`.
pub async fn stale_in_state(
    pool: &AnyPool,
    state: IssuanceState,
    updated_before_unix_ms: i64,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query(
        "SELECT request_id FROM issuances WHERE state = $1 AND updated_at_unix_ms <= $2 \
         ORDER BY updated_at_unix_ms LIMIT $3",
    )
    .bind(state.as_str())
    .bind(updated_before_unix_ms)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("request_id").map_err(DbError::from))
        .collect()
}

/// Deletes at most `limit` rows of `table` whose `expiry_column` is at or before
/// `cutoff_unix_ms`, oldest first, in one write; returns how many went. Bounded because
/// a day's expired challenges at the peak rate would otherwise be one delete holding
/// the (on SQLite, only) writer for seconds; the caller repeats while a full batch
/// went. `table`, `key_column` and `expiry_column` are this module's constants, never
/// input; `expiry_column` must be indexed, so a round costs what it deletes, not the
/// table's size.
async fn delete_expired_rows(
    store: &Store,
    table: &'static str,
    key_column: &'static str,
    expiry_column: &'static str,
    cutoff_unix_ms: i64,
    limit: i64,
) -> Result<u64, DbError> {
    let sql = format!(
        "DELETE FROM {table} WHERE {key_column} IN (SELECT {key_column} FROM {table} \
         WHERE {expiry_column} <= $1 ORDER BY {expiry_column} LIMIT $2)"
    );
    store
        .write(move |connection| {
            async move {
                let done = sqlx::query(&sql)
                    .bind(cutoff_unix_ms)
                    .bind(limit)
                    .execute(&mut *connection)
                    .await?;
                assert!(done.rows_affected() <= u64::try_from(limit).unwrap_or(0));
                Ok::<_, DbError>(Decision::Commit(done.rows_affected()))
            }
            .boxed()
        })
        .await
}

/// Deletes the challenge rows whose nonce expired at or before
/// `expired_before_unix_ms`: such a nonce is refused as expired whatever the table
/// says, so its row no longer guards anything. One write of at most `limit` rows;
/// returns how many went.
pub async fn delete_old_challenges(
    store: &Store,
    expired_before_unix_ms: i64,
    limit: i64,
) -> Result<u64, DbError> {
    delete_expired_rows(
        store,
        "challenges",
        "nonce_hex",
        "expires_at_unix_ms",
        expired_before_unix_ms,
        limit,
    )
    .await
}

/// Money conservation, integer yen: `paid_yen = printed_yen + refunded_yen +
/// unresolved_paid_yen` whenever every voided paid issuance has its refund record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoneyTotals {
    /// Σ paid_yen over every issuance ever paid (voided ones included).
    pub paid_yen: i64,
    /// Σ paid_yen over issuances `printed` or `settled` (settled ones were printed).
    pub printed_yen: i64,
    /// Σ of the refund records.
    pub refunded_yen: i64,
    /// Σ paid_yen over issuances still `paid` or `recon_required` (print outcome not
    /// settled yet).
    pub unresolved_paid_yen: i64,
}

pub async fn money_totals(pool: &AnyPool) -> Result<MoneyTotals, DbError> {
    // CAST: PostgreSQL's SUM(bigint) is numeric, which the Any driver cannot decode.
    let row = sqlx::query(
        "SELECT \
           CAST(COALESCE(SUM(paid_yen), 0) AS BIGINT) AS paid_yen, \
           CAST(COALESCE(SUM(CASE WHEN state IN ('printed', 'settled') THEN paid_yen ELSE 0 END), 0) AS BIGINT) AS printed_yen, \
           CAST(COALESCE(SUM(CASE WHEN state IN ('paid', 'recon_required') THEN paid_yen ELSE 0 END), 0) AS BIGINT) AS unresolved_paid_yen, \
           CAST((SELECT COALESCE(SUM(amount_yen), 0) FROM refunds) AS BIGINT) AS refunded_yen \
         FROM issuances WHERE paid_yen IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok(MoneyTotals {
        paid_yen: row.try_get("paid_yen")?,
        printed_yen: row.try_get("printed_yen")?,
        refunded_yen: row.try_get("refunded_yen")?,
        unresolved_paid_yen: row.try_get("unresolved_paid_yen")?,
    })
}

/// What the center keeps about one 本籍地 利用登録: ids, digests, status and times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomicileRegistrationRow {
    pub registration_id: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub idempotency_key: String,
    pub registration_digest: String,
    pub municipality_code: String,
    pub card_digest: String,
    /// `submitted` until the 本籍地 answers, then its status (`pending`, `approved`,
    /// `rejected`).
    pub status: String,
}

const REGISTRATION_COLUMNS: &str = "registration_id, operator_id, kiosk_id, idempotency_key, \
     registration_digest, municipality_code, card_digest, status";

fn row_to_registration(row: &AnyRow) -> Result<DomicileRegistrationRow, DbError> {
    Ok(DomicileRegistrationRow {
        registration_id: row.try_get("registration_id")?,
        operator_id: row.try_get("operator_id")?,
        kiosk_id: row.try_get("kiosk_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        registration_digest: row.try_get("registration_digest")?,
        municipality_code: row.try_get("municipality_code")?,
        card_digest: row.try_get("card_digest")?,
        status: row.try_get("status")?,
    })
}

pub async fn find_registration_by_idempotency_key(
    pool: &AnyPool,
    operator_id: &str,
    idempotency_key: &str,
) -> Result<Option<DomicileRegistrationRow>, DbError> {
    let sql = format!(
        "SELECT {REGISTRATION_COLUMNS} FROM domicile_registrations \
         WHERE operator_id = $1 AND idempotency_key = $2"
    );
    let row = sqlx::query(&sql)
        .bind(operator_id)
        .bind(idempotency_key)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(row_to_registration).transpose()
}

pub async fn find_registration(
    pool: &AnyPool,
    registration_id: &str,
) -> Result<Option<DomicileRegistrationRow>, DbError> {
    let sql = format!(
        "SELECT {REGISTRATION_COLUMNS} FROM domicile_registrations WHERE registration_id = $1"
    );
    let row = sqlx::query(&sql)
        .bind(registration_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(row_to_registration).transpose()
}

/// Inserts a new registration. Returns `false` when the operator's idempotency key is
/// already taken (the caller then replays or reports a conflict).
pub async fn insert_registration(
    store: &Store,
    row: &DomicileRegistrationRow,
    now_unix_ms: i64,
) -> Result<bool, DbError> {
    let row = row.clone();
    store
        .write(move |connection| {
            async move {
                let inserted = insert_registration_row(connection, &row, now_unix_ms).await?;
                Ok::<_, DbError>(Decision::Commit(inserted))
            }
            .boxed()
        })
        .await
}

async fn insert_registration_row(
    connection: &mut AnyConnection,
    row: &DomicileRegistrationRow,
    now_unix_ms: i64,
) -> Result<bool, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO domicile_registrations (registration_id, operator_id, kiosk_id, \
         idempotency_key, registration_digest, municipality_code, card_digest, status, \
         created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (operator_id, idempotency_key) DO NOTHING",
    )
    .bind(&row.registration_id)
    .bind(&row.operator_id)
    .bind(&row.kiosk_id)
    .bind(&row.idempotency_key)
    .bind(&row.registration_digest)
    .bind(&row.municipality_code)
    .bind(&row.card_digest)
    .bind(&row.status)
    .bind(now_unix_ms)
    .bind(now_unix_ms)
    .execute(&mut *connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records the 本籍地's latest answer.
pub async fn set_registration_status(
    store: &Store,
    registration_id: &str,
    status: &str,
    now_unix_ms: i64,
) -> Result<(), DbError> {
    let registration_id = registration_id.to_owned();
    let status = status.to_owned();
    store
        .write(move |connection| {
            async move {
                sqlx::query(
                    "UPDATE domicile_registrations SET status = $1, updated_at_unix_ms = $2 \
                     WHERE registration_id = $3",
                )
                .bind(&status)
                .bind(now_unix_ms)
                .bind(&registration_id)
                .execute(&mut *connection)
                .await?;
                Ok::<_, DbError>(Decision::Commit(()))
            }
            .boxed()
        })
        .await
}

/// What the center keeps about one card session while it lives (ids, the card
/// certificate, counts and times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSessionRow {
    pub card_session_id: String,
    pub operator_id: String,
    pub kiosk_id: String,
    pub visit_key: String,
    /// JSON of the card certificate (`schemas::CardCertificate`).
    pub card_certificate: String,
    pub municipality_code: String,
    pub orders_used: i64,
    pub max_orders: i64,
    pub created_at_unix_ms: i64,
    pub expires_at_unix_ms: i64,
}

const CARD_SESSION_COLUMNS: &str = "card_session_id, operator_id, kiosk_id, visit_key, \
     card_certificate, municipality_code, orders_used, max_orders, created_at_unix_ms, \
     expires_at_unix_ms";

fn row_to_card_session(row: &AnyRow) -> Result<CardSessionRow, DbError> {
    Ok(CardSessionRow {
        card_session_id: row.try_get("card_session_id")?,
        operator_id: row.try_get("operator_id")?,
        kiosk_id: row.try_get("kiosk_id")?,
        visit_key: row.try_get("visit_key")?,
        card_certificate: row.try_get("card_certificate")?,
        municipality_code: row.try_get("municipality_code")?,
        orders_used: row.try_get("orders_used")?,
        max_orders: row.try_get("max_orders")?,
        created_at_unix_ms: row.try_get("created_at_unix_ms")?,
        expires_at_unix_ms: row.try_get("expires_at_unix_ms")?,
    })
}

/// What became of a new card session opened over a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardSessionInsert {
    /// Recorded, and the challenge used.
    Inserted,
    /// The kiosk's visit already has a session: nothing written, no challenge used.
    VisitTaken,
    /// The challenge was used meanwhile (on any replica): nothing written.
    ChallengeUsed,
}

/// Inserts a new card session and uses the card's challenge in the same transaction
/// (one commit instead of two); a visit that already has a session uses none.
pub async fn insert_card_session_with_challenge(
    store: &Store,
    row: &CardSessionRow,
    challenge: &ChallengeUse,
) -> Result<CardSessionInsert, DbError> {
    let row = row.clone();
    let challenge = challenge.clone();
    store
        .write(move |connection| {
            async move {
                // The session first: a concurrent retry of the same visit waits on it,
                // then finds the visit taken and rolls back before touching the challenge.
                if !insert_card_session_row(connection, &row).await? {
                    return Ok(Decision::Rollback(CardSessionInsert::VisitTaken));
                }
                if !insert_challenge_use(connection, &challenge, row.created_at_unix_ms).await? {
                    return Ok(Decision::Rollback(CardSessionInsert::ChallengeUsed));
                }
                Ok::<_, DbError>(Decision::Commit(CardSessionInsert::Inserted))
            }
            .boxed()
        })
        .await
}

async fn insert_card_session_row(
    connection: &mut sqlx::AnyConnection,
    row: &CardSessionRow,
) -> Result<bool, DbError> {
    let inserted = sqlx::query(
        "INSERT INTO card_sessions (card_session_id, operator_id, kiosk_id, visit_key, \
           card_certificate, municipality_code, orders_used, max_orders, created_at_unix_ms, \
           expires_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (kiosk_id, visit_key) DO NOTHING",
    )
    .bind(&row.card_session_id)
    .bind(&row.operator_id)
    .bind(&row.kiosk_id)
    .bind(&row.visit_key)
    .bind(&row.card_certificate)
    .bind(&row.municipality_code)
    .bind(row.orders_used)
    .bind(row.max_orders)
    .bind(row.created_at_unix_ms)
    .bind(row.expires_at_unix_ms)
    .execute(&mut *connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn find_card_session(
    pool: &AnyPool,
    card_session_id: &str,
) -> Result<Option<CardSessionRow>, DbError> {
    let sql =
        format!("SELECT {CARD_SESSION_COLUMNS} FROM card_sessions WHERE card_session_id = $1");
    let row = sqlx::query(&sql)
        .bind(card_session_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(row_to_card_session).transpose()
}

pub async fn find_card_session_by_visit(
    pool: &AnyPool,
    kiosk_id: &str,
    visit_key: &str,
) -> Result<Option<CardSessionRow>, DbError> {
    let sql = format!(
        "SELECT {CARD_SESSION_COLUMNS} FROM card_sessions WHERE kiosk_id = $1 AND visit_key = $2"
    );
    let row = sqlx::query(&sql)
        .bind(kiosk_id)
        .bind(visit_key)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(row_to_card_session).transpose()
}

/// Deletes card sessions expired at or before `now_unix_ms` (and the card certificates
/// they kept). One write of at most `limit` rows; returns how many went.
pub async fn delete_expired_card_sessions(
    store: &Store,
    now_unix_ms: i64,
    limit: i64,
) -> Result<u64, DbError> {
    delete_expired_rows(
        store,
        "card_sessions",
        "card_session_id",
        "expires_at_unix_ms",
        now_unix_ms,
        limit,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_pool(tag: &str) -> (Store, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("center-db-{tag}-{}.sqlite", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        (connect(&url).await.unwrap(), path)
    }

    fn registration(id: &str, key: &str) -> DomicileRegistrationRow {
        DomicileRegistrationRow {
            registration_id: id.into(),
            operator_id: "lawson".into(),
            kiosk_id: "lawson-0001".into(),
            idempotency_key: key.into(),
            registration_digest: "aa".repeat(32),
            municipality_code: "215015".into(),
            card_digest: "bb".repeat(32),
            status: "submitted".into(),
        }
    }

    #[tokio::test]
    async fn registrations_are_unique_per_operator_key_and_keep_their_status() {
        let (pool, path) = temp_pool("registrations").await;
        let first = registration("r1", "key-1");
        assert!(insert_registration(&pool, &first, 1).await.unwrap());
        // Same operator and key: not inserted again.
        assert!(!insert_registration(&pool, &registration("r2", "key-1"), 2)
            .await
            .unwrap());
        let found = find_registration_by_idempotency_key(&pool, "lawson", "key-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found, first);
        set_registration_status(&pool, "r1", "pending", 3)
            .await
            .unwrap();
        let found = find_registration(&pool, "r1").await.unwrap().unwrap();
        assert_eq!(found.status, "pending");
        assert!(find_registration(&pool, "r2").await.unwrap().is_none());
        pool.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
