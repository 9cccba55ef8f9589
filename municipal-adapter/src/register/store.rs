//! The register in the adapter's database: atomic replacement from a validated
//! [`Register`], and the one look-up issuance needs.

use schemas::{CardSerial, MunicipalityCode};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::Row as _;

use super::fixture::parse_iso_date;
use super::{Household, Register, Resident, ResidentStatus, Sex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row that the import would never have written (hand-edited database?).
    #[error("register row is corrupt: {0}")]
    Corrupt(String),
}

/// Counts written by [`RegisterStore::replace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub households: usize,
    pub residents: usize,
    pub card_bindings: usize,
}

/// A bound card with its holder's whole household, read in one statement so that the
/// binding, the holder and the household rows come from one consistent snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardLookup {
    /// The serial as stored in the binding (the one "actually looked up").
    pub card_serial: CardSerial,
    pub holder_id: String,
    pub household: Household,
}

impl CardLookup {
    pub fn holder(&self) -> Option<&Resident> {
        self.household.member(&self.holder_id)
    }
}

#[derive(Clone, Debug)]
pub struct RegisterStore {
    pool: SqlitePool,
}

const RESIDENT_COLUMNS: &str = "r.resident_id, r.name, r.name_kana, r.birth_date, r.sex, \
     r.relationship, r.became_resident_on, r.previous_address, r.domicile, r.domicile_head, \
     r.remarks_json, r.status, r.support_measures";

impl RegisterStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Replaces the municipality's whole register in one transaction: a reader sees
    /// either the old register or the new one, never a mix.
    pub async fn replace(
        &self,
        register: &Register,
        source_sha256: &str,
        now_unix_s: i64,
    ) -> Result<ImportSummary, StoreError> {
        let code = register.municipality_code.to_string();
        let mut tx = self.pool.begin().await?;
        // Bindings and residents reference households; delete children first so the
        // foreign keys hold at every statement.
        for table in ["card_bindings", "residents", "households"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE municipality_code = ?"))
                .bind(&code)
                .execute(&mut *tx)
                .await?;
        }
        for household in &register.households {
            sqlx::query(
                "INSERT INTO households (municipality_code, household_id, address) VALUES (?, ?, ?)",
            )
            .bind(&code)
            .bind(&household.household_id)
            .bind(&household.address)
            .execute(&mut *tx)
            .await?;
            for (position, member) in household.members.iter().enumerate() {
                let remarks = serde_json::to_string(&member.remarks)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO residents (municipality_code, resident_id, household_id, position, \
                     name, name_kana, birth_date, sex, relationship, became_resident_on, \
                     previous_address, domicile, domicile_head, remarks_json, status, support_measures) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&code)
                .bind(&member.resident_id)
                .bind(&household.household_id)
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(&member.name)
                .bind(&member.name_kana)
                .bind(member.birth_date.to_string())
                .bind(member.sex.as_str())
                .bind(&member.relationship)
                .bind(member.became_resident_on.to_string())
                .bind(&member.previous_address)
                .bind(&member.domicile)
                .bind(&member.domicile_head)
                .bind(remarks)
                .bind(member.status.as_str())
                .bind(member.support_measures)
                .execute(&mut *tx)
                .await?;
            }
        }
        for binding in &register.card_bindings {
            sqlx::query(
                "INSERT INTO card_bindings (municipality_code, card_serial, resident_id) VALUES (?, ?, ?)",
            )
            .bind(&code)
            .bind(binding.card_serial.as_str())
            .bind(&binding.resident_id)
            .execute(&mut *tx)
            .await?;
        }
        let summary = ImportSummary {
            households: register.households.len(),
            residents: register.resident_count(),
            card_bindings: register.card_bindings.len(),
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO register_imports (municipality_code, imported_at_unix_s, source_sha256, \
             households, residents, card_bindings) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (municipality_code) DO UPDATE SET imported_at_unix_s = excluded.imported_at_unix_s, \
             source_sha256 = excluded.source_sha256, households = excluded.households, \
             residents = excluded.residents, card_bindings = excluded.card_bindings",
        )
        .bind(&code)
        .bind(now_unix_s)
        .bind(source_sha256)
        .bind(count(summary.households))
        .bind(count(summary.residents))
        .bind(count(summary.card_bindings))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// The card's binding, its holder and the holder's household, or `None` when no
    /// resident of `code` is bound to `serial`.
    pub async fn lookup_card(
        &self,
        code: MunicipalityCode,
        serial: &CardSerial,
    ) -> Result<Option<CardLookup>, StoreError> {
        let sql = format!(
            "SELECT b.card_serial AS bound_serial, b.resident_id AS holder_id, \
             h.household_id AS household_id, h.address AS address, {RESIDENT_COLUMNS} \
             FROM card_bindings b \
             JOIN residents holder ON holder.municipality_code = b.municipality_code \
                  AND holder.resident_id = b.resident_id \
             JOIN households h ON h.municipality_code = holder.municipality_code \
                  AND h.household_id = holder.household_id \
             JOIN residents r ON r.municipality_code = h.municipality_code \
                  AND r.household_id = h.household_id \
             WHERE b.municipality_code = ? AND b.card_serial = ? \
             ORDER BY r.position"
        );
        let rows = sqlx::query(&sql)
            .bind(code.to_string())
            .bind(serial.as_str())
            .fetch_all(&self.pool)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let bound_serial: String = first.try_get("bound_serial")?;
        let card_serial = CardSerial::parse(bound_serial)
            .map_err(|e| StoreError::Corrupt(format!("card_bindings.card_serial: {e}")))?;
        let holder_id: String = first.try_get("holder_id")?;
        let household = household_from_rows(&rows)?;
        Ok(Some(CardLookup {
            card_serial,
            holder_id,
            household,
        }))
    }

    /// Some household of `code` other than `except_household_id` (the first by id), with
    /// its members; used only by the `foreign_front` fault.
    pub async fn other_household(
        &self,
        code: MunicipalityCode,
        except_household_id: &str,
    ) -> Result<Option<Household>, StoreError> {
        let sql = format!(
            "SELECT h.household_id AS household_id, h.address AS address, {RESIDENT_COLUMNS} \
             FROM households h \
             JOIN residents r ON r.municipality_code = h.municipality_code \
                  AND r.household_id = h.household_id \
             WHERE h.municipality_code = ?1 AND h.household_id = ( \
                 SELECT MIN(household_id) FROM households \
                 WHERE municipality_code = ?1 AND household_id <> ?2) \
             ORDER BY r.position"
        );
        let rows = sqlx::query(&sql)
            .bind(code.to_string())
            .bind(except_household_id)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        household_from_rows(&rows).map(Some)
    }

    /// Bound cards per municipality (for the start-up log and `/health`).
    pub async fn card_binding_count(&self, code: MunicipalityCode) -> Result<i64, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM card_bindings WHERE municipality_code = ?")
                .bind(code.to_string())
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }
}

