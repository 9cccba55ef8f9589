//! End-to-end load benchmark (issue 8): every party as its own release process on
//! loopback, mTLS on both links, durable commits (SQLite in WAL with `synchronous =
//! FULL`, PostgreSQL with its default `synchronous_commit = on`), driven by
//! `kiosk-sim load`, which checks every PDF it is handed.
//!
//! One run measures, per database back-end:
//! - how long the center takes from spawn to `GET /ready` answering 200;
//! - the highest closed-loop throughput (issuances per second, end to end);
//! - an open-loop run at the target rate (150/s by default): p99 end to end and the
//!   center's peak resident memory (`VmHWM`-style maximum of sampled `VmRSS`);
//! - an open-loop run at 50/s: the center-added latency (the center's own time minus
//!   the municipality's hop, per request, from the `Server-Timing` header).
//!
//! - the CPU time per visit of each party in the closed-loop run (center, adapters,
//!   the load generator, PostgreSQL's server processes), from `/proc`.
//!
//! Once, before those, it measures composition-only throughput on every core
//! (`cargo bench -p composer --bench throughput`), so the ratio end to end ÷
//! composition only comes from one run.
//!
//! Run: `cargo bench -p e2e --bench load`
//! Environment: `LOAD_BENCH_BACKENDS` (`sqlite,postgres`), `LOAD_BENCH_KIOSKS` (32),
//! `LOAD_BENCH_RATE` (150), `LOAD_BENCH_SECONDS` (20 per open-loop run),
//! `LOAD_BENCH_MAX_REQUESTS` (3000 for the closed-loop run),
//! `LOAD_BENCH_COMPOSE_SECONDS` (10), `LOAD_BENCH_KEEP_DIR` (set: keep the sandbox,
//! databases and logs, and print where).

use e2e::procs::{self, ChildProcess};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READY_POLL_MS: u64 = 5;
const READY_TIMEOUT_S: u64 = 60;
const RSS_SAMPLE_MS: u64 = 100;
const CPU_POLL_MS: u64 = 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Plan {
    kiosks: u64,
    rate_per_s: u64,
    open_loop_s: u64,
    max_requests: u64,
    compose_s: u64,
}

fn main() -> anyhow::Result<()> {
    let plan = Plan {
        kiosks: env_u64("LOAD_BENCH_KIOSKS", 32).clamp(1, 128),
        rate_per_s: env_u64("LOAD_BENCH_RATE", 150).clamp(1, 2_000),
        open_loop_s: env_u64("LOAD_BENCH_SECONDS", 20).clamp(1, 600),
        max_requests: env_u64("LOAD_BENCH_MAX_REQUESTS", 3_000).clamp(1, 100_000),
        compose_s: env_u64("LOAD_BENCH_COMPOSE_SECONDS", 10).clamp(1, 600),
    };
    let backends: Vec<String> = std::env::var("LOAD_BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite,postgres".into())
        .split(',')
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .collect();

    let binaries = Binaries {
        center: procs::binary("center"),
        adapter: procs::binary("municipal-adapter"),
        kiosk: procs::binary("kiosk-sim"),
    };
    let composition_only_per_s = composition_only(plan.compose_s)?;
    println!("composition only (every core): {composition_only_per_s:.1} documents/s");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for backend in &backends {
        let result = runtime.block_on(run_backend(backend, &plan, &binaries))?;
        result.print(composition_only_per_s, &plan);
        results.push(result);
    }
    let json = serde_json::json!({
        "composition_only_per_s": composition_only_per_s,
        "kiosks": plan.kiosks,
        "rate_per_s": plan.rate_per_s,
        "backends": results.iter().map(BackendResult::to_json).collect::<Vec<_>>(),
    });
    println!("{json}");
    Ok(())
}

struct Binaries {
    center: PathBuf,
    adapter: PathBuf,
    kiosk: PathBuf,
}

