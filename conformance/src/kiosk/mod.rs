//! Profile `kiosk`: the suite plays the center (the reference center and adapters of
//! a fresh sandbox, in-process) and drives a kiosk through its control interface
//! ([`schemas::kiosk_control`]), checking what the kiosk shows and prints and what the
//! center recorded. Each scenario gets a fresh kiosk in front of the same center.

pub mod front;
mod link;
mod refusals;
pub mod scenarios;
mod target;

pub use target::{
    Exchange, Kiosk, KioskLauncher, KioskSetupError, KioskTarget, KioskTargetSpec, LaunchedKiosk,
    UrlKiosk, BUSINESS_MORNING, KIOSK_FAULTS, REFERENCE_KIOSK_TIMEOUT_MS, URL_SETUP_SETTINGS,
};

use std::time::{Duration, Instant};

use schemas::conformance::{ConformanceReport, Profile};

use crate::report::{build_report, RunInfo};
use crate::runner::run_scenarios;

/// Per-scenario time bound.
pub const SCENARIO_BOUND: Duration = Duration::from_secs(120);

/// Every scenario of the profile: (id, title).
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "kiosk.happy_path_coins",
        "住民票の写し paid with coins, change given, printed and taken",
    ),
    (
        "kiosk.happy_path_emoney",
        "印鑑登録証明書, two copies, paid with e-money, printed and taken",
    ),
    (
        "kiosk.every_type",
        "Every certificate type is ordered, paid, printed as its own document and taken",
    ),
    (
        "kiosk.every_refusal",
        "Every refusal the municipality gives shows only the generic message, nothing printed",
    ),
    (
        "kiosk.own_document",
        "The printed document is always the session's own (consecutive sessions)",
    ),
    ("kiosk.wrong_pin", "A wrong PIN, then the right one"),
    ("kiosk.pin_lock", "Three wrong PINs lock the card"),
    (
        "kiosk.refusal_generic_message",
        "A refusal shows only the generic message",
    ),
    (
        "kiosk.duplicates",
        "Identical and conflicting duplicates (idempotency key)",
    ),
    (
        "kiosk.cancel_and_walk_away",
        "Cancel and walk-away void the session, no fee at the center",
    ),
    (
        "kiosk.printer_jam",
        "A printer jam voids the issuance and refunds",
    ),
    (
        "kiosk.power_loss",
        "Power loss mid-print, restart, the outbox re-sends",
    ),
    (
        "kiosk.left_behind",
        "Card and certificate left behind: the reminders persist",
    ),
    (
        "kiosk.every_refusal_code",
        "Every refusal code, however the center words it, shows only the generic message",
    ),
    (
        "kiosk.retry_after_timeout",
        "The first answer comes after the kiosk's timeout: re-sent under the same key, charged once",
    ),
    (
        "kiosk.late_answer_after_void",
        "Answers that come after the kiosk gave up are never printed, for anyone",
    ),
    (
        "kiosk.foreign_document",
        "A document carrying another request's id is never printed",
    ),
    (
        "kiosk.wrong_server_certificate",
        "A center certificate from another CA: nothing goes through, nothing is printed",
    ),
    (
        "kiosk.card_refused",
        "Revoked, expired and unregistered cards: no fee, nothing printed, card returned",
    ),
    (
        "kiosk.day_dependent_refusals",
        "Refusals that depend on the day, with the suite center's clock moved",
    ),
    (
        "kiosk.center_refusals",
        "Refusals decided by the card's record, the route and the options chosen show only the generic message",
    ),
];

/// Runs every scenario against `spec` (with `fault`, a kiosk fault switch, on the
/// reference target).
pub async fn run(
    spec: KioskTargetSpec,
    fault: Option<&str>,
) -> Result<ConformanceReport, KioskSetupError> {
    let started_at = jiff::Timestamp::now().to_string();
    let started = Instant::now();
    let target = KioskTarget::start(spec, fault).await?;
    let t = &target;
    let results = run_scenarios(SCENARIOS, SCENARIO_BOUND, |id, log| {
        scenarios::run(id, t, log)
    })
    .await;
    let info = RunInfo {
        profile: Profile::Kiosk,
        target: target.name.clone(),
        target_software: target.software.clone(),
        fault: fault.map(str::to_owned),
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    target.stop().await;
    Ok(build_report(info, results))
}
