//! Refusal scenarios of the kiosk profile: cards the center does not accept, the
//! municipality's refusals that depend on the day (the suite center's clock moved),
//! and the refusals the center, the route or the options decide. Each case is walked
//! as a resident would (card, right PIN, route, order) and must end without a fee,
//! without a payment, without a print, and with the card back in the resident's hand.

use sandbox::CardKind;
use schemas::kiosk_control::{ChooseOrder, ChooseRoute, ControlState, Pay, Screen};
use schemas::{CardFile, CertificateKind, HouseholdScope, MunicipalityCode, RefusalReason, Route};

use super::scenarios::{
    json, last_printed, resident_record, shows_generic_refusal, Drive, CODE, FULL_CARD,
};

/// 美濃加茂市's resident who became a resident on [`SPECIAL_DAY`] (転入日当日).
const MOVED_IN_CARD: &str = "2121130000000062";
/// 美濃加茂市's card handed over on [`SPECIAL_DAY`] (カード交付当日).
const ISSUED_TODAY_CARD: &str = "2121130000000063";
/// The day both are about (`municipal_adapter::samples::SPECIAL_DAY`), a Friday, at a
/// time within every type's hours.
const SPECIAL_DAY: &str = "2026-11-20T10:00:00+09:00";
/// Before 2026's 年度切替日 (06-01): fiscal year 2026 is not issued yet.
const BEFORE_TAX_SWITCHOVER: &str = "2026-05-15T10:00:00+09:00";
/// A weekday after the national hours (06:30–23:00).
const LATE_NIGHT: &str = "2026-11-25T23:30:00+09:00";
/// 年末年始 (12/29–1/3): every type closed.
const YEAR_END: &str = "2026-12-30T10:00:00+09:00";
/// A weekday evening: within the national hours, after 戸籍's (08:30–17:15).
const WEEKDAY_EVENING: &str = "2026-11-25T18:00:00+09:00";
/// 勤労感謝の日 (a Monday): 美濃加茂市 closes its weekday-only counters (戸籍).
const HOLIDAY: &str = "2026-11-23T10:00:00+09:00";
/// Inside 美濃加茂市's announced maintenance window (`sandbox::MINOKAMO_MAINTENANCE`,
/// Sunday 05:00–09:00) and within the national hours.
const MAINTENANCE: &str = "2026-12-06T08:00:00+09:00";

/// Has its 本籍 in 坂祝町 (215015), with no approved 利用登録 there.
const DOMICILE_ELSEWHERE_CARD: &str = "2121130000000068";
/// 坂祝町, which keeps that 戸籍 and does not offer 納税証明書.
const SAKAHOGI: &str = "215015";
/// The name has a character outside the certificate font (𠮷): the municipality
/// issues, the center refuses.
const UNPRINTABLE_CARD: &str = "2121130000000090";

/// How a refusal case ended, as the resident saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The refused screen with the generic message only, no fee.
    Generic,
    /// Still on the menu, with no fee and no request id: the kiosk's own menu check
    /// said the type cannot be ordered (now), so the center was never asked.
    NotOrderable,
    /// An error screen that sends the resident to the municipal counter, no fee.
    Counter,
    /// Anything else (a fee shown, a print, another message).
    Other,
}

fn ending(state: &ControlState) -> Ending {
    let no_fee = state.fee_yen.is_none();
    match state.screen {
        Screen::Refused if shows_generic_refusal(state) => Ending::Generic,
        Screen::Menu if no_fee && state.request_id.is_none() => Ending::NotOrderable,
        Screen::Error
            if no_fee
                && state
                    .message_ja
                    .as_deref()
                    .is_some_and(|m| m.contains("窓口")) =>
        {
            Ending::Counter
        }
        _ => Ending::Other,
    }
}

/// One resident's attempt that must be refused.
struct Case {
    label: &'static str,
    card: CardFile,
    route: Route,
    certificate: CertificateKind,
    /// Why the center refuses it (recorded there, never shown); `None` when the center
    /// turns the card away before recording any request.
    reason: Option<RefusalReason>,
    /// The endings that pass.
    accepted: &'static [Ending],
}

