//! The scenarios of the municipality profile. Each checks one concern and names its
//! clauses; answers are read (payloads, seals) without relying on the center's own
//! binding guard: the checks are the suite's own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::seal::SignedSeal;
use schemas::{
    card_binding_digest, AnswerOutcome, CardSerial, Catalogue, CatalogueRequest, CertificateFetch,
    CertificateKind, CertificateOrder, CertificateType, Digest32, ErrorBody, ErrorCode, FrontSide,
    HouseholdScope, IssuanceNotice, IssuanceNoticeAck, KioskId, OperatorId, RefusalReason,
    RequestId, Route, RouteKind, SealPayload, Signed, SignedCertificateAnswer,
};

use super::residents::{self, resident_record_self, suite_serial};
use super::target::{Exchange, Target, EXCHANGE_TIMEOUT};
use crate::runner::ScenarioLog;

/// Deadline the suite gives an ordinary fetch.
const FETCH_DEADLINE: Duration = Duration::from_secs(20);
/// Concurrent fetches in the load scenario.
const CONCURRENT_FETCHES: usize = 100;
/// M-PERF-1's bound.
const CONCURRENT_WARN_MS: u64 = 10_000;

pub async fn run(id: &str, target: &Target, log: ScenarioLog) -> ScenarioLog {
    match id {
        "municipality.schema" => schema(target, log).await,
        "municipality.signatures" => signatures(target, log).await,
        "municipality.binding_echo" => binding_echo(target, log).await,
        "municipality.concurrent_distinct_residents" => concurrent(target, log).await,
        "municipality.idempotent_refetch" => idempotent_refetch(target, log).await,
        "municipality.deadlines" => deadlines(target, log).await,
        "municipality.refusal_codes" => refusal_codes(target, log).await,
        "municipality.unprintable_characters" => unprintable(target, log).await,
        "municipality.catalogue" => catalogue(target, log).await,
        "municipality.outcome_notices" => outcome_notices(target, log).await,
        _ => log,
    }
}

// ---------------------------------------------------------------------------------
// Helpers

fn now_unix_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn ordinary_serial(suffix: u64) -> CardSerial {
    // The suite's own constants: a bad one is a bug of the suite caught by its tests.
    suite_serial(suffix).unwrap_or_else(unreachable_serial)
}

fn unreachable_serial() -> CardSerial {
    // Never used: the constants form valid serials (tested).
    CardSerial::parse("0000000000000000").expect("a constant serial")
}

fn new_fetch(target: &Target, serial: CardSerial, kind: CertificateKind) -> CertificateFetch {
    let request_id = RequestId::new_random();
    CertificateFetch {
        request_id,
        municipality_code: target.code,
        card_digest: Digest32(card_binding_digest(&request_id, &serial)),
        card_serial: serial,
        order: CertificateOrder {
            route: Route::Residence,
            certificate: kind,
            copies: 1,
        },
        requested_at_unix_s: residents::SUITE_DAY_NOON_UNIX_S,
        deadline_unix_ms: now_unix_ms() + FETCH_DEADLINE.as_millis() as i64,
    }
}

fn sign<T: schemas::SignedMessage + serde::Serialize>(
    target: &Target,
    payload: T,
) -> Result<Vec<u8>, String> {
    let signed = Signed::sign(payload, &target.center_key).map_err(|e| e.to_string())?;
    serde_json::to_vec(&signed).map_err(|e| e.to_string())
}

/// Sends `fetch` signed by the center; the exchange is abandoned at its deadline.
async fn send_fetch(
    target: &Target,
    log: &mut ScenarioLog,
    label: &str,
    fetch: &CertificateFetch,
) -> Option<Exchange> {
    let body = match sign(target, fetch.clone()) {
        Ok(body) => body,
        Err(e) => {
            log.check(
                "M-RUN-1",
                false,
                format!("{label}: cannot sign the fetch: {e}"),
            );
            return None;
        }
    };
    let remaining_ms = (fetch.deadline_unix_ms - now_unix_ms()).max(1);
    let timeout = Duration::from_millis(u64::try_from(remaining_ms).unwrap_or(1))
        .min(EXCHANGE_TIMEOUT)
        .max(Duration::from_millis(2_000));
    let result = target.post("/v1/certificates", body.clone(), timeout).await;
    record(log, label, &body, result)
}

fn record(
    log: &mut ScenarioLog,
    label: &str,
    request: &[u8],
    result: Result<Exchange, String>,
) -> Option<Exchange> {
    match result {
        Ok(exchange) => {
            log.evidence(
                label,
                Some(request),
                Some(&exchange.body),
                Some(exchange.status),
            );
            Some(exchange)
        }
        Err(e) => {
            log.evidence(label, Some(request), None, None);
            log.check("M-RUN-1", false, format!("{label}: no answer: {e}"));
            None
        }
    }
}

