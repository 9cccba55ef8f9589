//! `kiosk-sim load`: the load generator. N kiosks (at most [`MAX_KIOSKS`]) run M full
//! resident visits in all, concurrently — menu, card PIN, challenge, the card-signed
//! order, the document checked, payment reported, `printed` reported — against one
//! center or several replicas (`--center URL` repeated: kiosk i's primary is
//! URL[i % n], the others its fall-backs, [`crate::client::CenterClient`] fails over
//! with the same request), or against every party started in this process on the
//! embedded defaults (`--local`).
//!
//! **Every printed PDF is checked against the resident who asked** ([`check_printed`]):
//! the announced digest and page count, then `verifier::verify_pdf_fast` (every page's
//! request id = the seals' serial = this request, every back page's drawn seal verifies
//! under the municipality's key from the center's signed trust list, the carried front
//! data is what was signed); the signed name must be the requesting resident's. The
//! full relying-party check is `load_check::check_printed_full`. A failure counts in `misissued`
//! with its detail, never silently; the exit status is then 3.
//!
//! Counting: every request ends in exactly one of issued, refused, errors
//! (`requests == issued + refused + errors`, asserted); what is unfinished at
//! `--time-limit-s` is an error `time_limit`. Latency is end to end per visit (from the
//! scheduled start under `--rate`, so queueing counts); the center's phases come from
//! the `Server-Timing` header of `POST /v1/issuances` when the center sends it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use kiosk_sim::client::{Answered, CenterApi, CenterClient, ClientError};
use kiosk_sim::load_check::{check_printed, parse_server_timing, Expected, Phases};
use kiosk_sim::{check_order, IssueOutcome, Kiosk, KioskError, KioskSettings};
use schemas::outcome::{OutcomeAck, PaymentReport, PrintReport};
use schemas::{
    CardSessionRequest, CardSessionResponse, CertificateKind, CertificateOrder, CertificateType,
    ChallengeRequest, ChallengeResponse, DomicileRegistrationRequest, DomicileRegistrationResponse,
    HouseholdScope, IssuanceRequest, IssuanceResponse, KioskId, Menu, MunicipalityCode,
    MunicipalityDirectory, PublicKey, RequestId, Route, RouteKind, SignedTrustList,
};
use serde::Serialize;
use tokio::time::Instant;

/// Kiosks one run may drive (the sandbox registers 64 per operator, two operators).
pub const MAX_KIOSKS: usize = 128;
/// Requests one run may make (every latency is kept until the summary).
pub const MAX_REQUESTS: usize = 10_000_000;
/// Longest `--time-limit-s`.
pub const MAX_TIME_LIMIT_S: u64 = 86_400;
/// Misissue details kept for the summary (all are in the records file).
const MAX_MISISSUE_DETAILS: usize = 32;
/// Per-call deadline of the generator's kiosks: a dead replica that accepts but never
/// answers costs this much before the fail-over.
const KIOSK_REQUEST_TIMEOUT_MS: u64 = 15_000;

/// `kiosk-sim load` (the contract other tests rely on; see the module documentation).
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Concurrent kiosks (1..=128).
    #[arg(long)]
    pub kiosks: usize,
    /// Requests in all (full visits).
    #[arg(long)]
    pub requests: usize,
    /// Start every party in this process on the embedded defaults (SQLite).
    #[arg(long, conflicts_with = "center")]
    pub local: bool,
    /// A center replica's kiosk API (repeatable); needs --dir.
    #[arg(long = "center", value_name = "URL")]
    pub center: Vec<String>,
    /// The sandbox directory (`kiosk-sim sandbox init`): kiosk credentials, cards,
    /// registers, the center's public key. With --local: a temporary one when absent.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON object on standard output instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Write one JSON line per request into FILE.
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,
    /// Open loop: start this many visits per second (otherwise closed loop).
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Bound of the whole run; what is unfinished then counts as error `time_limit`.
    #[arg(long, default_value_t = 300)]
    pub time_limit_s: u64,
    /// Seed of the resident and certificate choice (a run is replayed with it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the simulated kiosks keep their throwaway files (card copies with their PIN
    /// counters, printed PDFs); a fresh directory is made inside it and removed at the
    /// end. Default: /dev/shm when it exists (memory), else the temporary directory.
    /// Real kiosks each write to their own disk; dozens of simulated ones sharing the
    /// parties' disk would queue their fsyncs behind the databases' durable commits.
    #[arg(long, value_name = "DIR")]
    pub kiosk_dir: Option<PathBuf>,
}

/// Where the centers come from.
enum Target {
    Local { dir: Option<PathBuf> },
    Centers { urls: Vec<String>, dir: PathBuf },
}

