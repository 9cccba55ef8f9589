//! `kiosk-sim demo`: a fresh sandbox with every party on loopback, and one kiosk that
//! issues every certificate type the service knows, through both routes:
//!
//! - card 2121130000000001 (美濃加茂市): all eight types through the 住所地 route;
//! - card 2121130000000069: 住民票 世帯全員 for a household of eight (two pages);
//! - a 坂祝町 and a 北本市 resident: 住民票 from their own municipality;
//! - card 2121130000000068: 利用登録 at 坂祝町 (its 本籍地), approved in-process as the
//!   clerk would with `municipal-adapter domicile approve`, then 戸籍全部事項証明書
//!   through the 本籍地 route;
//! - card 2121130000000090 (𠮷田 花子): refused, the font cannot print the name.
//!
//! 戸籍 types are issued on weekdays 08:30–17:15 only, so when the real clock is
//! outside those hours the center's clock is pinned to the next open weekday at 10:00
//! Asia/Tokyo (one line says so). PDFs are written as `NN-<type>-<scope>-<serial>.pdf`.
//!
//! Every certificate is paid (the simulated resident pays cash) and printed only after
//! the center acknowledged the payment; both reports must be acknowledged by the end
//! (the kiosk's outbox is empty). The 坂祝町 and 北本市 residents use a lawson kiosk,
//! everyone else a seven kiosk.
//!
//! The day ends as the center's operator ends it: the outcome notices have reached the
//! municipalities' 交付記録, the settlement window is closed (early: the demo does not
//! wait for the 23:30 cut), the signed reports are written as `settlement-*.jsonl` /
//! `settlement-*.csv` with a detached `.sig` each, each operator's own transaction file
//! (`operator-*-transactions-*.csv`, from what its kiosks printed) is reconciled, and the
//! window is settled. The totals per (operator, municipality) close the run, and the
//! center's signed trust list is written as `trust-list.json` for `center verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use jiff::civil::{Date, Time};
use jiff::Zoned;
use kiosk_sim::cli::registration_status_str;
use kiosk_sim::{IssueOutcome, Kiosk};
use schemas::settlement::OperatorTransaction;
use schemas::{
    CertificateKind, CertificateOrder, CertificateType, DomicileRegistration, HouseholdScope,
    MunicipalityCode, OperatorId, Route, SERVICE_TIME_ZONE,
};

const MAIN_CARD: &str = "2121130000000001";
const LARGE_HOUSEHOLD_CARD: &str = "2121130000000069";
const SAKAHOGI_CARD: &str = "2150150000000001";
const KITAMOTO_CARD: &str = "1123300000000001";
const DOMICILE_APPLICANT: &str = "2121130000000068";
const UNPRINTABLE_CARD: &str = "2121130000000090";
const RESIDENCE_CODE: &str = "212113";
const DOMICILE_CODE: &str = "215015";
/// The last fiscal year the sample tax ledgers hold.
const SAMPLE_FISCAL_YEAR: u16 = 2026;
/// Days searched for an open weekday before giving up (covers 年末年始 and a long
/// holiday run several times over).
const MAX_DAYS_AHEAD: i16 = 30;

/// The narrowest hours of any type (戸籍: weekdays 08:30–17:15), less a quarter of an
/// hour so that the demo does not run into the closing time.
const DEMO_OPENS_AT: (i8, i8) = (8, 30);
const DEMO_CLOSES_AT: (i8, i8) = (17, 0);
const PINNED_AT: (i8, i8) = (10, 0);

/// Whether every type of every sample municipality is available at `now` (Asia/Tokyo).
pub fn every_type_open(now: &Zoned) -> bool {
    let time = now.time();
    open_day(now.date())
        && time >= Time::constant(DEMO_OPENS_AT.0, DEMO_OPENS_AT.1, 0, 0)
        && time < Time::constant(DEMO_CLOSES_AT.0, DEMO_CLOSES_AT.1, 0, 0)
}

/// A weekday that is neither 年末年始 nor a closed date of the samples.
fn open_day(date: Date) -> bool {
    use jiff::civil::Weekday::{Saturday, Sunday};
    let (from, through) = (
        schemas::NATIONAL_CLOSED_FROM,
        schemas::NATIONAL_CLOSED_THROUGH,
    );
    let md = (date.month(), date.day());
    let year_end = md >= from || md <= through;
    let iso = date.to_string();
    !matches!(date.weekday(), Saturday | Sunday)
        && !year_end
        && !sandbox::MINOKAMO_CLOSED_DATES.contains(&iso.as_str())
}