/// A 200 answer parsed (strictly: the schemas types deny unknown fields). Failures
/// are reported on `clause`.
fn parse_answer(
    log: &mut ScenarioLog,
    clause: &str,
    label: &str,
    exchange: &Exchange,
) -> Option<SignedCertificateAnswer> {
    if exchange.status != 200 {
        log.check(
            clause,
            false,
            format!(
                "{label}: HTTP {} instead of an answer ({})",
                exchange.status,
                error_code(exchange).map_or("no error body".to_owned(), |c| c.to_string())
            ),
        );
        return None;
    }
    match serde_json::from_slice::<SignedCertificateAnswer>(&exchange.body) {
        Ok(answer) => Some(answer),
        Err(e) => {
            log.check(
                clause,
                false,
                format!("{label}: answer is not a Signed<CertificateAnswer>: {e}"),
            );
            None
        }
    }
}

fn error_code(exchange: &Exchange) -> Option<ErrorCode> {
    serde_json::from_slice::<ErrorBody>(&exchange.body)
        .ok()
        .map(|b| b.code)
}

/// The issued outcome's parts, or a failed assertion on `clause`.
fn issued<'a>(
    log: &mut ScenarioLog,
    clause: &str,
    label: &str,
    answer: &'a SignedCertificateAnswer,
) -> Option<(u32, &'a FrontSide, &'a [String])> {
    match &answer.payload.outcome {
        AnswerOutcome::Issued {
            fee_yen_per_copy,
            front,
            seals,
        } => Some((*fee_yen_per_copy, front, seals)),
        AnswerOutcome::Refused { reason } => {
            log.check(
                clause,
                false,
                format!("{label}: refused {reason}, expected issued"),
            );
            None
        }
    }
}

fn seal_payloads(seals: &[String]) -> Result<Vec<SealPayload>, String> {
    seals
        .iter()
        .enumerate()
        .map(|(i, text)| {
            SignedSeal::from_qr_text(text)
                .and_then(|s| s.unverified_payload())
                .map_err(|e| format!("seal {}: {e}", i + 1))
        })
        .collect()
}

fn birth_number(date: &str) -> Option<u32> {
    date.replace('-', "").parse().ok()
}

/// The first printed name of a front (the holder for the self-only 住民票).
fn front_name(front: &FrontSide) -> Option<&str> {
    match front {
        FrontSide::ResidentRecord(f) => f.members.first().map(|m| m.name.as_str()),
        FrontSide::ResidentRecordItems(f) => f.members.first().map(|m| m.name.as_str()),
        FrontSide::SealRegistration(f) => Some(&f.name),
        FrontSide::IncomeTax(f) => Some(&f.name),
        FrontSide::TaxPayment(f) => Some(&f.name),
        FrontSide::FamilyRegister(f) => f.persons.first().map(|p| p.name.as_str()),
        FrontSide::FamilyRegisterAttachment(f) => Some(&f.name),
    }
}

/// The order the suite sends for a type (default options).
fn default_kind(certificate: CertificateType) -> CertificateKind {
    match certificate {
        CertificateType::ResidentRecord => resident_record_self(),
        CertificateType::ResidentRecordItems => CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::SelfOnly,
            include_relationship: false,
        },
        CertificateType::SealRegistration => CertificateKind::SealRegistration,
        CertificateType::IncomeTax => CertificateKind::IncomeTax { fiscal_year: None },
        CertificateType::TaxPayment => CertificateKind::TaxPayment { fiscal_year: None },
        CertificateType::FamilyRegisterAll => CertificateKind::FamilyRegisterAll,
        CertificateType::FamilyRegisterIndividual => CertificateKind::FamilyRegisterIndividual,
        CertificateType::FamilyRegisterAttachment => CertificateKind::FamilyRegisterAttachment {
            include_domicile: false,
        },
    }
}

/// Checks an error answer: JSON ErrorBody, the expected code, its HTTP status.
fn check_error(
    log: &mut ScenarioLog,
    clause: &str,
    label: &str,
    exchange: &Exchange,
    expected: ErrorCode,
) {
    let code = error_code(exchange);
    log.check(
        clause,
        code == Some(expected) && exchange.status == expected_status(expected),
        format!(
            "{label}: expected {expected} (HTTP {}), got HTTP {} {}",
            expected_status(expected),
            exchange.status,
            code.map_or("without an error body".to_owned(), |c| c.to_string())
        ),
    );
}

