//! The kiosk's command line:
//!
//! - `kiosk-sim issue`: one resident session (any of the eight certificate types,
//!   through the 住所地 or 本籍地 route);
//! - `kiosk-sim menu`: what a municipality offers now (the kiosk's menu screen);
//! - `kiosk-sim register-domicile`: a 本籍地 利用登録 approved with the card's PIN;
//! - `kiosk-sim outbox show|flush`: the kiosk's undelivered outcome reports.
//!
//! Each prints one line on stdout (or one JSON object with `--json`): the printed
//! document, the refusal, or the error with its stable code. Failures come back as an
//! [`IssueFailure`] inside the `anyhow::Error`; [`exit_status`] maps it to the process
//! exit status so scripts can tell a refusal from a wrong PIN from a dead center.

use std::path::PathBuf;

use anyhow::Context as _;
use schemas::{
    CertificateKind, CertificateOrder, CertificateType, DomicileRegistration,
    DomicileRegistrationStatus, HouseholdScope, Menu, MunicipalityCode, Route, RouteKind,
    MAX_COPIES, MAX_SELECTED_MEMBERS,
};
use serde::Serialize;

use crate::client::{CenterClient, ClientError};
use crate::configuration::KioskSettings;
use crate::devices::{SimulatedPayment, SimulatedPrinter};
use crate::kiosk::{IssueOutcome, Kiosk, KioskError, KioskState};
use crate::outbox::Outbox;

/// Process exit statuses of `issue`, `menu` and `register-domicile`.
pub mod exit {
    pub const PRINTED: u8 = 0;
    /// Configuration, usage, output or internal errors.
    pub const OTHER: u8 = 1;
    pub const REFUSED: u8 = 2;
    /// Wrong PIN, locked or unreadable card, PIN not 4 digits.
    pub const CARD: u8 = 3;
    /// The center answered with an error body.
    pub const CENTER_REJECTED: u8 = 4;
    /// No answer from the center (connect failure, timeout).
    pub const CENTER_UNREACHABLE: u8 = 5;
    /// The answer or the document is not what this kiosk ordered: an alarm, never
    /// printed.
    pub const NOT_OURS: u8 = 6;
    /// Refused at the kiosk against the menu, before the PIN: the type or an option is
    /// not offered, it is not available now, or more copies than allowed.
    pub const NOT_ON_MENU: u8 = 7;
    /// Nothing printed and no fee kept: cancelled, timed out, refunded.
    pub const NOT_PRINTED: u8 = 8;
    /// Paid, and the printer cannot tell what came out (power loss).
    pub const PRINT_UNKNOWN: u8 = 9;
}

/// `--type`: a certificate type's wire name with hyphens (`resident-record`,
/// `family-register-all`, …; see [`CertificateType`]).
pub fn parse_type(text: &str) -> Result<CertificateType, String> {
    CertificateType::parse(&text.replace('-', "_")).ok_or_else(|| {
        let names: Vec<String> = CertificateType::ALL
            .iter()
            .map(|t| t.as_str().replace('_', "-"))
            .collect();
        format!(
            "unknown certificate type {text:?}; one of {}",
            names.join(", ")
        )
    })
}

/// `--scope self|household|members:1,3` → [`HouseholdScope`].
pub fn parse_scope(text: &str) -> Result<HouseholdScope, String> {
    match text {
        "self" => Ok(HouseholdScope::SelfOnly),
        "household" => Ok(HouseholdScope::Household),
        _ => {
            let list = text.strip_prefix("members:").ok_or_else(|| {
                format!("scope must be self, household or members:N,N,…, got {text:?}")
            })?;
            let mut members = list
                .split(',')
                .map(|n| {
                    n.trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("member position {n:?} is not 1..=255"))
                })
                .collect::<Result<Vec<u8>, String>>()?;
            members.sort_unstable();
            members.dedup();
            if members.len() > MAX_SELECTED_MEMBERS {
                return Err(format!("at most {MAX_SELECTED_MEMBERS} members"));
            }
            Ok(HouseholdScope::Selected { members })
        }
    }
}

