//! Scenarios of the kiosk ↔ center link: the suite's [`CenterFront`] holds the
//! center's answers past the kiosk's timeout, doctors a document, or presents a
//! certificate of another CA, and the kiosk must never print what is not its own.
//!
//! [`CenterFront`]: super::front::CenterFront

use std::collections::BTreeSet;
use std::time::Duration;

use schemas::kiosk_control::{ControlState, Pay, Screen};
use schemas::RefusalReason;

use super::front::{AnsweredIssuance, FrontMode};
use super::scenarios::{
    last_printed, resident_record, shows_generic_refusal, Drive, FULL_CARD, REFUSED_CARD,
};

/// Slack on top of a hold before the suite stops waiting for it.
const HOLD_SLACK: Duration = Duration::from_secs(5);

impl Drive<'_> {
    /// Issuance answers the front handed on since `mark` (an earlier `answered().len()`).
    fn answers_since(&self, mark: usize) -> Vec<AnsweredIssuance> {
        self.t.front.answered().into_iter().skip(mark).collect()
    }

    async fn wait_for_holds(&mut self) {
        let bound = Duration::from_millis(self.t.hold_ms) + HOLD_SLACK;
        let done = self.t.front.holds_done(bound).await;
        self.log.check(
            "K-RUN-1",
            done,
            format!("held answers delivered or dropped within {bound:?}"),
        );
    }

    /// The resident takes whatever is in the reader and the tray.
    async fn take_all(&mut self, state: &ControlState) -> Option<ControlState> {
        let mut state = state.clone();
        if state.card_in_reader {
            state = self.step("take-card", None).await?;
        }
        if state.certificate_in_tray {
            state = self.step("take-certificate", None).await?;
        }
        Some(state)
    }
}

fn request_ids(answers: &[AnsweredIssuance]) -> BTreeSet<String> {
    answers
        .iter()
        .filter_map(|a| a.request_id.clone())
        .collect()
}

/// The first issuance answer is held past the kiosk's timeout; the kiosk may send the
/// order again, under the same key, and must be charged once.
pub(super) async fn retry_after_timeout(d: &mut Drive<'_>) -> Option<()> {
    let card = d.resident_card(7)?;
    d.place(&card).await?;
    d.pin(&card.pin).await?;
    let before = d.money().await?;
    let mark = d.t.front.answered().len();
    d.t.front.set_mode(FrontMode::HoldIssuances {
        count: 1,
        hold_ms: d.t.hold_ms,
    });
    let shown = d.order(resident_record(), 1, None).await?;
    d.t.front.set_mode(FrontMode::PassThrough);
    d.wait_for_holds().await;
    let answers = d.answers_since(mark);
    let ids = request_ids(&answers);
    let held = answers
        .first()
        .filter(|a| a.held)
        .and_then(|a| a.request_id.clone());
    d.log.check(
        "K-RUN-1",
        held.is_some(),
        format!("the suite held the first issuance answer: {answers:?}"),
    );
    d.log.check(
        "K-RETRY-1",
        ids.len() <= 1,
        format!(
            "{} issuance answer(s) for one order, request ids {ids:?}",
            answers.len()
        ),
    );
    if shown.screen == Screen::ConfirmFee {
        d.log.check(
            "K-RETRY-2",
            answers.len() >= 2,
            format!("the order was sent {} time(s)", answers.len()),
        );
        d.log.check(
            "K-RETRY-1",
            shown.request_id.map(|r| r.to_string()) == held,
            format!(
                "the fee is for request {:?}, the held one was {held:?}",
                shown.request_id
            ),
        );
        d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-1")
            .await?;
        d.take_everything().await?;
    } else {
        d.log.check(
            "K-RETRY-2",
            false,
            format!(
                "the kiosk gave up after the timeout: screen {:?}",
                shown.screen
            ),
        );
        let end = d.take_all(&shown).await?;
        d.log.check(
            "K-RETRY-1",
            end.printed
                .iter()
                .all(|p| Some(p.request_id.to_string()) != held),
            "the held request was not printed",
        );
    }
    let after = d.money().await?;
    let kept = (after.paid_yen - after.refunded_yen) - (before.paid_yen - before.refunded_yen);
    let fee = shown.fee_yen.map_or(0, i64::from);
    d.log.check(
        "K-RETRY-1",
        kept == fee && after.printed_yen - before.printed_yen == fee,
        format!("one order, fee {fee} yen: the center kept {kept} yen"),
    );
    Some(())
}

