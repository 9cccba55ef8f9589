-- The register with all its ledgers (住民基本台帳, 印鑑登録, 課税・納税, 戸籍 and 附票),
-- imported from a CSV register directory. The tables of the first migration were
-- filled from the JSON fixture at every start and are rebuilt here: nothing in them
-- outlives a restart (the next import refills them).
--
-- Every ledger is replaced per municipality, as a whole, in one transaction.
-- Card bindings are not: `municipal-adapter card …` manages them, so they carry no
-- foreign key into residents (a re-import must never cascade into them); a look-up
-- joins them to the current residents instead.

DROP TABLE IF EXISTS card_bindings;
DROP TABLE IF EXISTS residents;
DROP TABLE IF EXISTS households;
DROP TABLE IF EXISTS register_imports;

CREATE TABLE households (
    municipality_code TEXT    NOT NULL,
    household_id      TEXT    NOT NULL,
    position          INTEGER NOT NULL, -- register order
    address           TEXT    NOT NULL,
    PRIMARY KEY (municipality_code, household_id)
);

-- 住民票コード and 個人番号 have no column: the import checks and drops them.
CREATE TABLE residents (
    municipality_code  TEXT    NOT NULL,
    resident_id        TEXT    NOT NULL,
    household_id       TEXT    NOT NULL,
    position           INTEGER NOT NULL, -- order within the household
    name               TEXT    NOT NULL,
    name_kana          TEXT    NOT NULL,
    birth_date         TEXT    NOT NULL, -- ISO yyyy-mm-dd
    sex                TEXT    NOT NULL, -- male | female
    relationship       TEXT    NOT NULL,
    became_resident_on TEXT    NOT NULL,
    previous_address   TEXT,
    domicile           TEXT,
    domicile_head      TEXT,
    remarks_json       TEXT    NOT NULL, -- JSON array of strings
    status             TEXT    NOT NULL, -- active | moving_out | moved_out | deceased | erased
    support_measures   INTEGER NOT NULL, -- 0 | 1 (支援措置)
    family_register_id TEXT,             -- with family_register_person_id: both or neither
    family_register_person_id TEXT,
    PRIMARY KEY (municipality_code, resident_id),
    UNIQUE (municipality_code, household_id, position),
    FOREIGN KEY (municipality_code, household_id)
        REFERENCES households (municipality_code, household_id) ON DELETE CASCADE
);

CREATE TABLE seal_registrations (
    municipality_code   TEXT    NOT NULL,
    registration_number TEXT    NOT NULL,
    position            INTEGER NOT NULL, -- file order
    resident_id         TEXT    NOT NULL,
    registered_on       TEXT    NOT NULL,
    active              INTEGER NOT NULL, -- 0 once abolished (廃止)
    impression_png      BLOB    NOT NULL, -- ≤ 64 KiB
    PRIMARY KEY (municipality_code, registration_number),
    FOREIGN KEY (municipality_code, resident_id)
        REFERENCES residents (municipality_code, resident_id) ON DELETE CASCADE
);
CREATE INDEX seal_registrations_resident ON seal_registrations (municipality_code, resident_id);

CREATE TABLE tax_records (
    municipality_code   TEXT    NOT NULL,
    resident_id         TEXT    NOT NULL,
    fiscal_year         INTEGER NOT NULL,
    address_on_jan1     TEXT    NOT NULL,
    salary_income_yen   INTEGER NOT NULL,
    total_income_yen    INTEGER NOT NULL,
    deductions_yen      INTEGER NOT NULL,
    taxable_income_yen  INTEGER NOT NULL,
    municipal_tax_yen   INTEGER NOT NULL,
    prefectural_tax_yen INTEGER NOT NULL,
    PRIMARY KEY (municipality_code, resident_id, fiscal_year),
    FOREIGN KEY (municipality_code, resident_id)
        REFERENCES residents (municipality_code, resident_id) ON DELETE CASCADE
);

