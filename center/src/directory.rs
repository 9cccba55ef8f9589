//! Who the center knows: municipalities (adapter, registered keys, official seal
//! image) and chain operators (their kiosks). Loaded once from the settings.
//!
//! A municipality's keys are the seal-key entries the trust list is built from
//! (`crate::trust_list::seal_keys`), periods and revocation included: the binding
//! guard accepts an answer only under a key the published list allows at the moment
//! of issuance.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use composer::SealImage;
use schemas::{
    Kid, KioskId, MunicipalityCode, MunicipalityEntry, OperatorId, PublicKey, TrustedKey,
};

use crate::configuration::Settings;
use crate::trust_list::TrustListError;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("municipality {code}: {reason}")]
    Municipality {
        code: MunicipalityCode,
        reason: String,
    },
    #[error("seal keys: {0}")]
    SealKeys(#[from] TrustListError),
}

pub struct Municipality {
    pub code: MunicipalityCode,
    pub name: String,
    pub adapter_url: String,
    /// Registered signing keys by kid, whatever their period; signed answers are
    /// checked with [`Municipality::keys_usable_at`] or `seal_keys`.
    pub keys: HashMap<Kid, PublicKey>,
    /// The same keys as the trust list lists them (period, revocation): what a
    /// certificate answer and its seals are checked against.
    pub seal_keys: HashMap<Kid, TrustedKey>,
    pub seal_image: Arc<SealImage>,
}

impl Municipality {
    /// The keys that may sign at `at_unix_s` (inside their period, not compromised by
    /// then): what the signed catalogue and 利用登録 receipts are checked with.
    pub fn keys_usable_at(&self, at_unix_s: i64) -> HashMap<Kid, PublicKey> {
        self.seal_keys
            .iter()
            .filter(|(_, key)| crate::trust_list::may_sign_at(key, at_unix_s).is_ok())
            .map(|(kid, key)| (*kid, key.public_key))
            .collect()
    }
}

impl std::fmt::Debug for Municipality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Municipality")
            .field("code", &self.code)
            .field("adapter_url", &self.adapter_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub struct Directory {
    municipalities: HashMap<MunicipalityCode, Municipality>,
    operators: HashMap<OperatorId, HashSet<KioskId>>,
}

impl Directory {
    pub fn from_settings(settings: &Settings) -> Result<Self, DirectoryError> {
        let mut municipalities = HashMap::new();
        let all_seal_keys = crate::trust_list::seal_keys(settings)?;
        for m in &settings.municipalities {
            let fail = |reason: String| DirectoryError::Municipality {
                code: m.code,
                reason,
            };
            let seal_keys: HashMap<Kid, TrustedKey> = all_seal_keys
                .iter()
                .filter(|k| k.municipality_code == m.code)
                .map(|k| (k.kid, k.clone()))
                .collect();
            let keys: HashMap<Kid, PublicKey> = seal_keys
                .iter()
                .map(|(kid, k)| (*kid, k.public_key))
                .collect();
            if keys.is_empty() {
                return Err(fail("no signing key registered".into()));
            }
            let png = std::fs::read(&m.seal_image_path)
                .map_err(|e| fail(format!("seal image {}: {e}", m.seal_image_path.display())))?;
            let seal_image =
                SealImage::from_png(&png).map_err(|e| fail(format!("seal image: {e}")))?;
            municipalities.insert(
                m.code,
                Municipality {
                    code: m.code,
                    name: m.name.clone(),
                    adapter_url: m.adapter_url.trim_end_matches('/').to_owned(),
                    keys,
                    seal_keys,
                    seal_image: Arc::new(seal_image),
                },
            );
        }
        let operators = settings
            .operators
            .iter()
            .map(|o| (o.id.clone(), o.kiosks.iter().cloned().collect()))
            .collect();
        Ok(Self {
            municipalities,
            operators,
        })
    }

    pub fn municipality(&self, code: &MunicipalityCode) -> Option<&Municipality> {
        self.municipalities.get(code)
    }

    /// Every connected municipality, sorted by code (the kiosk's 本籍地 picker).
    pub fn entries(&self) -> Vec<MunicipalityEntry> {
        let mut entries: Vec<_> = self
            .municipalities
            .values()
            .map(|m| MunicipalityEntry {
                code: m.code,
                name: m.name.clone(),
            })
            .collect();
        entries.sort_by_key(|e| e.code);
        entries
    }

    pub fn kiosk_belongs_to(&self, operator: &OperatorId, kiosk: &KioskId) -> bool {
        self.operators
            .get(operator)
            .is_some_and(|kiosks| kiosks.contains(kiosk))
    }
}
