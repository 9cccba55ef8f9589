//! Processing of one [`schemas::SignedCertificateFetch`], independent of HTTP.
//!
//! In order: (1) the center's signature; (2) a municipality this process serves (and,
//! for the 本籍地 route, the route naming that same municipality); (3) idempotency on
//! the request id; (4) the whole-request deadline; (5) the route: 住所地 → the card
//! binding, 本籍地 → an approved 利用登録 of the card here; (6) the binding echo (card
//! digest recomputed from the serial actually found); (7) the rules and the front
//! ([`crate::front::rules`], against the catalogue and the center's clock); (8) one
//! seal per front page ([`schemas::FrontSide::page_count`]); (9) the municipality's
//! signature over the answer. Everything a request touches is local to the call: there is no
//! work file or shared buffer that a concurrent request could overwrite.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use schemas::{
    card_binding_digest, AnswerOutcome, Catalogue, CertificateAnswer, CertificateFetch, Digest32,
    ErrorCode, FrontSide, KeyPair, MunicipalityCode, PublicKey, RefusalReason, RequestId, Route,
    RouteKind, Signed, SignedCertificateAnswer, SignedCertificateFetch, SignedMessage as _,
    SigningError,
};

use sqlx::SqlitePool;

use crate::answers::{AnswerStore, StoreOutcome};
use crate::catalogue::{catalogue_for, not_offered, CatalogueError};
use crate::configuration::MunicipalitySettings;
use crate::domicile;
use crate::fault::{FaultMode, FaultSettings};
use crate::front::{decide_domicile, decide_residence, Decision, FrontIssuer, ResidenceCase};
use crate::register::store::CardLookup;
use crate::register::RegisterStore;
use crate::seal::{build_seals, SealSubject};

/// The time zone of the issue date printed on every certificate.
pub const ISSUE_TIME_ZONE: &str = "Asia/Tokyo";

/// One served municipality with its settings (catalogue) and signing key.
#[derive(Debug)]
pub struct Municipality {
    pub code: MunicipalityCode,
    pub settings: MunicipalitySettings,
    pub front_issuer: FrontIssuer,
    pub key: KeyPair,
}

impl Municipality {
    pub fn new(settings: &MunicipalitySettings, key: KeyPair) -> Self {
        Self {
            code: settings.code,
            settings: settings.clone(),
            front_issuer: FrontIssuer {
                municipality_name: settings.name.clone(),
                prefecture: settings.prefecture.clone(),
                mayor_title: settings.mayor_title.clone(),
                mayor_name: settings.mayor_name.clone(),
            },
            key,
        }
    }

    /// This municipality's catalogue as of `requested_at_unix_s`.
    pub fn catalogue(&self, requested_at_unix_s: i64) -> Result<Catalogue, CatalogueError> {
        catalogue_for(&self.settings, requested_at_unix_s)
    }
}

/// Why a fetch gets an error instead of a signed answer.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the fetch is not signed by the center: {0}")]
    RequestSignature(SigningError),
    #[error("municipality {0} is not served here")]
    MunicipalityUnknown(MunicipalityCode),
    #[error("invalid fetch: {0}")]
    BadRequest(String),
    #[error("request id {0} was already used for a different fetch")]
    RequestIdReused(RequestId),
    #[error("the deadline {deadline_unix_ms} ms passed before processing (now {now_unix_ms} ms)")]
    DeadlinePassed {
        deadline_unix_ms: i64,
        now_unix_ms: i64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl IssueError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RequestSignature(_) => ErrorCode::RequestSignatureInvalid,
            Self::MunicipalityUnknown(_) => ErrorCode::MunicipalityUnknown,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::RequestIdReused(_) => ErrorCode::RequestIdReused,
            Self::DeadlinePassed { .. } => ErrorCode::UpstreamTimeout,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

fn internal(context: &str, error: impl std::fmt::Display) -> IssueError {
    IssueError::Internal(format!("{context}: {error}"))
}

/// A signed answer ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The signed answer as JSON, byte-for-byte what was stored.
    pub json: String,
    /// True when these bytes were stored by an earlier attempt.
    pub replayed: bool,
}

