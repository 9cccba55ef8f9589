//! Processing of one [`schemas::SignedCertificateFetch`], independent of HTTP.
//!
//! In order: (1) the center's signature; (2) a municipality this process serves;
//! (3) idempotency on the request id; (4) the whole-request deadline; (5) the card
//! binding; (6) the binding echo (card digest recomputed from the serial actually
//! found); (7) the front; (8) one seal per front page; (9) the municipality's signature
//! over the answer. Everything a request touches is local to the call: there is no
//! work file or shared buffer that a concurrent request could overwrite.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use schemas::{
    card_binding_digest, AnswerOutcome, CertificateAnswer, CertificateFetch, Digest32, ErrorCode,
    FrontSide, KeyPair, MunicipalityCode, PublicKey, RefusalReason, RequestId, Signed,
    SignedCertificateAnswer, SignedCertificateFetch, SignedMessage as _, SigningError,
};

use crate::answers::{AnswerStore, StoreOutcome};
use crate::configuration::MunicipalitySettings;
use crate::fault::{FaultMode, FaultSettings};
use crate::front::{build_resident_record, refusal, FrontIssuer, FrontOptions};
use crate::register::store::CardLookup;
use crate::register::RegisterStore;
use crate::seal::{build_seals, SealSubject};

/// The time zone of the issue date printed on every certificate.
pub const ISSUE_TIME_ZONE: &str = "Asia/Tokyo";

/// One served municipality with its signing key.
#[derive(Debug)]
pub struct Municipality {
    pub code: MunicipalityCode,
    pub prefecture: String,
    pub fee_yen_per_copy: u32,
    pub front_issuer: FrontIssuer,
    pub key: KeyPair,
}

impl Municipality {
    pub fn new(settings: &MunicipalitySettings, key: KeyPair) -> Self {
        Self {
            code: settings.code,
            prefecture: settings.prefecture.clone(),
            fee_yen_per_copy: settings.fee_yen_per_copy,
            front_issuer: FrontIssuer {
                municipality_name: settings.name.clone(),
                mayor_title: settings.mayor_title.clone(),
                mayor_name: settings.mayor_name.clone(),
            },
            key,
        }
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
    fault: FaultSettings,
    time_zone: TimeZone,
}

impl IssuanceService {
    pub fn new(
        center_key: PublicKey,
        municipalities: Vec<Municipality>,
        register: RegisterStore,
        answers: AnswerStore,
        fault: FaultSettings,
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
            fault,
            time_zone,
        })
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
        if let Some(stored) = self
            .answers
            .find(fetch.request_id)
            .await
            .map_err(|e| internal("answer store", e))?
        {
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

        let now_unix_ms = now.as_millisecond();
        if now_unix_ms >= fetch.deadline_unix_ms {
            return Err(IssueError::DeadlinePassed {
                deadline_unix_ms: fetch.deadline_unix_ms,
                now_unix_ms,
            });
        }

        let answer = self.build_answer(fetch, municipality, now).await?;
        // Whole-request timeout: work that finished after the deadline is discarded, not
        // stored, because the center has already abandoned the request.
        let finished_unix_ms = Timestamp::now().as_millisecond();
        if finished_unix_ms >= fetch.deadline_unix_ms {
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
            StoreOutcome::AlreadyStored(_) => Err(IssueError::RequestIdReused(fetch.request_id)),
        }
    }

