//! A self-contained local deployment: one command creates a directory with every key,
//! certificate, card, register and configuration file a local run needs; another
//! starts every party from it on loopback.
//!
//! Layout of a sandbox directory:
//!
//! ```text
//! pki/ca.pem                          the deployment CA (both links)
//! pki/center-kiosk.{pem,key.pem}      center's server certificate (kiosk link)
//! pki/center-lgwan.{pem,key.pem}      center's client certificate (urn:kofu:center)
//! pki/adapter-<name>.{pem,key.pem}    adapter server certificates (urn:kofu:adapter:<name>)
//! pki/operator-<id>.{pem,key.pem}     chain operators' client certificates
//! keys/*.seed                         Ed25519 seeds: card authority, center, municipalities
//! revocation-list.json                the card authority's signed revocation list
//! cards/<serial>.json                 simulated resident cards (key, certificate, PIN)
//! register-<code>/*.csv               each municipality's resident register (CSV files
//!                                     and seal impressions, copied from the adapter's
//!                                     samples; imported by the adapter at start)
//! seal-<code>.png                     each municipality's official seal image (公印)
//! center.toml, adapter-<name>.toml, kiosk-<operator>.toml
//! ```

pub mod pki;
pub mod run;
pub mod settle;

use std::path::{Path, PathBuf};

use municipal_adapter::configuration::{CatalogueSettings, MaintenanceSettings};
use schemas::{
    CardCertificateBody, CardFile, CardSerial, CertificateType, KeyPair, MunicipalityCode,
    RevocationListBody, Signed, MAX_PIN_ATTEMPTS,
};
use serde::Serialize;

/// The center's clocks, for [`StartOptions::center_clock`].
pub use center::clock::{Clock, OffsetClock, SystemClock};
pub use run::{start, AdapterProcess, DomicileEntry, RunningSandbox, StartOptions};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(io_error(path))
}

fn write_toml(path: &Path, value: &impl Serialize) -> Result<(), SandboxError> {
    let text = toml::to_string_pretty(value).map_err(|e| SandboxError::Invalid(e.to_string()))?;
    write(path, &text)
}

/// One municipality of the sample deployment.
#[derive(Clone, Copy, Debug)]
pub struct SampleMunicipality {
    pub code: &'static str,
    pub name: &'static str,
    pub prefecture: &'static str,
    pub mayor_name: &'static str,
    /// Which adapter process serves it.
    pub adapter: &'static str,
}

/// 美濃加茂市 and 坂祝町 behind one shared adapter (their joint municipal cloud), and
/// 北本市 behind its own.
pub const SAMPLE_MUNICIPALITIES: [SampleMunicipality; 3] = [
    SampleMunicipality {
        code: "212113",
        name: "美濃加茂市",
        prefecture: "岐阜県",
        mayor_name: "藤井 浩人",
        adapter: "minokamo-sakahogi",
    },
    SampleMunicipality {
        code: "215015",
        name: "坂祝町",
        prefecture: "岐阜県",
        mayor_name: "林 正樹",
        adapter: "minokamo-sakahogi",
    },
    SampleMunicipality {
        code: "112330",
        name: "北本市",
        prefecture: "埼玉県",
        mayor_name: "三宮 幸雄",
        adapter: "kitamoto",
    },
];

/// 国民の祝日 of 2026-11 through 2027-12 (振替休日 included): 美濃加茂市 closes its
/// weekday-only counters (戸籍) on them.
pub const MINOKAMO_CLOSED_DATES: [&str; 19] = [
    "2026-11-03",
    "2026-11-23",
    "2027-01-01",
    "2027-01-11",
    "2027-02-11",
    "2027-02-23",
    "2027-03-21",
    "2027-03-22",
    "2027-04-29",
    "2027-05-03",
    "2027-05-04",
    "2027-05-05",
    "2027-07-19",
    "2027-08-11",
    "2027-09-20",
    "2027-09-23",
    "2027-10-11",
    "2027-11-03",
    "2027-11-23",
];

/// 美濃加茂市's announced maintenance window (Asia/Tokyo), Sunday 2026-12-06
/// 05:00–09:00: it straddles the national opening time (06:30), so both edges are
/// observable — 06:00 is out of hours, 08:59 maintenance, 09:00 open.
pub const MINOKAMO_MAINTENANCE: (&str, &str, &str) = (
    "2026-12-06T05:00:00+09:00",
    "2026-12-06T09:00:00+09:00",
    "システム保守のため停止",
);

