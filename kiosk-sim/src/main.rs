//! `kiosk-sim`: the reference kiosk, and the local demo that runs every party.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kiosk_sim::cli::{
    run_issue, run_menu, run_outbox_flush, run_outbox_show, run_register_domicile, IssueArgs,
    MenuArgs, OutboxArgs, RegisterDomicileArgs,
};

mod conformance_cli;
mod demo;
mod load;
mod ui;

#[derive(Parser)]
#[command(
    name = "kiosk-sim",
    version,
    about = "Reference kiosk (マルチコピー機) for コンビニ交付"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The full local demo: a fresh sandbox, every party on loopback, certificates
    /// issued for sample residents and written as PDFs into --out.
    Demo {
        /// Output directory (PDFs, the sandbox used, the summary).
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
    },
    /// One request against a running center, writing the PDF.
    Issue(IssueArgs),
    /// Show a municipality's menu (types, fees, hours, available now).
    Menu(MenuArgs),
    /// 本籍地 利用登録: register the card with the municipality that keeps the 戸籍.
    RegisterDomicile(RegisterDomicileArgs),
    /// Create or run a local deployment directory.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// The kiosk's undelivered payment and print reports.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Conformance suite (DESIGN.md §7): plays the center against a municipality's
    /// adapter (profile `municipality`) and writes report.json, junit.xml and
    /// summary.txt; exit 0 only when every FAIL clause passed.
    Conformance(conformance_cli::ConformanceArgs),
    /// The kiosk control interface (a test, the conformance suite or the touch screen
    /// drives the kiosk step by step over HTTP on loopback).
    #[command(subcommand)]
    Control(ControlCommand),
    /// The kiosk's touch screen in a browser (serves the page and /control/v1 until
    /// Ctrl-C; --local runs the whole sandbox in this process).
    Ui(ui::UiArgs),
    /// Load generator: N kiosks run M full visits against one center or several
    /// replicas (--center, with fail-over) or every party in this process (--local);
    /// every printed PDF is checked against the resident who asked. Exit 0 when the
    /// run completed with no misissue, 3 when a document was misissued, 1 on a set-up
    /// error.
    Load(load::LoadArgs),
}

#[derive(Subcommand)]
enum ControlCommand {
    /// Serve /control/v1 on --listen until Ctrl-C.
    Serve(kiosk_sim::control::ControlServeArgs),
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List the undelivered reports (no center needed).
    Show(OutboxArgs),
    /// Re-send every undelivered report to the center (repeat = true).
    Flush(OutboxArgs),
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// Create keys, PKI, cards, registers and configuration files in DIR.
    Init { dir: PathBuf },
    /// Run the center and every adapter of DIR in this process until Ctrl-C.
    Run { dir: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Issue(args) => {
            init_logging("warn");
            if let Err(error) = run_issue(args).await {
                eprintln!("kiosk-sim: {error:#}");
                std::process::exit(i32::from(kiosk_sim::cli::exit_status(&error)));
            }
            Ok(())
        }
        Command::Menu(args) => {
            init_logging("warn");
            exit_on_failure(run_menu(args).await)
        }
        Command::RegisterDomicile(args) => {
            init_logging("warn");
            exit_on_failure(run_register_domicile(args).await)
        }
        Command::Outbox(OutboxCommand::Show(args)) => {
            init_logging("warn");
            exit_on_failure(run_outbox_show(args))
        }
        Command::Outbox(OutboxCommand::Flush(args)) => {
            init_logging("warn");
            exit_on_failure(run_outbox_flush(args).await)
        }
        Command::Control(ControlCommand::Serve(args)) => {
            init_logging("info");
            kiosk_sim::control::run_control_serve(args).await
        }
        Command::Ui(args) => {
            init_logging("warn");
            ui::run(args).await
        }
        Command::Conformance(args) => {
            // The suite provokes refusals on purpose: the reference adapter's warnings
            // about them are noise here (RUST_LOG shows them).
            init_logging("error");
            let status = conformance_cli::run_conformance(args).await;
            std::process::exit(i32::from(status));
        }
        Command::Load(args) => {
            // Fail-overs and refusals are counted in the summary; RUST_LOG shows them.
            init_logging("error");
            match load::run(args).await {
                Ok(outcome) if outcome.misissued > 0 => std::process::exit(3),
                Ok(_) => Ok(()),
                Err(error) => {
                    eprintln!("kiosk-sim load: {error:#}");
                    std::process::exit(1);
                }
            }
        }
        Command::Demo { out } => {
            init_logging("warn");
            demo::run(&out).await
        }
        Command::Sandbox(SandboxCommand::Init { dir }) => {
            let layout = sandbox::init(&dir)
                .with_context(|| format!("creating sandbox {}", dir.display()))?;
            println!("sandbox created in {}", layout.dir.display());
            println!(
                "  center:   center serve --config {}",
                layout.center_config.display()
            );
            for (name, path) in &layout.adapter_configs {
                println!(
                    "  adapter {name}: municipal-adapter serve --config {}",
                    path.display()
                );
            }
            for (operator, path) in &layout.kiosk_configs {
                println!("  kiosk ({operator}): kiosk-sim issue --config {} --card CARD --pin PIN [--type TYPE] --out DIR", path.display());
            }
            println!(
                "  {} cards in {}",
                layout.cards.len(),
                layout.dir.join("cards").display()
            );
            Ok(())
        }
        Command::Sandbox(SandboxCommand::Run { dir }) => {
            init_logging("info");
            let running = sandbox::start(&dir, sandbox::StartOptions::default()).await?;
            println!("center: {}", running.center_url);
            if let Some(url) = running.verify_page_url() {
                println!("verification page (public, no client certificate): {url}");
            }
            for (name, port) in &running.adapter_ports {
                println!("adapter {name}: https://127.0.0.1:{port}");
            }
            println!("kiosk settings rewritten with the center's URL; Ctrl-C or SIGTERM stops");
            kiosk_sim::shutdown::stop_requested().await?;
            running.stop().await;
            Ok(())
        }
    }
}

/// Exits with the documented status when `result` is a failure.
fn exit_on_failure(result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(error) = result {
        eprintln!("kiosk-sim: {error:#}");
        std::process::exit(i32::from(kiosk_sim::cli::exit_status(&error)));
    }
    Ok(())
}

/// Logs to standard error, filtered by `RUST_LOG` (default `level`).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: log files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