impl LoadArgs {
    fn target(&self) -> anyhow::Result<Target> {
        anyhow::ensure!(
            (1..=MAX_KIOSKS).contains(&self.kiosks),
            "--kiosks must be 1..={MAX_KIOSKS} (the sandbox registers 64 kiosks for each of two operators), got {}",
            self.kiosks
        );
        anyhow::ensure!(
            (1..=MAX_REQUESTS).contains(&self.requests),
            "--requests must be 1..={MAX_REQUESTS}, got {}",
            self.requests
        );
        anyhow::ensure!(
            (1..=MAX_TIME_LIMIT_S).contains(&self.time_limit_s),
            "--time-limit-s must be 1..={MAX_TIME_LIMIT_S}"
        );
        if let Some(rate) = self.rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of visits per second"
            );
        }
        match (self.local, self.center.is_empty(), &self.dir) {
            (true, true, dir) => Ok(Target::Local { dir: dir.clone() }),
            (false, false, Some(dir)) => {
                anyhow::ensure!(
                    self.center.len() <= kiosk_sim::configuration::MAX_CENTER_URLS,
                    "at most {} --center URLs",
                    kiosk_sim::configuration::MAX_CENTER_URLS
                );
                Ok(Target::Centers {
                    urls: self.center.clone(),
                    dir: dir.clone(),
                })
            }
            (false, false, None) => anyhow::bail!("--center needs --dir (the sandbox directory)"),
            _ => anyhow::bail!("give either --local or at least one --center URL"),
        }
    }
}

/// How the run ended, for the exit status.
pub struct LoadOutcome {
    pub misissued: u64,
}

