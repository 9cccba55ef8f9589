//! Resident cards as the municipality's 窓口 handles them: issue (交付), renewal
//! (更新: a new card, the old one revoked) and revocation (失効/廃止).
//!
//! A card is a fresh Ed25519 key and a `schemas::CardCertificate` signed with the card
//! authority's key, handed out as a `schemas::CardFile` (what kiosk-sim reads); the
//! adapter binds its serial to the resident with the day it was handed over (a card
//! cannot be used at a kiosk on that day). Serials are `<municipality code>` + 10
//! random digits and are never reused.

use std::io::Write as _;
use std::path::Path;

use jiff::civil::Date;
use rand::Rng as _;
use schemas::{
    CardCertificateBody, CardFile, CardSerial, KeyPair, MunicipalityCode, RevocationList,
    RevocationListBody, Signed, MAX_PIN_ATTEMPTS,
};

use crate::register::store::{BindError, RegisterStore, StoredBinding};
use crate::register::{CardBinding, StoreError};

/// Longest validity of a card (years); the resident card's is at most 10.
pub const MAX_VALID_YEARS: u8 = 10;
/// Serial suffixes below this are left to the samples and the sandbox (…0001–…0099).
const RANDOM_SUFFIX_MIN: u64 = 1_000_000;
/// Tries to find an unused random serial before giving up.
const SERIAL_TRIES: usize = 64;
/// Clock skew allowed between the adapter and the center when a card starts (s).
const NOT_BEFORE_SKEW_S: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("cannot read the card authority key {path}: {reason}")]
    AuthorityKey { path: String, reason: String },
    #[error("--pin must be 4 digits")]
    BadPin,
    #[error("--valid-years must be 1 to {MAX_VALID_YEARS}")]
    BadValidity,
    #[error("resident {0} is not in the register of this municipality")]
    UnknownResident(String),
    #[error("resident {resident_id} is not a current resident ({status}): no card is issued")]
    NotCurrent { resident_id: String, status: String },
    #[error(
        "resident {resident_id} already holds the usable card {card_serial}; renew it instead"
    )]
    AlreadyHoldsCard {
        resident_id: String,
        card_serial: CardSerial,
    },
    #[error("resident {0} holds no usable card to renew; issue one instead")]
    NothingToRenew(String),
    #[error("card {serial} is not bound in municipality {code}")]
    NotBound {
        serial: CardSerial,
        code: MunicipalityCode,
    },
    #[error("no unused card serial found for {0}")]
    NoSerial(MunicipalityCode),
    #[error("card file {path}: {reason}")]
    CardFile { path: String, reason: String },
    #[error("revocation list {path}: {reason}")]
    RevocationList { path: String, reason: String },
    #[error("signing: {0}")]
    Signing(#[from] schemas::SigningError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<BindError> for CardError {
    fn from(e: BindError) -> Self {
        match e {
            BindError::UnknownResident(id) => Self::UnknownResident(id),
            BindError::AlreadyHoldsCard {
                resident_id,
                card_serial,
            } => Self::AlreadyHoldsCard {
                resident_id,
                card_serial,
            },
            // The caller picked an unused serial; another process took it meanwhile.
            BindError::SerialTaken(serial) => Self::CardFile {
                path: String::new(),
                reason: format!("serial {serial} was taken concurrently; try again"),
            },
            BindError::Store(e) => Self::Store(e),
        }
    }
}

/// Reads the card authority's key: a file holding the base64 of its 32-byte seed
/// (as the sandbox writes `keys/card-authority.seed`).
pub fn load_authority_key(path: &Path) -> Result<KeyPair, CardError> {
    let error = |reason: String| CardError::AuthorityKey {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    KeyPair::from_seed_base64(&text).map_err(|e| error(e.to_string()))
}

/// What to issue.
#[derive(Debug)]
pub struct CardOrder<'a> {
    pub code: MunicipalityCode,
    pub resident_id: &'a str,
    pub authority: &'a KeyPair,
    /// 4 digits; `None`: a random PIN (written into the card file).
    pub pin: Option<String>,
    pub valid_years: u8,
    /// カード交付日 (Asia/Tokyo).
    pub today: Date,
    pub now: jiff::Timestamp,
}

