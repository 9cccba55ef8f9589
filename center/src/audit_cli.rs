//! `center audit …`: seal, verify and prove the tamper-evident audit log, and export a
//! municipality's issuance records. Works directly on the database of the settings file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use center::audit::{self, AuditError, ExportRange};
use center::configuration::Settings;
use clap::{Args, Subcommand};
use schemas::audit::AuditProof;
use schemas::{KeyPair, MunicipalityCode, PublicKey};

use crate::settlement_cli::{EXIT_ERROR, EXIT_INVALID};

#[derive(Args)]
pub struct Common {
    /// The center's settings file (database, key).
    #[arg(long)]
    config: PathBuf,
    /// Shift "now" by this many milliseconds (drills on a shifted center clock).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_ms: i64,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Seal every unsealed audit event now (batches of at most --max-events).
    Seal {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = audit::DEFAULT_BATCH_EVENTS)]
        max_events: u32,
    },
    /// Recompute every batch: exit 0 when intact, 1 naming batch and event when not.
    Verify {
        #[command(flatten)]
        common: Common,
        /// Unsealed events older than this are reported as tampering.
        #[arg(long, default_value_t = audit::DEFAULT_GRACE_MS)]
        grace_ms: i64,
        /// A published head (header digest, hex, or `COUNT:HEX` as printed) that must be
        /// in the chain: detects removed trailing batches.
        #[arg(long)]
        expect_head: Option<String>,
    },
    /// Inclusion proof (JSON) for every audit event of one request.
    Prove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        request_id: String,
        /// Where the proof goes (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof file offline against the center's public key.
    CheckProof {
        file: PathBuf,
        /// File holding the center's Ed25519 public key, base64.
        #[arg(long, conflicts_with = "config")]
        center_public_key: Option<PathBuf>,
        /// Or take the key from the center's settings.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A municipality's issuance records (JSON Lines, signed with FILE.sig).
    Export {
        #[command(flatten)]
        common: Common,
        /// 団体コード of the municipality (residents' 住所地).
        #[arg(long)]
        municipality: String,
        /// First JST date (YYYY-MM-DD) of creation, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Last JST date (YYYY-MM-DD) of creation, inclusive.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn center_key(settings: &Settings) -> anyhow::Result<KeyPair> {
    let path = &settings.center_key_path;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the center key {}", path.display()))?;
    KeyPair::from_seed_base64(&text).with_context(|| format!("center key {}", path.display()))
}

async fn open(common: &Common) -> anyhow::Result<(Settings, center::store::Store, i64)> {
    open_with(common, false).await
}

/// `guard`: also install the append-only triggers (the writing commands do; verify and
/// prove stay read-only so an auditor's read-only role suffices).
async fn open_with(
    common: &Common,
    guard: bool,
) -> anyhow::Result<(Settings, center::store::Store, i64)> {
    let settings = Settings::load(&common.config)?;
    let pool = center::db::connect(&settings.database_url)
        .await
        .context("opening the center's database")?;
    if guard {
        audit::install_guards(&pool)
            .await
            .context("installing the audit guards")?;
    }
    let now_unix_ms = jiff::Timestamp::now().as_millisecond() + common.clock_offset_ms;
    Ok((settings, pool, now_unix_ms))
}

fn public_key_file(path: &Path) -> anyhow::Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let raw = schemas::b64::Base64Bytes::decode(text.trim())
        .with_context(|| format!("{} is not base64", path.display()))?;
    Ok(PublicKey(raw.try_into().map_err(|_| {
        anyhow::anyhow!("{}: a public key is 32 bytes", path.display())
    })?))
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

pub async fn run(command: AuditCommand) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match command {
        AuditCommand::Seal { common, max_events } => {
            let (settings, pool, now_unix_ms) = open_with(&common, true).await?;
            let key = center_key(&settings)?;
            let mut sealed = 0u64;
            let mut last = None;
            loop {
                match audit::seal_pending(&pool, &key, now_unix_ms, max_events).await {
                    Ok(Some(header)) => {
                        sealed += header.payload.leaf_count;
                        last = Some(header);
                    }
                    Ok(None) => break,
                    Err(error @ AuditError::Conflict { .. }) => {
                        pool.close().await;
                        eprintln!("refused: {error}");
                        return Ok(std::process::ExitCode::from(EXIT_ERROR));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            pool.close().await;
            match last {
                Some(header) => println!(
                    "sealed {sealed} event(s); head batch {} root {}",
                    header.payload.batch_no, header.payload.merkle_root
                ),
                None => println!("nothing to seal"),
            }
            Ok(ok)
        }
        AuditCommand::Verify {
            common,
            grace_ms,
            expect_head,
        } => {
            let (settings, pool, now_unix_ms) = open(&common).await?;
            let key = center_key(&settings)?.public();
            let expect = expect_head
                .as_deref()
                .map(|h| h.rsplit_once(':').map_or(h, |(_, digest)| digest));
            let report = audit::verify(&pool, &key, now_unix_ms, grace_ms, expect).await?;
            pool.close().await;
            println!(
                "{} batch(es), {} sealed event(s), {} recent unsealed event(s)",
                report.batches, report.sealed_events, report.unsealed_recent
            );
            println!("head {}", report.head);
            if report.is_intact() {
                println!("INTACT");
                return Ok(ok);
            }
            for problem in &report.problems {
                println!("TAMPERED: {problem}");
            }
            if report.more_problems > 0 {
                println!("… and {} more problem(s)", report.more_problems);
            }
            Ok(std::process::ExitCode::from(EXIT_INVALID))
        }
        AuditCommand::Prove {
            common,
            request_id,
            out,
        } => {
            let (_, pool, _) = open(&common).await?;
            let proof = audit::prove(&pool, &request_id).await;
            pool.close().await;
            let mut json = serde_json::to_vec_pretty(&proof?)?;
            json.push(b'\n');
            write_out(out.as_deref(), &json)?;
            Ok(ok)
        }
        AuditCommand::CheckProof {
            file,
            center_public_key,
            config,
        } => {
            let key = match (center_public_key, config) {
                (Some(path), _) => public_key_file(&path)?,
                (None, Some(config)) => center_key(&Settings::load(&config)?)?.public(),
                (None, None) => bail!("give --center-public-key or --config"),
            };
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let verdict = serde_json::from_str::<AuditProof>(&text)
                .map_err(|e| format!("not an audit proof: {e}"))
                .and_then(|proof| {
                    proof
                        .verify(&key)
                        .map(|()| proof)
                        .map_err(|e| e.to_string())
                });
            match verdict {
                Ok(proof) => {
                    println!(
                        "VALID {}: {} event(s) of request {} are in the signed log",
                        file.display(),
                        proof.events.len(),
                        proof.request_id
                    );
                    Ok(ok)
                }
                Err(error) => {
                    println!("INVALID {}: {error}", file.display());
                    Ok(std::process::ExitCode::from(EXIT_INVALID))
                }
            }
        }
        AuditCommand::Export {
            common,
            municipality,
            from,
            to,
            out,
        } => {
            let code = MunicipalityCode::parse(&municipality)?;
            let range = ExportRange::parse(from.as_deref(), to.as_deref())?;
            let (settings, pool, now_unix_ms) = open(&common).await?;
            let key = center_key(&settings)?;
            let result = audit::export_municipality(&pool, &key, &code, range, now_unix_ms).await;
            pool.close().await;
            let (bytes, count) = result?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let signature = audit::sign_export(&name, &bytes, &key);
            let mut sig_path = out.as_os_str().to_owned();
            sig_path.push(".sig");
            let sig_path = PathBuf::from(sig_path);
            std::fs::write(&sig_path, serde_json::to_vec_pretty(&signature)?)
                .with_context(|| format!("writing {}", sig_path.display()))?;
            println!(
                "wrote {count} record(s) of {code} to {} (signature {})",
                out.display(),
                sig_path.display()
            );
            Ok(ok)
        }
    }
}
