//! The scenarios of the kiosk profile. Each drives a fresh kiosk over its control
//! interface as a resident and the store's hardware would, and checks what the kiosk
//! shows, what it printed (the PDFs, fetched back) and what the center recorded (its
//! database: issuance states and money totals).

use lopdf::{Document, Object};
use schemas::kiosk_control::{
    ChooseOrder, ChooseRoute, ControlState, EnterPin, Pay, PlaceCard, PrinterBehaviour, Screen,
    SetPrinter,
};
use schemas::{
    CardFile, CertificateKind, ErrorCode, HouseholdScope, RefusalReason, RequestId, Route,
    PDF_PAGE_REQUEST_ID_KEY,
};
use serde_json::Value;

use super::target::{Kiosk, KioskTarget};
use crate::runner::ScenarioLog;

/// The sandbox municipality whose cards the suite uses.
pub(super) const CODE: &str = "212113";
/// Issues every type.
pub(super) const FULL_CARD: &str = "2121130000000001";
/// Refused by the municipality (deceased).
pub(super) const REFUSED_CARD: &str = "2121130000000091";
/// Coins a resident inserts (more than any single fee: change is due).
pub(super) const COINS_YEN: u32 = 1000;

pub async fn run(id: &str, target: &KioskTarget, mut log: ScenarioLog) -> ScenarioLog {
    let kiosk = match target.fresh_kiosk().await {
        Ok(kiosk) => kiosk,
        Err(e) => {
            log.check("K-RUN-1", false, format!("starting a fresh kiosk: {e}"));
            return log;
        }
    };
    // A URL target's one kiosk keeps what it printed in earlier scenarios.
    let printed_at_start = match kiosk.get("state").await.and_then(|a| a.state()) {
        Ok(state) => last_printed(&state),
        Err(e) => {
            log.check("K-RUN-1", false, format!("the kiosk's state: {e}"));
            kiosk.stop().await;
            return log;
        }
    };
    let mut d = Drive {
        t: target,
        k: &kiosk,
        log: &mut log,
        printed_at_start,
    };
    let _ = match id {
        "kiosk.happy_path_coins" => happy_path_coins(&mut d).await,
        "kiosk.happy_path_emoney" => happy_path_emoney(&mut d).await,
        "kiosk.every_type" => every_type(&mut d).await,
        "kiosk.every_refusal" => every_refusal(&mut d).await,
        "kiosk.own_document" => own_document(&mut d).await,
        "kiosk.wrong_pin" => wrong_pin(&mut d).await,
        "kiosk.pin_lock" => pin_lock(&mut d).await,
        "kiosk.refusal_generic_message" => refusal(&mut d).await,
        "kiosk.duplicates" => duplicates(&mut d).await,
        "kiosk.cancel_and_walk_away" => cancel_and_walk_away(&mut d).await,
        "kiosk.printer_jam" => printer_jam(&mut d).await,
        "kiosk.power_loss" => power_loss(&mut d).await,
        "kiosk.left_behind" => left_behind(&mut d).await,
        "kiosk.every_refusal_code" => super::link::every_refusal_code(&mut d).await,
        "kiosk.retry_after_timeout" => super::link::retry_after_timeout(&mut d).await,
        "kiosk.late_answer_after_void" => super::link::late_answer_after_void(&mut d).await,
        "kiosk.foreign_document" => super::link::foreign_document(&mut d).await,
        "kiosk.wrong_server_certificate" => super::link::wrong_server_certificate(&mut d).await,
        "kiosk.card_refused" => super::refusals::card_refused(&mut d).await,
        "kiosk.day_dependent_refusals" => super::refusals::day_dependent_refusals(&mut d).await,
        "kiosk.center_refusals" => super::refusals::center_refusals(&mut d).await,
        _ => None,
    };
    kiosk.stop().await;
    log
}

