//! The kiosk's settings file (TOML). The sandbox writes it; field names are part of
//! that contract:
//!
//! ```toml
//! center_url = "https://127.0.0.1:8443"
//! # optional: further replicas, tried in order when a call to the current one gets
//! # no answer (connection refused or reset, timeout); same request, same
//! # idempotency key, so the center that answers replays
//! fallback_center_urls = ["https://127.0.0.1:8444"]
//! operator_id = "seven"
//! kiosk_id = "tokyo-0001"
//! request_timeout_ms = 15000
//! # optional; default state/<kiosk_id>/ next to this file (the outcome outbox)
//! state_dir = "/abs/state/tokyo-0001"
//! [tls]
//! cert = "/abs/pki/operator-seven.pem"
//! key = "/abs/pki/operator-seven.key.pem"
//! ca = "/abs/pki/ca.pem"
//! # optional, test-only: a deliberate fault for the conformance suite's negative
//! # controls (default "none")
//! [fault]
//! mode = "skip_void_on_print_failure"   # or "skip_document_check", "release_lock_on_timeout"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemas::{KioskId, OperatorId};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read kiosk settings {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kiosk settings {path} are not valid TOML for this kiosk: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("kiosk settings: {0}")]
    Invalid(String),
}

/// Bound on `center_url` plus `fallback_center_urls` (a kiosk fails over through
/// each of them at most once per call).
pub const MAX_CENTER_URLS: usize = 16;

/// Settings of one kiosk terminal.
#[derive(Clone, Debug, Serialize, Deserialize)]
// Unknown keys are rejected so a misspelt key fails at start-up instead of silently
// falling back to something else.
#[serde(deny_unknown_fields)]
pub struct KioskSettings {
    /// Base URL of the center's kiosk API, `https://host:port` (no path needed).
    pub center_url: String,
    /// Further center replicas (same API, one shared database), tried in order after
    /// `center_url` when a call gets no answer. At most [`MAX_CENTER_URLS`] − 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_center_urls: Vec<String>,
    /// The chain operator; its identity on the wire is the TLS client certificate, this
    /// copy is for logs.
    pub operator_id: OperatorId,
    pub kiosk_id: KioskId,
    /// Deadline for each HTTP call to the center. The center's own deadlines towards the
    /// municipality must be shorter (deadlines shrink at each hop).
    pub request_timeout_ms: u64,
    /// Where the kiosk keeps its state (the outcome outbox). [`Self::load`] fills in
    /// `state/<kiosk_id>/` next to the settings file when absent; relative paths follow
    /// the settings file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    pub tls: mtls::TlsFiles,
    /// Test-only fault switches (absent: none).
    #[serde(default, skip_serializing_if = "FaultSettings::is_none")]
    pub fault: FaultSettings,
}

/// `[fault]`: a deliberately broken kiosk, so that the conformance suite can prove it
/// catches one (a negative control). Never set in a real deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    #[serde(default)]
    pub mode: FaultMode,
}

impl FaultSettings {
    pub fn is_none(&self) -> bool {
        self.mode == FaultMode::None
    }
}

/// Which rule the kiosk breaks on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// The honest kiosk.
    #[default]
    None,
    /// A paper jam is reported `ok` and the fee is kept (no void, no refund).
    SkipVoidOnPrintFailure,
    /// The document check before printing is skipped, and the kiosk prints the
    /// previous session's document when it has one (the 2023–24 mix-up).
    SkipDocumentCheck,
    /// An issuance with no answer in time fails the session, but the request is not
    /// aborted: it runs on in the background and the next session's order takes its
    /// late answer as its own, so the previous resident's document is printed for the
    /// next one (the real service's mis-issuance under load).
    ReleaseLockOnTimeout,
}

impl FaultMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SkipVoidOnPrintFailure => "skip_void_on_print_failure",
            Self::SkipDocumentCheck => "skip_document_check",
            Self::ReleaseLockOnTimeout => "release_lock_on_timeout",
        }
    }
}