/// The HTTP status of each error code on the center ↔ municipality link.
fn expected_status(code: ErrorCode) -> u16 {
    municipal_adapter::routes::status_for(code).as_u16()
}

async fn catalogue_request(target: &Target, log: &mut ScenarioLog) -> Option<Exchange> {
    let request = CatalogueRequest {
        municipality_code: target.code,
        requested_at_unix_s: residents::SUITE_DAY_NOON_UNIX_S,
    };
    let body = match sign(target, request) {
        Ok(body) => body,
        Err(e) => {
            log.check(
                "M-RUN-1",
                false,
                format!("cannot sign the catalogue request: {e}"),
            );
            return None;
        }
    };
    let result = target
        .post("/v1/catalogue", body.clone(), EXCHANGE_TIMEOUT)
        .await;
    record(log, "POST /v1/catalogue", &body, result)
}

fn notice_for(
    fetch: &CertificateFetch,
    certificate_type: CertificateType,
    fee_yen_per_copy: u32,
    page_count: usize,
    copies: u32,
) -> Result<IssuanceNotice, String> {
    Ok(IssuanceNotice {
        request_id: fetch.request_id,
        municipality_code: fetch.municipality_code,
        card_digest: fetch.card_digest,
        certificate_type,
        copies,
        page_count: u32::try_from(page_count).map_err(|e| e.to_string())?,
        total_fee_yen: fee_yen_per_copy.saturating_mul(copies),
        document_sha256: Digest32::of(fetch.request_id.as_bytes()),
        operator_id: OperatorId::parse("conformance").map_err(|e| e.to_string())?,
        kiosk_id: KioskId::parse("conformance-0001").map_err(|e| e.to_string())?,
        printed_at_unix_ms: residents::SUITE_DAY_NOON_UNIX_S * 1000 + 60_000,
    })
}

async fn send_notice(
    target: &Target,
    log: &mut ScenarioLog,
    label: &str,
    notice: &IssuanceNotice,
) -> Option<Exchange> {
    let body = match sign(target, notice.clone()) {
        Ok(body) => body,
        Err(e) => {
            log.check("M-RUN-1", false, format!("cannot sign the notice: {e}"));
            return None;
        }
    };
    let result = target
        .post("/v1/issuance-notices", body.clone(), EXCHANGE_TIMEOUT)
        .await;
    record(log, label, &body, result)
}

// ---------------------------------------------------------------------------------
// Scenarios