pub(super) fn resident_record() -> CertificateKind {
    CertificateKind::ResidentRecord {
        scope: HouseholdScope::SelfOnly,
        include_domicile: false,
        include_relationship: false,
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> Value {
    // Serialising the suite's own request types cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The request id on every page of `pdf` (each page's own dictionary).
pub fn page_request_ids(pdf: &[u8]) -> Result<Vec<String>, String> {
    let document = Document::load_mem(pdf).map_err(|e| format!("not a PDF: {e}"))?;
    document
        .get_pages()
        .values()
        .map(|&id| {
            let page = document
                .get_dictionary(id)
                .map_err(|e| format!("page {id:?}: {e}"))?;
            match page.get(PDF_PAGE_REQUEST_ID_KEY.as_bytes()) {
                Ok(Object::String(bytes, _)) => Ok(String::from_utf8_lossy(bytes).into_owned()),
                _ => Err(format!("page {id:?} carries no {PDF_PAGE_REQUEST_ID_KEY}")),
            }
        })
        .collect()
}

/// One scenario's kiosk, center and log.
pub(super) struct Drive<'a> {
    pub(super) t: &'a KioskTarget,
    pub(super) k: &'a Kiosk,
    pub(super) log: &'a mut ScenarioLog,
    /// The kiosk's last printed document when the scenario started.
    pub(super) printed_at_start: Option<RequestId>,
}

/// The refused screen with only the generic message (the reason is never shown) and
/// no fee.
pub(super) fn shows_generic_refusal(state: &ControlState) -> bool {
    state.screen == Screen::Refused
        && state.message_ja.as_deref() == Some(RefusalReason::RESIDENT_MESSAGE_JA)
        && state.message_en.as_deref() == Some(RefusalReason::RESIDENT_MESSAGE_EN)
        && state.fee_yen.is_none()
}

/// The last document the kiosk printed: its printed list only grows (keeping the
/// last 100), so an unchanged last entry means nothing new was printed.
pub(super) fn last_printed(state: &ControlState) -> Option<RequestId> {
    state.printed.last().map(|p| p.request_id)
}

impl Drive<'_> {
    /// Nothing printed since the scenario started.
    pub(super) fn nothing_printed(&self, state: &ControlState) -> bool {
        last_printed(state) == self.printed_at_start
    }

    /// A step that must fit the screen: 200 and the kiosk's state, or `K-RUN-1` fails.
    pub(super) async fn step(&mut self, step: &str, body: Option<Value>) -> Option<ControlState> {
        let request = body.as_ref().map(|b| b.to_string().into_bytes());
        match self.k.post(step, body.as_ref()).await {
            Ok(answer) => {
                self.log.evidence(
                    format!("POST {step}"),
                    request.as_deref(),
                    Some(&answer.body),
                    Some(answer.status),
                );
                if answer.status != 200 {
                    self.log.check(
                        "K-RUN-1",
                        false,
                        format!("{step}: HTTP {}: {}", answer.status, answer.text()),
                    );
                    return None;
                }
                match answer.state() {
                    Ok(state) => Some(state),
                    Err(e) => {
                        self.log.check("K-RUN-1", false, format!("{step}: {e}"));
                        None
                    }
                }
            }
            Err(e) => {
                self.log
                    .check("K-RUN-1", false, format!("{step}: no answer: {e}"));
                None
            }
        }
    }

    /// A step that must not fit the screen: 409 `control_step_not_allowed`. Returns
    /// whether it was refused so.
    pub(super) async fn refused_step(&mut self, step: &str, body: Option<Value>) -> bool {
        match self.k.post(step, body.as_ref()).await {
            Ok(answer) => {
                answer.status == 409
                    && answer
                        .error()
                        .is_some_and(|e| e.code == ErrorCode::ControlStepNotAllowed)
            }
            Err(_) => false,
        }
    }

    pub(super) async fn state(&mut self) -> Option<ControlState> {
        match self.k.get("state").await {
            Ok(answer) if answer.status == 200 => match answer.state() {
                Ok(state) => Some(state),
                Err(e) => {
                    self.log.check("K-RUN-1", false, format!("state: {e}"));
                    None
                }
            },
            Ok(answer) => {
                self.log
                    .check("K-RUN-1", false, format!("state: HTTP {}", answer.status));
                None
            }
            Err(e) => {
                self.log.check("K-RUN-1", false, format!("state: {e}"));
                None
            }
        }
    }

    pub(super) fn card(&mut self, serial: &str) -> Option<CardFile> {
        let card = self.t.card(serial);
        self.log.require("K-RUN-1", "the sandbox card", card)
    }

    pub(super) fn resident_card(&mut self, index: usize) -> Option<CardFile> {
        let card = self.t.resident_card(CODE, index);
        self.log.require("K-RUN-1", "a sandbox resident card", card)
    }

    pub(super) async fn place(&mut self, card: &CardFile) -> Option<ControlState> {
        self.step("card", Some(json(&PlaceCard { card: card.clone() })))
            .await
    }

    pub(super) async fn pin(&mut self, pin: &str) -> Option<ControlState> {
        self.step("pin", Some(json(&EnterPin { pin: pin.into() })))
            .await
    }

    pub(super) async fn pay(&mut self, pay: Pay) -> Option<ControlState> {
        self.step("payment", Some(json(&pay))).await
    }

    pub(super) async fn printer(&mut self, behaviour: PrinterBehaviour) -> Option<ControlState> {
        self.step("printer", Some(json(&SetPrinter { behaviour })))
            .await
    }

    /// Route and order from the PIN-verified screen.
    pub(super) async fn order(
        &mut self,
        certificate: CertificateKind,
        copies: u8,
        idempotency_key: Option<String>,
    ) -> Option<ControlState> {
        let route = self
            .step(
                "route",
                Some(json(&ChooseRoute {
                    route: Route::Residence,
                })),
            )
            .await?;
        if route.screen != Screen::Menu {
            self.log.check(
                "K-FLOW-1",
                false,
                format!("after the route: {:?}, expected menu", route.screen),
            );
            return None;
        }
        self.step(
            "order",
            Some(json(&ChooseOrder {
                certificate,
                copies,
                idempotency_key,
            })),
        )
        .await
    }

    /// Card, PIN, route, order: `K-FLOW-1` on the fee screen.
    pub(super) async fn up_to_the_fee(
        &mut self,
        card: &CardFile,
        certificate: CertificateKind,
        copies: u8,
        idempotency_key: Option<String>,
    ) -> Option<ControlState> {
        let placed = self.place(card).await?;
        self.log.check(
            "K-FLOW-1",
            placed.screen == Screen::CardPlaced && placed.card_in_reader,
            format!("card placed: {:?}", placed.screen),
        );
        let pinned = self.pin(&card.pin).await?;
        self.log.check(
            "K-FLOW-1",
            pinned.screen == Screen::Route,
            format!("right PIN: {:?}", pinned.screen),
        );
        let shown = self.order(certificate, copies, idempotency_key).await?;
        let ok = shown.screen == Screen::ConfirmFee
            && shown.request_id.is_some()
            && shown.fee_yen.is_some_and(|f| f > 0)
            && shown.municipality.is_some_and(|m| m.to_string() == CODE);
        self.log.check(
            "K-FLOW-1",
            ok,
            format!(
                "order: screen {:?}, request id {:?}, fee {:?}, municipality {:?}",
                shown.screen, shown.request_id, shown.fee_yen, shown.municipality
            ),
        );
        ok.then_some(shown)
    }

    /// Checks the printed PDF of `request_id` on `clause`: in the printed list with
    /// `copies`, fetched as a PDF whose every page carries `request_id`.
    pub(super) async fn check_document(
        &mut self,
        clause: &str,
        state: &ControlState,
        request_id: RequestId,
        copies: Option<u8>,
    ) {
        let Some(printed) = state.printed.iter().find(|p| p.request_id == request_id) else {
            self.log.check(
                clause,
                false,
                format!("{request_id} is not in the printed list"),
            );
            return;
        };
        let pages = printed.pages;
        let copies_ok = copies.is_none_or(|c| printed.copies == c);
        let answer = match self.k.document(&request_id).await {
            Ok(answer) => answer,
            Err(e) => {
                self.log
                    .check(clause, false, format!("GET documents/{request_id}: {e}"));
                return;
            }
        };
        self.log.evidence(
            format!("GET documents/{request_id}"),
            None,
            Some(&answer.body),
            Some(answer.status),
        );
        if answer.status != 200 {
            self.log.check(
                clause,
                false,
                format!("GET documents/{request_id}: HTTP {}", answer.status),
            );
            return;
        }
        match page_request_ids(&answer.body) {
            Ok(ids) => {
                let own = request_id.to_string();
                let foreign: Vec<&String> = ids.iter().filter(|id| **id != own).collect();
                self.log.check(
                    clause,
                    !ids.is_empty()
                        && foreign.is_empty()
                        && u32::try_from(ids.len()).ok() == Some(pages)
                        && copies_ok,
                    format!(
                        "{request_id}: {} pages (announced {pages}), copies {} (ordered {copies:?}), pages of other requests: {foreign:?}",
                        ids.len(),
                        printed.copies
                    ),
                );
            }
            Err(e) => self
                .log
                .check(clause, false, format!("documents/{request_id}: {e}")),
        }
    }

    /// The center's state of `request_id` (as text), or `K-RUN-1` fails.
    pub(super) async fn center_state(&mut self, request_id: &RequestId) -> Option<String> {
        match self.t.issuance(request_id).await {
            Ok(Some(row)) => Some(row.state.as_str().to_owned()),
            Ok(None) => Some("absent".to_owned()),
            Err(e) => {
                self.log.check("K-RUN-1", false, e);
                None
            }
        }
    }

    pub(super) async fn money(&mut self) -> Option<center::db::MoneyTotals> {
        let money = self.t.money().await;
        self.log
            .require("K-RUN-1", "the center's money totals", money)
    }

    /// Takes the card then the certificate: the reminder screens in order, then idle.
    pub(super) async fn take_everything(&mut self) -> Option<()> {
        let taken = self.step("take-card", None).await?;
        let certificate = self.step("take-certificate", None).await?;
        self.log.check(
            "K-FLOW-2",
            taken.screen == Screen::TakeCertificate
                && !taken.card_in_reader
                && certificate.screen == Screen::Idle
                && !certificate.certificate_in_tray
                && certificate.request_id.is_none(),
            format!(
                "take card: {:?}; take certificate: {:?}",
                taken.screen, certificate.screen
            ),
        );
        Some(())
    }

    /// Pays `pay` for the fee on screen and checks the print (`K-FLOW-2`), the PDF
    /// (`doc_clause`) and the center (`K-CENTER-1`).
    pub(super) async fn pay_and_check_print(
        &mut self,
        shown: &ControlState,
        pay: Pay,
        copies: u8,
        doc_clause: &str,
    ) -> Option<ControlState> {
        let request_id = shown.request_id?;
        let fee = shown.fee_yen?;
        let before = self.money().await?;
        let paid = self.pay(pay).await?;
        self.log.check(
            "K-FLOW-2",
            paid.screen == Screen::TakeCard
                && paid.card_in_reader
                && paid.certificate_in_tray
                && paid.outbox_pending == 0,
            format!(
                "paid: screen {:?}, card in reader {}, certificate in tray {}, outbox {}",
                paid.screen, paid.card_in_reader, paid.certificate_in_tray, paid.outbox_pending
            ),
        );
        self.check_document(doc_clause, &paid, request_id, Some(copies))
            .await;
        let state = self.center_state(&request_id).await?;
        let after = self.money().await?;
        let charged = after.printed_yen - before.printed_yen;
        self.log.check(
            "K-CENTER-1",
            state == "printed" && charged == i64::from(fee),
            format!("center: {request_id} {state}, charged {charged} yen for a fee of {fee} yen"),
        );
        Some(paid)
    }
}

async fn happy_path_coins(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
    let fee = shown.fee_yen?;
    let short = d
        .pay(Pay::Coins {
            inserted_yen: fee.saturating_sub(10),
        })
        .await?;
    d.log.check(
        "K-PAY-1",
        short.screen == Screen::Paying
            && d.nothing_printed(&short)
            && short.change_yen == Some(fee.saturating_sub(10)),
        format!(
            "{} yen for a fee of {fee}: screen {:?}, returned {:?}",
            fee.saturating_sub(10),
            short.screen,
            short.change_yen
        ),
    );
    let paid = d
        .pay_and_check_print(
            &shown,
            Pay::Coins {
                inserted_yen: COINS_YEN,
            },
            1,
            "K-DOC-1",
        )
        .await?;
    d.log.check(
        "K-PAY-1",
        paid.change_yen == Some(COINS_YEN.saturating_sub(fee)),
        format!(
            "{COINS_YEN} yen for a fee of {fee}: change {:?}",
            paid.change_yen
        ),
    );
    d.take_everything().await
}

async fn happy_path_emoney(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    let shown = d
        .up_to_the_fee(&card, CertificateKind::SealRegistration, 2, None)
        .await?;
    let paid = d
        .pay_and_check_print(&shown, Pay::Emoney, 2, "K-DOC-1")
        .await?;
    d.log.check(
        "K-PAY-1",
        paid.change_yen.is_none(),
        format!("e-money: no change ({:?})", paid.change_yen),
    );
    d.take_everything().await
}

/// One order of each of the eight certificate types (card 0001 holds every ledger).
fn every_type_kind() -> [CertificateKind; 8] {
    [
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::Household,
            include_domicile: true,
            include_relationship: true,
        },
        CertificateKind::ResidentRecordItems {
            scope: HouseholdScope::SelfOnly,
            include_relationship: false,
        },
        CertificateKind::SealRegistration,
        CertificateKind::IncomeTax { fiscal_year: None },
        CertificateKind::TaxPayment { fiscal_year: None },
        CertificateKind::FamilyRegisterAll,
        CertificateKind::FamilyRegisterIndividual,
        CertificateKind::FamilyRegisterAttachment {
            include_domicile: false,
        },
    ]
}