/// `--route residence|domicile:CODE` → [`Route`].
pub fn parse_route(text: &str) -> Result<Route, String> {
    if text == "residence" {
        return Ok(Route::Residence);
    }
    let code = text
        .strip_prefix("domicile:")
        .ok_or_else(|| format!("route must be residence or domicile:CODE, got {text:?}"))?;
    let municipality_code = MunicipalityCode::parse(code).map_err(|e| e.to_string())?;
    Ok(Route::Domicile { municipality_code })
}

/// `--route residence|domicile` (the menu's route kind).
pub fn parse_route_kind(text: &str) -> Result<RouteKind, String> {
    match text {
        "residence" => Ok(RouteKind::Residence),
        "domicile" => Ok(RouteKind::Domicile),
        _ => Err(format!("route must be residence or domicile, got {text:?}")),
    }
}

fn parse_municipality(text: &str) -> Result<MunicipalityCode, String> {
    MunicipalityCode::parse(text).map_err(|e| e.to_string())
}

/// Arguments of `kiosk-sim issue`.
#[derive(Clone, Debug, clap::Parser)]
#[command(about = "Issue a certificate at a simulated kiosk with a simulated card")]
pub struct IssueArgs {
    /// Kiosk settings (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The card's personalisation file (JSON); its PIN counter is updated in place.
    #[arg(long, value_name = "FILE")]
    pub card: PathBuf,
    /// The 4-digit PIN (also from $KIOSK_PIN, which keeps it out of `ps`).
    #[arg(long, env = "KIOSK_PIN", hide_env_values = true)]
    pub pin: String,
    /// The certificate type.
    #[arg(long = "type", value_parser = parse_type, default_value = "resident-record")]
    pub certificate: CertificateType,
    /// 住民票 / 記載事項証明書: self (本人のみ), household (世帯全員) or members:1,3
    /// (世帯一部, 1-based positions in the household, 世帯主 first).
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<HouseholdScope>,
    /// 世帯主・続柄を記載する (住民票, 記載事項証明書).
    #[arg(long)]
    pub relationship: bool,
    /// 本籍・筆頭者を記載する (住民票, 戸籍の附票).
    #[arg(long)]
    pub domicile: bool,
    /// 所得・課税 / 納税証明書: the fiscal year (年度, e.g. 2026); default the newest.
    #[arg(long, value_name = "YYYY", value_parser = clap::value_parser!(u16).range(1990..=2200))]
    pub fiscal_year: Option<u16>,
    /// residence (住所地, the card's municipality) or domicile:CODE (本籍地).
    #[arg(long, value_parser = parse_route, default_value = "residence")]
    pub route: Route,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_COPIES)))]
    pub copies: u8,
    /// Where printed documents go, as `<request_id>.pdf`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The simulated resident at the payment screen: paid, cancel or timeout.
    #[arg(long, default_value = "paid")]
    pub payment: SimulatedPayment,
    /// The simulated printer: ok, jam (before the first page) or power-loss.
    #[arg(long, default_value = "ok")]
    pub printer: SimulatedPrinter,
    /// One JSON object on stdout instead of a summary line.
    #[arg(long)]
    pub json: bool,
}