/// Everything a fetch needs; shared by all HTTP workers.
#[derive(Debug)]
pub struct IssuanceService {
    center_key: PublicKey,
    municipalities: HashMap<MunicipalityCode, Arc<Municipality>>,
    register: RegisterStore,
    answers: AnswerStore,
    /// The adapter's database, for the 利用登録 table.
    pool: SqlitePool,
    fault: FaultSettings,
    time_zone: TimeZone,
    clock: crate::clock::Clock,
    /// Fetches being processed (request id, card serial), kept only under the
    /// `swap_residents_under_load` fault.
    in_flight: std::sync::Mutex<Vec<(RequestId, schemas::CardSerial)>>,
}

/// How long a fetch stays in flight under `swap_residents_under_load` before it is
/// processed: long enough for concurrent fetches to overlap.
const SWAP_WINDOW_MS: u64 = 25;
/// At most this many fetches are kept in the in-flight list.
const MAX_IN_FLIGHT: usize = 1024;

/// Removes its fetch from the in-flight list when the fetch is done.
struct InFlightEntry<'a> {
    list: &'a std::sync::Mutex<Vec<(RequestId, schemas::CardSerial)>>,
    request_id: RequestId,
}

impl Drop for InFlightEntry<'_> {
    fn drop(&mut self) {
        if let Ok(mut list) = self.list.lock() {
            list.retain(|(id, _)| *id != self.request_id);
        }
    }
}

/// For `substitute_unprintable`: every character outside the BMP (where the rare
/// characters a certificate font lacks live) replaced by 〓 (geta mark).
fn substitute_outside_bmp(text: &str) -> String {
    text.chars()
        .map(|c| if u32::from(c) > 0xFFFF { '〓' } else { c })
        .collect()
}

fn substitute_in_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => *text = substitute_outside_bmp(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(substitute_in_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(substitute_in_json),
        _ => {}
    }
}