async fn every_type(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    for kind in every_type_kind() {
        let Some(shown) = d.up_to_the_fee(&card, kind.clone(), 1, None).await else {
            d.log
                .check("K-FLOW-1", false, format!("{kind:?} did not reach the fee"));
            // Leave the kiosk idle for the next type.
            let _ = d.k.post("take-card", None).await;
            continue;
        };
        d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-1")
            .await?;
        d.take_everything().await?;
    }
    Some(())
}

/// Sandbox residents the municipality refuses whatever the day (the adapter's special
/// residents, `municipal-adapter/src/samples.rs`), with what they order.
fn refused_orders() -> Vec<(&'static str, CertificateKind)> {
    let household = CertificateKind::ResidentRecord {
        scope: HouseholdScope::Household,
        include_domicile: false,
        include_relationship: false,
    };
    vec![
        ("2121130000000093", resident_record()), // 支援措置 (DV support measures)
        ("2121130000000060", household),         // 支援措置 in the household
        ("2121130000000092", resident_record()), // 転出 (moved out)
        ("2121130000000091", resident_record()), // 死亡 (deceased)
        ("2121130000000061", resident_record()), // 消除 (erased record)
        ("2121130000000094", resident_record()), // 15歳未満
        ("2121130000000064", CertificateKind::SealRegistration), // no 印鑑登録
        (
            "2121130000000066",
            CertificateKind::IncomeTax { fiscal_year: None },
        ), // no tax record
        ("2121130000000067", CertificateKind::FamilyRegisterAll), // 戸籍 being amended
    ]
}