/// M-SCHEMA-1..3: issued and refused answers, error bodies, catalogue, notice
/// acknowledgement and info, each in its schema type and content type.
async fn schema(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    match target.get("/v1/info").await {
        Ok(exchange) => {
            log.evidence(
                "GET /v1/info",
                None,
                Some(&exchange.body),
                Some(exchange.status),
            );
            let parsed = serde_json::from_slice::<schemas::AdapterInfo>(&exchange.body);
            log.check(
                "M-SCHEMA-3",
                exchange.status == 200 && exchange.is_json() && parsed.is_ok(),
                format!(
                    "GET /v1/info: HTTP {}, {:?}, AdapterInfo: {}",
                    exchange.status,
                    exchange.content_type,
                    parsed.map_or_else(|e| e.to_string(), |_| "ok".into())
                ),
            );
        }
        Err(e) => log.check("M-RUN-1", false, format!("GET /v1/info: {e}")),
    }

    let cases = [
        ("issued answer", ordinary_serial(2), resident_record_self()),
        (
            "refused answer",
            ordinary_serial(residents::SPECIAL_RESIDENTS[0].suffix),
            resident_record_self(),
        ),
    ];
    let mut issued_fetch = None;
    for (label, serial, kind) in cases {
        let fetch = new_fetch(target, serial, kind);
        let Some(exchange) = send_fetch(target, &mut log, label, &fetch).await else {
            continue;
        };
        let parsed = serde_json::from_slice::<SignedCertificateAnswer>(&exchange.body);
        log.check(
            "M-SCHEMA-1",
            exchange.status == 200 && exchange.is_json() && parsed.is_ok(),
            format!(
                "{label}: HTTP {}, content type {:?}, Signed<CertificateAnswer>: {}",
                exchange.status,
                exchange.content_type,
                parsed
                    .as_ref()
                    .map_or_else(|e| e.to_string(), |_| "ok".into())
            ),
        );
        if let Ok(answer) = parsed {
            if let AnswerOutcome::Issued {
                front,
                seals,
                fee_yen_per_copy,
            } = answer.payload.outcome
            {
                issued_fetch = Some((fetch, fee_yen_per_copy, front.page_count().max(seals.len())));
            }
        }
    }

    // Error bodies: a fetch not signed by the center, and an unknown path.
    let mut forged = new_fetch(target, ordinary_serial(3), resident_record_self());
    forged.requested_at_unix_s = residents::SUITE_DAY_NOON_UNIX_S;
    let stranger = schemas::KeyPair::generate();
    let forged_body = Signed::sign(forged, &stranger)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::to_vec(&s).map_err(|e| e.to_string()));
    match forged_body {
        Ok(body) => {
            let result = target
                .post("/v1/certificates", body.clone(), EXCHANGE_TIMEOUT)
                .await;
            if let Some(exchange) = record(&mut log, "fetch signed by another key", &body, result) {
                log.check(
                    "M-SCHEMA-2",
                    exchange.is_json(),
                    format!("error answer content type {:?}", exchange.content_type),
                );
                check_error(
                    &mut log,
                    "M-SCHEMA-2",
                    "fetch signed by another key",
                    &exchange,
                    ErrorCode::RequestSignatureInvalid,
                );
            }
        }
        Err(e) => log.check(
            "M-RUN-1",
            false,
            format!("cannot build the forged fetch: {e}"),
        ),
    }

    if let Some(exchange) = catalogue_request(target, &mut log).await {
        let parsed = serde_json::from_slice::<Signed<Catalogue>>(&exchange.body);
        log.check(
            "M-SCHEMA-3",
            exchange.status == 200 && exchange.is_json() && parsed.is_ok(),
            format!(
                "catalogue: HTTP {}, Signed<Catalogue>: {}",
                exchange.status,
                parsed.map_or_else(|e| e.to_string(), |_| "ok".into())
            ),
        );
    }

    if let Some((fetch, fee, pages)) = issued_fetch {
        match notice_for(&fetch, CertificateType::ResidentRecord, fee, pages, 1) {
            Ok(notice) => {
                if let Some(exchange) = send_notice(target, &mut log, "notice", &notice).await {
                    if exchange.status == 200 {
                        let parsed = serde_json::from_slice::<IssuanceNoticeAck>(&exchange.body);
                        log.check(
                            "M-SCHEMA-3",
                            exchange.is_json() && parsed.is_ok(),
                            format!(
                                "notice acknowledgement: {}",
                                parsed.map_or_else(|e| e.to_string(), |_| "ok".into())
                            ),
                        );
                    } else {
                        let parsed = serde_json::from_slice::<ErrorBody>(&exchange.body);
                        log.check(
                            "M-SCHEMA-2",
                            exchange.is_json()
                                && parsed
                                    .as_ref()
                                    .is_ok_and(|b| expected_status(b.code) == exchange.status),
                            format!("notice error answer: HTTP {}", exchange.status),
                        );
                    }
                }
            }
            Err(e) => log.check("M-RUN-1", false, format!("notice: {e}")),
        }
    }
    log
}

/// M-SIG-1..3 on an issued and a refused answer.
async fn signatures(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let cases = [
        ("issued 住民票", ordinary_serial(8), resident_record_self()),
        (
            "issued 印鑑登録証明書",
            ordinary_serial(residents::FULL_SERVICE_SUFFIX),
            CertificateKind::SealRegistration,
        ),
        (
            "refused",
            ordinary_serial(residents::SPECIAL_RESIDENTS[1].suffix),
            resident_record_self(),
        ),
    ];
    for (label, serial, kind) in cases {
        let certificate = kind.certificate_type();
        let fetch = new_fetch(target, serial, kind);
        let Some(exchange) = send_fetch(target, &mut log, label, &fetch).await else {
            continue;
        };
        let Some(answer) = parse_answer(&mut log, "M-SIG-1", label, &exchange) else {
            continue;
        };
        let verified = answer.verify(&target.municipality_key);
        log.check(
            "M-SIG-1",
            verified.is_ok() && answer.kid == target.municipality_key.kid(),
            format!(
                "{label}: answer kid {} (municipality key {}): {}",
                answer.kid,
                target.municipality_key.kid(),
                verified.map_or_else(|e| e.to_string(), |_| "verifies".into())
            ),
        );
        let AnswerOutcome::Issued { front, seals, .. } = &answer.payload.outcome else {
            continue;
        };
        let front_digest = front.digest().map(|d| d.0);
        let pages = front.page_count();
        log.check(
            "M-SIG-3",
            seals.len() == pages,
            format!("{label}: {} seals for {pages} front pages", seals.len()),
        );
        for (index, text) in seals.iter().enumerate() {
            let seal = match SignedSeal::from_qr_text(text) {
                Ok(seal) => seal,
                Err(e) => {
                    log.check(
                        "M-SIG-2",
                        false,
                        format!("{label}: seal {} does not decode: {e}", index + 1),
                    );
                    continue;
                }
            };
            let payload = seal.verify(&target.municipality_key);
            log.check(
                "M-SIG-2",
                payload.is_ok(),
                format!(
                    "{label}: seal {} kid {}: {}",
                    index + 1,
                    seal.kid,
                    payload
                        .as_ref()
                        .map_or_else(|e| e.to_string(), |_| "verifies".into())
                ),
            );
            let Ok(payload) = payload.or_else(|_| seal.unverified_payload()) else {
                continue;
            };
            let covers = front_digest
                .as_ref()
                .is_ok_and(|d| *d == payload.front_digest);
            log.check(
                "M-SIG-3",
                covers
                    && payload.doc_type == certificate.seal_doc_type()
                    && usize::from(payload.page) == index + 1
                    && usize::from(payload.page_count) == pages,
                format!(
                    "{label}: seal {} is page {}/{} of doc type {} and {} the front",
                    index + 1,
                    payload.page,
                    payload.page_count,
                    payload.doc_type,
                    if covers { "covers" } else { "does NOT cover" }
                ),
            );
        }
    }
    log
}

