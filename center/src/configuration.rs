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
    /// Where relying parties connect (HTTPS with the kiosk listener's server certificate,
    /// no client certificate asked): the verification page `/verify`, `POST /v1/verify`
    /// and `GET /v1/trust-list`. Absent: no public listener. Port 0 picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_listen: Option<SocketAddr>,
    /// The operations listener: plain HTTP (no TLS), for loopback or the operations
    /// network only, serving `GET /health`, `GET /ready` and `GET /metrics`
    /// (Prometheus). Absent: no operations listener. Port 0 picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_listen: Option<SocketAddr>,
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
    #[serde(default)]
    pub settlement: SettlementSettings,
    #[serde(default)]
    pub notices: NoticeSettings,
    /// The signed trust list of seal keys (DESIGN.md §5; `crate::trust_list`).
    #[serde(default)]
    pub trust_list: TrustListSettings,
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
    /// How often the sweep runs (payment timeouts, stuck requests, old challenges,
    /// expired card sessions).
    #[serde(default = "default_sweep_interval_ms")]
    pub sweep_interval_ms: u64,
    /// Lifetime of a card session from its opening (center clock); 1..=
    /// `schemas::MAX_CARD_SESSION_TTL_S` × 1000.
    #[serde(default = "default_card_session_ttl_ms")]
    pub card_session_ttl_ms: u64,
}

fn default_payment_timeout_ms() -> u64 {
    300_000
}

fn default_sweep_interval_ms() -> u64 {
    10_000
}

fn default_card_session_ttl_ms() -> u64 {
    600_000
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request_deadline_ms: 10_000,
            adapter_timeout_ms: 8_000,
            challenge_ttl_ms: 120_000,
            payment_timeout_ms: default_payment_timeout_ms(),
            sweep_interval_ms: default_sweep_interval_ms(),
            card_session_ttl_ms: default_card_session_ttl_ms(),
        }
    }
}

/// Settlement windows (DESIGN.md §6).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementSettings {
    /// When the business day's window is cut, `HH:MM` Asia/Tokyo, 23:00..=23:59 (after
    /// the national 23:00 close).
    #[serde(default = "default_cut_time")]
    pub cut_time: String,
    /// Close a window by itself once its cut time has passed (the sweep does it; every
    /// replica may try, exactly one succeeds). Off, windows close only by
    /// `center settlement close`.
    #[serde(default = "default_true")]
    pub auto_close: bool,
}

fn default_cut_time() -> String {
    settlement::CutTime::default().to_string()
}

fn default_true() -> bool {
    true
}

impl Default for SettlementSettings {
    fn default() -> Self {
        Self {
            cut_time: default_cut_time(),
            auto_close: true,
        }
    }
}

impl SettlementSettings {
    pub fn cut(&self) -> Result<settlement::CutTime, ConfigError> {
        settlement::CutTime::parse(&self.cut_time)
            .map_err(|e| ConfigError::Invalid(format!("settlement.cut_time: {e}")))
    }
}

/// Delivery of outcome notices to municipalities (the transactional outbox).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeSettings {
    /// How often the delivery loop looks for due notices.
    #[serde(default = "default_notice_interval_ms")]
    pub interval_ms: u64,
    /// First retry delay; doubled per failed attempt up to `max_backoff_ms`.
    #[serde(default = "default_notice_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_notice_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Upper bound on one delivery attempt.
    #[serde(default = "default_notice_timeout_ms")]
    pub timeout_ms: u64,
    /// Refusals by the municipality (4xx other than 408/429) after which a notice is a
    /// dead letter: no more attempts until `center notices requeue`. Network errors and
    /// 5xx never count: those are retried with back-off for as long as it takes.
    #[serde(default = "default_notice_dead_letter_after_rejections")]
    pub dead_letter_after_rejections: u32,
}

fn default_notice_dead_letter_after_rejections() -> u32 {
    3
}

fn default_notice_interval_ms() -> u64 {
    1_000
}
fn default_notice_backoff_ms() -> u64 {
    1_000
}
fn default_notice_max_backoff_ms() -> u64 {
    300_000
}
fn default_notice_timeout_ms() -> u64 {
    5_000
}

