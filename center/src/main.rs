use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, json_logs } => {
            center::telemetry::init("info", json_logs);
            let settings = center::configuration::Settings::load(&config)?;
            let app = center::startup::Application::build(settings)
                .await
                .context("starting the center")?;
            tracing::info!(port = app.port(), "center listening (mTLS)");
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}
