//! The trust list the center signs and publishes (DESIGN.md §5, contract in
//! `schemas::trust_list`): which seal key may sign for which municipality, and when.
//!
//! Content comes from the settings only (`[[municipalities.seal_keys]]`, or one default
//! entry per `public_keys` key; `[trust_list] revoked_documents`). The version is
//! decided by the database (`trust_list_versions`): a replica whose content digest
//! differs from the latest published one inserts the next version, so versions only go
//! up across restarts and replicas. `AppState` keeps the signed list as a cache of that
//! decision and re-signs it (same version, new issue time) before it goes stale.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use schemas::crypto::{canonical_bytes, sha256};
use schemas::{
    Digest32, KeyPair, KeyStatus, MunicipalityCode, RequestId, RevokedDocument, Signed,
    SignedTrustList, SigningError, TrustList, TrustedKey, MAX_REVOKED_DOCUMENTS, MAX_TRUSTED_KEYS,
    TRUST_LIST_FORMAT,
};
use sqlx::Row as _;

use crate::configuration::{SealKeySettings, Settings};
use crate::store::{Decision, Store};

/// Period of a key listed only in `public_keys` (no `seal_keys`): it may sign from
/// 2020-01-01T00:00:00Z ...
pub const DEFAULT_NOT_BEFORE_UNIX_S: i64 = 1_577_836_800;
/// ... until 2100-01-01T00:00:00Z (no planned end) ...
pub const DEFAULT_USAGE_END_UNIX_S: i64 = 4_102_444_800;
/// ... and its seals verify for ten more years, until 2110-01-01T00:00:00Z.
pub const DEFAULT_VERIFY_UNTIL_UNIX_S: i64 = 4_417_977_600;

/// Bounds on `[trust_list] validity_s`: at least an hour (re-signing at half of it),
/// at most 30 days (a verifier must learn of a revocation within that).
pub const MIN_VALIDITY_S: i64 = 3_600;
pub const MAX_VALIDITY_S: i64 = 2_592_000;

/// Attempts to publish when other replicas keep inserting versions concurrently.
const MAX_PUBLISH_ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TrustListError {
    #[error("{context}: {reason}")]
    Setting { context: String, reason: String },
    #[error("signing: {0}")]
    Signing(#[from] SigningError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Connect(#[from] crate::db::DbError),
    #[error("stored trust list version is malformed: {0}")]
    Corrupt(String),
    #[error("could not publish a version after {0} attempts (other replicas kept publishing)")]
    Raced(usize),
    #[error("center key {path}: {reason}")]
    CenterKey { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn setting(context: impl Into<String>, reason: impl Into<String>) -> TrustListError {
    TrustListError::Setting {
        context: context.into(),
        reason: reason.into(),
    }
}

/// What the list says, apart from its version and issue time; sorted so that equal
/// settings always give equal bytes (and one digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    pub keys: Vec<TrustedKey>,
    pub revoked_documents: Vec<RevokedDocument>,
    pub validity_s: i64,
}

fn parse_instant(context: &str, field: &str, text: &str) -> Result<i64, TrustListError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| setting(context, format!("{field} {text:?} is not RFC 3339: {e}")))
}

fn seal_key(code: MunicipalityCode, entry: &SealKeySettings) -> Result<TrustedKey, TrustListError> {
    let context = format!("municipality {code} seal key");
    let public_key =
        crate::card_auth::parse_public_key(&entry.public_key).map_err(|e| setting(&context, e))?;
    let not_before = parse_instant(&context, "not_before", &entry.not_before)?;
    let usage_end = parse_instant(&context, "usage_end", &entry.usage_end)?;
    let verify_until = parse_instant(&context, "verify_until", &entry.verify_until)?;
    let status = match &entry.compromised_at {
        None => KeyStatus::Active,
        Some(text) => KeyStatus::Revoked {
            compromised_at_unix_s: parse_instant(&context, "compromised_at", text)?,
        },
    };
    Ok(TrustedKey {
        kid: public_key.kid(),
        public_key,
        municipality_code: code,
        not_before_unix_s: not_before,
        usage_end_unix_s: usage_end,
        verify_until_unix_s: verify_until,
        status,
    })
}

