//! `municipal-adapter import --config FILE --municipality CODE DIR`: validates a CSV
//! register directory (layout: `schemas/register/README.md`) and replaces the
//! municipality's register with it.
//!
//! Every bad row is reported on stderr as `file:line: column: reason`, and then
//! nothing is imported (exit code 1). Importing the same files again reports
//! `unchanged` and writes nothing.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use schemas::MunicipalityCode;

use crate::configuration::Settings;
use crate::db::connect_and_migrate;
use crate::register::{import_register_dir, ImportError};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The adapter's settings (for its database).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The municipality whose register DIR holds; it must be configured in FILE.
    #[arg(long, value_name = "CODE")]
    pub municipality: String,
    /// The register directory (residents.csv and the optional ledgers).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportCliError {
    #[error("{0}")]
    Settings(#[from] crate::configuration::SettingsError),
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
    #[error("{0}")]
    Usage(String),
    /// The bad rows were written to the error stream; nothing was imported.
    #[error("{count} bad row(s) in {dir}: nothing imported")]
    Rejected { count: usize, dir: String },
    #[error("{0}")]
    Import(ImportError),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

/// Today in Asia/Tokyo (dates in the register must not be later).
pub fn today_in_tokyo() -> Result<jiff::civil::Date, String> {
    jiff::Timestamp::now()
        .in_tz(crate::issuance::ISSUE_TIME_ZONE)
        .map(|z| z.date())
        .map_err(|e| format!("time zone {}: {e}", crate::issuance::ISSUE_TIME_ZONE))
}

/// Runs `import`: the summary goes to `out`, every bad row to `err`.
pub async fn run(
    args: ImportArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<(), ImportCliError> {
    let settings = Settings::load(&args.config)?;
    let code = MunicipalityCode::parse(&args.municipality)
        .map_err(|e| ImportCliError::Usage(format!("--municipality: {e}")))?;
    if !settings.municipalities.iter().any(|m| m.code == code) {
        return Err(ImportCliError::Usage(format!(
            "municipality {code} is not configured in {}",
            args.config.display()
        )));
    }
    let today = today_in_tokyo().map_err(ImportCliError::Usage)?;
    let pool = connect_and_migrate(&settings.database_url).await?;
    match import_register_dir(&pool, code, &args.dir, today).await {
        Ok(outcome) => {
            writeln!(out, "municipality {code}: {outcome}")?;
            Ok(())
        }
        Err(ImportError::Invalid(rows)) => {
            for row in &rows {
                writeln!(err, "{row}")?;
            }
            Err(ImportCliError::Rejected {
                count: rows.len(),
                dir: args.dir.display().to_string(),
            })
        }
        Err(other) => Err(ImportCliError::Import(other)),
    }
}
