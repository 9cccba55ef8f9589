-- 本籍地 利用登録: a card registered at this (本籍地) municipality for 戸籍 certificates
-- through the 本籍地 route. The registration id is the center's id and the idempotency
-- key. The entered 本籍 and 筆頭者 are kept for the clerk who approves; an approval
-- names the person in one of this municipality's 戸籍.
CREATE TABLE domicile_registrations (
    registration_id             TEXT    PRIMARY KEY,
    municipality_code           TEXT    NOT NULL,
    card_serial                 TEXT    NOT NULL,
    residence_municipality_code TEXT    NOT NULL,
    domicile                    TEXT    NOT NULL,
    domicile_head               TEXT    NOT NULL,
    status                      TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    submitted_at_unix_s         INTEGER NOT NULL,
    decided_at_unix_s           INTEGER,
    family_register_id          TEXT,
    person_id                   TEXT,
    CHECK ((status = 'approved') = (family_register_id IS NOT NULL AND person_id IS NOT NULL))
);

CREATE INDEX domicile_registrations_card
    ON domicile_registrations (municipality_code, card_serial, status);