/// `None` when the real clock suits the demo; otherwise the instant to pin the
/// center's clock to: the next open weekday at 10:00 Asia/Tokyo.
pub fn pinned_instant(now: &Zoned) -> anyhow::Result<Option<Zoned>> {
    if every_type_open(now) {
        return Ok(None);
    }
    let pinned_time = Time::constant(PINNED_AT.0, PINNED_AT.1, 0, 0);
    let mut date = if now.time() < pinned_time {
        now.date()
    } else {
        now.date().tomorrow()?
    };
    for _ in 0..MAX_DAYS_AHEAD {
        if open_day(date) {
            return Ok(Some(
                date.to_datetime(pinned_time).in_tz(SERVICE_TIME_ZONE)?,
            ));
        }
        date = date.tomorrow()?;
    }
    anyhow::bail!("no open weekday within {MAX_DAYS_AHEAD} days of {now}")
}

/// The fiscal year to order: the newest one (`None`) when that is the sample's, else
/// the sample's year explicitly (a past fiscal year, offered by default).
fn fiscal_year_at(now: &Zoned) -> Option<u16> {
    let year = u16::try_from(now.year()).unwrap_or(SAMPLE_FISCAL_YEAR);
    // 年度切替日 06-01 (the samples' default).
    let newest = if (now.month(), now.day()) >= (6, 1) {
        year
    } else {
        year.saturating_sub(1)
    };
    (newest != SAMPLE_FISCAL_YEAR).then_some(SAMPLE_FISCAL_YEAR)
}

fn code(text: &str) -> anyhow::Result<MunicipalityCode> {
    MunicipalityCode::parse(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))
}

/// One order of the demo.
struct Job {
    serial: &'static str,
    /// Scope or option in the file name (`household`, `self`, `2026`, `domicile`, …).
    label: String,
    order: CertificateOrder,
}

fn job(serial: &'static str, label: &str, route: Route, certificate: CertificateKind) -> Job {
    Job {
        serial,
        label: label.to_owned(),
        order: CertificateOrder {
            route,
            certificate,
            copies: 1,
        },
    }
}

/// One line of the summary table.
struct Line {
    certificate: CertificateType,
    serial: String,
    route: String,
    pages: String,
    fee: String,
    result: String,
    /// The chain operator's own record of the sale, when printed (its transaction file
    /// is reconciled against the center's settlement at the end of the day).
    sale: Option<(OperatorId, OperatorTransaction)>,
}

/// Checks every PDF the demo printed the way a relying party would (`center verify`):
/// all must be VALID. Returns how many were checked.
fn verify_printed(
    out: &Path,
    trust_list_path: &Path,
    center_key_b64: &str,
    now_unix_s: i64,
) -> anyhow::Result<usize> {
    let list: schemas::SignedTrustList =
        serde_json::from_slice(&std::fs::read(trust_list_path)?).context("the trust list")?;
    let key = schemas::PublicKey(
        schemas::b64::Base64Bytes::decode(center_key_b64)
            .context("center key")?
            .try_into()
            .map_err(|_| anyhow::anyhow!("center key is not 32 bytes"))?,
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "pdf") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let answer = verifier::verify_input(verifier::Input::Pdf(&bytes), &list, &key, now_unix_s);
        anyhow::ensure!(
            answer.verdict == verifier::Verdict::Valid,
            "{}: {} ({}){}",
            path.display(),
            answer.verdict,
            answer.reason,
            answer.detail.map(|d| format!(": {d}")).unwrap_or_default()
        );
        checked += 1;
    }
    anyhow::ensure!(checked > 0, "no PDF found in {}", out.display());
    Ok(checked)
}