impl IssueArgs {
    /// The order these arguments describe; an option that does not apply to the type
    /// is a usage error rather than silently dropped.
    pub fn order(&self) -> Result<CertificateOrder, String> {
        let certificate_type = self.certificate;
        let takes_scope = matches!(
            certificate_type,
            CertificateType::ResidentRecord | CertificateType::ResidentRecordItems
        );
        let not_for = |flag: &str| {
            format!(
                "--{flag} does not apply to {} ({})",
                certificate_type,
                certificate_type.title_ja()
            )
        };
        if self.scope.is_some() && !takes_scope {
            return Err(not_for("scope"));
        }
        if self.relationship && !takes_scope {
            return Err(not_for("relationship"));
        }
        if self.domicile
            && !matches!(
                certificate_type,
                CertificateType::ResidentRecord | CertificateType::FamilyRegisterAttachment
            )
        {
            return Err(not_for("domicile"));
        }
        if self.fiscal_year.is_some()
            && !matches!(
                certificate_type,
                CertificateType::IncomeTax | CertificateType::TaxPayment
            )
        {
            return Err(not_for("fiscal-year"));
        }
        let scope = self.scope.clone().unwrap_or(HouseholdScope::SelfOnly);
        let certificate = match certificate_type {
            CertificateType::ResidentRecord => CertificateKind::ResidentRecord {
                scope,
                include_domicile: self.domicile,
                include_relationship: self.relationship,
            },
            CertificateType::ResidentRecordItems => CertificateKind::ResidentRecordItems {
                scope,
                include_relationship: self.relationship,
            },
            CertificateType::SealRegistration => CertificateKind::SealRegistration,
            CertificateType::IncomeTax => CertificateKind::IncomeTax {
                fiscal_year: self.fiscal_year,
            },
            CertificateType::TaxPayment => CertificateKind::TaxPayment {
                fiscal_year: self.fiscal_year,
            },
            CertificateType::FamilyRegisterAll => CertificateKind::FamilyRegisterAll,
            CertificateType::FamilyRegisterIndividual => CertificateKind::FamilyRegisterIndividual,
            CertificateType::FamilyRegisterAttachment => {
                CertificateKind::FamilyRegisterAttachment {
                    include_domicile: self.domicile,
                }
            }
        };
        Ok(CertificateOrder {
            route: self.route,
            certificate,
            copies: self.copies,
        })
    }
}

/// Arguments of `kiosk-sim menu`.
#[derive(Clone, Debug, clap::Parser)]
#[command(about = "Show what a municipality offers now (the kiosk's menu)")]
pub struct MenuArgs {
    /// Kiosk settings (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// 地方公共団体コード, e.g. 212113.
    #[arg(long, value_name = "CODE", value_parser = parse_municipality)]
    pub municipality: MunicipalityCode,
    /// residence (住所地) or domicile (本籍地).
    #[arg(long, value_parser = parse_route_kind, default_value = "residence")]
    pub route: RouteKind,
    /// The menu as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kiosk-sim register-domicile`.
#[derive(Clone, Debug, clap::Parser)]
#[command(about = "Register the card for 本籍地 certificates (利用登録)")]
pub struct RegisterDomicileArgs {
    /// Kiosk settings (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The card's personalisation file (JSON).
    #[arg(long, value_name = "FILE")]
    pub card: PathBuf,
    /// The 4-digit PIN (also from $KIOSK_PIN).
    #[arg(long, env = "KIOSK_PIN", hide_env_values = true)]
    pub pin: String,
    /// The 本籍地 municipality code.
    #[arg(long, value_name = "CODE", value_parser = parse_municipality)]
    pub municipality: MunicipalityCode,
    /// 本籍 as on the 戸籍, e.g. 岐阜県加茂郡坂祝町取組46番地.
    #[arg(long, value_name = "TEXT")]
    pub domicile: String,
    /// 筆頭者の氏名.
    #[arg(long, value_name = "NAME")]
    pub head: String,
    /// One JSON object on stdout instead of a summary line.
    #[arg(long)]
    pub json: bool,
}

impl RegisterDomicileArgs {
    pub fn registration(&self) -> DomicileRegistration {
        DomicileRegistration {
            municipality_code: self.municipality,
            domicile: self.domicile.clone(),
            domicile_head: self.head.clone(),
        }
    }
}

/// Why `issue` did not print; carries the stable code and the exit status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IssueFailure {
    pub code: &'static str,
    pub message: String,
    pub exit_status: u8,
}

/// The exit status for an error returned by [`run_issue`] (1 for anything unexpected).
pub fn exit_status(error: &anyhow::Error) -> u8 {
    error
        .downcast_ref::<IssueFailure>()
        .map_or(exit::OTHER, |failure| failure.exit_status)
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    status: &'static str,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<schemas::RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<u8>,
    state: KioskState,
}