async fn every_refusal(d: &mut Drive<'_>) -> Option<()> {
    let before = d.money().await?;
    for (serial, kind) in refused_orders() {
        let card = d.card(serial)?;
        d.place(&card).await?;
        d.pin(&card.pin).await?;
        let refused = d.order(kind.clone(), 1, None).await?;
        d.log.check(
            "K-REFUSE-1",
            shows_generic_refusal(&refused),
            format!(
                "card {serial} {kind:?}: screen {:?}, message {:?}, fee {:?}",
                refused.screen, refused.message_ja, refused.fee_yen
            ),
        );
        let taken = d.step("take-card", None).await?;
        d.log.check(
            "K-REFUSE-1",
            taken.screen == Screen::Idle && d.nothing_printed(&taken),
            format!(
                "card {serial} taken: {:?}, printed {}",
                taken.screen,
                taken.printed.len()
            ),
        );
    }
    let after = d.money().await?;
    d.log.check(
        "K-REFUSE-1",
        after.paid_yen == before.paid_yen,
        format!(
            "no fee for refusals: paid {} yen before, {} after",
            before.paid_yen, after.paid_yen
        ),
    );
    Some(())
}

async fn own_document(d: &mut Drive<'_>) -> Option<()> {
    // Consecutive sessions of two residents: the 2023–24 incidents printed the
    // previous job's document.
    for index in 0..3 {
        let card = d.resident_card(index)?;
        let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
        d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-2")
            .await?;
        d.take_everything().await?;
    }
    Some(())
}

