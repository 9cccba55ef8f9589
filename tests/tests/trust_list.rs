//! The center's trust list over HTTPS: signed by the center, listing every sandbox
//! municipality's seal key under its code, readable by a client that is no chain
//! operator; every seal on a printed certificate's answer names a listed key of the
//! issuing municipality; replicas over one database serve the same version, and a
//! change of content is a new version.

use std::time::Duration;

use center::clock::Clock as _;
use center::configuration::{RevokedDocumentSettings, Settings};
use e2e::*;
use schemas::{
    AnswerOutcome, HouseholdScope, KeyStatus, MunicipalityCode, PublicKey, RequestId,
    SignedCertificateAnswer, SignedSeal, SignedTrustList, TrustList, TRUST_LIST_FORMAT,
};

on_both_backends!(
    served_list_is_signed_and_maps_every_printed_seal,
    replicas_over_one_database_agree_on_the_version,
);

fn unix_s(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .expect("RFC 3339")
        .as_second()
}

fn center_public_key(settings: &Settings) -> PublicKey {
    center::trust_list::load_center_key(&settings.center_key_path)
        .expect("center key")
        .public()
}

/// A relying party's client: the center's own LGWAN certificate chains to the same CA
/// but names no chain operator.
fn relying_party(settings: &Settings) -> reqwest::Client {
    mtls::http_client(&settings.lgwan_tls, Duration::from_secs(10)).expect("client")
}

/// `GET /v1/trust-list`, verified with the center's public key.
async fn fetch(client: &reqwest::Client, base_url: &str, center: &PublicKey) -> TrustList {
    let response = client
        .get(format!("{base_url}/v1/trust-list"))
        .send()
        .await
        .expect("trust list answered");
    assert_eq!(response.status().as_u16(), 200);
    let signed: SignedTrustList = response.json().await.expect("a signed trust list");
    signed
        .verify(center)
        .expect("signed by the center's key")
        .clone()
}

async fn served_list_is_signed_and_maps_every_printed_seal(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let settings = Settings::load(&sb.running.layout.center_config).expect("center settings");
    let center = center_public_key(&settings);
    let client = relying_party(&settings);
    let list = fetch(&client, &sb.running.center_url, &center).await;

    assert_eq!(list.format, TRUST_LIST_FORMAT);
    assert_eq!(list.version, 1, "the first list of a fresh database");
    let now_s = sb.clock.now_unix_ms() / 1000;
    assert!(list.issued_at_unix_s <= now_s && now_s < list.next_update_unix_s);
    assert_eq!(list.next_update_unix_s - list.issued_at_unix_s, 86_400);
    assert!(list.revoked_documents.is_empty());

    // Every sandbox municipality's key, under its own code, with the sandbox's period.
    assert_eq!(list.keys.len(), settings.municipalities.len());
    for m in &settings.municipalities {
        let key = center::card_auth::parse_public_key(&m.public_keys[0]).expect("key");
        let listed = list
            .keys
            .iter()
            .find(|k| k.kid == key.kid())
            .unwrap_or_else(|| panic!("{}: kid {} not listed", m.code, key.kid()));
        assert_eq!(listed.municipality_code, m.code);
        assert_eq!(listed.public_key, key);
        assert_eq!(
            listed.not_before_unix_s,
            unix_s(sandbox::SANDBOX_SEAL_KEY_NOT_BEFORE)
        );
        assert_eq!(
            listed.usage_end_unix_s,
            unix_s(sandbox::SANDBOX_SEAL_KEY_USAGE_END)
        );
        assert_eq!(
            listed.verify_until_unix_s,
            unix_s(sandbox::SANDBOX_SEAL_KEY_VERIFY_UNTIL)
        );
        assert_eq!(listed.status, KeyStatus::Active);
    }

    // The same client is refused where an operator is required: only this path (and
    // /health) is open to any client the TLS layer admits.
    let refused = client
        .get(format!("{}/v1/municipalities", sb.running.center_url))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status().as_u16(), 403);

    // One certificate per municipality; every seal of its answer names a key the list
    // binds to the issuing municipality, and verifies with that key.
    for m in &settings.municipalities {
        let card = sb
            .printable_resident_cards()
            .into_iter()
            .find(|c| c.municipality == m.code)
            .unwrap_or_else(|| panic!("no printable card of {}", m.code))
            .clone();
        let doc = match sb
            .issue(&card, resident_record(HouseholdScope::Household))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.code))
        {
            kiosk_sim::IssueOutcome::Printed(doc) => doc,
            other => panic!("{}: not printed: {other:?}", m.code),
        };
        assert_eq!(doc.municipality_code, m.code);
        let seals = answer_seals(&sb, doc.municipality_code, doc.request_id).await;
        assert!(
            !seals.is_empty(),
            "{}: an issued answer carries seals",
            m.code
        );
        for text in &seals {
            let seal = SignedSeal::from_qr_text(text).expect("a well-formed seal");
            let listed = list
                .keys
                .iter()
                .find(|k| k.kid == seal.kid)
                .unwrap_or_else(|| panic!("{}: seal kid {} not listed", m.code, seal.kid));
            assert_eq!(listed.municipality_code, doc.municipality_code);
            let payload = seal
                .verify(&listed.public_key)
                .expect("seal verifies with the listed key");
            assert_eq!(payload.issuer, doc.municipality_code);
            assert_eq!(payload.serial, doc.request_id);
            let issued_at = i64::try_from(payload.issued_at_unix_s).expect("issue time");
            assert!(
                (listed.not_before_unix_s..=listed.usage_end_unix_s).contains(&issued_at),
                "{}: seal issued outside its key's period",
                m.code
            );
        }
    }
    sb.stop().await;
}