pub async fn run_issue(args: IssueArgs) -> anyhow::Result<()> {
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let order = args.order().map_err(|message| IssueFailure {
        code: "usage",
        message,
        exit_status: exit::OTHER,
    })?;
    let mut kiosk = Kiosk::from_settings(&settings)
        .context("setting up the center link")?
        .with_payment(args.payment)
        .with_printer(args.printer);
    let result = kiosk.issue(&args.card, &args.pin, order, &args.out).await;
    match result {
        Ok(outcome) => {
            if args.json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                println!("{}", summary(&outcome));
            }
            match outcome {
                IssueOutcome::Printed(_) => Ok(()),
                IssueOutcome::Refused {
                    request_id, reason, ..
                } => Err(IssueFailure {
                    code: "refused",
                    message: format!("request {request_id} refused ({})", wire_name(&reason)),
                    exit_status: exit::REFUSED,
                }
                .into()),
                IssueOutcome::Voided { request_id, .. } => Err(IssueFailure {
                    code: "voided",
                    message: format!("request {request_id} not paid; nothing printed"),
                    exit_status: exit::NOT_PRINTED,
                }
                .into()),
                IssueOutcome::Refunded {
                    request_id, cause, ..
                } => Err(IssueFailure {
                    code: "refunded",
                    message: format!(
                        "request {request_id}: fee refunded ({}); nothing printed",
                        wire_name(&cause)
                    ),
                    exit_status: exit::NOT_PRINTED,
                }
                .into()),
                IssueOutcome::PrintUnknown { request_id, .. } => Err(IssueFailure {
                    code: "print_unknown",
                    message: format!("request {request_id}: print outcome unknown, reported"),
                    exit_status: exit::PRINT_UNKNOWN,
                }
                .into()),
            }
        }
        Err(error) => Err(report_kiosk_error(&error, kiosk.state(), args.json)?),
    }
}

/// Prints the error line (with `--json`) and turns the error into an [`IssueFailure`].
fn report_kiosk_error(
    error: &KioskError,
    state: KioskState,
    json: bool,
) -> anyhow::Result<anyhow::Error> {
    {
        {
            let message = error.to_string();
            if json {
                let attempts_left = match error {
                    KioskError::Card(crate::CardError::WrongPin { attempts_left }) => {
                        Some(*attempts_left)
                    }
                    _ => None,
                };
                let line = ErrorLine {
                    status: "error",
                    code: error.code(),
                    message: &message,
                    request_id: error.request_id(),
                    attempts_left,
                    state,
                };
                println!("{}", serde_json::to_string(&line)?);
            }
            Ok(IssueFailure {
                code: error.code(),
                message,
                exit_status: exit_status_of(error),
            }
            .into())
        }
    }
}

/// `kiosk-sim menu`: prints the menu (Japanese titles, fee, copies, hours, available
/// now) or the center's error.
pub async fn run_menu(args: MenuArgs) -> anyhow::Result<()> {
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let client = CenterClient::new(&settings).context("setting up the center link")?;
    let menu = client
        .menu(args.municipality, args.route)
        .await
        .map_err(client_failure)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&menu)?);
    } else {
        print!("{}", menu_table(&menu));
    }
    Ok(())
}

/// The menu as the kiosk's screen lists it, one line per type.
pub fn menu_table(menu: &Menu) -> String {
    use std::fmt::Write as _;
    let as_of = jiff::Timestamp::from_second(menu.as_of_unix_s)
        .ok()
        .and_then(|t| t.in_tz(schemas::SERVICE_TIME_ZONE).ok())
        .map_or_else(
            || menu.as_of_unix_s.to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M %Z").to_string(),
        );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}) {} route, as of {as_of}: {}",
        menu.municipality_name,
        menu.municipality_code,
        crate::client::route_kind_str(menu.route),
        if menu.open_now { "open" } else { "closed now" }
    );
    for item in &menu.items {
        let days = match item.hours.days {
            schemas::ServiceDays::EveryDay => "毎日",
            schemas::ServiceDays::Weekdays => "平日",
        };
        let now = if item.available_now {
            "available now".to_owned()
        } else {
            format!(
                "not now ({})",
                item.unavailable_reason
                    .map_or("closed", schemas::RefusalReason::as_str)
            )
        };
        let options: Vec<&str> = item
            .options
            .iter()
            .map(|o| crate::menu::option_str(*o))
            .collect();
        // The ASCII type name first, so the columns line up whatever the kanji width.
        let _ = writeln!(
            out,
            "  {:<26} {:<12} {:>5}円/通  max {:>2}  {days} {}–{}  {now}  options: {}",
            item.certificate.as_str(),
            item.title_ja,
            item.fee_yen_per_copy,
            item.max_copies,
            item.hours.opens_at,
            item.hours.closes_at,
            if options.is_empty() {
                "-".to_owned()
            } else {
                options.join(",")
            }
        );
    }
    out
}

