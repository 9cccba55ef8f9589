//! `kiosk-sim`: the reference kiosk, and the local demo that runs every party.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kiosk_sim::cli::{run_issue, IssueArgs};

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
    /// Create or run a local deployment directory.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
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
        Command::Demo { out } => {
            init_logging("warn");
            demo(&out).await
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
                println!("  kiosk ({operator}): kiosk-sim issue --config {} --card CARD --pin PIN --out DIR", path.display());
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
            for (name, port) in &running.adapter_ports {
                println!("adapter {name}: https://127.0.0.1:{port}");
            }
            println!("kiosk settings rewritten with the center's URL; Ctrl-C stops");
            tokio::signal::ctrl_c().await?;
            running.stop().await;
            Ok(())
        }
    }
}

async fn demo(out: &Path) -> anyhow::Result<()> {
    use schemas::{CertificateKind, CertificateOrder, HouseholdScope, Route};
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    let sandbox_dir = out.join("sandbox");
    println!("creating a fresh sandbox in {}", sandbox_dir.display());
    let layout = sandbox::init(&sandbox_dir)?;
    let running = sandbox::start(&sandbox_dir, sandbox::StartOptions::default()).await?;
    println!("center on {} (mTLS); adapters:", running.center_url);
    for (name, port) in &running.adapter_ports {
        println!("  {name} on https://127.0.0.1:{port} (mTLS)");
    }

    let kiosk_config = running
        .kiosk_config("seven")
        .context("no kiosk settings for operator seven")?;
    let settings = kiosk_sim::KioskSettings::load(kiosk_config)?;
    let mut kiosk = kiosk_sim::Kiosk::from_settings(&settings)?;

    // A few residents of each municipality, plus one whose name the font cannot print.
    let mut chosen = Vec::new();
    for code in ["212113", "215015", "112330"] {
        chosen.extend(
            layout
                .cards
                .iter()
                .filter(|c| {
                    c.kind == sandbox::CardKind::Resident
                        && municipal_adapter::samples::issuable_cards(code).contains(&c.serial)
                })
                .take(3),
        );
    }
    chosen.extend(
        layout
            .cards
            .iter()
            .filter(|c| c.holder_name.contains('\u{20BB7}'))
            .take(1),
    );

    println!();
    println!(
        "{:<38}  {:<8}  {:<14}  {:<12}  {:>5}  {:>6}  result",
        "request id", "code", "resident", "certificate", "pages", "fee"
    );
    let mut issued = 0;
    for (i, card) in chosen.iter().enumerate() {
        let pin =
            serde_json::from_str::<schemas::CardFile>(&std::fs::read_to_string(&card.path)?)?.pin;
        let scope = if i % 2 == 0 {
            HouseholdScope::Household
        } else {
            HouseholdScope::SelfOnly
        };
        let order = CertificateOrder {
            route: Route::Residence,
            certificate: CertificateKind::ResidentRecord {
                scope,
                include_domicile: i % 3 == 0,
                include_relationship: true,
            },
            copies: 1,
        };
        match kiosk.issue(&card.path, &pin, order, out).await {
            Ok(kiosk_sim::IssueOutcome::Printed(doc)) => {
                issued += 1;
                println!(
                    "{:<38}  {:<8}  {:<14}  {:<12}  {:>5}  {:>5}円  {}",
                    doc.request_id,
                    doc.municipality_code,
                    card.holder_name,
                    doc.certificate_title,
                    doc.page_count,
                    doc.total_fee_yen,
                    doc.pdf_path.display()
                );
            }
            Ok(kiosk_sim::IssueOutcome::Refused {
                request_id, reason, ..
            }) => {
                println!(
                    "{:<38}  {:<8}  {:<14}  {:<12}  {:>5}  {:>6}  refused: {reason:?}",
                    request_id, card.municipality, card.holder_name, "住民票の写し", "-", "-"
                );
            }
            Err(error) => {
                println!(
                    "{:<38}  {:<8}  {:<14}  error: {} ({error})",
                    "-",
                    card.municipality,
                    card.holder_name,
                    error.code()
                );
            }
        }
    }
    running.stop().await;
    println!();
    println!("{issued} certificates written to {}", out.display());
    anyhow::ensure!(issued > 0, "the demo issued no certificate");
    Ok(())
}

/// Logs to standard error, filtered by `RUST_LOG` (default `level`).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
