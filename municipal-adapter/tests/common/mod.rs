//! Test harness: a throwaway PKI (rcgen), an adapter started in-process on a free port
//! over real mTLS, and clients with the center's and an operator's certificates.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use municipal_adapter::{Application, FaultSettings, Settings};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType,
};
use schemas::{
    card_binding_digest, AnswerOutcome, CardSerial, CertificateAnswer, CertificateFetch,
    CertificateKind, CertificateOrder, Digest32, ErrorBody, FrontSide, HouseholdScope, KeyPair,
    MunicipalityCode, PublicKey, RefusalReason, RequestId, Route, Signed, SignedCertificateAnswer,
    SignedCertificateFetch,
};

pub const MINOKAMO: &str = "212113";
pub const SAKAHOGI: &str = "215015";

/// 2026-11-20 12:00 Asia/Tokyo (a Friday), the sample plan's fixed day.
pub const NOV_20_NOON_JST: i64 = 1_795_143_600;
/// 2026-11-24 12:00 Asia/Tokyo (a Tuesday, not a holiday).
pub const NOV_24_NOON_JST: i64 = NOV_20_NOON_JST + 4 * 86_400;

/// The checked-in sample register directory of `code`.
pub fn sample_register_dir(code: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(code)
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "municipal-adapter-{label}-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PEM files of one test deployment.
pub struct Pki {
    pub ca: PathBuf,
    pub server: mtls::TlsFiles,
    pub center: mtls::TlsFiles,
    pub operator: mtls::TlsFiles,
    /// A client certificate from another CA (must fail the handshake).
    pub stranger: mtls::TlsFiles,
}

struct Ca {
    issuer: Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("CA cert");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(
    ca: &Ca,
    dir: &Path,
    name: &str,
    uri: &str,
    server: bool,
    ca_path: &Path,
) -> mtls::TlsFiles {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .subject_alt_names
        .push(SanType::URI(uri.try_into().expect("URI SAN")));
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf cert");
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    mtls::TlsFiles {
        cert: cert_path,
        key: key_path,
        ca: ca_path.to_owned(),
    }
}

pub fn make_pki(dir: &Path) -> Pki {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).expect("pki dir");
    let ca = new_ca("kofu test CA");
    let ca_path = pki.join("ca.pem");
    std::fs::write(&ca_path, &ca.pem).expect("write CA");
    let other = new_ca("someone else's CA");
    let other_path = pki.join("other-ca.pem");
    std::fs::write(&other_path, &other.pem).expect("write other CA");
    Pki {
        server: leaf(
            &ca,
            &pki,
            "adapter-test",
            "urn:kofu:adapter:test",
            true,
            &ca_path,
        ),
        center: leaf(&ca, &pki, "center", mtls::URI_CENTER, false, &ca_path),
        operator: leaf(
            &ca,
            &pki,
            "operator-seven",
            "urn:kofu:operator:seven",
            false,
            &ca_path,
        ),
        stranger: {
            let mut files = leaf(
                &other,
                &pki,
                "stranger",
                mtls::URI_CENTER,
                false,
                &other_path,
            );
            // It trusts our CA for the server, but its own certificate is foreign.
            files.ca = ca_path.clone();
            files
        },
        ca: ca_path,
    }
}

/// A running adapter serving the two sample municipalities.
pub struct TestAdapter {
    pub addr: SocketAddr,
    pub base_url: String,
    pub center_key: KeyPair,
    pub municipality_keys: HashMap<MunicipalityCode, KeyPair>,
    /// Client with the center's certificate.
    pub center: reqwest::Client,
    pub pki: Pki,
    pub settings: Settings,
    handle: actix_web::dev::ServerHandle,
    // Last: removed after the server is told to stop.
    pub dir: TempDir,
}

impl Drop for TestAdapter {
    fn drop(&mut self) {
        // Not awaited: the runtime of the test is going away anyway; this just stops
        // accepting so a long test run does not pile up listeners.
        drop(self.handle.stop(false));
    }
}

pub fn code(text: &str) -> MunicipalityCode {
    MunicipalityCode::parse(text).expect("valid code")
}

pub fn serial(text: &str) -> CardSerial {
    CardSerial::parse(text).expect("valid serial")
}

pub fn init_logs() {
    // TEST_LOG=1 cargo test … shows the adapter's logs.
    if std::env::var_os("TEST_LOG").is_some() {
        municipal_adapter::telemetry::init_subscriber("info,sqlx=warn", false);
    }
}

pub async fn spawn_adapter() -> TestAdapter {
    spawn_adapter_with(FaultSettings::default()).await
}

/// Everything an adapter needs on disk, in a fresh temp dir: PKI, keys, register
/// copies of the two samples and a TOML settings file (what the sandbox writes).
pub struct Deployment {
    pub dir: TempDir,
    pub pki: Pki,
    pub center_key: KeyPair,
    pub municipality_keys: HashMap<MunicipalityCode, KeyPair>,
    pub settings_path: PathBuf,
}

pub fn prepare_deployment(fault: &FaultSettings) -> Deployment {
    let dir = TempDir::new("test");
    let pki = make_pki(dir.path());
    let center_key = KeyPair::generate();
    let mut municipality_keys = HashMap::new();
    let mut municipalities = String::new();
    for (text, name, prefecture, mayor) in [
        (MINOKAMO, "美濃加茂市", "岐阜県", "藤井 浩人"),
        (SAKAHOGI, "坂祝町", "岐阜県", "林 正樹"),
    ] {
        let key = KeyPair::generate();
        let key_path = dir.path().join(format!("municipality-{text}.seed"));
        std::fs::write(&key_path, key.seed_base64()).expect("write seed");
        let register_dir = sample_register_dir(text);
        municipality_keys.insert(code(text), key);
        municipalities.push_str(&format!(
            "\n[[municipalities]]\ncode = \"{text}\"\nname = \"{name}\"\nprefecture = \"{prefecture}\"\n\
             mayor_title = \"{name}長\"\nmayor_name = \"{mayor}\"\nsigning_key_path = {key_path:?}\n\
             register_dir = {register_dir:?}\n"
        ));
    }
    let db_path = dir.path().join("adapter.db");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}?mode=rwc\"\n\
         center_public_key = \"{center}\"\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n\
         [fault]\nmode = \"{mode}\"\ndelay_ms = {delay}\n{municipalities}",
        db = db_path.display(),
        center = schemas::b64::Base64Bytes::encode(&center_key.public().0),
        cert = pki.server.cert,
        key = pki.server.key,
        ca = pki.server.ca,
        mode = fault.mode,
        delay = fault.delay_ms,
    );
    let settings_path = dir.path().join("adapter.toml");
    std::fs::write(&settings_path, toml).expect("write settings");
    Deployment {
        dir,
        pki,
        center_key,
        municipality_keys,
        settings_path,
    }
}

