//! Who the center knows: municipalities (adapter, registered keys, official seal
//! image) and chain operators (their kiosks). Loaded once from the settings.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use composer::SealImage;
use schemas::{Kid, KioskId, MunicipalityCode, MunicipalityEntry, OperatorId, PublicKey};

use crate::card_auth::parse_public_key;
use crate::configuration::Settings;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("municipality {code}: {reason}")]
    Municipality {
        code: MunicipalityCode,
        reason: String,
    },
}

pub struct Municipality {
    pub code: MunicipalityCode,
    pub name: String,
    pub adapter_url: String,
    /// Registered signing keys by kid.
    pub keys: HashMap<Kid, PublicKey>,
    pub seal_image: Arc<SealImage>,
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
        for m in &settings.municipalities {
            let fail = |reason: String| DirectoryError::Municipality {
                code: m.code,
                reason,
            };
            let mut keys = HashMap::new();
            for text in &m.public_keys {
                let key = parse_public_key(text).map_err(&fail)?;
                keys.insert(key.kid(), key);
            }
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
