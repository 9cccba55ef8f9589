//! `municipal-adapter`: the municipality's certificate server.
//!
//! ```text
//! municipal-adapter serve --config FILE        run the server (mTLS) with the settings in FILE
//! municipal-adapter check-register FILE        validate a register fixture and print its counts
//! ```
//!
//! `serve` prints one line `listening on <address>` on stdout once the port is bound
//! (logs go to stderr), so a parent process that asked for port 0 can learn the port.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use municipal_adapter::register::parse_fixture;
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
    /// Validate a register fixture (JSON) and print its counts.
    CheckRegister {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
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
        Command::CheckRegister { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let today = jiff::Timestamp::now()
                .in_tz(municipal_adapter::issuance::ISSUE_TIME_ZONE)
                .context("time zone")?
                .date();
            let register = parse_fixture(&text, today)
                .with_context(|| format!("{} is not a valid register", file.display()))?;
            println!(
                "{}: municipality {}: {} households, {} residents ({} current), {} card bindings",
                file.display(),
                register.municipality_code,
                register.households.len(),
                register.resident_count(),
                register
                    .households
                    .iter()
                    .flat_map(|h| &h.members)
                    .filter(|m| m.status.is_current())
                    .count(),
                register.card_bindings.len(),
            );
            Ok(())
        }
    }
}
