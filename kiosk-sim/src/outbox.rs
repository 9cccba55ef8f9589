//! The kiosk's persistent store-and-forward outbox of outcome reports (payment and
//! print), one JSON file per kiosk under its state directory.
//!
//! Every report is written here *before* it is sent and removed only when the center
//! acknowledged it (or answered `outcome_conflict`, which is just as final), so a
//! crash or a restart between "money taken" and "center told" loses nothing. The file
//! is replaced atomically (temp file + rename, `atomic_file.rs`) and holds at most
//! [`MAX_OUTBOX_ENTRIES`] reports: a kiosk whose outbox is full takes no more money.

use std::path::{Path, PathBuf};

use schemas::outcome::{PaymentReport, PrintReport};
use schemas::{KioskId, RequestId};
use serde::{Deserialize, Serialize};

use crate::atomic_file;

/// Reports one kiosk may hold undelivered; a session needs room for two (payment and
/// print) before it takes money.
pub const MAX_OUTBOX_ENTRIES: usize = 256;
/// The outbox file's name inside the state directory.
pub const OUTBOX_FILE: &str = "outbox.json";
/// Longest error text kept per entry (for `outbox show`).
const MAX_ERROR_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot read or write the outbox {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Never silently reset: the file may hold money records.
    #[error("the outbox {} is not readable JSON ({detail}); fix or move it by hand", path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error("the outbox {} belongs to kiosk {found}, not {expected}", path.display())]
    OtherKiosk {
        path: PathBuf,
        expected: KioskId,
        found: KioskId,
    },
    #[error("the outbox is full ({MAX_OUTBOX_ENTRIES} undelivered reports); flush it first")]
    Full,
}

/// One report as the kiosk sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeReport {
    Payment(PaymentReport),
    Print(PrintReport),
}

impl OutcomeReport {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Payment(_) => "payment",
            Self::Print(_) => "print",
        }
    }

    /// The outcome's wire name (`paid`, `cancelled`, `ok`, `unknown`, …).
    pub fn outcome_str(&self) -> String {
        let value = match self {
            Self::Payment(report) => serde_json::to_value(report.outcome),
            Self::Print(report) => serde_json::to_value(report.outcome),
        };
        value
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub(crate) fn set_repeat(&mut self, repeat: bool) {
        match self {
            Self::Payment(report) => report.repeat = repeat,
            Self::Print(report) => report.repeat = repeat,
        }
    }
}

/// A report not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Unique within this outbox, increasing in the order reports were written.
    pub id: u64,
    pub request_id: RequestId,
    pub report: OutcomeReport,
    /// Sends tried so far.
    pub attempts: u32,
    /// Why the last send failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OutboxFile {
    kiosk_id: KioskId,
    next_id: u64,
    entries: Vec<OutboxEntry>,
}

/// The outbox: persistent when opened on a state directory, in memory otherwise
/// (library users and tests that do not care about restarts).
#[derive(Debug)]
pub struct Outbox {
    path: Option<PathBuf>,
    kiosk_id: KioskId,
    next_id: u64,
    entries: Vec<OutboxEntry>,
}

impl Outbox {
    pub fn in_memory(kiosk_id: KioskId) -> Self {
        Self {
            path: None,
            kiosk_id,
            next_id: 1,
            entries: Vec::new(),
        }
    }