async fn wrong_pin(d: &mut Drive<'_>) -> Option<()> {
    let card = d.resident_card(3)?;
    let wrong = if card.pin == "0000" { "1111" } else { "0000" };
    d.place(&card).await?;
    let once = d.pin(wrong).await?;
    d.log.check(
        "K-PIN-1",
        once.screen == Screen::CardPlaced && once.pin_attempts_left == Some(2),
        format!(
            "one wrong PIN: {:?}, attempts left {:?}",
            once.screen, once.pin_attempts_left
        ),
    );
    let right = d.pin(&card.pin).await?;
    d.log.check(
        "K-PIN-1",
        right.screen == Screen::Route && right.pin_attempts_left == Some(3),
        format!(
            "then the right PIN: {:?}, attempts left {:?}",
            right.screen, right.pin_attempts_left
        ),
    );
    let shown = d.order(resident_record(), 1, None).await?;
    d.log.check(
        "K-PIN-1",
        shown.screen == Screen::ConfirmFee,
        format!("the order after the right PIN: {:?}", shown.screen),
    );
    d.pay(Pay::Cancel).await?;
    Some(())
}

async fn pin_lock(d: &mut Drive<'_>) -> Option<()> {
    let card = d.resident_card(4)?;
    let wrong = if card.pin == "0000" { "1111" } else { "0000" };
    d.place(&card).await?;
    d.pin(wrong).await?;
    d.pin(wrong).await?;
    let locked = d.pin(wrong).await?;
    d.log.check(
        "K-PIN-2",
        locked.screen == Screen::Locked
            && locked.pin_attempts_left == Some(0)
            && locked.request_id.is_none(),
        format!(
            "three wrong PINs: {:?}, attempts left {:?}, request id {:?}",
            locked.screen, locked.pin_attempts_left, locked.request_id
        ),
    );
    let no_more = d
        .refused_step(
            "pin",
            Some(json(&EnterPin {
                pin: card.pin.clone(),
            })),
        )
        .await;
    d.log.check(
        "K-PIN-2",
        no_more,
        "the right PIN on a locked card is refused (409 control_step_not_allowed)",
    );
    let taken = d.step("take-card", None).await?;
    d.log.check(
        "K-PIN-2",
        taken.screen == Screen::Idle && d.nothing_printed(&taken),
        format!("card taken: {:?}", taken.screen),
    );
    Some(())
}