/// Every answer to one resident's order comes after the kiosk gave up; the next
/// resident at the same kiosk must get their own document, and the late one is never
/// printed (the real service's mis-issuance under load).
pub(super) async fn late_answer_after_void(d: &mut Drive<'_>) -> Option<()> {
    let first = d.resident_card(8)?;
    let second = d.resident_card(9)?;
    d.place(&first).await?;
    d.pin(&first.pin).await?;
    let before = d.money().await?;
    let mark = d.t.front.answered().len();
    d.t.front.set_mode(FrontMode::HoldIssuances {
        count: u32::MAX,
        hold_ms: d.t.hold_ms,
    });
    let gave_up = d.order(resident_record(), 1, None).await?;
    d.t.front.set_mode(FrontMode::PassThrough);
    d.wait_for_holds().await;
    let late = request_ids(&d.answers_since(mark));
    d.log.check(
        "K-RUN-1",
        !late.is_empty(),
        "the center answered the first resident's order (held by the suite)",
    );
    d.log.check(
        "K-LATE-1",
        gave_up.screen != Screen::ConfirmFee
            && gave_up.fee_yen.is_none()
            && !gave_up.certificate_in_tray,
        format!(
            "no answer in time: screen {:?}, fee {:?}, pages in tray {}",
            gave_up.screen, gave_up.fee_yen, gave_up.certificate_in_tray
        ),
    );
    let idle = d.take_all(&gave_up).await?;
    d.log.check(
        "K-LATE-1",
        idle.screen == Screen::Idle,
        format!("card back, the kiosk free: {:?}", idle.screen),
    );

    // The next resident, answered at once.
    let mark = d.t.front.answered().len();
    let shown = d.up_to_the_fee(&second, resident_record(), 1, None).await?;
    let own = request_ids(&d.answers_since(mark));
    let shown_id = shown.request_id.map(|r| r.to_string());
    d.log.check(
        "K-LATE-1",
        shown_id.as_ref().is_some_and(|id| own.contains(id) && !late.contains(id)),
        format!(
            "the second resident's fee is for {shown_id:?}: answers to their order {own:?}, late answers {late:?}"
        ),
    );
    let paid = d
        .pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-2")
        .await?;
    let printed_late: Vec<String> = paid
        .printed
        .iter()
        .map(|p| p.request_id.to_string())
        .filter(|id| late.contains(id))
        .collect();
    let mut late_states = Vec::new();
    for id in &late {
        let Ok(request_id) = id.parse() else {
            d.log
                .check("K-RUN-1", false, format!("request id {id:?} is not one"));
            continue;
        };
        late_states.push(d.center_state(&request_id).await?);
    }
    d.log.check(
        "K-LATE-1",
        printed_late.is_empty() && late_states.iter().all(|s| s != "printed" && s != "paid"),
        format!(
            "late requests printed at the kiosk: {printed_late:?}; at the center: {late_states:?}"
        ),
    );
    let after = d.money().await?;
    let fee = shown.fee_yen.map_or(0, i64::from);
    let kept = (after.paid_yen - after.refunded_yen) - (before.paid_yen - before.refunded_yen);
    d.log.check(
        "K-LATE-1",
        kept == fee,
        format!("two residents, one certificate of {fee} yen: the center kept {kept} yen"),
    );
    d.take_everything().await?;
    Some(())
}

/// The center's answer to the second resident carries the first resident's document:
/// it must never come out of the printer.
pub(super) async fn foreign_document(d: &mut Drive<'_>) -> Option<()> {
    let first = d.resident_card(10)?;
    let second = d.resident_card(11)?;
    let shown = d.up_to_the_fee(&first, resident_record(), 1, None).await?;
    d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-1")
        .await?;
    d.take_everything().await?;
    let before = d.money().await?;
    let printed_before = last_printed(&d.state().await?);

    d.place(&second).await?;
    d.pin(&second.pin).await?;
    let mark = d.t.front.answered().len();
    d.t.front.set_mode(FrontMode::ForeignDocument);
    let answer = d.order(resident_record(), 1, None).await?;
    d.t.front.set_mode(FrontMode::PassThrough);
    let doctored = d.answers_since(mark).iter().any(|a| a.doctored);
    d.log.check(
        "K-RUN-1",
        doctored,
        "the suite gave the second order the first resident's document",
    );
    // A kiosk that shows the fee anyway must still not print it once paid.
    let end = if answer.screen == Screen::ConfirmFee {
        d.pay(Pay::Emoney).await?
    } else {
        answer.clone()
    };
    d.log.check(
        "K-DOC-3",
        last_printed(&end) == printed_before && !end.certificate_in_tray,
        format!(
            "after the doctored answer: screen {:?} then {:?}, last printed {:?} → {:?}, pages in tray {}",
            answer.screen,
            end.screen,
            printed_before,
            last_printed(&end),
            end.certificate_in_tray
        ),
    );
    if let Some(request_id) = answer.request_id {
        let state = d.center_state(&request_id).await?;
        d.log.check(
            "K-DOC-3",
            state != "printed",
            format!("the center's record of the second order: {state}"),
        );
    }
    let after = d.money().await?;
    let printed_yen = after.printed_yen - before.printed_yen;
    d.log.check(
        "K-DOC-3",
        printed_yen == 0,
        format!("fee kept as printed for the doctored answer: {printed_yen} yen"),
    );
    d.take_all(&end).await?;
    Some(())
}