/// M-BIND-1..3 on an issued answer and on the refusal of an unbound card.
async fn binding_echo(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let cases = [
        ("issued", ordinary_serial(9)),
        ("unbound card", ordinary_serial(residents::UNBOUND_SUFFIX)),
    ];
    for (label, serial) in cases {
        let fetch = new_fetch(target, serial, resident_record_self());
        let Some(exchange) = send_fetch(target, &mut log, label, &fetch).await else {
            continue;
        };
        let Some(answer) = parse_answer(&mut log, "M-BIND-1", label, &exchange) else {
            continue;
        };
        let payload = &answer.payload;
        log.check(
            "M-BIND-1",
            payload.request_id == fetch.request_id,
            format!(
                "{label}: answer request id {} for fetch {}",
                payload.request_id, fetch.request_id
            ),
        );
        log.check(
            "M-BIND-2",
            payload.card_digest == fetch.card_digest,
            format!(
                "{label}: card digest {} for fetch digest {}",
                payload.card_digest, fetch.card_digest
            ),
        );
        log.check(
            "M-BIND-3",
            payload.municipality_code == fetch.municipality_code,
            format!(
                "{label}: answer from municipality {}",
                payload.municipality_code
            ),
        );
        if let AnswerOutcome::Issued { seals, .. } = &payload.outcome {
            match seal_payloads(seals) {
                Ok(payloads) => {
                    for (i, p) in payloads.iter().enumerate() {
                        log.check(
                            "M-BIND-1",
                            p.serial == fetch.request_id && p.issuer == fetch.municipality_code,
                            format!(
                                "{label}: seal {} names request {} of {}",
                                i + 1,
                                p.serial,
                                p.issuer
                            ),
                        );
                    }
                }
                Err(e) => log.check("M-BIND-1", false, format!("{label}: {e}")),
            }
        }
    }
    log
}