/// A card handed out: its file's contents and what happened to the binding.
#[derive(Debug)]
pub struct IssuedCard {
    pub serial: CardSerial,
    pub issued_on: Date,
    pub card_file: CardFile,
    /// The card this one replaces (renewal), now revoked.
    pub replaced: Option<CardSerial>,
}

/// Issues a card to a resident who holds none; writes the card file to `out`
/// (refusing to overwrite a file: it holds a card's secrets).
pub async fn issue_card(
    store: &RegisterStore,
    order: &CardOrder<'_>,
    out: &Path,
) -> Result<IssuedCard, CardError> {
    make_card(store, order, out, false).await
}

/// Issues a new card to a resident and revokes their current one, atomically.
pub async fn renew_card(
    store: &RegisterStore,
    order: &CardOrder<'_>,
    out: &Path,
) -> Result<IssuedCard, CardError> {
    let current = store
        .bindings_of(order.code, order.resident_id)
        .await?
        .into_iter()
        .any(|b| !b.revoked);
    if !current {
        return Err(CardError::NothingToRenew(order.resident_id.to_owned()));
    }
    make_card(store, order, out, true).await
}

async fn make_card(
    store: &RegisterStore,
    order: &CardOrder<'_>,
    out: &Path,
    renew: bool,
) -> Result<IssuedCard, CardError> {
    let pin = match &order.pin {
        Some(pin) if pin.len() == 4 && pin.bytes().all(|b| b.is_ascii_digit()) => pin.clone(),
        Some(_) => return Err(CardError::BadPin),
        None => format!("{:04}", rand::thread_rng().gen_range(0..10_000u32)),
    };
    if !(1..=MAX_VALID_YEARS).contains(&order.valid_years) {
        return Err(CardError::BadValidity);
    }
    let Some((_, holder)) = store.resident(order.code, order.resident_id).await? else {
        return Err(CardError::UnknownResident(order.resident_id.to_owned()));
    };
    if !holder.status.is_current() {
        return Err(CardError::NotCurrent {
            resident_id: holder.resident_id,
            status: holder.status.as_str().to_owned(),
        });
    }
    if !renew {
        if let Some(current) = store
            .bindings_of(order.code, order.resident_id)
            .await?
            .into_iter()
            .find(|b| !b.revoked)
        {
            return Err(CardError::AlreadyHoldsCard {
                resident_id: order.resident_id.to_owned(),
                card_serial: current.binding.card_serial,
            });
        }
    }
    let serial = unused_serial(store, order.code).await?;
    let not_before_unix_s = order.now.as_second() - NOT_BEFORE_SKEW_S;
    let not_after = order
        .now
        .in_tz(crate::issuance::ISSUE_TIME_ZONE)
        .and_then(|z| z.checked_add(jiff::Span::new().years(i64::from(order.valid_years))))
        .map_err(|e| CardError::CardFile {
            path: out.display().to_string(),
            reason: format!("validity: {e}"),
        })?;
    let card_key = KeyPair::generate();
    let certificate = Signed::sign(
        CardCertificateBody {
            serial: serial.clone(),
            municipality_code: order.code,
            public_key: card_key.public(),
            not_before_unix_s,
            not_after_unix_s: not_after.timestamp().as_second(),
        },
        order.authority,
    )?;
    let card_file = CardFile {
        label: holder.name.clone(),
        certificate,
        key_seed: card_key.seed_base64(),
        pin,
        pin_attempts_left: MAX_PIN_ATTEMPTS,
    };
    write_new_file(out, &card_file)?;
    let binding = CardBinding {
        card_serial: serial.clone(),
        resident_id: order.resident_id.to_owned(),
        issued_on: order.today,
    };
    let replaced = match store
        .bind_card(order.code, &binding, renew.then_some(order.today))
        .await
    {
        Ok(replaced) => replaced,
        Err(e) => {
            // No binding, no card: the file would name a serial nobody answers for.
            let _ = std::fs::remove_file(out);
            return Err(e.into());
        }
    };
    Ok(IssuedCard {
        serial,
        issued_on: order.today,
        card_file,
        replaced,
    })
}