/// Runs the composer's throughput benchmark (a separate bench target, so the figure
/// is the composer's own, on every core) and reads its JSON line.
fn composition_only(seconds: u64) -> anyhow::Result<f64> {
    let cargo = std::env::var("CARGO").map_err(|_| {
        anyhow::anyhow!(
            "CARGO is not set: run this benchmark with `cargo bench -p e2e --bench load`"
        )
    })?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("workspace root"))?;
    let output = procs::nested_cargo(&cargo)
        .current_dir(workspace)
        .args([
            "bench",
            "--quiet",
            "-p",
            "composer",
            "--bench",
            "throughput",
        ])
        .env("THROUGHPUT_SECONDS", seconds.to_string())
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "composer throughput bench failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow::anyhow!("no JSON line from the composer bench: {stdout}"))?;
    let value: serde_json::Value = serde_json::from_str(line)?;
    value["composition_only_per_s"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("composition_only_per_s missing in {line}"))
}

struct BackendResult {
    backend: String,
    ready_ms: f64,
    closed_loop: serde_json::Value,
    sustained: serde_json::Value,
    light: serde_json::Value,
    peak_rss_mb_sustained: f64,
    /// In the closed-loop run.
    cpu_per_visit: CpuPerVisit,
}

impl BackendResult {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "backend": self.backend,
            "center_ready_ms": self.ready_ms,
            "closed_loop": self.closed_loop,
            "sustained": self.sustained,
            "light": self.light,
            "center_peak_rss_mb_sustained": self.peak_rss_mb_sustained,
            "cpu_per_visit_closed_loop": self.cpu_per_visit.to_json(),
        })
    }

    fn print(&self, composition_only_per_s: f64, plan: &Plan) {
        let f = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
        let phase = |v: &serde_json::Value, name: &str, key: &str| {
            v["phases"][name][key].as_f64().unwrap_or(f64::NAN)
        };
        let closed = f(&self.closed_loop, "throughput_per_s");
        println!("--- backend {} ---", self.backend);
        println!("center ready after start: {:.0} ms", self.ready_ms);
        for (label, run) in [
            ("closed loop", &self.closed_loop),
            ("open loop at target rate", &self.sustained),
            ("open loop at 50/s", &self.light),
        ] {
            println!(
                "{label}: requests {} issued {} refused {} errors {} misissued {} | {:.1}/s | \
                 end to end p50 {:.1} ms p99 {:.1} ms | card p99 {:.1} | municipality p99 {:.1} | \
                 composition p99 {:.1} | center-added p99 {:.1} ms",
                run["requests"],
                run["issued"],
                run["refused"],
                run["errors"],
                run["misissued"],
                f(run, "throughput_per_s"),
                f(run, "p50_ms"),
                f(run, "p99_ms"),
                phase(run, "card_check", "p99_ms"),
                phase(run, "municipality", "p99_ms"),
                phase(run, "composition", "p99_ms"),
                phase(run, "center_added", "p99_ms"),
            );
        }
        println!(
            "end to end ÷ composition only: {closed:.1} ÷ {composition_only_per_s:.1} = {:.0}%",
            100.0 * closed / composition_only_per_s
        );
        println!(
            "center peak RSS at {}/s: {:.1} MB",
            plan.rate_per_s, self.peak_rss_mb_sustained
        );
        let cpu = &self.cpu_per_visit;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        println!(
            "CPU per visit (closed loop): center {:.2} ms, adapters {:.2} ms, load generator \
             {:.2} ms, PostgreSQL {:.2} ms: {:.2} ms in all; one composition alone costs \
             {:.2} ms ({cores} cores ÷ composition-only rate)",
            cpu.center_ms,
            cpu.adapters_ms,
            cpu.load_generator_ms,
            cpu.postgres_ms,
            cpu.total_ms(),
            1000.0 * cores / composition_only_per_s,
        );
    }
}

