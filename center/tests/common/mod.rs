//! Shared by the center's tests: a temporary SQLite store, issuances inserted the way
//! the issuance flow inserts them, and a throwaway deployment PKI.

#![allow(dead_code)] // each test file uses its own subset

use center::db::{self, IssuanceRow, IssuanceState, TransitionFields};
use center::store::Store;
use schemas::RequestId;

/// A center store in a temporary SQLite file, removed by `close`.
pub struct TempStore {
    pub pool: Store,
    pub path: std::path::PathBuf,
}

impl TempStore {
    pub async fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("center-{tag}-{}.sqlite", uuid::Uuid::new_v4()));
        let pool = db::connect(&Self::url_of(&path)).await.expect("connect");
        Self { pool, path }
    }

    pub fn url_of(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn url(&self) -> String {
        Self::url_of(&self.path)
    }

    pub async fn close(self) {
        self.pool.close().await;
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(self.path.with_extension("sqlite-wal"));
        let _ = std::fs::remove_file(self.path.with_extension("sqlite-shm"));
    }
}

/// Who asked for what: the parts of an issuance the money side looks at.
#[derive(Clone, Debug)]
pub struct Spec {
    pub operator: &'static str,
    pub kiosk: &'static str,
    pub municipality: &'static str,
    pub certificate_type: &'static str,
    pub copies: i64,
    pub fee_yen_per_copy: i64,
}

/// Inserts a new issuance in `authorized` at `at_ms`.
pub async fn authorized(pool: &Store, spec: &Spec, at_ms: i64) -> String {
    let request_id = RequestId::new_random().to_string();
    let row = IssuanceRow {
        request_id: request_id.clone(),
        operator_id: spec.operator.into(),
        kiosk_id: spec.kiosk.into(),
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        order_digest: "aa".repeat(32),
        municipality_code: spec.municipality.into(),
        card_digest: "bb".repeat(32),
        certificate_type: spec.certificate_type.into(),
        copies: spec.copies,
        state: IssuanceState::Authorized,
        refusal_reason: None,
        error_code: None,
        fee_yen_per_copy: None,
        total_fee_yen: None,
        document_sha256: None,
        page_count: None,
    };
    let challenge = throwaway_challenge(&row.operator_id, &row.kiosk_id, &request_id, at_ms);
    assert_eq!(
        db::insert_authorized_with_challenge(pool, &row, &challenge, at_ms)
            .await
            .unwrap(),
        db::AuthorizedInsert::Inserted
    );
    request_id
}

/// A challenge use to record with a row written through the center's own insert
/// (`db::insert_authorized_with_challenge`, `db::insert_card_session_with_challenge`):
/// `unique` (a request or session id) makes its nonce unused.
pub fn throwaway_challenge(
    operator_id: &str,
    kiosk_id: &str,
    unique: &str,
    at_ms: i64,
) -> db::ChallengeUse {
    db::ChallengeUse {
        nonce_hex: format!("test-{unique}"),
        operator_id: operator_id.to_owned(),
        kiosk_id: kiosk_id.to_owned(),
        expires_at_unix_ms: at_ms + 120_000,
    }
}

/// Inserts a new issuance and moves it to `prepared` (authorized 1 ms before `at_ms`).
pub async fn prepared(pool: &Store, spec: &Spec, at_ms: i64) -> String {
    let request_id = authorized(pool, spec, at_ms - 1).await;
    db::transition(
        pool,
        &request_id,
        IssuanceState::Authorized,
        IssuanceState::Prepared,
        &TransitionFields {
            fee_yen_per_copy: Some(spec.fee_yen_per_copy),
            total_fee_yen: Some(spec.fee_yen_per_copy * spec.copies),
            document_sha256: Some(&"cc".repeat(32)),
            page_count: Some(2),
            ..TransitionFields::default()
        },
        at_ms,
    )
    .await
    .unwrap();
    request_id
}

/// A settings file for the `center` binary over `database_url`, with 美濃加茂市 (seal
/// keys `municipality_keys`) and the operators seven (115 yen) and lawson (120 yen);
/// TLS and image paths are not read by the offline subcommands.
pub fn settings_file(
    dir: &std::path::Path,
    database_url: &str,
    key: &schemas::KeyPair,
    municipality_keys: &[schemas::PublicKey],
) -> std::path::PathBuf {
    let key_path = dir.join("center.key");
    std::fs::write(&key_path, key.seed_base64()).unwrap();
    let tls = "cert = \"none.pem\"\nkey = \"none.pem\"\nca = \"none.pem\"\n";
    let public_keys = municipality_keys
        .iter()
        .map(|k| format!("\"{}\"", schemas::b64::Base64Bytes::encode(&k.0)))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "kiosk_listen = \"127.0.0.1:0\"\ndatabase_url = \"{database_url}\"\n\
         center_key_path = \"{}\"\ncard_authority_public_key = \"{}\"\n\
         revocation_list_path = \"none.json\"\nverify_url = \"https://example.invalid/verify\"\n\
         [settlement]\ncut_time = \"23:30\"\n\
         [kiosk_tls]\n{tls}[lgwan_tls]\n{tls}\
         [[municipalities]]\ncode = \"212113\"\nname = \"美濃加茂市\"\nadapter_url = \"https://127.0.0.1:1\"\npublic_keys = [{public_keys}]\nseal_image_path = \"none.png\"\n\
         [[operators]]\nid = \"seven\"\nkiosks = [\"seven-0001\"]\n\
         [[operators]]\nid = \"lawson\"\nkiosks = [\"lawson-0001\"]\ncommission_yen_per_copy = 120\n",
        key_path.display(),
        schemas::b64::Base64Bytes::encode(&key.public().0),
    );
    let path = dir.join("center.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the `center` binary: (exit code, stdout, stderr).
pub fn center_cli(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_center"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A throwaway deployment CA writing into `dir`: `ca.pem` at once, then
/// `<stem>.pem` and `<stem>.key.pem` for every certificate it issues (the layout
/// `mtls::TlsFiles` and the center's settings expect).
pub struct TestCa {
    dir: std::path::PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(dir: &std::path::Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyUsagePurpose};
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Self {
            dir: dir.to_owned(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server (`server`) or client certificate for `hosts`, with the role `uri` as a
    /// URI SAN when given.
    pub fn issue(&self, stem: &str, hosts: &[&str], uri: Option<&str>, server: bool) {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
                .unwrap();
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.join(format!("{stem}.key.pem")),
            key.serialize_pem(),
        )
        .unwrap();
    }
}

/// The two database back-ends a test may run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn postgres_base_url() -> String {
    std::env::var("KOFU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh database URL of `backend`; `None` (skip) only outside CI without PostgreSQL.
pub async fn fresh_url(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(TempStore::url_of(&dir.join("center.sqlite"))),
        Backend::Postgres => {
            use sqlx::Connection as _;
            let base = postgres_base_url();
            let mut conn = match sqlx::PgConnection::connect(&base).await {
                Ok(conn) => conn,
                Err(error) => {
                    assert!(!in_ci(), "PostgreSQL at {base} is required in CI: {error}");
                    eprintln!("skipping: no PostgreSQL at {base}: {error}");
                    return None;
                }
            };
            let name = format!("kofu_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .unwrap();
            let (prefix, _) = base.rsplit_once('/').unwrap();
            Some(format!("{prefix}/{name}"))
        }
    }
}