async fn refusal(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(REFUSED_CARD)?;
    d.place(&card).await?;
    d.pin(&card.pin).await?;
    let refused = d.order(resident_record(), 1, None).await?;
    d.log.check(
        "K-REFUSE-1",
        shows_generic_refusal(&refused),
        format!(
            "refused: screen {:?}, message {:?} / {:?}, fee {:?}",
            refused.screen, refused.message_ja, refused.message_en, refused.fee_yen
        ),
    );
    let no_payment = d.refused_step("payment", Some(json(&Pay::Emoney))).await;
    d.log.check(
        "K-REFUSE-1",
        no_payment,
        "no payment after a refusal (409 control_step_not_allowed)",
    );
    let taken = d.step("take-card", None).await?;
    d.log.check(
        "K-REFUSE-1",
        taken.screen == Screen::Idle && d.nothing_printed(&taken),
        format!(
            "card taken: {:?}, printed {}",
            taken.screen,
            taken.printed.len()
        ),
    );
    Some(())
}

async fn duplicates(d: &mut Drive<'_>) -> Option<()> {
    let card = d.resident_card(5)?;
    let key = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    // The first session is lost (power cycle) after the fee was shown; the resident
    // starts again and the kiosk retries with the same key and order.
    let first = d
        .up_to_the_fee(&card, resident_record(), 1, Some(key.clone()))
        .await?;
    let first_id = first.request_id?;
    let restarted = d.step("restart", None).await?;
    if restarted.card_in_reader {
        d.step("take-card", None).await?;
    }
    let before = d.money().await?;
    d.place(&card).await?;
    d.pin(&card.pin).await?;
    let again = d.order(resident_record(), 1, Some(key.clone())).await?;
    d.log.check(
        "K-IDEM-1",
        again.screen == Screen::ConfirmFee && again.request_id == Some(first_id),
        format!(
            "same key, same order: screen {:?}, request id {:?} (first {first_id})",
            again.screen, again.request_id
        ),
    );
    if again.screen == Screen::ConfirmFee {
        let fee = again.fee_yen.unwrap_or(0);
        let paid = d.pay(Pay::Emoney).await?;
        let after = d.money().await?;
        let charged = after.paid_yen - before.paid_yen;
        d.log.check(
            "K-IDEM-1",
            paid.screen == Screen::TakeCard && charged == i64::from(fee),
            format!(
                "paid once: screen {:?}, charged {charged} yen for {fee}",
                paid.screen
            ),
        );
        d.take_everything().await?;
    }
    // Same key, another order (two copies): never a fee, never a print.
    let printed_before = last_printed(&d.state().await?);
    d.place(&card).await?;
    d.pin(&card.pin).await?;
    let conflict = d.order(resident_record(), 2, Some(key)).await?;
    d.log.check(
        "K-IDEM-2",
        conflict.screen != Screen::ConfirmFee && conflict.fee_yen.is_none(),
        format!(
            "same key, other order: screen {:?}, fee {:?}",
            conflict.screen, conflict.fee_yen
        ),
    );
    let no_payment = d.refused_step("payment", Some(json(&Pay::Emoney))).await;
    let end = d.state().await?;
    d.log.check(
        "K-IDEM-2",
        no_payment && last_printed(&end) == printed_before && !end.certificate_in_tray,
        format!(
            "no payment accepted ({no_payment}), last printed {:?} → {:?}",
            printed_before,
            last_printed(&end)
        ),
    );
    Some(())
}

