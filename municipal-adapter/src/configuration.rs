//! Settings, read from a TOML file (`municipal-adapter serve --config FILE`).
//!
//! ```toml
//! listen = "127.0.0.1:0"
//! database_url = "sqlite:///abs/path/adapter-minokamo.db?mode=rwc"
//! center_public_key = "<base64 32-byte Ed25519 public key of the center>"
//! [tls]
//! cert = "/abs/pki/adapter-x.pem"
//! key = "/abs/pki/adapter-x.key.pem"
//! ca = "/abs/pki/ca.pem"
//! [fault]            # optional, test-only
//! mode = "none"      # none | wrong_request_id | … (every mode: crate::fault)
//! delay_ms = 0
//! [[municipalities]]
//! code = "212113"
//! name = "美濃加茂市"
//! prefecture = "岐阜県"
//! mayor_title = "美濃加茂市長"
//! mayor_name = "藤井 浩人"
//! signing_key_path = "/abs/keys/municipality-212113.seed"
//! register_dir = "/abs/register-212113"   # CSV files (schemas/register/), imported at start
//! [municipalities.catalogue]             # optional; defaults: every type, standard fees
//! tax_switchover = "06-01"
//! closed_dates = ["2026-11-23"]          # 祝日: `weekdays` hours do not apply
//! [[municipalities.catalogue.offerings]] # absent: crate::catalogue::default_offerings()
//! certificate = "family_register_all"
//! routes = ["residence", "domicile"]
//! fee_yen_per_copy = 450
//! max_copies = 5
//! options = []
//! hours = { days = "weekdays", opens_at = "08:30", closes_at = "17:15" }
//! [[municipalities.catalogue.maintenance]]
//! starts_at = "2026-12-06T01:00:00+09:00"
//! ends_at = "2026-12-06T05:00:00+09:00"
//! note = "システム保守"
//! ```
//!
//! Unknown keys are errors: a misspelt `[fault]` key must not silently leave a fault
//! switched on or off.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use schemas::{MunicipalityCode, PublicKey};
use serde::{Deserialize, Serialize};

use crate::fault::FaultSettings;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to bind, e.g. `127.0.0.1:0` (port 0: any free port; see
    /// [`crate::Application::port`]).
    pub listen: String,
    /// `sqlite://…` URL of the adapter's own database (register and stored answers).
    pub database_url: String,
    /// The center's Ed25519 public key (base64): every fetch must be signed by it.
    pub center_public_key: PublicKey,
    /// This server's certificate and key, and the CA client certificates chain to.
    pub tls: mtls::TlsFiles,
    /// Test-only fault injection; absent means none.
    #[serde(default)]
    pub fault: FaultSettings,
    /// The municipalities this process serves (自治体クラウド: one process, several).
    pub municipalities: Vec<MunicipalitySettings>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MunicipalitySettings {
    /// 地方公共団体コード (check digit verified on load).
    pub code: MunicipalityCode,
    /// 市区町村名, e.g. 美濃加茂市.
    pub name: String,
    /// 都道府県名, e.g. 岐阜県.
    pub prefecture: String,
    /// 市区町村長の職名, e.g. 美濃加茂市長.
    pub mayor_title: String,
    /// 市区町村長の氏名.
    pub mayor_name: String,
    /// File holding the base64 of the municipality's 32-byte Ed25519 seed.
    pub signing_key_path: PathBuf,
    /// Directory of the register's CSV files (layout: `schemas/register/`), imported
    /// into the database at start (all or nothing; re-importing the same files changes
    /// nothing).
    pub register_dir: PathBuf,
    /// What this municipality offers at kiosks, published as its signed catalogue.
    #[serde(default)]
    pub catalogue: CatalogueSettings,
}

/// The municipality's catalogue as configured; see [`crate::catalogue`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSettings {
    /// 年度切替日 of the tax certificates, "MM-DD" (default "06-01").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_switchover: Option<String>,
    /// yyyy-mm-dd on which `weekdays` hours do not apply (祝日 etc.).
    #[serde(default)]
    pub closed_dates: Vec<String>,
    /// `None`: every type with the standard fees and hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offerings: Option<Vec<schemas::Offering>>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceSettings>,
}

/// An announced maintenance window, RFC 3339 instants.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSettings {
    pub starts_at: String,
    pub ends_at: String,
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("settings file {path} is invalid: {message}")]
    Parse { path: String, message: String },
    #[error("settings: {0}")]
    Invalid(String),
}