impl IssuanceService {
    pub fn new(
        center_key: PublicKey,
        municipalities: Vec<Municipality>,
        register: RegisterStore,
        answers: AnswerStore,
        pool: SqlitePool,
        fault: FaultSettings,
        clock: crate::clock::Clock,
    ) -> Result<Self, IssueError> {
        let time_zone = TimeZone::get(ISSUE_TIME_ZONE)
            .map_err(|e| IssueError::Internal(format!("time zone {ISSUE_TIME_ZONE}: {e}")))?;
        Ok(Self {
            center_key,
            municipalities: municipalities
                .into_iter()
                .map(|m| (m.code, Arc::new(m)))
                .collect(),
            register,
            answers,
            pool,
            fault,
            time_zone,
            clock,
            in_flight: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Now, by the deployment's clock (see [`crate::clock`]).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn municipality_codes(&self) -> Vec<MunicipalityCode> {
        let mut codes: Vec<_> = self.municipalities.keys().copied().collect();
        codes.sort();
        codes
    }

    pub fn fault(&self) -> &FaultSettings {
        &self.fault
    }

    pub fn register(&self) -> &RegisterStore {
        &self.register
    }

    pub fn answers(&self) -> &AnswerStore {
        &self.answers
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn center_key(&self) -> &PublicKey {
        &self.center_key
    }

    pub fn municipality(&self, code: MunicipalityCode) -> Option<&Municipality> {
        self.municipalities.get(&code).map(|m| m.as_ref())
    }

    /// The date in Asia/Tokyo of a center timestamp.
    pub fn date_of(&self, unix_s: i64) -> Result<jiff::civil::Date, IssueError> {
        let instant = Timestamp::from_second(unix_s)
            .map_err(|e| IssueError::BadRequest(format!("requested_at_unix_s: {e}")))?;
        Ok(instant.to_zoned(self.time_zone.clone()).date())
    }

    /// Verifies the fetch's signature and returns its payload (step 1 on its own, so
    /// the HTTP layer can name the request id in its span and error bodies).
    pub fn verify<'a>(
        &self,
        signed: &'a SignedCertificateFetch,
    ) -> Result<&'a CertificateFetch, IssueError> {
        signed
            .verify(&self.center_key)
            .map_err(IssueError::RequestSignature)
    }

    /// Steps 1–9 for one signed fetch at `now`.
    pub async fn handle(
        &self,
        signed: &SignedCertificateFetch,
        now: Timestamp,
    ) -> Result<Answered, IssueError> {
        let fetch = self.verify(signed)?;
        let municipality = self
            .municipalities
            .get(&fetch.municipality_code)
            .ok_or(IssueError::MunicipalityUnknown(fetch.municipality_code))?;
        fetch.order.validate().map_err(IssueError::BadRequest)?;
        if let Route::Domicile { municipality_code } = fetch.order.route {
            // The center sends a 本籍地 order to the 本籍地 itself; anything else is a
            // routing error, never a way into another municipality's registrations.
            if municipality_code != fetch.municipality_code {
                return Err(IssueError::BadRequest(format!(
                    "the 本籍地 route names {municipality_code}, the fetch {}",
                    fetch.municipality_code
                )));
            }
        }

        // The digest covers the domain tag and the canonical payload, not the JSON as
        // sent, so a re-serialised retry still matches. A retry of the same request
        // (the center re-fetching for a kiosk's idempotent retry) carries a new
        // deadline, so the request's identity is everything but its timing.
        let mut identity = fetch.clone();
        identity.requested_at_unix_s = 0;
        identity.deadline_unix_ms = 0;
        let fetch_sha256 = Digest32::of(
            &identity
                .signed_bytes()
                .map_err(|e| internal("canonical fetch", e))?,
        )
        .to_string();
        // `non_idempotent_refetch` never looks: every fetch is built afresh.
        let look_up_stored = self.fault.mode != FaultMode::NonIdempotentRefetch;
        let stored = if look_up_stored {
            self.answers
                .find(fetch.request_id)
                .await
                .map_err(|e| internal("answer store", e))?
        } else {
            None
        };
        if let Some(stored) = stored {
            return if stored.fetch_sha256 == fetch_sha256 {
                tracing::info!("replaying the stored answer");
                Ok(Answered {
                    json: stored.answer_json,
                    replayed: true,
                })
            } else {
                Err(IssueError::RequestIdReused(fetch.request_id))
            };
        }

        let honour_deadline = self.fault.mode != FaultMode::IgnoreDeadline;
        let now_unix_ms = now.as_millisecond();
        if honour_deadline && now_unix_ms >= fetch.deadline_unix_ms {
            return Err(IssueError::DeadlinePassed {
                deadline_unix_ms: fetch.deadline_unix_ms,
                now_unix_ms,
            });
        }

        let _in_flight = if self.fault.mode == FaultMode::SwapResidentsUnderLoad {
            let entry = self.enter_flight(fetch);
            tokio::time::sleep(std::time::Duration::from_millis(SWAP_WINDOW_MS)).await;
            Some(entry)
        } else {
            None
        };
        let answer = self.build_answer(fetch, municipality).await?;
        // Whole-request timeout: work that finished after the deadline is discarded, not
        // stored, because the center has already abandoned the request.
        let finished_unix_ms = self.now().as_millisecond();
        if honour_deadline && finished_unix_ms >= fetch.deadline_unix_ms {
            tracing::warn!("the deadline passed while the answer was built; discarded");
            return Err(IssueError::DeadlinePassed {
                deadline_unix_ms: fetch.deadline_unix_ms,
                now_unix_ms: finished_unix_ms,
            });
        }
        let json = serde_json::to_string(&answer).map_err(|e| internal("answer JSON", e))?;
        match self
            .answers
            .insert_or_get(
                fetch.request_id,
                municipality.code,
                &fetch_sha256,
                &json,
                now.as_second(),
            )
            .await
            .map_err(|e| internal("answer store", e))?
        {
            StoreOutcome::Inserted => Ok(Answered {
                json,
                replayed: false,
            }),
            // A concurrent attempt with the same request id stored first: its bytes are
            // the answer, ours are dropped unsent.
            StoreOutcome::AlreadyStored(stored) if stored.fetch_sha256 == fetch_sha256 => {
                tracing::info!("a concurrent attempt stored first; replaying its answer");
                Ok(Answered {
                    json: stored.answer_json,
                    replayed: true,
                })
            }
            // The fault answers whatever is stored: the fresh bytes go out.
            StoreOutcome::AlreadyStored(_) if !look_up_stored => Ok(Answered {
                json,
                replayed: false,
            }),
            StoreOutcome::AlreadyStored(_) => Err(IssueError::RequestIdReused(fetch.request_id)),
        }
    }

    /// Registers `fetch` as in flight (`swap_residents_under_load` only).
    fn enter_flight(&self, fetch: &CertificateFetch) -> InFlightEntry<'_> {
        if let Ok(mut list) = self.in_flight.lock() {
            // Bounded like everything else: beyond it, a fetch is simply not swappable.
            if list.len() < MAX_IN_FLIGHT {
                list.push((fetch.request_id, fetch.card_serial.clone()));
            }
        }
        InFlightEntry {
            list: &self.in_flight,
            request_id: fetch.request_id,
        }
    }

