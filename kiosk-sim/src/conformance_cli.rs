//! `kiosk-sim conformance`: the conformance suites (DESIGN.md §7, guide in
//! `conformance/README.md`). Exit 0 when every FAIL clause passed, 1 when one failed,
//! 2 when the run could not start.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// The suite plays the center (and its municipalities) and drives a kiosk.
    Kiosk,
    /// The suite plays the center against a municipality's adapter.
    Municipality,
}

#[derive(Args, Debug)]
pub struct ConformanceArgs {
    #[arg(long, value_enum)]
    pub profile: ProfileArg,
    /// `reference` (start the reference implementation in-process) or the target's
    /// https:// URL.
    #[arg(long)]
    pub target: String,
    /// Directory for report.json, junit.xml and summary.txt (created).
    #[arg(long)]
    pub report: PathBuf,
    /// Negative control: a fault mode of the reference target (test use only).
    #[arg(long)]
    pub fault: Option<String>,
    /// URL target: file with the base64 seed of the center key the adapter trusts.
    #[arg(long)]
    pub center_key: Option<PathBuf>,
    /// URL target: client certificate with the center role (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// URL target: its private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// URL target: CA of the adapter's server certificate (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// URL target: the municipality's Ed25519 public key (base64).
    #[arg(long)]
    pub municipality_key: Option<String>,
    /// URL target: the municipality code the suite residents were imported under.
    #[arg(long, default_value = conformance::municipality::residents::SUITE_CODE)]
    pub municipality: String,
    /// Kiosk URL target: where the suite keeps its center and writes the kiosk's
    /// set-up (`sandbox/kiosk.toml`); reuse it between runs to set the kiosk up once.
    /// Default: `<report>/setup`.
    #[arg(long)]
    pub setup_dir: Option<PathBuf>,
    /// Kiosk URL target: where the suite's center listens for the kiosk.
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub center_listen: std::net::SocketAddr,
    /// Kiosk URL target: the kiosk's own request timeout; the suite holds answers
    /// longer than this to provoke its timeout handling.
    #[arg(long, default_value_t = 15_000)]
    pub kiosk_timeout_ms: u64,
    /// Kiosk URL target: how long to wait for the kiosk's control interface to answer.
    #[arg(long, default_value_t = 300)]
    pub wait_for_kiosk_s: u64,
}

/// Runs the suite and returns the process exit status.
pub async fn run_conformance(args: ConformanceArgs) -> u8 {
    match args.profile {
        ProfileArg::Kiosk => {
            let spec = if args.target == "reference" {
                conformance::KioskTargetSpec::Reference(Arc::new(InProcessKiosk))
            } else {
                let setup_dir = args
                    .setup_dir
                    .clone()
                    .unwrap_or_else(|| args.report.join("setup"));
                println!(
                    "kiosk profile: the suite's center listens at https://{} and writes the kiosk's set-up to {}; \
                     start the kiosk from it with its control interface at {} (waiting up to {} s)",
                    args.center_listen,
                    setup_dir
                        .join("sandbox")
                        .join(conformance::kiosk::URL_SETUP_SETTINGS)
                        .display(),
                    args.target,
                    args.wait_for_kiosk_s
                );
                conformance::KioskTargetSpec::Url(conformance::UrlKiosk {
                    control_url: args.target.clone(),
                    setup_dir,
                    center_listen: args.center_listen,
                    kiosk_timeout_ms: args.kiosk_timeout_ms,
                    wait_for_kiosk: std::time::Duration::from_secs(args.wait_for_kiosk_s),
                })
            };
            let result = conformance::run_kiosk(spec, args.fault.as_deref(), &args.report).await;
            finish(result, &args)
        }
        ProfileArg::Municipality => {
            let spec = match target_spec(&args) {
                Ok(spec) => spec,
                Err(message) => {
                    eprintln!("kiosk-sim conformance: {message}");
                    return conformance::EXIT_NOT_RUN;
                }
            };
            let result =
                conformance::run_municipality(spec, args.fault.as_deref(), &args.report).await;
            finish(result, &args)
        }
    }
}

/// Prints the summary and maps the result to the exit status.
fn finish(
    result: Result<schemas::conformance::ConformanceReport, conformance::RunError>,
    args: &ConformanceArgs,
) -> u8 {
    match result {
        Ok(report) => {
            // A closed stdout (`| head`) must not turn a result into a panic.
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", conformance::report::summary_text(&report));
            let _ = writeln!(out, "reports: {}", args.report.display());
            conformance::exit_status(&report)
        }
        Err(error) => {
            eprintln!("kiosk-sim conformance: the run could not start: {error}");
            conformance::EXIT_NOT_RUN
        }
    }
}

/// The reference kiosk for the kiosk profile: kiosk-sim's control server, in this
/// process, on a loopback port of its own.
struct InProcessKiosk;

impl conformance::KioskLauncher for InProcessKiosk {
    fn launch(
        &self,
        settings_file: &Path,
        state_dir: &Path,
    ) -> Result<conformance::LaunchedKiosk, String> {
        let settings = kiosk_sim::KioskSettings::load(settings_file)
            .map_err(|e| format!("kiosk settings: {e}"))?;
        let controller = kiosk_sim::control::Controller::new(settings, state_dir.to_owned())
            .map_err(|e| format!("kiosk: {e}"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("control listener: {e}"))?;
        let server = kiosk_sim::control::server::start(controller, listener)
            .map_err(|e| format!("control server: {e}"))?;
        let handle = server.server.handle();
        tokio::spawn(server.server);
        Ok(conformance::LaunchedKiosk {
            control_url: format!(
                "http://{}{}",
                server.local_addr,
                schemas::kiosk_control::CONTROL_BASE_PATH
            ),
            handle: Some(handle),
        })
    }
}

fn target_spec(args: &ConformanceArgs) -> Result<conformance::TargetSpec, String> {
    if args.target == "reference" {
        return Ok(conformance::TargetSpec::Reference);
    }
    if !args.target.starts_with("https://") {
        return Err(format!(
            "--target must be `reference` or an https:// URL, not {:?}",
            args.target
        ));
    }
    let missing = |flag: &str| format!("--target URL needs {flag}");
    let municipality_key = args
        .municipality_key
        .as_deref()
        .ok_or_else(|| missing("--municipality-key"))?;
    let municipality_key: schemas::PublicKey = serde_json::from_value(serde_json::Value::String(
        municipality_key.trim().to_owned(),
    ))
    .map_err(|e| format!("--municipality-key: {e}"))?;
    let municipality = schemas::MunicipalityCode::parse(&args.municipality)
        .map_err(|e| format!("--municipality: {e}"))?;
    Ok(conformance::TargetSpec::Url(conformance::UrlTarget {
        url: args.target.clone(),
        center_key_file: args
            .center_key
            .clone()
            .ok_or_else(|| missing("--center-key"))?,
        tls: mtls::TlsFiles {
            cert: args.tls_cert.clone().ok_or_else(|| missing("--tls-cert"))?,
            key: args.tls_key.clone().ok_or_else(|| missing("--tls-key"))?,
            ca: args.ca.clone().ok_or_else(|| missing("--ca"))?,
        },
        municipality_key,
        municipality,
    }))
}
