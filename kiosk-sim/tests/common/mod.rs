//! Shared test fixtures: a card authority, card files, stamped PDFs, child processes
//! of the kiosk-sim binary, and a sandbox whose center clock is pinned.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use lopdf::{dictionary, Dictionary, Document, Object, Stream, StringFormat};
use schemas::{
    CardCertificateBody, CardFile, CardSerial, KeyPair, MunicipalityCode, Signed, MAX_PIN_ATTEMPTS,
    PDF_PAGE_REQUEST_ID_KEY,
};

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("kiosk-sim-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `stdout` on a thread of its own until a line starts with `prefix`, and returns
/// the rest of that line (trimmed); the thread then drains the output, so the child
/// never blocks on a full pipe. `None` when no such line came within `bound`.
pub fn wait_for_line(
    stdout: std::process::ChildStdout,
    prefix: &str,
    bound: std::time::Duration,
) -> Option<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(&prefix) {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    rx.recv_timeout(bound).ok()
}

/// Creates a sandbox in `dir` and starts it in this process with the center's clock
/// (and so its adapters') reading `instant` (RFC 3339).
pub async fn start_sandbox_at(dir: &Path, instant: &str) -> sandbox::RunningSandbox {
    sandbox::init(dir).expect("sandbox init");
    let clock = std::sync::Arc::new(sandbox::OffsetClock::default());
    clock.set_now(instant.parse().expect("instant"));
    sandbox::start(
        dir,
        sandbox::StartOptions {
            center_database_url: None,
            center_clock: Some(clock),
        },
    )
    .await
    .expect("sandbox start")
}

/// The sandbox's kiosk settings file of `operator`.
pub fn kiosk_config(running: &sandbox::RunningSandbox, operator: &str) -> PathBuf {
    running
        .layout
        .kiosk_configs
        .iter()
        .find(|(id, _)| id == operator)
        .map(|(_, path)| path.clone())
        .expect("kiosk settings for the operator")
}

pub const PIN: &str = "4721";
/// 新宿区.
pub const MUNICIPALITY: &str = "131041";

/// The card authority and one card it personalised.
pub struct Fixture {
    pub authority: KeyPair,
    pub card_key: KeyPair,
    pub card_file: CardFile,
}

impl Fixture {
    pub fn new() -> Self {
        let authority = KeyPair::generate();
        let card_key = KeyPair::generate();
        let body = CardCertificateBody {
            serial: CardSerial::parse("00A1B2C3D4E5F607").unwrap(),
            municipality_code: MunicipalityCode::parse(MUNICIPALITY).unwrap(),
            public_key: card_key.public(),
            not_before_unix_s: 1_700_000_000,
            not_after_unix_s: 2_000_000_000,
        };
        let card_file = CardFile {
            label: "test resident".into(),
            certificate: Signed::sign(body, &authority).unwrap(),
            key_seed: card_key.seed_base64(),
            pin: PIN.into(),
            pin_attempts_left: MAX_PIN_ATTEMPTS,
        };
        Self {
            authority,
            card_key,
            card_file,
        }
    }

    pub fn write_card(&self, dir: &Path) -> PathBuf {
        write_card_file(dir, &self.card_file)
    }
}

pub fn write_card_file(dir: &Path, card: &CardFile) -> PathBuf {
    let path = dir.join("card.json");
    std::fs::write(&path, serde_json::to_vec_pretty(card).unwrap()).unwrap();
    path
}

pub fn read_card_file(path: &Path) -> CardFile {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A PDF with one page per entry; `Some(id)` puts `/KofuRequestId (id)` on that page.
pub fn build_pdf(page_ids: &[Option<String>]) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let mut kids = Vec::new();
    for id in page_ids {
        let content = doc.add_object(Stream::new(dictionary! {}, b"".to_vec()));
        let mut page: Dictionary = dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Contents" => content,
        };
        if let Some(id) = id {
            page.set(
                PDF_PAGE_REQUEST_ID_KEY,
                Object::String(id.as_bytes().to_vec(), StringFormat::Literal),
            );
        }
        kids.push(doc.add_object(page).into());
    }
    let count = i64::try_from(kids.len()).unwrap();
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}