/// Runs the load (set-up failures are errors: exit 1).
pub async fn run(args: LoadArgs) -> anyhow::Result<LoadOutcome> {
    let target = args.target()?;
    let run_name = format!("kiosk-sim-load-{}", uuid::Uuid::new_v4());
    // The parties' files (a --local sandbox) stay on disk: their commits are durable.
    let scratch = std::env::temp_dir().join(&run_name);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let kiosk_dir_name = format!("{run_name}-kiosks");
    let kiosk_scratch = match &args.kiosk_dir {
        Some(root) => {
            let dir = root.join(&kiosk_dir_name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
        // Memory when this machine offers it to us; a read-only or missing /dev/shm
        // (some containers) falls back to the parties' temporary directory.
        None => {
            let memory = Path::new("/dev/shm").join(&kiosk_dir_name);
            match std::fs::create_dir_all(&memory) {
                Ok(()) => memory,
                Err(_) => {
                    let dir = scratch.join("kiosks");
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    dir
                }
            }
        }
    };
    let result = run_in(&args, target, &scratch, &kiosk_scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(&kiosk_scratch);
    result
}

async fn run_in(
    args: &LoadArgs,
    target: Target,
    scratch: &Path,
    kiosk_scratch: &Path,
) -> anyhow::Result<LoadOutcome> {
    match target {
        Target::Local { dir } => {
            let dir = match dir {
                Some(dir) => dir,
                None => {
                    let dir = scratch.join("sandbox");
                    sandbox::init(&dir).context("creating a sandbox")?;
                    dir
                }
            };
            // Within every type's hours, as the demo does: the real clock when it
            // suits, else the next open weekday at 10:00 Asia/Tokyo.
            let clock = Arc::new(sandbox::OffsetClock::default());
            let real_now = jiff::Timestamp::now().in_tz(schemas::SERVICE_TIME_ZONE)?;
            if let Some(pinned) = crate::demo::pinned_instant(&real_now)? {
                clock.set_now(pinned.timestamp());
                if !args.json {
                    println!(
                        "the center's clock is pinned to {} (outside service hours now)",
                        pinned.strftime("%Y-%m-%d %H:%M %Z")
                    );
                }
            }
            let running = sandbox::start(
                &dir,
                sandbox::StartOptions {
                    center_clock: Some(clock),
                    ..sandbox::StartOptions::default()
                },
            )
            .await
            .with_context(|| format!("starting the sandbox in {}", dir.display()))?;
            let urls = vec![running.center_url.clone()];
            let result = drive(args, &urls, &dir, kiosk_scratch).await;
            running.stop().await;
            result
        }
        Target::Centers { urls, dir } => drive(args, &urls, &dir, kiosk_scratch).await,
    }
}

/// One resident the generator visits kiosks for.
#[derive(Clone, Debug)]
struct Resident {
    serial: schemas::CardSerial,
    municipality: MunicipalityCode,
    /// The name as the register holds it (the seal must name exactly this person).
    name: String,
    pin: String,
    card_file: PathBuf,
    /// Orders this resident can get now (offered by the menu, issuable for them).
    orders: Vec<CertificateOrder>,
}

/// One planned visit.
#[derive(Clone, Debug)]
struct Job {
    resident: usize,
    order: CertificateOrder,
}

/// What the checks need, shared by every kiosk.
struct Checker {
    trust_list: SignedTrustList,
    center_key: PublicKey,
    /// Center clock − real clock (s), from the center's menu: a center whose clock was
    /// moved forward dates its seals by it.
    center_offset_s: i64,
}

async fn drive(
    args: &LoadArgs,
    urls: &[String],
    dir: &Path,
    scratch: &Path,
) -> anyhow::Result<LoadOutcome> {
    let layout = sandbox::Layout::open(dir)
        .with_context(|| format!("reading the sandbox directory {}", dir.display()))?;
    let settings = kiosk_settings(&layout, urls, args.kiosks)?;
    let probe = CenterClient::new(&settings[0]).context("the kiosk's TLS set-up")?;
    let trust_list = probe
        .trust_list()
        .await
        .with_context(|| format!("no center reachable at {}", urls.join(", ")))?;
    let residents = Arc::new(residents(&layout, &probe).await?);
    anyhow::ensure!(
        !residents.is_empty(),
        "no resident of the sandbox can get any certificate now (service hours?)"
    );
    let checker = Arc::new(Checker {
        center_offset_s: center_clock_offset_s(&probe, residents[0].municipality).await?,
        trust_list,
        center_key: center_key(dir)?,
    });
    let jobs = Arc::new(plan(&residents, args.requests, args.seed));

    let began = Instant::now();
    let deadline = began + Duration::from_secs(args.time_limit_s);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, settings) in settings.into_iter().enumerate() {
        let kiosk_scratch = scratch.join(format!("kiosk-{index:03}"));
        std::fs::create_dir_all(kiosk_scratch.join("cards"))?;
        std::fs::create_dir_all(kiosk_scratch.join("out"))?;
        let center = LoadCenter::new(CenterClient::new(&settings)?);
        let kiosk = Kiosk::new(settings.kiosk_id.clone(), center);
        let runner = KioskRunner {
            kiosk,
            operator: settings.operator_id.to_string(),
            scratch: kiosk_scratch,
            residents: Arc::clone(&residents),
            jobs: Arc::clone(&jobs),
            checker: Arc::clone(&checker),
            next: Arc::clone(&next),
            began,
            deadline,
            rate: args.rate,
        };
        tasks.spawn(runner.run());
    }
    let mut records: Vec<Record> = Vec::with_capacity(args.requests);
    while let Some(joined) = tasks.join_next().await {
        records.extend(joined.context("a kiosk task failed")?);
    }
    let elapsed_s = began.elapsed().as_secs_f64();
    // Jobs no kiosk took (every kiosk stopped at the deadline).
    for index in next.load(Ordering::SeqCst).min(args.requests)..args.requests {
        records.push(Record::unstarted(index, &jobs[index], &residents));
    }
    records.sort_by_key(|r| r.index);
    assert_eq!(records.len(), args.requests, "one record per request");

    if let Some(path) = &args.records {
        write_records(path, &records)?;
    }
    let summary = Summary::of(&records, elapsed_s, args.kiosks, urls);
    assert_eq!(
        summary.requests,
        summary.issued + summary.refused + summary.errors,
        "every request ends issued, refused or in error"
    );
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", summary.text());
    }
    Ok(LoadOutcome {
        misissued: summary.misissued,
    })
}

/// The center's clock minus ours (s): its menu says what time it is there. (Not the
/// trust list's issue time: a center that has run for a while signed its list long
/// ago, and its seals would then look issued in the future.)
async fn center_clock_offset_s(
    center: &CenterClient,
    municipality: MunicipalityCode,
) -> anyhow::Result<i64> {
    let menu = center
        .menu(municipality, RouteKind::Residence)
        .await
        .with_context(|| format!("the menu of {municipality}"))?;
    Ok(menu.as_of_unix_s - jiff::Timestamp::now().as_second())
}

/// Kiosk i: operator `SAMPLE_OPERATORS[i % 2]`, terminal `<operator>-<i / 2 + 1>`,
/// primary center `urls[i % n]`, the others its fall-backs in order.
fn kiosk_settings(
    layout: &sandbox::Layout,
    urls: &[String],
    kiosks: usize,
) -> anyhow::Result<Vec<KioskSettings>> {
    let operators: Vec<KioskSettings> = layout
        .kiosk_configs
        .iter()
        .map(|(operator, path)| {
            KioskSettings::load(path)
                .with_context(|| format!("kiosk settings of {operator} ({})", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!operators.is_empty(), "the sandbox has no kiosk settings");
    let per_operator = sandbox::SAMPLE_OPERATORS
        .iter()
        .map(|(_, count)| *count)
        .min()
        .unwrap_or(0);
    anyhow::ensure!(
        kiosks <= per_operator * operators.len(),
        "--kiosks {kiosks}: the sandbox registers {per_operator} kiosks for each of {} operators",
        operators.len()
    );
    (0..kiosks)
        .map(|i| {
            let mut settings = operators[i % operators.len()].clone();
            settings.kiosk_id = KioskId::parse(format!(
                "{}-{:04}",
                settings.operator_id,
                i / operators.len() + 1
            ))
            .map_err(|e| anyhow::anyhow!("kiosk id: {e}"))?;
            let primary = i % urls.len();
            settings.center_url = urls[primary].clone();
            settings.fallback_center_urls = (1..urls.len())
                .map(|step| urls[(primary + step) % urls.len()].clone())
                .collect();
            settings.request_timeout_ms = KIOSK_REQUEST_TIMEOUT_MS;
            settings.validate()?;
            Ok(settings)
        })
        .collect()
}

/// The center's public key (it signs the trust list), from the sandbox's center
/// settings (`center_key_path`, a base64 seed).
fn center_key(dir: &Path) -> anyhow::Result<PublicKey> {
    let config = dir.join("center.toml");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let table: toml::Table = text.parse().context("center.toml")?;
    let path = table
        .get("center_key_path")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .context("center.toml has no center_key_path")?;
    let path = if path.is_relative() {
        dir.join(path)
    } else {
        path
    };
    let seed =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = schemas::KeyPair::from_seed_base64(seed.trim())
        .map_err(|e| anyhow::anyhow!("center key {}: {e}", path.display()))?;
    Ok(key.public())
}

/// The orders the generator mixes: 住民票 and 記載事項 for everyone, 印鑑登録証明書 for
/// residents with an active seal registration; each kept only when the resident's
/// municipality offers it now (its menu).
fn candidate_orders(has_seal: bool) -> Vec<CertificateOrder> {
    let order = |certificate| CertificateOrder {
        route: Route::Residence,
        certificate,
        copies: 1,
    };
    let mut orders = vec![
        order(CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        }),
        order(CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::SelfOnly,
            include_relationship: false,
        }),
    ];
    if has_seal {
        orders.push(order(CertificateKind::SealRegistration));
    }
    orders
}

/// Every plain issuable resident of the sandbox (the special cards — expired, revoked,
/// unregistered, and the sample's refusal cases — are left out, so a normal run has
/// no refusals), with the orders each can get now.
async fn residents(
    layout: &sandbox::Layout,
    center: &CenterClient,
) -> anyhow::Result<Vec<Resident>> {
    let mut menus: BTreeMap<MunicipalityCode, Menu> = BTreeMap::new();
    let mut sealed: BTreeMap<MunicipalityCode, Vec<String>> = BTreeMap::new();
    let mut residents = Vec::new();
    for card in &layout.cards {
        if card.kind != sandbox::CardKind::Resident {
            continue;
        }
        let code = card.municipality.to_string();
        let suffix: usize = card.serial.as_str()[code.len()..].parse().unwrap_or(0);
        if suffix == 0 || suffix > municipal_adapter::samples::issuable_card_count(&code) {
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = menus.entry(card.municipality) {
            let menu = center
                .menu(card.municipality, RouteKind::Residence)
                .await
                .with_context(|| format!("the menu of {code}"))?;
            slot.insert(menu);
            sealed.insert(card.municipality, sealed_cards(&layout.register_dir(&code)));
        }
        let menu = &menus[&card.municipality];
        let has_seal = sealed[&card.municipality]
            .iter()
            .any(|s| s == card.serial.as_str());
        let orders: Vec<CertificateOrder> = candidate_orders(has_seal)
            .into_iter()
            .filter(|order| check_order(menu, order).is_ok())
            .collect();
        if orders.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(&card.path)
            .with_context(|| format!("reading {}", card.path.display()))?;
        let file: schemas::CardFile = serde_json::from_str(&text)
            .with_context(|| format!("card file {}", card.path.display()))?;
        residents.push(Resident {
            serial: card.serial.clone(),
            municipality: card.municipality,
            name: card.holder_name.clone(),
            pin: file.pin,
            card_file: card.path.clone(),
            orders,
        });
    }
    Ok(residents)
}

/// Card serials whose resident has an active seal registration, from the register
/// files the sandbox imported (`cards.csv`, `seal_registrations.csv`). Unreadable
/// files: none (the generator then orders no 印鑑登録証明書 there).
fn sealed_cards(register_dir: &Path) -> Vec<String> {
    let rows = |file: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(register_dir.join(file))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|line| line.split(',').map(str::to_owned).collect())
            .collect()
    };
    let active: Vec<String> = rows("seal_registrations.csv")
        .into_iter()
        .filter(|row| row.get(3).is_some_and(|status| status == "active"))
        .filter_map(|row| row.into_iter().next())
        .collect();
    rows("cards.csv")
        .into_iter()
        .filter(|row| row.get(1).is_some_and(|resident| active.contains(resident)))
        .filter_map(|row| row.into_iter().next())
        .collect()
}

/// splitmix64: a small seeded generator, so a run is replayed with `--seed`.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0);
        (self.next_u64() % bound as u64) as usize
    }
}