impl KioskSettings {
    /// Reads and validates the settings. Relative TLS paths are taken relative to the
    /// settings file's directory, so a hand-written file works from any working
    /// directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut settings = Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        settings.resolve_relative_paths(base);
        if settings.state_dir.is_none() {
            settings.state_dir = Some(base.join("state").join(settings.kiosk_id.as_str()));
        }
        Ok(settings)
    }

    /// Parses and validates settings from TOML text (paths are left as written).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let settings: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source,
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_center_url("center_url", &self.center_url)?;
        for url in &self.fallback_center_urls {
            validate_center_url("fallback_center_urls", url)?;
        }
        if self.center_urls().len() > MAX_CENTER_URLS {
            return Err(ConfigError::Invalid(format!(
                "at most {MAX_CENTER_URLS} center URLs (center_url and fallback_center_urls)"
            )));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "request_timeout_ms must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Every center base URL in fail-over order: `center_url`, then the fallbacks.
    pub fn center_urls(&self) -> Vec<String> {
        std::iter::once(&self.center_url)
            .chain(&self.fallback_center_urls)
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect()
    }

    /// `center_url` joined with an API path such as `/v1/challenges`.
    pub fn endpoint(&self, api_path: &str) -> String {
        format!(
            "{}/{}",
            self.center_url.trim_end_matches('/'),
            api_path.trim_start_matches('/')
        )
    }

    /// The state directory in effect: as set, else `state/<kiosk_id>` relative to the
    /// working directory (only for settings not read by [`Self::load`]).
    pub fn effective_state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| Path::new("state").join(self.kiosk_id.as_str()))
    }

    fn resolve_relative_paths(&mut self, base: &Path) {
        for path in [&mut self.tls.cert, &mut self.tls.key, &mut self.tls.ca] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if let Some(dir) = &mut self.state_dir {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }
}