/// Only the generic refusal passes.
const GENERIC: &[Ending] = &[Ending::Generic];
/// The generic refusal, or the kiosk's own menu check keeping the type unorderable.
const GENERIC_OR_MENU: &[Ending] = &[Ending::Generic, Ending::NotOrderable];
/// The generic refusal, or an error screen naming the municipal counter.
const GENERIC_OR_COUNTER: &[Ending] = &[Ending::Generic, Ending::Counter];

/// Card, right PIN, route, order; stops at the first screen that is not the next one
/// of the path (a kiosk may end the session early, e.g. on reading a card it does
/// not accept). The last screen.
async fn walk(d: &mut Drive<'_>, case: &Case) -> Option<ControlState> {
    let placed = d.place(&case.card).await?;
    if placed.screen != Screen::CardPlaced {
        return Some(placed);
    }
    let pinned = d.pin(&case.card.pin).await?;
    if pinned.screen != Screen::Route {
        return Some(pinned);
    }
    let menu = d
        .step("route", Some(json(&ChooseRoute { route: case.route })))
        .await?;
    if menu.screen != Screen::Menu {
        return Some(menu);
    }
    d.step(
        "order",
        Some(json(&ChooseOrder {
            certificate: case.certificate.clone(),
            copies: 1,
            idempotency_key: None,
        })),
    )
    .await
}

/// Walks `case` and checks on `clause` that it ends as accepted, that no payment is
/// taken, that the card comes back (取消 first when the session is still open on the
/// menu) with nothing
/// printed, and that the center holds the request, if any, as refused. The ending.
async fn refused_case(d: &mut Drive<'_>, clause: &str, case: Case) -> Option<Ending> {
    let printed_before = last_printed(&d.state().await?);
    let end = walk(d, &case).await?;
    let how = ending(&end);
    d.log.check(
        clause,
        case.accepted.contains(&how),
        format!(
            "{}: screen {:?} ({how:?}, accepted {:?}), message {:?}, fee {:?}, request id {:?}",
            case.label, end.screen, case.accepted, end.message_ja, end.fee_yen, end.request_id
        ),
    );
    let no_payment = d.refused_step("payment", Some(json(&Pay::Emoney))).await;
    d.log.check(
        clause,
        no_payment,
        format!(
            "{}: no payment accepted (409 control_step_not_allowed)",
            case.label
        ),
    );
    let mut state = end.clone();
    if matches!(
        state.screen,
        Screen::Menu | Screen::Route | Screen::CardPlaced
    ) {
        state = d.step("cancel", None).await?;
    }
    if state.card_in_reader {
        state = d.step("take-card", None).await?;
    }
    d.log.check(
        clause,
        state.screen == Screen::Idle
            && !state.card_in_reader
            && !state.certificate_in_tray
            && last_printed(&state) == printed_before,
        format!(
            "{}: card back: screen {:?}, card in reader {}, pages in tray {}, last printed {:?} → {:?}",
            case.label,
            state.screen,
            state.card_in_reader,
            state.certificate_in_tray,
            printed_before,
            last_printed(&state)
        ),
    );
    if let Some(request_id) = end.request_id {
        // The center's record also shows the case refused what it is about.
        let row = d.t.issuance(&request_id).await;
        let row = d.log.require("K-RUN-1", "the center's record", row)?;
        let state = row.as_ref().map(|r| r.state.as_str());
        let reason = row.as_ref().and_then(|r| r.refusal_reason.as_deref());
        let expected = case.reason.map(RefusalReason::as_str);
        let as_expected = match expected {
            Some(_) => state == Some("refused") && reason == expected,
            None => state.is_none_or(|s| s == "refused"),
        };
        d.log.check(
            clause,
            as_expected,
            format!(
                "{}: center: {request_id} {state:?}, reason {reason:?} (expected {expected:?})",
                case.label
            ),
        );
    }
    Some(how)
}

/// Checks on `clause` that the center took no money between `before` and now.
async fn no_money_taken(d: &mut Drive<'_>, clause: &str, before: center::db::MoneyTotals) {
    let Some(after) = d.money().await else {
        return;
    };
    d.log.check(
        clause,
        after.paid_yen == before.paid_yen && after.printed_yen == before.printed_yen,
        format!(
            "no money taken: paid {} → {} yen, printed {} → {} yen",
            before.paid_yen, after.paid_yen, before.printed_yen, after.printed_yen
        ),
    );
}

fn family_register_all() -> CertificateKind {
    CertificateKind::FamilyRegisterAll
}