fn plan(residents: &[Resident], requests: usize, seed: u64) -> Vec<Job> {
    let mut rng = SplitMix(seed);
    (0..requests)
        .map(|_| {
            let resident = rng.below(residents.len());
            let orders = &residents[resident].orders;
            Job {
                resident,
                order: orders[rng.below(orders.len())].clone(),
            }
        })
        .collect()
}

/// What one visit left in the center link (reset before each visit).
#[derive(Debug, Default)]
struct VisitTrace {
    server_timing: Option<String>,
    center_url: Option<String>,
}

/// The kiosk's center link for the generator: the real client (with fail-over), and
/// what the issuance's answer said about where it was made and how long it took.
struct LoadCenter {
    client: CenterClient,
    trace: Mutex<VisitTrace>,
}

impl LoadCenter {
    fn new(client: CenterClient) -> Self {
        Self {
            client,
            trace: Mutex::new(VisitTrace::default()),
        }
    }

    fn take_trace(&self) -> VisitTrace {
        std::mem::take(&mut *self.trace.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, answered: &Answered<IssuanceResponse>) {
        let mut trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        trace.server_timing.clone_from(&answered.server_timing);
        trace.center_url = Some(answered.center_url.clone());
    }
}

impl CenterApi for LoadCenter {
    fn request_challenge(
        &self,
        request: &ChallengeRequest,
    ) -> impl std::future::Future<Output = Result<ChallengeResponse, ClientError>> + Send {
        self.client.request_challenge(request)
    }