fn write_new_file(out: &Path, card: &CardFile) -> Result<(), CardError> {
    let error = |reason: String| CardError::CardFile {
        path: out.display().to_string(),
        reason,
    };
    let json = serde_json::to_string_pretty(card).map_err(|e| error(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| error(e.to_string()))?;
    file.write_all(json.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| error(e.to_string()))
}

/// A random serial `<code>` + 10 digits never bound before.
async fn unused_serial(
    store: &RegisterStore,
    code: MunicipalityCode,
) -> Result<CardSerial, CardError> {
    for _ in 0..SERIAL_TRIES {
        let suffix = rand::thread_rng().gen_range(RANDOM_SUFFIX_MIN..10_000_000_000u64);
        let Ok(serial) = CardSerial::parse(format!("{code}{suffix:010}")) else {
            continue;
        };
        if !store.serial_exists(&serial).await? {
            return Ok(serial);
        }
    }
    Err(CardError::NoSerial(code))
}

/// Revokes a bound card: from now on look-ups return nothing for it
/// (`card_not_registered`). Returns the binding as it was before.
pub async fn revoke_card(
    store: &RegisterStore,
    code: MunicipalityCode,
    serial: &CardSerial,
    today: Date,
) -> Result<StoredBinding, CardError> {
    store
        .revoke_card(code, serial, today)
        .await?
        .ok_or_else(|| CardError::NotBound {
            serial: serial.clone(),
            code,
        })
}

/// Reads the card authority's revocation list at `path` and checks it is signed by
/// `authority` (done before revoking, so that a wrong key changes nothing).
pub fn read_revocation_list(
    path: &Path,
    authority: &KeyPair,
) -> Result<RevocationListBody, CardError> {
    let error = |reason: String| CardError::RevocationList {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let list: RevocationList = serde_json::from_str(&text).map_err(|e| error(e.to_string()))?;
    list.verify(&authority.public())
        .cloned()
        .map_err(|e| error(format!("not signed by this card authority key: {e}")))
}

/// Adds `serial` to the card authority's revocation list at `path` and re-signs it
/// with `authority` (the list must verify against that key). The list keeps its
/// update period, counted from `now`. Returns whether the serial was new to the list.
pub fn add_to_revocation_list(
    path: &Path,
    authority: &KeyPair,
    serial: &CardSerial,
    now: jiff::Timestamp,
) -> Result<bool, CardError> {
    let error = |reason: String| CardError::RevocationList {
        path: path.display().to_string(),
        reason,
    };
    let body = read_revocation_list(path, authority)?;
    let period_s = (body.next_update_unix_s - body.issued_at_unix_s).max(86_400);
    let mut revoked = body.revoked.clone();
    let added = !revoked.contains(serial);
    if added {
        revoked.push(serial.clone());
    }
    let issued_at_unix_s = now.as_second();
    let signed = Signed::sign(
        RevocationListBody {
            issued_at_unix_s,
            next_update_unix_s: issued_at_unix_s.saturating_add(period_s),
            revoked,
        },
        authority,
    )?;
    let json = serde_json::to_string_pretty(&signed).map_err(|e| error(e.to_string()))?;
    // Write beside and rename, so the center never reads half a list.
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, json.as_bytes()).map_err(|e| error(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| error(e.to_string()))?;
    Ok(added)
}