/// The sandbox's revoked, expired and unregistered cards of 美濃加茂市: the resident
/// enters the right PIN and orders a 住民票; nothing can be done for such a card at
/// any kiosk, so the resident is sent to the counter.
pub(super) async fn card_refused(d: &mut Drive<'_>) -> Option<()> {
    let before = d.money().await?;
    for (kind, label, reason) in [
        (CardKind::Revoked, "revoked card", None),
        (CardKind::Expired, "expired card", None),
        (
            CardKind::Unregistered,
            "unregistered card",
            Some(RefusalReason::CardNotRegistered),
        ),
    ] {
        let card = d.t.card_of_kind(CODE, kind);
        let card = d.log.require("K-RUN-1", label, card)?;
        // The unregistered card is refused by the municipality (card_not_registered):
        // a refusal like any other, so only the generic message.
        let accepted = if kind == CardKind::Unregistered {
            GENERIC
        } else {
            GENERIC_OR_COUNTER
        };
        let case = Case {
            label,
            card,
            route: Route::Residence,
            certificate: resident_record(),
            reason,
            accepted,
        };
        refused_case(d, "K-CARD-1", case).await?;
    }
    no_money_taken(d, "K-CARD-2", before).await;
    Some(())
}

/// The municipality's refusals that depend on the date or the time, with the suite
/// center's clock (which the adapters follow) moved to a moment that triggers each.
///
/// 時間外 and 保守中 come from the catalogue's hours, closed dates and maintenance
/// windows, which the center also puts on the kiosk's menu: a kiosk that checks the
/// menu refuses them itself before asking the center (the reference kiosk keeps the
/// resident on the menu with no fee and no request id), and one that asks anyway gets
/// the center's refusal. Both pass; a fee never does.
pub(super) async fn day_dependent_refusals(d: &mut Drive<'_>) -> Option<()> {
    let before = d.money().await?;
    let full = d.card(FULL_CARD)?;
    let residence = |label, card: &CardFile, certificate, reason, accepted| Case {
        label,
        card: card.clone(),
        route: Route::Residence,
        certificate,
        reason: Some(reason),
        accepted,
    };
    let moved_in = d.card(MOVED_IN_CARD)?;
    let issued_today = d.card(ISSUED_TODAY_CARD)?;
    let cases = [
        (
            SPECIAL_DAY,
            residence(
                "転入日当日 (moving_in_day)",
                &moved_in,
                resident_record(),
                RefusalReason::MovingInDay,
                GENERIC,
            ),
        ),
        (
            SPECIAL_DAY,
            residence(
                "カード交付当日 (card_issued_today)",
                &issued_today,
                resident_record(),
                RefusalReason::CardIssuedToday,
                GENERIC,
            ),
        ),
        (
            BEFORE_TAX_SWITCHOVER,
            residence(
                "年度切替前 (before_tax_switchover): 所得証明書 of fiscal year 2026 in May",
                &full,
                CertificateKind::IncomeTax {
                    fiscal_year: Some(2026),
                },
                RefusalReason::BeforeTaxSwitchover,
                GENERIC,
            ),
        ),
        (
            LATE_NIGHT,
            residence(
                "時間外 (out_of_hours): after 23:00",
                &full,
                resident_record(),
                RefusalReason::OutOfHours,
                GENERIC_OR_MENU,
            ),
        ),
        (
            YEAR_END,
            residence(
                "時間外 (out_of_hours): 年末年始",
                &full,
                resident_record(),
                RefusalReason::OutOfHours,
                GENERIC_OR_MENU,
            ),
        ),
        (
            WEEKDAY_EVENING,
            residence(
                "時間外 (out_of_hours): 戸籍 after its hours",
                &full,
                family_register_all(),
                RefusalReason::OutOfHours,
                GENERIC_OR_MENU,
            ),
        ),
        (
            HOLIDAY,
            residence(
                "時間外 (out_of_hours): 戸籍 on a closed date",
                &full,
                family_register_all(),
                RefusalReason::OutOfHours,
                GENERIC_OR_MENU,
            ),
        ),
        (
            MAINTENANCE,
            residence(
                "保守中 (maintenance)",
                &full,
                resident_record(),
                RefusalReason::Maintenance,
                GENERIC_OR_MENU,
            ),
        ),
    ];
    for (at, case) in cases {
        let moved = d.t.set_clock(at);
        d.log
            .require("K-RUN-1", &format!("the center's clock at {at}"), moved)?;
        refused_case(d, "K-REFUSE-2", case).await?;
    }
    no_money_taken(d, "K-REFUSE-2", before).await;
    Some(())
}