    fn open_card_session(
        &self,
        request: &CardSessionRequest,
    ) -> impl std::future::Future<Output = Result<CardSessionResponse, ClientError>> + Send {
        self.client.open_card_session(request)
    }

    async fn request_issuance(
        &self,
        request: &IssuanceRequest,
    ) -> Result<IssuanceResponse, ClientError> {
        let answered = self.client.issue_traced(request).await?;
        self.record(&answered);
        Ok(answered.value)
    }

    fn municipalities(
        &self,
    ) -> impl std::future::Future<Output = Result<MunicipalityDirectory, ClientError>> + Send {
        self.client.municipalities()
    }

    fn menu(
        &self,
        municipality: MunicipalityCode,
        route: RouteKind,
    ) -> impl std::future::Future<Output = Result<Menu, ClientError>> + Send {
        self.client.menu(municipality, route)
    }

    fn register_domicile(
        &self,
        request: &DomicileRegistrationRequest,
    ) -> impl std::future::Future<Output = Result<DomicileRegistrationResponse, ClientError>> + Send
    {
        self.client.register_domicile(request)
    }

    fn report_payment(
        &self,
        request_id: RequestId,
        report: &PaymentReport,
    ) -> impl std::future::Future<Output = Result<OutcomeAck, ClientError>> + Send {
        self.client.report_payment(request_id, report)
    }

    fn report_print(
        &self,
        request_id: RequestId,
        report: &PrintReport,
    ) -> impl std::future::Future<Output = Result<OutcomeAck, ClientError>> + Send {
        self.client.report_print(request_id, report)
    }
}

/// One request's outcome (one line of `--records`).
#[derive(Debug, Serialize)]
struct Record {
    #[serde(skip)]
    index: usize,
    idempotency_key: Option<String>,
    request_id: Option<String>,
    kiosk_id: Option<String>,
    operator: Option<String>,
    card_serial: String,
    municipality: String,
    certificate_type: &'static str,
    /// `issued` | `refused` | `error`.
    outcome: &'static str,
    /// The refusal reason or the error kind.
    reason: Option<String>,
    /// Set when the printed document failed the check.
    misissue: Option<String>,
    center_url: Option<String>,
    failovers: u64,
    latency_ms: Option<f64>,
    #[serde(skip)]
    phases: Phases,
    #[serde(skip)]
    checked_pdf: bool,
}

impl Record {
    fn new(index: usize, job: &Job, residents: &[Resident]) -> Self {
        let resident = &residents[job.resident];
        Self {
            index,
            idempotency_key: None,
            request_id: None,
            kiosk_id: None,
            operator: None,
            card_serial: resident.serial.to_string(),
            municipality: resident.municipality.to_string(),
            certificate_type: job.order.certificate.certificate_type().as_str(),
            outcome: "error",
            reason: None,
            misissue: None,
            center_url: None,
            failovers: 0,
            latency_ms: None,
            phases: Phases::default(),
            checked_pdf: false,
        }
    }