/// The seal keys of every municipality in the settings, parsed and checked once: the
/// one source of truth for both the published trust list ([`Content`]) and the keys
/// the center accepts a municipality's answers under (`crate::directory`), so the
/// center never hands out a document that the list makes INVALID.
///
/// A municipality's `[[seal_keys]]` entries, or when it has none, one entry per
/// `public_keys` key with the default period. With `seal_keys`, every `public_keys` key
/// must also be one of them (a key registered without a period would be a second,
/// silent truth). Refused: periods out of order, a kid listed twice, more than
/// [`MAX_TRUSTED_KEYS`] keys. In settings order.
pub fn seal_keys(settings: &Settings) -> Result<Vec<TrustedKey>, TrustListError> {
    let mut keys = Vec::new();
    for m in &settings.municipalities {
        if m.seal_keys.is_empty() {
            for text in &m.public_keys {
                let public_key = crate::card_auth::parse_public_key(text)
                    .map_err(|e| setting(format!("municipality {} key", m.code), e))?;
                keys.push(TrustedKey {
                    kid: public_key.kid(),
                    public_key,
                    municipality_code: m.code,
                    not_before_unix_s: DEFAULT_NOT_BEFORE_UNIX_S,
                    usage_end_unix_s: DEFAULT_USAGE_END_UNIX_S,
                    verify_until_unix_s: DEFAULT_VERIFY_UNTIL_UNIX_S,
                    status: KeyStatus::Active,
                });
            }
        } else {
            let first = keys.len();
            for entry in &m.seal_keys {
                keys.push(seal_key(m.code, entry)?);
            }
            for text in &m.public_keys {
                let public_key = crate::card_auth::parse_public_key(text)
                    .map_err(|e| setting(format!("municipality {} key", m.code), e))?;
                if !keys[first..].iter().any(|k| k.public_key == public_key) {
                    return Err(setting(
                        format!("municipality {} key {}", m.code, public_key.kid()),
                        "listed in public_keys but not in seal_keys (give it a period there)",
                    ));
                }
            }
        }
        if keys.len() > MAX_TRUSTED_KEYS {
            return Err(setting(
                "seal keys",
                format!("more than {MAX_TRUSTED_KEYS} keys"),
            ));
        }
    }
    let mut kids = HashSet::new();
    for key in &keys {
        let context = format!(
            "municipality {} seal key {}",
            key.municipality_code, key.kid
        );
        if key.usage_end_unix_s < key.not_before_unix_s {
            return Err(setting(context, "usage_end is before not_before"));
        }
        if key.verify_until_unix_s < key.usage_end_unix_s {
            return Err(setting(context, "verify_until is before usage_end"));
        }
        // A kid names one key for one municipality: listing it twice (for the same
        // or another municipality) would make a seal's issuer ambiguous.
        if !kids.insert(key.kid) {
            return Err(setting(context, "kid is listed more than once"));
        }
    }
    Ok(keys)
}

/// Why a listed key may not sign at an instant (the verifier's `key_not_valid_at_issue`
/// and `key_revoked`, decided the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyUseError {
    #[error("key is not valid before {not_before_unix_s} (unix s)")]
    NotYetValid { not_before_unix_s: i64 },
    #[error("key's usage ended at {usage_end_unix_s} (unix s)")]
    UsageEnded { usage_end_unix_s: i64 },
    #[error("key is revoked, compromised at {compromised_at_unix_s} (unix s)")]
    Revoked { compromised_at_unix_s: i64 },
}

/// Whether `key` may sign a seal issued at `at_unix_s`, by the rules of
/// `schemas::trust_list`: `not_before <= t <= usage_end` and not revoked with
/// `compromised_at <= t`.
pub fn may_sign_at(key: &TrustedKey, at_unix_s: i64) -> Result<(), KeyUseError> {
    if at_unix_s < key.not_before_unix_s {
        return Err(KeyUseError::NotYetValid {
            not_before_unix_s: key.not_before_unix_s,
        });
    }
    if at_unix_s > key.usage_end_unix_s {
        return Err(KeyUseError::UsageEnded {
            usage_end_unix_s: key.usage_end_unix_s,
        });
    }
    if let KeyStatus::Revoked {
        compromised_at_unix_s,
    } = key.status
    {
        if compromised_at_unix_s <= at_unix_s {
            return Err(KeyUseError::Revoked {
                compromised_at_unix_s,
            });
        }
    }
    Ok(())
}

