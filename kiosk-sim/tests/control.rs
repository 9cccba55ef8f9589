//! The kiosk control interface, end to end: a real sandbox center (in this process,
//! real mTLS), and `kiosk-sim control serve` as a separate process driven over HTTP
//! step by step, as a resident and the store's hardware would.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use sandbox::{CardKind, RunningSandbox};
use schemas::kiosk_control::{
    ChooseOrder, ChooseRoute, ControlInfo, ControlState, EnterPin, Pay, PlaceCard,
    PrinterBehaviour, Screen, SetPrinter,
};
use schemas::outcome::{IssuanceStatus, PrintOutcome, PrintReport};
use schemas::{
    CardFile, CertificateKind, ErrorBody, ErrorCode, HouseholdScope, RefusalReason, RequestId,
    Route,
};
use serde_json::json;

mod common;
use common::{kiosk_config, start_sandbox_at, TempDir};

/// A weekday morning, within every type's hours, whatever the real time of the run.
const BUSINESS_MORNING: &str = "2026-11-25T10:00:00+09:00";
/// Issues every type (the e2e certificates suite's full card).
const FULL_CARD: &str = "2121130000000001";
/// Refused by the municipality (deceased).
const REFUSED_CARD: &str = "2121130000000091";

/// A sandbox center and one control server in front of kiosk `seven`.
struct Harness {
    running: Option<RunningSandbox>,
    /// The kiosk's settings (the same kiosk id and operator certificate).
    settings: kiosk_sim::KioskSettings,
    server: Child,
    base: String,
    http: reqwest::Client,
    _tmp: TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Harness {
    /// `fault`: a `[fault] mode` for the kiosk settings.
    async fn start(fault: Option<&str>) -> Self {
        let tmp = TempDir::new("control");
        let running = start_sandbox_at(&tmp.0.join("sandbox"), BUSINESS_MORNING).await;
        let config = kiosk_config(&running, "seven");
        let config = match fault {
            None => config,
            Some(mode) => {
                let text = std::fs::read_to_string(&config).expect("kiosk settings");
                let faulty = config.with_file_name("kiosk-fault.toml");
                std::fs::write(&faulty, format!("{text}\n[fault]\nmode = \"{mode}\"\n"))
                    .expect("write settings");
                faulty
            }
        };
        let settings = kiosk_sim::KioskSettings::load(&config).expect("kiosk settings");
        let port = free_port();
        let server = Command::new(env!("CARGO_BIN_EXE_kiosk-sim"))
            .args(["control", "serve", "--config"])
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
            .arg(tmp.0.join("kiosk-state"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("kiosk-sim control serve");
        let harness = Self {
            running: Some(running),
            settings,
            server,
            base: format!("http://127.0.0.1:{port}/control/v1"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            _tmp: tmp,
        };
        for _ in 0..200 {
            if harness
                .http
                .get(format!("{}/state", harness.base))
                .send()
                .await
                .is_ok()
            {
                return harness;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the control server did not come up");
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    fn card(&self, serial: &str) -> CardFile {
        let running = self.running.as_ref().expect("running");
        let info = running
            .layout
            .cards
            .iter()
            .find(|c| c.serial.as_str() == serial)
            .unwrap_or_else(|| panic!("no card {serial}"));
        read_card(&info.path)
    }

    /// Another plain issuable resident card of the 212113 sample.
    fn resident_card(&self, index: usize) -> CardFile {
        let running = self.running.as_ref().expect("running");
        let issuable = municipal_adapter::samples::issuable_cards("212113");
        let info = running
            .layout
            .cards
            .iter()
            .filter(|c| c.kind == CardKind::Resident && issuable.contains(&c.serial))
            .nth(index)
            .expect("issuable card");
        read_card(&info.path)
    }

    async fn call(&self, step: &str, body: Option<serde_json::Value>) -> reqwest::Response {
        let url = format!("{}/{step}", self.base);
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.post(url),
        };
        request.send().await.expect("control call")
    }

    /// A step that fits the screen: 200 and the kiosk's state.
    async fn step(&self, step: &str, body: Option<serde_json::Value>) -> ControlState {
        let response = self.call(step, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "{step}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{step}: {e}: {text}"))
    }

    /// A step that does not fit: 409 `control_step_not_allowed`, nothing changed.
    async fn not_allowed(&self, step: &str, body: Option<serde_json::Value>) {
        let before = self.state().await;
        let response = self.call(step, body).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{step}");
        let error: ErrorBody = response.json().await.expect("error body");
        assert_eq!(error.code, ErrorCode::ControlStepNotAllowed, "{step}");
        assert_eq!(self.state().await, before, "{step} changed the state");
    }

    /// Where the center has the issuance now: the print report the kiosk sent, sent
    /// again (`repeat`), is answered with the issuance's status.
    async fn center_status(&self, request_id: RequestId, reported: PrintOutcome) -> IssuanceStatus {
        let client = kiosk_sim::CenterClient::new(&self.settings).expect("center client");
        let report = PrintReport {
            kiosk_id: self.settings.kiosk_id.clone(),
            outcome: reported,
            repeat: true,
        };
        client
            .report_print(request_id, &report)
            .await
            .expect("the center knows this print report")
            .status
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .expect("control read")
    }

    async fn state(&self) -> ControlState {
        self.http
            .get(format!("{}/state", self.base))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state body")
    }

    async fn document(&self, request_id: RequestId) -> (StatusCode, Vec<u8>) {
        let response = self
            .http
            .get(format!("{}/documents/{request_id}", self.base))
            .send()
            .await
            .expect("document");
        let status = response.status();
        (status, response.bytes().await.expect("pdf").to_vec())
    }

    async fn place(&self, card: &CardFile) -> ControlState {
        self.step(
            "card",
            Some(serde_json::to_value(PlaceCard { card: card.clone() }).expect("json")),
        )
        .await
    }

    async fn pin(&self, pin: &str) -> ControlState {
        self.step(
            "pin",
            Some(serde_json::to_value(EnterPin { pin: pin.into() }).expect("json")),
        )
        .await
    }

    async fn order(&self, certificate: CertificateKind, copies: u8) -> ControlState {
        let route = self
            .step(
                "route",
                Some(
                    serde_json::to_value(ChooseRoute {
                        route: Route::Residence,
                    })
                    .expect("json"),
                ),
            )
            .await;
        assert_eq!(route.screen, Screen::Menu);
        self.step(
            "order",
            Some(
                serde_json::to_value(ChooseOrder {
                    certificate,
                    copies,
                    idempotency_key: None,
                })
                .expect("json"),
            ),
        )
        .await
    }

    /// Card, PIN, route, order: the fee is shown.
    async fn up_to_the_fee(&self, card: &CardFile, certificate: CertificateKind) -> ControlState {
        let placed = self.place(card).await;
        assert_eq!(placed.screen, Screen::CardPlaced);
        assert!(placed.card_in_reader);
        let pinned = self.pin(&card.pin).await;
        assert_eq!(pinned.screen, Screen::Route, "{pinned:?}");
        let shown = self.order(certificate, 1).await;
        assert_eq!(shown.screen, Screen::ConfirmFee, "{shown:?}");
        assert!(shown.request_id.is_some() && shown.fee_yen.is_some());
        shown
    }

    async fn pay(&self, pay: Pay) -> ControlState {
        self.step("payment", Some(serde_json::to_value(pay).expect("json")))
            .await
    }

    async fn printer(&self, behaviour: PrinterBehaviour) -> ControlState {
        self.step(
            "printer",
            Some(serde_json::to_value(SetPrinter { behaviour }).expect("json")),
        )
        .await
    }
}

fn read_card(path: &Path) -> CardFile {
    serde_json::from_slice(&std::fs::read(path).expect("card file")).expect("card json")
}

fn resident_record() -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope: HouseholdScope::SelfOnly,
        include_domicile: false,
        include_relationship: false,
    }
}

/// The request id on every page of `pdf`, read as the conformance suite reads it.
fn page_request_ids(pdf: &[u8]) -> Vec<String> {
    conformance::kiosk::scenarios::page_request_ids(pdf).expect("a request id on every page")
}

/// Takes the card, then the certificate: back to idle.
async fn take_everything(kiosk: &Harness) {
    let taken = kiosk.step("take-card", None).await;
    assert!(!taken.card_in_reader);
    assert_eq!(taken.screen, Screen::TakeCertificate);
    let done = kiosk.step("take-certificate", None).await;
    assert_eq!(done.screen, Screen::Idle);
    assert!(!done.certificate_in_tray && !done.card_in_reader);
    assert_eq!(done.request_id, None);
}

async fn assert_printed_document(kiosk: &Harness, state: &ControlState, copies: u8) {
    let request_id = state.request_id.expect("request id");
    let printed = state
        .printed
        .iter()
        .find(|p| p.request_id == request_id)
        .expect("in the printed list");
    assert_eq!(printed.copies, copies);
    let (status, pdf) = kiosk.document(request_id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF"));
    let ids = page_request_ids(&pdf);
    assert_eq!(ids.len() as u32, printed.pages);
    assert!(
        ids.iter().all(|id| *id == request_id.to_string()),
        "a page carries another request id: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_types_are_paid_printed_and_taken() {
    let kiosk = Harness::start(None).await;
    let info: ControlInfo = kiosk
        .http
        .get(format!("{}/info", kiosk.base))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("info body");
    assert_eq!(info.wire_version, schemas::WIRE_VERSION);
    assert!(info.software.starts_with("kiosk-sim "));
    let card = kiosk.card(FULL_CARD);

    // 住民票の写し, coins with change.
    let shown = kiosk.up_to_the_fee(&card, resident_record()).await;
    let fee = shown.fee_yen.expect("fee");
    assert!(fee > 0);
    assert_eq!(
        shown.municipality.map(|m| m.to_string()).as_deref(),
        Some("212113")
    );
    let short = kiosk
        .pay(Pay::Coins {
            inserted_yen: fee - 10,
        })
        .await;
    assert_eq!(short.screen, Screen::Paying, "not enough: still paying");
    assert!(short.printed.is_empty());
    let paid = kiosk.pay(Pay::Coins { inserted_yen: 1000 }).await;
    assert_eq!(paid.screen, Screen::TakeCard, "{paid:?}");
    assert_eq!(paid.change_yen, Some(1000 - fee));
    assert!(paid.card_in_reader && paid.certificate_in_tray);
    assert_eq!(paid.outbox_pending, 0);
    assert_printed_document(&kiosk, &paid, 1).await;
    take_everything(&kiosk).await;

    // 印鑑登録証明書, e-money, two copies.
    kiosk.place(&card).await;
    kiosk.pin(&card.pin).await;
    let shown = kiosk.order(CertificateKind::SealRegistration, 2).await;
    assert_eq!(shown.screen, Screen::ConfirmFee, "{shown:?}");
    let paid = kiosk.pay(Pay::Emoney).await;
    assert_eq!(paid.screen, Screen::TakeCard, "{paid:?}");
    assert_eq!(paid.change_yen, None);
    assert_eq!(paid.printed.len(), 2);
    assert_printed_document(&kiosk, &paid, 2).await;
    take_everything(&kiosk).await;
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_then_the_right_one_and_three_wrong_lock() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.resident_card(1);
    let wrong = if card.pin == "0000" { "1111" } else { "0000" };
    kiosk.place(&card).await;
    let once = kiosk.pin(wrong).await;
    assert_eq!(once.screen, Screen::CardPlaced);
    assert_eq!(once.pin_attempts_left, Some(2));
    assert!(once.message_ja.is_some() && once.message_en.is_some());
    let malformed = kiosk.pin("12").await;
    assert_eq!(malformed.screen, Screen::CardPlaced);
    assert_eq!(
        malformed.pin_attempts_left,
        Some(2),
        "a malformed PIN costs nothing"
    );
    let right = kiosk.pin(&card.pin).await;
    assert_eq!(right.screen, Screen::Route);
    assert_eq!(
        right.pin_attempts_left,
        Some(3),
        "the right PIN resets the counter"
    );
    assert!(right.card_session_open, "{right:?}");
    kiosk.not_allowed("take-certificate", None).await;
    // A power cycle ends that session; the card is still in the reader.
    let restarted = kiosk.step("restart", None).await;
    assert_eq!(restarted.screen, Screen::TakeCard);
    assert_eq!(kiosk.step("take-card", None).await.screen, Screen::Idle);

    let card = kiosk.resident_card(2);
    kiosk.place(&card).await;
    assert_eq!(kiosk.pin(wrong).await.pin_attempts_left, Some(2));
    assert_eq!(kiosk.pin(wrong).await.pin_attempts_left, Some(1));
    let locked = kiosk.pin(wrong).await;
    assert_eq!(locked.screen, Screen::Locked);
    assert_eq!(locked.pin_attempts_left, Some(0));
    kiosk
        .not_allowed("pin", Some(json!({"pin": card.pin})))
        .await;
    let taken = kiosk.step("take-card", None).await;
    assert_eq!(taken.screen, Screen::Idle);
    assert_eq!(taken.request_id, None);
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_shows_only_the_generic_message() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(REFUSED_CARD);
    kiosk.place(&card).await;
    kiosk.pin(&card.pin).await;
    let refused = kiosk.order(resident_record(), 1).await;
    assert_eq!(refused.screen, Screen::Refused);
    assert!(refused.request_id.is_some());
    assert_refused_and_card_back(&kiosk, &refused).await;
    kiosk.stop().await;
}

/// The generic message only, no fee, no payment accepted; the card comes back and
/// nothing was printed.
async fn assert_refused_and_card_back(kiosk: &Harness, refused: &ControlState) {
    assert_eq!(refused.screen, Screen::Refused);
    assert_eq!(
        refused.message_ja.as_deref(),
        Some(RefusalReason::RESIDENT_MESSAGE_JA)
    );
    assert_eq!(
        refused.message_en.as_deref(),
        Some(RefusalReason::RESIDENT_MESSAGE_EN)
    );
    assert_eq!(refused.fee_yen, None);
    kiosk
        .not_allowed("payment", Some(json!({"method": "emoney"})))
        .await;
    let taken = kiosk.step("take-card", None).await;
    assert_eq!(taken.screen, Screen::Idle);
    assert!(taken.printed.is_empty());
}

/// A card the center does not accept (revoked, expired) cannot be helped at any
/// kiosk: the resident is sent to the counter with the refusal's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_or_expired_card_sends_the_resident_to_the_counter() {
    let kiosk = Harness::start(None).await;
    for kind in [CardKind::Revoked, CardKind::Expired] {
        let info = kiosk
            .running
            .as_ref()
            .expect("running")
            .layout
            .cards
            .iter()
            .find(|c| c.kind == kind && c.municipality.to_string() == "212113")
            .expect("the sandbox card")
            .clone();
        let card = read_card(&info.path);
        kiosk.place(&card).await;
        // The center turns the card away when it would open the card session, right
        // after the PIN: the visit ends as a refused order does.
        let refused = kiosk.pin(&card.pin).await;
        assert!(!refused.card_session_open);
        assert!(refused.card_in_reader);
        assert_eq!(refused.request_id, None, "nothing was ordered");
        kiosk
            .not_allowed("route", Some(json!({"route": "residence"})))
            .await;
        assert_refused_and_card_back(&kiosk, &refused).await;
    }
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_walk_away_void_and_print_nothing() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    for pay in [Pay::Cancel, Pay::WalkAway] {
        let shown = kiosk.up_to_the_fee(&card, resident_record()).await;
        let voided = kiosk.pay(pay.clone()).await;
        assert_eq!(voided.screen, Screen::Voided, "{pay:?}");
        assert!(!voided.certificate_in_tray);
        assert!(voided.printed.is_empty());
        assert_eq!(voided.outbox_pending, 0);
        let (status, _) = kiosk.document(shown.request_id.expect("id")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let taken = kiosk.step("take-card", None).await;
        assert_eq!(taken.screen, Screen::Idle, "nothing in the tray");
    }
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_the_order_hands_the_card_back_and_sends_nothing() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    // On the PIN pad, on the route screen, on the menu: nothing was sent yet.
    for screens_in in 0..3 {
        let placed = kiosk
            .step("card", Some(json!({ "card": card.clone() })))
            .await;
        assert_eq!(placed.screen, Screen::CardPlaced);
        if screens_in >= 1 {
            let pinned = kiosk.step("pin", Some(json!({ "pin": card.pin }))).await;
            assert_eq!(pinned.screen, Screen::Route);
        }
        if screens_in >= 2 {
            let menu = kiosk
                .step("route", Some(json!({ "route": "residence" })))
                .await;
            assert_eq!(menu.screen, Screen::Menu);
        }
        let cancelled = kiosk.step("cancel", None).await;
        assert_eq!(cancelled.screen, Screen::TakeCard, "after {screens_in}");
        assert!(cancelled.card_in_reader);
        assert_eq!(cancelled.request_id, None);
        assert_eq!(cancelled.fee_yen, None);
        let taken = kiosk.step("take-card", None).await;
        assert_eq!(taken.screen, Screen::Idle);
        assert!(taken.printed.is_empty());
    }
    // Once the fee is shown, the order is out: cancel is refused, payment cancel voids.
    kiosk.up_to_the_fee(&card, resident_record()).await;
    kiosk.not_allowed("cancel", None).await;
    let voided = kiosk.pay(Pay::Cancel).await;
    assert_eq!(voided.screen, Screen::Voided);
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jam_voids_and_refunds() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    kiosk.printer(PrinterBehaviour::Jam).await;
    let shown = kiosk.up_to_the_fee(&card, resident_record()).await;
    let fee = shown.fee_yen.expect("fee");
    let jammed = kiosk.pay(Pay::Emoney).await;
    assert_eq!(jammed.screen, Screen::Voided, "{jammed:?}");
    assert!(!jammed.certificate_in_tray);
    assert!(jammed.printed.is_empty());
    assert!(
        jammed
            .message_ja
            .as_deref()
            .is_some_and(|m| m.contains(&fee.to_string())),
        "the refund is announced: {:?}",
        jammed.message_ja
    );
    assert_eq!(jammed.outbox_pending, 0);
    let request_id = shown.request_id.expect("id");
    assert_eq!(
        kiosk.center_status(request_id, PrintOutcome::Failed).await,
        IssuanceStatus::Voided
    );
    kiosk.step("take-card", None).await;

    // The jam was for that job only.
    kiosk.up_to_the_fee(&card, resident_record()).await;
    let printed = kiosk.pay(Pay::Emoney).await;
    assert_eq!(printed.screen, Screen::TakeCard);
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_loss_is_resolved_after_the_restart() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    kiosk.printer(PrinterBehaviour::PowerLoss).await;
    let shown = kiosk.up_to_the_fee(&card, resident_record()).await;
    let dark = kiosk.pay(Pay::Emoney).await;
    assert_eq!(dark.screen, Screen::Printing, "{dark:?}");
    assert_eq!(
        dark.outbox_pending, 1,
        "the unknown print report waits on disk"
    );
    // Nothing but a restart while the power is out.
    kiosk.not_allowed("take-card", None).await;
    kiosk.not_allowed("take-certificate", None).await;
    kiosk
        .not_allowed("printer", Some(json!({"behaviour": "ok"})))
        .await;
    kiosk
        .not_allowed(
            "card",
            Some(serde_json::to_value(PlaceCard { card: card.clone() }).expect("json")),
        )
        .await;

    let restarted = kiosk.step("restart", None).await;
    assert_eq!(restarted.outbox_pending, 0, "re-sent and resolved");
    assert_eq!(restarted.screen, Screen::TakeCard);
    assert!(restarted.card_in_reader && restarted.certificate_in_tray);
    assert_eq!(restarted.request_id, None, "the session in memory is lost");
    let request_id = shown.request_id.expect("id");
    assert!(restarted.printed.iter().any(|p| p.request_id == request_id));
    assert_eq!(
        kiosk.center_status(request_id, PrintOutcome::Ok).await,
        IssuanceStatus::Printed,
        "the restarted kiosk resolved the unknown print"
    );
    let (status, pdf) = kiosk.document(request_id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page_request_ids(&pdf)
        .iter()
        .all(|id| *id == request_id.to_string()));
    take_everything(&kiosk).await;
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_out_of_order_are_refused_and_change_nothing() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    let order =
        json!({"certificate": serde_json::to_value(resident_record()).expect("json"), "copies": 1});
    // Idle.
    kiosk
        .not_allowed("pin", Some(json!({"pin": card.pin})))
        .await;
    kiosk
        .not_allowed("route", Some(json!({"route": Route::Residence})))
        .await;
    kiosk.not_allowed("order", Some(order.clone())).await;
    kiosk
        .not_allowed("payment", Some(json!({"method": "emoney"})))
        .await;
    kiosk.not_allowed("take-card", None).await;
    kiosk.not_allowed("take-certificate", None).await;
    // Card placed: no order, no payment before the PIN.
    kiosk.place(&card).await;
    kiosk
        .not_allowed(
            "card",
            Some(serde_json::to_value(PlaceCard { card: card.clone() }).expect("json")),
        )
        .await;
    kiosk.not_allowed("order", Some(order.clone())).await;
    kiosk
        .not_allowed(
            "payment",
            Some(json!({"method": "coins", "inserted_yen": 1000})),
        )
        .await;
    kiosk.not_allowed("take-certificate", None).await;
    // A malformed body is a 400, and changes nothing either.
    let before = kiosk.state().await;
    let response = kiosk
        .call("pin", Some(json!({"pin": 1234, "extra": true})))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: ErrorBody = response.json().await.expect("error body");
    assert_eq!(error.code, ErrorCode::BadRequest);
    assert_eq!(kiosk.state().await, before);
    // Fee shown: no second order, nothing to take from the tray. (The card may be
    // taken: see the_card_is_taken_after_the_pin_and_the_visit_prints_twice.)
    kiosk.pin(&card.pin).await;
    kiosk.order(resident_record(), 1).await;
    kiosk.not_allowed("order", Some(order)).await;
    kiosk.not_allowed("take-certificate", None).await;
    // Printed: the card first, then the certificate.
    kiosk.pay(Pay::Emoney).await;
    kiosk.not_allowed("take-certificate", None).await;
    kiosk
        .not_allowed("payment", Some(json!({"method": "emoney"})))
        .await;
    take_everything(&kiosk).await;
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_skip_void_on_print_failure_keeps_the_fee_of_a_jam() {
    let kiosk = Harness::start(Some("skip_void_on_print_failure")).await;
    let card = kiosk.card(FULL_CARD);
    kiosk.printer(PrinterBehaviour::Jam).await;
    let shown = kiosk.up_to_the_fee(&card, resident_record()).await;
    let jammed = kiosk.pay(Pay::Emoney).await;
    // The honest kiosk shows `voided` and refunds; this one claims a print.
    assert_eq!(jammed.screen, Screen::TakeCard, "{jammed:?}");
    assert!(!jammed.certificate_in_tray, "nothing came out");
    assert_eq!(
        jammed.outbox_pending, 0,
        "reported (as ok) and acknowledged"
    );
    assert_eq!(
        kiosk
            .center_status(shown.request_id.expect("id"), PrintOutcome::Ok)
            .await,
        IssuanceStatus::Printed,
        "the center was told it printed, so the fee is kept"
    );
    kiosk.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_skip_document_check_prints_another_requests_document() {
    let kiosk = Harness::start(Some("skip_document_check")).await;
    let card = kiosk.card(FULL_CARD);
    kiosk.up_to_the_fee(&card, resident_record()).await;
    let first = kiosk.pay(Pay::Emoney).await;
    let first_id = first.request_id.expect("id");
    take_everything(&kiosk).await;
    kiosk.up_to_the_fee(&card, resident_record()).await;
    let second = kiosk.pay(Pay::Emoney).await;
    assert_eq!(second.screen, Screen::TakeCard, "{second:?}");
    let second_id = second.request_id.expect("id");
    assert_ne!(first_id, second_id);
    let (status, pdf) = kiosk.document(second_id).await;
    assert_eq!(status, StatusCode::OK);
    // The honest kiosk never prints this: the pages belong to the first request.
    assert!(page_request_ids(&pdf)
        .iter()
        .all(|id| *id == first_id.to_string()));
    kiosk.stop().await;
}

async fn route(kiosk: &Harness) -> ControlState {
    kiosk
        .step(
            "route",
            Some(
                serde_json::to_value(ChooseRoute {
                    route: Route::Residence,
                })
                .expect("json"),
            ),
        )
        .await
}

async fn choose(kiosk: &Harness, certificate: CertificateKind, copies: u8) -> ControlState {
    kiosk
        .step(
            "order",
            Some(
                serde_json::to_value(ChooseOrder {
                    certificate,
                    copies,
                    idempotency_key: None,
                })
                .expect("json"),
            ),
        )
        .await
}

/// The card is returned at once (DESIGN.md §1): taken right after the PIN, and the
/// visit still orders, pays and prints two certificates; at the end there is no card
/// reminder, only the certificates'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_is_taken_after_the_pin_and_the_visit_prints_twice() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    kiosk.place(&card).await;
    let pinned = kiosk.pin(&card.pin).await;
    assert_eq!(pinned.screen, Screen::Route, "{pinned:?}");
    assert!(pinned.card_session_open && pinned.card_in_reader);
    assert_eq!(
        pinned.message_ja.as_deref(),
        Some("カードをお取りください。")
    );
    assert_eq!(pinned.message_en.as_deref(), Some("Please take your card."));
    let taken = kiosk.step("take-card", None).await;
    assert_eq!(taken.screen, Screen::Route, "the visit goes on");
    assert!(!taken.card_in_reader && taken.card_session_open);
    assert_eq!(taken.pin_attempts_left, None);
    kiosk.not_allowed("take-card", None).await;

    // 住民票の写し, coins with change.
    assert_eq!(route(&kiosk).await.screen, Screen::Menu);
    let shown = choose(&kiosk, resident_record(), 1).await;
    assert_eq!(shown.screen, Screen::ConfirmFee, "{shown:?}");
    let fee = shown.fee_yen.expect("fee");
    let paid = kiosk.pay(Pay::Coins { inserted_yen: 1000 }).await;
    assert_eq!(
        paid.screen,
        Screen::TakeCertificate,
        "no card reminder: {paid:?}"
    );
    assert_eq!(paid.change_yen, Some(1000 - fee));
    assert!(paid.certificate_in_tray && !paid.card_in_reader);
    assert!(paid.card_session_open);
    assert_printed_document(&kiosk, &paid, 1).await;
    let first_id = paid.request_id.expect("id");

    // Another certificate in the same visit: 印鑑登録証明書, two copies, e-money.
    let again = route(&kiosk).await;
    assert_eq!(again.screen, Screen::Menu, "{again:?}");
    assert_eq!(again.request_id, None);
    assert_eq!(again.fee_yen, None);
    assert!(
        again.certificate_in_tray,
        "the first pages are still in the tray"
    );
    let shown = choose(&kiosk, CertificateKind::SealRegistration, 2).await;
    assert_eq!(shown.screen, Screen::ConfirmFee, "{shown:?}");
    assert_ne!(shown.request_id, Some(first_id));
    let paid = kiosk.pay(Pay::Emoney).await;
    assert_eq!(paid.screen, Screen::TakeCertificate, "{paid:?}");
    assert_eq!(paid.printed.len(), 2);
    assert_printed_document(&kiosk, &paid, 2).await;
    kiosk.not_allowed("take-card", None).await;

    let done = kiosk.step("take-certificate", None).await;
    assert_eq!(done.screen, Screen::Idle);
    assert!(!done.certificate_in_tray && !done.card_in_reader);
    assert!(!done.card_session_open, "the visit is over");
    kiosk
        .not_allowed("route", Some(json!({"route": "residence"})))
        .await;
    kiosk.stop().await;
}

/// The card may also be taken on the menu, the fee screen and mid-payment; with the
/// card out, an order refused by the municipality is left with 取消 (cancel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_may_be_taken_on_any_screen_of_the_visit() {
    let kiosk = Harness::start(None).await;
    let card = kiosk.card(FULL_CARD);
    // On the fee screen.
    kiosk.up_to_the_fee(&card, resident_record()).await;
    let taken = kiosk.step("take-card", None).await;
    assert_eq!(taken.screen, Screen::ConfirmFee);
    assert!(taken.fee_yen.is_some() && !taken.card_in_reader);
    let paid = kiosk.pay(Pay::Emoney).await;
    assert_eq!(paid.screen, Screen::TakeCertificate, "{paid:?}");
    assert_eq!(
        kiosk.step("take-certificate", None).await.screen,
        Screen::Idle
    );

    // On the menu, then a cancelled payment: voided, the card already out.
    kiosk.place(&card).await;
    kiosk.pin(&card.pin).await;
    route(&kiosk).await;
    let taken = kiosk.step("take-card", None).await;
    assert_eq!(taken.screen, Screen::Menu);
    choose(&kiosk, resident_record(), 1).await;
    let short = kiosk.pay(Pay::Coins { inserted_yen: 10 }).await;
    assert_eq!(short.screen, Screen::Paying);
    kiosk.not_allowed("take-card", None).await;
    let voided = kiosk.pay(Pay::Cancel).await;
    assert_eq!(voided.screen, Screen::Voided);
    assert!(!voided.card_in_reader && voided.card_session_open);
    kiosk.not_allowed("take-card", None).await;
    let done = kiosk.step("cancel", None).await;
    assert_eq!(done.screen, Screen::Idle, "nothing in the tray, no card");
    assert_eq!(done.printed.len(), 1, "only the first visit printed");

    // Refused by the municipality with the card out.
    let refused_card = kiosk.card(REFUSED_CARD);
    kiosk.place(&refused_card).await;
    kiosk.pin(&refused_card.pin).await;
    kiosk.step("take-card", None).await;
    route(&kiosk).await;
    let refused = choose(&kiosk, resident_record(), 1).await;
    assert_eq!(refused.screen, Screen::Refused);
    assert_eq!(
        refused.message_ja.as_deref(),
        Some(RefusalReason::RESIDENT_MESSAGE_JA)
    );
    kiosk.not_allowed("take-card", None).await;
    kiosk
        .not_allowed("payment", Some(json!({"method": "emoney"})))
        .await;
    let done = kiosk.step("cancel", None).await;
    assert_eq!(done.screen, Screen::Idle);
    assert!(!done.card_session_open);
    kiosk.stop().await;
}

/// The touch screen's pickers come from the center through the kiosk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_and_municipalities_are_answered() {
    let kiosk = Harness::start(None).await;
    let response = kiosk.get("municipalities").await;
    assert_eq!(response.status(), StatusCode::OK);
    let directory: schemas::MunicipalityDirectory = response.json().await.expect("directory");
    assert!(directory
        .municipalities
        .iter()
        .any(|m| m.code.to_string() == "212113"));

    let card = kiosk.card(FULL_CARD);
    for before_route in [false, true] {
        if before_route {
            kiosk.place(&card).await;
            kiosk.pin(&card.pin).await;
        }
        let response = kiosk.get("menu").await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let error: ErrorBody = response.json().await.expect("error body");
        assert_eq!(error.code, ErrorCode::ControlStepNotAllowed);
    }
    route(&kiosk).await;
    let response = kiosk.get("menu").await;
    assert_eq!(response.status(), StatusCode::OK);
    let menu: schemas::Menu = response.json().await.expect("menu");
    assert_eq!(menu.municipality_code.to_string(), "212113");
    assert_eq!(menu.route, schemas::RouteKind::Residence);
    assert!(menu
        .items
        .iter()
        .any(|item| item.certificate == schemas::CertificateType::ResidentRecord));
    kiosk.stop().await;
}