#[derive(Serialize)]
struct RegistrationLine<'a> {
    status: &'static str,
    registration_id: schemas::RequestId,
    municipality_code: MunicipalityCode,
    municipality_name: &'a str,
    registration_status: DomicileRegistrationStatus,
    message_ja: &'a str,
}

/// `kiosk-sim register-domicile`: prints the registration id and its status.
pub async fn run_register_domicile(args: RegisterDomicileArgs) -> anyhow::Result<()> {
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let mut kiosk = Kiosk::from_settings(&settings).context("setting up the center link")?;
    match kiosk
        .register_domicile(&args.card, &args.pin, args.registration())
        .await
    {
        Ok(response) => {
            let status = registration_status_str(response.status);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&RegistrationLine {
                        status: "registered",
                        registration_id: response.registration_id,
                        municipality_code: response.municipality_code,
                        municipality_name: &response.municipality_name,
                        registration_status: response.status,
                        message_ja: &response.message_ja,
                    })?
                );
            } else {
                println!(
                    "registration_id={} municipality={} ({}) status={status} message={}",
                    response.registration_id,
                    response.municipality_code,
                    response.municipality_name,
                    response.message_ja
                );
            }
            Ok(())
        }
        Err(error) => Err(report_kiosk_error(&error, kiosk.state(), args.json)?),
    }
}

/// pending | approved | rejected.
pub fn registration_status_str(status: DomicileRegistrationStatus) -> &'static str {
    match status {
        DomicileRegistrationStatus::Pending => "pending",
        DomicileRegistrationStatus::Approved => "approved",
        DomicileRegistrationStatus::Rejected => "rejected",
    }
}

fn client_failure(error: ClientError) -> anyhow::Error {
    let exit_status = match &error {
        ClientError::Rejected { .. } => exit::CENTER_REJECTED,
        ClientError::Transport { .. } => exit::CENTER_UNREACHABLE,
        _ => exit::OTHER,
    };
    let code = match &error {
        ClientError::Rejected { body, .. } => body.code.as_str(),
        ClientError::Transport { .. } => "center_unreachable",
        ClientError::Tls(_) => "tls_setup",
        ClientError::UnexpectedResponse { .. } => "center_protocol_error",
    };
    IssueFailure {
        code,
        message: error.to_string(),
        exit_status,
    }
    .into()
}

fn exit_status_of(error: &KioskError) -> u8 {
    use crate::client::ClientError;
    match error {
        KioskError::Card(_) => exit::CARD,
        KioskError::NotOnMenu(_) => exit::NOT_ON_MENU,
        KioskError::Center(ClientError::Rejected { .. }) => exit::CENTER_REJECTED,
        KioskError::Center(ClientError::Transport { .. }) | KioskError::CenterTimeout { .. } => {
            exit::CENTER_UNREACHABLE
        }
        KioskError::AnswerMismatch { .. }
        | KioskError::DocumentNotOurs { .. }
        | KioskError::AlreadyPrinted { .. } => exit::NOT_OURS,
        _ => exit::OTHER,
    }
}

/// The snake_case wire name of an enum value such as a refusal reason.
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "unknown".into(),
    }
}