/// M-CONC-1/2, M-PERF-1: 100 fetches at once for 100 distinct residents.
async fn concurrent(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let residents: Vec<_> = residents::ordinary_residents()
        .into_iter()
        .rev()
        .take(CONCURRENT_FETCHES)
        .collect();
    let mut prepared = Vec::with_capacity(residents.len());
    for resident in &residents {
        let fetch = new_fetch(
            target,
            ordinary_serial(resident.suffix),
            resident_record_self(),
        );
        match sign(target, fetch.clone()) {
            Ok(body) => prepared.push((fetch, body)),
            Err(e) => {
                log.check("M-RUN-1", false, format!("cannot sign: {e}"));
                return log;
            }
        }
    }
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(prepared.iter().map(|(_, b)| b.clone()).collect());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..prepared.len() {
        let client = target.client.clone();
        let url = format!("{}/v1/certificates", target.base_url);
        let bodies = Arc::clone(&bodies);
        tasks.spawn(async move {
            let body = bodies.get(index).cloned().unwrap_or_default();
            let request = client
                .post(url)
                .header("content-type", "application/json")
                .timeout(FETCH_DEADLINE)
                .body(body);
            let result = async {
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await.map_err(|e| e.to_string())?;
                if bytes.len() > super::target::MAX_RESPONSE_BYTES {
                    return Err("response too large".to_owned());
                }
                Ok::<_, String>((status, bytes.to_vec()))
            }
            .await;
            (index, result)
        });
    }
    let mut results: HashMap<usize, Result<(u16, Vec<u8>), String>> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => {
                results.insert(index, result);
            }
            Err(e) => log.check("M-RUN-1", false, format!("a request task failed: {e}")),
        }
    }
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let (mut answered, mut bound_right) = (0usize, 0usize);
    for (index, ((fetch, body), resident)) in prepared.iter().zip(&residents).enumerate() {
        let label = format!("concurrent fetch {} ({})", index + 1, fetch.request_id);
        let Some(result) = results.remove(&index) else {
            log.check("M-CONC-1", false, format!("{label}: no result"));
            continue;
        };
        let (status, response) = match result {
            Ok(ok) => ok,
            Err(e) => {
                log.evidence(&label, Some(body), None, None);
                log.check("M-CONC-1", false, format!("{label}: no answer: {e}"));
                continue;
            }
        };
        log.evidence(&label, Some(body), Some(&response), Some(status));
        let exchange = Exchange {
            status,
            content_type: None,
            body: response,
            elapsed_ms: 0,
        };
        let Some(answer) = parse_answer(&mut log, "M-CONC-1", &label, &exchange) else {
            continue;
        };
        let Some((_, front, seals)) = issued(&mut log, "M-CONC-1", &label, &answer) else {
            continue;
        };
        answered += 1;
        let expected_birth = birth_number(&resident.birth_date);
        let front_ok = front_name(front) == Some(resident.name.as_str());
        let seals_ok = seal_payloads(seals).is_ok_and(|payloads| {
            !payloads.is_empty()
                && payloads
                    .iter()
                    .all(|p| p.name == resident.name && Some(p.birth_date) == expected_birth)
        });
        if front_ok && seals_ok {
            bound_right += 1;
        } else {
            log.check(
                "M-CONC-2",
                false,
                format!(
                    "{label}: requested {}; front names {:?}, seals {}",
                    resident.name,
                    front_name(front),
                    if seals_ok {
                        "name the resident"
                    } else {
                        "name someone else"
                    }
                ),
            );
        }
    }
    let total = prepared.len();
    log.check(
        "M-CONC-1",
        answered == total,
        format!("{answered} of {total} concurrent fetches issued"),
    );
    log.check(
        "M-CONC-2",
        bound_right == total,
        format!("{bound_right} of {total} answers name exactly the requested resident"),
    );
    log.check(
        "M-PERF-1",
        elapsed_ms <= CONCURRENT_WARN_MS,
        format!("{total} concurrent fetches answered in {elapsed_ms} ms"),
    );
    log
}

/// M-IDEM-1/2.
async fn idempotent_refetch(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let fetch = new_fetch(target, ordinary_serial(10), resident_record_self());
    let Some(first) = send_fetch(target, &mut log, "first fetch", &fetch).await else {
        return log;
    };
    if parse_answer(&mut log, "M-IDEM-1", "first fetch", &first).is_none() {
        return log;
    }
    // The center's retry: the same request, a new deadline.
    let mut retry = fetch.clone();
    retry.deadline_unix_ms = now_unix_ms() + FETCH_DEADLINE.as_millis() as i64 + 1_000;
    if let Some(second) = send_fetch(target, &mut log, "re-fetch", &retry).await {
        log.check(
            "M-IDEM-1",
            second.status == 200 && second.body == first.body,
            format!(
                "re-fetch of {}: HTTP {}, {} the first answer's bytes",
                fetch.request_id,
                second.status,
                if second.body == first.body {
                    "equal to"
                } else {
                    "DIFFERENT from"
                }
            ),
        );
    }
    // Another resident's fetch under the same request id.
    let other_serial = ordinary_serial(11);
    let mut other = new_fetch(target, other_serial.clone(), resident_record_self());
    other.request_id = fetch.request_id;
    other.card_digest = Digest32(card_binding_digest(&fetch.request_id, &other_serial));
    if let Some(exchange) = send_fetch(target, &mut log, "different fetch, same id", &other).await {
        check_error(
            &mut log,
            "M-IDEM-2",
            "different fetch under a used request id",
            &exchange,
            ErrorCode::RequestIdReused,
        );
    }
    log
}

/// M-DEADLINE-1/2.
async fn deadlines(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let mut fetch = new_fetch(target, ordinary_serial(12), resident_record_self());
    fetch.deadline_unix_ms = now_unix_ms() - 1_000;
    if let Some(exchange) = send_fetch(target, &mut log, "expired fetch", &fetch).await {
        check_error(
            &mut log,
            "M-DEADLINE-1",
            "fetch whose deadline passed 1 s ago",
            &exchange,
            ErrorCode::UpstreamTimeout,
        );
    }
    let mut retry = fetch.clone();
    retry.deadline_unix_ms = now_unix_ms() + FETCH_DEADLINE.as_millis() as i64;
    if let Some(exchange) = send_fetch(target, &mut log, "same id, fresh deadline", &retry).await {
        let issued_ok = parse_answer(
            &mut log,
            "M-DEADLINE-2",
            "same id, fresh deadline",
            &exchange,
        )
        // The echo is the binding scenario's matter; here only: answered, issued.
        .is_some_and(|a| matches!(a.payload.outcome, AnswerOutcome::Issued { .. }));
        log.check(
            "M-DEADLINE-2",
            issued_ok,
            format!(
                "the same request id with a fresh deadline is {}",
                if issued_ok { "issued" } else { "not issued" }
            ),
        );
    }
    log
}