    /// Opens (or starts) `<state_dir>/outbox.json` for `kiosk_id`.
    pub fn open(state_dir: &Path, kiosk_id: KioskId) -> Result<Self, OutboxError> {
        let path = state_dir.join(OUTBOX_FILE);
        let io = |source| OutboxError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<OutboxFile>(&bytes).map_err(|e| {
                OutboxError::Malformed {
                    path: path.clone(),
                    detail: e.to_string(),
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => OutboxFile {
                kiosk_id: kiosk_id.clone(),
                next_id: 1,
                entries: Vec::new(),
            },
            Err(e) => return Err(io(e)),
        };
        if file.kiosk_id != kiosk_id {
            return Err(OutboxError::OtherKiosk {
                path,
                expected: kiosk_id,
                found: file.kiosk_id,
            });
        }
        let next_id = file
            .entries
            .iter()
            .map(|e| e.id.saturating_add(1))
            .max()
            .unwrap_or(1)
            .max(file.next_id);
        Ok(Self {
            path: Some(path),
            kiosk_id,
            next_id,
            entries: file.entries,
        })
    }

    /// The file, when persistent.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Undelivered reports, oldest first.
    pub fn entries(&self) -> &[OutboxEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Room for `count` more reports.
    pub fn has_room_for(&self, count: usize) -> bool {
        self.entries.len().saturating_add(count) <= MAX_OUTBOX_ENTRIES
    }

    /// Writes `report` durably and returns its entry id. A pending print report for
    /// the same request is replaced: only the printer's latest answer matters.
    pub(crate) fn push(
        &mut self,
        request_id: RequestId,
        report: OutcomeReport,
    ) -> Result<u64, OutboxError> {
        let mut entries = self.entries.clone();
        if matches!(report, OutcomeReport::Print(_)) {
            entries.retain(|e| {
                !(e.request_id == request_id && matches!(e.report, OutcomeReport::Print(_)))
            });
        }
        if entries.len() >= MAX_OUTBOX_ENTRIES {
            return Err(OutboxError::Full);
        }
        let id = self.next_id;
        entries.push(OutboxEntry {
            id,
            request_id,
            report,
            attempts: 0,
            last_error: None,
        });
        self.commit(entries, id.saturating_add(1))?;
        Ok(id)
    }

    /// Replaces entry `id`'s report (a `paid` that got no answer becomes `cancelled`).
    pub(crate) fn replace(&mut self, id: u64, report: OutcomeReport) -> Result<(), OutboxError> {
        let mut entries = self.entries.clone();
        if let Some(entry) = entries.iter_mut().find(|e| e.id == id) {
            entry.report = report;
            entry.last_error = None;
        }
        self.commit(entries, self.next_id)
    }

    pub(crate) fn remove(&mut self, id: u64) -> Result<(), OutboxError> {
        let mut entries = self.entries.clone();
        entries.retain(|e| e.id != id);
        self.commit(entries, self.next_id)
    }

    /// Counts a failed send of entry `id`.
    pub(crate) fn record_failure(&mut self, id: u64, error: &str) -> Result<(), OutboxError> {
        let mut entries = self.entries.clone();
        if let Some(entry) = entries.iter_mut().find(|e| e.id == id) {
            entry.attempts = entry.attempts.saturating_add(1);
            entry.last_error = Some(error.chars().take(MAX_ERROR_CHARS).collect());
        }
        self.commit(entries, self.next_id)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&OutboxEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Saves first, then updates memory: what the kiosk believes is never ahead of
    /// what survives a crash.
    fn commit(&mut self, entries: Vec<OutboxEntry>, next_id: u64) -> Result<(), OutboxError> {
        if let Some(path) = &self.path {
            let file = OutboxFile {
                kiosk_id: self.kiosk_id.clone(),
                next_id,
                entries,
            };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| OutboxError::Malformed {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            atomic_file::replace(path, &bytes).map_err(|source| OutboxError::Io {
                path: path.clone(),
                source,
            })?;
            self.entries = file.entries;
        } else {
            self.entries = entries;
        }
        self.next_id = next_id;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::outcome::{PaymentMethod, PaymentOutcome, PrintOutcome};

    fn kiosk() -> KioskId {
        KioskId::parse("tokyo-0001").unwrap()
    }

    fn print(outcome: PrintOutcome) -> OutcomeReport {
        OutcomeReport::Print(PrintReport {
            kiosk_id: kiosk(),
            outcome,
            repeat: false,
        })
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("kiosk-outbox-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn entries_survive_reopening_and_a_later_print_answer_replaces_the_queued_one() {
        let dir = temp_dir();
        let request = RequestId::new_random();
        let mut outbox = Outbox::open(&dir, kiosk()).unwrap();
        let paid = OutcomeReport::Payment(PaymentReport {
            kiosk_id: kiosk(),
            outcome: PaymentOutcome::Paid,
            amount_yen: 300,
            method: PaymentMethod::Cash,
            repeat: false,
        });
        let first = outbox.push(request, paid.clone()).unwrap();
        outbox.push(request, print(PrintOutcome::Unknown)).unwrap();
        outbox.push(request, print(PrintOutcome::Ok)).unwrap();
        outbox.record_failure(first, "no answer").unwrap();

        let reopened = Outbox::open(&dir, kiosk()).unwrap();
        assert_eq!(reopened.entries(), outbox.entries());
        assert_eq!(reopened.len(), 2);
        assert_eq!(reopened.entries()[0].report, paid);
        assert_eq!(reopened.entries()[0].attempts, 1);
        assert_eq!(reopened.entries()[1].report, print(PrintOutcome::Ok));
        // Ids are never reused after a restart.
        let mut reopened = reopened;
        let next = reopened.push(request, print(PrintOutcome::Failed)).unwrap();
        assert!(next > reopened.entries()[0].id);
        reopened.remove(first).unwrap();
        assert_eq!(Outbox::open(&dir, kiosk()).unwrap().len(), 1);

        // Another kiosk's file, or a torn one, is refused rather than reset.
        let other = KioskId::parse("tokyo-0002").unwrap();
        assert!(matches!(
            Outbox::open(&dir, other),
            Err(OutboxError::OtherKiosk { .. })
        ));
        std::fs::write(dir.join(OUTBOX_FILE), b"{\"kiosk_id\":").unwrap();
        assert!(matches!(
            Outbox::open(&dir, kiosk()),
            Err(OutboxError::Malformed { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_outbox_is_bounded() {
        let mut outbox = Outbox::in_memory(kiosk());
        for _ in 0..MAX_OUTBOX_ENTRIES {
            outbox
                .push(RequestId::new_random(), print(PrintOutcome::Ok))
                .unwrap();
        }
        assert!(!outbox.has_room_for(1));
        assert!(matches!(
            outbox.push(RequestId::new_random(), print(PrintOutcome::Ok)),
            Err(OutboxError::Full)
        ));
        assert_eq!(outbox.len(), MAX_OUTBOX_ENTRIES);
    }
}
