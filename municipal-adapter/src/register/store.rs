//! The register in the adapter's database: atomic per-municipality replacement of
//! every ledger from a validated [`Register`], the card bindings (managed apart from
//! the register), and the look-ups issuance needs.
//!
//! Every look-up runs inside one read transaction, so all its rows come from one
//! snapshot: a concurrent import is seen either entirely or not at all.

use jiff::civil::Date;
use schemas::{CardSerial, MunicipalityCode};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row as _, Sqlite, Transaction};

use super::{
    AttachmentAddress, CardBinding, FamilyRegister, FamilyRegisterEvent, FamilyRegisterPerson,
    FamilyRegisterRef, Household, Register, Resident, ResidentStatus, SealRegistration, Sex,
    TaxPayment, TaxRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row that the import would never have written (hand-edited database?).
    #[error("register row is corrupt: {0}")]
    Corrupt(String),
}

/// Counts written by [`RegisterStore::replace`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub households: usize,
    pub residents: usize,
    pub seal_registrations: usize,
    pub tax_records: usize,
    pub tax_payments: usize,
    pub family_registers: usize,
    /// Bindings of the import's `cards.csv` that were new (existing serials and
    /// residents who already hold a usable card are left as they are).
    pub card_bindings_added: usize,
}

/// A bound card with everything issuance needs about its holder, read in one
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardLookup {
    /// The serial as stored in the binding (the one "actually looked up").
    pub card_serial: CardSerial,
    /// カード交付日 of this card.
    pub card_issued_on: Date,
    pub holder_id: String,
    /// The holder's whole household, in register order.
    pub household: Household,
    /// The holder's newest 印鑑登録, active or not.
    pub seal_registration: Option<SealRegistration>,
    /// The holder's 課税 records, oldest fiscal year first.
    pub tax_records: Vec<TaxRecord>,
    /// The holder's 収納 rows, by fiscal year then file order.
    pub tax_payments: Vec<TaxPayment>,
}

impl CardLookup {
    pub fn holder(&self) -> Option<&Resident> {
        self.household.member(&self.holder_id)
    }
}

/// One stored card binding, revoked or not (for `municipal-adapter card …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBinding {
    pub binding: CardBinding,
    pub revoked: bool,
    pub revoked_on: Option<Date>,
}

/// Why a new binding was not written.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("card serial {0} is already in use (serials are never reused)")]
    SerialTaken(CardSerial),
    #[error("resident {0} is not in the register")]
    UnknownResident(String),
    #[error("resident {resident_id} already holds the usable card {card_serial}")]
    AlreadyHoldsCard {
        resident_id: String,
        card_serial: CardSerial,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BindError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Db(e))
    }
}

#[derive(Clone, Debug)]
pub struct RegisterStore {
    pool: SqlitePool,
}

const RESIDENT_COLUMNS: &str = "r.resident_id, r.name, r.name_kana, r.birth_date, r.sex, \
     r.relationship, r.became_resident_on, r.previous_address, r.domicile, r.domicile_head, \
     r.remarks_json, r.status, r.support_measures, r.family_register_id, \
     r.family_register_person_id";