fn household_from_rows(rows: &[SqliteRow]) -> Result<Household, StoreError> {
    let Some(first) = rows.first() else {
        return Err(StoreError::Corrupt("household without rows".into()));
    };
    let members = rows
        .iter()
        .map(resident_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Household {
        household_id: first.try_get("household_id")?,
        address: first.try_get("address")?,
        members,
    })
}

fn resident_from_row(row: &SqliteRow) -> Result<Resident, StoreError> {
    let corrupt =
        |column: &str, detail: String| StoreError::Corrupt(format!("residents.{column}: {detail}"));
    let date = |column: &str| -> Result<jiff::civil::Date, StoreError> {
        let text: String = row.try_get(column)?;
        parse_iso_date(&text).map_err(|e| corrupt(column, e))
    };
    let sex: String = row.try_get("sex")?;
    let status: String = row.try_get("status")?;
    let remarks: String = row.try_get("remarks_json")?;
    Ok(Resident {
        resident_id: row.try_get("resident_id")?,
        name: row.try_get("name")?,
        name_kana: row.try_get("name_kana")?,
        birth_date: date("birth_date")?,
        sex: Sex::parse(&sex).ok_or_else(|| corrupt("sex", sex.clone()))?,
        relationship: row.try_get("relationship")?,
        became_resident_on: date("became_resident_on")?,
        previous_address: row.try_get("previous_address")?,
        domicile: row.try_get("domicile")?,
        domicile_head: row.try_get("domicile_head")?,
        remarks: serde_json::from_str(&remarks)
            .map_err(|e| corrupt("remarks_json", e.to_string()))?,
        status: ResidentStatus::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?,
        support_measures: row.try_get("support_measures")?,
    })
}
