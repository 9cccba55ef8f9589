//! A sandbox deployed as separate OS processes, the way production runs: adapters and
//! N center replicas over one database (a fresh PostgreSQL database per test), the
//! center's clock ahead of the real one (see
//! [`crate::procs::forward_business_morning_offset_ms`]), and optionally a
//! [`LatencyProxy`] on a municipality's center↔adapter link. The replica and fault
//! suites kill its parties with SIGKILL and read its books afterwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use center::store::Store;
use sandbox::Layout;

use crate::books::Books;
use crate::latency_proxy::LatencyProxy;
use crate::procs::{self, ChildProcess};
use crate::{Backend, TempDir};

/// How long a party may take to listen after its start (debug build, busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How far ahead of the center's clock the final sweep and the early close run: past
/// every payment timeout and request deadline.
const LATER_MS: i64 = 3_600_000;

/// What to deploy.
#[derive(Clone, Debug, Default)]
pub struct DeploymentOptions {
    /// Center processes on the one database (at least one).
    pub replicas: usize,
    /// `[timeouts]` entries of the center's settings.
    pub center_timeouts: Vec<(&'static str, i64)>,
    /// Adapter names (`kitamoto`, `minokamo-sakahogi`) whose link from the center goes
    /// through a latency proxy: every municipality the adapter serves is rewritten.
    pub proxied_adapters: Vec<&'static str>,
}

/// One center process and its settings file.
pub struct CenterReplica {
    pub config: PathBuf,
    pub port: u16,
    process: ChildProcess,
}

impl CenterReplica {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

pub struct ProcessDeployment {
    pub backend: Backend,
    pub layout: Layout,
    pub database_url: String,
    /// The centers' clock offset from the real clock.
    pub offset_ms: i64,
    /// Replica 0's settings (what the library calls of the final checks need).
    pub settings: center::configuration::Settings,
    pub centers: Vec<CenterReplica>,
    adapters: BTreeMap<String, ChildProcess>,
    /// Adapter name → the proxy in front of it.
    pub proxies: BTreeMap<String, LatencyProxy>,
    pub logs: PathBuf,
    pool: Option<Store>,
    tmp: KeptOnPanic,
    /// Held for the deployment's life: one deployment per test process at a time.
    _serial: tokio::sync::OwnedMutexGuard<()>,
}

/// Deployments of one test binary run one after another: each runs a load of its own
/// and kills parties on timing, which two at once on two cores would make flaky.
fn serial_lock() -> Arc<tokio::sync::Mutex<()>> {
    static LOCK: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
    Arc::clone(LOCK.get_or_init(|| Arc::new(tokio::sync::Mutex::new(()))))
}

impl ProcessDeployment {
    /// Deploys on `backend`; `None` when PostgreSQL is wanted but absent outside CI.
    pub async fn start(tag: &str, backend: Backend, options: DeploymentOptions) -> Option<Self> {
        assert!(options.replicas >= 1, "at least one center replica");
        let serial = serial_lock().lock_owned().await;
        let [center_bin, adapter_bin] = tokio::task::block_in_place(|| {
            [procs::binary("center"), procs::binary("municipal-adapter")]
        });
        let tmp = KeptOnPanic::new(tag);
        let layout = sandbox::init(&tmp.path().join("sandbox")).expect("sandbox init");
        crate::set_center_timeouts(&layout, &options.center_timeouts);
        disable_auto_close(&layout);
        let database_url = match backend {
            Backend::Sqlite => configured_database_url(&layout),
            Backend::Postgres => crate::fresh_postgres_database().await?,
        };
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).expect("logs dir");

        let mut adapters = BTreeMap::new();
        let mut proxies = BTreeMap::new();
        for (name, path) in &layout.adapter_configs {
            let port = adapter_port(path);
            let mut child = ChildProcess::spawn(
                &format!("adapter {name}"),
                &adapter_bin,
                &["serve", "--config", path_str(path)],
                &[],
                &logs.join(format!("adapter-{name}.log")),
            );
            procs::wait_for_port(port, &mut child, START_TIMEOUT).await;
            adapters.insert(name.clone(), child);
            if options.proxied_adapters.contains(&name.as_str()) {
                let upstream = SocketAddr::from(([127, 0, 0, 1], port));
                let proxy = LatencyProxy::start(upstream).await.expect("latency proxy");
                rewrite_adapter_url(&layout.center_config, port, &proxy.url());
                proxies.insert(name.clone(), proxy);
            }
        }
        assert_eq!(
            proxies.len(),
            options.proxied_adapters.len(),
            "every proxied adapter exists: {:?}",
            options.proxied_adapters
        );

