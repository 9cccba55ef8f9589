//! 本籍地 利用登録 on the municipality's side: registrations forwarded by the center
//! (`POST /v1/domicile-registrations`), kept in the `domicile_registrations` table and
//! decided by a clerk (`municipal-adapter domicile list|approve|reject`, or in-process
//! through [`approve_registration`] / [`reject_registration`]).
//!
//! A card may obtain 戸籍 certificates through the 本籍地 route only once one of its
//! registrations at that municipality is approved; the approval names the person
//! (`family_register_id/person_id`) whose 戸籍 the answers are built from. Everything is
//! keyed by the 本籍地 municipality code: an approval at 215015 means nothing at 212113.

use schemas::{
    CardSerial, DomicileRegistrationStatus, DomicileRegistrationSubmit, MunicipalityCode, RequestId,
};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::Row as _;

use crate::register::{FamilyRegisterRef, RegisterStore};

/// Most rows `list_registrations` returns (the CLI pages by status and municipality).
pub const MAX_LISTED_REGISTRATIONS: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum DomicileError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("register: {0}")]
    Register(#[from] crate::register::StoreError),
    #[error("registration {0} is not known")]
    UnknownRegistration(RequestId),
    #[error("registration {0} was already used for a different card or municipality")]
    RegistrationIdReused(RequestId),
    #[error("registration {id} is already {status}")]
    AlreadyDecided { id: RequestId, status: &'static str },
    #[error(
        "person {person_id} is not in 戸籍 {family_register_id} of municipality {municipality}"
    )]
    PersonNotFound {
        municipality: MunicipalityCode,
        family_register_id: String,
        person_id: String,
    },
    #[error("the registration is invalid: {0}")]
    Invalid(String),
    #[error("stored registration row is corrupt: {0}")]
    Corrupt(String),
}

/// One stored registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRecord {
    pub registration_id: RequestId,
    /// The 本籍地 (this municipality).
    pub municipality_code: MunicipalityCode,
    pub card_serial: CardSerial,
    /// 住所地 from the card certificate.
    pub residence_municipality_code: MunicipalityCode,
    /// 本籍 and 筆頭者 as the resident entered them.
    pub domicile: String,
    pub domicile_head: String,
    pub status: DomicileRegistrationStatus,
    pub submitted_at_unix_s: i64,
    pub decided_at_unix_s: Option<i64>,
    /// The approved person, when approved.
    pub person: Option<FamilyRegisterRef>,
}

pub fn status_str(status: DomicileRegistrationStatus) -> &'static str {
    match status {
        DomicileRegistrationStatus::Pending => "pending",
        DomicileRegistrationStatus::Approved => "approved",
        DomicileRegistrationStatus::Rejected => "rejected",
    }
}

pub fn parse_status(text: &str) -> Option<DomicileRegistrationStatus> {
    [
        DomicileRegistrationStatus::Pending,
        DomicileRegistrationStatus::Approved,
        DomicileRegistrationStatus::Rejected,
    ]
    .into_iter()
    .find(|s| status_str(*s) == text)
}

const COLUMNS: &str = "registration_id, municipality_code, card_serial, \
    residence_municipality_code, domicile, domicile_head, status, submitted_at_unix_s, \
    decided_at_unix_s, family_register_id, person_id";

fn record_from_row(row: &SqliteRow) -> Result<RegistrationRecord, DomicileError> {
    let corrupt = |column: &str, detail: String| {
        DomicileError::Corrupt(format!("domicile_registrations.{column}: {detail}"))
    };
    let text = |column: &str| -> Result<String, DomicileError> { Ok(row.try_get(column)?) };
    let id = text("registration_id")?;
    let code = |column: &str| -> Result<MunicipalityCode, DomicileError> {
        let value = text(column)?;
        MunicipalityCode::parse(&value).map_err(|e| corrupt(column, e.to_string()))
    };
    let status = text("status")?;
    let family_register_id: Option<String> = row.try_get("family_register_id")?;
    let person_id: Option<String> = row.try_get("person_id")?;
    Ok(RegistrationRecord {
        registration_id: id.parse().map_err(|_| corrupt("registration_id", id))?,
        municipality_code: code("municipality_code")?,
        card_serial: CardSerial::parse(text("card_serial")?)
            .map_err(|e| corrupt("card_serial", e.to_string()))?,
        residence_municipality_code: code("residence_municipality_code")?,
        domicile: text("domicile")?,
        domicile_head: text("domicile_head")?,
        status: parse_status(&status).ok_or_else(|| corrupt("status", status.clone()))?,
        submitted_at_unix_s: row.try_get("submitted_at_unix_s")?,
        decided_at_unix_s: row.try_get("decided_at_unix_s")?,
        person: match (family_register_id, person_id) {
            (Some(family_register_id), Some(person_id)) => Some(FamilyRegisterRef {
                family_register_id,
                person_id,
            }),
            _ => None,
        },
    })
}

