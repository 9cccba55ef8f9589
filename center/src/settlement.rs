//! Settlement windows at the center (DESIGN.md §6): one window per business day in
//! Asia/Tokyo, `open → closed → reconciling → settled`, never reopened.
//!
//! - **Close** (one transaction): the open window ends (at its scheduled cut, or now
//!   for an early close); every `printed` issuance printed before the end and not yet
//!   in a window becomes one of its items, with the operator's commission fixed; items
//!   made before the window started are adjustments (late items of an earlier day);
//!   every `paid` issuance made before the end, print outcome unknown or unreported,
//!   becomes `recon_required` and is listed; the next window opens.
//! - **Report**: per operator and per municipality, JSON Lines + CSV, each with a
//!   detached signature by the center key (`settlement` crate).
//! - **Reconcile**: an operator's transaction file, matched line by line against the
//!   window's items; the latest result per operator is kept.
//! - **Finalise** (one transaction): only when every operator with items has a clean
//!   reconciliation; the window becomes `settled` and its issuances `settled`.
//!
//! The arithmetic and file formats live in the `settlement` crate; this module owns
//! the database side.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures_util::FutureExt as _;
use schemas::settlement::{ReportParty, WindowState};
use schemas::{CertificateType, KeyPair, KioskId, MunicipalityCode, OperatorId, RequestId};
use settlement::{BusinessDate, CutTime, Item, MatchReport, PairTotal, ReconItem, Report};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row as _};

use crate::configuration::{ConfigError, Settings};
use crate::db::{self, DbError, IssuanceState};
use crate::store::{Decision, Store};

/// Upper bound on windows closed by one `close_due_windows` (a center down for more
/// than a year catches up over several sweeps).
const MAX_WINDOWS_PER_CATCH_UP: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Window(#[from] settlement::WindowError),
    #[error("no settlement window {0}")]
    NoWindow(String),
    #[error("window {business_date} is not due: its cut is at {cut_at} (use an early close to end it now)")]
    NotDue {
        business_date: String,
        cut_at: String,
    },
    #[error("window {business_date} is {state}; {action} needs it {wanted}")]
    WrongState {
        business_date: String,
        state: &'static str,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("window {business_date} cannot be finalised: {}", .reasons.join("; "))]
    Unmatched {
        business_date: String,
        reasons: Vec<String>,
    },
    #[error(transparent)]
    OperatorFile(#[from] settlement::OperatorFileError),
    #[error("operator {0} is not configured")]
    UnknownOperator(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("stored settlement row is malformed: {0}")]
    Corrupt(String),
    #[error("another closer moved window {0} first; try again")]
    Raced(String),
}

/// What settlement needs from the settings.
#[derive(Clone, Debug)]
pub struct SettlementConfig {
    pub cut: CutTime,
    /// The configured operators and their commission per copy (integer yen).
    pub commission_yen_per_copy: BTreeMap<OperatorId, i64>,
    /// The configured municipalities (each gets a report even on a day without items).
    pub municipalities: Vec<MunicipalityCode>,
}

impl SettlementConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            cut: settings.settlement.cut()?,
            commission_yen_per_copy: settings
                .operators
                .iter()
                .map(|o| (o.id.clone(), o.commission_yen_per_copy))
                .collect(),
            municipalities: settings.municipalities.iter().map(|m| m.code).collect(),
        })
    }
}

/// One window as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRow {
    pub business_date: BusinessDate,
    pub state: WindowState,
    pub starts_at_unix_ms: i64,
    pub ends_at_unix_ms: i64,
    pub opened_at_unix_ms: i64,
    pub closed_at_unix_ms: Option<i64>,
    pub settled_at_unix_ms: Option<i64>,
}

impl WindowRow {
    fn info(&self) -> settlement::WindowInfo {
        settlement::WindowInfo {
            business_date: self.business_date,
            state: self.state,
            starts_at_unix_ms: self.starts_at_unix_ms,
            ends_at_unix_ms: self.ends_at_unix_ms,
        }
    }
}

const WINDOW_COLUMNS: &str = "business_date, state, starts_at_unix_ms, ends_at_unix_ms, \
     opened_at_unix_ms, closed_at_unix_ms, settled_at_unix_ms";

