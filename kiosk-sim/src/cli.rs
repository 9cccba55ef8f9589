//! `kiosk-sim issue`: one resident session from the command line.
//!
//! Prints one line on stdout (or one JSON object with `--json`): the printed document,
//! the refusal, or the error with its stable code. Failures come back as an
//! [`IssueFailure`] inside the `anyhow::Error`; [`exit_status`] maps it to the process
//! exit status so scripts can tell a refusal from a wrong PIN from a dead center.

use std::path::PathBuf;

use anyhow::Context as _;
use schemas::{CertificateKind, CertificateOrder, HouseholdScope, Route, MAX_COPIES};
use serde::Serialize;

use crate::configuration::KioskSettings;
use crate::kiosk::{IssueOutcome, Kiosk, KioskError, KioskState};

/// Process exit statuses of `issue`.
pub mod exit {
    pub const PRINTED: u8 = 0;
    /// Configuration, output or internal errors.
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
}

/// 住民票の写し: whose rows are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// 本人のみ: the card holder only.
    #[value(name = "self")]
    SelfOnly,
    /// 世帯全員: the whole household.
    Household,
}

/// Arguments of `kiosk-sim issue` (住民票の写し, the only certificate in the contract).
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
    #[arg(long, value_enum, default_value_t = Scope::SelfOnly)]
    pub scope: Scope,
    /// 世帯主・続柄を記載する.
    #[arg(long)]
    pub relationship: bool,
    /// 本籍・筆頭者を記載する.
    #[arg(long)]
    pub domicile: bool,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_COPIES)))]
    pub copies: u8,
    /// Where printed documents go, as `<request_id>.pdf`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// One JSON object on stdout instead of a summary line.
    #[arg(long)]
    pub json: bool,
}

impl IssueArgs {
    pub fn order(&self) -> CertificateOrder {
        CertificateOrder {
            route: Route::Residence,
            certificate: CertificateKind::ResidentRecord {
                scope: match self.scope {
                    Scope::SelfOnly => HouseholdScope::SelfOnly,
                    Scope::Household => HouseholdScope::Household,
                },
                include_domicile: self.domicile,
                include_relationship: self.relationship,
            },
            copies: self.copies,
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
    let mut kiosk = Kiosk::from_settings(&settings).context("setting up the center link")?;
    let result = kiosk
        .issue(&args.card, &args.pin, args.order(), &args.out)
        .await;
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
            }
        }
        Err(error) => {
            let message = error.to_string();
            if args.json {
                let attempts_left = match &error {
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
                    state: kiosk.state(),
                };
                println!("{}", serde_json::to_string(&line)?);
            }
            Err(IssueFailure {
                code: error.code(),
                message,
                exit_status: exit_status_of(&error),
            }
            .into())
        }
    }
}

fn exit_status_of(error: &KioskError) -> u8 {
    use crate::client::ClientError;
    match error {
        KioskError::Card(_) => exit::CARD,
        KioskError::Center(ClientError::Rejected { .. }) => exit::CENTER_REJECTED,
        KioskError::Center(ClientError::Transport { .. }) => exit::CENTER_UNREACHABLE,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn parses_the_documented_flags() {
        let args = IssueArgs::try_parse_from([
            "issue",
            "--config",
            "k.toml",
            "--card",
            "c.json",
            "--pin",
            "1234",
            "--scope",
            "household",
            "--relationship",
            "--copies",
            "2",
            "--out",
            "out",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.pin, "1234");
        assert!(args.json);
        let order = args.order();
        assert_eq!(order.copies, 2);
        assert_eq!(
            order.certificate,
            CertificateKind::ResidentRecord {
                scope: HouseholdScope::Household,
                include_domicile: false,
                include_relationship: true,
            }
        );
    }

    #[test]
    fn defaults_and_limits() {
        let args = IssueArgs::try_parse_from([
            "issue", "--config", "k", "--card", "c", "--pin", "0000", "--out", "o",
        ])
        .unwrap();
        assert_eq!(args.scope, Scope::SelfOnly);
        assert_eq!(args.copies, 1);
        assert!(!args.domicile && !args.relationship && !args.json);
        for bad in ["0", "11"] {
            assert!(IssueArgs::try_parse_from([
                "issue", "--config", "k", "--card", "c", "--pin", "0000", "--out", "o", "--copies",
                bad,
            ])
            .is_err());
        }
    }

    #[test]
    fn usable_as_a_subcommand() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Command,
        }
        #[derive(clap::Subcommand)]
        enum Command {
            Issue(IssueArgs),
        }
        let cli = Cli::try_parse_from([
            "kiosk-sim",
            "issue",
            "--config",
            "k",
            "--card",
            "c",
            "--pin",
            "1234",
            "--out",
            "o",
        ])
        .unwrap();
        let Command::Issue(args) = cli.command;
        assert_eq!(args.card, PathBuf::from("c"));
    }

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
}