/// M-REFUSE-1..3.
async fn refusal_codes(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let mut cases: Vec<(String, &str, CardSerial, CertificateKind, RefusalReason)> =
        residents::SPECIAL_RESIDENTS
            .iter()
            .map(|s| {
                (
                    format!("card …{} ({})", s.suffix, s.note),
                    "M-REFUSE-1",
                    ordinary_serial(s.suffix),
                    s.order.kind(),
                    s.reason,
                )
            })
            .collect();
    cases.push((
        "unbound card".into(),
        "M-REFUSE-2",
        ordinary_serial(residents::UNBOUND_SUFFIX),
        resident_record_self(),
        RefusalReason::CardNotRegistered,
    ));
    cases.push((
        "member 2 of a one-person household".into(),
        "M-REFUSE-3",
        ordinary_serial(13),
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::Selected { members: vec![2] },
            include_domicile: false,
            include_relationship: false,
        },
        RefusalReason::MemberSelectionInvalid,
    ));
    for (label, clause, serial, kind, expected) in cases {
        let fetch = new_fetch(target, serial, kind);
        let Some(exchange) = send_fetch(target, &mut log, &label, &fetch).await else {
            continue;
        };
        let Some(answer) = parse_answer(&mut log, clause, &label, &exchange) else {
            continue;
        };
        let got = match &answer.payload.outcome {
            AnswerOutcome::Refused { reason } => reason.to_string(),
            AnswerOutcome::Issued { .. } => "issued".to_owned(),
        };
        log.check(
            clause,
            matches!(answer.payload.outcome, AnswerOutcome::Refused { reason } if reason == expected),
            format!("{label}: expected refusal {expected}, got {got}"),
        );
    }
    log
}

/// M-FONT-1.
async fn unprintable(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let label = "name with 𠮷 (U+20BB7)";
    let fetch = new_fetch(
        target,
        ordinary_serial(residents::UNPRINTABLE_SUFFIX),
        resident_record_self(),
    );
    let Some(exchange) = send_fetch(target, &mut log, label, &fetch).await else {
        return log;
    };
    let Some(answer) = parse_answer(&mut log, "M-FONT-1", label, &exchange) else {
        return log;
    };
    match &answer.payload.outcome {
        AnswerOutcome::Refused { reason } => log.check(
            "M-FONT-1",
            *reason == RefusalReason::UnprintableCharacter,
            format!("{label}: refused {reason}"),
        ),
        AnswerOutcome::Issued { front, seals, .. } => {
            let printed = front_name(front).unwrap_or_default().to_owned();
            log.check(
                "M-FONT-1",
                printed == residents::UNPRINTABLE_NAME,
                format!(
                    "{label}: issued; the front names {printed:?}, registered {:?}",
                    residents::UNPRINTABLE_NAME
                ),
            );
            match seal_payloads(seals) {
                Ok(payloads) => {
                    let names: Vec<_> = payloads.iter().map(|p| p.name.as_str()).collect();
                    log.check(
                        "M-FONT-1",
                        !names.is_empty()
                            && names.iter().all(|n| *n == residents::UNPRINTABLE_NAME),
                        format!("{label}: the seals name {names:?}"),
                    );
                }
                Err(e) => log.check("M-FONT-1", false, format!("{label}: {e}")),
            }
        }
    }
    log
}

