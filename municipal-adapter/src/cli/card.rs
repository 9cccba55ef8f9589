//! `municipal-adapter card …`: the 窓口's resident card operations.
//!
//! ```text
//! municipal-adapter card issue  --config FILE --municipality CODE --resident ID --authority-key FILE --out CARD.json [--pin 1234] [--valid-years 10]
//! municipal-adapter card renew  --config FILE --municipality CODE --resident ID --authority-key FILE --out CARD.json [--pin 1234] [--valid-years 10]
//! municipal-adapter card revoke --config FILE --municipality CODE --serial SERIAL [--revocation-list FILE --authority-key FILE]
//! ```
//!
//! `issue` and `renew` write a card file kiosk-sim can use and bind its serial to the
//! resident with today's date (Asia/Tokyo); `renew` revokes the resident's previous
//! card. `revoke` unbinds a card (the adapter answers `card_not_registered`) and, with
//! `--revocation-list`, also adds it to the card authority's signed list the center
//! reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use schemas::{CardSerial, MunicipalityCode};

use crate::cards::{self, CardError, CardOrder, MAX_VALID_YEARS};
use crate::cli::import::today_in_tokyo;
use crate::configuration::Settings;
use crate::db::connect_and_migrate;
use crate::register::RegisterStore;

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Issue a card to a resident who holds none.
    Issue(IssueArgs),
    /// Issue a new card to a resident and revoke their current one.
    Renew(IssueArgs),
    /// Revoke a card (and optionally add it to the card authority's revocation list).
    Revoke {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "CODE")]
        municipality: String,
        #[arg(long, value_name = "SERIAL")]
        serial: String,
        /// The card authority's signed revocation list to re-sign with the serial added.
        #[arg(long, value_name = "FILE", requires = "authority_key")]
        revocation_list: Option<PathBuf>,
        /// The card authority's key (base64 seed file), to re-sign the list.
        #[arg(long, value_name = "FILE", requires = "revocation_list")]
        authority_key: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[arg(long, value_name = "CODE")]
    pub municipality: String,
    #[arg(long, value_name = "ID")]
    pub resident: String,
    /// The card authority's key: base64 of its 32-byte Ed25519 seed.
    #[arg(long, value_name = "FILE")]
    pub authority_key: PathBuf,
    /// Where to write the card file (must not exist yet).
    #[arg(long, value_name = "CARD.json")]
    pub out: PathBuf,
    /// 4-digit PIN (default: random, written into the card file).
    #[arg(long)]
    pub pin: Option<String>,
    #[arg(long, default_value_t = MAX_VALID_YEARS)]
    pub valid_years: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum CardCliError {
    #[error("{0}")]
    Settings(#[from] crate::configuration::SettingsError),
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Card(#[from] CardError),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

async fn open(
    config: &Path,
    municipality: &str,
) -> Result<(RegisterStore, MunicipalityCode), CardCliError> {
    let settings = Settings::load(config)?;
    let code = MunicipalityCode::parse(municipality)
        .map_err(|e| CardCliError::Usage(format!("--municipality: {e}")))?;
    if !settings.municipalities.iter().any(|m| m.code == code) {
        return Err(CardCliError::Usage(format!(
            "municipality {code} is not configured in {}",
            config.display()
        )));
    }
    let pool = connect_and_migrate(&settings.database_url).await?;
    Ok((RegisterStore::new(pool), code))
}

/// Runs one `card` subcommand, writing its report to `out`.
pub async fn run(command: CardCommand, out: &mut impl Write) -> Result<(), CardCliError> {
    let today = today_in_tokyo().map_err(CardCliError::Usage)?;
    let now = jiff::Timestamp::now();
    match command {
        CardCommand::Issue(args) => issue(args, false, today, now, out).await,
        CardCommand::Renew(args) => issue(args, true, today, now, out).await,
        CardCommand::Revoke {
            config,
            municipality,
            serial,
            revocation_list,
            authority_key,
        } => {
            let (store, code) = open(&config, &municipality).await?;
            let serial = CardSerial::parse(serial.as_str())
                .map_err(|e| CardCliError::Usage(format!("--serial: {e}")))?;
            // Key and list are checked first: a wrong key must not half-revoke.
            let authority = match (&revocation_list, &authority_key) {
                (Some(list), Some(key)) => {
                    let authority = cards::load_authority_key(key)?;
                    cards::read_revocation_list(list, &authority)?;
                    Some(authority)
                }
                _ => None,
            };
            let before = cards::revoke_card(&store, code, &serial, today).await?;
            if before.revoked {
                writeln!(out, "card {serial} was already revoked")?;
            } else {
                writeln!(
                    out,
                    "revoked card {serial} of resident {}",
                    before.binding.resident_id
                )?;
            }
            if let (Some(list), Some(authority)) = (revocation_list, authority) {
                let added = cards::add_to_revocation_list(&list, &authority, &serial, now)?;
                writeln!(
                    out,
                    "revocation list {}: {}",
                    list.display(),
                    if added {
                        "serial added, re-signed"
                    } else {
                        "serial already listed, re-signed"
                    }
                )?;
            }
            Ok(())
        }
    }
}

async fn issue(
    args: IssueArgs,
    renew: bool,
    today: jiff::civil::Date,
    now: jiff::Timestamp,
    out: &mut impl Write,
) -> Result<(), CardCliError> {
    let (store, code) = open(&args.config, &args.municipality).await?;
    let authority = cards::load_authority_key(&args.authority_key)?;
    let order = CardOrder {
        code,
        resident_id: &args.resident,
        authority: &authority,
        pin: args.pin,
        valid_years: args.valid_years,
        today,
        now,
    };
    let card = if renew {
        cards::renew_card(&store, &order, &args.out).await?
    } else {
        cards::issue_card(&store, &order, &args.out).await?
    };
    writeln!(
        out,
        "issued card {} to resident {} on {} → {}",
        card.serial,
        args.resident,
        card.issued_on,
        args.out.display()
    )?;
    if let Some(old) = card.replaced {
        writeln!(out, "revoked the previous card {old}")?;
    }
    Ok(())
}