    fn unstarted(index: usize, job: &Job, residents: &[Resident]) -> Self {
        let mut record = Self::new(index, job, residents);
        record.reason = Some("time_limit".into());
        record
    }
}

struct KioskRunner {
    kiosk: Kiosk<LoadCenter>,
    operator: String,
    scratch: PathBuf,
    residents: Arc<Vec<Resident>>,
    jobs: Arc<Vec<Job>>,
    checker: Arc<Checker>,
    next: Arc<AtomicUsize>,
    began: Instant,
    deadline: Instant,
    rate: Option<f64>,
}

impl KioskRunner {
    async fn run(mut self) -> Vec<Record> {
        let mut records = Vec::new();
        loop {
            let index = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(job) = self.jobs.get(index).cloned() else {
                break;
            };
            let scheduled = self
                .rate
                .map(|rate| self.began + Duration::from_secs_f64(index as f64 / rate));
            if let Some(at) = scheduled {
                tokio::time::sleep_until(at.min(self.deadline)).await;
            }
            let mut record = Record::new(index, &job, &self.residents);
            record.kiosk_id = Some(self.kiosk.kiosk_id().to_string());
            record.operator = Some(self.operator.clone());
            let started = scheduled.unwrap_or_else(Instant::now);
            if Instant::now() >= self.deadline {
                record.reason = Some("time_limit".into());
                records.push(record);
                continue;
            }
            let failovers_before = self.kiosk.center().client.failovers();
            let deadline = self.deadline;
            if tokio::time::timeout_at(deadline, self.visit(&job, &mut record))
                .await
                .is_err()
            {
                record.outcome = "error";
                record.reason = Some("time_limit".into());
            }
            record.failovers = self.kiosk.center().client.failovers() - failovers_before;
            record.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            records.push(record);
        }
        // Reports a failed send left behind go out now (bounded by the outbox).
        if !self.kiosk.outbox().is_empty() && Instant::now() < self.deadline {
            let _ = tokio::time::timeout_at(self.deadline, self.kiosk.flush_outbox()).await;
        }
        records
    }

    /// One full visit; fills `record` as it goes.
    async fn visit(&mut self, job: &Job, record: &mut Record) {
        let resident = &self.residents[job.resident];
        let card = match self.card_copy(resident) {
            Ok(card) => card,
            Err(error) => {
                record.reason = Some(format!("card_copy: {error}"));
                return;
            }
        };
        let key = match kiosk_sim::session::fresh_idempotency_key() {
            Ok(key) => key,
            Err(error) => {
                record.reason = Some(error.code().to_owned());
                return;
            }
        };
        record.idempotency_key = Some(key.to_string());
        self.kiosk.center().take_trace();
        let out = self.scratch.join("out");
        let result = self
            .kiosk
            .issue_with_key(key, &card, &resident.pin, job.order.clone(), &out)
            .await;
        let trace = self.kiosk.center().take_trace();
        record.center_url = trace.center_url;
        if let Some(header) = &trace.server_timing {
            record.phases = parse_server_timing(header);
        }
        match result {
            Ok(IssueOutcome::Printed(document)) => {
                record.request_id = Some(document.request_id.to_string());
                record.outcome = "issued";
                record.checked_pdf = true;
                let pdf = std::fs::read(&document.pdf_path);
                let _ = std::fs::remove_file(&document.pdf_path);
                let checked = match pdf {
                    Ok(pdf) => {
                        let checker = Arc::clone(&self.checker);
                        let name = resident.name.clone();
                        let (request_id, sha256, page_count) =
                            (document.request_id, document.sha256, document.page_count);
                        tokio::task::spawn_blocking(move || {
                            let now_s =
                                jiff::Timestamp::now().as_second() + checker.center_offset_s;
                            check_printed(
                                &pdf,
                                &Expected {
                                    request_id,
                                    sha256,
                                    page_count,
                                    resident_name: &name,
                                },
                                &checker.trust_list,
                                &checker.center_key,
                                now_s,
                            )
                        })
                        .await
                        .unwrap_or_else(|e| Err(format!("the check panicked: {e}")))
                    }
                    Err(error) => Err(format!("the printed PDF is unreadable: {error}")),
                };
                if let Err(detail) = checked {
                    record.misissue = Some(detail);
                }
            }
            Ok(IssueOutcome::Refused {
                request_id, reason, ..
            }) => {
                record.request_id = Some(request_id.to_string());
                record.outcome = "refused";
                record.reason = Some(reason.as_str().to_owned());
            }
            Ok(other) => {
                record.request_id = Some(other.request_id().to_string());
                record.reason = Some(
                    match other {
                        IssueOutcome::Voided { .. } => "voided",
                        IssueOutcome::Refunded { .. } => "refunded",
                        IssueOutcome::PrintUnknown { .. } => "print_unknown",
                        IssueOutcome::Printed(_) | IssueOutcome::Refused { .. } => "internal",
                    }
                    .to_owned(),
                );
            }
            Err(KioskError::NotOnMenu(refusal)) => {
                // The kiosk's own refusal against the menu (nothing sent).
                record.outcome = "refused";
                record.reason = Some(format!("menu_{}", refusal.code()));
            }
            Err(error) => {
                record.request_id = error.request_id().map(|id| id.to_string());
                if let KioskError::DocumentNotOurs { source, .. } = &error {
                    // The center handed over a document the kiosk refused to print.
                    record.misissue = Some(format!("kiosk refused the document: {source}"));
                }
                record.reason = Some(error.code().to_owned());
            }
        }
    }

