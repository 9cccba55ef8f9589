//! Test support for the end-to-end suites: a fresh sandbox per test (its own
//! directory, its own center database on SQLite or PostgreSQL), started in-process on
//! loopback ports with real mTLS, plus helpers to read the PDFs a kiosk printed.

pub mod books;
pub mod deployment;
pub mod latency_proxy;
pub mod load;
pub mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sandbox::{CardInfo, CardKind, RunningSandbox, StartOptions};
use schemas::{CardFile, CertificateKind, CertificateOrder, HouseholdScope, Route};

/// Runs each listed test body (an `async fn(Backend)` in the calling file) against
/// both back-ends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(e2e::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(e2e::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Where every sandbox's center clock starts unless a test moves it: a Wednesday
/// morning that is no holiday, so that every certificate type (戸籍: weekdays
/// 08:30–17:15) is within its hours whatever the real time of the test run.
pub const BUSINESS_MORNING: &str = "2026-11-25T10:00:00+09:00";

/// Which database the center uses in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// PostgreSQL server for the tests (a fresh database is created per test).
pub fn postgres_base_url() -> String {
    std::env::var("KOFU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A fresh, empty PostgreSQL database; `None` (test skipped) only outside CI when no
/// server answers. In CI a missing server fails the test.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    let base = postgres_base_url();
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(conn) => conn,
        Err(error) => {
            assert!(!in_ci(), "PostgreSQL at {base} is required in CI: {error}");
            eprintln!("skipping: no PostgreSQL at {base}: {error}");
            return None;
        }
    };
    let name = format!("kofu_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    Some(format!("{prefix}/{name}"))
}

/// Drops a per-test database (best effort: a leftover only costs disk).
async fn drop_postgres_database(url: &str) {
    use sqlx::Connection as _;
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_base_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

pub struct TestSandbox {
    pub running: RunningSandbox,
    /// The center's clock: the real clock shifted to [`BUSINESS_MORNING`] at start;
    /// [`TestSandbox::set_clock`] moves it.
    pub clock: Arc<center::clock::OffsetClock>,
    /// The per-test PostgreSQL database, dropped by `stop`.
    postgres_url: Option<String>,
    pub dir: PathBuf,
    pub out: PathBuf,
    _tmp: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("kofu-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a sandbox; `tweak` may edit its files (fault modes, certificates) before
/// the parties start. `None` when the backend is unavailable outside CI.
pub async fn spawn_sandbox_with(
    backend: Backend,
    tweak: impl FnOnce(&sandbox::Layout),
) -> Option<TestSandbox> {
    let tmp = TempDir::new("e2e");
    let dir = tmp.path().join("sandbox");
    let layout = sandbox::init(&dir).expect("sandbox init");
    tweak(&layout);
    let center_database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_database().await?),
    };
    let clock = Arc::new(center::clock::OffsetClock::default());
    set_offset_clock(&clock, BUSINESS_MORNING);
    let running = sandbox::start(
        &dir,
        StartOptions {
            center_database_url: center_database_url.clone(),
            center_clock: Some(clock.clone()),
        },
    )
    .await
    .expect("sandbox start");
    let out = tmp.path().join("out");
    Some(TestSandbox {
        running,
        clock,
        postgres_url: center_database_url,
        dir,
        out,
        _tmp: tmp,
    })
}

pub async fn spawn_sandbox(backend: Backend) -> Option<TestSandbox> {
    spawn_sandbox_with(backend, |_| {}).await
}

/// Shifts `clock` so that it reads `instant` (RFC 3339) now and runs on from there.
pub fn set_offset_clock(clock: &center::clock::OffsetClock, instant: &str) {
    clock.set_now(instant.parse().expect("RFC 3339 instant"));
}

impl TestSandbox {
    /// How far the center's clock is from the real one.
    pub fn clock_offset_ms(&self) -> i64 {
        use center::clock::Clock as _;
        self.clock.now_unix_ms() - jiff::Timestamp::now().as_millisecond()
    }

    /// Moves the center's clock (every date rule of a request follows it).
    pub fn set_clock(&self, instant: &str) {
        set_offset_clock(&self.clock, instant);
    }

    /// The sandbox card with this serial.
    pub fn card(&self, serial: &str) -> &CardInfo {
        self.running
            .layout
            .cards
            .iter()
            .find(|c| c.serial.as_str() == serial)
            .unwrap_or_else(|| panic!("no sandbox card {serial}"))
    }

    /// An issuance request sent straight to the center the way any kiosk would (fresh
    /// challenge, the card signs after its PIN), without kiosk-sim's own menu check:
    /// what the center itself decides.
    pub async fn direct_issue(
        &self,
        card: &CardInfo,
        order: CertificateOrder,
    ) -> Result<schemas::IssuanceResponse, kiosk_sim::ClientError> {
        let key = uuid::Uuid::new_v4().to_string();
        self.direct_issue_with_key(card, order, &key).await
    }

    /// [`Self::direct_issue`] under a chosen idempotency key (a fresh challenge and
    /// card signature each time, as a kiosk replaying a session would send).
    pub async fn direct_issue_with_key(
        &self,
        card: &CardInfo,
        order: CertificateOrder,
        key: &str,
    ) -> Result<schemas::IssuanceResponse, kiosk_sim::ClientError> {
        let settings = self.kiosk_settings("seven", "seven-0064");
        let client = kiosk_sim::CenterClient::new(&settings)?;
        let challenge = client.challenge().await?;
        let nonce = challenge.nonce.as_slice().to_vec();
        let request = signed_request(
            &card.path,
            &pin_of(card),
            &settings.kiosk_id,
            key,
            &nonce,
            order,
        );
        client.issue(&request).await
    }

    /// 利用登録 from kiosk seven-0001 with the card's own PIN.
    pub async fn register_domicile(
        &self,
        card: &CardInfo,
        registration: schemas::DomicileRegistration,
    ) -> Result<schemas::DomicileRegistrationResponse, kiosk_sim::KioskError> {
        self.kiosk()
            .register_domicile(&card.path, &pin_of(card), registration)
            .await
    }

    /// The 本籍地's clerk approves a registration for `person` (the adapter's admin
    /// path, against the adapter's own database).
    pub async fn approve_domicile(
        &self,
        registration_id: schemas::RequestId,
        person: municipal_adapter::register::FamilyRegisterRef,
        municipality: &str,
    ) {
        self.running
            .approve_domicile(municipality, registration_id, &person)
            .await
            .expect("approved");
    }

    pub async fn reject_domicile(&self, registration_id: schemas::RequestId, municipality: &str) {
        self.running
            .reject_domicile(municipality, registration_id)
            .await
            .expect("rejected");
    }

    /// One session ordering `certificate` through `route`, one copy.
    pub async fn order(
        &self,
        card: &CardInfo,
        route: Route,
        certificate: CertificateKind,
    ) -> Result<kiosk_sim::IssueOutcome, kiosk_sim::KioskError> {
        self.issue(
            card,
            CertificateOrder {
                route,
                certificate,
                copies: 1,
            },
        )
        .await
    }

    pub fn kiosk_settings(&self, operator: &str, kiosk_id: &str) -> kiosk_sim::KioskSettings {
        let path = self.running.kiosk_config(operator).expect("kiosk config");
        let mut settings = kiosk_sim::KioskSettings::load(path).expect("kiosk settings");
        settings.kiosk_id = schemas::KioskId::parse(kiosk_id).expect("kiosk id");
        settings
    }

    pub fn kiosk(&self) -> kiosk_sim::Kiosk {
        kiosk_sim::Kiosk::from_settings(&self.kiosk_settings("seven", "seven-0001")).expect("kiosk")
    }

    /// One resident session at kiosk seven-0001 with the card's own PIN; the PDF, if
    /// any, is written into `self.out`.
    pub async fn issue(
        &self,
        card: &CardInfo,
        order: CertificateOrder,
    ) -> Result<kiosk_sim::IssueOutcome, kiosk_sim::KioskError> {
        self.kiosk()
            .issue(&card.path, &pin_of(card), order, &self.out)
            .await
    }

    pub fn cards(&self, kind: CardKind) -> Vec<&CardInfo> {
        self.running
            .layout
            .cards
            .iter()
            .filter(|c| c.kind == kind)
            .collect()
    }

    /// Resident cards whose certificate the sample registers issue and the font can
    /// print (not the special residents the rules refuse).
    pub fn printable_resident_cards(&self) -> Vec<&CardInfo> {
        self.cards(CardKind::Resident)
            .into_iter()
            .filter(|c| {
                municipal_adapter::samples::issuable_cards(&c.municipality.to_string())
                    .contains(&c.serial)
            })
            .collect()
    }

    pub fn card_with_name_containing(&self, needle: &str) -> &CardInfo {
        self.running
            .layout
            .cards
            .iter()
            .find(|c| c.holder_name.contains(needle))
            .unwrap_or_else(|| panic!("no card holder named with {needle}"))
    }

    /// Stops every party and starts them again from the sandbox directory, on the same
    /// center database and clock: what an operator does after editing settings files
    /// (a key rotation, a revocation). Printed PDFs stay in `out`.
    pub async fn restart(self) -> Self {
        let Self {
            running,
            clock,
            postgres_url,
            dir,
            out,
            _tmp,
        } = self;
        running.center_pool.close().await;
        running.stop().await;
        let running = sandbox::start(
            &dir,
            StartOptions {
                center_database_url: postgres_url.clone(),
                center_clock: Some(clock.clone()),
            },
        )
        .await
        .expect("sandbox restart");
        Self {
            running,
            clock,
            postgres_url,
            dir,
            out,
            _tmp,
        }
    }

    pub async fn stop(self) {
        self.running.center_pool.close().await;
        self.running.stop().await;
        if let Some(url) = &self.postgres_url {
            drop_postgres_database(url).await;
        }
    }
}

/// Builds a signed issuance request by hand (the card signs after its PIN).
pub fn signed_request(
    card_path: &Path,
    pin: &str,
    kiosk_id: &schemas::KioskId,
    key: &str,
    nonce: &[u8],
    order: CertificateOrder,
) -> schemas::IssuanceRequest {
    let mut card = kiosk_sim::SimCard::open(card_path).expect("card file");
    let session = card.verify_pin(pin).expect("right PIN");
    let idempotency_key = schemas::IdempotencyKey::parse(key).expect("key");
    let digest = schemas::order_digest(kiosk_id, &idempotency_key, &order).expect("digest");
    schemas::IssuanceRequest {
        idempotency_key,
        kiosk_id: kiosk_id.clone(),
        order,
        card: schemas::CardProof::Signed(Box::new(schemas::SignedByCard {
            challenge_nonce: nonce.to_vec().into(),
            card_certificate: session.certificate().clone(),
            card_signature: session.sign_auth(nonce, digest).expect("card signs"),
        })),
    }
}

pub fn card_file(card: &CardInfo) -> CardFile {
    let text = std::fs::read_to_string(&card.path).expect("card file");
    serde_json::from_str(&text).expect("card json")
}

pub fn pin_of(card: &CardInfo) -> String {
    card_file(card).pin
}

pub fn resident_record(scope: HouseholdScope) -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope,
            include_domicile: true,
            include_relationship: true,
        },
        copies: 1,
    }
}

