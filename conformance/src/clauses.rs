//! The clause catalogue: every assertion the suites make names one of these clauses
//! (id, severity, one-line requirement). Ids are `<profile letter>-<TOPIC>-<number>`
//! and never change meaning; a new requirement gets a new id.

use schemas::conformance::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clause {
    pub id: &'static str,
    pub severity: Severity,
    pub requirement: &'static str,
}

const fn fail(id: &'static str, requirement: &'static str) -> Clause {
    Clause {
        id,
        severity: Severity::Fail,
        requirement,
    }
}

const fn warn(id: &'static str, requirement: &'static str) -> Clause {
    Clause {
        id,
        severity: Severity::Warn,
        requirement,
    }
}

/// Every clause of the municipality profile.
pub const MUNICIPALITY: &[Clause] = &[
    fail("M-RUN-1", "A scenario completes within its time bound and the target answers over mTLS."),
    fail("M-SCHEMA-1", "Every certificate answer is application/json and deserialises strictly as Signed<CertificateAnswer> (schemas::municipal_api)."),
    fail("M-SCHEMA-2", "Every error answer is an application/json ErrorBody whose HTTP status is the one of its code."),
    fail("M-SCHEMA-3", "The catalogue, the notice acknowledgement and /v1/info deserialise strictly into their schemas types."),
    fail("M-SIG-1", "The answer is signed by the municipality's key and names that key's kid."),
    fail("M-SIG-2", "Every seal decodes strictly (KC1 text, canonical CBOR) and verifies under the municipality's key and kid."),
    fail("M-SIG-3", "One seal per front page, numbered 1..n, each covering the answer's front data (front digest) and the ordered document type."),
    fail("M-BIND-1", "The answer and each of its seals echo the fetch's request id."),
    fail("M-BIND-2", "The answer echoes the fetch's card digest."),
    fail("M-BIND-3", "The answer names the municipality the fetch was sent to."),
    fail("M-CONC-1", "Under 100 concurrent fetches for 100 distinct residents, every fetch is answered with an issued certificate."),
    fail("M-CONC-2", "Under concurrent load each answer's front and seals name the requested resident (name and date of birth): zero cross-binding."),
    warn("M-PERF-1", "100 concurrent fetches are all answered within 10 seconds."),
    fail("M-IDEM-1", "A re-fetch with the same request id (new deadline) returns the byte-identical signed answer."),
    fail("M-IDEM-2", "A different fetch under a request id already answered is refused with request_id_reused (409)."),
    fail("M-DEADLINE-1", "A fetch whose deadline has already passed is refused with upstream_timeout (504), never answered."),
    fail("M-DEADLINE-2", "A fetch refused for its deadline leaves nothing behind: the same request id with a fresh deadline is answered normally."),
    fail("M-REFUSE-1", "Each of the suite's special residents is refused with its refusal reason."),
    fail("M-REFUSE-2", "A card serial bound to no resident is refused with card_not_registered."),
    fail("M-REFUSE-3", "A household selection naming a position that is not a current member is refused with member_selection_invalid."),
    fail("M-FONT-1", "A name with a character outside the certificate font is issued with the name exactly as registered (front and seals) or refused with unprintable_character; never substituted or dropped."),
    fail("M-CAT-1", "The catalogue is signed by the municipality's key, names the municipality and validates."),
    fail("M-CAT-2", "The fee in every issued answer equals the catalogue's fee for the type."),
    fail("M-CAT-3", "Every type the catalogue offers is issued for the full-service resident with a front of that type; a type not offered is refused type_not_offered."),
    fail("M-NOTICE-1", "A signed outcome notice for an issued answer is accepted and recorded (200, recorded = true)."),
    fail("M-NOTICE-2", "The same notice sent again is accepted without a second record (200, recorded = false)."),
    fail("M-NOTICE-3", "A different notice under a recorded request id is refused with request_id_reused (409)."),
];