/// The seals of the adapter's stored signed answer for `request_id`.
async fn answer_seals(
    sb: &TestSandbox,
    code: MunicipalityCode,
    request_id: RequestId,
) -> Vec<String> {
    let pool = sb
        .running
        .adapter_pool(&code.to_string())
        .await
        .expect("adapter pool");
    let json = municipal_adapter::answers::AnswerStore::new(pool.clone())
        .find_in(request_id, code)
        .await
        .expect("answer store")
        .expect("the adapter stored its answer");
    pool.close().await;
    let answer: SignedCertificateAnswer = serde_json::from_str(&json).expect("answer JSON");
    match answer.payload.outcome {
        AnswerOutcome::Issued { seals, .. } => seals,
        AnswerOutcome::Refused { reason } => panic!("{code}: refused {reason:?}"),
    }
}

/// A center replica serving `settings` on its own port.
struct Replica {
    url: String,
    handle: Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>,
}

impl Replica {
    async fn start(settings: Settings) -> Self {
        let app = center::startup::Application::build(settings)
            .await
            .expect("replica starts");
        let url = format!("https://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            url,
            handle: Box::new(move || Box::pin(async move { handle.stop(true).await })),
        }
    }

    async fn stop(self) {
        (self.handle)().await;
    }
}

async fn replicas_over_one_database_agree_on_the_version(backend: Backend) {
    let tmp = TempDir::new("trust-list");
    let layout = sandbox::init(&tmp.path().join("sandbox")).expect("sandbox init");
    let database_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            tmp.path().join("center.db").display()
        ),
        Backend::Postgres => match fresh_postgres_database().await {
            Some(url) => url,
            None => return,
        },
    };
    let mut settings = Settings::load(&layout.center_config).expect("center settings");
    settings.database_url = database_url.clone();
    settings.kiosk_listen = "127.0.0.1:0".parse().expect("address");
    let center = center_public_key(&settings);
    let client = relying_party(&settings);

    let a = Replica::start(settings.clone()).await;
    let b = Replica::start(settings.clone()).await;
    let list_a = fetch(&client, &a.url, &center).await;
    let list_b = fetch(&client, &b.url, &center).await;
    assert_eq!(list_a.version, 1);
    assert_eq!(list_b.version, 1, "a second replica keeps the version");
    assert_eq!(list_a.keys, list_b.keys);
    // A restart with the same settings keeps it too.
    a.stop().await;
    let a = Replica::start(settings.clone()).await;
    assert_eq!(fetch(&client, &a.url, &center).await.version, 1);

    // New settings (a revoked document): the next version, on every replica that
    // starts with them.
    let mut changed = settings.clone();
    let withdrawn = RequestId::new_random();
    changed.trust_list.revoked_documents = vec![RevokedDocumentSettings {
        request_id: withdrawn.to_string(),
        revoked_at: "2026-11-25T09:00:00+09:00".into(),
    }];
    let c = Replica::start(changed.clone()).await;
    let d = Replica::start(changed.clone()).await;
    let list_c = fetch(&client, &c.url, &center).await;
    assert_eq!(list_c.version, 2);
    assert_eq!(list_c.revoked_documents.len(), 1);
    assert_eq!(
        list_c.revoked_documents[0].serial_sha256.0,
        schemas::crypto::sha256(withdrawn.as_bytes())
    );
    assert_eq!(fetch(&client, &d.url, &center).await.version, 2);
    // The replica still on the old settings serves its content at its version.
    assert_eq!(fetch(&client, &b.url, &center).await.version, 1);

    for replica in [a, b, c, d] {
        replica.stop().await;
    }
    if backend == Backend::Postgres {
        drop_database(&database_url).await;
    }
}

/// Drops a per-test PostgreSQL database (best effort).
async fn drop_database(url: &str) {
    use sqlx::Connection as _;
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_base_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}