    /// Under `swap_residents_under_load`: the card serial of another fetch in flight,
    /// if there is one.
    fn swapped_serial(&self, fetch: &CertificateFetch) -> Option<schemas::CardSerial> {
        if self.fault.mode != FaultMode::SwapResidentsUnderLoad {
            return None;
        }
        let list = self.in_flight.lock().ok()?;
        list.iter()
            .rev()
            .find(|(id, serial)| *id != fetch.request_id && *serial != fetch.card_serial)
            .map(|(_, serial)| serial.clone())
    }

    /// Steps 5–9: the signed answer for a verified, fresh, in-time fetch.
    async fn build_answer(
        &self,
        fetch: &CertificateFetch,
        municipality: &Municipality,
    ) -> Result<SignedCertificateAnswer, IssueError> {
        // Every rule and the printed 交付日 follow the center's clock.
        let today = self.date_of(fetch.requested_at_unix_s)?;
        let catalogue = municipality
            .catalogue(fetch.requested_at_unix_s)
            .map_err(|e| internal("catalogue", e))?;
        // The request id the answer and its seals carry: the fetch's own, unless the
        // `wrong_request_id` fault swaps in a random one (for both, so they agree with
        // each other and disagree with the fetch).
        let request_id = match self.fault.mode {
            FaultMode::WrongRequestId => RequestId::new_random(),
            _ => fetch.request_id,
        };

        // The 2023–24 incident, on purpose: another in-flight request's resident.
        let swapped = self.swapped_serial(fetch);
        let (looked_up_serial, decision) = match fetch.order.route {
            Route::Residence => {
                match self
                    .register
                    .lookup_card(
                        municipality.code,
                        swapped.as_ref().unwrap_or(&fetch.card_serial),
                    )
                    .await
                    .map_err(|e| internal("register", e))?
                {
                    None => (
                        fetch.card_serial.clone(),
                        Decision::Refused(RefusalReason::CardNotRegistered),
                    ),
                    Some(lookup) => {
                        let decision = self
                            .decide_residence(fetch, municipality, &catalogue, &lookup, today)
                            .await?;
                        (lookup.card_serial.clone(), decision)
                    }
                }
            }
            Route::Domicile { .. } => (
                fetch.card_serial.clone(),
                self.decide_domicile(fetch, municipality, &catalogue, today)
                    .await?,
            ),
        };

        // The swap echoes the requested card, so only the content shows the mix-up.
        let looked_up_serial = if swapped.is_some() {
            fetch.card_serial.clone()
        } else {
            looked_up_serial
        };
        let mut outcome = match decision {
            Decision::Refused(reason) => refused(reason),
            Decision::Issued { front, subject } => {
                self.issued(fetch, request_id, municipality, &catalogue, front, &subject)
                    .await?
            }
        };

        if self.fault.mode == FaultMode::GenericRefusal {
            if let AnswerOutcome::Refused { reason } = &mut outcome {
                *reason = RefusalReason::CardNotRegistered;
            }
        }

        // The binding echo: computed from the serial the register returned, not copied
        // from the fetch, so a mix-up inside the adapter shows at the center.
        let mut card_digest = Digest32(card_binding_digest(&fetch.request_id, &looked_up_serial));
        if card_digest != fetch.card_digest {
            tracing::warn!("the fetch's card digest does not match its own request id and serial");
        }
        if self.fault.mode == FaultMode::WrongCardDigest {
            // The digest this card would have in another request: the kind of value a
            // mixed-up work file would carry.
            card_digest = Digest32(card_binding_digest(
                &RequestId::new_random(),
                &looked_up_serial,
            ));
        }
        let foreign_key = match self.fault.mode {
            FaultMode::BadSignature => Some(KeyPair::generate()),
            _ => None,
        };
        match &outcome {
            AnswerOutcome::Issued { seals, .. } => {
                tracing::info!(pages = seals.len(), "certificate issued")
            }
            AnswerOutcome::Refused { reason } => tracing::info!(?reason, "certificate refused"),
        }
        let answer = CertificateAnswer {
            request_id,
            municipality_code: municipality.code,
            card_digest,
            answered_at_unix_s: fetch.requested_at_unix_s,
            outcome,
        };
        let key = foreign_key.as_ref().unwrap_or(&municipality.key);
        Signed::sign(answer, key).map_err(|e| internal("signing the answer", e))
    }