async fn cancel_and_walk_away(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    for pay in [Pay::Cancel, Pay::WalkAway] {
        let before = d.money().await?;
        let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
        let request_id = shown.request_id?;
        let voided = d.pay(pay.clone()).await?;
        let document = d.k.document(&request_id).await.map(|a| a.status).ok();
        d.log.check(
            "K-VOID-1",
            voided.screen == Screen::Voided
                && !voided.certificate_in_tray
                && d.nothing_printed(&voided)
                && document == Some(404),
            format!(
                "{pay:?}: screen {:?}, in tray {}, printed {}, document HTTP {document:?}",
                voided.screen,
                voided.certificate_in_tray,
                voided.printed.len()
            ),
        );
        let state = d.center_state(&request_id).await?;
        let after = d.money().await?;
        let kept = (after.paid_yen - after.refunded_yen) - (before.paid_yen - before.refunded_yen);
        d.log.check(
            "K-VOID-2",
            state == "voided" && kept == 0,
            format!("{pay:?}: center {state}, fee kept {kept} yen"),
        );
        let taken = d.step("take-card", None).await?;
        d.log.check(
            "K-VOID-1",
            taken.screen == Screen::Idle,
            format!(
                "{pay:?}: card taken, nothing in the tray: {:?}",
                taken.screen
            ),
        );
    }
    Some(())
}