        let settings =
            center::configuration::Settings::load(&layout.center_config).expect("center settings");
        let offset_ms = procs::forward_business_morning_offset_ms();
        let mut centers = Vec::new();
        for index in 0..options.replicas {
            let config = if index == 0 {
                layout.center_config.clone()
            } else {
                replica_config(&layout.center_config, index)
            };
            let port = kiosk_port(&config);
            // One at a time: the first applies the migrations, the next find them.
            let mut process = spawn_center(
                &center_bin,
                &config,
                offset_ms,
                &database_url,
                &logs.join(format!("center-{index}.log")),
            );
            procs::wait_for_port(port, &mut process, START_TIMEOUT).await;
            centers.push(CenterReplica {
                config,
                port,
                process,
            });
        }
        Some(Self {
            backend,
            layout,
            database_url,
            offset_ms,
            settings,
            centers,
            adapters,
            proxies,
            logs,
            pool: None,
            tmp,
            _serial: serial,
        })
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn sandbox_dir(&self) -> &Path {
        &self.layout.dir
    }

    pub fn center_urls(&self) -> Vec<String> {
        self.centers.iter().map(CenterReplica::url).collect()
    }

    /// SIGKILLs center replica `index`; panics when it had already exited.
    pub fn kill_center(&mut self, index: usize) {
        let replica = &mut self.centers[index];
        assert!(
            replica.process.kill(),
            "center replica {index} exited by itself; log:\n{}",
            replica.process.log_tail()
        );
    }

    /// SIGKILLs the adapter `name`; panics when it had already exited.
    pub fn kill_adapter(&mut self, name: &str) {
        let adapter = self
            .adapters
            .get_mut(name)
            .unwrap_or_else(|| panic!("no adapter {name}"));
        assert!(
            adapter.kill(),
            "adapter {name} exited by itself; log:\n{}",
            adapter.log_tail()
        );
    }

    /// Panics (with its log) if a center replica other than `killed` has exited.
    pub fn assert_centers_alive(&mut self, killed: &[usize]) {
        for (index, replica) in self.centers.iter_mut().enumerate() {
            if killed.contains(&index) {
                continue;
            }
            if let Some(status) = replica.process.try_status() {
                panic!(
                    "center replica {index} exited ({status}); log:\n{}",
                    replica.process.log_tail()
                );
            }
        }
    }

    /// The municipality codes the adapter `name` serves.
    pub fn municipalities_of(&self, name: &str) -> Vec<String> {
        sandbox::SAMPLE_MUNICIPALITIES
            .iter()
            .filter(|m| m.adapter == name)
            .map(|m| m.code.to_owned())
            .collect()
    }

    /// The adapter's own database (SQLite, as the sandbox configures it).
    pub fn adapter_database_url(&self, name: &str) -> String {
        let path = self
            .layout
            .adapter_configs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("no adapter {name}"));
        let text = std::fs::read_to_string(path).expect("adapter settings");
        let config: toml::Table = text.parse().expect("adapter settings parse");
        config
            .get("database_url")
            .and_then(|v| v.as_str())
            .expect("adapter database_url")
            .to_owned()
    }

    /// One 住民票 issued in-process (kiosk library, kiosk `lawson-0064`, replica 0) for
    /// a printable resident of `municipality_code`: warms the center's catalogue cache
    /// and its connection to the adapter. The request id of the printed certificate.
    pub async fn issue_one(&self, municipality_code: &str) -> String {
        match self.try_issue(municipality_code).await {
            Ok(kiosk_sim::IssueOutcome::Printed(doc)) => doc.request_id.to_string(),
            other => panic!("issuance for {municipality_code}: {other:?}"),
        }
    }