fn window_of(row: &AnyRow) -> Result<WindowRow, SettlementError> {
    let date: String = row.try_get("business_date")?;
    let state: String = row.try_get("state")?;
    Ok(WindowRow {
        business_date: BusinessDate::parse(&date)
            .map_err(|_| SettlementError::Corrupt(format!("business date {date}")))?,
        state: WindowState::parse(&state)
            .ok_or_else(|| SettlementError::Corrupt(format!("window state {state}")))?,
        starts_at_unix_ms: row.try_get("starts_at_unix_ms")?,
        ends_at_unix_ms: row.try_get("ends_at_unix_ms")?,
        opened_at_unix_ms: row.try_get("opened_at_unix_ms")?,
        closed_at_unix_ms: row.try_get("closed_at_unix_ms")?,
        settled_at_unix_ms: row.try_get("settled_at_unix_ms")?,
    })
}

pub async fn find_window(
    pool: &AnyPool,
    date: BusinessDate,
) -> Result<Option<WindowRow>, SettlementError> {
    let row = sqlx::query(&format!(
        "SELECT {WINDOW_COLUMNS} FROM settlement_windows WHERE business_date = $1"
    ))
    .bind(date.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(window_of).transpose()
}

/// Every window, oldest first (bounded: one row per day).
pub async fn list_windows(pool: &AnyPool) -> Result<Vec<WindowRow>, SettlementError> {
    let rows = sqlx::query(&format!(
        "SELECT {WINDOW_COLUMNS} FROM settlement_windows ORDER BY business_date"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(window_of).collect()
}

async fn open_window(pool: &AnyPool) -> Result<Option<WindowRow>, SettlementError> {
    let row = sqlx::query(&format!(
        "SELECT {WINDOW_COLUMNS} FROM settlement_windows WHERE state = 'open'"
    ))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(window_of).transpose()
}

/// The open window, created when there is none yet: the first window is the business
/// day containing `now`. (After a close the next window already exists.)
pub async fn ensure_open_window(
    store: &Store,
    config: &SettlementConfig,
    now_unix_ms: i64,
) -> Result<WindowRow, SettlementError> {
    let pool = store.pool();
    if let Some(window) = open_window(pool).await? {
        return Ok(window);
    }
    let last = sqlx::query(&format!(
        "SELECT {WINDOW_COLUMNS} FROM settlement_windows ORDER BY business_date DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    let (date, starts_at) = match last.as_ref().map(window_of).transpose()? {
        // Only reachable if a close was interrupted between statements of another
        // version; the window after the last one keeps the chain unbroken.
        Some(last) => (last.business_date.next()?, last.ends_at_unix_ms),
        None => {
            let date = BusinessDate::containing(now_unix_ms, config.cut)?;
            (date, date.start_unix_ms(config.cut)?)
        }
    };
    // Two replicas may race here: the primary key and the one-open index let exactly
    // one insert win; the loser reads the winner's window.
    let ends_at = date.cut_unix_ms(config.cut)?;
    let inserted = store
        .write(move |connection| {
            async move {
                let inserted = sqlx::query(
                    "INSERT INTO settlement_windows (business_date, state, starts_at_unix_ms, \
                       ends_at_unix_ms, opened_at_unix_ms) VALUES ($1, 'open', $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(date.to_string())
                .bind(starts_at)
                .bind(ends_at)
                .bind(now_unix_ms)
                .execute(&mut *connection)
                .await?;
                Ok::<_, SettlementError>(Decision::Commit(inserted.rows_affected()))
            }
            .boxed()
        })
        .await?;
    if inserted == 1 {
        tracing::info!(business_date = %date, "settlement window opened");
    }
    open_window(pool)
        .await?
        .ok_or_else(|| SettlementError::Raced(date.to_string()))
}

/// What one close did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseSummary {
    pub window: WindowRow,
    pub items: u64,
    pub adjustments: u64,
    pub recon_required: u64,
    pub gross_yen: i64,
    pub next: WindowRow,
}

/// Closes the open window: at its scheduled cut if that has passed, or (with
/// `early`) now. Refuses a window that is not due unless `early`.
pub async fn close_open_window(
    store: &Store,
    config: &SettlementConfig,
    now_unix_ms: i64,
    early: bool,
) -> Result<CloseSummary, SettlementError> {
    let window = ensure_open_window(store, config, now_unix_ms).await?;
    let ends_at = if now_unix_ms >= window.ends_at_unix_ms {
        window.ends_at_unix_ms
    } else if early {
        now_unix_ms
    } else {
        return Err(SettlementError::NotDue {
            business_date: window.business_date.to_string(),
            cut_at: format_jst(window.ends_at_unix_ms),
        });
    };
    close(store, config, &window, ends_at, now_unix_ms).await
}

/// Closes every window whose cut has passed (the sweep calls this), oldest first.
pub async fn close_due_windows(
    store: &Store,
    config: &SettlementConfig,
    now_unix_ms: i64,
) -> Result<Vec<CloseSummary>, SettlementError> {
    let mut closed = Vec::new();
    for _ in 0..MAX_WINDOWS_PER_CATCH_UP {
        let window = ensure_open_window(store, config, now_unix_ms).await?;
        if now_unix_ms < window.ends_at_unix_ms {
            break;
        }
        match close(store, config, &window, window.ends_at_unix_ms, now_unix_ms).await {
            Ok(summary) => closed.push(summary),
            // Another replica closed it: look at the next one.
            Err(SettlementError::Raced(_)) => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(closed)
}

async fn close(
    store: &Store,
    config: &SettlementConfig,
    window: &WindowRow,
    ends_at: i64,
    now_unix_ms: i64,
) -> Result<CloseSummary, SettlementError> {
    assert!(ends_at <= window.ends_at_unix_ms && ends_at <= now_unix_ms);
    let date = window.business_date.to_string();
    let next_date = window.business_date.next()?;
    let (config_owned, window_owned, date_owned) = (config.clone(), window.clone(), date.clone());
    let (recon_required, recon_by_municipality) = store
        .write(move |connection| {
            async move {
                close_rows(
                    connection,
                    &config_owned,
                    &window_owned,
                    &date_owned,
                    next_date,
                    ends_at,
                    now_unix_ms,
                )
                .await
            }
            .boxed()
        })
        .await?;
    for (municipality, request_ids) in &recon_by_municipality {
        alert_recon_required(&date, municipality, request_ids);
    }

    let (closed, items, _) = window_contents(store, window.business_date).await?;
    let next = find_window(store, next_date)
        .await?
        .ok_or_else(|| SettlementError::NoWindow(next_date.to_string()))?;
    let summary = CloseSummary {
        window: closed,
        items: items.len() as u64,
        adjustments: items.iter().filter(|i| i.adjustment).count() as u64,
        recon_required,
        gross_yen: items.iter().map(|i| i.gross_yen).sum(),
        next,
    };
    tracing::info!(
        business_date = %date,
        items = summary.items,
        adjustments = summary.adjustments,
        recon_required = summary.recon_required,
        gross_yen = summary.gross_yen,
        "settlement window closed"
    );
    Ok(summary)
}

/// The close's statements (one transaction): the window closed, its items and recon
/// items written, the next window opened. Answers the recon count and ids by
/// municipality, for the alerts once committed.
async fn close_rows(
    connection: &mut AnyConnection,
    config: &SettlementConfig,
    window: &WindowRow,
    date: &str,
    next_date: BusinessDate,
    ends_at: i64,
    now_unix_ms: i64,
) -> Result<Decision<(u64, BTreeMap<String, Vec<String>>)>, SettlementError> {
    let moved = sqlx::query(
        "UPDATE settlement_windows SET state = 'closed', ends_at_unix_ms = $1, \
           closed_at_unix_ms = $2 WHERE business_date = $3 AND state = 'open'",
    )
    .bind(ends_at)
    .bind(now_unix_ms)
    .bind(date)
    .execute(&mut *connection)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(SettlementError::Raced(date.to_owned()));
    }
    // Items: every printed issuance printed before the end and in no window yet, with
    // its operator's commission (configured operators first, then the default for
    // any operator no longer configured).
    let insert_items = |operator_filter: &'static str| {
        format!(
            "INSERT INTO settlement_items (request_id, business_date, operator_id, kiosk_id, \
               municipality_code, certificate_type, copies, gross_yen, \
               commission_per_copy_yen, printed_at_unix_ms, adjustment) \
             SELECT i.request_id, $1, i.operator_id, i.kiosk_id, i.municipality_code, \
               i.certificate_type, i.copies, i.paid_yen, $2, i.printed_at_unix_ms, \
               CASE WHEN i.created_at_unix_ms < $3 THEN 1 ELSE 0 END \
             FROM issuances i \
             WHERE i.state = 'printed' AND i.printed_at_unix_ms < $4 {operator_filter} \
               AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.request_id = i.request_id)"
        )
    };
    let with_operator = insert_items("AND i.operator_id = $5");
    for (operator, commission) in &config.commission_yen_per_copy {
        sqlx::query(&with_operator)
            .bind(date)
            .bind(*commission)
            .bind(window.starts_at_unix_ms)
            .bind(ends_at)
            .bind(operator.as_str())
            .execute(&mut *connection)
            .await?;
    }
    sqlx::query(&insert_items(""))
        .bind(date)
        .bind(schemas::settlement::DEFAULT_COMMISSION_YEN_PER_COPY)
        .bind(window.starts_at_unix_ms)
        .bind(ends_at)
        .execute(&mut *connection)
        .await?;
    // Paid with no known print outcome at the cut: recon_required, listed here.
    let unresolved = sqlx::query(
        "SELECT request_id, operator_id, kiosk_id, municipality_code, paid_yen FROM issuances \
         WHERE state = 'paid' AND created_at_unix_ms < $1 ORDER BY request_id",
    )
    .bind(ends_at)
    .fetch_all(&mut *connection)
    .await?;
    let mut recon_required = 0u64;
    // Per municipality, for one alert each once the close is committed.
    let mut recon_by_municipality: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for row in &unresolved {
        let request_id: String = row.try_get("request_id")?;
        let detail = format!("print outcome unknown at the cut of window {date}");
        let moved = move_issuance(
            connection,
            &request_id,
            (IssuanceState::Paid, IssuanceState::ReconRequired),
            "recon_required",
            &detail,
            now_unix_ms,
        )
        .await?;
        if !moved {
            // A print report moved it after it was read: it is resolved, not unknown.
            continue;
        }
        recon_required += 1;
        sqlx::query(
            "INSERT INTO settlement_recon_items (request_id, business_date, operator_id, \
               kiosk_id, municipality_code, paid_yen) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&request_id)
        .bind(date)
        .bind(row.try_get::<String, _>("operator_id")?)
        .bind(row.try_get::<String, _>("kiosk_id")?)
        .bind(row.try_get::<String, _>("municipality_code")?)
        .bind(row.try_get::<Option<i64>, _>("paid_yen")?.unwrap_or(0))
        .execute(&mut *connection)
        .await?;
        let municipality: String = row.try_get("municipality_code")?;
        tracing::info!(
            %request_id,
            municipality = municipality.as_str(),
            operator = row.try_get::<String, _>("operator_id")?.as_str(),
            business_date = %date,
            "paid with the print outcome unknown at the cut-off"
        );
        recon_by_municipality
            .entry(municipality)
            .or_default()
            .push(request_id);
    }
    // The next window opens in the same transaction: there is always one open window.
    sqlx::query(
        "INSERT INTO settlement_windows (business_date, state, starts_at_unix_ms, \
           ends_at_unix_ms, opened_at_unix_ms) VALUES ($1, 'open', $2, $3, $4)",
    )
    .bind(next_date.to_string())
    .bind(ends_at)
    .bind(next_date.cut_unix_ms(config.cut)?)
    .bind(now_unix_ms)
    .execute(&mut *connection)
    .await?;
    Ok(Decision::Commit((recon_required, recon_by_municipality)))
}

/// Request ids quoted in one `recon_required` alert; the count says how many there are
/// and the window's reconciliation list has them all.
const MAX_ALERT_REQUEST_IDS: usize = 200;

/// The `recon_required` alert (`crate::alerts`): one per municipality and closed
/// window, naming its issuances paid with the print outcome unknown.
fn alert_recon_required(business_date: &str, municipality: &str, request_ids: &[String]) {
    let quoted = &request_ids[..request_ids.len().min(MAX_ALERT_REQUEST_IDS)];
    tracing::warn!(
        target: "alert",
        alert = "recon_required",
        municipality,
        request_ids = %quoted.join(","),
        count = request_ids.len(),
        business_date,
        "paid with the print outcome unknown at the cut-off: reconcile with the operator"
    );
}

/// Moves one issuance `from → to` inside `tx` with its audit event; `false` when it was
/// not in `from` any more (nothing written).
async fn move_issuance(
    connection: &mut AnyConnection,
    request_id: &str,
    (from, to): (IssuanceState, IssuanceState),
    event: &str,
    detail: &str,
    now_unix_ms: i64,
) -> Result<bool, SettlementError> {
    assert!(
        from.may_become(to),
        "settlement moves only along DESIGN.md §4"
    );
    let moved = sqlx::query(
        "UPDATE issuances SET state = $1, updated_at_unix_ms = $2 \
         WHERE request_id = $3 AND state = $4",
    )
    .bind(to.as_str())
    .bind(now_unix_ms)
    .bind(request_id)
    .bind(from.as_str())
    .execute(&mut *connection)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    db::append_event(
        connection,
        request_id,
        now_unix_ms,
        event,
        Some(from),
        Some(to),
        Some(detail),
    )
    .await?;
    Ok(true)
}

fn parse_stored<T, E: std::fmt::Display>(
    text: String,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, SettlementError> {
    parse(&text).map_err(|e| SettlementError::Corrupt(format!("{text}: {e}")))
}

fn item_of(row: &AnyRow) -> Result<Item, SettlementError> {
    let copies: i64 = row.try_get("copies")?;
    Ok(Item {
        request_id: parse_stored(row.try_get("request_id")?, |t| t.parse::<RequestId>())?,
        operator_id: parse_stored(row.try_get("operator_id")?, |t| OperatorId::parse(t))?,
        kiosk_id: parse_stored(row.try_get("kiosk_id")?, |t| KioskId::parse(t))?,
        municipality_code: parse_stored(
            row.try_get("municipality_code")?,
            MunicipalityCode::parse,
        )?,
        certificate_type: parse_stored(row.try_get("certificate_type")?, |t| {
            CertificateType::parse(t).ok_or("unknown certificate type")
        })?,
        copies: u32::try_from(copies)
            .map_err(|_| SettlementError::Corrupt(format!("copies {copies}")))?,
        gross_yen: row.try_get("gross_yen")?,
        commission_per_copy_yen: row.try_get("commission_per_copy_yen")?,
        printed_at_unix_ms: row.try_get("printed_at_unix_ms")?,
        adjustment: row.try_get::<i64, _>("adjustment")? != 0,
    })
}

fn recon_of(row: &AnyRow) -> Result<ReconItem, SettlementError> {
    Ok(ReconItem {
        request_id: parse_stored(row.try_get("request_id")?, |t| t.parse::<RequestId>())?,
        operator_id: parse_stored(row.try_get("operator_id")?, |t| OperatorId::parse(t))?,
        kiosk_id: parse_stored(row.try_get("kiosk_id")?, |t| KioskId::parse(t))?,
        municipality_code: parse_stored(
            row.try_get("municipality_code")?,
            MunicipalityCode::parse,
        )?,
        paid_yen: row.try_get("paid_yen")?,
    })
}

/// A window with its items and recon items (sorted by request id).
pub async fn window_contents(
    pool: &AnyPool,
    date: BusinessDate,
) -> Result<(WindowRow, Vec<Item>, Vec<ReconItem>), SettlementError> {
    let window = find_window(pool, date)
        .await?
        .ok_or_else(|| SettlementError::NoWindow(date.to_string()))?;
    let items = sqlx::query(
        "SELECT request_id, operator_id, kiosk_id, municipality_code, certificate_type, copies, \
           gross_yen, commission_per_copy_yen, printed_at_unix_ms, adjustment \
         FROM settlement_items WHERE business_date = $1 ORDER BY request_id",
    )
    .bind(date.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(item_of)
    .collect::<Result<Vec<_>, _>>()?;
    let recon = sqlx::query(
        "SELECT request_id, operator_id, kiosk_id, municipality_code, paid_yen \
         FROM settlement_recon_items WHERE business_date = $1 ORDER BY request_id",
    )
    .bind(date.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(recon_of)
    .collect::<Result<Vec<_>, _>>()?;
    Ok((window, items, recon))
}

fn require_closed(window: &WindowRow, action: &'static str) -> Result<(), SettlementError> {
    match window.state {
        WindowState::Closed | WindowState::Reconciling => Ok(()),
        WindowState::Open | WindowState::Settled => Err(SettlementError::WrongState {
            business_date: window.business_date.to_string(),
            state: window.state.as_str(),
            action,
            wanted: "closed or reconciling",
        }),
    }
}

/// The reports of one window, written into a directory.
#[derive(Clone, Debug)]
pub struct WrittenReports {
    pub window: WindowRow,
    /// Every file written (JSON Lines, CSV and their `.sig`), in write order.
    pub files: Vec<PathBuf>,
    /// The window's totals per (operator, municipality).
    pub totals: Vec<PairTotal>,
    pub recon_required: Vec<ReconItem>,
}

/// Writes one report per operator and per municipality (configured ones, plus any
/// party with items) for a closed window: `.jsonl`, `.csv` and a `.sig` for each.
pub async fn write_reports(
    pool: &AnyPool,
    config: &SettlementConfig,
    center_key: &KeyPair,
    date: BusinessDate,
    out_dir: &Path,
    now_unix_ms: i64,
) -> Result<WrittenReports, SettlementError> {
    let (window, items, recon) = window_contents(pool, date).await?;
    if window.state == WindowState::Open {
        return Err(SettlementError::WrongState {
            business_date: date.to_string(),
            state: window.state.as_str(),
            action: "a report",
            wanted: "closed",
        });
    }
    let operators: BTreeSet<OperatorId> = config
        .commission_yen_per_copy
        .keys()
        .cloned()
        .chain(items.iter().map(|i| i.operator_id.clone()))
        .chain(recon.iter().map(|r| r.operator_id.clone()))
        .collect();
    let municipalities: BTreeSet<MunicipalityCode> = config
        .municipalities
        .iter()
        .copied()
        .chain(items.iter().map(|i| i.municipality_code))
        .chain(recon.iter().map(|r| r.municipality_code))
        .collect();
    let parties = operators
        .into_iter()
        .map(ReportParty::Operator)
        .chain(municipalities.into_iter().map(ReportParty::Municipality));
    std::fs::create_dir_all(out_dir).map_err(|source| SettlementError::Write {
        path: out_dir.display().to_string(),
        source,
    })?;
    let mut files = Vec::new();
    for party in parties {
        let report = Report::for_party(window.info(), party, &items, &recon, now_unix_ms);
        let stem = settlement::report_file_stem(&report);
        for (extension, text) in [
            ("jsonl", settlement::render_jsonl(&report, center_key.kid())),
            ("csv", settlement::render_csv(&report)),
        ] {
            let name = format!("{stem}.{extension}");
            let signature = settlement::sign_report(&name, text.as_bytes(), center_key);
            let signature_text = serde_json::to_string_pretty(&signature)
                .map_err(|e| SettlementError::Corrupt(e.to_string()))?;
            let path = out_dir.join(&name);
            write_file(&path, text.as_bytes())?;
            let sig_path = out_dir.join(format!("{name}.sig"));
            write_file(&sig_path, signature_text.as_bytes())?;
            files.push(path);
            files.push(sig_path);
        }
    }
    Ok(WrittenReports {
        window,
        files,
        totals: settlement::pair_totals(&items),
        recon_required: recon,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SettlementError> {
    std::fs::write(path, bytes).map_err(|source| SettlementError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Matches an operator's transaction file against the window's items, keeps the
/// result (the latest per operator), and moves the window to `reconciling`.
pub async fn reconcile_operator(
    store: &Store,
    date: BusinessDate,
    operator: &OperatorId,
    file_bytes: &[u8],
    now_unix_ms: i64,
) -> Result<MatchReport, SettlementError> {
    let (window, items, _) = window_contents(store, date).await?;
    require_closed(&window, "a reconciliation")?;
    let text = std::str::from_utf8(file_bytes).map_err(|e| {
        settlement::OperatorFileError::Lines(vec![format!("the file is not UTF-8: {e}")])
    })?;
    let rows = settlement::parse_operator_file(text)?;
    let file_sha256 = hex::encode(schemas::sha256(file_bytes));
    let report = settlement::reconcile(date, operator, &items, &rows, &file_sha256);
    let s = &report.summary;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let counts = [
        count(s.matched),
        count(s.missing_at_center),
        count(s.missing_at_operator),
        count(s.amount_mismatch),
    ];
    let matched_yen = s.matched_yen;
    let operator_text = operator.to_string();
    store
        .write(move |connection| {
            async move {
                let stored = StoredReconciliation {
                    date,
                    operator: &operator_text,
                    file_sha256: &file_sha256,
                    counts,
                    matched_yen,
                };
                record_reconciliation(connection, &stored, now_unix_ms).await
            }
            .boxed()
        })
        .await?;
    tracing::info!(
        business_date = %date,
        operator = %operator,
        matched = s.matched,
        missing_at_center = s.missing_at_center,
        missing_at_operator = s.missing_at_operator,
        amount_mismatch = s.amount_mismatch,
        "operator transaction file reconciled"
    );
    Ok(report)
}

/// One operator's reconciliation result as it is stored.
struct StoredReconciliation<'a> {
    date: BusinessDate,
    operator: &'a str,
    file_sha256: &'a str,
    /// matched, missing at center, missing at operator, amount mismatch.
    counts: [i64; 4],
    matched_yen: i64,
}

/// The reconciliation's statements (one transaction): the operator's previous result
/// replaced, the window moved to `reconciling`.
async fn record_reconciliation(
    connection: &mut AnyConnection,
    stored: &StoredReconciliation<'_>,
    now_unix_ms: i64,
) -> Result<Decision<()>, SettlementError> {
    let date = stored.date.to_string();
    sqlx::query(
        "DELETE FROM settlement_reconciliations WHERE business_date = $1 AND operator_id = $2",
    )
    .bind(&date)
    .bind(stored.operator)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO settlement_reconciliations (business_date, operator_id, \
           submitted_at_unix_ms, operator_file_sha256, matched, missing_at_center, \
           missing_at_operator, amount_mismatch, matched_yen) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&date)
    .bind(stored.operator)
    .bind(now_unix_ms)
    .bind(stored.file_sha256)
    .bind(stored.counts[0])
    .bind(stored.counts[1])
    .bind(stored.counts[2])
    .bind(stored.counts[3])
    .bind(stored.matched_yen)
    .execute(&mut *connection)
    .await?;
    // The window may have been finalised meanwhile: then this does nothing and the
    // stored result is only informative.
    sqlx::query(
        "UPDATE settlement_windows SET state = 'reconciling' \
         WHERE business_date = $1 AND state = 'closed'",
    )
    .bind(&date)
    .execute(&mut *connection)
    .await?;
    Ok(Decision::Commit(()))
}

/// What a finalisation settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizeSummary {
    pub window: WindowRow,
    pub items: u64,
    pub gross_yen: i64,
}

/// Settles a window: refused while any operator with items lacks a clean
/// reconciliation, or any submitted reconciliation has unmatched lines.
pub async fn finalize(
    store: &Store,
    date: BusinessDate,
    now_unix_ms: i64,
) -> Result<FinalizeSummary, SettlementError> {
    let pool = store.pool();
    let (window, items, _) = window_contents(pool, date).await?;
    require_closed(&window, "finalising")?;
    let reconciliations = sqlx::query(
        "SELECT operator_id, matched, missing_at_center, missing_at_operator, amount_mismatch \
         FROM settlement_reconciliations WHERE business_date = $1 ORDER BY operator_id",
    )
    .bind(date.to_string())
    .fetch_all(pool)
    .await?;
    let mut reasons = Vec::new();
    let mut clean = BTreeSet::new();
    for row in &reconciliations {
        let operator: String = row.try_get("operator_id")?;
        let missing_at_center: i64 = row.try_get("missing_at_center")?;
        let missing_at_operator: i64 = row.try_get("missing_at_operator")?;
        let amount_mismatch: i64 = row.try_get("amount_mismatch")?;
        if missing_at_center + missing_at_operator + amount_mismatch == 0 {
            clean.insert(operator);
        } else {
            reasons.push(format!(
                "operator {operator}: {missing_at_center} missing at center, \
                 {missing_at_operator} missing at operator, {amount_mismatch} amount mismatch"
            ));
        }
    }
    let with_items: BTreeSet<String> = items.iter().map(|i| i.operator_id.to_string()).collect();
    for operator in &with_items {
        let submitted = reconciliations
            .iter()
            .any(|r| r.try_get::<String, _>("operator_id").ok().as_deref() == Some(operator));
        if !submitted {
            reasons.push(format!(
                "operator {operator} has not submitted its transaction file"
            ));
        }
    }
    if !reasons.is_empty() {
        tracing::warn!(business_date = %date, ?reasons, "finalisation refused");
        return Err(SettlementError::Unmatched {
            business_date: date.to_string(),
            reasons,
        });
    }
    let request_ids: Vec<String> = items.iter().map(|i| i.request_id.to_string()).collect();
    store
        .write(move |connection| {
            async move { settle_rows(connection, date, &request_ids, now_unix_ms).await }.boxed()
        })
        .await?;
    let window = find_window(pool, date)
        .await?
        .ok_or_else(|| SettlementError::NoWindow(date.to_string()))?;
    let summary = FinalizeSummary {
        window,
        items: items.len() as u64,
        gross_yen: items.iter().map(|i| i.gross_yen).sum(),
    };
    tracing::info!(business_date = %date, items = summary.items, gross_yen = summary.gross_yen, "settlement window settled");
    Ok(summary)
}

/// The finalisation's statements (one transaction): the window settled and each of its
/// items moved `printed → settled`.
async fn settle_rows(
    connection: &mut AnyConnection,
    date: BusinessDate,
    request_ids: &[String],
    now_unix_ms: i64,
) -> Result<Decision<()>, SettlementError> {
    let moved = sqlx::query(
        "UPDATE settlement_windows SET state = 'settled', settled_at_unix_ms = $1 \
         WHERE business_date = $2 AND state IN ('closed', 'reconciling')",
    )
    .bind(now_unix_ms)
    .bind(date.to_string())
    .execute(&mut *connection)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(SettlementError::Raced(date.to_string()));
    }
    for request_id in request_ids {
        let moved = move_issuance(
            connection,
            request_id,
            (IssuanceState::Printed, IssuanceState::Settled),
            "settled",
            &date.to_string(),
            now_unix_ms,
        )
        .await?;
        if !moved {
            // An item is printed until its window settles, and a window settles once.
            return Err(SettlementError::Corrupt(format!(
                "item {request_id} of window {date} is not printed"
            )));
        }
    }
    Ok(Decision::Commit(()))
}

/// Where every yen ever paid is, integer yen. Conservation holds when
/// `paid_yen == in_windows_yen + refunded_yen + recon_required_yen +
/// printed_outside_windows_yen + paid_unresolved_yen`, and after a close with nothing
/// in flight the last two are zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoneyBalance {
    pub paid_yen: i64,
    /// Σ gross of every window's items (closed, reconciling or settled windows).
    pub in_windows_yen: i64,
    /// Σ gross of items of settled windows only.
    pub settled_yen: i64,
    pub refunded_yen: i64,
    /// Σ paid of issuances now `recon_required`.
    pub recon_required_yen: i64,
    /// Σ paid of `printed` issuances not in any window yet (the open window's).
    pub printed_outside_windows_yen: i64,
    /// Σ paid of issuances still `paid` (print outcome not reported yet).
    pub paid_unresolved_yen: i64,
}

pub async fn money_balance(pool: &AnyPool) -> Result<MoneyBalance, SettlementError> {
    // CAST: PostgreSQL's SUM(bigint) is numeric, which the Any driver cannot decode.
    let row = sqlx::query(
        "SELECT \
           CAST((SELECT COALESCE(SUM(paid_yen), 0) FROM issuances) AS BIGINT) AS paid_yen, \
           CAST((SELECT COALESCE(SUM(gross_yen), 0) FROM settlement_items) AS BIGINT) AS in_windows_yen, \
           CAST((SELECT COALESCE(SUM(s.gross_yen), 0) FROM settlement_items s \
                 JOIN settlement_windows w ON w.business_date = s.business_date \
                 WHERE w.state = 'settled') AS BIGINT) AS settled_yen, \
           CAST((SELECT COALESCE(SUM(amount_yen), 0) FROM refunds) AS BIGINT) AS refunded_yen, \
           CAST((SELECT COALESCE(SUM(paid_yen), 0) FROM issuances WHERE state = 'recon_required') AS BIGINT) AS recon_required_yen, \
           CAST((SELECT COALESCE(SUM(i.paid_yen), 0) FROM issuances i WHERE i.state = 'printed' \
                 AND NOT EXISTS (SELECT 1 FROM settlement_items s WHERE s.request_id = i.request_id)) AS BIGINT) AS printed_outside_windows_yen, \
           CAST((SELECT COALESCE(SUM(paid_yen), 0) FROM issuances WHERE state = 'paid') AS BIGINT) AS paid_unresolved_yen",
    )
    .fetch_one(pool)
    .await?;
    Ok(MoneyBalance {
        paid_yen: row.try_get("paid_yen")?,
        in_windows_yen: row.try_get("in_windows_yen")?,
        settled_yen: row.try_get("settled_yen")?,
        refunded_yen: row.try_get("refunded_yen")?,
        recon_required_yen: row.try_get("recon_required_yen")?,
        printed_outside_windows_yen: row.try_get("printed_outside_windows_yen")?,
        paid_unresolved_yen: row.try_get("paid_unresolved_yen")?,
    })
}

/// `2026-11-25 23:30 JST`, for messages.
pub fn format_jst(at_unix_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_unix_ms)
        .ok()
        .and_then(|t| {
            jiff::tz::TimeZone::get("Asia/Tokyo")
                .ok()
                .map(|tz| t.to_zoned(tz).strftime("%Y-%m-%d %H:%M JST").to_string())
        })
        .unwrap_or_else(|| format!("{at_unix_ms} ms"))
}