pub async fn find_registration(
    pool: &SqlitePool,
    registration_id: RequestId,
) -> Result<Option<RegistrationRecord>, DomicileError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM domicile_registrations WHERE registration_id = ?"
    ))
    .bind(registration_id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record_from_row).transpose()
}

/// The person an approved registration of `card` at `municipality` names (the newest
/// approval), or `None`: then the 本籍地 route is refused `domicile_not_registered`.
pub async fn approved_person(
    pool: &SqlitePool,
    municipality: MunicipalityCode,
    card: &CardSerial,
) -> Result<Option<FamilyRegisterRef>, DomicileError> {
    let row = sqlx::query(
        "SELECT family_register_id, person_id FROM domicile_registrations \
         WHERE municipality_code = ? AND card_serial = ? AND status = 'approved' \
         ORDER BY decided_at_unix_s DESC, registration_id LIMIT 1",
    )
    .bind(municipality.to_string())
    .bind(card.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(FamilyRegisterRef {
            family_register_id: row.try_get("family_register_id")?,
            person_id: row.try_get("person_id")?,
        })
    })
    .transpose()
}

/// Stores a registration forwarded by the center (already verified and addressed to a
/// municipality served here) and returns its status: `pending` when new, the stored
/// status on a retry of the same id, `approved` when this card is already approved at
/// this municipality (nothing new is stored then).
pub async fn submit_registration(
    pool: &SqlitePool,
    submit: &DomicileRegistrationSubmit,
    now_unix_s: i64,
) -> Result<DomicileRegistrationStatus, DomicileError> {
    let entry = schemas::DomicileRegistration {
        municipality_code: submit.municipality_code,
        domicile: submit.domicile.clone(),
        domicile_head: submit.domicile_head.clone(),
    };
    entry.validate().map_err(DomicileError::Invalid)?;
    if let Some(existing) = find_registration(pool, submit.registration_id).await? {
        if existing.municipality_code != submit.municipality_code
            || existing.card_serial != submit.card_serial
        {
            return Err(DomicileError::RegistrationIdReused(submit.registration_id));
        }
        return Ok(existing.status);
    }
    if approved_person(pool, submit.municipality_code, &submit.card_serial)
        .await?
        .is_some()
    {
        return Ok(DomicileRegistrationStatus::Approved);
    }
    // ON CONFLICT: two concurrent first attempts of one id store one row.
    sqlx::query(
        "INSERT INTO domicile_registrations (registration_id, municipality_code, card_serial, \
         residence_municipality_code, domicile, domicile_head, status, submitted_at_unix_s) \
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (registration_id) DO NOTHING",
    )
    .bind(submit.registration_id.to_string())
    .bind(submit.municipality_code.to_string())
    .bind(submit.card_serial.as_str())
    .bind(submit.residence_municipality_code.to_string())
    .bind(submit.domicile.trim())
    .bind(submit.domicile_head.trim())
    .bind(now_unix_s)
    .execute(pool)
    .await?;
    match find_registration(pool, submit.registration_id).await? {
        Some(stored) if stored.card_serial == submit.card_serial => Ok(stored.status),
        Some(_) => Err(DomicileError::RegistrationIdReused(submit.registration_id)),
        None => Err(DomicileError::UnknownRegistration(submit.registration_id)),
    }
}

/// Registrations, newest first, optionally of one municipality and one status (at most
/// [`MAX_LISTED_REGISTRATIONS`]).
pub async fn list_registrations(
    pool: &SqlitePool,
    municipality: Option<MunicipalityCode>,
    status: Option<DomicileRegistrationStatus>,
) -> Result<Vec<RegistrationRecord>, DomicileError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM domicile_registrations \
         WHERE (?1 IS NULL OR municipality_code = ?1) AND (?2 IS NULL OR status = ?2) \
         ORDER BY submitted_at_unix_s DESC, registration_id LIMIT ?3"
    ))
    .bind(municipality.map(|m| m.to_string()))
    .bind(status.map(status_str))
    .bind(MAX_LISTED_REGISTRATIONS)
    .fetch_all(pool)
    .await?;
    rows.iter().map(record_from_row).collect()
}

