//! The trust list from settings: build, sign and verify; the version decided by the
//! database (two replicas over one store agree; content changes bump it, nothing else
//! does); re-signing before it goes stale; the settings it refuses; the export file.

mod common;

use center::configuration::{
    ConfigError, MunicipalitySettings, RevokedDocumentSettings, SealKeySettings, Settings,
};
use center::trust_list::{self, Content, TrustListCache};
use common::TempStore;
use schemas::b64::Base64Bytes;
use schemas::{
    KeyPair, KeyStatus, MunicipalityCode, RequestId, SignedTrustList, TrustList, TRUST_LIST_FORMAT,
};

const MINOKAMO: &str = "212113";
const SAKAHOGI: &str = "215015";
const KAZO: &str = "112330";

/// 2026-11-25T10:00:00+09:00.
const NOW_UNIX_S: i64 = 1_795_568_400;

fn code(text: &str) -> MunicipalityCode {
    MunicipalityCode::parse(text).unwrap()
}

fn b64(key: &KeyPair) -> String {
    Base64Bytes::encode(&key.public().0)
}

fn unix_s(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Settings text with no municipality; files are never read by what these tests call.
fn base_toml() -> String {
    format!(
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
"#,
        b64(&KeyPair::generate())
    )
}

fn base_settings() -> Settings {
    toml::from_str(&base_toml()).unwrap()
}

fn municipality(code_text: &str, public_keys: &[&KeyPair]) -> MunicipalitySettings {
    MunicipalitySettings {
        code: code(code_text),
        name: format!("m{code_text}"),
        adapter_url: "https://127.0.0.1:1".into(),
        public_keys: public_keys.iter().map(|k| b64(k)).collect(),
        seal_image_path: "/nonexistent/seal.png".into(),
        seal_keys: Vec::new(),
    }
}

fn seal_key(
    key: &KeyPair,
    not_before: &str,
    usage_end: &str,
    verify_until: &str,
) -> SealKeySettings {
    SealKeySettings {
        public_key: b64(key),
        not_before: not_before.into(),
        usage_end: usage_end.into(),
        verify_until: verify_until.into(),
        compromised_at: None,
    }
}

struct Keys {
    minokamo: KeyPair,
    sakahogi_old: KeyPair,
    sakahogi_new: KeyPair,
    kazo: KeyPair,
}

/// 美濃加茂市 with only `public_keys` (default period); 坂祝町 after a rotation (old key
/// retired, still verifying; new key active); 加須市 with a compromised key.
fn sample() -> (Settings, Keys) {
    let keys = Keys {
        minokamo: KeyPair::generate(),
        sakahogi_old: KeyPair::generate(),
        sakahogi_new: KeyPair::generate(),
        kazo: KeyPair::generate(),
    };
    let mut settings = base_settings();
    settings
        .municipalities
        .push(municipality(MINOKAMO, &[&keys.minokamo]));
    let mut sakahogi = municipality(SAKAHOGI, &[&keys.sakahogi_new]);
    sakahogi.seal_keys = vec![
        seal_key(
            &keys.sakahogi_new,
            "2026-04-01T00:00:00+09:00",
            "2031-03-31T23:59:59+09:00",
            "2041-03-31T23:59:59+09:00",
        ),
        seal_key(
            &keys.sakahogi_old,
            "2021-04-01T00:00:00+09:00",
            "2026-04-01T00:00:00+09:00",
            "2036-04-01T00:00:00+09:00",
        ),
    ];
    settings.municipalities.push(sakahogi);
    let mut kazo = municipality(KAZO, &[&keys.kazo]);
    kazo.seal_keys = vec![SealKeySettings {
        compromised_at: Some("2026-10-01T12:00:00Z".into()),
        ..seal_key(
            &keys.kazo,
            "2024-01-01T00:00:00Z",
            "2029-01-01T00:00:00Z",
            "2039-01-01T00:00:00Z",
        )
    }];
    settings.municipalities.push(kazo);
    (settings, keys)
}

fn revoked(request_id: RequestId, at: &str) -> RevokedDocumentSettings {
    RevokedDocumentSettings {
        request_id: request_id.to_string(),
        revoked_at: at.into(),
    }
}

fn key_of<'a>(list: &'a TrustList, key: &KeyPair) -> &'a schemas::TrustedKey {
    list.keys
        .iter()
        .find(|k| k.kid == key.kid())
        .unwrap_or_else(|| panic!("kid {} not listed", key.kid()))
}

