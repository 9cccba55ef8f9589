//! The center's trust list over HTTPS: signed by the center, listing every sandbox
//! municipality's seal key under its code, readable by a client that is no chain
//! operator; every seal on a printed certificate's answer names a listed key of the
//! issuing municipality; replicas over one database serve the same version, and a
//! change of content is a new version. The key-rotation drill: a municipality's key
//! rotated with overlap, old documents still VALID, new ones under the new kid, and
//! no document issued under a key whose usage ended or that was revoked.

use std::time::Duration;

use center::clock::Clock as _;
use center::configuration::{RevokedDocumentSettings, SealKeySettings, Settings};
use e2e::*;
use schemas::{
    AnswerOutcome, ErrorCode, HouseholdScope, KeyPair, KeyStatus, Kid, MunicipalityCode, PublicKey,
    RequestId, SignedCertificateAnswer, SignedSeal, SignedTrustList, TrustList, TRUST_LIST_FORMAT,
};

on_both_backends!(
    served_list_is_signed_and_maps_every_printed_seal,
    replicas_over_one_database_agree_on_the_version,
    key_rotation_drill,
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
    let signed = fetch_signed(client, base_url).await;
    signed
        .verify(center)
        .expect("signed by the center's key")
        .clone()
}

/// `GET /v1/trust-list` as served (what a relying party hands its verifier).
async fn fetch_signed(client: &reqwest::Client, base_url: &str) -> SignedTrustList {
    let response = client
        .get(format!("{base_url}/v1/trust-list"))
        .send()
        .await
        .expect("trust list answered");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a signed trust list")
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
    // Replicas side by side: each its own public and operations port too.
    if settings.public_listen.is_some() {
        settings.public_listen = Some("127.0.0.1:0".parse().expect("address"));
    }
    if settings.ops_listen.is_some() {
        settings.ops_listen = Some("127.0.0.1:0".parse().expect("address"));
    }
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

/// 北本市: its own adapter, so a key change there touches no other municipality.
const KITAMOTO: &str = "112330";

fn b64(key: &PublicKey) -> String {
    schemas::b64::Base64Bytes::encode(&key.0)
}

fn seal_key_entry(
    key: &PublicKey,
    not_before: &str,
    usage_end: &str,
    compromised_at: Option<&str>,
) -> SealKeySettings {
    SealKeySettings {
        public_key: b64(key),
        not_before: not_before.into(),
        usage_end: usage_end.into(),
        verify_until: sandbox::SANDBOX_SEAL_KEY_VERIFY_UNTIL.into(),
        compromised_at: compromised_at.map(str::to_owned),
    }
}

/// The operator's edit of the center's settings file: `code`'s registered keys and
/// their trust list entries.
fn set_center_keys(
    layout: &sandbox::Layout,
    code: &str,
    public_keys: &[&PublicKey],
    seal_keys: &[SealKeySettings],
) {
    let text = std::fs::read_to_string(&layout.center_config).expect("center.toml");
    let mut config: toml::Table = text.parse().expect("center.toml parses");
    let municipality = config
        .get_mut("municipalities")
        .and_then(|m| m.as_array_mut())
        .and_then(|list| {
            list.iter_mut()
                .find(|m| m.get("code").and_then(|c| c.as_str()) == Some(code))
        })
        .and_then(|m| m.as_table_mut())
        .unwrap_or_else(|| panic!("center.toml lists {code}"));
    municipality.insert(
        "public_keys".into(),
        toml::Value::try_from(public_keys.iter().map(|k| b64(k)).collect::<Vec<_>>())
            .expect("toml"),
    );
    municipality.insert(
        "seal_keys".into(),
        toml::Value::try_from(seal_keys.to_vec()).expect("toml"),
    );
    std::fs::write(
        &layout.center_config,
        toml::to_string(&config).expect("toml"),
    )
    .expect("write center.toml");
}

/// The municipality's edit of its adapter's settings: sign with the key in `seed_file`
/// from the next start on.
fn set_adapter_signing_key(config_path: &std::path::Path, code: &str, seed_file: &std::path::Path) {
    let text = std::fs::read_to_string(config_path).expect("adapter settings");
    let mut config: toml::Table = text.parse().expect("adapter settings parse");
    let municipality = config
        .get_mut("municipalities")
        .and_then(|m| m.as_array_mut())
        .and_then(|list| {
            list.iter_mut()
                .find(|m| m.get("code").and_then(|c| c.as_str()) == Some(code))
        })
        .and_then(|m| m.as_table_mut())
        .unwrap_or_else(|| panic!("adapter settings list {code}"));
    municipality.insert(
        "signing_key_path".into(),
        toml::Value::String(seed_file.display().to_string()),
    );
    std::fs::write(config_path, toml::to_string(&config).expect("toml"))
        .expect("write adapter settings");
}

/// One resident's 住民票 of 北本市 at kiosk seven-0001, printed.
async fn print_one(sb: &TestSandbox) -> kiosk_sim::PrintedDocument {
    let card = kitamoto_card(sb);
    match sb
        .issue(&card, resident_record(HouseholdScope::Household))
        .await
        .expect("issued")
    {
        kiosk_sim::IssueOutcome::Printed(doc) => doc,
        other => panic!("not printed: {other:?}"),
    }
}

fn kitamoto_card(sb: &TestSandbox) -> sandbox::CardInfo {
    sb.printable_resident_cards()
        .into_iter()
        .find(|c| c.municipality.to_string() == KITAMOTO)
        .expect("a printable card of 北本市")
        .clone()
}

/// The same order, refused by the center: the wire code, with nothing printed and
/// nothing charged; when the center had registered the request, its row is `refused`
/// with that code. A key past its usage-end (or compromised) is refused wherever the
/// center meets it first: on the signed catalogue when its cached copy has run out
/// (`catalogue_unavailable`, before any request is registered), else on the answer
/// (`upstream_signature_invalid`).
async fn refused_by_center(sb: &TestSandbox) -> ErrorCode {
    let pdfs_before = pdfs_in(&sb.out);
    let paid_before = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals")
        .paid_yen;
    let card = kitamoto_card(sb);
    let error = match sb
        .issue(&card, resident_record(HouseholdScope::Household))
        .await
    {
        Err(error) => error,
        Ok(outcome) => panic!("the center let it through: {outcome:?}"),
    };
    let code = center_code(&error).unwrap_or_else(|| panic!("no center code: {error}"));
    assert!(
        matches!(
            code,
            ErrorCode::UpstreamSignatureInvalid | ErrorCode::CatalogueUnavailable
        ),
        "refused for the key, not for {code:?}"
    );
    assert_eq!(pdfs_in(&sb.out), pdfs_before, "nothing printed");
    let totals = center::db::money_totals(&sb.running.center_pool)
        .await
        .expect("totals");
    assert_eq!(totals.paid_yen, paid_before, "no fee taken");
    if let Some(request_id) = error.request_id() {
        let rows: Vec<(String, Option<String>, String)> =
            sqlx::query_as("SELECT state, error_code, request_id FROM issuances")
                .fetch_all(sb.running.center_pool.pool())
                .await
                .expect("issuances");
        let row = rows
            .iter()
            .find(|(_, _, id)| *id == request_id.to_string())
            .unwrap_or_else(|| panic!("request {request_id} registered"));
        assert_eq!(row.0, "refused");
        assert_eq!(row.1.as_deref(), Some(code.as_str()));
    }
    code
}

/// The verdict on a printed PDF against the list the center serves now, and the kids of
/// its seals.
async fn verify_pdf(
    sb: &TestSandbox,
    client: &reqwest::Client,
    center: &PublicKey,
    pdf: &std::path::Path,
) -> (verifier::DocumentVerification, Vec<Kid>) {
    let list = fetch_signed(client, &sb.running.center_url).await;
    let bytes = std::fs::read(pdf).expect("printed PDF");
    let now_s = sb.clock.now_unix_ms() / 1000;
    let verdict = verifier::verify_input(verifier::Input::Pdf(&bytes), &list, center, now_s);
    let kids = verdict
        .seals
        .iter()
        .map(|s| s.verification.kid.expect("a decoded seal"))
        .collect();
    (verdict, kids)
}

fn assert_valid(verdict: &verifier::DocumentVerification, what: &str) {
    assert_eq!(
        verdict.verdict,
        verifier::Verdict::Valid,
        "{what}: {:?} {:?}",
        verdict.reason,
        verdict.detail
    );
}

async fn key_rotation_drill(backend: Backend) {
    let Some(sb) = spawn_sandbox(backend).await else {
        return;
    };
    let settings = Settings::load(&sb.running.layout.center_config).expect("center settings");
    let center = center_public_key(&settings);
    let client = relying_party(&settings);
    let code: MunicipalityCode = KITAMOTO.parse().expect("code");
    let key_a = settings
        .municipalities
        .iter()
        .find(|m| m.code == code)
        .map(|m| center::card_auth::parse_public_key(&m.public_keys[0]).expect("key A"))
        .expect("北本市 configured");

    // 10:00: a document under key A.
    let before = print_one(&sb).await;
    let (verdict, kids) = verify_pdf(&sb, &client, &center, &before.pdf_path).await;
    assert_valid(&verdict, "a document under A");
    assert!(kids.iter().all(|k| *k == key_a.kid()), "{kids:?}");

    // The operator adds key B (usable from 11:00) and ends A's usage at 12:00: an hour
    // of overlap. The adapter, restarted with the center, still signs with A.
    let key_b = KeyPair::generate();
    let seed_b = sb
        .dir
        .join("keys")
        .join(format!("municipality-{KITAMOTO}-b.seed"));
    std::fs::write(&seed_b, key_b.seed_base64()).expect("write key B");
    let entry_a = |compromised_at: Option<&str>| {
        seal_key_entry(
            &key_a,
            sandbox::SANDBOX_SEAL_KEY_NOT_BEFORE,
            "2026-11-25T12:00:00+09:00",
            compromised_at,
        )
    };
    let entry_b = |compromised_at: Option<&str>| {
        seal_key_entry(
            &key_b.public(),
            "2026-11-25T11:00:00+09:00",
            sandbox::SANDBOX_SEAL_KEY_USAGE_END,
            compromised_at,
        )
    };
    set_center_keys(
        &sb.running.layout,
        KITAMOTO,
        &[&key_a, &key_b.public()],
        &[entry_a(None), entry_b(None)],
    );
    let sb = sb.restart().await;
    let list = fetch(&client, &sb.running.center_url, &center).await;
    assert_eq!(list.version, 2, "the rotation is a new version");
    let listed = |kid: Kid| list.keys.iter().find(|k| k.kid == kid).cloned();
    assert_eq!(
        listed(key_a.kid()).map(|k| k.usage_end_unix_s),
        Some(unix_s("2026-11-25T12:00:00+09:00"))
    );
    assert!(listed(key_b.public().kid()).is_some(), "B is listed");

    // Inside the overlap (11:30) A still signs.
    sb.set_clock("2026-11-25T11:30:00+09:00");
    let overlap = print_one(&sb).await;
    let (_, kids) = verify_pdf(&sb, &client, &center, &overlap.pdf_path).await;
    assert!(kids.iter().all(|k| *k == key_a.kid()));

    // 13:00, A's usage over, the adapter not switched yet: refused by the center.
    sb.set_clock("2026-11-25T13:00:00+09:00");
    refused_by_center(&sb).await;

    // The adapter switches to B (a new key file, restart).
    let adapter_config = sb
        .running
        .adapter_for(KITAMOTO)
        .expect("北本市's adapter")
        .config_path
        .clone();
    set_adapter_signing_key(&adapter_config, KITAMOTO, &seed_b);
    let sb = sb.restart().await;
    let after = print_one(&sb).await;
    let (verdict, kids) = verify_pdf(&sb, &client, &center, &after.pdf_path).await;
    assert_valid(&verdict, "a document under B");
    assert!(
        !kids.is_empty() && kids.iter().all(|k| *k == key_b.public().kid()),
        "new documents carry kid B: {kids:?}"
    );
    // Documents issued under A keep verifying against the new list.
    for (doc, what) in [(&before, "issued at 10:00"), (&overlap, "issued at 11:30")] {
        let (verdict, kids) = verify_pdf(&sb, &client, &center, &doc.pdf_path).await;
        assert_valid(&verdict, what);
        assert!(kids.iter().all(|k| *k == key_a.kid()));
    }

    // B is found compromised at 13:30 (recorded at 14:00): no new answer under it.
    set_center_keys(
        &sb.running.layout,
        KITAMOTO,
        &[&key_a, &key_b.public()],
        &[entry_a(None), entry_b(Some("2026-11-25T13:30:00+09:00"))],
    );
    let sb = sb.restart().await;
    sb.set_clock("2026-11-25T14:00:00+09:00");
    refused_by_center(&sb).await;
    // The document B signed before the compromise stays VALID; the refusals printed
    // nothing, so the kiosk holds exactly the three documents.
    let (verdict, _) = verify_pdf(&sb, &client, &center, &after.pdf_path).await;
    assert_valid(&verdict, "issued under B before its compromise");
    assert_eq!(pdfs_in(&sb.out), 3);
    sb.stop().await;
}