/// Tables replaced by an import, children first so that foreign keys hold at every
/// statement.
const REGISTER_TABLES: [&str; 9] = [
    "attachment_addresses",
    "family_register_events",
    "family_register_persons",
    "family_registers",
    "tax_payments",
    "tax_records",
    "seal_registrations",
    "residents",
    "households",
];

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn yen(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl RegisterStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The SHA-256 of the register directory last imported for `code`.
    pub async fn imported_sha256(
        &self,
        code: MunicipalityCode,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT source_sha256 FROM register_imports WHERE municipality_code = ?",
        )
        .bind(code.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Replaces the municipality's whole register (every ledger) in one transaction:
    /// a reader sees either the old register or the new one, never a mix. Card
    /// bindings are kept; `cards` (from `cards.csv`) only adds bindings whose serial
    /// is unused and whose resident holds no usable card yet.
    pub async fn replace(
        &self,
        register: &Register,
        cards: &[CardBinding],
        source_sha256: &str,
        now_unix_s: i64,
    ) -> Result<ImportSummary, StoreError> {
        let code = register.municipality_code.to_string();
        let mut tx = self.pool.begin().await?;
        for table in REGISTER_TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE municipality_code = ?"))
                .bind(&code)
                .execute(&mut *tx)
                .await?;
        }
        insert_households(&mut tx, &code, register).await?;
        for (position, seal) in register.seal_registrations.iter().enumerate() {
            sqlx::query(
                "INSERT INTO seal_registrations (municipality_code, registration_number, position, \
                 resident_id, registered_on, active, impression_png) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&code)
            .bind(&seal.registration_number)
            .bind(count(position))
            .bind(&seal.resident_id)
            .bind(seal.registered_on.to_string())
            .bind(seal.active)
            .bind(&seal.impression_png)
            .execute(&mut *tx)
            .await?;
        }
        for record in &register.tax_records {
            sqlx::query(
                "INSERT INTO tax_records (municipality_code, resident_id, fiscal_year, \
                 address_on_jan1, salary_income_yen, total_income_yen, deductions_yen, \
                 taxable_income_yen, municipal_tax_yen, prefectural_tax_yen) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&code)
            .bind(&record.resident_id)
            .bind(i64::from(record.fiscal_year))
            .bind(&record.address_on_jan1)
            .bind(record.salary_income_yen)
            .bind(record.total_income_yen)
            .bind(record.deductions_yen)
            .bind(record.taxable_income_yen)
            .bind(record.municipal_tax_yen)
            .bind(record.prefectural_tax_yen)
            .execute(&mut *tx)
            .await?;
        }
        for (position, payment) in register.tax_payments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO tax_payments (municipality_code, resident_id, fiscal_year, tax_name, \
                 position, assessed_yen, paid_yen) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&code)
            .bind(&payment.resident_id)
            .bind(i64::from(payment.fiscal_year))
            .bind(&payment.tax_name)
            .bind(count(position))
            .bind(yen(payment.assessed_yen))
            .bind(yen(payment.paid_yen))
            .execute(&mut *tx)
            .await?;
        }
        insert_family_registers(&mut tx, &code, register).await?;
        let mut added = 0;
        for card in cards {
            let result = sqlx::query(
                "INSERT OR IGNORE INTO card_bindings (municipality_code, card_serial, resident_id, \
                 issued_on, revoked) VALUES (?, ?, ?, ?, 0)",
            )
            .bind(&code)
            .bind(card.card_serial.as_str())
            .bind(&card.resident_id)
            .bind(card.issued_on.to_string())
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() > 0 {
                added += 1;
            }
        }
        let summary = ImportSummary {
            households: register.households.len(),
            residents: register.resident_count(),
            seal_registrations: register.seal_registrations.len(),
            tax_records: register.tax_records.len(),
            tax_payments: register.tax_payments.len(),
            family_registers: register.family_registers.len(),
            card_bindings_added: added,
        };
        let bindings: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM card_bindings WHERE municipality_code = ?")
                .bind(&code)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO register_imports (municipality_code, imported_at_unix_s, source_sha256, \
             households, residents, seal_registrations, tax_records, tax_payments, \
             family_registers, card_bindings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (municipality_code) DO UPDATE SET \
             imported_at_unix_s = excluded.imported_at_unix_s, \
             source_sha256 = excluded.source_sha256, households = excluded.households, \
             residents = excluded.residents, seal_registrations = excluded.seal_registrations, \
             tax_records = excluded.tax_records, tax_payments = excluded.tax_payments, \
             family_registers = excluded.family_registers, card_bindings = excluded.card_bindings",
        )
        .bind(&code)
        .bind(now_unix_s)
        .bind(source_sha256)
        .bind(count(summary.households))
        .bind(count(summary.residents))
        .bind(count(summary.seal_registrations))
        .bind(count(summary.tax_records))
        .bind(count(summary.tax_payments))
        .bind(count(summary.family_registers))
        .bind(bindings)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// The usable card `serial` of `code` with its holder's household and ledgers;
    /// `None` for an unbound or revoked card, or one whose resident is no longer in
    /// the register.
    pub async fn lookup_card(
        &self,
        code: MunicipalityCode,
        serial: &CardSerial,
    ) -> Result<Option<CardLookup>, StoreError> {
        let code = code.to_string();
        let mut tx = self.pool.begin().await?;
        let binding = sqlx::query(
            "SELECT b.card_serial, b.resident_id, b.issued_on, r.household_id \
             FROM card_bindings b JOIN residents r \
               ON r.municipality_code = b.municipality_code AND r.resident_id = b.resident_id \
             WHERE b.municipality_code = ? AND b.card_serial = ? AND b.revoked = 0",
        )
        .bind(&code)
        .bind(serial.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(binding) = binding else {
            tx.commit().await?;
            return Ok(None);
        };
        let stored_serial: String = binding.try_get("card_serial")?;
        let card_serial = CardSerial::parse(stored_serial.clone())
            .map_err(|e| StoreError::Corrupt(format!("card_bindings.card_serial: {e}")))?;
        let holder_id: String = binding.try_get("resident_id")?;
        let card_issued_on = date_column(&binding, "card_bindings", "issued_on")?;
        let household_id: String = binding.try_get("household_id")?;

        let household = household_in(&mut tx, &code, &household_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("household {household_id} has no rows")))?;
        let seal = sqlx::query(
            "SELECT resident_id, registration_number, registered_on, active, impression_png \
             FROM seal_registrations WHERE municipality_code = ? AND resident_id = ? \
             ORDER BY registered_on DESC, position DESC LIMIT 1",
        )
        .bind(&code)
        .bind(&holder_id)
        .fetch_optional(&mut *tx)
        .await?;
        let seal_registration = seal.as_ref().map(seal_from_row).transpose()?;
        let tax_records = sqlx::query(
            "SELECT * FROM tax_records WHERE municipality_code = ? AND resident_id = ? \
             ORDER BY fiscal_year",
        )
        .bind(&code)
        .bind(&holder_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(tax_record_from_row)
        .collect::<Result<_, _>>()?;
        let tax_payments = sqlx::query(
            "SELECT * FROM tax_payments WHERE municipality_code = ? AND resident_id = ? \
             ORDER BY fiscal_year, position",
        )
        .bind(&code)
        .bind(&holder_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(tax_payment_from_row)
        .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(Some(CardLookup {
            card_serial,
            card_issued_on,
            holder_id,
            household,
            seal_registration,
            tax_records,
            tax_payments,
        }))
    }

    /// The 戸籍 `family_register_id` kept by `code` (本籍 there), with its persons,
    /// their 身分事項 and 附票 addresses.
    pub async fn family_register(
        &self,
        code: MunicipalityCode,
        family_register_id: &str,
    ) -> Result<Option<FamilyRegister>, StoreError> {
        let code = code.to_string();
        let mut tx = self.pool.begin().await?;
        let found = family_register_in(&mut tx, &code, family_register_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Every 戸籍 kept by `code`, in file order (for admin tools matching 本籍 and
    /// 筆頭者).
    pub async fn family_registers(
        &self,
        code: MunicipalityCode,
    ) -> Result<Vec<FamilyRegister>, StoreError> {
        let code = code.to_string();
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT family_register_id FROM family_registers WHERE municipality_code = ? \
             ORDER BY position",
        )
        .bind(&code)
        .fetch_all(&mut *tx)
        .await?;
        let mut registers = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(register) = family_register_in(&mut tx, &code, &id).await? {
                registers.push(register);
            }
        }
        tx.commit().await?;
        Ok(registers)
    }

    /// A household of `code` other than `except_household_id` (the first by id), for
    /// the `foreign_front` fault mode.
    pub async fn other_household(
        &self,
        code: MunicipalityCode,
        except_household_id: &str,
    ) -> Result<Option<Household>, StoreError> {
        let code = code.to_string();
        let mut tx = self.pool.begin().await?;
        let other: Option<String> = sqlx::query_scalar(
            "SELECT MIN(household_id) FROM households \
             WHERE municipality_code = ? AND household_id <> ?",
        )
        .bind(&code)
        .bind(except_household_id)
        .fetch_one(&mut *tx)
        .await?;
        let household = match other {
            Some(id) => household_in(&mut tx, &code, &id).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(household)
    }

    /// The resident `resident_id` of `code` and their household, if in the register.
    pub async fn resident(
        &self,
        code: MunicipalityCode,
        resident_id: &str,
    ) -> Result<Option<(Household, Resident)>, StoreError> {
        let code = code.to_string();
        let mut tx = self.pool.begin().await?;
        let household_id: Option<String> = sqlx::query_scalar(
            "SELECT household_id FROM residents WHERE municipality_code = ? AND resident_id = ?",
        )
        .bind(&code)
        .bind(resident_id)
        .fetch_optional(&mut *tx)
        .await?;
        let found = match household_id {
            Some(id) => household_in(&mut tx, &code, &id).await?.and_then(|h| {
                let resident = h.member(resident_id).cloned()?;
                Some((h, resident))
            }),
            None => None,
        };
        tx.commit().await?;
        Ok(found)
    }

    /// Usable (not revoked) card bindings of `code`.
    pub async fn card_binding_count(&self, code: MunicipalityCode) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM card_bindings WHERE municipality_code = ? AND revoked = 0",
        )
        .bind(code.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    /// The stored binding of `serial` in `code`, revoked or not.
    pub async fn binding(
        &self,
        code: MunicipalityCode,
        serial: &CardSerial,
    ) -> Result<Option<StoredBinding>, StoreError> {
        let row = sqlx::query(
            "SELECT card_serial, resident_id, issued_on, revoked, revoked_on FROM card_bindings \
             WHERE municipality_code = ? AND card_serial = ?",
        )
        .bind(code.to_string())
        .bind(serial.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_binding_from_row).transpose()
    }

    /// Every binding of `resident_id` in `code`, oldest first.
    pub async fn bindings_of(
        &self,
        code: MunicipalityCode,
        resident_id: &str,
    ) -> Result<Vec<StoredBinding>, StoreError> {
        sqlx::query(
            "SELECT card_serial, resident_id, issued_on, revoked, revoked_on FROM card_bindings \
             WHERE municipality_code = ? AND resident_id = ? ORDER BY issued_on, card_serial",
        )
        .bind(code.to_string())
        .bind(resident_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(stored_binding_from_row)
        .collect()
    }

    /// Whether `serial` was ever bound in any municipality (serials are never reused).
    pub async fn serial_exists(&self, serial: &CardSerial) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM card_bindings WHERE card_serial = ?")
            .bind(serial.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Binds a new card to a resident of the register. With `revoke` the resident's
    /// current usable card is revoked in the same transaction (renewal); without it a
    /// resident who already holds a usable card is refused.
    pub async fn bind_card(
        &self,
        code: MunicipalityCode,
        binding: &CardBinding,
        revoke_current_on: Option<Date>,
    ) -> Result<Option<CardSerial>, BindError> {
        let code_text = code.to_string();
        let mut tx = self.pool.begin().await?;
        let known: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM residents WHERE municipality_code = ? AND resident_id = ?",
        )
        .bind(&code_text)
        .bind(&binding.resident_id)
        .fetch_one(&mut *tx)
        .await?;
        if known == 0 {
            return Err(BindError::UnknownResident(binding.resident_id.clone()));
        }
        let taken: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM card_bindings WHERE card_serial = ?")
                .bind(binding.card_serial.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if taken > 0 {
            return Err(BindError::SerialTaken(binding.card_serial.clone()));
        }
        let current: Option<String> = sqlx::query_scalar(
            "SELECT card_serial FROM card_bindings \
             WHERE municipality_code = ? AND resident_id = ? AND revoked = 0",
        )
        .bind(&code_text)
        .bind(&binding.resident_id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = current
            .map(|s| {
                CardSerial::parse(s)
                    .map_err(|e| StoreError::Corrupt(format!("card_bindings.card_serial: {e}")))
            })
            .transpose()?;
        if let Some(current) = &current {
            let Some(revoked_on) = revoke_current_on else {
                return Err(BindError::AlreadyHoldsCard {
                    resident_id: binding.resident_id.clone(),
                    card_serial: current.clone(),
                });
            };
            sqlx::query(
                "UPDATE card_bindings SET revoked = 1, revoked_on = ? \
                 WHERE municipality_code = ? AND card_serial = ?",
            )
            .bind(revoked_on.to_string())
            .bind(&code_text)
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO card_bindings (municipality_code, card_serial, resident_id, issued_on, \
             revoked) VALUES (?, ?, ?, ?, 0)",
        )
        .bind(&code_text)
        .bind(binding.card_serial.as_str())
        .bind(&binding.resident_id)
        .bind(binding.issued_on.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(current)
    }

    /// Marks `serial` revoked. Returns the binding as it was, or `None` if `serial`
    /// is not bound in `code`. Revoking a revoked card keeps its first revocation date.
    pub async fn revoke_card(
        &self,
        code: MunicipalityCode,
        serial: &CardSerial,
        on: Date,
    ) -> Result<Option<StoredBinding>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT card_serial, resident_id, issued_on, revoked, revoked_on FROM card_bindings \
             WHERE municipality_code = ? AND card_serial = ?",
        )
        .bind(code.to_string())
        .bind(serial.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let before = stored_binding_from_row(&row)?;
        if !before.revoked {
            sqlx::query(
                "UPDATE card_bindings SET revoked = 1, revoked_on = ? \
                 WHERE municipality_code = ? AND card_serial = ?",
            )
            .bind(on.to_string())
            .bind(code.to_string())
            .bind(serial.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(before))
    }
}

async fn insert_households(
    tx: &mut Transaction<'_, Sqlite>,
    code: &str,
    register: &Register,
) -> Result<(), StoreError> {
    for (household_position, household) in register.households.iter().enumerate() {
        sqlx::query(
            "INSERT INTO households (municipality_code, household_id, position, address) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(code)
        .bind(&household.household_id)
        .bind(count(household_position))
        .bind(&household.address)
        .execute(&mut **tx)
        .await?;
        for (position, member) in household.members.iter().enumerate() {
            let remarks = serde_json::to_string(&member.remarks)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (family_register_id, person_id) = match &member.family_register {
                Some(link) => (
                    Some(link.family_register_id.as_str()),
                    Some(link.person_id.as_str()),
                ),
                None => (None, None),
            };
            sqlx::query(
                "INSERT INTO residents (municipality_code, resident_id, household_id, position, \
                 name, name_kana, birth_date, sex, relationship, became_resident_on, \
                 previous_address, domicile, domicile_head, remarks_json, status, \
                 support_measures, family_register_id, family_register_person_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(code)
            .bind(&member.resident_id)
            .bind(&household.household_id)
            .bind(count(position))
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
            .bind(family_register_id)
            .bind(person_id)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn insert_family_registers(
    tx: &mut Transaction<'_, Sqlite>,
    code: &str,
    register: &Register,
) -> Result<(), StoreError> {
    for (register_position, family) in register.family_registers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO family_registers (municipality_code, family_register_id, position, \
             domicile, head_name, created_on, pending_filing) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(code)
        .bind(&family.family_register_id)
        .bind(count(register_position))
        .bind(&family.domicile)
        .bind(&family.head_name)
        .bind(family.created_on.to_string())
        .bind(family.pending_filing)
        .execute(&mut **tx)
        .await?;
        for (person_position, person) in family.persons.iter().enumerate() {
            sqlx::query(
                "INSERT INTO family_register_persons (municipality_code, family_register_id, \
                 person_id, position, name, birth_date, sex, relationship, father, mother, \
                 removed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(code)
            .bind(&family.family_register_id)
            .bind(&person.person_id)
            .bind(count(person_position))
            .bind(&person.name)
            .bind(person.birth_date.to_string())
            .bind(person.sex.as_str())
            .bind(&person.relationship)
            .bind(&person.father)
            .bind(&person.mother)
            .bind(person.removed)
            .execute(&mut **tx)
            .await?;
            for (position, event) in person.events.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO family_register_events (municipality_code, family_register_id, \
                     person_id, position, label, date, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(code)
                .bind(&family.family_register_id)
                .bind(&person.person_id)
                .bind(count(position))
                .bind(&event.label)
                .bind(event.date.to_string())
                .bind(&event.detail)
                .execute(&mut **tx)
                .await?;
            }
            for (position, address) in person.addresses.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO attachment_addresses (municipality_code, family_register_id, \
                     person_id, position, address, since) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(code)
                .bind(&family.family_register_id)
                .bind(&person.person_id)
                .bind(count(position))
                .bind(&address.address)
                .bind(address.since.to_string())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

async fn household_in(
    tx: &mut Transaction<'_, Sqlite>,
    code: &str,
    household_id: &str,
) -> Result<Option<Household>, StoreError> {
    let sql = format!(
        "SELECT h.household_id AS household_id, h.address AS address, {RESIDENT_COLUMNS} \
         FROM households h \
         JOIN residents r ON r.municipality_code = h.municipality_code \
              AND r.household_id = h.household_id \
         WHERE h.municipality_code = ? AND h.household_id = ? \
         ORDER BY r.position"
    );
    let rows = sqlx::query(&sql)
        .bind(code)
        .bind(household_id)
        .fetch_all(&mut **tx)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let members = rows
        .iter()
        .map(resident_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Some(Household {
        household_id: first.try_get("household_id")?,
        address: first.try_get("address")?,
        members,
    }))
}

async fn family_register_in(
    tx: &mut Transaction<'_, Sqlite>,
    code: &str,
    family_register_id: &str,
) -> Result<Option<FamilyRegister>, StoreError> {
    let head = sqlx::query(
        "SELECT family_register_id, domicile, head_name, created_on, pending_filing \
         FROM family_registers WHERE municipality_code = ? AND family_register_id = ?",
    )
    .bind(code)
    .bind(family_register_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    let person_rows = sqlx::query(
        "SELECT person_id, name, birth_date, sex, relationship, father, mother, removed \
         FROM family_register_persons WHERE municipality_code = ? AND family_register_id = ? \
         ORDER BY position",
    )
    .bind(code)
    .bind(family_register_id)
    .fetch_all(&mut **tx)
    .await?;
    let event_rows = sqlx::query(
        "SELECT person_id, label, date, detail FROM family_register_events \
         WHERE municipality_code = ? AND family_register_id = ? ORDER BY person_id, position",
    )
    .bind(code)
    .bind(family_register_id)
    .fetch_all(&mut **tx)
    .await?;
    let address_rows = sqlx::query(
        "SELECT person_id, address, since FROM attachment_addresses \
         WHERE municipality_code = ? AND family_register_id = ? ORDER BY person_id, position",
    )
    .bind(code)
    .bind(family_register_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut persons = Vec::with_capacity(person_rows.len());
    for row in &person_rows {
        let person_id: String = row.try_get("person_id")?;
        let mut events = Vec::new();
        for event in &event_rows {
            let owner: String = event.try_get("person_id")?;
            if owner == person_id {
                events.push(FamilyRegisterEvent {
                    label: event.try_get("label")?,
                    date: date_column(event, "family_register_events", "date")?,
                    detail: event.try_get("detail")?,
                });
            }
        }
        let mut addresses = Vec::new();
        for address in &address_rows {
            let owner: String = address.try_get("person_id")?;
            if owner == person_id {
                addresses.push(AttachmentAddress {
                    address: address.try_get("address")?,
                    since: date_column(address, "attachment_addresses", "since")?,
                });
            }
        }
        let sex: String = row.try_get("sex")?;
        persons.push(FamilyRegisterPerson {
            person_id,
            name: row.try_get("name")?,
            birth_date: date_column(row, "family_register_persons", "birth_date")?,
            sex: Sex::parse(&sex).ok_or_else(|| {
                StoreError::Corrupt(format!("family_register_persons.sex: {sex}"))
            })?,
            relationship: row.try_get("relationship")?,
            father: row.try_get("father")?,
            mother: row.try_get("mother")?,
            removed: row.try_get("removed")?,
            events,
            addresses,
        });
    }
    Ok(Some(FamilyRegister {
        family_register_id: head.try_get("family_register_id")?,
        domicile: head.try_get("domicile")?,
        head_name: head.try_get("head_name")?,
        created_on: date_column(&head, "family_registers", "created_on")?,
        pending_filing: head.try_get("pending_filing")?,
        persons,
    }))
}

fn date_column(row: &SqliteRow, table: &str, column: &str) -> Result<Date, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse::<Date>()
        .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {text:?}: {e}")))
}

fn resident_from_row(row: &SqliteRow) -> Result<Resident, StoreError> {
    let corrupt =
        |column: &str, detail: String| StoreError::Corrupt(format!("residents.{column}: {detail}"));
    let sex: String = row.try_get("sex")?;
    let status: String = row.try_get("status")?;
    let remarks: String = row.try_get("remarks_json")?;
    let family_register_id: Option<String> = row.try_get("family_register_id")?;
    let person_id: Option<String> = row.try_get("family_register_person_id")?;
    let family_register = match (family_register_id, person_id) {
        (Some(family_register_id), Some(person_id)) => Some(FamilyRegisterRef {
            family_register_id,
            person_id,
        }),
        (None, None) => None,
        _ => return Err(corrupt("family_register_id", "half a link".into())),
    };
    Ok(Resident {
        resident_id: row.try_get("resident_id")?,
        name: row.try_get("name")?,
        name_kana: row.try_get("name_kana")?,
        birth_date: date_column(row, "residents", "birth_date")?,
        sex: Sex::parse(&sex).ok_or_else(|| corrupt("sex", sex.clone()))?,
        relationship: row.try_get("relationship")?,
        became_resident_on: date_column(row, "residents", "became_resident_on")?,
        previous_address: row.try_get("previous_address")?,
        domicile: row.try_get("domicile")?,
        domicile_head: row.try_get("domicile_head")?,
        remarks: serde_json::from_str(&remarks)
            .map_err(|e| corrupt("remarks_json", e.to_string()))?,
        status: ResidentStatus::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?,
        support_measures: row.try_get("support_measures")?,
        family_register,
    })
}

fn seal_from_row(row: &SqliteRow) -> Result<SealRegistration, StoreError> {
    Ok(SealRegistration {
        resident_id: row.try_get("resident_id")?,
        registration_number: row.try_get("registration_number")?,
        registered_on: date_column(row, "seal_registrations", "registered_on")?,
        active: row.try_get("active")?,
        impression_png: row.try_get("impression_png")?,
    })
}

fn fiscal_year(row: &SqliteRow, table: &str) -> Result<u16, StoreError> {
    let year: i64 = row.try_get("fiscal_year")?;
    u16::try_from(year).map_err(|_| StoreError::Corrupt(format!("{table}.fiscal_year: {year}")))
}

fn tax_record_from_row(row: &SqliteRow) -> Result<TaxRecord, StoreError> {
    Ok(TaxRecord {
        resident_id: row.try_get("resident_id")?,
        fiscal_year: fiscal_year(row, "tax_records")?,
        address_on_jan1: row.try_get("address_on_jan1")?,
        salary_income_yen: row.try_get("salary_income_yen")?,
        total_income_yen: row.try_get("total_income_yen")?,
        deductions_yen: row.try_get("deductions_yen")?,
        taxable_income_yen: row.try_get("taxable_income_yen")?,
        municipal_tax_yen: row.try_get("municipal_tax_yen")?,
        prefectural_tax_yen: row.try_get("prefectural_tax_yen")?,
    })
}

fn tax_payment_from_row(row: &SqliteRow) -> Result<TaxPayment, StoreError> {
    let unsigned = |column: &str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("tax_payments.{column}: {value}")))
    };
    Ok(TaxPayment {
        resident_id: row.try_get("resident_id")?,
        fiscal_year: fiscal_year(row, "tax_payments")?,
        tax_name: row.try_get("tax_name")?,
        assessed_yen: unsigned("assessed_yen")?,
        paid_yen: unsigned("paid_yen")?,
    })
}

fn stored_binding_from_row(row: &SqliteRow) -> Result<StoredBinding, StoreError> {
    let serial: String = row.try_get("card_serial")?;
    let revoked_on: Option<String> = row.try_get("revoked_on")?;
    Ok(StoredBinding {
        binding: CardBinding {
            card_serial: CardSerial::parse(serial.clone())
                .map_err(|e| StoreError::Corrupt(format!("card_bindings.card_serial: {e}")))?,
            resident_id: row.try_get("resident_id")?,
            issued_on: date_column(row, "card_bindings", "issued_on")?,
        },
        revoked: row.try_get("revoked")?,
        revoked_on: revoked_on
            .map(|text| {
                text.parse::<Date>()
                    .map_err(|e| StoreError::Corrupt(format!("card_bindings.revoked_on: {e}")))
            })
            .transpose()?,
    })
}
