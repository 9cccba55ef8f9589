//! Center settings, read from one TOML file (the sandbox writes one; see README).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemas::{KioskId, MunicipalityCode, OperatorId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where kiosks connect (mTLS, operator client certificates only). Port 0 picks one.
    pub kiosk_listen: SocketAddr,
    /// `sqlite://…?mode=rwc` (default, embedded) or `postgres://…`; the env var
    /// `DATABASE_URL` overrides it.
    pub database_url: String,
    /// Base64 seed of the center's Ed25519 key (signs requests to municipalities).
    pub center_key_path: PathBuf,
    /// Base64 Ed25519 public key of the card authority (JPKI-like).
    pub card_authority_public_key: String,
    /// The card authority's signed revocation list (JSON, `schemas::RevocationList`).
    pub revocation_list_path: PathBuf,
    /// Printed on the back side: where relying parties verify a certificate.
    pub verify_url: String,
    #[serde(default)]
    pub timeouts: Timeouts,
    pub kiosk_tls: mtls::TlsFiles,
    pub lgwan_tls: mtls::TlsFiles,
    #[serde(default)]
    pub municipalities: Vec<MunicipalitySettings>,
    #[serde(default)]
    pub operators: Vec<OperatorSettings>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Whole-request deadline from the moment the center accepts a request.
    pub request_deadline_ms: u64,
    /// Upper bound for one call to a municipality (always cut to what is left of the
    /// request deadline, so deadlines shrink at each hop).
    pub adapter_timeout_ms: u64,
    /// Lifetime of a card challenge nonce.
    pub challenge_ttl_ms: u64,
    /// A `prepared` issuance not paid within this time is voided (`payment_timeout`).
    #[serde(default = "default_payment_timeout_ms")]
    pub payment_timeout_ms: u64,
    /// How often the sweep runs (payment timeouts, stuck requests, old challenges).
    #[serde(default = "default_sweep_interval_ms")]
    pub sweep_interval_ms: u64,
}

fn default_payment_timeout_ms() -> u64 {
    300_000
}

fn default_sweep_interval_ms() -> u64 {
    10_000
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request_deadline_ms: 10_000,
            adapter_timeout_ms: 8_000,
            challenge_ttl_ms: 120_000,
            payment_timeout_ms: default_payment_timeout_ms(),
            sweep_interval_ms: default_sweep_interval_ms(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MunicipalitySettings {
    pub code: MunicipalityCode,
    pub name: String,
    /// `https://host:port` of the municipality's adapter.
    pub adapter_url: String,
    /// Base64 Ed25519 public keys registered by the municipality (any may sign).
    pub public_keys: Vec<String>,
    /// PNG of the official seal (公印) the municipality registered.
    pub seal_image_path: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub id: OperatorId,
    /// Terminals this operator may speak for.
    pub kiosks: Vec<KioskId>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid settings in {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Settings {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut settings: Settings =
            toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.display().to_string(),
                source,
            })?;
        if let Ok(url) = std::env::var("DATABASE_URL") {
            settings.database_url = url;
        }
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.timeouts;
        if t.adapter_timeout_ms == 0 || t.adapter_timeout_ms > t.request_deadline_ms {
            return Err(ConfigError::Invalid(
                "timeouts.adapter_timeout_ms must be in 1..=request_deadline_ms".into(),
            ));
        }
        if t.challenge_ttl_ms == 0 || t.challenge_ttl_ms > 3_600_000 {
            return Err(ConfigError::Invalid(
                "timeouts.challenge_ttl_ms must be in 1..=3600000".into(),
            ));
        }
        if t.payment_timeout_ms == 0 || t.payment_timeout_ms > 86_400_000 {
            return Err(ConfigError::Invalid(
                "timeouts.payment_timeout_ms must be in 1..=86400000".into(),
            ));
        }
        if t.sweep_interval_ms < 100 || t.sweep_interval_ms > 3_600_000 {
            return Err(ConfigError::Invalid(
                "timeouts.sweep_interval_ms must be in 100..=3600000".into(),
            ));
        }
        let mut codes: Vec<_> = self.municipalities.iter().map(|m| m.code).collect();
        codes.sort();
        codes.dedup();
        if codes.len() != self.municipalities.len() {
            return Err(ConfigError::Invalid(
                "a municipality code is listed twice".into(),
            ));
        }
        Ok(())
    }
}
