use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
        Command::Settlement { command } => {
            center::telemetry::init("warn", false);
            settlement_cli::run(command).await
        }
    }
}