/// Text of a PDF as `pdftotext` extracts it (poppler-utils; scripts/test installs it).
pub fn pdf_text(path: &Path) -> String {
    let output = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed: run scripts/test");
    assert!(
        output.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 text")
}

/// Text without the spaces and line breaks layout inserts.
pub fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{3000}')
        .collect()
}

/// The request id in every page dictionary of a PDF.
pub fn page_request_ids(path: &Path) -> Vec<String> {
    let doc = lopdf::Document::load(path).expect("valid PDF");
    doc.get_pages()
        .values()
        .map(|id| {
            let page = doc.get_dictionary(*id).expect("page dictionary");
            let value = page
                .get(schemas::PDF_PAGE_REQUEST_ID_KEY.as_bytes())
                .expect("page carries its request id");
            String::from_utf8(value.as_str().expect("string").to_vec()).expect("utf-8")
        })
        .collect()
}

/// Names of the fonts embedded in a PDF (`BaseFont` of every font dictionary).
pub fn embedded_font_names(path: &Path) -> Vec<String> {
    let doc = lopdf::Document::load(path).expect("valid PDF");
    let mut names = Vec::new();
    for object in doc.objects.values() {
        if let Ok(dict) = object.as_dict() {
            let is_descriptor = dict
                .get(b"Type")
                .and_then(|t| t.as_name())
                .is_ok_and(|n| n == b"FontDescriptor");
            let embedded =
                dict.has(b"FontFile2") || dict.has(b"FontFile3") || dict.has(b"FontFile");
            if is_descriptor && embedded {
                if let Ok(name) = dict.get(b"FontName").and_then(|n| n.as_name()) {
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    names
}

/// PDFs a kiosk printed into `dir`.
pub fn pdfs_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pdf"))
                .count()
        })
        .unwrap_or(0)
}

/// Sets `[timeouts]` entries of the center's settings before start.
pub fn set_center_timeouts(layout: &sandbox::Layout, entries: &[(&str, i64)]) {
    set_center_integers(layout, "timeouts", entries);
}

/// Sets integer entries of the center's `[notices]` table (delivery of outcome
/// notices), creating the table when the settings have none.
pub fn set_center_notices(layout: &sandbox::Layout, entries: &[(&str, i64)]) {
    set_center_integers(layout, "notices", entries);
}

fn set_center_integers(layout: &sandbox::Layout, table: &str, entries: &[(&str, i64)]) {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let values = config
        .entry(table)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("[{table}] is a table"));
    for (key, value) in entries {
        values.insert((*key).into(), toml::Value::Integer(*value));
    }
    std::fs::write(
        &layout.center_config,
        toml::to_string(&config).expect("toml"),
    )
    .expect("write");
}

/// Appends a `[fault]` table (test-only fault injection) to every adapter's settings.
pub fn set_adapter_fault(layout: &sandbox::Layout, mode: &str, delay_ms: u64) {
    for (_, path) in &layout.adapter_configs {
        let mut text = std::fs::read_to_string(path).expect("adapter settings");
        text.push_str(&format!(
            "\n[fault]\nmode = \"{mode}\"\ndelay_ms = {delay_ms}\n"
        ));
        std::fs::write(path, text).expect("write");
    }
}

/// The center's wire error code behind a kiosk error, if the center sent one.
pub fn center_code(error: &kiosk_sim::KioskError) -> Option<schemas::ErrorCode> {
    match error {
        kiosk_sim::KioskError::Center(client) => client.error_code(),
        _ => None,
    }
}
