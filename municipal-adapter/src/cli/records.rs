//! `municipal-adapter records …`: the issuance record (交付記録) for the municipality's
//! staff.
//!
//! ```text
//! municipal-adapter records list --config FILE --municipality CODE [--date YYYY-MM-DD] [--json]
//! ```
//!
//! `--date` is a calendar day in JST (the printed time's day); without it every record
//! is listed. The default output is one line per certificate (printed time in JST,
//! request id, type, copies, fee, operator/kiosk, holder) and a total; `--json` prints
//! one JSON object per line instead, nothing else.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use schemas::MunicipalityCode;

use crate::configuration::Settings;
use crate::db::connect_and_migrate;
use crate::issuance_records::{format_jst, jst_day_range_unix_ms, list, IssuanceRecord};

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// List the certificates printed for one municipality (oldest first).
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "CODE")]
        municipality: String,
        /// Only certificates printed on this day (JST).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// One JSON object per line instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsCliError {
    #[error("{0}")]
    Settings(#[from] crate::configuration::SettingsError),
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
    #[error("{0}")]
    Records(#[from] crate::issuance_records::NoticeError),
    #[error("{0}")]
    Usage(String),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One `--json` line: the record plus its display forms.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    #[serde(flatten)]
    record: &'a IssuanceRecord,
    printed_at_jst: String,
    certificate_title_ja: &'static str,
}

fn print_line(out: &mut impl Write, record: &IssuanceRecord) -> std::io::Result<()> {
    writeln!(
        out,
        "{printed}  {id}  {title}  {copies}通  {fee}円  {operator}/{kiosk}  {name}",
        printed = format_jst(record.printed_at_unix_ms),
        id = record.request_id,
        title = record.certificate_type.title_ja(),
        copies = record.copies,
        fee = record.total_fee_yen,
        operator = record.operator_id,
        kiosk = record.kiosk_id,
        name = record.subject_name.as_deref().unwrap_or("（氏名不明）"),
    )
}

/// Runs one `records` subcommand, writing its report to `out`.
pub async fn run(command: RecordsCommand, out: &mut impl Write) -> Result<(), RecordsCliError> {
    match command {
        RecordsCommand::List {
            config,
            municipality,
            date,
            json,
        } => {
            let settings = Settings::load(&config)?;
            let code = MunicipalityCode::parse(&municipality)
                .map_err(|e| RecordsCliError::Usage(format!("--municipality: {e}")))?;
            if !settings.municipalities.iter().any(|m| m.code == code) {
                return Err(RecordsCliError::Usage(format!(
                    "municipality {code} is not configured in {}",
                    config.display()
                )));
            }
            let (from_unix_ms, to_unix_ms) = match &date {
                Some(day) => jst_day_range_unix_ms(day)
                    .map_err(|e| RecordsCliError::Usage(format!("--date: {e}")))?,
                None => (i64::MIN, i64::MAX),
            };
            let pool = connect_and_migrate(&settings.database_url).await?;
            let records = list(&pool, code, from_unix_ms, to_unix_ms).await?;
            if json {
                for record in &records {
                    let line = JsonLine {
                        record,
                        printed_at_jst: format_jst(record.printed_at_unix_ms),
                        certificate_title_ja: record.certificate_type.title_ja(),
                    };
                    writeln!(out, "{}", serde_json::to_string(&line)?)?;
                }
                return Ok(());
            }
            let day = date.as_deref().map(str::trim).unwrap_or("all days");
            writeln!(out, "交付記録 {code} ({day}, JST)")?;
            for record in &records {
                print_line(out, record)?;
            }
            let copies: u64 = records.iter().map(|r| u64::from(r.copies)).sum();
            let fee_yen: i64 = records.iter().map(|r| r.total_fee_yen).sum();
            writeln!(out, "{}件  {copies}通  {fee_yen}円", records.len())?;
            Ok(())
        }
    }
}