/// Every clause of the kiosk profile.
pub const KIOSK: &[Clause] = &[
    fail("K-RUN-1", "A scenario completes within its time bound and the kiosk's control interface answers every step that fits the screen."),
    fail("K-FLOW-1", "Card, PIN, route and order lead to confirm_fee with the session's request id, the municipality and a fee."),
    fail("K-FLOW-2", "Once paid, the certificate is printed (in the printed list, in the tray) and the screen asks for the card."),
    fail("K-PAY-1", "Coins below the fee keep the kiosk paying and give the coins back; coins above the fee give the exact change."),
    fail("K-DOC-1", "The printed PDF, fetched from the control interface, carries the session's request id on every page (/KofuRequestId), with the page count announced."),
    fail("K-DOC-2", "The printed document is always the session's own: in consecutive sessions, every printed PDF's request id equals that session's request id."),
    fail("K-CENTER-1", "After a print the center has the issuance printed and the fee charged once."),
    fail("K-PIN-1", "A wrong PIN costs one attempt and keeps the PIN pad; the right PIN then proceeds and resets the counter."),
    fail("K-PIN-2", "Three wrong PINs lock the card: the locked screen, no further PIN, no request id."),
    fail("K-REFUSE-1", "A refusal shows only the generic message (RefusalReason::RESIDENT_MESSAGE_JA / _EN), no fee, and no payment is accepted."),
    fail("K-REFUSE-2", "A refusal that depends on the day or time at the center's clock shows only the generic message, no fee; a type the menu shows unavailable now stays unorderable (no fee, no request id). No payment, nothing printed."),
    fail("K-REFUSE-3", "A refusal the center or the chosen route and options decide shows only the generic message, no fee; a type off the menu stays unorderable (no fee, no request id). No payment, nothing printed."),
    fail("K-CARD-1", "A revoked, expired or unregistered card, after the right PIN, ends on the refused screen (generic message) or an error screen naming the municipal counter (窓口): no fee, no payment, nothing printed, card returned."),
    fail("K-CARD-2", "After a revoked, expired or unregistered card the center took no money and holds no issuance of it past refused."),
    fail("K-IDEM-1", "An identical duplicate (same idempotency key, same order) is answered with the same request id and charged once."),
    fail("K-IDEM-2", "A conflicting duplicate (same idempotency key, another order) never reaches payment and nothing is printed."),
    fail("K-VOID-1", "Cancel and walk-away void the session: the voided screen, nothing printed, no document."),
    fail("K-VOID-2", "A cancelled or abandoned session keeps no fee at the center (issuance voided, no money charged)."),
    fail("K-JAM-1", "A printer jam ends on the voided screen with nothing printed and the refund announced."),
    fail("K-JAM-2", "After a jam the center has the issuance voided and keeps no fee."),
    fail("K-POWER-1", "A power loss mid-print keeps the unknown print report in the outbox; after the restart the outbox is re-sent and empty."),
    fail("K-POWER-2", "After the restart the center has the issuance printed and the document printed is the session's own."),
    fail("K-REFUSE-4", "Whatever refusal code the center sends, and however its text words the reason, the kiosk shows only the generic message: no reason on screen, no fee, nothing printed."),
    fail("K-RETRY-1", "An order re-sent after a timeout is the same request at the center (same idempotency key): one request id, at most one fee."),
    warn("K-RETRY-2", "After one timeout the kiosk re-sends the order (same key, fresh challenge) rather than giving up."),
    fail("K-LATE-1", "An answer that arrives after the kiosk gave up is never shown or printed, in that session or a later one, and keeps no fee."),
    fail("K-DOC-3", "A prepared answer whose document carries another request's id is never printed and keeps no fee."),
    fail("K-TLS-1", "The kiosk talks to the center only over a certificate chaining to the center's CA: with any other, no request goes through and nothing is printed."),
    warn("K-REMIND-1", "A card or certificate left behind keeps its take_card / take_certificate screen until taken, and no new card is accepted meanwhile."),
];

/// The clause `id` (of any profile).
pub fn clause(id: &str) -> Option<&'static Clause> {
    MUNICIPALITY.iter().chain(KIOSK.iter()).find(|c| c.id == id)
}

/// `M-TOPIC-1`: profile letter, upper-case topic, number without leading zero.
pub fn is_well_formed(id: &str) -> bool {
    let mut parts = id.split('-');
    let (Some(profile), Some(topic), Some(number), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(profile, "M" | "K")
        && !topic.is_empty()
        && topic.bytes().all(|b| b.is_ascii_uppercase())
        && !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in MUNICIPALITY {
            assert!(is_well_formed(c.id), "{}", c.id);
            assert!(c.id.starts_with("M-"), "{}", c.id);
            assert!(seen.insert(c.id), "duplicate {}", c.id);
            assert!(!c.requirement.is_empty() && c.requirement.len() <= 300);
        }
        for c in KIOSK {
            assert!(is_well_formed(c.id), "{}", c.id);
            assert!(c.id.starts_with("K-"), "{}", c.id);
            assert!(seen.insert(c.id), "duplicate {}", c.id);
            assert!(!c.requirement.is_empty() && c.requirement.len() <= 300);
        }
        assert!(!is_well_formed("M-bind-1"));
        assert!(!is_well_formed("M-BIND-01"));
        assert!(!is_well_formed("X-BIND-1"));
        assert!(!is_well_formed("M-BIND"));
    }
}