/// The center's address answers with a certificate from another CA: the kiosk must
/// not talk to it; with the right certificate back, it works again.
pub(super) async fn wrong_server_certificate(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(FULL_CARD)?;
    let printed_before = last_printed(&d.state().await?);
    let forwarded_before = d.t.front.forwarded();
    d.t.front.set_impostor(true);
    // The resident goes as far as the kiosk lets them.
    let mut last = d.place(&card).await?;
    if last.screen == Screen::CardPlaced {
        last = d.pin(&card.pin).await?;
    }
    if last.screen == Screen::Route {
        last = d
            .step(
                "route",
                Some(super::scenarios::json(
                    &schemas::kiosk_control::ChooseRoute {
                        route: schemas::Route::Residence,
                    },
                )),
            )
            .await?;
    }
    if last.screen == Screen::Menu {
        last = d
            .step(
                "order",
                Some(super::scenarios::json(
                    &schemas::kiosk_control::ChooseOrder {
                        certificate: resident_record(),
                        copies: 1,
                        idempotency_key: None,
                    },
                )),
            )
            .await?;
    }
    let forwarded = d.t.front.forwarded() - forwarded_before;
    d.t.front.set_impostor(false);
    d.log.check(
        "K-TLS-1",
        forwarded == 0
            && last.screen != Screen::ConfirmFee
            && last.fee_yen.is_none()
            && last_printed(&last) == printed_before,
        format!(
            "with the impostor's certificate: {forwarded} request(s) reached the center, screen {:?}, fee {:?}",
            last.screen, last.fee_yen
        ),
    );
    let idle = d.take_all(&last).await?;
    if idle.screen != Screen::Idle {
        let restarted = d.step("restart", None).await?;
        d.take_all(&restarted).await?;
    }
    // With the center's certificate back, the same resident is served.
    let shown = d.up_to_the_fee(&card, resident_record(), 1, None).await?;
    d.pay_and_check_print(&shown, Pay::Emoney, 1, "K-DOC-1")
        .await?;
    d.take_everything().await?;
    Some(())
}

/// Every refusal code there is, each with a text that gives the reason away, put by
/// the suite into the answer to a refused order: the screen shows only the generic
/// message (the resident's reason is theirs to hear at the counter, not the next
/// person's in the queue to read).
pub(super) async fn every_refusal_code(d: &mut Drive<'_>) -> Option<()> {
    let card = d.card(REFUSED_CARD)?;
    let before = d.money().await?;
    for reason in RefusalReason::ALL {
        d.place(&card).await?;
        d.pin(&card.pin).await?;
        d.t.front.set_mode(FrontMode::RewriteRefusal { reason });
        let mark = d.t.front.answered().len();
        let refused = d.order(resident_record(), 1, None).await;
        d.t.front.set_mode(FrontMode::PassThrough);
        let refused = refused?;
        let doctored = d.answers_since(mark).iter().any(|a| a.doctored);
        d.log.check(
            "K-RUN-1",
            doctored,
            format!("the suite rewrote the refusal as {}", reason.as_str()),
        );
        d.log.check(
            "K-REFUSE-4",
            shows_generic_refusal(&refused),
            format!(
                "{}: screen {:?}, message {:?} / {:?}, fee {:?}",
                reason.as_str(),
                refused.screen,
                refused.message_ja,
                refused.message_en,
                refused.fee_yen
            ),
        );
        let end = d.take_all(&refused).await?;
        d.log.check(
            "K-REFUSE-4",
            end.screen == Screen::Idle && d.nothing_printed(&end),
            format!("{}: card back: {:?}", reason.as_str(), end.screen),
        );
    }
    let after = d.money().await?;
    d.log.check(
        "K-REFUSE-4",
        after.paid_yen == before.paid_yen,
        format!(
            "no fee for refusals: paid {} yen before, {} after",
            before.paid_yen, after.paid_yen
        ),
    );
    Some(())
}