fn require_pending(record: &RegistrationRecord) -> Result<(), DomicileError> {
    match record.status {
        DomicileRegistrationStatus::Pending => Ok(()),
        other => Err(DomicileError::AlreadyDecided {
            id: record.registration_id,
            status: status_str(other),
        }),
    }
}

/// Approves a pending registration for `person`, who must be in one of the 本籍地's
/// 戸籍 (checked against the imported register). Returns the updated record.
pub async fn approve_registration(
    pool: &SqlitePool,
    registration_id: RequestId,
    person: &FamilyRegisterRef,
) -> Result<RegistrationRecord, DomicileError> {
    let record = find_registration(pool, registration_id)
        .await?
        .ok_or(DomicileError::UnknownRegistration(registration_id))?;
    require_pending(&record)?;
    let register = RegisterStore::new(pool.clone())
        .family_register(record.municipality_code, &person.family_register_id)
        .await?;
    if register
        .as_ref()
        .and_then(|r| r.person(&person.person_id))
        .is_none()
    {
        return Err(DomicileError::PersonNotFound {
            municipality: record.municipality_code,
            family_register_id: person.family_register_id.clone(),
            person_id: person.person_id.clone(),
        });
    }
    decide(pool, &record, Some(person)).await
}

/// Rejects a pending registration (不承認). Returns the updated record.
pub async fn reject_registration(
    pool: &SqlitePool,
    registration_id: RequestId,
) -> Result<RegistrationRecord, DomicileError> {
    let record = find_registration(pool, registration_id)
        .await?
        .ok_or(DomicileError::UnknownRegistration(registration_id))?;
    require_pending(&record)?;
    decide(pool, &record, None).await
}

async fn decide(
    pool: &SqlitePool,
    record: &RegistrationRecord,
    person: Option<&FamilyRegisterRef>,
) -> Result<RegistrationRecord, DomicileError> {
    let status = if person.is_some() {
        DomicileRegistrationStatus::Approved
    } else {
        DomicileRegistrationStatus::Rejected
    };
    // `status = 'pending'` in the WHERE: of two clerks deciding at once, one wins.
    let updated = sqlx::query(
        "UPDATE domicile_registrations SET status = ?, decided_at_unix_s = ?, \
         family_register_id = ?, person_id = ? WHERE registration_id = ? AND status = 'pending'",
    )
    .bind(status_str(status))
    .bind(jiff::Timestamp::now().as_second())
    .bind(person.map(|p| p.family_register_id.as_str()))
    .bind(person.map(|p| p.person_id.as_str()))
    .bind(record.registration_id.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    let stored = find_registration(pool, record.registration_id)
        .await?
        .ok_or(DomicileError::UnknownRegistration(record.registration_id))?;
    if updated == 0 {
        return Err(DomicileError::AlreadyDecided {
            id: stored.registration_id,
            status: status_str(stored.status),
        });
    }
    Ok(stored)
}

/// Most 戸籍 a `list` shows as candidates for one registration.
pub const MAX_MATCHES: usize = 10;

/// 本籍 / 筆頭者 compared the way a clerk reads them: whitespace (half- or full-width)
/// does not count.
pub fn normalized(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The 戸籍 of `municipality` whose 本籍 and 筆頭者 match what the resident entered
/// (at most [`MAX_MATCHES`]), for the clerk who approves.
pub async fn matching_family_registers(
    pool: &SqlitePool,
    municipality: MunicipalityCode,
    domicile: &str,
    domicile_head: &str,
) -> Result<Vec<crate::register::FamilyRegister>, DomicileError> {
    let (want_domicile, want_head) = (normalized(domicile), normalized(domicile_head));
    let matches = RegisterStore::new(pool.clone())
        .family_registers(municipality)
        .await?
        .into_iter()
        .filter(|r| {
            normalized(&r.domicile) == want_domicile && normalized(&r.head_name) == want_head
        })
        .take(MAX_MATCHES)
        .collect();
    Ok(matches)
}