    /// 住所地 route: the rules and the front for a bound card.
    async fn decide_residence(
        &self,
        fetch: &CertificateFetch,
        municipality: &Municipality,
        catalogue: &Catalogue,
        lookup: &CardLookup,
        today: jiff::civil::Date,
    ) -> Result<Decision, IssueError> {
        let kind = &fetch.order.certificate;
        // The holder's own 戸籍, only when asked for one and kept here.
        let family_register = match lookup.holder().and_then(|h| h.family_register.as_ref()) {
            Some(link) if kind.certificate_type().is_family_register() => self
                .register
                .family_register(municipality.code, &link.family_register_id)
                .await
                .map_err(|e| internal("register", e))?,
            _ => None,
        };
        let case = ResidenceCase {
            lookup,
            family_register: family_register.as_ref(),
        };
        decide_residence(&municipality.front_issuer, catalogue, case, kind, today)
            .map_err(|e| internal("front", e))
    }

    /// 本籍地 route: only through an approved 利用登録 of this card here; the answer is
    /// built from the 戸籍 alone.
    async fn decide_domicile(
        &self,
        fetch: &CertificateFetch,
        municipality: &Municipality,
        catalogue: &Catalogue,
        today: jiff::civil::Date,
    ) -> Result<Decision, IssueError> {
        let kind = &fetch.order.certificate;
        if !kind.certificate_type().is_family_register()
            || not_offered(catalogue, kind, RouteKind::Domicile, today).is_some()
        {
            return Ok(Decision::Refused(RefusalReason::TypeNotOffered));
        }
        let Some(person) =
            domicile::approved_person(&self.pool, municipality.code, &fetch.card_serial)
                .await
                .map_err(|e| internal("domicile registrations", e))?
        else {
            return Ok(Decision::Refused(RefusalReason::DomicileNotRegistered));
        };
        let Some(register) = self
            .register
            .family_register(municipality.code, &person.family_register_id)
            .await
            .map_err(|e| internal("register", e))?
        else {
            // Approved against a 戸籍 a later import no longer holds: the clerk must
            // approve again.
            tracing::warn!("an approved 利用登録 names a 戸籍 that is not in the register");
            return Ok(Decision::Refused(RefusalReason::DomicileNotRegistered));
        };
        decide_domicile(
            &municipality.front_issuer,
            catalogue,
            &register,
            &person.person_id,
            kind,
            today,
        )
        .map_err(|e| internal("front", e))
    }