#[test]
fn build_sign_verify_round_trip() {
    let (mut settings, keys) = sample();
    let withdrawn = RequestId::new_random();
    settings.trust_list.revoked_documents = vec![revoked(withdrawn, "2026-11-20T09:00:00+09:00")];
    settings.validate().expect("valid settings");

    let list = trust_list::build(&settings, 7, NOW_UNIX_S).unwrap();
    assert_eq!(list.format, TRUST_LIST_FORMAT);
    assert_eq!(list.version, 7);
    assert_eq!(list.issued_at_unix_s, NOW_UNIX_S);
    assert_eq!(list.next_update_unix_s, NOW_UNIX_S + 86_400);
    assert_eq!(list.keys.len(), 4);

    // Only public_keys: the documented default period.
    let minokamo = key_of(&list, &keys.minokamo);
    assert_eq!(minokamo.municipality_code, code(MINOKAMO));
    assert_eq!(minokamo.public_key, keys.minokamo.public());
    assert_eq!(minokamo.not_before_unix_s, unix_s("2020-01-01T00:00:00Z"));
    assert_eq!(minokamo.usage_end_unix_s, unix_s("2100-01-01T00:00:00Z"));
    assert_eq!(minokamo.verify_until_unix_s, unix_s("2110-01-01T00:00:00Z"));
    assert_eq!(minokamo.status, KeyStatus::Active);

    // seal_keys replace public_keys, both rotation entries listed with their periods.
    let old = key_of(&list, &keys.sakahogi_old);
    assert_eq!(old.municipality_code, code(SAKAHOGI));
    assert_eq!(old.not_before_unix_s, unix_s("2021-03-31T15:00:00Z"));
    assert_eq!(old.usage_end_unix_s, unix_s("2026-03-31T15:00:00Z"));
    assert_eq!(old.verify_until_unix_s, unix_s("2036-03-31T15:00:00Z"));
    let new = key_of(&list, &keys.sakahogi_new);
    assert_eq!(new.municipality_code, code(SAKAHOGI));
    assert_eq!(new.not_before_unix_s, old.usage_end_unix_s);

    let kazo = key_of(&list, &keys.kazo);
    assert_eq!(
        kazo.status,
        KeyStatus::Revoked {
            compromised_at_unix_s: unix_s("2026-10-01T12:00:00Z")
        }
    );

    // The revoked document appears only as SHA-256 of its 16 id bytes.
    assert_eq!(list.revoked_documents.len(), 1);
    let hashed = &list.revoked_documents[0];
    assert_eq!(
        hashed.serial_sha256.0,
        schemas::crypto::sha256(withdrawn.as_bytes())
    );
    assert_eq!(hashed.revoked_at_unix_s, unix_s("2026-11-20T00:00:00Z"));

    // Signed, serialised, parsed back and verified with the center's public key.
    let center_key = KeyPair::generate();
    let signed = trust_list::sign(list.clone(), &center_key).unwrap();
    let json = serde_json::to_string(&signed).unwrap();
    assert!(!json.contains(&withdrawn.to_string()), "request id leaked");
    let parsed: SignedTrustList = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.verify(&center_key.public()).unwrap(), &list);
    // Another key, or any change of content, does not verify.
    assert!(parsed.verify(&KeyPair::generate().public()).is_err());
    let mut forged = parsed.clone();
    // Sorted by code, 加須市 (112330) first: hand its key to 美濃加茂市.
    assert_eq!(forged.payload.keys[0].municipality_code, code(KAZO));
    forged.payload.keys[0].municipality_code = code(MINOKAMO);
    assert!(forged.verify(&center_key.public()).is_err());
    let mut bumped = parsed;
    bumped.payload.version = 8;
    assert!(bumped.verify(&center_key.public()).is_err());
}

