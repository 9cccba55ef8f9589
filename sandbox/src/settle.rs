//! The end of a sandbox's business day, as the center's operator runs it with
//! `center settlement close|report|reconcile|finalize`: wait for the outcome notices
//! to reach the municipalities, close the open window early, write the signed reports,
//! reconcile each chain operator's own transaction file, and finalise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::settlement::{MatchSummary, OperatorTransaction};
use schemas::OperatorId;

use crate::run::RunningSandbox;
use crate::SandboxError;

/// Upper bound on waiting for the notice outbox to drain.
const NOTICE_WAIT_MS: u64 = 15_000;

/// What closing the day produced.
#[derive(Clone, Debug)]
pub struct DaySettlement {
    pub business_date: String,
    pub totals: Vec<settlement::PairTotal>,
    pub recon_required: usize,
    /// Reports, signatures, operator files and match reports, in write order.
    pub files: Vec<PathBuf>,
    pub reconciliations: Vec<(OperatorId, MatchSummary)>,
    /// `None` when the window was settled; otherwise why finalising was refused.
    pub refused: Option<String>,
    /// Outcome notices delivered to municipalities / written.
    pub notices_delivered: usize,
    pub notices_total: usize,
}

fn invalid(error: impl std::fmt::Display) -> SandboxError {
    SandboxError::Invalid(error.to_string())
}

impl RunningSandbox {
    /// Closes the day. `sales` are the chain operators' own records of what they sold
    /// (each operator's transaction file is written from them into `out`).
    pub async fn settle_day(
        &self,
        out: &Path,
        sales: &[(OperatorId, Vec<OperatorTransaction>)],
    ) -> Result<DaySettlement, SandboxError> {
        let pool = &self.center_pool;
        let (notices_delivered, notices_total) = self.wait_for_notices().await?;
        let settings =
            center::configuration::Settings::load(&self.layout.center_config).map_err(invalid)?;
        let config =
            center::settlement::SettlementConfig::from_settings(&settings).map_err(invalid)?;
        let key_text = std::fs::read_to_string(&settings.center_key_path)
            .map_err(crate::io_error(&settings.center_key_path))?;
        let key = schemas::KeyPair::from_seed_base64(&key_text).map_err(invalid)?;
        let now = || self.clock.now_unix_ms();

        let closed = center::settlement::close_open_window(pool, &config, now(), true)
            .await
            .map_err(invalid)?;
        let date = closed.window.business_date;
        let written = center::settlement::write_reports(pool, &config, &key, date, out, now())
            .await
            .map_err(invalid)?;
        let mut files = written.files.clone();
        let mut reconciliations = Vec::new();
        for (operator, rows) in sales {
            let path = out.join(format!("operator-{operator}-transactions-{date}.csv"));
            let text = settlement::write_operator_file(rows);
            std::fs::write(&path, &text).map_err(crate::io_error(&path))?;
            files.push(path);
            let report = center::settlement::reconcile_operator(
                pool,
                date,
                operator,
                text.as_bytes(),
                now(),
            )
            .await
            .map_err(invalid)?;
            let path = out.join(format!("reconciliation-{date}-operator-{operator}.jsonl"));
            std::fs::write(&path, report.to_jsonl()).map_err(crate::io_error(&path))?;
            files.push(path);
            reconciliations.push((operator.clone(), report.summary));
        }
        let refused = match center::settlement::finalize(pool, date, now()).await {
            Ok(_) => None,
            Err(error @ center::settlement::SettlementError::Unmatched { .. }) => {
                Some(error.to_string())
            }
            Err(error) => return Err(invalid(error)),
        };
        Ok(DaySettlement {
            business_date: date.to_string(),
            totals: written.totals,
            recon_required: written.recon_required.len(),
            files,
            reconciliations,
            refused,
            notices_delivered,
            notices_total,
        })
    }

    /// Waits (bounded) until every outcome notice reached its municipality; returns
    /// (delivered, total).
    async fn wait_for_notices(&self) -> Result<(usize, usize), SandboxError> {
        let started = std::time::Instant::now();
        loop {
            let notices = center::notices::list(&self.center_pool)
                .await
                .map_err(invalid)?;
            let delivered = notices
                .iter()
                .filter(|n| n.delivered_at_unix_ms.is_some())
                .count();
            if delivered == notices.len()
                || started.elapsed() > Duration::from_millis(NOTICE_WAIT_MS)
            {
                return Ok((delivered, notices.len()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