    /// Step 8: validates the front, then one seal per front page; the fee from the
    /// catalogue.
    async fn issued(
        &self,
        fetch: &CertificateFetch,
        seal_serial: RequestId,
        municipality: &Municipality,
        catalogue: &Catalogue,
        front_in: FrontSide,
        subject: &SealSubject,
    ) -> Result<AnswerOutcome, IssueError> {
        let (front, substituted_subject);
        let subject = if self.fault.mode == FaultMode::SubstituteUnprintable {
            let mut value =
                serde_json::to_value(&front_in).map_err(|e| internal("front JSON", e))?;
            substitute_in_json(&mut value);
            front = serde_json::from_value(value).map_err(|e| internal("front JSON", e))?;
            substituted_subject = SealSubject {
                name: substitute_outside_bmp(&subject.name),
                address: subject.address.as_deref().map(substitute_outside_bmp),
                ..subject.clone()
            };
            &substituted_subject
        } else {
            front = front_in;
            subject
        };
        let certificate = fetch.order.certificate.certificate_type();
        if !front.fits(certificate) {
            return Err(IssueError::Internal(format!(
                "a {certificate} order produced a front of another type"
            )));
        }
        if let Err(reason) = front.validate() {
            // A record longer than a kiosk certificate can hold (a very large household
            // or 戸籍, too many entries): a counter matter, never a truncated print.
            tracing::warn!(%reason, "front exceeds the certificate layout; refused");
            return Ok(AnswerOutcome::Refused {
                reason: RefusalReason::FieldTooLong,
            });
        }
        let fee_yen_per_copy = catalogue
            .offering(certificate)
            .map(|o| o.fee_yen_per_copy)
            .ok_or_else(|| IssueError::Internal(format!("{certificate} has no offering")))?;
        let fee_yen_per_copy = match self.fault.mode {
            FaultMode::FeeMismatch => fee_yen_per_copy.saturating_add(10),
            _ => fee_yen_per_copy,
        };
        let issued_at_unix_s = u64::try_from(fetch.requested_at_unix_s)
            .map_err(|e| internal("clock before 1970", e))?;
        let seals = build_seals(
            certificate,
            municipality.code,
            seal_serial,
            subject,
            &front,
            issued_at_unix_s,
            &municipality.key,
        )
        .map_err(|e| internal("seals", e))?;
        let front = match self.fault.mode {
            FaultMode::ForeignFront => self.foreign_front(municipality, subject, front).await?,
            _ => front,
        };
        Ok(AnswerOutcome::Issued {
            fee_yen_per_copy,
            front,
            seals,
        })
    }

    /// For `foreign_front`: the front with another resident's name (and, where it has
    /// one, address) swapped in; the seals stay those of the requested resident.
    async fn foreign_front(
        &self,
        municipality: &Municipality,
        subject: &SealSubject,
        mut front: FrontSide,
    ) -> Result<FrontSide, IssueError> {
        let mut other = self
            .register
            .other_household(municipality.code, "")
            .await
            .map_err(|e| internal("register", e))?;
        // The first household may be the holder's own: then take the next one.
        if let Some(own) = other
            .as_ref()
            .filter(|h| h.members.iter().any(|m| m.name == subject.name))
        {
            let own_id = own.household_id.clone();
            other = self
                .register
                .other_household(municipality.code, &own_id)
                .await
                .map_err(|e| internal("register", e))?;
        }
        let stranger = other.as_ref().and_then(|household| {
            let member = household.members.iter().find(|m| m.status.is_current())?;
            Some((member.name.clone(), household.address.clone()))
        });
        let (name, address) = stranger.unwrap_or_else(|| {
            // A register without another household: still a front the seals do not cover.
            ("別人 太郎".to_owned(), "別の住所".to_owned())
        });
        match &mut front {
            FrontSide::ResidentRecord(f) => {
                f.address = address;
                if let Some(row) = f.members.first_mut() {
                    row.name = name;
                }
            }
            FrontSide::ResidentRecordItems(f) => {
                f.address = address;
                if let Some(row) = f.members.first_mut() {
                    row.name = name;
                }
            }
            FrontSide::SealRegistration(f) => {
                f.name = name;
                f.address = address;
            }
            FrontSide::IncomeTax(f) => {
                f.name = name;
                f.address = address;
            }
            FrontSide::TaxPayment(f) => {
                f.name = name;
                f.address = address;
            }
            FrontSide::FamilyRegister(f) => {
                if let Some(person) = f.persons.first_mut() {
                    person.name = name;
                }
            }
            FrontSide::FamilyRegisterAttachment(f) => f.name = name,
        }
        Ok(front)
    }
}

fn refused(reason: RefusalReason) -> AnswerOutcome {
    AnswerOutcome::Refused { reason }
}