impl Settings {
    /// Reads and checks a settings file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            SettingsError::Parse { message, .. } => SettingsError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and checks settings from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, SettingsError> {
        let settings: Self = toml::from_str(text).map_err(|e| SettingsError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The settings as TOML (what the sandbox writes).
    pub fn to_toml_string(&self) -> Result<String, SettingsError> {
        toml::to_string(self).map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// Checks what serde cannot: at least one municipality, no code twice, no empty
    /// names, a catalogue that validates.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.municipalities.is_empty() {
            return Err(SettingsError::Invalid(
                "at least one [[municipalities]] entry is required".into(),
            ));
        }
        let mut seen = HashSet::new();
        for m in &self.municipalities {
            if !seen.insert(m.code) {
                return Err(SettingsError::Invalid(format!(
                    "municipality {} is listed twice",
                    m.code
                )));
            }
            for (field, value) in [
                ("name", &m.name),
                ("prefecture", &m.prefecture),
                ("mayor_title", &m.mayor_title),
                ("mayor_name", &m.mayor_name),
            ] {
                if value.trim().is_empty() {
                    return Err(SettingsError::Invalid(format!(
                        "municipality {}: {field} must not be empty",
                        m.code
                    )));
                }
            }
            // Builds the catalogue once so that a bad offering, closed date, maintenance
            // instant or switch-over day stops the start instead of the first fetch.
            crate::catalogue::catalogue_for(m, 0)
                .map_err(|e| SettingsError::Invalid(format!("municipality {}: {e}", m.code)))?;
        }
        Ok(())
    }

    pub fn municipality(&self, code: MunicipalityCode) -> Option<&MunicipalitySettings> {
        self.municipalities.iter().find(|m| m.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
listen = "127.0.0.1:0"
database_url = "sqlite::memory:"
center_public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[tls]
cert = "/c.pem"
key = "/k.pem"
ca = "/ca.pem"
[[municipalities]]
code = "212113"
name = "美濃加茂市"
prefecture = "岐阜県"
mayor_title = "美濃加茂市長"
mayor_name = "藤井 浩人"
signing_key_path = "/key.seed"
register_dir = "/register"
"#;

    fn with_catalogue(catalogue: &str) -> Result<Settings, SettingsError> {
        Settings::from_toml_str(&format!("{BASE}[municipalities.catalogue]\n{catalogue}"))
    }

    #[test]
    fn a_valid_catalogue_loads() {
        let settings = with_catalogue(
            "tax_switchover = \"04-01\"\nclosed_dates = [\"2026-11-23\"]\n\
             [[municipalities.catalogue.maintenance]]\nstarts_at = \"2026-12-06T01:00:00+09:00\"\n\
             ends_at = \"2026-12-06T05:00:00+09:00\"\nnote = \"システム保守\"\n",
        )
        .unwrap();
        let catalogue = crate::catalogue::catalogue_for(&settings.municipalities[0], 100).unwrap();
        assert_eq!(catalogue.tax_switchover, "04-01");
        assert_eq!(catalogue.maintenance[0].starts_at_unix_s, 1_796_486_400);
        assert_eq!(catalogue.maintenance[0].ends_at_unix_s, 1_796_500_800);
        assert!(
            Settings::from_toml_str(BASE).is_ok(),
            "the catalogue is optional"
        );
    }

    #[test]
    fn bad_catalogues_stop_the_start() {
        for bad in [
            "tax_switchover = \"6-1\"\n",
            "closed_dates = [\"2026-02-30\"]\n",
            "[[municipalities.catalogue.maintenance]]\nstarts_at = \"tomorrow\"\nends_at = \"2026-12-06T05:00:00+09:00\"\nnote = \"x\"\n",
            "[[municipalities.catalogue.maintenance]]\nstarts_at = \"2026-12-06T05:00:00+09:00\"\nends_at = \"2026-12-06T01:00:00+09:00\"\nnote = \"x\"\n",
            "[[municipalities.catalogue.offerings]]\ncertificate = \"seal_registration\"\nroutes = [\"residence\"]\n\
             fee_yen_per_copy = 300\nmax_copies = 3\noptions = []\n\
             hours = { days = \"every_day\", opens_at = \"05:00\", closes_at = \"23:00\" }\n",
            "[[municipalities.catalogue.offerings]]\ncertificate = \"seal_registration\"\nroutes = []\n\
             fee_yen_per_copy = 300\nmax_copies = 3\noptions = []\n\
             hours = { days = \"every_day\", opens_at = \"08:00\", closes_at = \"20:00\" }\n",
        ] {
            assert!(
                matches!(with_catalogue(bad), Err(SettingsError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