/// M-CAT-1..3: the signed catalogue, then one fetch per type for the full-service
/// resident.
async fn catalogue(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let Some(exchange) = catalogue_request(target, &mut log).await else {
        return log;
    };
    let signed = match serde_json::from_slice::<Signed<Catalogue>>(&exchange.body) {
        Ok(signed) if exchange.status == 200 => signed,
        Ok(_) | Err(_) => {
            log.check(
                "M-CAT-1",
                false,
                format!(
                    "catalogue: HTTP {}, not a signed catalogue",
                    exchange.status
                ),
            );
            return log;
        }
    };
    let verified = signed.verify(&target.municipality_key);
    log.check(
        "M-CAT-1",
        verified.is_ok(),
        format!(
            "catalogue signature (kid {}): {}",
            signed.kid,
            verified.map_or_else(|e| e.to_string(), |_| "verifies".into())
        ),
    );
    let catalogue = &signed.payload;
    log.check(
        "M-CAT-1",
        catalogue.municipality_code == target.code,
        format!(
            "catalogue names municipality {}",
            catalogue.municipality_code
        ),
    );
    let validated = catalogue.validate();
    log.check(
        "M-CAT-1",
        validated.is_ok(),
        format!(
            "catalogue validates: {}",
            validated.map_or_else(|e| e, |_| "ok".into())
        ),
    );

    for certificate in CertificateType::ALL {
        let offering = catalogue
            .offering(certificate)
            .filter(|o| o.routes.contains(&RouteKind::Residence));
        let label = format!("{certificate} for the full-service resident");
        let fetch = new_fetch(
            target,
            ordinary_serial(residents::FULL_SERVICE_SUFFIX),
            default_kind(certificate),
        );
        let Some(exchange) = send_fetch(target, &mut log, &label, &fetch).await else {
            continue;
        };
        let Some(answer) = parse_answer(&mut log, "M-CAT-3", &label, &exchange) else {
            continue;
        };
        match (offering, &answer.payload.outcome) {
            (
                Some(offering),
                AnswerOutcome::Issued {
                    fee_yen_per_copy,
                    front,
                    ..
                },
            ) => {
                log.check(
                    "M-CAT-3",
                    front.fits(certificate),
                    format!("{label}: issued with a front of this type"),
                );
                log.check(
                    "M-CAT-2",
                    *fee_yen_per_copy == offering.fee_yen_per_copy,
                    format!(
                        "{label}: fee {fee_yen_per_copy} yen per copy, catalogue {} yen",
                        offering.fee_yen_per_copy
                    ),
                );
            }
            (Some(_), AnswerOutcome::Refused { reason }) => log.check(
                "M-CAT-3",
                false,
                format!("{label}: offered but refused {reason}"),
            ),
            (None, AnswerOutcome::Refused { reason }) => log.check(
                "M-CAT-3",
                *reason == RefusalReason::TypeNotOffered,
                format!("{label}: not offered, refused {reason}"),
            ),
            (None, AnswerOutcome::Issued { .. }) => log.check(
                "M-CAT-3",
                false,
                format!("{label}: not offered by the catalogue but issued"),
            ),
        }
    }
    log
}

/// M-NOTICE-1..3.
async fn outcome_notices(target: &Target, mut log: ScenarioLog) -> ScenarioLog {
    let fetch = new_fetch(target, ordinary_serial(14), resident_record_self());
    let Some(exchange) = send_fetch(target, &mut log, "fetch", &fetch).await else {
        return log;
    };
    let Some(answer) = parse_answer(&mut log, "M-NOTICE-1", "fetch", &exchange) else {
        return log;
    };
    let Some((fee, front, _)) = issued(&mut log, "M-NOTICE-1", "fetch", &answer) else {
        return log;
    };
    let notice = match notice_for(
        &fetch,
        CertificateType::ResidentRecord,
        fee,
        front.page_count(),
        1,
    ) {
        Ok(notice) => notice,
        Err(e) => {
            log.check("M-RUN-1", false, format!("notice: {e}"));
            return log;
        }
    };
    for (clause, label, expect_recorded) in [
        ("M-NOTICE-1", "first notice", true),
        ("M-NOTICE-2", "same notice again", false),
    ] {
        let Some(exchange) = send_notice(target, &mut log, label, &notice).await else {
            continue;
        };
        let ack = serde_json::from_slice::<IssuanceNoticeAck>(&exchange.body).ok();
        let ok = exchange.status == 200
            && ack.as_ref().is_some_and(|a| {
                a.request_id == notice.request_id && a.recorded == expect_recorded
            });
        log.check(
            clause,
            ok,
            format!(
                "{label}: HTTP {} {}, expected 200 recorded = {expect_recorded}",
                exchange.status,
                ack.map_or_else(
                    || error_code(&exchange).map_or("(no body)".to_owned(), |c| c.to_string()),
                    |a| format!("recorded = {}", a.recorded)
                ),
            ),
        );
    }
    let mut different = notice.clone();
    different.copies = 2;
    different.total_fee_yen = fee.saturating_mul(2);
    if let Some(exchange) =
        send_notice(target, &mut log, "different notice, same id", &different).await
    {
        check_error(
            &mut log,
            "M-NOTICE-3",
            "a different notice under a recorded request id",
            &exchange,
            ErrorCode::RequestIdReused,
        );
    }
    log
}
