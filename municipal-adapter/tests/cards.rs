//! Resident cards: issue, renewal, revocation and the card authority's revocation
//! list, through `municipal_adapter::cards` and the `municipal-adapter card` binary.

use std::path::{Path, PathBuf};

use jiff::civil::{date, Date};
use municipal_adapter::cards::{self, CardError, CardOrder};
use municipal_adapter::register::{import_register_dir, ImportStatus, RegisterStore};
use municipal_adapter::samples::sample_register_dir;
use schemas::{
    CardFile, CardSerial, KeyPair, MunicipalityCode, RevocationList, RevocationListBody, Signed,
};
use sqlx::sqlite::SqlitePool;

const TODAY: Date = date(2026, 11, 23);

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "adapter-cards-{label}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn minokamo() -> MunicipalityCode {
    MunicipalityCode::parse("212113").unwrap()
}

async fn imported(dir: &Path) -> (String, SqlitePool) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("adapter.db").display());
    let pool = municipal_adapter::db::connect_and_migrate(&url)
        .await
        .unwrap();
    import_register_dir(
        &pool,
        minokamo(),
        &sample_register_dir("212113").unwrap(),
        TODAY,
    )
    .await
    .unwrap();
    (url, pool)
}

fn order<'a>(resident_id: &'a str, authority: &'a KeyPair) -> CardOrder<'a> {
    CardOrder {
        code: minokamo(),
        resident_id,
        authority,
        pin: Some("4321".into()),
        valid_years: 10,
        today: TODAY,
        now: jiff::Timestamp::now(),
    }
}