/// 坂祝町's fee for 住民票の写し (yen per copy); it does not offer 納税証明書.
pub const SAKAHOGI_RESIDENT_RECORD_FEE_YEN: u32 = 300;

/// The catalogue configured for each sample municipality: 美濃加茂市 the defaults with
/// its holidays and a maintenance window, 坂祝町 without 納税証明書 and 住民票の写し at
/// 300 yen, 北本市 the defaults.
pub fn sample_catalogue(code: &str) -> CatalogueSettings {
    match code {
        "212113" => CatalogueSettings {
            closed_dates: MINOKAMO_CLOSED_DATES
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            maintenance: vec![MaintenanceSettings {
                starts_at: MINOKAMO_MAINTENANCE.0.to_owned(),
                ends_at: MINOKAMO_MAINTENANCE.1.to_owned(),
                note: MINOKAMO_MAINTENANCE.2.to_owned(),
            }],
            ..CatalogueSettings::default()
        },
        "215015" => {
            let offerings = municipal_adapter::catalogue::default_offerings()
                .into_iter()
                .filter(|o| o.certificate != CertificateType::TaxPayment)
                .map(|mut o| {
                    if o.certificate == CertificateType::ResidentRecord {
                        o.fee_yen_per_copy = SAKAHOGI_RESIDENT_RECORD_FEE_YEN;
                    }
                    o
                })
                .collect();
            CatalogueSettings {
                offerings: Some(offerings),
                ..CatalogueSettings::default()
            }
        }
        _ => CatalogueSettings::default(),
    }
}

/// Chain operators and how many kiosks each registers.
pub const SAMPLE_OPERATORS: [(&str, usize); 2] = [("seven", 64), ("lawson", 64)];

/// Special cards issued besides the residents' own (serial suffixes).
pub const EXPIRED_CARD_SUFFIX: &str = "0000000097";
pub const REVOKED_CARD_SUFFIX: &str = "0000000098";
pub const UNREGISTERED_CARD_SUFFIX: &str = "0000000099";

/// What `init` made, for callers that drive the sandbox.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub center_config: PathBuf,
    pub adapter_configs: Vec<(String, PathBuf)>,
    /// kiosk settings per operator id.
    pub kiosk_configs: Vec<(String, PathBuf)>,
    pub cards: Vec<CardInfo>,
}

impl Layout {
    /// The directory holding `code`'s register CSV files.
    pub fn register_dir(&self, code: &str) -> PathBuf {
        self.dir.join(format!("register-{code}"))
    }

    /// The sandbox card with this serial.
    pub fn card(&self, serial: &str) -> Option<&CardInfo> {
        self.cards.iter().find(|c| c.serial.as_str() == serial)
    }
}