impl Default for NoticeSettings {
    fn default() -> Self {
        Self {
            interval_ms: default_notice_interval_ms(),
            initial_backoff_ms: default_notice_backoff_ms(),
            max_backoff_ms: default_notice_max_backoff_ms(),
            timeout_ms: default_notice_timeout_ms(),
            dead_letter_after_rejections: default_notice_dead_letter_after_rejections(),
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
    /// Seal keys (公印の署名鍵) with their periods, as published in the trust list.
    /// Empty: one entry per `public_keys` key with the default period
    /// (`crate::trust_list::DEFAULT_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seal_keys: Vec<SealKeySettings>,
}

/// One seal key of a municipality. Instants are RFC 3339 strings with an offset
/// (`"2026-04-01T00:00:00+09:00"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealKeySettings {
    /// Base64 Ed25519 public key.
    pub public_key: String,
    /// The key signs seals issued in `[not_before, usage_end]`.
    pub not_before: String,
    pub usage_end: String,
    /// Seals signed with this key verify until then; `>= usage_end` (rotation overlap).
    pub verify_until: String,
    /// Set when the key is compromised or withdrawn: seals issued from then on are
    /// INVALID. Record it conservatively (the earliest possible instant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compromised_at: Option<String>,
}

/// Center-wide trust list settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustListSettings {
    /// Seconds from a list's issue to its `next_update` (after which verifiers answer
    /// UNKNOWN); 3600..=2592000, default 86400. The center re-signs a list when half of
    /// this has passed.
    #[serde(default = "default_trust_list_validity_s")]
    pub validity_s: i64,
    /// Revoked documents (a certificate withdrawn after printing), by request id; the
    /// list carries only SHA-256 of each id's 16 bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_documents: Vec<RevokedDocumentSettings>,
}

fn default_trust_list_validity_s() -> i64 {
    86_400
}

impl Default for TrustListSettings {
    fn default() -> Self {
        Self {
            validity_s: default_trust_list_validity_s(),
            revoked_documents: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedDocumentSettings {
    /// The center's request id (UUID) of the certificate.
    pub request_id: String,
    /// When it was revoked, RFC 3339 with an offset.
    pub revoked_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub id: OperatorId,
    /// Terminals this operator may speak for.
    pub kiosks: Vec<KioskId>,
    /// 事業者手数料: the operator's commission per printed copy, integer yen (the
    /// agreement; default `schemas::settlement::DEFAULT_COMMISSION_YEN_PER_COPY`).
    #[serde(default = "default_commission")]
    pub commission_yen_per_copy: i64,
}

fn default_commission() -> i64 {
    schemas::settlement::DEFAULT_COMMISSION_YEN_PER_COPY
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

/// Whether two configured listeners would take the same port on a shared address.
fn same_listener(a: SocketAddr, b: SocketAddr) -> bool {
    let overlapping_ip = a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified();
    a.port() != 0 && a.port() == b.port() && overlapping_ip
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
        let max_card_session_ttl_ms = u64::try_from(schemas::MAX_CARD_SESSION_TTL_S)
            .unwrap_or(0)
            .saturating_mul(1000);
        if !(1..=max_card_session_ttl_ms).contains(&t.card_session_ttl_ms) {
            return Err(ConfigError::Invalid(format!(
                "timeouts.card_session_ttl_ms must be in 1..={max_card_session_ttl_ms}"
            )));
        }
        if let Some(public) = self.public_listen {
            // One address cannot serve both: the kiosk API must never be public.
            if same_listener(public, self.kiosk_listen) {
                return Err(ConfigError::Invalid(
                    "public_listen must differ from kiosk_listen".into(),
                ));
            }
        }
        if let Some(ops) = self.ops_listen {
            // The operations listener has no TLS: it must not share an address.
            let others = [Some(self.kiosk_listen), self.public_listen];
            if others.into_iter().flatten().any(|o| same_listener(ops, o)) {
                return Err(ConfigError::Invalid(
                    "ops_listen must differ from kiosk_listen and public_listen".into(),
                ));
            }
        }
        self.settlement.cut()?;
        let n = &self.notices;
        if n.interval_ms < 10
            || n.interval_ms > 3_600_000
            || n.initial_backoff_ms == 0
            || n.initial_backoff_ms > n.max_backoff_ms
            || n.max_backoff_ms > 86_400_000
            || n.timeout_ms == 0
            || n.timeout_ms > 60_000
        {
            return Err(ConfigError::Invalid(
                "notices: need 10 <= interval_ms <= 3600000, 0 < initial_backoff_ms <= max_backoff_ms <= 86400000, 0 < timeout_ms <= 60000".into(),
            ));
        }
        for operator in &self.operators {
            if !(0..=10_000).contains(&operator.commission_yen_per_copy) {
                return Err(ConfigError::Invalid(format!(
                    "operator {}: commission_yen_per_copy must be in 0..=10000",
                    operator.id
                )));
            }
        }
        // Seal key periods, kid uniqueness, revoked documents, bounds.
        crate::trust_list::Content::from_settings(self)
            .map_err(|e| ConfigError::Invalid(format!("trust list: {e}")))?;
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