pub async fn run(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    let sandbox_dir = out.join("sandbox");
    println!("creating a fresh sandbox in {}", sandbox_dir.display());
    let layout = sandbox::init(&sandbox_dir)?;

    // The center's clock: the real one, or pinned into every type's hours.
    let clock = Arc::new(sandbox::OffsetClock::default());
    let real_now = jiff::Timestamp::now().in_tz(SERVICE_TIME_ZONE)?;
    let center_now = match pinned_instant(&real_now)? {
        Some(pinned) => {
            clock.set_now(pinned.timestamp());
            println!(
                "real time {} is outside the 戸籍 hours (weekdays 08:30–17:15); the center's clock is pinned to {}",
                real_now.strftime("%Y-%m-%d %H:%M %Z"),
                pinned.strftime("%Y-%m-%d %H:%M %Z (%a)")
            );
            pinned
        }
        None => real_now.clone(),
    };
    let running = sandbox::start(
        &sandbox_dir,
        sandbox::StartOptions {
            center_clock: Some(clock.clone()),
            ..sandbox::StartOptions::default()
        },
    )
    .await?;
    let result = issue_everything(&running, &layout, out, &center_now).await;
    // The end of the day: the window is closed early (the demo does not wait for the
    // 23:30 cut), reported, reconciled with each operator's own sales, and settled.
    let day = match &result {
        Ok(lines) => Some(running.settle_day(out, &sales_by_operator(lines)).await),
        Err(_) => None,
    };
    let trust_list_path = out.join("trust-list.json");
    let trust_list = running.export_trust_list(&trust_list_path).await;
    let verify_page_url = running.verify_page_url();
    let verified_at_unix_s = running.clock.now_unix_ms().div_euclid(1000);
    running.stop().await;
    let lines = result?;
    let day = day.context("no settlement")??;

    println!();
    // ASCII columns first so that they line up whatever the terminal's width of kanji.
    println!(
        "{:<26}  {:<16}  {:<15}  {:>5}  {:>6}  result",
        "type", "card", "route", "pages", "fee"
    );
    for line in &lines {
        println!(
            "{:<26}  {:<16}  {:<15}  {:>5}  {:>6}  {} {}",
            line.certificate.as_str(),
            line.serial,
            line.route,
            line.pages,
            line.fee,
            line.certificate.title_ja(),
            line.result
        );
    }
    println!("(pages: PDF pages, each front page followed by its back)");
    println!();
    println!(
        "settlement window {} (closed early for the demo), per chain operator and municipality, integer yen:",
        day.business_date
    );
    print!("{}", settlement::totals_table(&day.totals));
    for (operator, summary) in &day.reconciliations {
        println!(
            "  {operator}'s transaction file: {} matched ({}円), {} missing at center, {} missing at operator, {} amount mismatch",
            summary.matched,
            summary.matched_yen,
            summary.missing_at_center,
            summary.missing_at_operator,
            summary.amount_mismatch
        );
    }
    println!(
        "  outcome notices (交付記録) delivered to the municipalities: {}/{}",
        day.notices_delivered, day.notices_total
    );
    println!(
        "  reports: {} files (settlement-*.jsonl / *.csv, each with a detached .sig)",
        day.files.len()
    );
    anyhow::ensure!(
        day.refused.is_none(),
        "the window was not settled: {}",
        day.refused.as_deref().unwrap_or_default()
    );
    println!("  window {} settled", day.business_date);
    anyhow::ensure!(
        day.notices_delivered == day.notices_total,
        "{} of {} outcome notices did not reach their municipality",
        day.notices_total - day.notices_delivered,
        day.notices_total
    );
    let (version, center_key) = trust_list?;
    println!();
    println!(
        "trust list version {version} written to {} (center key {center_key}); check a page's seal with",
        trust_list_path.display()
    );
    let checked = verify_printed(out, &trust_list_path, &center_key, verified_at_unix_s)?;
    println!("every printed PDF verified VALID against it ({checked} documents); check one with");
    // A moved clock dated the documents and the list: judge as of that clock.
    let at = if center_now.timestamp() == real_now.timestamp() {
        String::new()
    } else {
        format!(
            " --at {}",
            jiff::Timestamp::from_second(verified_at_unix_s).unwrap_or_default()
        )
    };
    println!(
        "  center verify {}/<file>.pdf --trust-list {} --center-key {center_key}{at}",
        out.display(),
        trust_list_path.display()
    );
    if let Some(url) = &verify_page_url {
        println!(
            "or on the verification page {url} (printed on every back page; served while the sandbox runs: kiosk-sim sandbox run {})",
            sandbox_dir.display()
        );
    }
    let printed: Vec<&Line> = lines.iter().filter(|l| l.pages != "-").collect();
    println!();
    println!(
        "{} certificates written to {}",
        printed.len(),
        out.display()
    );
    let missing: Vec<&str> = CertificateType::ALL
        .into_iter()
        .filter(|t| !printed.iter().any(|l| l.certificate == *t))
        .map(CertificateType::as_str)
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the demo issued no certificate of: {}",
        missing.join(", ")
    );
    Ok(())
}