async fn run_backend(backend: &str, plan: &Plan, bins: &Binaries) -> anyhow::Result<BackendResult> {
    let tmp =
        std::env::temp_dir().join(format!("kofu-load-bench-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let layout = sandbox::init(&tmp.join("sandbox"))?;
    let database_url = match backend {
        "sqlite" => None,
        "postgres" => Some(
            e2e::fresh_postgres_database()
                .await
                .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not reachable"))?,
        ),
        other => anyhow::bail!("unknown backend {other:?} (sqlite or postgres)"),
    };
    let logs = tmp.join("logs");
    std::fs::create_dir_all(&logs)?;

    let mut adapters = Vec::new();
    for (name, path) in &layout.adapter_configs {
        let mut child = ChildProcess::spawn(
            &format!("adapter {name}"),
            &bins.adapter,
            &["serve", "--config", &path.to_string_lossy()],
            &[],
            &logs.join(format!("adapter-{name}.log")),
        );
        procs::wait_for_port(
            listen_port(path, "listen")?,
            &mut child,
            Duration::from_secs(30),
        )
        .await;
        adapters.push(child);
    }

    let center_settings: toml::Table = std::fs::read_to_string(&layout.center_config)?.parse()?;
    let ops = center_settings
        .get("ops_listen")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("center.toml has no ops_listen"))?
        .to_owned();
    let kiosk_listen = center_settings
        .get("kiosk_listen")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("center.toml has no kiosk_listen"))?;
    let center_url = format!("https://127.0.0.1:{}", procs::port_of(kiosk_listen));
    let offset = procs::forward_business_morning_offset_ms().to_string();
    let config = layout.center_config.to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = Vec::new();
    if let Some(url) = &database_url {
        env.push(("DATABASE_URL", url));
    }
    let spawned = Instant::now();
    let mut center = ChildProcess::spawn(
        "center",
        &bins.center,
        &["serve", "--config", &config, "--clock-offset-ms", &offset],
        &env,
        &logs.join("center.log"),
    );
    let ready_ms = wait_ready(&ops, spawned, &mut center).await?;

    let dir = layout.dir.to_string_lossy().into_owned();
    let kiosks = plan.kiosks.to_string();
    let load = |requests: u64, rate: Option<u64>| {
        let mut args = vec![
            "load".to_owned(),
            "--kiosks".into(),
            kiosks.clone(),
            "--requests".into(),
            requests.to_string(),
            "--center".into(),
            center_url.clone(),
            "--dir".into(),
            dir.clone(),
            "--json".into(),
        ];
        if let Some(rate) = rate {
            args.extend(["--rate".into(), rate.to_string()]);
        }
        run_load(&bins.kiosk, &args)
    };

    // Warm-up: connections, caches (catalogues, trust list), the page cache.
    load(plan.kiosks * 4, None)?;
    let parties = |adapters: &[ChildProcess]| {
        let center_ms = cpu_ms_of(center.id()).unwrap_or(f64::NAN);
        let adapters_ms: f64 = adapters
            .iter()
            .map(|a| cpu_ms_of(a.id()).unwrap_or(f64::NAN))
            .sum();
        (center_ms, adapters_ms, cpu_ms_of_named("postgres"))
    };
    let before = parties(&adapters);
    let (closed_loop, load_generator_ms) = load(plan.max_requests, None)?;
    let after = parties(&adapters);
    let visits = closed_loop["issued"].as_f64().unwrap_or(f64::NAN).max(1.0);
    let cpu_per_visit = CpuPerVisit {
        center_ms: (after.0 - before.0) / visits,
        adapters_ms: (after.1 - before.1) / visits,
        load_generator_ms: load_generator_ms / visits,
        postgres_ms: if database_url.is_some() {
            (after.2 - before.2) / visits
        } else {
            0.0
        },
    };
    let sampler = RssSampler::start(center.id());
    let (sustained, _) = load(plan.rate_per_s * plan.open_loop_s, Some(plan.rate_per_s))?;
    let peak_rss_mb_sustained = sampler.stop_mb();
    let (light, _) = load(50 * plan.open_loop_s, Some(50))?;

    center.kill();
    for adapter in &mut adapters {
        adapter.kill();
    }
    if std::env::var_os("LOAD_BENCH_KEEP_DIR").is_some() {
        println!("kept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(BackendResult {
        backend: backend.to_owned(),
        ready_ms,
        closed_loop,
        sustained,
        light,
        peak_rss_mb_sustained,
        cpu_per_visit,
    })
}

