//! `kiosk-sim load` as a child process: its arguments, its JSON summary and its
//! per-request records (JSON Lines), parsed into what the replica and fault suites
//! assert on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs;

/// Exit status of a run with misissued documents.
pub const EXIT_MISISSUED: i32 = 3;

/// One `kiosk-sim load` invocation against running centers.
#[derive(Clone, Debug)]
pub struct LoadArgs {
    pub kiosks: u32,
    pub requests: u32,
    pub centers: Vec<String>,
    /// The sandbox directory (cards, kiosk settings and certificates).
    pub dir: PathBuf,
    /// Where the per-request records go.
    pub records: PathBuf,
    pub seed: Option<u64>,
    pub time_limit_s: Option<u64>,
}

impl LoadArgs {
    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "load".to_owned(),
            "--kiosks".to_owned(),
            self.kiosks.to_string(),
            "--requests".to_owned(),
            self.requests.to_string(),
        ];
        for url in &self.centers {
            args.extend(["--center".to_owned(), url.clone()]);
        }
        args.extend([
            "--dir".to_owned(),
            self.dir.display().to_string(),
            "--json".to_owned(),
            "--records".to_owned(),
            self.records.display().to_string(),
        ]);
        if let Some(seed) = self.seed {
            args.extend(["--seed".to_owned(), seed.to_string()]);
        }
        if let Some(limit) = self.time_limit_s {
            args.extend(["--time-limit-s".to_owned(), limit.to_string()]);
        }
        args
    }
}

/// A running `kiosk-sim load`; dropping it SIGKILLs the process.
pub struct LoadProcess {
    child: Child,
    args: LoadArgs,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl LoadProcess {
    /// Starts the load; its standard output and error go to files in `logs`.
    pub fn spawn(args: LoadArgs, logs: &Path) -> Self {
        let bin = tokio::task::block_in_place(|| procs::binary("kiosk-sim"));
        let stdout = logs.join("load.stdout.json");
        let stderr = logs.join("load.stderr.log");
        let child = Command::new(&bin)
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("load stdout file"))
            .stderr(File::create(&stderr).expect("load stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Self {
            child,
            args,
            stdout,
            stderr,
        }
    }

    /// True while the load runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("poll load").is_none()
    }

    /// Waits at most `timeout` for the end (killing it past that and panicking), then
    /// parses its summary and records.
    pub async fn finish(mut self, timeout: Duration) -> LoadRun {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll load") {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "kiosk-sim load did not finish within {timeout:?}; stderr:\n{}",
                    procs::log_tail(&self.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr_tail = procs::log_tail(&self.stderr);
        let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "kiosk-sim load ({status}) printed no JSON summary ({e}); stdout:\n{stdout}\n\
                 stderr:\n{stderr_tail}"
            )
        });
        let records = read_records(&self.args.records);
        LoadRun {
            status,
            summary,
            records,
            stderr_tail,
        }
    }
}

impl Drop for LoadProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the load to its end.
pub async fn run(args: LoadArgs, logs: &Path, timeout: Duration) -> LoadRun {
    LoadProcess::spawn(args, logs).finish(timeout).await
}

/// What one load run reported.
#[derive(Debug)]
pub struct LoadRun {
    pub status: ExitStatus,
    pub summary: Value,
    pub records: Vec<Record>,
    pub stderr_tail: String,
}

impl LoadRun {
    /// An integer of the summary (`requests`, `issued`, `misissued`, `failovers`…).
    pub fn count(&self, key: &str) -> i64 {
        self.summary
            .get(key)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("summary has no integer {key:?}: {}", self.summary))
    }

    /// A number of the summary (`p50_ms`, `throughput_per_s`…).
    pub fn number(&self, key: &str) -> f64 {
        self.summary
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("summary has no number {key:?}: {}", self.summary))
    }

    /// `phases.<phase>.<key>` of the summary, if present.
    pub fn phase(&self, phase: &str, key: &str) -> Option<f64> {
        self.summary.get("phases")?.get(phase)?.get(key)?.as_f64()
    }

    /// The invariants of every run: it ended 0, nothing misissued, every request
    /// counted once as issued, refused or an error, one record per request.
    pub fn assert_sound(&self, label: &str) {
        assert_eq!(
            self.count("misissued"),
            0,
            "{label}: misissued documents: {}",
            self.summary
        );
        assert!(
            self.status.success(),
            "{label}: kiosk-sim load ended {} (3 = misissued); summary {}; stderr:\n{}",
            self.status,
            self.summary,
            self.stderr_tail
        );
        let requests = self.count("requests");
        assert_eq!(
            self.count("issued") + self.count("refused") + self.count("errors"),
            requests,
            "{label}: every request ends issued, refused or an error: {}",
            self.summary
        );
        assert_eq!(
            i64::try_from(self.records.len()).unwrap_or(i64::MAX),
            requests,
            "{label}: one record per request"
        );
        for record in &self.records {
            assert!(
                matches!(record.outcome.as_str(), "issued" | "refused" | "error"),
                "{label}: record with outcome {:?}: {}",
                record.outcome,
                record.raw
            );
        }
    }

    pub fn with_outcome<'a>(&'a self, outcome: &'a str) -> impl Iterator<Item = &'a Record> {
        self.records.iter().filter(move |r| r.outcome == outcome)
    }
}

/// One request as the load recorded it.
#[derive(Clone, Debug)]
pub struct Record {
    pub outcome: String,
    pub request_id: Option<String>,
    pub municipality: Option<String>,
    pub center_url: Option<String>,
    /// The refusal reason or the error kind.
    pub reason: Option<String>,
    pub failovers: i64,
    pub raw: Value,
}

impl Record {
    fn parse(raw: Value) -> Self {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| raw.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        };
        Self {
            outcome: text(&["outcome"]).unwrap_or_default(),
            request_id: text(&["request_id"]),
            municipality: text(&["municipality", "municipality_code"]),
            center_url: text(&["center_url", "center"]),
            reason: text(&["reason", "error_kind", "error", "refusal_reason"]),
            failovers: raw.get("failovers").and_then(Value::as_i64).unwrap_or(0),
            raw,
        }
    }
}

fn read_records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("records file {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let raw: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("record {line:?} is not JSON: {e}"));
            Record::parse(raw)
        })
        .collect()
}