    /// [`Self::issue_one`] with whatever the kiosk saw.
    pub async fn try_issue(
        &self,
        municipality_code: &str,
    ) -> Result<kiosk_sim::IssueOutcome, kiosk_sim::KioskError> {
        self.try_issue_at(0, municipality_code).await
    }

    /// [`Self::try_issue`] through center replica `replica`.
    pub async fn try_issue_at(
        &self,
        replica: usize,
        municipality_code: &str,
    ) -> Result<kiosk_sim::IssueOutcome, kiosk_sim::KioskError> {
        let card = self.printable_card(municipality_code);
        let mut settings = self.kiosk_settings_at(replica, "lawson-0064");
        settings.state_dir = Some(self.dir().join("in-process-kiosk"));
        let mut kiosk = kiosk_sim::Kiosk::from_settings(&settings).expect("kiosk");
        let order = crate::resident_record(schemas::HouseholdScope::SelfOnly);
        kiosk
            .issue(
                &card.path,
                &crate::pin_of(card),
                order,
                &self.dir().join("in-process-out"),
            )
            .await
    }

    /// A resident card of `municipality_code` whose certificate is printable.
    pub fn printable_card(&self, municipality_code: &str) -> &sandbox::CardInfo {
        self.layout
            .cards
            .iter()
            .find(|c| {
                c.kind == sandbox::CardKind::Resident
                    && c.municipality.to_string() == municipality_code
                    && municipal_adapter::samples::issuable_cards(municipality_code)
                        .contains(&c.serial)
            })
            .unwrap_or_else(|| panic!("no printable card of {municipality_code}"))
    }

    /// The settings of lawson's kiosk `kiosk_id`, talking to center replica `replica`.
    pub fn kiosk_settings_at(&self, replica: usize, kiosk_id: &str) -> kiosk_sim::KioskSettings {
        let path = self
            .layout
            .kiosk_configs
            .iter()
            .find(|(operator, _)| operator == "lawson")
            .map(|(_, p)| p)
            .expect("lawson kiosk settings");
        let mut settings = kiosk_sim::KioskSettings::load(path).expect("kiosk settings");
        settings.kiosk_id = schemas::KioskId::parse(kiosk_id).expect("kiosk id");
        settings.center_url = self.centers[replica].url();
        settings
    }

    /// A pool on the centers' database (opened once).
    pub async fn pool(&mut self) -> Store {
        if self.pool.is_none() {
            self.pool = Some(
                center::db::connect(&self.database_url)
                    .await
                    .expect("center database"),
            );
        }
        self.pool.clone().expect("pool just opened")
    }