async fn issue_everything(
    running: &sandbox::RunningSandbox,
    layout: &sandbox::Layout,
    out: &Path,
    center_now: &Zoned,
) -> anyhow::Result<Vec<Line>> {
    println!("center on {} (mTLS); adapters:", running.center_url);
    for (name, port) in &running.adapter_ports {
        println!("  {name} on https://127.0.0.1:{port} (mTLS)");
    }
    let mut kiosk = Till::open(running, "seven")?;
    // A second chain, so the settlement shows two operators' agreements.
    let mut lawson = Till::open(running, "lawson")?;

    let residence = Route::Residence;
    let fiscal_year = fiscal_year_at(center_now);
    let year_label = fiscal_year.map_or_else(|| "newest".to_owned(), |y| y.to_string());
    let mut jobs = vec![
        job(
            MAIN_CARD,
            "household",
            residence,
            CertificateKind::ResidentRecord {
                scope: HouseholdScope::Household,
                include_domicile: true,
                include_relationship: true,
            },
        ),
        job(
            MAIN_CARD,
            "self",
            residence,
            CertificateKind::ResidentRecordItems {
                scope: HouseholdScope::SelfOnly,
                include_relationship: false,
            },
        ),
        job(
            MAIN_CARD,
            "self",
            residence,
            CertificateKind::SealRegistration,
        ),
        job(
            MAIN_CARD,
            &year_label,
            residence,
            CertificateKind::IncomeTax { fiscal_year },
        ),
        job(
            MAIN_CARD,
            &year_label,
            residence,
            CertificateKind::TaxPayment { fiscal_year },
        ),
        job(
            MAIN_CARD,
            "all",
            residence,
            CertificateKind::FamilyRegisterAll,
        ),
        job(
            MAIN_CARD,
            "self",
            residence,
            CertificateKind::FamilyRegisterIndividual,
        ),
        job(
            MAIN_CARD,
            "domicile",
            residence,
            CertificateKind::FamilyRegisterAttachment {
                include_domicile: true,
            },
        ),
        job(
            LARGE_HOUSEHOLD_CARD,
            "household",
            residence,
            CertificateKind::ResidentRecord {
                scope: HouseholdScope::Household,
                include_domicile: false,
                include_relationship: true,
            },
        ),
        job(
            SAKAHOGI_CARD,
            "self",
            residence,
            CertificateKind::ResidentRecord {
                scope: HouseholdScope::SelfOnly,
                include_domicile: false,
                include_relationship: true,
            },
        ),
        job(
            KITAMOTO_CARD,
            "members-1",
            residence,
            CertificateKind::ResidentRecordItems {
                scope: HouseholdScope::Selected { members: vec![1] },
                include_relationship: true,
            },
        ),
    ];

    let mut lines = Vec::new();
    let mut index = 0;
    for job in jobs.drain(..) {
        index += 1;
        let till = if [SAKAHOGI_CARD, KITAMOTO_CARD].contains(&job.serial) {
            &mut lawson
        } else {
            &mut kiosk
        };
        lines.push(run_job(till, layout, out, index, job).await?);
    }

    // 本籍地 route: 利用登録 at 坂祝町, the clerk's approval, then the 戸籍.
    match register_and_approve(&mut kiosk.kiosk, running, layout).await {
        Ok(()) => {
            index += 1;
            let domicile_job = job(
                DOMICILE_APPLICANT,
                "all-domicile-route",
                Route::Domicile {
                    municipality_code: code(DOMICILE_CODE)?,
                },
                CertificateKind::FamilyRegisterAll,
            );
            lines.push(run_job(&mut kiosk, layout, out, index, domicile_job).await?);
        }
        Err(error) => {
            println!("本籍地 利用登録 failed: {error:#}");
            lines.push(Line {
                certificate: CertificateType::FamilyRegisterAll,
                serial: DOMICILE_APPLICANT.to_owned(),
                route: format!("domicile:{DOMICILE_CODE}"),
                pages: "-".into(),
                fee: "-".into(),
                result: format!("利用登録 failed: {error}"),
                sale: None,
            });
        }
    }

    // A refusal: the font has no 𠮷, so the center refuses rather than misprint.
    index += 1;
    let refused = job(
        UNPRINTABLE_CARD,
        "self",
        residence,
        CertificateKind::ResidentRecord {
            scope: HouseholdScope::SelfOnly,
            include_domicile: false,
            include_relationship: false,
        },
    );
    lines.push(run_job(&mut kiosk, layout, out, index, refused).await?);
    // Every payment and print report must have reached the center.
    for Till { kiosk, .. } in [&mut kiosk, &mut lawson] {
        if !kiosk.outbox().is_empty() {
            kiosk.flush_outbox().await?;
        }
        anyhow::ensure!(
            kiosk.outbox().is_empty(),
            "{} outcome report(s) of {} were not acknowledged by the center",
            kiosk.outbox().len(),
            kiosk.kiosk_id()
        );
    }
    Ok(lines)
}

