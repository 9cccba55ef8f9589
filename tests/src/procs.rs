//! Support for suites that run parties as separate OS processes (the crash suites):
//! the workspace's binaries, child processes with their logs, bounded readiness waits,
//! a seeded random source that a failure can be replayed with, and a center clock
//! offset that the real-clock adapters can live with.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The binaries the crash suites start.
pub const BINARIES: [&str; 3] = ["center", "municipal-adapter", "kiosk-sim"];

/// Longest log excerpt quoted in a panic message.
const LOG_TAIL_BYTES: u64 = 4_000;

/// `target/<profile>/` of the running test executable (`…/target/debug/deps/crash-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test executable lives in target/<profile>/deps")
}

/// Path of workspace binary `name` (one of [`BINARIES`]), built once per test process.
///
/// Cargo builds only the library of a dependency for a test, so the binaries may be
/// missing or older than the sources: the first call runs `$CARGO build` for all of
/// them (a no-op when fresh). If that build fails but binaries exist, they are used
/// with a warning; without binaries the test cannot run and panics.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let dir = profile_dir();
        build_binaries(&dir);
        dir
    });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary {} is missing after the build; run `cargo build -p center -p municipal-adapter -p kiosk-sim`",
        path.display()
    );
    path
}

/// `cargo` run from inside a test or benchmark, without the variables cargo sets for
/// the running target (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, …). Build scripts that
/// watch one of them (ring's watches `CARGO_MANIFEST_DIR`) would otherwise see it
/// change between this build and a plain one, and rebuild their crate and everything
/// above it each time the two alternate.
pub fn nested_cargo(cargo: &str) -> Command {
    const SET_FOR_THE_RUNNING_TARGET: [&str; 7] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    let mut command = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if SET_FOR_THE_RUNNING_TARGET.contains(&key)
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_")
        {
            command.env_remove(key);
        }
    }
    command
}

fn build_binaries(profile_dir: &Path) {
    let Ok(cargo) = std::env::var("CARGO") else {
        eprintln!("CARGO is not set (not run by cargo test); using the binaries as they are");
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut command = nested_cargo(&cargo);
    command
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .arg("build")
        .arg("--quiet");
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    for name in BINARIES {
        command.args(["-p", name]);
    }
    let began = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .status()
        .expect("running cargo build");
    eprintln!(
        "built {BINARIES:?} in {:.1}s ({status})",
        began.elapsed().as_secs_f64()
    );
    if !status.success() {
        let all_present = BINARIES.iter().all(|b| profile_dir.join(b).is_file());
        assert!(
            all_present,
            "cargo build of {BINARIES:?} failed ({status}) and no binaries exist"
        );
        eprintln!(
            "warning: cargo build of {BINARIES:?} failed ({status}); using the existing binaries"
        );
    }
}

/// A child process whose standard output and error go to a log file. Dropping it
/// SIGKILLs the process (a test that panics leaves nothing running).
pub struct ChildProcess {
    name: String,
    child: std::process::Child,
    log: PathBuf,
}

impl ChildProcess {
    /// Starts `program args…` with extra environment `envs`, logging to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let file = File::create(log).expect("log file");
        let stderr = file.try_clone().expect("log file handle");
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({}): {e}", program.display()));
        Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("polling a child process")
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap. True when the process
    /// was still running, i.e. the kill interrupted it.
    pub fn kill(&mut self) -> bool {
        let was_running = self.try_status().is_none();
        if was_running {
            // Fails only when it exited in between: that is fine.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        was_running
    }

    /// Waits at most `timeout` for the process to end; SIGKILLs it and panics past it.
    pub fn wait_bounded(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            if started.elapsed() > timeout {
                self.kill();
                panic!(
                    "{} did not finish within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last few KB of the log, for panic messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of a log file (lossy UTF-8).
pub fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`, at most
/// `timeout`; panics with the child's log if it exits or the time runs out.
pub async fn wait_for_port(port: u16, child: &mut ChildProcess, timeout: Duration) {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Some(status) = child.try_status() {
            panic!(
                "{} exited ({status}) before listening on port {port}; log:\n{}",
                child.name,
                child.log_tail()
            );
        }
        assert!(
            started.elapsed() < timeout,
            "{} did not listen on port {port} within {timeout:?}; log:\n{}",
            child.name,
            child.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The port of a `host:port` listen address in a settings file.
pub fn port_of(listen: &str) -> u16 {
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("listen address {listen:?} has no port"))
}

/// A small seeded generator (SplitMix64): enough to spread kill points, and
/// reproducible from the printed seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The seed from env `var` (decimal) when set, else a fresh one.
    pub fn seed_from_env(var: &str) -> u64 {
        match std::env::var(var) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}={text:?} is not a u64")),
            Err(_) => {
                let bytes = *uuid::Uuid::new_v4().as_bytes();
                u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
            }
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (modulo bias is irrelevant at these ranges).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        low + self.next_u64() % (high - low + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 99) < percent
    }

    /// A generator for a sub-task, derived from this one's stream.
    pub fn fork(&mut self) -> Self {
        Self(self.next_u64())
    }
}

/// Offset (ms) that moves a real clock to the first instant at or after now + 1 min
/// that is [`crate::BUSINESS_MORNING`] plus whole weeks, skipping the national closure
/// (12/29–1/3). Adapters started as separate processes keep the real clock and check
/// the center's deadlines against it, so the center must never run behind real time:
/// a negative offset would make every deadline look past.
pub fn forward_business_morning_offset_ms() -> i64 {
    const WEEK_MS: i64 = 7 * 86_400_000;
    let base: jiff::Timestamp = crate::BUSINESS_MORNING
        .parse()
        .expect("BUSINESS_MORNING is RFC 3339");
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut target_ms = base.as_millisecond();
    // Bounded: a few years of weeks at most.
    for _ in 0..520 {
        if target_ms >= now_ms + 60_000 && !in_national_closure(target_ms) {
            return target_ms - now_ms;
        }
        target_ms += WEEK_MS;
    }
    panic!(
        "no business morning within ten years of {}",
        crate::BUSINESS_MORNING
    )
}

fn in_national_closure(at_unix_ms: i64) -> bool {
    let date = jiff::Timestamp::from_millisecond(at_unix_ms)
        .expect("timestamp")
        .in_tz("Asia/Tokyo")
        .expect("time zone")
        .date();
    (date.month() == 12 && date.day() >= 29) || (date.month() == 1 && date.day() <= 3)
}

/// Drops a per-test PostgreSQL database (best effort: a leftover only costs disk).
pub async fn drop_postgres_database(url: &str) {
    use sqlx::Connection as _;
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&crate::postgres_base_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_in_range() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..100).map(|_| a.range(3, 9)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.range(3, 9)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (3..=9).contains(x)));
        // Not constant: every value of a small range shows up in 100 draws.
        for v in 3..=9 {
            assert!(xs.contains(&v), "{v} never drawn");
        }
    }

    #[test]
    fn the_offset_never_runs_behind_real_time_nor_into_the_closure() {
        let offset = forward_business_morning_offset_ms();
        assert!(offset >= 60_000);
        let target = jiff::Timestamp::now().as_millisecond() + offset;
        assert!(!in_national_closure(target));
        assert!(in_national_closure(
            "2026-12-30T10:00:00+09:00"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        ));
    }
}