/// Starts an adapter in-process, through the same path the binary uses: the TOML
/// settings file, [`Settings::load`] and [`Application::build`].
pub async fn spawn_adapter_with(fault: FaultSettings) -> TestAdapter {
    init_logs();
    let deployment = prepare_deployment(&fault);
    let settings = Settings::load(&deployment.settings_path).expect("settings load");

    let app = Application::build(settings.clone())
        .await
        .expect("adapter starts");
    let addr = app.local_addr();
    assert_eq!(app.port(), addr.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    let center = client(&deployment.pki.center);
    TestAdapter {
        addr,
        base_url: format!("https://127.0.0.1:{}", addr.port()),
        center_key: deployment.center_key,
        municipality_keys: deployment.municipality_keys,
        center,
        pki: deployment.pki,
        settings,
        handle,
        dir: deployment.dir,
    }
}

pub fn client(files: &mtls::TlsFiles) -> reqwest::Client {
    mtls::http_client(files, Duration::from_secs(30)).expect("mTLS client")
}

pub fn household_order(include: bool) -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::Household,
            include_domicile: include,
            include_relationship: include,
        },
        copies: 1,
    }
}

pub fn self_order() -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate: CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        },
        copies: 2,
    }
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl TestAdapter {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn municipality_public(&self, text: &str) -> PublicKey {
        self.municipality_keys[&code(text)].public()
    }

    /// A well-formed fetch for `card` at municipality `municipality`.
    pub fn fetch(
        &self,
        municipality: &str,
        card: &str,
        order: CertificateOrder,
    ) -> CertificateFetch {
        let request_id = RequestId::new_random();
        let card_serial = serial(card);
        CertificateFetch {
            request_id,
            municipality_code: code(municipality),
            card_digest: Digest32(card_binding_digest(&request_id, &card_serial)),
            card_serial,
            order,
            requested_at_unix_s: jiff::Timestamp::now().as_second(),
            deadline_unix_ms: now_ms() + 30_000,
        }
    }

    pub fn sign(&self, fetch: CertificateFetch) -> SignedCertificateFetch {
        Signed::sign(fetch, &self.center_key).expect("sign fetch")
    }

    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        signed: &SignedCertificateFetch,
    ) -> reqwest::Response {
        client
            .post(self.url("/v1/certificates"))
            .json(signed)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, signed: &SignedCertificateFetch) -> reqwest::Response {
        self.post_with(&self.center, signed).await
    }

    /// Signs and posts a fetch for `card` at `municipality` as of the center clock
    /// `requested_at_unix_s`, and returns the verified answer.
    pub async fn ask_at(
        &self,
        municipality: &str,
        card: &str,
        order: CertificateOrder,
        requested_at_unix_s: i64,
    ) -> CertificateAnswer {
        let mut fetch = self.fetch(municipality, card, order);
        fetch.requested_at_unix_s = requested_at_unix_s;
        let response = self.post(&self.sign(fetch.clone())).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert_eq!(status, 200, "expected an answer, got {text}");
        let signed: SignedCertificateAnswer = serde_json::from_str(&text).expect("signed answer");
        let answer = signed
            .verify(&self.municipality_public(municipality))
            .expect("answer signed by the municipality")
            .clone();
        assert_eq!(answer.request_id, fetch.request_id);
        assert_eq!(answer.card_digest, fetch.card_digest);
        answer
    }

    /// [`Self::ask_at`] on 2026-11-24 (a plain Tuesday).
    pub async fn ask(
        &self,
        municipality: &str,
        card: &str,
        order: CertificateOrder,
    ) -> CertificateAnswer {
        self.ask_at(municipality, card, order, NOV_24_NOON_JST)
            .await
    }

    /// The adapter's own database (for the in-process clerk functions).
    pub async fn pool(&self) -> sqlx::SqlitePool {
        municipal_adapter::db::connect_and_migrate(&self.settings.database_url)
            .await
            .expect("adapter database")
    }

    /// POST `body` as JSON to `path` with the center's client.
    pub async fn post_json<T: serde::Serialize>(&self, path: &str, body: &T) -> reqwest::Response {
        self.center
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

pub fn order(certificate: CertificateKind) -> CertificateOrder {
    CertificateOrder {
        route: Route::Residence,
        certificate,
        copies: 1,
    }
}

pub fn domicile_order(municipality: &str, certificate: CertificateKind) -> CertificateOrder {
    CertificateOrder {
        route: Route::Domicile {
            municipality_code: code(municipality),
        },
        certificate,
        copies: 1,
    }
}

pub fn card(municipality: &str, suffix: u64) -> String {
    format!("{municipality}{suffix:010}")
}

/// The issued front, seals and fee, or a panic naming the refusal.
pub fn issued(answer: &CertificateAnswer) -> (&FrontSide, &Vec<String>, u32) {
    match &answer.outcome {
        AnswerOutcome::Issued {
            front,
            seals,
            fee_yen_per_copy,
        } => (front, seals, *fee_yen_per_copy),
        AnswerOutcome::Refused { reason } => panic!("expected issued, got refused {reason}"),
    }
}

pub fn refusal(answer: &CertificateAnswer) -> RefusalReason {
    match &answer.outcome {
        AnswerOutcome::Refused { reason } => *reason,
        AnswerOutcome::Issued { front, .. } => panic!("expected a refusal, got {}", front.title()),
    }
}

pub async fn error_body(response: reqwest::Response, status: u16) -> ErrorBody {
    assert_eq!(response.status().as_u16(), status);
    response.json::<ErrorBody>().await.expect("ErrorBody")
}

/// What card `holder` (bound in 212113) has as 本籍 and 筆頭者, and its name, read from
/// its own 住民票の写し with 本籍・筆頭者.
pub async fn domicile_of(adapter: &TestAdapter, holder: &str) -> (String, String, String) {
    let answer = adapter
        .ask(
            MINOKAMO,
            holder,
            order(CertificateKind::ResidentRecord {
                scope: HouseholdScope::SelfOnly,
                include_domicile: true,
                include_relationship: false,
            }),
        )
        .await;
    let (FrontSide::ResidentRecord(front), _, _) = issued(&answer) else {
        panic!("住民票の写し")
    };
    let row = &front.members[0];
    (
        row.domicile.clone().expect("本籍 printed"),
        row.domicile_head.clone().expect("筆頭者 printed"),
        row.name.clone(),
    )
}

/// A signed 利用登録 of `holder` at `municipality`, as the center forwards it.
pub fn domicile_submit(
    adapter: &TestAdapter,
    municipality: &str,
    holder: &str,
    domicile: &str,
    head: &str,
) -> schemas::SignedDomicileRegistrationSubmit {
    let registration_id = RequestId::new_random();
    let card_serial = serial(holder);
    let submit = schemas::DomicileRegistrationSubmit {
        registration_id,
        municipality_code: code(municipality),
        card_digest: Digest32(card_binding_digest(&registration_id, &card_serial)),
        residence_municipality_code: code(&holder[..6]),
        card_serial,
        domicile: domicile.to_owned(),
        domicile_head: head.to_owned(),
        submitted_at_unix_s: NOV_24_NOON_JST,
    };
    Signed::sign(submit, &adapter.center_key).expect("sign submit")
}

/// Posts a signed 利用登録 and returns the verified receipt.
pub async fn post_domicile(
    adapter: &TestAdapter,
    signed: &schemas::SignedDomicileRegistrationSubmit,
) -> schemas::DomicileRegistrationReceipt {
    let response = adapter
        .post_json("/v1/domicile-registrations", signed)
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "{text}");
    let receipt: schemas::SignedDomicileRegistrationReceipt =
        serde_json::from_str(&text).expect("signed receipt");
    let receipt = receipt
        .verify(&adapter.municipality_public(&signed.payload.municipality_code.to_string()))
        .expect("receipt signed by the 本籍地")
        .clone();
    assert_eq!(receipt.registration_id, signed.payload.registration_id);
    assert_eq!(receipt.card_digest, signed.payload.card_digest);
    receipt
}