/// Refusals the center decides itself, or that follow from the route and the options
/// the resident chose (the municipality decides those, from what the center sends),
/// each of those not already in `kiosk.every_refusal`:
///
/// - `unprintable_character`: the center's composer (the municipality issued);
/// - `type_not_offered`: a non-戸籍 type through the 本籍地 route, and a type the
///   municipality does not offer at all. The center's menu lists neither, so a kiosk
///   that checks the menu keeps the type unorderable (the reference kiosk does);
/// - `domicile_not_registered`: the 本籍地 route without an approved 利用登録;
/// - `domicile_elsewhere`: 戸籍 asked of the 住所地 while the 本籍 is elsewhere;
/// - `member_selection_invalid`: 世帯一部 naming a position that is not a member.
///
/// Not reached here: `out_of_hours` and `maintenance` (the center checks them before
/// the catalogue; see `kiosk.day_dependent_refusals`), `card_not_registered`
/// (`kiosk.card_refused`), and `field_too_long`: no sample record is longer than the
/// certificate layout, so neither the municipality nor the center refuses one.
pub(super) async fn center_refusals(d: &mut Drive<'_>) -> Option<()> {
    let before = d.money().await?;
    let sakahogi: Result<MunicipalityCode, _> = SAKAHOGI.parse();
    let sakahogi = d
        .log
        .require("K-RUN-1", "坂祝町's municipality code", sakahogi)?;
    let full = d.card(FULL_CARD)?;
    let elsewhere = d.card(DOMICILE_ELSEWHERE_CARD)?;
    let sakahogi_resident = d.t.resident_card(SAKAHOGI, 0);
    let sakahogi_resident =
        d.log
            .require("K-RUN-1", "a 坂祝町 resident card", sakahogi_resident)?;
    let cases = vec![
        Case {
            label: "unprintable_character: a name outside the certificate font",
            card: d.card(UNPRINTABLE_CARD)?,
            route: Route::Residence,
            certificate: resident_record(),
            reason: Some(RefusalReason::UnprintableCharacter),
            accepted: GENERIC,
        },
        Case {
            label: "type_not_offered: 住民票 through the 本籍地 route",
            card: full.clone(),
            route: Route::Domicile {
                municipality_code: sakahogi,
            },
            certificate: resident_record(),
            reason: Some(RefusalReason::TypeNotOffered),
            accepted: GENERIC_OR_MENU,
        },
        Case {
            label: "type_not_offered: 納税証明書 of 坂祝町, which does not offer it",
            card: sakahogi_resident,
            route: Route::Residence,
            certificate: CertificateKind::TaxPayment { fiscal_year: None },
            reason: Some(RefusalReason::TypeNotOffered),
            accepted: GENERIC_OR_MENU,
        },
        Case {
            label: "domicile_not_registered: 戸籍 through the 本籍地 route without 利用登録",
            card: elsewhere.clone(),
            route: Route::Domicile {
                municipality_code: sakahogi,
            },
            certificate: family_register_all(),
            reason: Some(RefusalReason::DomicileNotRegistered),
            accepted: GENERIC,
        },
        Case {
            label: "domicile_elsewhere: 戸籍 of the 住所地 while the 本籍 is elsewhere",
            card: elsewhere,
            route: Route::Residence,
            certificate: family_register_all(),
            reason: Some(RefusalReason::DomicileElsewhere),
            accepted: GENERIC,
        },
        Case {
            label: "member_selection_invalid: 世帯一部 naming position 20",
            card: full,
            route: Route::Residence,
            certificate: CertificateKind::ResidentRecord {
                scope: HouseholdScope::Selected {
                    members: vec![1, 20],
                },
                include_domicile: false,
                include_relationship: false,
            },
            reason: Some(RefusalReason::MemberSelectionInvalid),
            accepted: GENERIC,
        },
    ];
    for case in cases {
        refused_case(d, "K-REFUSE-3", case).await?;
    }
    no_money_taken(d, "K-REFUSE-3", before).await;
    Some(())
}