#[test]
fn the_order_of_settings_entries_does_not_change_the_content() {
    let (settings, _) = sample();
    let mut reordered = settings.clone();
    reordered.municipalities.reverse();
    for m in &mut reordered.municipalities {
        m.seal_keys.reverse();
    }
    let a = Content::from_settings(&settings).unwrap();
    let b = Content::from_settings(&reordered).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.digest_hex().unwrap(), b.digest_hex().unwrap());
}

#[tokio::test]
async fn versions_bump_on_content_changes_only_and_replicas_agree() {
    let store = TempStore::new("trust-list").await;
    // A second replica: its own pool over the same database.
    let replica = center::db::connect(&store.url()).await.unwrap();
    let (settings, _) = sample();
    let content = |s: &Settings| Content::from_settings(s).unwrap();
    let t = 1_796_086_800_000;

    assert_eq!(
        trust_list::publish(&store.pool, &content(&settings), t)
            .await
            .unwrap(),
        1
    );
    // Restarts and other replicas with the same settings keep the version.
    assert_eq!(
        trust_list::publish(&replica, &content(&settings), t + 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        trust_list::publish(&store.pool, &content(&settings), t + 2)
            .await
            .unwrap(),
        1
    );
    // The validity period is not content.
    let mut longer = settings.clone();
    longer.trust_list.validity_s = 7 * 86_400;
    assert_eq!(
        trust_list::publish(&replica, &content(&longer), t + 3)
            .await
            .unwrap(),
        1
    );

    // A revoked document is a change: the next version, seen by both replicas.
    let mut revoking = settings.clone();
    revoking.trust_list.revoked_documents = vec![revoked(
        RequestId::new_random(),
        "2026-11-25T09:00:00+09:00",
    )];
    assert_eq!(
        trust_list::publish(&replica, &content(&revoking), t + 4)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        trust_list::publish(&store.pool, &content(&revoking), t + 5)
            .await
            .unwrap(),
        2
    );

    // A compromised key is a change too.
    let mut compromised = revoking.clone();
    compromised.municipalities[1].seal_keys[0].compromised_at =
        Some("2026-11-25T08:00:00+09:00".into());
    assert_eq!(
        trust_list::publish(&store.pool, &content(&compromised), t + 6)
            .await
            .unwrap(),
        3
    );

    // A replica still on older settings publishes them as a new version (never an old
    // number: verifiers keep the highest version they have seen).
    assert_eq!(
        trust_list::publish(&replica, &content(&settings), t + 7)
            .await
            .unwrap(),
        4
    );

    // Many replicas starting at once with new content agree on one new version.
    let mut rotated = settings.clone();
    rotated.municipalities[0]
        .public_keys
        .push(b64(&KeyPair::generate()));
    let new_content = content(&rotated);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = if i % 2 == 0 {
            store.pool.clone()
        } else {
            replica.clone()
        };
        let c = new_content.clone();
        tasks.push(tokio::spawn(async move {
            trust_list::publish(&pool, &c, t + 10).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 5);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trust_list_versions")
        .fetch_one(store.pool.pool())
        .await
        .unwrap();
    assert_eq!(rows, 5, "one row per published content");

    replica.close().await;
    store.close().await;
}

#[test]
fn the_cache_re_signs_before_the_list_goes_stale() {
    let (mut settings, _) = sample();
    settings.trust_list.validity_s = 7_200;
    let center_key = KeyPair::generate();
    let content = Content::from_settings(&settings).unwrap();
    let cache = TrustListCache::new(content, 3, &center_key, NOW_UNIX_S).unwrap();
    let first = cache.current(&center_key, NOW_UNIX_S).unwrap();
    assert_eq!(first.payload.issued_at_unix_s, NOW_UNIX_S);
    assert_eq!(first.payload.next_update_unix_s, NOW_UNIX_S + 7_200);

    // Younger than half the validity: the same signed list.
    let same = cache.current(&center_key, NOW_UNIX_S + 3_599).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &same));

    // Half the validity: re-signed, same version and content, fresh times.
    let fresh = cache.current(&center_key, NOW_UNIX_S + 3_600).unwrap();
    let payload = fresh.verify(&center_key.public()).unwrap();
    assert_eq!(payload.version, 3);
    assert_eq!(payload.issued_at_unix_s, NOW_UNIX_S + 3_600);
    assert_eq!(payload.next_update_unix_s, NOW_UNIX_S + 3_600 + 7_200);
    assert_eq!(payload.keys, first.payload.keys);

    // A clock moved back never serves a list issued in its future.
    let back = cache.current(&center_key, NOW_UNIX_S - 60).unwrap();
    assert_eq!(back.payload.issued_at_unix_s, NOW_UNIX_S - 60);
}

fn invalid(settings: &Settings) -> String {
    match settings.validate() {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

#[test]
fn invalid_trust_list_settings_are_refused() {
    let (good, keys) = sample();
    good.validate().expect("the sample is valid");

    let mut s = good.clone();
    s.municipalities[1].seal_keys[0].usage_end = "2026-03-31T00:00:00+09:00".into();
    assert!(
        invalid(&s).contains("usage_end is before not_before"),
        "{}",
        invalid(&s)
    );

    let mut s = good.clone();
    s.municipalities[1].seal_keys[0].verify_until = "2031-03-31T00:00:00+09:00".into();
    assert!(
        invalid(&s).contains("verify_until is before usage_end"),
        "{}",
        invalid(&s)
    );

    // One key for two municipalities, or twice for one.
    let mut s = good.clone();
    s.municipalities[0].public_keys.push(b64(&keys.kazo));
    assert!(
        invalid(&s).contains("kid is listed more than once"),
        "{}",
        invalid(&s)
    );
    let mut s = good.clone();
    let again = s.municipalities[1].seal_keys[0].clone();
    s.municipalities[1].seal_keys.push(again);
    assert!(
        invalid(&s).contains("kid is listed more than once"),
        "{}",
        invalid(&s)
    );

    // Instants need RFC 3339 with an offset.
    let mut s = good.clone();
    s.municipalities[2].seal_keys[0].not_before = "2024-01-01 00:00:00".into();
    assert!(invalid(&s).contains("not_before"), "{}", invalid(&s));
    let mut s = good.clone();
    s.municipalities[2].seal_keys[0].compromised_at = Some("yesterday".into());
    assert!(invalid(&s).contains("compromised_at"), "{}", invalid(&s));

    let mut s = good.clone();
    s.municipalities[2].seal_keys[0].public_key = "not base64!".into();
    assert!(invalid(&s).contains(KAZO), "{}", invalid(&s));

    let mut s = good.clone();
    s.trust_list.revoked_documents = vec![RevokedDocumentSettings {
        request_id: "not-a-uuid".into(),
        revoked_at: "2026-11-25T09:00:00+09:00".into(),
    }];
    assert!(invalid(&s).contains("not-a-uuid"), "{}", invalid(&s));
    let mut s = good.clone();
    let id = RequestId::new_random();
    s.trust_list.revoked_documents = vec![
        revoked(id, "2026-11-25T09:00:00+09:00"),
        revoked(id, "2026-11-25T10:00:00+09:00"),
    ];
    assert!(
        invalid(&s).contains("listed more than once"),
        "{}",
        invalid(&s)
    );

    for validity_s in [0, 3_599, 2_592_001] {
        let mut s = good.clone();
        s.trust_list.validity_s = validity_s;
        assert!(
            invalid(&s).contains("validity_s"),
            "{validity_s}: {}",
            invalid(&s)
        );
    }
}

#[test]
fn settings_files_without_trust_list_entries_still_load() {
    let key = KeyPair::generate();
    let text = format!(
        r#"{}
[[municipalities]]
code = "{MINOKAMO}"
name = "美濃加茂市"
adapter_url = "https://127.0.0.1:1"
public_keys = ["{}"]
seal_image_path = "/nonexistent/seal.png"
"#,
        base_toml(),
        b64(&key)
    );
    let settings: Settings = toml::from_str(&text).unwrap();
    settings.validate().unwrap();
    assert_eq!(settings.trust_list.validity_s, 86_400);
    assert!(settings.trust_list.revoked_documents.is_empty());
    let list = trust_list::build(&settings, 1, NOW_UNIX_S).unwrap();
    assert_eq!(list.keys.len(), 1);
    assert_eq!(list.keys[0].kid, key.kid());

    // And the new tables parse from TOML as documented.
    let text = format!(
        r#"{}
[trust_list]
validity_s = 43200
revoked_documents = [{{ request_id = "{}", revoked_at = "2026-11-25T09:00:00+09:00" }}]

[[municipalities]]
code = "{MINOKAMO}"
name = "美濃加茂市"
adapter_url = "https://127.0.0.1:1"
public_keys = ["{}"]
seal_image_path = "/nonexistent/seal.png"

[[municipalities.seal_keys]]
public_key = "{}"
not_before = "2020-01-01T00:00:00+09:00"
usage_end = "2030-01-01T00:00:00+09:00"
verify_until = "2040-01-01T00:00:00+09:00"
compromised_at = "2029-06-01T00:00:00+09:00"
"#,
        base_toml(),
        RequestId::new_random(),
        b64(&key),
        b64(&key)
    );
    let settings: Settings = toml::from_str(&text).unwrap();
    settings.validate().unwrap();
    let list = trust_list::build(&settings, 1, NOW_UNIX_S).unwrap();
    assert_eq!(list.next_update_unix_s, NOW_UNIX_S + 43_200);
    assert_eq!(list.revoked_documents.len(), 1);
    assert_eq!(
        list.keys[0].usage_end_unix_s,
        unix_s("2030-01-01T00:00:00+09:00")
    );
    assert!(matches!(list.keys[0].status, KeyStatus::Revoked { .. }));
}

#[tokio::test]
async fn export_writes_the_signed_list_at_the_published_version() {
    let store = TempStore::new("trust-list-export").await;
    let dir = std::env::temp_dir().join(format!("trust-list-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let center_key = KeyPair::generate();
    let key_path = dir.join("center.seed");
    std::fs::write(&key_path, center_key.seed_base64()).unwrap();
    let (mut settings, _) = sample();
    settings.database_url = store.url();
    settings.center_key_path = key_path;
    let out = dir.join("trust-list.json");
    let t = NOW_UNIX_S * 1000;

    let first = trust_list::export_at(&settings, &out, t).await.unwrap();
    let written: SignedTrustList =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let payload = written.verify(&center_key.public()).unwrap();
    assert_eq!(payload, &first.payload);
    assert_eq!(payload.version, 1);
    assert_eq!(payload.issued_at_unix_s, NOW_UNIX_S);

    // Exporting again without a change keeps the version; a change bumps it, and the
    // file is replaced.
    assert_eq!(
        trust_list::export_at(&settings, &out, t + 1_000)
            .await
            .unwrap()
            .payload
            .version,
        1
    );
    settings.trust_list.revoked_documents = vec![revoked(
        RequestId::new_random(),
        "2026-11-25T09:00:00+09:00",
    )];
    trust_list::export_at(&settings, &out, t + 2_000)
        .await
        .unwrap();
    let written: SignedTrustList =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written.verify(&center_key.public()).unwrap().version, 2);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no temporary file left beside the key and the list"
    );

    let _ = std::fs::remove_dir_all(&dir);
    store.close().await;
}