fn card<'l>(layout: &'l sandbox::Layout, serial: &str) -> anyhow::Result<&'l sandbox::CardInfo> {
    layout
        .card(serial)
        .with_context(|| format!("the sandbox has no card {serial}"))
}

fn pin_of(card: &sandbox::CardInfo) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&card.path)
        .with_context(|| format!("reading {}", card.path.display()))?;
    Ok(serde_json::from_str::<schemas::CardFile>(&text)?.pin)
}

fn route_text(route: &Route) -> String {
    match route {
        Route::Residence => "residence".to_owned(),
        Route::Domicile { municipality_code } => format!("domicile:{municipality_code}"),
    }
}

/// Each operator's sales, from what its kiosks printed.
fn sales_by_operator(lines: &[Line]) -> Vec<(OperatorId, Vec<OperatorTransaction>)> {
    let mut by_operator: std::collections::BTreeMap<OperatorId, Vec<OperatorTransaction>> =
        std::collections::BTreeMap::new();
    for (operator, sale) in lines.iter().filter_map(|l| l.sale.as_ref()) {
        by_operator
            .entry(operator.clone())
            .or_default()
            .push(sale.clone());
    }
    by_operator.into_iter().collect()
}

/// A chain operator's kiosk in the demo's store.
struct Till {
    kiosk: Kiosk,
    operator: OperatorId,
}

impl Till {
    fn open(running: &sandbox::RunningSandbox, operator: &str) -> anyhow::Result<Self> {
        let path = running
            .kiosk_config(operator)
            .with_context(|| format!("no kiosk settings for operator {operator}"))?;
        let settings = kiosk_sim::KioskSettings::load(path)?;
        Ok(Self {
            kiosk: Kiosk::from_settings(&settings)?,
            operator: settings.operator_id,
        })
    }
}

async fn run_job(
    till: &mut Till,
    layout: &sandbox::Layout,
    out: &Path,
    index: u32,
    job: Job,
) -> anyhow::Result<Line> {
    let card = card(layout, job.serial)?;
    let pin = pin_of(card)?;
    let certificate = job.order.certificate.certificate_type();
    let route = route_text(&job.order.route);
    let mut line = Line {
        certificate,
        serial: job.serial.to_owned(),
        route,
        pages: "-".into(),
        fee: "-".into(),
        result: String::new(),
        sale: None,
    };
    match till.kiosk.issue(&card.path, &pin, job.order, out).await {
        Ok(IssueOutcome::Printed(doc)) => {
            let name = format!(
                "{index:02}-{}-{}-{}.pdf",
                certificate.as_str().replace('_', "-"),
                job.label,
                job.serial
            );
            let target: PathBuf = out.join(name);
            std::fs::rename(&doc.pdf_path, &target).with_context(|| {
                format!(
                    "renaming {} to {}",
                    doc.pdf_path.display(),
                    target.display()
                )
            })?;
            line.pages = doc.page_count.to_string();
            line.fee = format!("{}円", doc.total_fee_yen);
            let file = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            line.result = format!("{} → {file}", doc.municipality_name);
            line.sale = Some((
                till.operator.clone(),
                OperatorTransaction {
                    request_id: doc.request_id,
                    kiosk_id: till.kiosk.kiosk_id().clone(),
                    municipality_code: doc.municipality_code,
                    copies: u32::from(doc.copies),
                    amount_yen: i64::from(doc.total_fee_yen),
                },
            ));
        }
        Ok(
            outcome @ (IssueOutcome::Voided { .. }
            | IssueOutcome::Refunded { .. }
            | IssueOutcome::PrintUnknown { .. }),
        ) => {
            line.result = kiosk_sim::cli::summary(&outcome);
        }
        Ok(IssueOutcome::Refused { reason, .. }) => {
            line.result = format!("refused: {}", reason.as_str());
        }
        Err(error) => {
            line.result = format!("error {}: {error}", error.code());
        }
    }
    Ok(line)
}