/// A center base URL: HTTPS (the client is mTLS only; an http:// URL would only fail
/// later, per call), no query or fragment.
fn validate_center_url(key: &str, text: &str) -> Result<(), ConfigError> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| ConfigError::Invalid(format!("{key} {text:?}: {e}")))?;
    if url.scheme() != "https" {
        return Err(ConfigError::Invalid(format!(
            "{key} must be https, got {text:?}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::Invalid(format!(
            "{key} must not carry a query or fragment"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
center_url = "https://127.0.0.1:8443"
operator_id = "seven"
kiosk_id = "tokyo-0001"
request_timeout_ms = 15000
[tls]
cert = "/abs/pki/operator-seven.pem"
key = "/abs/pki/operator-seven.key.pem"
ca = "/abs/pki/ca.pem"
"#;

    #[test]
    fn parses_the_sandbox_layout() {
        let settings = KioskSettings::from_toml(SAMPLE).unwrap();
        assert_eq!(settings.kiosk_id.as_str(), "tokyo-0001");
        assert_eq!(settings.operator_id.as_str(), "seven");
        assert_eq!(settings.request_timeout(), Duration::from_secs(15));
        assert_eq!(settings.tls.ca, PathBuf::from("/abs/pki/ca.pem"));
        assert_eq!(
            settings.endpoint("/v1/challenges"),
            "https://127.0.0.1:8443/v1/challenges"
        );
    }

    #[test]
    fn fallback_center_urls_follow_center_url_and_are_checked() {
        let settings = KioskSettings::from_toml(SAMPLE).unwrap();
        assert_eq!(settings.center_urls(), vec!["https://127.0.0.1:8443"]);
        let text = format!(
            "fallback_center_urls = [\"https://127.0.0.1:8444/\", \"https://10.0.0.2:8443\"]\n{SAMPLE}"
        );
        let settings = KioskSettings::from_toml(&text).unwrap();
        assert_eq!(
            settings.center_urls(),
            vec![
                "https://127.0.0.1:8443",
                "https://127.0.0.1:8444",
                "https://10.0.0.2:8443"
            ]
        );
        let http = format!("fallback_center_urls = [\"http://127.0.0.1:8444\"]\n{SAMPLE}");
        assert!(matches!(
            KioskSettings::from_toml(&http),
            Err(ConfigError::Invalid(_))
        ));
        let many: Vec<String> = (0..MAX_CENTER_URLS)
            .map(|i| format!("\"https://127.0.0.1:{}\"", 9000 + i))
            .collect();
        let too_many = format!("fallback_center_urls = [{}]\n{SAMPLE}", many.join(","));
        assert!(matches!(
            KioskSettings::from_toml(&too_many),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn trailing_slash_in_url_is_harmless() {
        let text = SAMPLE.replace("8443\"", "8443/\"");
        let settings = KioskSettings::from_toml(&text).unwrap();
        assert_eq!(
            settings.endpoint("v1/issuances"),
            "https://127.0.0.1:8443/v1/issuances"
        );
    }

    #[test]
    fn rejects_plain_http_unknown_keys_and_bad_ids() {
        let http = SAMPLE.replace("https://", "http://");
        assert!(matches!(
            KioskSettings::from_toml(&http),
            Err(ConfigError::Invalid(_))
        ));
        let typo = SAMPLE.replace("request_timeout_ms", "request_timeout");
        assert!(matches!(
            KioskSettings::from_toml(&typo),
            Err(ConfigError::Parse { .. })
        ));
        let bad_kiosk = SAMPLE.replace("tokyo-0001", "tokyo 0001");
        assert!(KioskSettings::from_toml(&bad_kiosk).is_err());
        let zero = SAMPLE.replace("15000", "0");
        assert!(KioskSettings::from_toml(&zero).is_err());
    }

    #[test]
    fn fault_modes_default_to_none_and_reject_unknown_values() {
        let settings = KioskSettings::from_toml(SAMPLE).unwrap();
        assert_eq!(settings.fault.mode, FaultMode::None);
        let jam = format!("{SAMPLE}[fault]\nmode = \"skip_void_on_print_failure\"\n");
        assert_eq!(
            KioskSettings::from_toml(&jam).unwrap().fault.mode,
            FaultMode::SkipVoidOnPrintFailure
        );
        let check = format!("{SAMPLE}[fault]\nmode = \"skip_document_check\"\n");
        assert_eq!(
            KioskSettings::from_toml(&check).unwrap().fault.mode,
            FaultMode::SkipDocumentCheck
        );
        let late = format!("{SAMPLE}[fault]\nmode = \"release_lock_on_timeout\"\n");
        let mode = KioskSettings::from_toml(&late).unwrap().fault.mode;
        assert_eq!(mode, FaultMode::ReleaseLockOnTimeout);
        assert_eq!(mode.as_str(), "release_lock_on_timeout");
        let unknown = format!("{SAMPLE}[fault]\nmode = \"print_twice\"\n");
        assert!(KioskSettings::from_toml(&unknown).is_err());
        let typo = format!("{SAMPLE}[fault]\nmod = \"skip_document_check\"\n");
        assert!(KioskSettings::from_toml(&typo).is_err());
    }

    #[test]
    fn relative_tls_paths_follow_the_settings_file() {
        let text = SAMPLE
            .replace("/abs/pki/operator-seven.pem", "pki/op.pem")
            .replace("/abs/pki/ca.pem", "pki/ca.pem");
        let dir = std::env::temp_dir().join(format!("kiosk-conf-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("kiosk.toml");
        std::fs::write(&file, &text).unwrap();
        let settings = KioskSettings::load(&file).unwrap();
        assert_eq!(settings.tls.cert, dir.join("pki/op.pem"));
        assert_eq!(settings.tls.ca, dir.join("pki/ca.pem"));
        assert_eq!(
            settings.tls.key,
            PathBuf::from("/abs/pki/operator-seven.key.pem")
        );
        // No state_dir: state/<kiosk_id>/ next to the file.
        assert_eq!(
            settings.state_dir,
            Some(dir.join("state").join("tokyo-0001"))
        );
        let with_state = format!("state_dir = \"st\"\n{}", text);
        std::fs::write(&file, with_state).unwrap();
        let settings = KioskSettings::load(&file).unwrap();
        assert_eq!(settings.state_dir, Some(dir.join("st")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
