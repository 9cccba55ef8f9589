use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod audit_cli;
mod settlement_cli;
mod verify_cli;

/// 証明書交付センター — the issuance center.
#[derive(Parser)]
#[command(name = "center", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the kiosk API (mTLS) with the settings in FILE.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Log as JSON lines.
        #[arg(long)]
        json_logs: bool,
        /// Shift the center's clock by this many milliseconds (drills and tests that
        /// must run inside service hours whatever the real time; never in production).
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        clock_offset_ms: i64,
    },
    /// Check a certificate's seal against the trust list: VALID (exit 0), INVALID (1),
    /// UNKNOWN (2).
    Verify(verify_cli::VerifyArgs),
    /// The signed trust list (seal keys per municipality, revoked documents).
    TrustList {
        #[command(subcommand)]
        command: TrustListCommand,
    },
    /// 精算: settlement windows, reports, reconciliation and finalisation.
    Settlement {
        #[command(subcommand)]
        command: settlement_cli::SettlementCommand,
    },
    /// 監査ログ: seal, verify and prove the tamper-evident audit log; export a
    /// municipality's issuance records.
    Audit {
        #[command(subcommand)]
        command: audit_cli::AuditCommand,
    },
    /// Outcome notices to the municipalities (交付記録): their delivery state, and
    /// dead letters put back in the queue.
    Notices {
        #[command(subcommand)]
        command: NoticesCommand,
    },
}

#[derive(Subcommand)]
enum NoticesCommand {
    /// One line per notice: request id, municipality, state, attempts, last error.
    List {
        #[arg(long)]
        config: PathBuf,
    },
    /// Put dead letters back in the queue (after the municipality fixed its side).
    Requeue {
        #[arg(long)]
        config: PathBuf,
        /// The request whose notice to requeue.
        #[arg(
            long,
            required_unless_present = "all_dead",
            conflicts_with = "all_dead"
        )]
        request_id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all_dead: bool,
    },
}

#[derive(Subcommand)]
enum TrustListCommand {
    /// Publish (version bumped only when the content changed) and write the signed list.
    Export {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(settlement_cli::EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            json_logs,
            clock_offset_ms,
        } => {
            center::telemetry::init("info", json_logs);
            let settings = center::configuration::Settings::load(&config)?;
            let clock = center::clock::OffsetClock::default();
            clock.set_offset_ms(clock_offset_ms);
            if clock_offset_ms != 0 {
                tracing::warn!(clock_offset_ms, "the center's clock is shifted");
            }
            let app = center::startup::Application::build_with_clock(settings, Arc::new(clock))
                .await
                .context("starting the center")?;
            tracing::info!(port = app.port(), "center listening (mTLS)");
            app.run_until_stopped().await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify_cli::run(args),
        Command::Notices { command } => {
            center::telemetry::init("warn", false);
            let config = match &command {
                NoticesCommand::List { config } | NoticesCommand::Requeue { config, .. } => config,
            };
            let settings = center::configuration::Settings::load(config)?;
            let pool = center::db::connect(&settings.database_url).await?;
            let result = match command {
                NoticesCommand::List { .. } => center::notices::list(&pool).await.map(|rows| {
                    for row in rows {
                        let state = match (row.delivered_at_unix_ms, row.dead_at_unix_ms) {
                            (Some(_), _) => "delivered",
                            (None, Some(_)) => "dead",
                            (None, None) => "pending",
                        };
                        println!(
                            "{}  {}  {state:<9}  attempts {}  refusals {}  {}",
                            row.request_id,
                            row.municipality_code,
                            row.attempts,
                            row.rejections,
                            row.last_error.unwrap_or_default()
                        );
                    }
                }),
                NoticesCommand::Requeue { request_id, .. } => center::notices::requeue(
                    &pool,
                    request_id.as_deref(),
                    jiff::Timestamp::now().as_millisecond(),
                )
                .await
                .map(|count| println!("{count} notice(s) requeued")),
            };
            pool.close().await;
            result?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::TrustList {
            command: TrustListCommand::Export { config, out },
        } => {
            center::telemetry::init("warn", false);
            let settings = center::configuration::Settings::load(&config)?;
            let list = center::trust_list::export(&settings, &out)
                .await
                .context("exporting the trust list")?;
            println!(
                "trust list version {} with {} key(s) and {} revoked document(s) written to {}",
                list.payload.version,
                list.payload.keys.len(),
                list.payload.revoked_documents.len(),
                out.display()
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Audit { command } => {
            center::telemetry::init("warn", false);
            audit_cli::run(command).await
        }
        Command::Settlement { command } => {
            center::telemetry::init("warn", false);
            settlement_cli::run(command).await
        }
    }
}
