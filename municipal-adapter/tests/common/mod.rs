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
    card_binding_digest, CardSerial, CertificateFetch, CertificateKind, CertificateOrder, Digest32,
    HouseholdScope, KeyPair, MunicipalityCode, PublicKey, RequestId, Route, Signed,
    SignedCertificateFetch,
};

pub const MINOKAMO: &str = "212113";
pub const KITAMOTO: &str = "112330";

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
    for (text, name, prefecture, mayor, fee) in [
        (MINOKAMO, "美濃加茂市", "岐阜県", "藤井 浩人", 200),
        (KITAMOTO, "北本市", "埼玉県", "三宮 幸雄", 300),
    ] {
        let key = KeyPair::generate();
        let key_path = dir.path().join(format!("municipality-{text}.seed"));
        std::fs::write(&key_path, key.seed_base64()).expect("write seed");
        let register_path = dir.path().join(format!("register-{text}.json"));
        std::fs::write(
            &register_path,
            municipal_adapter::sample_fixture(text).expect("sample fixture"),
        )
        .expect("write register");
        municipality_keys.insert(code(text), key);
        municipalities.push_str(&format!(
            "\n[[municipalities]]\ncode = \"{text}\"\nname = \"{name}\"\nprefecture = \"{prefecture}\"\n\
             mayor_title = \"{name}長\"\nmayor_name = \"{mayor}\"\nsigning_key_path = {key_path:?}\n\
             register_path = {register_path:?}\nfee_yen_per_copy = {fee}\n"
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
}