impl Content {
    /// Reads and validates the trust list part of the settings.
    pub fn from_settings(settings: &Settings) -> Result<Self, TrustListError> {
        let validity_s = settings.trust_list.validity_s;
        if !(MIN_VALIDITY_S..=MAX_VALIDITY_S).contains(&validity_s) {
            return Err(setting(
                "trust_list.validity_s",
                format!("must be in {MIN_VALIDITY_S}..={MAX_VALIDITY_S}"),
            ));
        }
        let mut keys = seal_keys(settings)?;
        let revoked = &settings.trust_list.revoked_documents;
        if revoked.len() > MAX_REVOKED_DOCUMENTS {
            return Err(setting(
                "trust_list.revoked_documents",
                format!("more than {MAX_REVOKED_DOCUMENTS} entries"),
            ));
        }
        let mut revoked_documents = Vec::with_capacity(revoked.len());
        let mut serials = HashSet::new();
        for entry in revoked {
            let context = format!("trust_list.revoked_documents {:?}", entry.request_id);
            let request_id: RequestId = entry
                .request_id
                .parse()
                .map_err(|e: schemas::IdError| setting(&context, e.to_string()))?;
            if !serials.insert(request_id) {
                return Err(setting(context, "listed more than once"));
            }
            revoked_documents.push(RevokedDocument {
                serial_sha256: Digest32(sha256(request_id.as_bytes())),
                revoked_at_unix_s: parse_instant(&context, "revoked_at", &entry.revoked_at)?,
            });
        }
        keys.sort_by_key(|k| (k.municipality_code, k.not_before_unix_s, k.kid));
        revoked_documents.sort_by_key(|d| d.serial_sha256.0);
        Ok(Self {
            keys,
            revoked_documents,
            validity_s,
        })
    }

    /// Lower-case hex SHA-256 of the canonical JSON of the keys and revoked documents:
    /// what a new version is decided on (the validity period changes no verdict's
    /// ground, so it is not part of it).
    pub fn digest_hex(&self) -> Result<String, TrustListError> {
        let bytes = canonical_bytes(&serde_json::json!({
            "format": TRUST_LIST_FORMAT,
            "keys": self.keys,
            "revoked_documents": self.revoked_documents,
        }))?;
        Ok(hex::encode(sha256(&bytes)))
    }

    /// The list as version `version`, issued at `now_unix_s`.
    pub fn to_list(&self, version: u64, now_unix_s: i64) -> TrustList {
        TrustList {
            format: TRUST_LIST_FORMAT.to_owned(),
            version,
            issued_at_unix_s: now_unix_s,
            next_update_unix_s: now_unix_s.saturating_add(self.validity_s),
            keys: self.keys.clone(),
            revoked_documents: self.revoked_documents.clone(),
        }
    }
}

/// The unsigned list of `settings` as version `version`, issued at `now_unix_s`.
pub fn build(
    settings: &Settings,
    version: u64,
    now_unix_s: i64,
) -> Result<TrustList, TrustListError> {
    Ok(Content::from_settings(settings)?.to_list(version, now_unix_s))
}

/// Signs `list` with the center's key.
pub fn sign(list: TrustList, center_key: &KeyPair) -> Result<SignedTrustList, TrustListError> {
    Ok(Signed::sign(list, center_key)?)
}

