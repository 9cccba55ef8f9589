//! `municipal-adapter domicile …`: the 本籍地 clerk's side of 利用登録.
//!
//! ```text
//! municipal-adapter domicile list    --config FILE [--municipality CODE] [--status pending|approved|rejected]
//! municipal-adapter domicile approve --config FILE --registration ID --person FAMILY_REGISTER_ID/PERSON_ID
//! municipal-adapter domicile reject  --config FILE --registration ID
//! ```
//!
//! `list` prints each registration with the 本籍 and 筆頭者 as entered and the 戸籍 of
//! that municipality whose 本籍 and 筆頭者 match, so the clerk can pick the person.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use schemas::{MunicipalityCode, RequestId};

use crate::configuration::Settings;
use crate::db::connect_and_migrate;
use crate::domicile::{
    approve_registration, list_registrations, matching_family_registers, parse_status,
    reject_registration, status_str, RegistrationRecord,
};
use crate::register::FamilyRegisterRef;

#[derive(Debug, Subcommand)]
pub enum DomicileCommand {
    /// List registrations (newest first) with the matching 戸籍.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
        /// pending | approved | rejected
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve a pending registration for one person of the municipality's 戸籍.
    Approve {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "ID")]
        registration: String,
        /// FAMILY_REGISTER_ID/PERSON_ID
        #[arg(long, value_name = "FAMILY_REGISTER_ID/PERSON_ID")]
        person: String,
    },
    /// Reject a pending registration (不承認).
    Reject {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "ID")]
        registration: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DomicileCliError {
    #[error("{0}")]
    Settings(#[from] crate::configuration::SettingsError),
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
    #[error("{0}")]
    Domicile(#[from] crate::domicile::DomicileError),
    #[error("{0}")]
    Usage(String),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

/// `FAMILY_REGISTER_ID/PERSON_ID` → the reference.
pub fn parse_person(text: &str) -> Result<FamilyRegisterRef, DomicileCliError> {
    match text.split_once('/') {
        Some((register, person))
            if !register.trim().is_empty()
                && !person.trim().is_empty()
                && !person.contains('/') =>
        {
            Ok(FamilyRegisterRef {
                family_register_id: register.trim().to_owned(),
                person_id: person.trim().to_owned(),
            })
        }
        _ => Err(DomicileCliError::Usage(format!(
            "--person must be FAMILY_REGISTER_ID/PERSON_ID, got {text:?}"
        ))),
    }
}

fn parse_registration(text: &str) -> Result<RequestId, DomicileCliError> {
    text.trim().parse().map_err(|_| {
        DomicileCliError::Usage(format!("--registration {text:?} is not a registration id"))
    })
}

fn print_record(out: &mut impl Write, record: &RegistrationRecord) -> std::io::Result<()> {
    writeln!(
        out,
        "{id}  {status:<8}  本籍地 {code}  card {card}  住所地 {residence}",
        id = record.registration_id,
        status = status_str(record.status),
        code = record.municipality_code,
        card = record.card_serial,
        residence = record.residence_municipality_code,
    )?;
    writeln!(
        out,
        "    entered: 本籍 {}  筆頭者 {}",
        record.domicile, record.domicile_head
    )?;
    if let Some(person) = &record.person {
        writeln!(
            out,
            "    approved: {}/{}",
            person.family_register_id, person.person_id
        )?;
    }
    Ok(())
}

/// Runs one `domicile` subcommand, writing its report to `out`.
pub async fn run(command: DomicileCommand, out: &mut impl Write) -> Result<(), DomicileCliError> {
    match command {
        DomicileCommand::List {
            config,
            municipality,
            status,
        } => {
            let settings = Settings::load(&config)?;
            let municipality = municipality
                .map(|m| {
                    MunicipalityCode::parse(&m)
                        .map_err(|e| DomicileCliError::Usage(format!("--municipality: {e}")))
                })
                .transpose()?;
            let status = status
                .map(|s| {
                    parse_status(&s).ok_or_else(|| {
                        DomicileCliError::Usage(format!(
                            "--status must be pending, approved or rejected, got {s:?}"
                        ))
                    })
                })
                .transpose()?;
            let pool = connect_and_migrate(&settings.database_url).await?;
            let records = list_registrations(&pool, municipality, status).await?;
            if records.is_empty() {
                writeln!(out, "no registrations")?;
            }
            for record in &records {
                print_record(out, record)?;
                let matches = matching_family_registers(
                    &pool,
                    record.municipality_code,
                    &record.domicile,
                    &record.domicile_head,
                )
                .await?;
                if matches.is_empty() {
                    writeln!(out, "    matching 戸籍: none")?;
                }
                for register in matches {
                    writeln!(
                        out,
                        "    matching 戸籍 {}: 本籍 {}  筆頭者 {}",
                        register.family_register_id, register.domicile, register.head_name
                    )?;
                    for person in &register.persons {
                        writeln!(
                            out,
                            "      --person {}/{}  {}{}",
                            register.family_register_id,
                            person.person_id,
                            person.name,
                            if person.removed { "（除籍）" } else { "" }
                        )?;
                    }
                }
            }
            Ok(())
        }
        DomicileCommand::Approve {
            config,
            registration,
            person,
        } => {
            let settings = Settings::load(&config)?;
            let id = parse_registration(&registration)?;
            let person = parse_person(&person)?;
            let pool = connect_and_migrate(&settings.database_url).await?;
            let record = approve_registration(&pool, id, &person).await?;
            print_record(out, &record)?;
            Ok(())
        }
        DomicileCommand::Reject {
            config,
            registration,
        } => {
            let settings = Settings::load(&config)?;
            let id = parse_registration(&registration)?;
            let pool = connect_and_migrate(&settings.database_url).await?;
            let record = reject_registration(&pool, id).await?;
            print_record(out, &record)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_references_parse() {
        let person = parse_person("FR-1/P-2").unwrap();
        assert_eq!(person.family_register_id, "FR-1");
        assert_eq!(person.person_id, "P-2");
        for bad in ["FR-1", "/P-2", "FR-1/", "a/b/c"] {
            assert!(parse_person(bad).is_err(), "{bad}");
        }
    }
}