/// Card 0068 registers at 坂祝町 with the 本籍 and 筆頭者 of its 住民票; 坂祝町's clerk
/// approves it for the matching person of its 戸籍.
async fn register_and_approve(
    kiosk: &mut Kiosk,
    running: &sandbox::RunningSandbox,
    layout: &sandbox::Layout,
) -> anyhow::Result<()> {
    let applicant = card(layout, DOMICILE_APPLICANT)?;
    // What the resident enters: the 本籍 and 筆頭者 of the 住民票 (as the sample
    // documents them, when the register does not show them).
    let sample = municipal_adapter::samples::DOMICILE_SAMPLE;
    let entry = running
        .domicile_entry(RESIDENCE_CODE, &applicant.serial)
        .await?
        .unwrap_or_else(|| sandbox::DomicileEntry {
            domicile: sample.domicile.to_owned(),
            domicile_head: sample.domicile_head.to_owned(),
            holder_name: applicant.holder_name.clone(),
        });
    let registration = DomicileRegistration {
        municipality_code: code(DOMICILE_CODE)?,
        domicile: entry.domicile.clone(),
        domicile_head: entry.domicile_head.clone(),
    };
    let response = kiosk
        .register_domicile(&applicant.path, &pin_of(applicant)?, registration)
        .await?;
    println!(
        "利用登録 {} at {} ({}) for card {DOMICILE_APPLICANT}: {}",
        response.registration_id,
        response.municipality_name,
        response.municipality_code,
        registration_status_str(response.status)
    );
    let person = running
        .matching_person(DOMICILE_CODE, &entry)
        .await?
        .with_context(|| format!("no person of {DOMICILE_CODE}'s 戸籍 matches the entry"))?;
    let config = running
        .adapter_for(DOMICILE_CODE)
        .map(|a| a.config_path.display().to_string())
        .unwrap_or_default();
    running
        .approve_domicile(DOMICILE_CODE, response.registration_id, &person)
        .await?;
    println!(
        "  approved by the clerk, as with: municipal-adapter domicile approve --config {config} --registration {} --person {}/{}",
        response.registration_id, person.family_register_id, person.person_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Zoned {
        text.parse::<jiff::civil::DateTime>()
            .unwrap()
            .in_tz(SERVICE_TIME_ZONE)
            .unwrap()
    }

    #[test]
    fn office_hours_on_a_working_day_need_no_pin() {
        assert!(pinned_instant(&at("2026-11-24T10:30")).unwrap().is_none());
        assert!(pinned_instant(&at("2026-11-24T08:30")).unwrap().is_none());
    }

    #[test]
    fn otherwise_the_next_open_weekday_at_ten() {
        let cases = [
            // Early morning: today at 10:00.
            ("2026-11-24T02:37", "2026-11-24T10:00"),
            // Evening: tomorrow.
            ("2026-11-24T18:00", "2026-11-25T10:00"),
            // 勤労感謝の日 (a Monday): the Tuesday.
            ("2026-11-23T11:00", "2026-11-24T10:00"),
            // Saturday: Monday.
            ("2026-11-28T11:00", "2026-11-30T10:00"),
            // 年末年始 and 成人の日 aside: 2027-01-04 is the first open day.
            ("2026-12-29T11:00", "2027-01-04T10:00"),
            ("2027-01-09T11:00", "2027-01-12T10:00"),
        ];
        for (now, expected) in cases {
            let pinned = pinned_instant(&at(now)).unwrap().unwrap();
            assert_eq!(pinned.datetime(), at(expected).datetime(), "{now}");
            assert!(every_type_open(&pinned), "{now}");
        }
    }

    #[test]
    fn the_sample_fiscal_year_is_ordered_explicitly_only_when_not_the_newest() {
        assert_eq!(fiscal_year_at(&at("2026-11-24T10:00")), None);
        assert_eq!(fiscal_year_at(&at("2027-05-31T10:00")), None);
        assert_eq!(fiscal_year_at(&at("2027-06-01T10:00")), Some(2026));
    }
}