async fn printer_jam(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    d.printer(PrinterBehaviour::Jam).await?;
    let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
    let request_id = shown.request_id?;
    let fee = shown.fee_yen?;
    let before = d.money().await?;
    let jammed = d.pay(Pay::Emoney).await?;
    d.log.check(
        "K-JAM-1",
        jammed.screen == Screen::Voided
            && !jammed.certificate_in_tray
            && d.nothing_printed(&jammed)
            && jammed
                .message_ja
                .as_deref()
                .is_some_and(|m| m.contains(&fee.to_string())),
        format!(
            "jam: screen {:?}, in tray {}, printed {}, message {:?}",
            jammed.screen,
            jammed.certificate_in_tray,
            jammed.printed.len(),
            jammed.message_ja
        ),
    );
    let state = d.center_state(&request_id).await?;
    let after = d.money().await?;
    let printed = after.printed_yen - before.printed_yen;
    d.log.check(
        "K-JAM-2",
        state == "voided" && printed == 0,
        format!("center: {request_id} {state}, fee kept as printed {printed} yen"),
    );
    Some(())
}

async fn power_loss(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    d.printer(PrinterBehaviour::PowerLoss).await?;
    let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
    let request_id = shown.request_id?;
    let dark = d.pay(Pay::Emoney).await?;
    d.log.check(
        "K-POWER-1",
        dark.screen == Screen::Printing && dark.outbox_pending >= 1,
        format!(
            "power lost: screen {:?}, outbox {}",
            dark.screen, dark.outbox_pending
        ),
    );
    let restarted = d.step("restart", None).await?;
    d.log.check(
        "K-POWER-1",
        restarted.outbox_pending == 0,
        format!("after the restart: outbox {}", restarted.outbox_pending),
    );
    let state = d.center_state(&request_id).await?;
    d.log.check(
        "K-POWER-2",
        state == "printed",
        format!("center after the restart: {request_id} {state}"),
    );
    d.check_document("K-POWER-2", &restarted, request_id, Some(1))
        .await;
    Some(())
}

async fn left_behind(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    let other = d.resident_card(6)?;
    let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
    d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-1")
        .await?;
    // The resident walks off: the reminder stays, another card is not taken in.
    let still = d.state().await?;
    let no_card = d
        .refused_step(
            "card",
            Some(json(&PlaceCard {
                card: other.clone(),
            })),
        )
        .await;
    d.log.check(
        "K-REMIND-1",
        still.screen == Screen::TakeCard && still.card_in_reader && no_card,
        format!(
            "card left behind: screen {:?}, card in reader {}, another card refused {no_card}",
            still.screen, still.card_in_reader
        ),
    );
    let taken = d.step("take-card", None).await?;
    let still = d.state().await?;
    let no_card = d
        .refused_step("card", Some(json(&PlaceCard { card: other })))
        .await;
    d.log.check(
        "K-REMIND-1",
        taken.screen == Screen::TakeCertificate
            && still.screen == Screen::TakeCertificate
            && still.certificate_in_tray
            && no_card,
        format!(
            "certificate left behind: screen {:?}, in tray {}, another card refused {no_card}",
            still.screen, still.certificate_in_tray
        ),
    );
    let done = d.step("take-certificate", None).await?;
    d.log.check(
        "K-REMIND-1",
        done.screen == Screen::Idle,
        format!("all taken: {:?}", done.screen),
    );
    Some(())
}
