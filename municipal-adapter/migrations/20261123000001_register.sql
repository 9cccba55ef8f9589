-- The resident register (住民基本台帳) as this adapter serves it, per municipality.
-- Replaced as a whole, in one transaction, from the fixture file at every start.

CREATE TABLE households (
    municipality_code TEXT NOT NULL,
    household_id      TEXT NOT NULL,
    address           TEXT NOT NULL,
    PRIMARY KEY (municipality_code, household_id)
);

CREATE TABLE residents (
    municipality_code  TEXT    NOT NULL,
    resident_id        TEXT    NOT NULL,
    household_id       TEXT    NOT NULL,
    -- Order of the member within the household as the register lists it (printed order).
    position           INTEGER NOT NULL,
    name               TEXT    NOT NULL,
    name_kana          TEXT    NOT NULL,
    birth_date         TEXT    NOT NULL, -- ISO yyyy-mm-dd
    sex                TEXT    NOT NULL, -- male | female
    relationship       TEXT    NOT NULL,
    became_resident_on TEXT    NOT NULL, -- ISO yyyy-mm-dd
    previous_address   TEXT,
    domicile           TEXT,
    domicile_head      TEXT,
    remarks_json       TEXT    NOT NULL, -- JSON array of strings
    status             TEXT    NOT NULL, -- active | moving_out | moved_out | deceased | erased
    support_measures   INTEGER NOT NULL, -- 0 | 1 (支援措置)
    PRIMARY KEY (municipality_code, resident_id),
    UNIQUE (municipality_code, household_id, position),
    FOREIGN KEY (municipality_code, household_id)
        REFERENCES households (municipality_code, household_id) ON DELETE CASCADE
);

-- Card serial → resident. A card serial is unique nation-wide, but bindings are kept per
-- municipality so that a card is only ever answered by the municipality it is bound in.
CREATE TABLE card_bindings (
    municipality_code TEXT NOT NULL,
    card_serial       TEXT NOT NULL,
    resident_id       TEXT NOT NULL,
    PRIMARY KEY (municipality_code, card_serial),
    UNIQUE (municipality_code, resident_id),
    FOREIGN KEY (municipality_code, resident_id)
        REFERENCES residents (municipality_code, resident_id) ON DELETE CASCADE
);

-- One row per municipality: when and from what the register was last replaced.
CREATE TABLE register_imports (
    municipality_code TEXT    PRIMARY KEY,
    imported_at_unix_s INTEGER NOT NULL,
    source_sha256     TEXT    NOT NULL,
    households        INTEGER NOT NULL,
    residents         INTEGER NOT NULL,
    card_bindings     INTEGER NOT NULL
);
