//! The load generator's checks that are worth reusing and testing on their own (the
//! generator itself is `kiosk-sim load`, in the binary): the center's phases from its
//! `Server-Timing` header, and the check of a printed PDF against the resident who
//! asked for it.

use schemas::{Digest32, PublicKey, RequestId, SignedTrustList};

/// The center's phases of one issuance, from its `Server-Timing` header (ms).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Phases {
    pub card_check_ms: Option<f64>,
    pub municipality_ms: Option<f64>,
    pub composition_ms: Option<f64>,
    /// The whole request inside the center (`center`).
    pub center_ms: Option<f64>,
}

impl Phases {
    /// What the center itself added: its whole time minus the municipality's hop (a
    /// refusal before the hop added all of its time).
    pub fn center_added_ms(&self) -> Option<f64> {
        self.center_ms
            .map(|center| (center - self.municipality_ms.unwrap_or(0.0)).max(0.0))
    }
}

/// Parses a W3C `Server-Timing` value (`name;dur=12.5;desc="…", other;dur=3`) into the
/// center's phases (`schemas::SERVER_TIMING_*`). Unknown metrics, and metrics without
/// a readable non-negative `dur`, are ignored: the header is informational.
pub fn parse_server_timing(header: &str) -> Phases {
    let mut phases = Phases::default();
    for metric in header.split(',') {
        let mut parts = metric.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let duration = parts
            .filter_map(|param| param.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("dur"))
            .and_then(|(_, value)| value.trim().trim_matches('"').parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0);
        let slot = match name {
            schemas::SERVER_TIMING_CARD => &mut phases.card_check_ms,
            schemas::SERVER_TIMING_MUNICIPALITY => &mut phases.municipality_ms,
            schemas::SERVER_TIMING_COMPOSE => &mut phases.composition_ms,
            schemas::SERVER_TIMING_CENTER => &mut phases.center_ms,
            _ => continue,
        };
        if duration.is_some() {
            *slot = duration;
        }
    }
    phases
}

/// Who a printed document must be for.
pub struct Expected<'a> {
    pub request_id: RequestId,
    pub sha256: Digest32,
    pub page_count: u32,
    /// The requesting resident's name as the register holds it.
    pub resident_name: &'a str,
}

/// Checks a printed PDF against the resident who asked (see the module
/// documentation). `Err` carries what failed, for the misissue report.
///
/// Uses the verifier's fast check ([`verifier::verify_pdf_fast`], about a tenth of the
/// full check's cost, so that every PDF of a load run can be checked on the cores the
/// center shares): the bytes are the ones the center announced (SHA-256) with the
/// announced page count, every page's `/KofuRequestId` is the seals' serial and that
/// serial is this request, every back page's drawn seal verifies under the trust
/// list, the carried front data is what the seals signed, and the signed name is the
/// requesting resident's. Not re-read here: the printed front's text (the full check,
/// [`verifier::verify_input`], reads it; [`check_printed_full`] runs that). The kiosk
/// itself already ran [`crate::check_document`] on the same bytes before printing.
pub fn check_printed(
    pdf: &[u8],
    expected: &Expected<'_>,
    trust_list: &SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> Result<(), String> {
    // Digest first: cheap, and it binds everything below to what the center announced.
    let actual = Digest32::of(pdf);
    if actual != expected.sha256 {
        return Err(format!(
            "kiosk check: document SHA-256 is {actual}, the center announced {}",
            expected.sha256
        ));
    }
    let answer = verifier::verify_pdf_fast(pdf, trust_list, center_key, now_unix_s);
    if answer
        .pdf_pages
        .is_some_and(|pages| pages != expected.page_count)
    {
        return Err(format!(
            "kiosk check: document has {} pages, the center announced {}",
            answer.pdf_pages.unwrap_or(0),
            expected.page_count
        ));
    }
    judge(answer, expected)
}

/// As [`check_printed`], with the full check a relying party runs (the kiosk's own
/// check, then [`verifier::verify_input`]: the printed front's text included).
pub fn check_printed_full(
    pdf: &[u8],
    expected: &Expected<'_>,
    trust_list: &SignedTrustList,
    center_key: &PublicKey,
    now_unix_s: i64,
) -> Result<(), String> {
    crate::check_document(
        pdf,
        &expected.request_id,
        &expected.sha256,
        expected.page_count,
    )
    .map_err(|e| format!("kiosk check: {e}"))?;
    let answer = verifier::verify_input(
        verifier::Input::Pdf(pdf),
        trust_list,
        center_key,
        now_unix_s,
    );
    judge(answer, expected)
}

/// The verifier's answer for the document, and its signed fields against the request.
fn judge(answer: verifier::DocumentVerification, expected: &Expected<'_>) -> Result<(), String> {
    if answer.verdict != verifier::Verdict::Valid {
        return Err(format!(
            "seal check {} ({}){}",
            answer.verdict,
            answer.reason,
            answer.detail.map(|d| format!(": {d}")).unwrap_or_default()
        ));
    }
    let fields = answer
        .fields()
        .ok_or_else(|| "no verified seal fields".to_owned())?;
    if fields.serial != expected.request_id {
        return Err(format!(
            "the seal names request {}, the kiosk asked under {}",
            fields.serial, expected.request_id
        ));
    }
    let squeeze = |text: &str| {
        text.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
    };
    if squeeze(&fields.name) != squeeze(expected.resident_name) {
        // Names only in the records file: it is the operator's, not a public log.
        return Err(format!(
            "the document is for another resident (seal names {:?}, requested by {:?})",
            fields.name, expected.resident_name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_gives_the_three_phases() {
        let phases = parse_server_timing(
            "card;dur=1.5, municipality;dur=30;desc=\"adapter\", compose;dur=12.25, center;dur=50",
        );
        assert_eq!(phases.card_check_ms, Some(1.5));
        assert_eq!(phases.municipality_ms, Some(30.0));
        assert_eq!(phases.composition_ms, Some(12.25));
        assert_eq!(phases.center_ms, Some(50.0));
        assert_eq!(phases.center_added_ms(), Some(20.0));
    }

    #[test]
    fn server_timing_absent_or_broken_phases_stay_absent() {
        // A refusal before the municipality: only the card check ran.
        let phases = parse_server_timing("card;dur=2");
        assert_eq!(phases.card_check_ms, Some(2.0));
        assert_eq!(phases.municipality_ms, None);
        assert_eq!(phases.composition_ms, None);
        assert_eq!(parse_server_timing(""), Phases::default());
        let broken = parse_server_timing("card;dur=abc, compose;dur=-3, municipality, other;dur=9");
        assert_eq!(broken, Phases::default());
        // Spacing and case of the parameter name do not matter.
        assert_eq!(
            parse_server_timing(" compose ; DUR = 4 ").composition_ms,
            Some(4.0)
        );
    }
}