/// The version of `content`: the latest published version when its digest matches,
/// otherwise the next one, inserted now. Two replicas racing to insert the same version
/// are serialised by the primary key; the loser re-reads and (with the same content)
/// takes the winner's version.
pub async fn publish(
    store: &Store,
    content: &Content,
    now_unix_ms: i64,
) -> Result<u64, TrustListError> {
    let digest = content.digest_hex()?;
    for _ in 0..MAX_PUBLISH_ATTEMPTS {
        let latest = sqlx::query(
            "SELECT version, content_sha256 FROM trust_list_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(store.pool())
        .await?;
        let latest_version = match latest {
            Some(row) => {
                let version: i64 = row.try_get("version")?;
                let stored: String = row.try_get("content_sha256")?;
                if stored == digest {
                    return u64::try_from(version)
                        .map_err(|_| TrustListError::Corrupt(format!("version {version}")));
                }
                version
            }
            None => 0,
        };
        let next = latest_version
            .checked_add(1)
            .ok_or_else(|| TrustListError::Corrupt(format!("version {latest_version}")))?;
        let row_digest = digest.clone();
        let inserted = store
            .write(move |connection| {
                async move {
                    let inserted = sqlx::query(
                        "INSERT INTO trust_list_versions (version, content_sha256, \
                           published_at_unix_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(next)
                    .bind(&row_digest)
                    .bind(now_unix_ms)
                    .execute(&mut *connection)
                    .await?;
                    Ok::<_, TrustListError>(Decision::Commit(inserted.rows_affected()))
                }
                .boxed()
            })
            .await?;
        if inserted == 1 {
            tracing::info!(version = next, content_sha256 = %digest, "trust list version published");
            return u64::try_from(next)
                .map_err(|_| TrustListError::Corrupt(format!("version {next}")));
        }
    }
    Err(TrustListError::Raced(MAX_PUBLISH_ATTEMPTS))
}

/// The signed list served by `GET /v1/trust-list`: a cache of the content and the
/// version the database decided at start, re-signed with a fresh issue time once half
/// of the validity has passed (or the clock went back).
#[derive(Debug)]
pub struct TrustListCache {
    content: Content,
    version: u64,
    signed: Mutex<Arc<SignedTrustList>>,
}

impl TrustListCache {
    pub fn new(
        content: Content,
        version: u64,
        center_key: &KeyPair,
        now_unix_s: i64,
    ) -> Result<Self, TrustListError> {
        let signed = sign(content.to_list(version, now_unix_s), center_key)?;
        Ok(Self {
            content,
            version,
            signed: Mutex::new(Arc::new(signed)),
        })
    }

    /// Publishes the settings' content (deciding its version in the database) and
    /// signs the first list.
    pub async fn publish(
        store: &Store,
        settings: &Settings,
        center_key: &KeyPair,
        now_unix_ms: i64,
    ) -> Result<Self, TrustListError> {
        let content = Content::from_settings(settings)?;
        let version = publish(store, &content, now_unix_ms).await?;
        Self::new(content, version, center_key, now_unix_ms.div_euclid(1000))
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The list to serve at `now_unix_s`.
    pub fn current(
        &self,
        center_key: &KeyPair,
        now_unix_s: i64,
    ) -> Result<Arc<SignedTrustList>, TrustListError> {
        // A panic elsewhere while holding the lock leaves a whole, signed list behind.
        let mut guard = self
            .signed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let issued_at = guard.payload.issued_at_unix_s;
        let age_s = now_unix_s.saturating_sub(issued_at);
        if age_s < 0 || age_s >= self.content.validity_s / 2 {
            *guard = Arc::new(sign(
                self.content.to_list(self.version, now_unix_s),
                center_key,
            )?);
        }
        Ok(Arc::clone(&guard))
    }
}

/// Reads the center key (base64 seed file).
pub fn load_center_key(path: &Path) -> Result<KeyPair, TrustListError> {
    let fail = |reason: String| TrustListError::CenterKey {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    KeyPair::from_seed_base64(&text).map_err(|e| fail(e.to_string()))
}

/// `center trust-list export`: publishes the settings' content in the settings'
/// database (a new version only if it changed), signs the list at the system clock and
/// writes it as JSON to `out_file` (atomically: a temporary file, then a rename).
pub async fn export(
    settings: &Settings,
    out_file: &Path,
) -> Result<SignedTrustList, TrustListError> {
    export_at(settings, out_file, jiff::Timestamp::now().as_millisecond()).await
}

/// [`export`] at a given instant.
pub async fn export_at(
    settings: &Settings,
    out_file: &Path,
    now_unix_ms: i64,
) -> Result<SignedTrustList, TrustListError> {
    let center_key = load_center_key(&settings.center_key_path)?;
    let content = Content::from_settings(settings)?;
    let pool = crate::db::connect(&settings.database_url).await?;
    let published = publish(&pool, &content, now_unix_ms).await;
    pool.close().await;
    let signed = sign(
        content.to_list(published?, now_unix_ms.div_euclid(1000)),
        &center_key,
    )?;
    write_json(out_file, &signed)?;
    Ok(signed)
}

fn write_json(out_file: &Path, signed: &SignedTrustList) -> Result<(), TrustListError> {
    let fail = |source: std::io::Error| TrustListError::Write {
        path: out_file.display().to_string(),
        source,
    };
    let mut text = serde_json::to_string_pretty(signed)
        .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
    text.push('\n');
    let mut tmp_name = out_file.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = out_file.with_file_name(tmp_name);
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, out_file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix_s(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn default_period_constants_are_the_documented_instants() {
        assert_eq!(DEFAULT_NOT_BEFORE_UNIX_S, unix_s("2020-01-01T00:00:00Z"));
        assert_eq!(DEFAULT_USAGE_END_UNIX_S, unix_s("2100-01-01T00:00:00Z"));
        assert_eq!(DEFAULT_VERIFY_UNTIL_UNIX_S, unix_s("2110-01-01T00:00:00Z"));
    }

    fn b64(key: &KeyPair) -> String {
        schemas::b64::Base64Bytes::encode(&key.public().0)
    }

    /// One municipality with `public_keys` and the `seal_keys` entries given as TOML.
    fn settings(public_keys: &[&KeyPair], seal_keys_toml: &str) -> Settings {
        let keys: Vec<String> = public_keys
            .iter()
            .map(|k| format!("\"{}\"", b64(k)))
            .collect();
        let text = format!(
            r#"
kiosk_listen = "127.0.0.1:0"
database_url = "sqlite::memory:"
center_key_path = "/nonexistent/center.seed"
card_authority_public_key = "{}"
revocation_list_path = "/nonexistent/revocation.json"
verify_url = "https://127.0.0.1/verify"
[kiosk_tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
ca = "/nonexistent/ca.pem"
[lgwan_tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
ca = "/nonexistent/ca.pem"
[[municipalities]]
code = "112330"
name = "北本市"
adapter_url = "https://127.0.0.1:1"
public_keys = [{}]
seal_image_path = "/nonexistent/seal.png"
{seal_keys_toml}
"#,
            b64(&KeyPair::generate()),
            keys.join(", ")
        );
        toml::from_str(&text).unwrap()
    }

    fn seal_key_toml(key: &KeyPair, not_before: &str, usage_end: &str) -> String {
        format!(
            r#"
[[municipalities.seal_keys]]
public_key = "{}"
not_before = "{not_before}"
usage_end = "{usage_end}"
verify_until = "2040-01-01T00:00:00+09:00"
"#,
            b64(key)
        )
    }

    #[test]
    fn seal_keys_are_the_one_source_for_the_list_and_the_directory() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        // Without seal_keys: the default period for every registered key.
        let keys = seal_keys(&settings(&[&a], "")).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].usage_end_unix_s, DEFAULT_USAGE_END_UNIX_S);
        // With seal_keys: those entries, a retired key included.
        let rotated = format!(
            "{}{}",
            seal_key_toml(&a, "2020-01-01T00:00:00+09:00", "2026-04-01T00:00:00+09:00"),
            seal_key_toml(&b, "2026-03-01T00:00:00+09:00", "2030-01-01T00:00:00+09:00"),
        );
        let keys = seal_keys(&settings(&[&b], &rotated)).unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid).collect::<Vec<_>>(),
            [a.kid(), b.kid()]
        );
        assert_eq!(
            Content::from_settings(&settings(&[&b], &rotated))
                .unwrap()
                .keys
                .len(),
            2
        );
        // A registered key with no period is refused, at settings validation too.
        let only_a = seal_key_toml(&a, "2020-01-01T00:00:00+09:00", "2030-01-01T00:00:00+09:00");
        let unlisted = settings(&[&a, &b], &only_a);
        let error = seal_keys(&unlisted).unwrap_err().to_string();
        assert!(error.contains("not in seal_keys"), "{error}");
        assert!(error.contains(&b.kid().to_string()), "{error}");
        assert!(unlisted.validate().is_err());
        // Periods out of order.
        let reversed = seal_key_toml(&a, "2030-01-01T00:00:00+09:00", "2020-01-01T00:00:00+09:00");
        let error = seal_keys(&settings(&[&a], &reversed))
            .unwrap_err()
            .to_string();
        assert!(error.contains("usage_end is before not_before"), "{error}");
    }

    #[test]
    fn may_sign_only_inside_the_period_and_before_a_compromise() {
        let key = KeyPair::generate();
        let entry = |status: KeyStatus| TrustedKey {
            kid: key.kid(),
            public_key: key.public(),
            municipality_code: "112330".parse().unwrap(),
            not_before_unix_s: 100,
            usage_end_unix_s: 200,
            verify_until_unix_s: 300,
            status,
        };
        let active = entry(KeyStatus::Active);
        assert_eq!(may_sign_at(&active, 100), Ok(()));
        assert_eq!(may_sign_at(&active, 200), Ok(()));
        assert_eq!(
            may_sign_at(&active, 99),
            Err(KeyUseError::NotYetValid {
                not_before_unix_s: 100
            })
        );
        assert_eq!(
            may_sign_at(&active, 201),
            Err(KeyUseError::UsageEnded {
                usage_end_unix_s: 200
            })
        );
        let revoked = entry(KeyStatus::Revoked {
            compromised_at_unix_s: 150,
        });
        assert_eq!(may_sign_at(&revoked, 149), Ok(()));
        assert_eq!(
            may_sign_at(&revoked, 150),
            Err(KeyUseError::Revoked {
                compromised_at_unix_s: 150
            })
        );
    }
}
