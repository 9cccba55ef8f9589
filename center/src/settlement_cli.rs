//! `center settlement …`: the operator of the center closes windows, writes the
//! signed reports, reconciles each chain operator's transaction file and finalises.
//! Works directly on the center's database named in the settings file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use center::configuration::Settings;
use center::settlement::{self as store, SettlementConfig, SettlementError};
use clap::{Args, Subcommand};
use schemas::settlement::DetachedSignature;
use schemas::{KeyPair, OperatorId, PublicKey};
use settlement::BusinessDate;

/// Exit status of a failed command (bad settings, database, file, state).
pub const EXIT_ERROR: u8 = 2;
/// `verify`: the signature or the file does not check out.
pub const EXIT_INVALID: u8 = 1;
/// `reconcile` found unmatched lines; `finalize` was refused for them.
pub const EXIT_UNMATCHED: u8 = 3;

#[derive(Args)]
pub struct Common {
    /// The center's settings file (database, key, operators, cut time).
    #[arg(long)]
    config: PathBuf,
    /// Shift "now" by this many milliseconds (drills on a shifted center clock).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_ms: i64,
}

#[derive(Subcommand)]
pub enum SettlementCommand {
    /// List every window with its state and span.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Close the open window (at its cut if passed; with --early, now) and open the next.
    Close {
        #[command(flatten)]
        common: Common,
        /// End the window now, before its scheduled cut (end-of-day drills, demos).
        #[arg(long)]
        early: bool,
    },
    /// Write the signed reports of a closed window (per operator and per municipality).
    Report {
        #[command(flatten)]
        common: Common,
        /// Business date of the window, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Reconcile an operator's transaction file against a closed window.
    Reconcile {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        date: String,
        #[arg(long)]
        operator: String,
        /// The operator's transaction file (CSV, see schemas::settlement).
        #[arg(long)]
        file: PathBuf,
        /// Where the match report goes (default: next to the file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Settle a window whose every operator reconciled cleanly.
    Finalize {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        date: String,
    },
    /// Check a report file against its detached signature.
    Verify {
        /// The report (.jsonl or .csv).
        file: PathBuf,
        /// The signature (default: FILE.sig).
        #[arg(long)]
        sig: Option<PathBuf>,
        /// The center's public key, base64; or take it from --config.
        #[arg(long, conflicts_with = "config")]
        public_key: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

struct Context {
    settings: Settings,
    config: SettlementConfig,
    pool: center::store::Store,
    now_unix_ms: i64,
}

async fn open(common: &Common) -> anyhow::Result<Context> {
    let settings = Settings::load(&common.config)?;
    let config = SettlementConfig::from_settings(&settings)?;
    let pool = center::db::connect(&settings.database_url)
        .await
        .context("opening the center's database")?;
    let now_unix_ms = jiff::Timestamp::now().as_millisecond() + common.clock_offset_ms;
    Ok(Context {
        settings,
        config,
        pool,
        now_unix_ms,
    })
}

fn date(text: &str) -> anyhow::Result<BusinessDate> {
    Ok(BusinessDate::parse(text)?)
}

fn center_key(settings: &Settings) -> anyhow::Result<KeyPair> {
    let path = &settings.center_key_path;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the center key {}", path.display()))?;
    KeyPair::from_seed_base64(&text).with_context(|| format!("center key {}", path.display()))
}

pub async fn run(command: SettlementCommand) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match command {
        SettlementCommand::List { common } => {
            let ctx = open(&common).await?;
            store::ensure_open_window(&ctx.pool, &ctx.config, ctx.now_unix_ms).await?;
            println!(
                "{:<12} {:<12} {:<22} {:<22}",
                "window", "state", "from", "until"
            );
            for w in store::list_windows(&ctx.pool).await? {
                println!(
                    "{:<12} {:<12} {:<22} {:<22}",
                    w.business_date.to_string(),
                    w.state.as_str(),
                    store::format_jst(w.starts_at_unix_ms),
                    store::format_jst(w.ends_at_unix_ms)
                );
            }
            Ok(ok)
        }
        SettlementCommand::Close { common, early } => {
            let ctx = open(&common).await?;
            let s =
                store::close_open_window(&ctx.pool, &ctx.config, ctx.now_unix_ms, early).await?;
            println!(
                "closed window {} ({} – {}): {} items ({} adjustments), gross {} yen, {} recon_required; window {} is open",
                s.window.business_date,
                store::format_jst(s.window.starts_at_unix_ms),
                store::format_jst(s.window.ends_at_unix_ms),
                s.items,
                s.adjustments,
                s.gross_yen,
                s.recon_required,
                s.next.business_date
            );
            Ok(ok)
        }
        SettlementCommand::Report {
            common,
            date: d,
            out,
        } => {
            let ctx = open(&common).await?;
            let key = center_key(&ctx.settings)?;
            let written = store::write_reports(
                &ctx.pool,
                &ctx.config,
                &key,
                date(&d)?,
                &out,
                ctx.now_unix_ms,
            )
            .await?;
            print!("{}", settlement::totals_table(&written.totals));
            for file in &written.files {
                println!("wrote {}", file.display());
            }
            Ok(ok)
        }
        SettlementCommand::Reconcile {
            common,
            date: d,
            operator,
            file,
            out,
        } => {
            let ctx = open(&common).await?;
            let operator = OperatorId::parse(operator)?;
            if !ctx.config.commission_yen_per_copy.contains_key(&operator) {
                return Err(SettlementError::UnknownOperator(operator.to_string()).into());
            }
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let date = date(&d)?;
            let report =
                store::reconcile_operator(&ctx.pool, date, &operator, &bytes, ctx.now_unix_ms)
                    .await?;
            let dir = out.unwrap_or_else(|| {
                file.parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            });
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("reconciliation-{date}-operator-{operator}.jsonl"));
            std::fs::write(&path, report.to_jsonl())
                .with_context(|| format!("writing {}", path.display()))?;
            let s = &report.summary;
            println!(
                "{operator} {date}: {} matched ({} yen), {} missing at center, {} missing at operator, {} amount mismatch; match report {}",
                s.matched,
                s.matched_yen,
                s.missing_at_center,
                s.missing_at_operator,
                s.amount_mismatch,
                path.display()
            );
            Ok(if s.is_clean() {
                ok
            } else {
                std::process::ExitCode::from(EXIT_UNMATCHED)
            })
        }
        SettlementCommand::Finalize { common, date: d } => {
            let ctx = open(&common).await?;
            match store::finalize(&ctx.pool, date(&d)?, ctx.now_unix_ms).await {
                Ok(s) => {
                    println!(
                        "window {} settled: {} items, gross {} yen",
                        s.window.business_date, s.items, s.gross_yen
                    );
                    Ok(ok)
                }
                Err(error @ SettlementError::Unmatched { .. }) => {
                    eprintln!("refused: {error}");
                    Ok(std::process::ExitCode::from(EXIT_UNMATCHED))
                }
                Err(error) => Err(error.into()),
            }
        }
        SettlementCommand::Verify {
            file,
            sig,
            public_key,
            config,
        } => {
            let key = match (public_key, config) {
                (Some(text), _) => {
                    let raw = schemas::b64::Base64Bytes::decode(text.trim())
                        .context("--public-key is not base64")?;
                    PublicKey(
                        raw.try_into()
                            .map_err(|_| anyhow::anyhow!("--public-key must be 32 bytes"))?,
                    )
                }
                (None, Some(config)) => center_key(&Settings::load(&config)?)?.public(),
                (None, None) => bail!("give --public-key or --config"),
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let sig_path = sig.unwrap_or_else(|| {
                let mut name = file.as_os_str().to_owned();
                name.push(".sig");
                PathBuf::from(name)
            });
            let sig_text = std::fs::read_to_string(&sig_path)
                .with_context(|| format!("reading {}", sig_path.display()))?;
            let signature: DetachedSignature = serde_json::from_str(&sig_text)
                .with_context(|| format!("{} is not a detached signature", sig_path.display()))?;
            let mut verdict = settlement::verify_report(&bytes, &signature, &key);
            if verdict.is_ok() && file.extension().is_some_and(|e| e == "jsonl") {
                verdict = std::str::from_utf8(&bytes)
                    .map_err(|e| settlement::ReportError::Incomplete(e.to_string()))
                    .and_then(|text| settlement::parse_report_jsonl(text).map(|_| ()));
            }
            match verdict {
                Ok(()) => {
                    println!("VALID {} (signed by {})", file.display(), signature.kid);
                    Ok(ok)
                }
                Err(error) => {
                    println!("INVALID {}: {error}", file.display());
                    Ok(std::process::ExitCode::from(EXIT_INVALID))
                }
            }
        }
    }
}