fn listen_port(path: &Path, key: &str) -> anyhow::Result<u16> {
    let table: toml::Table = std::fs::read_to_string(path)?.parse()?;
    let listen = table
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("{} has no {key}", path.display()))?;
    Ok(procs::port_of(listen))
}

/// Polls `GET /ready` on the ops listener until it answers 200.
async fn wait_ready(ops: &str, spawned: Instant, center: &mut ChildProcess) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let url = format!("http://{ops}/ready");
    while spawned.elapsed() < Duration::from_secs(READY_TIMEOUT_S) {
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok(spawned.elapsed().as_secs_f64() * 1e3);
            }
        }
        if let Some(status) = center.try_status() {
            anyhow::bail!("center exited ({status}): {}", center.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await;
    }
    anyhow::bail!(
        "center not ready after {READY_TIMEOUT_S} s: {}",
        center.log_tail()
    )
}

/// One `kiosk-sim load` run: its JSON summary and the CPU time (ms) it used, read from
/// `/proc` every `CPU_POLL_MS` until it exits (so it misses at most that much).
fn run_load(kiosk_bin: &Path, args: &[String]) -> anyhow::Result<(serde_json::Value, f64)> {
    let mut child = Command::new(kiosk_bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut cpu_ms = 0.0;
    while child.try_wait()?.is_none() {
        if let Some(ms) = cpu_ms_of(child.id()) {
            cpu_ms = ms;
        }
        std::thread::sleep(Duration::from_millis(CPU_POLL_MS));
    }
    // The summary is one line, far below a pipe's buffer: reading after the exit is safe.
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| anyhow::anyhow!("load summary is not JSON ({e}): {stdout}"))?;
    anyhow::ensure!(
        output.status.success(),
        "kiosk-sim load exited with {}: {summary}",
        output.status
    );
    Ok((summary, cpu_ms))
}

/// User + system CPU time (ms) a process has used so far, from `/proc/<pid>/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s: Linux's fixed `USER_HZ`).
fn cpu_ms_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state), so fields 14 and 15 are at 11 and 12.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 * 10.0)
}

/// CPU time (ms) of every process whose command name is `name` (PostgreSQL's server
/// processes), summed.
fn cpu_ms_of_named(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(cpu_ms_of)
        .sum()
}

/// CPU time per visit of each party in one run (ms).
#[derive(Clone, Copy, Debug, Default)]
struct CpuPerVisit {
    center_ms: f64,
    adapters_ms: f64,
    load_generator_ms: f64,
    postgres_ms: f64,
}

impl CpuPerVisit {
    fn total_ms(&self) -> f64 {
        self.center_ms + self.adapters_ms + self.load_generator_ms + self.postgres_ms
    }

    fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "center_ms": self.center_ms,
            "adapters_ms": self.adapters_ms,
            "load_generator_ms": self.load_generator_ms,
            "postgres_ms": self.postgres_ms,
            "total_ms": self.total_ms(),
        })
    }
}

/// Samples a process's resident set size from `/proc` and keeps the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak_kb) = (Arc::clone(&stop), Arc::clone(&peak_kb));
            std::thread::spawn(move || {
                let path = format!("/proc/{pid}/status");
                while !stop.load(Ordering::Relaxed) {
                    if let Some(kb) = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| vm_rss_kb(&s))
                    {
                        peak_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(RSS_SAMPLE_MS));
                }
            })
        };
        Self {
            stop,
            peak_kb,
            thread,
        }
    }

    fn stop_mb(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

fn vm_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