    /// This kiosk's own copy of the resident's card file: the card keeps its PIN
    /// counter in its file, and two kiosks must never write one file at once.
    fn card_copy(&self, resident: &Resident) -> std::io::Result<PathBuf> {
        let path = self
            .scratch
            .join("cards")
            .join(format!("{}.json", resident.serial));
        if !path.exists() {
            std::fs::copy(&resident.card_file, &path)?;
        }
        Ok(path)
    }
}

fn write_records(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// p50/p99 of one measured quantity.
#[derive(Debug, Serialize)]
struct Percentiles {
    p50_ms: f64,
    p99_ms: f64,
    count: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` without samples.
    fn of(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            (samples[index] * 1000.0).round() / 1000.0
        };
        Some(Self {
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            count: samples.len(),
        })
    }
}

#[derive(Debug, Serialize)]
struct PhaseSummary {
    card_check: Option<Percentiles>,
    municipality: Option<Percentiles>,
    composition: Option<Percentiles>,
    /// The center's own time minus the municipality's hop, per request.
    center_added: Option<Percentiles>,
    end_to_end: Option<Percentiles>,
}

/// The `--json` object (and the text summary's content).
#[derive(Debug, Serialize)]
struct Summary {
    requests: u64,
    issued: u64,
    refused: u64,
    errors: u64,
    misissued: u64,
    /// Issued visits per second of the run.
    throughput_per_s: f64,
    /// End to end per issued visit.
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    phases: PhaseSummary,
    elapsed_s: f64,
    kiosks: usize,
    centers: Vec<String>,
    refusal_reasons: BTreeMap<String, u64>,
    error_kinds: BTreeMap<String, u64>,
    checked_pdfs: u64,
    failovers: u64,
    /// The first misissues (request id: what failed); all are in the records file.
    misissue_details: Vec<String>,
}

impl Summary {
    fn of(records: &[Record], elapsed_s: f64, kiosks: usize, centers: &[String]) -> Self {
        let count = |outcome: &str| records.iter().filter(|r| r.outcome == outcome).count() as u64;
        let issued: Vec<&Record> = records.iter().filter(|r| r.outcome == "issued").collect();
        let mut refusal_reasons = BTreeMap::new();
        let mut error_kinds = BTreeMap::new();
        for record in records {
            let reason = record.reason.clone().unwrap_or_else(|| "unknown".into());
            match record.outcome {
                "refused" => *refusal_reasons.entry(reason).or_insert(0) += 1,
                "error" => *error_kinds.entry(reason).or_insert(0) += 1,
                _ => {}
            }
        }
        let phase = |pick: fn(&Phases) -> Option<f64>| {
            Percentiles::of(issued.iter().filter_map(|r| pick(&r.phases)).collect())
        };
        let end_to_end = Percentiles::of(issued.iter().filter_map(|r| r.latency_ms).collect());
        let misissued: Vec<&Record> = records.iter().filter(|r| r.misissue.is_some()).collect();
        Self {
            requests: records.len() as u64,
            issued: issued.len() as u64,
            refused: count("refused"),
            errors: count("error"),
            misissued: misissued.len() as u64,
            throughput_per_s: if elapsed_s > 0.0 {
                (issued.len() as f64 / elapsed_s * 100.0).round() / 100.0
            } else {
                0.0
            },
            p50_ms: end_to_end.as_ref().map(|p| p.p50_ms),
            p99_ms: end_to_end.as_ref().map(|p| p.p99_ms),
            phases: PhaseSummary {
                card_check: phase(|p| p.card_check_ms),
                municipality: phase(|p| p.municipality_ms),
                composition: phase(|p| p.composition_ms),
                center_added: phase(Phases::center_added_ms),
                end_to_end,
            },
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            kiosks,
            centers: centers.to_vec(),
            refusal_reasons,
            error_kinds,
            checked_pdfs: records.iter().filter(|r| r.checked_pdf).count() as u64,
            failovers: records.iter().map(|r| r.failovers).sum(),
            misissue_details: misissued
                .iter()
                .take(MAX_MISISSUE_DETAILS)
                .map(|r| {
                    format!(
                        "{}: {}",
                        r.request_id.as_deref().unwrap_or("(no request id)"),
                        r.misissue.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
        }
    }

    fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        let _ = writeln!(
            out,
            "{} requests by {} kiosks against {} in {:.1} s",
            self.requests,
            self.kiosks,
            self.centers.join(", "),
            self.elapsed_s
        );
        let _ = writeln!(
            out,
            "  issued {}, refused {}, errors {}, MISISSUED {} ({} PDFs checked), fail-overs {}",
            self.issued,
            self.refused,
            self.errors,
            self.misissued,
            self.checked_pdfs,
            self.failovers
        );
        let _ = writeln!(
            out,
            "  throughput {:.1} issued/s; end to end p50 {} p99 {}",
            self.throughput_per_s,
            ms(self.p50_ms),
            ms(self.p99_ms)
        );
        for (name, phase) in [
            ("card check", &self.phases.card_check),
            ("municipality", &self.phases.municipality),
            ("composition", &self.phases.composition),
            ("center added", &self.phases.center_added),
        ] {
            match phase {
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "  {name:<13} p50 {:.1} ms p99 {:.1} ms ({} samples)",
                        p.p50_ms, p.p99_ms, p.count
                    );
                }
                None => {
                    let _ = writeln!(out, "  {name:<13} - (no Server-Timing from the center)");
                }
            }
        }
        for (reason, count) in &self.refusal_reasons {
            let _ = writeln!(out, "  refused {reason}: {count}");
        }
        for (kind, count) in &self.error_kinds {
            let _ = writeln!(out, "  error {kind}: {count}");
        }
        for detail in &self.misissue_details {
            let _ = writeln!(out, "  MISISSUED {detail}");
        }
        out
    }
}

/// The certificate types the generator may order (for the documentation).
#[allow(dead_code)]
const MIXED_TYPES: [CertificateType; 3] = [
    CertificateType::ResidentRecord,
    CertificateType::ResidentRecordItems,
    CertificateType::SealRegistration,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(samples).unwrap();
        assert_eq!((p.p50_ms, p.p99_ms, p.count), (50.0, 99.0, 100));
        let one = Percentiles::of(vec![7.0]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert!(Percentiles::of(Vec::new()).is_none());
    }

    #[test]
    fn the_plan_is_replayed_by_its_seed_and_uses_every_order_kind() {
        let resident = |orders: Vec<CertificateOrder>| Resident {
            serial: schemas::CardSerial::parse("2121130000000001").unwrap(),
            municipality: MunicipalityCode::parse("212113").unwrap(),
            name: "髙橋 健一".into(),
            pin: "1234".into(),
            card_file: PathBuf::from("x"),
            orders,
        };
        let residents = vec![
            resident(candidate_orders(true)),
            resident(candidate_orders(false)),
        ];
        let a = plan(&residents, 200, 7);
        let b = plan(&residents, 200, 7);
        let kinds = |jobs: &[Job]| {
            jobs.iter()
                .map(|j| (j.resident, j.order.certificate.certificate_type()))
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&a), kinds(&b));
        assert_ne!(kinds(&a), kinds(&plan(&residents, 200, 8)));
        for ty in MIXED_TYPES {
            assert!(a
                .iter()
                .any(|j| j.order.certificate.certificate_type() == ty));
        }
        // The resident without a seal registration is never sent for one.
        assert!(a.iter().all(|j| j.resident == 0
            || j.order.certificate.certificate_type() != CertificateType::SealRegistration));
    }

    #[test]
    fn flags_are_checked_before_anything_starts() {
        let args = |kiosks: usize, local: bool, center: Vec<&str>, dir: Option<&str>| LoadArgs {
            kiosks,
            requests: 10,
            local,
            center: center.into_iter().map(str::to_owned).collect(),
            dir: dir.map(PathBuf::from),
            json: true,
            records: None,
            rate: None,
            time_limit_s: 300,
            seed: 1,
            kiosk_dir: None,
        };
        assert!(args(4, true, vec![], None).target().is_ok());
        assert!(args(129, true, vec![], None).target().is_err());
        assert!(args(0, true, vec![], None).target().is_err());
        assert!(args(4, false, vec![], None).target().is_err());
        assert!(args(4, false, vec!["https://127.0.0.1:1"], None)
            .target()
            .is_err());
        assert!(args(4, false, vec!["https://127.0.0.1:1"], Some("d"))
            .target()
            .is_ok());
        let mut bad_rate = args(4, true, vec![], None);
        bad_rate.rate = Some(0.0);
        assert!(bad_rate.target().is_err());
    }
}