    /// Steps 5–9: the signed answer for a verified, fresh, in-time fetch.
    async fn build_answer(
        &self,
        fetch: &CertificateFetch,
        municipality: &Municipality,
        now: Timestamp,
    ) -> Result<SignedCertificateAnswer, IssueError> {
        let lookup = self
            .register
            .lookup_card(municipality.code, &fetch.card_serial)
            .await
            .map_err(|e| internal("register", e))?;
        let today = now.to_zoned(self.time_zone.clone()).date();
        let now_unix_s = now.as_second();
        // The request id the answer and its seals carry: the fetch's own, unless the
        // `wrong_request_id` fault swaps in a random one (for both, so they agree with
        // each other and disagree with the fetch).
        let request_id = match self.fault.mode {
            FaultMode::WrongRequestId => RequestId::new_random(),
            _ => fetch.request_id,
        };

        let (looked_up_serial, outcome) = match &lookup {
            None => (
                fetch.card_serial.clone(),
                refused(RefusalReason::CardNotRegistered),
            ),
            Some(lookup) => (
                lookup.card_serial.clone(),
                self.issue(fetch, request_id, municipality, lookup, today, now_unix_s)
                    .await?,
            ),
        };

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
            answered_at_unix_s: now_unix_s,
            outcome,
        };
        let key = foreign_key.as_ref().unwrap_or(&municipality.key);
        Signed::sign(answer, key).map_err(|e| internal("signing the answer", e))
    }

    /// Steps 7–8 for a bound card: refusal rules, then the front and its seals.
    async fn issue(
        &self,
        fetch: &CertificateFetch,
        seal_serial: RequestId,
        municipality: &Municipality,
        lookup: &CardLookup,
        today: jiff::civil::Date,
        now_unix_s: i64,
    ) -> Result<AnswerOutcome, IssueError> {
        let holder = lookup.holder().ok_or_else(|| {
            IssueError::Internal("the card's holder is missing from the household rows".into())
        })?;
        let options = FrontOptions::from_kind(&fetch.order.certificate);
        if let Some(reason) = refusal(&lookup.household, holder, options.scope, today) {
            return Ok(refused(reason));
        }
        let front = FrontSide::ResidentRecord(
            build_resident_record(
                &municipality.front_issuer,
                &lookup.household,
                holder,
                options,
                today,
            )
            .map_err(|e| internal("front", e))?,
        );
        let issued_at_unix_s =
            u64::try_from(now_unix_s).map_err(|e| internal("clock before 1970", e))?;
        let seals = build_seals(
            municipality.code,
            seal_serial,
            SealSubject {
                name: &holder.name,
                birth_date: holder.birth_date,
                address: &lookup.household.address,
            },
            &front,
            issued_at_unix_s,
            &municipality.key,
        )
        .map_err(|e| internal("seals", e))?;
        let front = match self.fault.mode {
            FaultMode::ForeignFront => {
                self.foreign_front(municipality, lookup, options, today, front)
                    .await?
            }
            _ => front,
        };
        Ok(AnswerOutcome::Issued {
            fee_yen_per_copy: municipality.fee_yen_per_copy,
            front,
            seals,
        })
    }

    /// For `foreign_front`: the front another household's first member would get with
    /// the same options (the seals stay those of the requested resident).
    async fn foreign_front(
        &self,
        municipality: &Municipality,
        lookup: &CardLookup,
        options: FrontOptions,
        today: jiff::civil::Date,
        own: FrontSide,
    ) -> Result<FrontSide, IssueError> {
        let other = self
            .register
            .other_household(municipality.code, &lookup.household.household_id)
            .await
            .map_err(|e| internal("register", e))?;
        let foreign = other.as_ref().and_then(|household| {
            let holder = household.members.iter().find(|m| m.status.is_current())?;
            build_resident_record(
                &municipality.front_issuer,
                household,
                holder,
                options,
                today,
            )
            .ok()
        });
        Ok(match foreign {
            Some(record) => FrontSide::ResidentRecord(record),
            // A one-household register has no other resident to swap in; alter the
            // address instead so the front still differs from what the seals cover.
            None => {
                let FrontSide::ResidentRecord(mut record) = own;
                record.address.push_str("（別世帯）");
                FrontSide::ResidentRecord(record)
            }
        })
    }
}

fn refused(reason: RefusalReason) -> AnswerOutcome {
    AnswerOutcome::Refused { reason }
}