/// The one-line summary for the operator's terminal.
pub fn summary(outcome: &IssueOutcome) -> String {
    match outcome {
        IssueOutcome::Printed(doc) => format!(
            "printed request_id={} municipality={} ({}) certificate={} copies={} fee={}円×{}={}円 pages={} pdf={}",
            doc.request_id,
            doc.municipality_code,
            doc.municipality_name,
            doc.certificate_title,
            doc.copies,
            doc.fee_yen_per_copy,
            doc.copies,
            doc.total_fee_yen,
            doc.page_count,
            doc.pdf_path.display(),
        ),
        IssueOutcome::Refused {
            request_id,
            reason,
            message_ja,
            ..
        } => format!(
            "refused request_id={request_id} reason={} message={message_ja}",
            wire_name(reason)
        ),
        IssueOutcome::Voided {
            request_id,
            payment,
            report_queued,
            ..
        } => format!(
            "voided request_id={request_id} payment={} fee=0円 report_queued={report_queued}",
            wire_name(payment)
        ),
        IssueOutcome::Refunded {
            request_id,
            refund_yen,
            cause,
            report_queued,
            ..
        } => format!(
            "refunded request_id={request_id} refund={refund_yen}円 cause={} report_queued={report_queued}",
            wire_name(cause)
        ),
        IssueOutcome::PrintUnknown {
            request_id,
            paid_yen,
            report_queued,
            ..
        } => format!(
            "print_unknown request_id={request_id} paid={paid_yen}円 report_queued={report_queued}"
        ),
    }
}

/// Arguments of `kiosk-sim outbox show|flush`.
#[derive(Clone, Debug, clap::Parser)]
pub struct OutboxArgs {
    /// Kiosk settings (TOML); the outbox lives in its state directory.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// JSON instead of one line per report.
    #[arg(long)]
    pub json: bool,
}

/// `kiosk-sim outbox show`: the undelivered reports, oldest first (no center needed).
pub fn run_outbox_show(args: OutboxArgs) -> anyhow::Result<()> {
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let outbox = Outbox::open(&settings.effective_state_dir(), settings.kiosk_id.clone())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(outbox.entries())?);
        return Ok(());
    }
    println!(
        "{} undelivered report(s) in {}",
        outbox.len(),
        outbox
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    for entry in outbox.entries() {
        println!(
            "  #{} request_id={} {}={} attempts={}{}",
            entry.id,
            entry.request_id,
            entry.report.kind(),
            entry.report.outcome_str(),
            entry.attempts,
            entry
                .last_error
                .as_deref()
                .map(|e| format!(" last_error={e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `kiosk-sim outbox flush`: re-sends every undelivered report (`repeat = true`).
/// Fails (exit 5) when reports remain.
pub async fn run_outbox_flush(args: OutboxArgs) -> anyhow::Result<()> {
    let settings = KioskSettings::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let mut kiosk = Kiosk::from_settings(&settings).context("setting up the center link")?;
    let summary = kiosk.flush_outbox().await.map_err(|error| IssueFailure {
        code: error.code(),
        message: error.to_string(),
        exit_status: exit_status_of(&error),
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "acknowledged={} conflicts_dropped={} still_pending={}",
            summary.acknowledged.len(),
            summary.conflicts,
            summary.pending
        );
        for ack in &summary.acknowledged {
            println!(
                "  request_id={} status={} paid={}円 refund={}円",
                ack.request_id,
                wire_name(&ack.status),
                ack.paid_yen,
                ack.refund_yen
            );
        }
    }
    if summary.pending > 0 {
        return Err(IssueFailure {
            code: "outbox_pending",
            message: format!("{} report(s) still undelivered", summary.pending),
            exit_status: exit::CENTER_UNREACHABLE,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_their_exit_status() {
        let error: anyhow::Error = IssueFailure {
            code: "wrong_pin",
            message: "wrong PIN (2 attempts left)".into(),
            exit_status: exit::CARD,
        }
        .into();
        assert_eq!(exit_status(&error), exit::CARD);
        assert!(error.to_string().starts_with("wrong_pin: "));
        assert_eq!(exit_status(&anyhow::anyhow!("other")), exit::OTHER);
    }

    #[test]
    fn menu_refusals_have_their_own_exit_status() {
        let error = KioskError::NotOnMenu(crate::MenuRefusal::TooManyCopies {
            certificate: CertificateType::FamilyRegisterAll,
            copies: 6,
            max_copies: 5,
        });
        assert_eq!(exit_status_of(&error), exit::NOT_ON_MENU);
        assert_eq!(error.code(), "too_many_copies");
    }
}
