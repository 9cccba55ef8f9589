//! `municipal-adapter`: the municipality's certificate server.
//!
//! ```text
//! municipal-adapter serve --config FILE        run the server (mTLS) with the settings in FILE
//! municipal-adapter import --config FILE --municipality CODE DIR   import a CSV register (see cli::import)
//! municipal-adapter card issue|renew|revoke --config FILE …        resident cards (see cli::card)
//! municipal-adapter domicile list|approve|reject --config FILE …   本籍地 利用登録 (see cli::domicile)
//! municipal-adapter records list --config FILE --municipality CODE [--date YYYY-MM-DD] [--json]
//!                                                                  交付記録 (see cli::records)
//! ```
//!
//! `serve` prints one line `listening on <address>` on stdout once the port is bound
//! (logs go to stderr), so a parent process that asked for port 0 can learn the port.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use municipal_adapter::{telemetry, Application, Settings};

#[derive(Parser)]
#[command(
    name = "municipal-adapter",
    version,
    about = "証明発行サーバ: the municipality's certificate server behind the center"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server with the settings in a TOML file.
    Serve {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        json_logs: bool,
    },
    /// 本籍地 利用登録: list, approve or reject registrations.
    #[command(subcommand)]
    Domicile(municipal_adapter::cli::domicile::DomicileCommand),
    /// Validate a CSV register directory and import it (all or nothing).
    Import(municipal_adapter::cli::import::ImportArgs),
    /// Issue, renew or revoke resident cards.
    #[command(subcommand)]
    Card(municipal_adapter::cli::card::CardCommand),
    /// The issuance record (交付記録): certificates the center reported as printed.
    #[command(subcommand)]
    Records(municipal_adapter::cli::records::RecordsCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, json_logs } => {
            telemetry::init_subscriber("info", json_logs);
            let settings = Settings::load(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async move {
                let app = Application::build(settings)
                    .await
                    .context("starting the municipal adapter")?;
                let mut stdout = std::io::stdout();
                writeln!(stdout, "listening on {}", app.local_addr())?;
                stdout.flush()?;
                app.run_until_stopped().await.context("serving")
            })
        }
        Command::Domicile(command) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(municipal_adapter::cli::domicile::run(
                command,
                &mut std::io::stdout().lock(),
            ))?;
            Ok(())
        }
        Command::Import(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(municipal_adapter::cli::import::run(
                args,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            ))?;
            Ok(())
        }
        Command::Card(command) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(municipal_adapter::cli::card::run(
                command,
                &mut std::io::stdout().lock(),
            ))?;
            Ok(())
        }
        Command::Records(command) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(municipal_adapter::cli::records::run(
                command,
                &mut std::io::stdout().lock(),
            ))?;
            Ok(())
        }
    }
}