    /// Issuances in `states` so far.
    pub async fn count_in_states(&mut self, states: &[&str]) -> i64 {
        use sqlx::Row as _;
        let list = states
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(",");
        let pool = self.pool().await;
        sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM issuances WHERE state IN ({list})"
        ))
        .fetch_one(pool.pool())
        .await
        .expect("count issuances")
        .get::<i64, _>("n")
    }

    /// Waits (at most `timeout`) until at least `n` issuances are printed.
    pub async fn wait_for_printed(&mut self, n: i64, timeout: Duration) {
        let started = std::time::Instant::now();
        loop {
            if self.count_in_states(&["printed"]).await >= n {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "fewer than {n} issuances printed within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The center's clock now, in Unix ms.
    pub fn center_now_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond() + self.offset_ms
    }

    /// Sweeps and closes the open settlement window early, an hour ahead on the
    /// center's clock (past every payment timeout and deadline), then reads the books.
    pub async fn sweep_close_and_read(&mut self) -> (center::settlement::CloseSummary, Books) {
        let pool = self.pool().await;
        let later = self.center_now_ms() + LATER_MS;
        center::lifecycle::sweep(&pool, &self.settings.timeouts, later)
            .await
            .expect("sweep");
        let config = center::settlement::SettlementConfig::from_settings(&self.settings)
            .expect("settlement config");
        let close = center::settlement::close_open_window(&pool, &config, later, true)
            .await
            .expect("early close");
        (close, Books::read(&pool).await)
    }

    /// Stops every party and drops the per-test database.
    pub async fn stop(mut self) {
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        for replica in &mut self.centers {
            replica.process.kill();
        }
        for adapter in self.adapters.values_mut() {
            adapter.kill();
        }
        if self.backend == Backend::Postgres {
            procs::drop_postgres_database(&self.database_url).await;
        }
    }
}

fn spawn_center(
    bin: &Path,
    config: &Path,
    offset_ms: i64,
    database_url: &str,
    log: &Path,
) -> ChildProcess {
    let offset = offset_ms.to_string();
    ChildProcess::spawn(
        &format!("center ({})", config.display()),
        bin,
        &[
            "serve",
            "--config",
            path_str(config),
            "--clock-offset-ms",
            &offset,
        ],
        &[("DATABASE_URL", database_url)],
        log,
    )
}

/// A copy of the center's settings for replica `index`, on its own free ports (every
/// `*_listen` address), written next to the original.
fn replica_config(base: &Path, index: usize) -> PathBuf {
    let text = std::fs::read_to_string(base).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let listen_keys: Vec<String> = config
        .keys()
        .filter(|k| k.ends_with("_listen"))
        .cloned()
        .collect();
    for key in listen_keys {
        let port = free_port();
        config.insert(key, toml::Value::String(format!("127.0.0.1:{port}")));
    }
    let path = base.with_file_name(format!("center-{index}.toml"));
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("write replica config");
    path
}

/// A loopback port free now (the OS may hand it out again; the sandbox does the same).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn kiosk_port(config: &Path) -> u16 {
    let text = std::fs::read_to_string(config).expect("center settings");
    let config: toml::Table = text.parse().expect("center settings parse");
    procs::port_of(
        config
            .get("kiosk_listen")
            .and_then(|v| v.as_str())
            .expect("kiosk_listen"),
    )
}

/// Points every municipality whose adapter listens on `adapter_port` at `url`.
fn rewrite_adapter_url(center_config: &Path, adapter_port: u16, url: &str) {
    let text = std::fs::read_to_string(center_config).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let original = format!("https://127.0.0.1:{adapter_port}");
    let mut rewritten = 0;
    if let Some(toml::Value::Array(municipalities)) = config.get_mut("municipalities") {
        for municipality in municipalities {
            let Some(table) = municipality.as_table_mut() else {
                continue;
            };
            if table.get("adapter_url").and_then(|v| v.as_str()) == Some(original.as_str()) {
                table.insert("adapter_url".into(), toml::Value::String(url.to_owned()));
                rewritten += 1;
            }
        }
    }
    assert!(
        rewritten > 0,
        "no municipality uses the adapter at {original}"
    );
    std::fs::write(center_config, toml::to_string(&config).expect("toml")).expect("write");
}

/// Windows close only when a test says so.
fn disable_auto_close(layout: &Layout) {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let settlement = config
        .entry("settlement")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[settlement] is a table");
    settlement.insert("auto_close".into(), toml::Value::Boolean(false));
    std::fs::write(
        &layout.center_config,
        toml::to_string(&config).expect("toml"),
    )
    .expect("write center.toml");
}

/// The center's database as `sandbox::init` configured it (read from the file, not
/// through `Settings::load`, which lets `DATABASE_URL` override it).
fn configured_database_url(layout: &Layout) -> String {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let config: toml::Table = text.parse().expect("center.toml parses");
    config
        .get("database_url")
        .and_then(|v| v.as_str())
        .expect("database_url")
        .to_owned()
}

fn adapter_port(path: &Path) -> u16 {
    let text = std::fs::read_to_string(path).expect("adapter settings");
    let config: toml::Table = text.parse().expect("adapter settings parse");
    procs::port_of(
        config
            .get("listen")
            .and_then(|v| v.as_str())
            .expect("listen"),
    )
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// A temporary directory (sandbox, logs, records) removed when the test passes and
/// kept, with its path printed, when it fails.
pub struct KeptOnPanic(Option<TempDir>);

impl KeptOnPanic {
    pub fn new(tag: &str) -> Self {
        Self(Some(TempDir::new(tag)))
    }

    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for KeptOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("kept for diagnosis: {}", dir.path().display());
                std::mem::forget(dir);
            }
        }
    }
}