#[derive(Clone, Debug)]
pub struct CardInfo {
    pub path: PathBuf,
    pub serial: CardSerial,
    pub municipality: MunicipalityCode,
    /// The holder's name as in the register ("" for the special cards).
    pub holder_name: String,
    pub kind: CardKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardKind {
    Resident,
    Expired,
    Revoked,
    Unregistered,
}

impl Layout {
    /// Reads back the layout of an existing sandbox directory.
    pub fn open(dir: &Path) -> Result<Self, SandboxError> {
        let marker = dir.join("sandbox.json");
        let text = std::fs::read_to_string(&marker).map_err(io_error(&marker))?;
        let saved: SavedLayout =
            serde_json::from_str(&text).map_err(|e| SandboxError::Invalid(e.to_string()))?;
        saved.into_layout(dir)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedLayout {
    adapters: Vec<String>,
    operators: Vec<String>,
    cards: Vec<SavedCard>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedCard {
    serial: CardSerial,
    municipality: MunicipalityCode,
    holder_name: String,
    kind: String,
}

impl SavedLayout {
    fn into_layout(self, dir: &Path) -> Result<Layout, SandboxError> {
        let cards = self
            .cards
            .into_iter()
            .map(|c| {
                let kind = match c.kind.as_str() {
                    "resident" => CardKind::Resident,
                    "expired" => CardKind::Expired,
                    "revoked" => CardKind::Revoked,
                    "unregistered" => CardKind::Unregistered,
                    other => return Err(SandboxError::Invalid(format!("card kind {other}"))),
                };
                Ok(CardInfo {
                    path: dir.join("cards").join(format!("{}.json", c.serial)),
                    serial: c.serial,
                    municipality: c.municipality,
                    holder_name: c.holder_name,
                    kind,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Layout {
            dir: dir.to_path_buf(),
            center_config: dir.join("center.toml"),
            adapter_configs: self
                .adapters
                .iter()
                .map(|a| (a.clone(), dir.join(format!("adapter-{a}.toml"))))
                .collect(),
            kiosk_configs: self
                .operators
                .iter()
                .map(|o| (o.clone(), dir.join(format!("kiosk-{o}.toml"))))
                .collect(),
            cards,
        })
    }
}

/// Picks free loopback ports for configuration files meant for separate processes.
/// Each port stays bound until the reservations are dropped (at the end of `init`), so
/// one deployment never gets the same port twice (the kernel may hand a just-released
/// ephemeral port out again at once).
struct PortReservations(Vec<std::net::TcpListener>);

impl PortReservations {
    fn pick(&mut self) -> Result<u16, SandboxError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(io_error(Path::new("127.0.0.1:0")))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .map_err(io_error(Path::new("127.0.0.1:0")))?;
        self.0.push(listener);
        Ok(port)
    }
}

// The adapter's settings file, as `municipal-adapter` reads it.
#[derive(Serialize)]
struct AdapterToml {
    listen: String,
    database_url: String,
    center_public_key: String,
    tls: mtls::TlsFiles,
    municipalities: Vec<AdapterMunicipalityToml>,
}

struct PlannedAdapter {
    name: &'static str,
    port: u16,
    settings: AdapterToml,
}

#[derive(Serialize)]
struct AdapterMunicipalityToml {
    code: String,
    name: String,
    prefecture: String,
    mayor_title: String,
    mayor_name: String,
    signing_key_path: PathBuf,
    register_dir: PathBuf,
    catalogue: CatalogueSettings,
}

#[derive(Serialize)]
struct KioskToml {
    center_url: String,
    operator_id: String,
    kiosk_id: String,
    request_timeout_ms: u64,
    tls: mtls::TlsFiles,
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn pin_for(serial: &CardSerial) -> String {
    // Random enough for a sandbox and unguessable from the serial.
    let digest = schemas::sha256(format!("{serial}{}", rand_seed()).as_bytes());
    let n = u16::from_be_bytes([digest[0], digest[1]]) % 10_000;
    format!("{n:04}")
}

fn rand_seed() -> String {
    KeyPair::generate().kid().to_string()
}

/// Creates a complete sandbox in `dir` (which must be empty or absent).
pub fn init(dir: &Path) -> Result<Layout, SandboxError> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io_error(dir))?
            .next()
            .is_some()
    {
        return Err(SandboxError::Invalid(format!(
            "{} is not empty; choose a new directory",
            dir.display()
        )));
    }
    for sub in ["pki", "keys", "cards", "data"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io_error(dir))?;
    }
    let dir = &std::fs::canonicalize(dir).map_err(io_error(dir))?;
    let pki_dir = dir.join("pki");

    // PKI for both links.
    let ca = pki::Ca::generate("konbini-kofu sandbox CA")?;
    let ca_path = pki_dir.join("ca.pem");
    ca.write_cert(&ca_path)?;
    let center_kiosk = ca.issue_server(
        "center",
        &["localhost", "127.0.0.1"],
        None,
        &pki_dir,
        "center-kiosk",
    )?;
    let center_lgwan = ca.issue_client("center", mtls::URI_CENTER, &pki_dir, "center-lgwan")?;

    // Application-layer keys.
    let keys = dir.join("keys");
    let card_authority = KeyPair::generate();
    write(
        &keys.join("card-authority.seed"),
        &card_authority.seed_base64(),
    )?;
    let center_key = KeyPair::generate();
    let center_key_path = keys.join("center.seed");
    write(&center_key_path, &center_key.seed_base64())?;

    // Validity that survives a moved center clock (tests and the demo pin it to dates
    // around 2026-11..2027-12): valid from 2020, for ten years from today.
    let now_s = jiff::Timestamp::now().as_second();
    let year_s = 365 * 24 * 3600;
    let valid_from_s = unix_s("2020-01-01T00:00:00+09:00")?;
    let valid_until_s = now_s + 10 * year_s;
    let expired_at_s = unix_s("2025-01-01T00:00:00+09:00")?;

    let mut center_municipalities = Vec::new();
    let mut adapter_names: Vec<String> = Vec::new();
    let mut adapter_configs = Vec::new();
    let mut cards = Vec::new();
    let mut revoked = Vec::new();
    let mut ports = PortReservations(Vec::new());
    let center_port = ports.pick()?;
    // The public listener (verification page) for relying parties; printed on every
    // back page as `verify_url`.
    let public_port = ports.pick()?;
    // The operations listener (health, readiness, Prometheus metrics), loopback only.
    let ops_port = ports.pick()?;

    let mut adapters: Vec<PlannedAdapter> = Vec::new();
    for sample in SAMPLE_MUNICIPALITIES {
        let code = MunicipalityCode::parse(sample.code)
            .map_err(|e| SandboxError::Invalid(e.to_string()))?;
        let key = KeyPair::generate();
        let key_path = keys.join(format!("municipality-{code}.seed"));
        write(&key_path, &key.seed_base64())?;
        let sample_dir =
            municipal_adapter::samples::sample_register_dir(sample.code).ok_or_else(|| {
                SandboxError::Invalid(format!("no sample register for {}", sample.code))
            })?;
        let register_dir = dir.join(format!("register-{code}"));
        copy_dir(&sample_dir, &register_dir)?;
        let seal_path = dir.join(format!("seal-{code}.png"));
        let seal_png = composer::render_official_seal_png(&format!("{}長之印", sample.name), 256)
            .map_err(|e| SandboxError::Invalid(format!("seal image: {e}")))?;
        std::fs::write(&seal_path, seal_png).map_err(io_error(&seal_path))?;

        // One adapter process may serve several municipalities (自治体クラウド).
        let adapter_index = match adapters.iter().position(|a| a.name == sample.adapter) {
            Some(index) => index,
            None => {
                let port = ports.pick()?;
                let tls = ca.issue_server(
                    sample.adapter,
                    &["localhost", "127.0.0.1"],
                    Some(&format!("{}{}", mtls::URI_ADAPTER_PREFIX, sample.adapter)),
                    &pki_dir,
                    &format!("adapter-{}", sample.adapter),
                )?;
                adapters.push(PlannedAdapter {
                    name: sample.adapter,
                    port,
                    settings: AdapterToml {
                        listen: format!("127.0.0.1:{port}"),
                        database_url: sqlite_url(
                            &dir.join("data")
                                .join(format!("adapter-{}.db", sample.adapter)),
                        ),
                        center_public_key: schemas::b64::Base64Bytes::encode(
                            &center_key.public().0,
                        ),
                        tls: mtls::TlsFiles {
                            cert: tls.cert,
                            key: tls.key,
                            ca: ca_path.clone(),
                        },
                        municipalities: Vec::new(),
                    },
                });
                adapters.len() - 1
            }
        };
        let adapter = &mut adapters[adapter_index];
        let adapter_port = adapter.port;
        adapter
            .settings
            .municipalities
            .push(AdapterMunicipalityToml {
                code: code.to_string(),
                name: sample.name.to_owned(),
                prefecture: sample.prefecture.to_owned(),
                mayor_title: format!("{}長", sample.name),
                mayor_name: sample.mayor_name.to_owned(),
                signing_key_path: key_path,
                register_dir: register_dir.clone(),
                catalogue: sample_catalogue(sample.code),
            });
        center_municipalities.push(center::configuration::MunicipalitySettings {
            code,
            name: sample.name.to_owned(),
            adapter_url: format!("https://127.0.0.1:{adapter_port}"),
            public_keys: vec![schemas::b64::Base64Bytes::encode(&key.public().0)],
            seal_image_path: seal_path,
            // The same key as a seal key with an explicit period, so the demo's trust
            // list shows one (a rotation adds an entry and ends this one's usage).
            seal_keys: vec![center::configuration::SealKeySettings {
                public_key: schemas::b64::Base64Bytes::encode(&key.public().0),
                not_before: SANDBOX_SEAL_KEY_NOT_BEFORE.to_owned(),
                usage_end: SANDBOX_SEAL_KEY_USAGE_END.to_owned(),
                verify_until: SANDBOX_SEAL_KEY_VERIFY_UNTIL.to_owned(),
                compromised_at: None,
            }],
        });

        // Cards: one per bound resident, plus the special ones.
        let names = holder_names(code, &register_dir)?;
        for (serial, _issued_on) in municipal_adapter::samples::sample_card_bindings(sample.code) {
            let holder = names.get(serial.as_str()).cloned().unwrap_or_default();
            cards.push(issue_card(
                dir,
                &card_authority,
                serial,
                code,
                holder,
                CardKind::Resident,
                valid_from_s,
                valid_until_s,
            )?);
        }
        for (suffix, kind) in [
            (EXPIRED_CARD_SUFFIX, CardKind::Expired),
            (REVOKED_CARD_SUFFIX, CardKind::Revoked),
            (UNREGISTERED_CARD_SUFFIX, CardKind::Unregistered),
        ] {
            let serial = CardSerial::parse(format!("{code}{suffix}"))
                .map_err(|e| SandboxError::Invalid(e.to_string()))?;
            let (not_before, not_after) = if kind == CardKind::Expired {
                (valid_from_s, expired_at_s)
            } else {
                (valid_from_s, valid_until_s)
            };
            if kind == CardKind::Revoked {
                revoked.push(serial.clone());
            }
            cards.push(issue_card(
                dir,
                &card_authority,
                serial,
                code,
                String::new(),
                kind,
                not_before,
                not_after,
            )?);
        }
    }

    for adapter in adapters {
        let path = dir.join(format!("adapter-{}.toml", adapter.name));
        write_toml(&path, &adapter.settings)?;
        adapter_names.push(adapter.name.to_owned());
        adapter_configs.push((adapter.name.to_owned(), path));
    }

    let revocation = Signed::sign(
        RevocationListBody {
            issued_at_unix_s: valid_from_s,
            next_update_unix_s: now_s + 2 * year_s,
            revoked,
        },
        &card_authority,
    )
    .map_err(|e| SandboxError::Invalid(e.to_string()))?;
    let revocation_path = dir.join("revocation-list.json");
    write(
        &revocation_path,
        &serde_json::to_string_pretty(&revocation)
            .map_err(|e| SandboxError::Invalid(e.to_string()))?,
    )?;

    // Chain operators and their kiosks.
    let mut operators = Vec::new();
    let mut kiosk_configs = Vec::new();
    for (operator, kiosk_count) in SAMPLE_OPERATORS {
        let files = ca.issue_client(
            operator,
            &format!("{}{operator}", mtls::URI_OPERATOR_PREFIX),
            &pki_dir,
            &format!("operator-{operator}"),
        )?;
        let kiosks = (1..=kiosk_count)
            .map(|i| schemas::KioskId::parse(format!("{operator}-{i:04}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SandboxError::Invalid(e.to_string()))?;
        let path = dir.join(format!("kiosk-{operator}.toml"));
        write_toml(
            &path,
            &KioskToml {
                center_url: format!("https://127.0.0.1:{center_port}"),
                operator_id: operator.to_owned(),
                kiosk_id: format!("{operator}-0001"),
                request_timeout_ms: 15_000,
                tls: mtls::TlsFiles {
                    cert: files.cert,
                    key: files.key,
                    ca: ca_path.clone(),
                },
            },
        )?;
        kiosk_configs.push((operator.to_owned(), path));
        operators.push(center::configuration::OperatorSettings {
            id: schemas::OperatorId::parse(operator)
                .map_err(|e| SandboxError::Invalid(e.to_string()))?,
            kiosks,
            // The sample agreements differ, so reports show the per-operator rate.
            commission_yen_per_copy: if operator == "lawson" { 120 } else { 115 },
        });
    }

    let center_settings = center::configuration::Settings {
        kiosk_listen: format!("127.0.0.1:{center_port}")
            .parse()
            .map_err(|e: std::net::AddrParseError| SandboxError::Invalid(e.to_string()))?,
        public_listen: Some(
            format!("127.0.0.1:{public_port}")
                .parse()
                .map_err(|e: std::net::AddrParseError| SandboxError::Invalid(e.to_string()))?,
        ),
        ops_listen: Some(
            format!("127.0.0.1:{ops_port}")
                .parse()
                .map_err(|e: std::net::AddrParseError| SandboxError::Invalid(e.to_string()))?,
        ),
        database_url: sqlite_url(&dir.join("data").join("center.db")),
        center_key_path,
        card_authority_public_key: schemas::b64::Base64Bytes::encode(&card_authority.public().0),
        revocation_list_path: revocation_path,
        verify_url: format!("https://127.0.0.1:{public_port}/verify"),
        timeouts: center::configuration::Timeouts::default(),
        settlement: Default::default(),
        notices: Default::default(),
        trust_list: Default::default(),
        kiosk_tls: mtls::TlsFiles {
            cert: center_kiosk.cert,
            key: center_kiosk.key,
            ca: ca_path.clone(),
        },
        lgwan_tls: mtls::TlsFiles {
            cert: center_lgwan.cert,
            key: center_lgwan.key,
            ca: ca_path,
        },
        municipalities: center_municipalities,
        operators,
    };
    let center_config = dir.join("center.toml");
    write_toml(&center_config, &center_settings)?;

    let saved = SavedLayout {
        adapters: adapter_names,
        operators: kiosk_configs.iter().map(|(o, _)| o.clone()).collect(),
        cards: cards
            .iter()
            .map(|c: &CardInfo| SavedCard {
                serial: c.serial.clone(),
                municipality: c.municipality,
                holder_name: c.holder_name.clone(),
                kind: match c.kind {
                    CardKind::Resident => "resident",
                    CardKind::Expired => "expired",
                    CardKind::Revoked => "revoked",
                    CardKind::Unregistered => "unregistered",
                }
                .to_owned(),
            })
            .collect(),
    };
    write(
        &dir.join("sandbox.json"),
        &serde_json::to_string_pretty(&saved).map_err(|e| SandboxError::Invalid(e.to_string()))?,
    )?;
    Ok(Layout {
        dir: dir.clone(),
        center_config,
        adapter_configs,
        kiosk_configs,
        cards,
    })
}

/// The period of every sample municipality's seal key (RFC 3339, as in the settings).
pub const SANDBOX_SEAL_KEY_NOT_BEFORE: &str = "2020-01-01T00:00:00+09:00";
pub const SANDBOX_SEAL_KEY_USAGE_END: &str = "2035-12-31T23:59:59+09:00";
pub const SANDBOX_SEAL_KEY_VERIFY_UNTIL: &str = "2045-12-31T23:59:59+09:00";

fn unix_s(instant: &str) -> Result<i64, SandboxError> {
    instant
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| SandboxError::Invalid(format!("{instant}: {e}")))
}

/// Copies the files of `from` (one level, plus sub-directories) into `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(to).map_err(io_error(to))?;
    for entry in std::fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io_error(&source))?.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(io_error(&source))?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn issue_card(
    dir: &Path,
    authority: &KeyPair,
    serial: CardSerial,
    municipality: MunicipalityCode,
    holder_name: String,
    kind: CardKind,
    not_before_unix_s: i64,
    not_after_unix_s: i64,
) -> Result<CardInfo, SandboxError> {
    let card_key = KeyPair::generate();
    let certificate = Signed::sign(
        CardCertificateBody {
            serial: serial.clone(),
            municipality_code: municipality,
            public_key: card_key.public(),
            not_before_unix_s,
            not_after_unix_s,
        },
        authority,
    )
    .map_err(|e| SandboxError::Invalid(e.to_string()))?;
    let label = match kind {
        CardKind::Resident => holder_name.clone(),
        CardKind::Expired => "期限切れカード (expired card)".to_owned(),
        CardKind::Revoked => "失効カード (revoked card)".to_owned(),
        CardKind::Unregistered => "未登録カード (unregistered card)".to_owned(),
    };
    let file = CardFile {
        label,
        certificate,
        key_seed: card_key.seed_base64(),
        pin: pin_for(&serial),
        pin_attempts_left: MAX_PIN_ATTEMPTS,
    };
    let path = dir.join("cards").join(format!("{serial}.json"));
    write(
        &path,
        &serde_json::to_string_pretty(&file).map_err(|e| SandboxError::Invalid(e.to_string()))?,
    )?;
    Ok(CardInfo {
        path,
        serial,
        municipality,
        holder_name,
        kind,
    })
}

/// Card serial → the holder's name, read with the adapter's own register parser (the
/// one authority on the CSV layout).
fn holder_names(
    code: MunicipalityCode,
    register_dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, SandboxError> {
    // The samples hold no date after this one; the parser only uses it to refuse
    // dates in the future.
    let today = jiff::civil::date(2099, 12, 31);
    let parsed = municipal_adapter::register::import::read_register_dir(code, register_dir, today)
        .map_err(|e| SandboxError::Invalid(format!("register {code}: {e}")))?;
    let residents: std::collections::BTreeMap<&str, &str> = parsed
        .register
        .households
        .iter()
        .flat_map(|h| &h.members)
        .map(|m| (m.resident_id.as_str(), m.name.as_str()))
        .collect();
    Ok(parsed
        .cards
        .iter()
        .filter_map(|card| {
            let name = residents.get(card.resident_id.as_str())?;
            Some((card.card_serial.to_string(), (*name).to_owned()))
        })
        .collect())
}