/// Registers `holder` at `municipality` with the 本籍 and 筆頭者 of its 住民票.
pub async fn register_domicile_of(
    adapter: &TestAdapter,
    municipality: &str,
    holder: &str,
) -> (RequestId, schemas::DomicileRegistrationStatus) {
    let (domicile, head, _) = domicile_of(adapter, holder).await;
    let signed = domicile_submit(adapter, municipality, holder, &domicile, &head);
    let receipt = post_domicile(adapter, &signed).await;
    (receipt.registration_id, receipt.status)
}

/// What a clerk does: list the pending registration, pick the holder among the
/// matching 戸籍 by name, approve.
pub async fn approve_as_clerk(adapter: &TestAdapter, registration_id: RequestId, holder: &str) {
    use municipal_adapter::domicile;
    let (_, _, name) = domicile_of(adapter, holder).await;
    let pool = adapter.pool().await;
    let pending = domicile::list_registrations(
        &pool,
        None,
        Some(schemas::DomicileRegistrationStatus::Pending),
    )
    .await
    .expect("list");
    let record = pending
        .iter()
        .find(|r| r.registration_id == registration_id)
        .expect("the registration is pending");
    let matches = domicile::matching_family_registers(
        &pool,
        record.municipality_code,
        &record.domicile,
        &record.domicile_head,
    )
    .await
    .expect("matches");
    let (register, person) = matches
        .iter()
        .find_map(|r| r.persons.iter().find(|p| p.name == name).map(|p| (r, p)))
        .expect("the holder is in a matching 戸籍");
    let person = municipal_adapter::register::FamilyRegisterRef {
        family_register_id: register.family_register_id.clone(),
        person_id: person.person_id.clone(),
    };
    let approved = domicile::approve_registration(&pool, registration_id, &person)
        .await
        .expect("approve");
    assert_eq!(
        approved.status,
        schemas::DomicileRegistrationStatus::Approved
    );
}