CREATE TABLE tax_payments (
    municipality_code TEXT    NOT NULL,
    resident_id       TEXT    NOT NULL,
    fiscal_year       INTEGER NOT NULL,
    tax_name          TEXT    NOT NULL,
    position          INTEGER NOT NULL, -- file order
    assessed_yen      INTEGER NOT NULL,
    paid_yen          INTEGER NOT NULL, -- 0..=assessed_yen
    PRIMARY KEY (municipality_code, resident_id, fiscal_year, tax_name),
    FOREIGN KEY (municipality_code, resident_id)
        REFERENCES residents (municipality_code, resident_id) ON DELETE CASCADE
);

CREATE TABLE family_registers (
    municipality_code  TEXT    NOT NULL,
    family_register_id TEXT    NOT NULL,
    position           INTEGER NOT NULL,
    domicile           TEXT    NOT NULL,
    head_name          TEXT    NOT NULL,
    created_on         TEXT    NOT NULL,
    pending_filing     INTEGER NOT NULL,
    PRIMARY KEY (municipality_code, family_register_id)
);

CREATE TABLE family_register_persons (
    municipality_code  TEXT    NOT NULL,
    family_register_id TEXT    NOT NULL,
    person_id          TEXT    NOT NULL,
    position           INTEGER NOT NULL, -- register order (筆頭者 first)
    name               TEXT    NOT NULL,
    birth_date         TEXT    NOT NULL,
    sex                TEXT    NOT NULL,
    relationship       TEXT    NOT NULL,
    father             TEXT,
    mother             TEXT,
    removed            INTEGER NOT NULL, -- 除籍
    PRIMARY KEY (municipality_code, family_register_id, person_id),
    FOREIGN KEY (municipality_code, family_register_id)
        REFERENCES family_registers (municipality_code, family_register_id) ON DELETE CASCADE
);

CREATE TABLE family_register_events (
    municipality_code  TEXT    NOT NULL,
    family_register_id TEXT    NOT NULL,
    person_id          TEXT    NOT NULL,
    position           INTEGER NOT NULL,
    label              TEXT    NOT NULL,
    date               TEXT    NOT NULL,
    detail             TEXT    NOT NULL,
    PRIMARY KEY (municipality_code, family_register_id, person_id, position),
    FOREIGN KEY (municipality_code, family_register_id, person_id)
        REFERENCES family_register_persons (municipality_code, family_register_id, person_id)
        ON DELETE CASCADE
);

CREATE TABLE attachment_addresses (
    municipality_code  TEXT    NOT NULL,
    family_register_id TEXT    NOT NULL,
    person_id          TEXT    NOT NULL,
    position           INTEGER NOT NULL, -- oldest first
    address            TEXT    NOT NULL,
    since              TEXT    NOT NULL,
    PRIMARY KEY (municipality_code, family_register_id, person_id, position),
    FOREIGN KEY (municipality_code, family_register_id, person_id)
        REFERENCES family_register_persons (municipality_code, family_register_id, person_id)
        ON DELETE CASCADE
);

-- Card serial → resident. A serial is never reused: renewing or revoking a card marks
-- its row revoked and keeps it.
CREATE TABLE card_bindings (
    municipality_code TEXT    NOT NULL,
    card_serial       TEXT    NOT NULL,
    resident_id       TEXT    NOT NULL,
    issued_on         TEXT    NOT NULL, -- カード交付日, ISO yyyy-mm-dd (Asia/Tokyo)
    revoked           INTEGER NOT NULL DEFAULT 0,
    revoked_on        TEXT,
    PRIMARY KEY (municipality_code, card_serial)
);
-- At most one usable card per resident.
CREATE UNIQUE INDEX card_bindings_active_resident
    ON card_bindings (municipality_code, resident_id) WHERE revoked = 0;

-- One row per municipality: the register directory last imported (SHA-256 over its
-- files), so that importing the same files again changes nothing.
CREATE TABLE register_imports (
    municipality_code  TEXT    PRIMARY KEY,
    imported_at_unix_s INTEGER NOT NULL,
    source_sha256      TEXT    NOT NULL,
    households         INTEGER NOT NULL,
    residents          INTEGER NOT NULL,
    seal_registrations INTEGER NOT NULL,
    tax_records        INTEGER NOT NULL,
    tax_payments       INTEGER NOT NULL,
    family_registers   INTEGER NOT NULL,
    card_bindings      INTEGER NOT NULL
);