fn read_card(path: &Path) -> CardFile {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn issue_renew_revoke() {
    let dir = TempDir::new("lib");
    let (_, pool) = imported(dir.path()).await;
    let store = RegisterStore::new(pool.clone());
    let authority = KeyPair::generate();

    // 岡田 智子 (R0037) holds no card.
    let first_path = dir.path().join("first.json");
    let first = cards::issue_card(&store, &order("R0037", &authority), &first_path)
        .await
        .unwrap();
    let file = read_card(&first_path);
    let body = file.certificate.verify(&authority.public()).unwrap();
    assert_eq!(body.serial, first.serial);
    assert_eq!(body.municipality_code, minokamo());
    assert!(first.serial.as_str().starts_with("212113"));
    assert_eq!(file.pin, "4321");
    assert_eq!(file.pin_attempts_left, schemas::MAX_PIN_ATTEMPTS);
    // The card key in the file is the one certified.
    let card_key = KeyPair::from_seed_base64(&file.key_seed).unwrap();
    assert_eq!(card_key.public(), body.public_key);
    assert!(body.not_after_unix_s - body.not_before_unix_s > 9 * 365 * 86_400);
    let found = store
        .lookup_card(minokamo(), &first.serial)
        .await
        .unwrap()
        .expect("the new card looks up");
    assert_eq!(found.holder().unwrap().name, "岡田 智子");
    assert_eq!(found.card_issued_on, TODAY);

    // A second card without renewal is refused, and no file is left behind.
    let refused_path = dir.path().join("refused.json");
    match cards::issue_card(&store, &order("R0037", &authority), &refused_path).await {
        Err(CardError::AlreadyHoldsCard { card_serial, .. }) => {
            assert_eq!(card_serial, first.serial)
        }
        other => panic!("expected AlreadyHoldsCard, got {other:?}"),
    }
    assert!(!refused_path.exists());
    // The card file is never overwritten.
    assert!(
        cards::renew_card(&store, &order("R0037", &authority), &first_path)
            .await
            .is_err()
    );
    assert!(store
        .lookup_card(minokamo(), &first.serial)
        .await
        .unwrap()
        .is_some());

    // Renewal: a new card, the old one revoked.
    let second_path = dir.path().join("second.json");
    let second = cards::renew_card(&store, &order("R0037", &authority), &second_path)
        .await
        .unwrap();
    assert_ne!(second.serial, first.serial);
    assert_eq!(second.replaced.as_ref(), Some(&first.serial));
    assert!(store
        .lookup_card(minokamo(), &first.serial)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .lookup_card(minokamo(), &second.serial)
        .await
        .unwrap()
        .is_some());

    // Revocation.
    let before = cards::revoke_card(&store, minokamo(), &second.serial, TODAY)
        .await
        .unwrap();
    assert!(!before.revoked);
    assert!(store
        .lookup_card(minokamo(), &second.serial)
        .await
        .unwrap()
        .is_none());
    let unknown = CardSerial::parse("2121139999999999").unwrap();
    assert!(matches!(
        cards::revoke_card(&store, minokamo(), &unknown, TODAY).await,
        Err(CardError::NotBound { .. })
    ));
    // With no usable card, renewal is refused and issue works again.
    assert!(matches!(
        cards::renew_card(
            &store,
            &order("R0037", &authority),
            &dir.path().join("x.json")
        )
        .await,
        Err(CardError::NothingToRenew(_))
    ));

    // Not for a resident who is not current, nor for an unknown one.
    assert!(matches!(
        cards::issue_card(
            &store,
            &order("R0020", &authority),
            &dir.path().join("d.json")
        )
        .await,
        Err(CardError::NotCurrent { .. })
    ));
    assert!(matches!(
        cards::issue_card(
            &store,
            &order("R9999", &authority),
            &dir.path().join("u.json")
        )
        .await,
        Err(CardError::UnknownResident(_))
    ));
    let mut bad_pin = order("R0038", &authority);
    bad_pin.pin = Some("12a4".into());
    assert!(matches!(
        cards::issue_card(&store, &bad_pin, &dir.path().join("p.json")).await,
        Err(CardError::BadPin)
    ));
}

#[tokio::test]
async fn card_bindings_survive_a_register_import() {
    let dir = TempDir::new("reimport");
    let (_, pool) = imported(dir.path()).await;
    let store = RegisterStore::new(pool.clone());
    let authority = KeyPair::generate();
    let old = CardSerial::parse("2121130000000001").unwrap();
    let renewed = cards::renew_card(
        &store,
        &order("R0001", &authority),
        &dir.path().join("c.json"),
    )
    .await
    .unwrap();
    assert_eq!(renewed.replaced.as_ref(), Some(&old));

    // A changed register directory (one more remark) is imported again; its cards.csv
    // still lists the old card, which must stay revoked.
    let copy = dir.path().join("register");
    std::fs::create_dir_all(copy.join("seals")).unwrap();
    let source = sample_register_dir("212113").unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    for entry in std::fs::read_dir(source.join("seals")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join("seals").join(entry.file_name())).unwrap();
    }
    let residents = copy.join("residents.csv");
    let text = std::fs::read_to_string(&residents).unwrap();
    std::fs::write(
        &residents,
        text.replacen(",令和6年8月1日職権消除,", ",令和6年8月1日職権消除|追記,", 1),
    )
    .unwrap();
    let outcome = import_register_dir(&pool, minokamo(), &copy, TODAY)
        .await
        .unwrap();
    assert_eq!(outcome.status, ImportStatus::Imported);
    assert_eq!(outcome.counts.card_bindings_added, 0);
    assert!(store.lookup_card(minokamo(), &old).await.unwrap().is_none());
    let found = store
        .lookup_card(minokamo(), &renewed.serial)
        .await
        .unwrap()
        .expect("the renewed card survives the import");
    assert_eq!(found.holder().unwrap().resident_id, "R0001");
}

fn write_settings(dir: &Path, database_url: &str) -> PathBuf {
    let center = KeyPair::generate();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase_url = \"{database_url}\"\n\
         center_public_key = \"{}\"\n\n[tls]\ncert = \"/nonexistent/cert.pem\"\n\
         key = \"/nonexistent/key.pem\"\nca = \"/nonexistent/ca.pem\"\n\n\
         [[municipalities]]\ncode = \"212113\"\nname = \"美濃加茂市\"\nprefecture = \"岐阜県\"\n\
         mayor_title = \"美濃加茂市長\"\nmayor_name = \"山田 太郎\"\n\
         signing_key_path = \"/nonexistent/key.seed\"\nregister_dir = \"{}\"\n",
        schemas::b64::Base64Bytes::encode(&center.public().0),
        sample_register_dir("212113").unwrap().display()
    );
    let path = dir.join("adapter.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn the_card_cli_issues_and_revokes_with_the_revocation_list() {
    let dir = TempDir::new("cli");
    let (url, pool) = imported(dir.path()).await;
    let store = RegisterStore::new(pool);
    let settings = write_settings(dir.path(), &url);
    let authority = KeyPair::generate();
    let key_path = dir.path().join("card-authority.seed");
    std::fs::write(&key_path, authority.seed_base64()).unwrap();
    let list_path = dir.path().join("revocation-list.json");
    let already = CardSerial::parse("2121130000000098").unwrap();
    let list = Signed::sign(
        RevocationListBody {
            issued_at_unix_s: 1_577_836_800,
            next_update_unix_s: 1_577_836_800 + 365 * 86_400,
            revoked: vec![already.clone()],
        },
        &authority,
    )
    .unwrap();
    std::fs::write(&list_path, serde_json::to_string(&list).unwrap()).unwrap();

    let binary = env!("CARGO_BIN_EXE_municipal-adapter");
    let card_path = dir.path().join("card.json");
    let output = std::process::Command::new(binary)
        .args(["card", "issue", "--config"])
        .arg(&settings)
        .args([
            "--municipality",
            "212113",
            "--resident",
            "R0038",
            "--authority-key",
        ])
        .arg(&key_path)
        .arg("--out")
        .arg(&card_path)
        .args(["--pin", "1234", "--valid-years", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let card = read_card(&card_path);
    let body = card
        .certificate
        .verify(&authority.public())
        .unwrap()
        .clone();
    assert!(stdout.contains(body.serial.as_str()), "{stdout}");
    let span = body.not_after_unix_s - body.not_before_unix_s;
    assert!((4 * 365 * 86_400..6 * 365 * 86_400).contains(&span));
    let found = store
        .lookup_card(minokamo(), &body.serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.holder().unwrap().resident_id, "R0038");

    let output = std::process::Command::new(binary)
        .args(["card", "revoke", "--config"])
        .arg(&settings)
        .args(["--municipality", "212113", "--serial", body.serial.as_str()])
        .arg("--revocation-list")
        .arg(&list_path)
        .arg("--authority-key")
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(store
        .lookup_card(minokamo(), &body.serial)
        .await
        .unwrap()
        .is_none());
    let list: RevocationList =
        serde_json::from_str(&std::fs::read_to_string(&list_path).unwrap()).unwrap();
    let listed = list.verify(&authority.public()).unwrap();
    assert_eq!(listed.revoked, vec![already, body.serial.clone()]);
    assert!(listed.next_update_unix_s > jiff::Timestamp::now().as_second());

    // A list signed by another key is not re-signed.
    let other = KeyPair::generate();
    let other_key = dir.path().join("other.seed");
    std::fs::write(&other_key, other.seed_base64()).unwrap();
    let output = std::process::Command::new(binary)
        .args(["card", "revoke", "--config"])
        .arg(&settings)
        .args(["--municipality", "212113", "--serial", "2121130000000002"])
        .arg("--revocation-list")
        .arg(&list_path)
        .arg("--authority-key")
        .arg(&other_key)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let unchanged: RevocationList =
        serde_json::from_str(&std::fs::read_to_string(&list_path).unwrap()).unwrap();
    assert_eq!(unchanged.verify(&authority.public()).unwrap(), listed);
    assert!(
        store
            .lookup_card(minokamo(), &CardSerial::parse("2121130000000002").unwrap())
            .await
            .unwrap()
            .is_some(),
        "a wrong key revokes nothing"
    );
}
