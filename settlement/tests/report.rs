//! Settlement arithmetic and report files against the hand-computed fixture in
//! `common/mod.rs`.

mod common;

use common::*;
use schemas::settlement::{ReportLine, ReportParty, REPORT_FORMAT};
use schemas::KeyPair;
use settlement::{
    pair_totals, parse_report_jsonl, render_csv, render_jsonl, report_file_stem, sign_report,
    try_pair_totals, verify_report, PairTotal, Report, ReportError,
};

/// (operator, municipality, items, copies, gross, commission, net, adj items, adj gross,
/// per copy): the pair-total table of the fixture, typed in by hand.
type HandTotal = (
    &'static str,
    &'static str,
    u64,
    u64,
    i64,
    i64,
    i64,
    u64,
    i64,
    i64,
);
const HAND_TOTALS: [HandTotal; 4] = [
    ("lawson", MINOKAMO, 3, 4, 1450, 480, 970, 1, 350, 120),
    ("lawson", SAKAHOGI, 2, 5, 1600, 600, 1000, 1, 900, 120),
    ("seven", MINOKAMO, 3, 4, 1350, 460, 890, 1, 450, 115),
    ("seven", SAKAHOGI, 2, 4, 600, 460, 140, 0, 0, 115),
];

fn hand_total(row: HandTotal) -> PairTotal {
    PairTotal {
        operator_id: op(row.0),
        municipality_code: muni(row.1),
        items: row.2,
        copies: row.3,
        gross_yen: row.4,
        commission_yen: row.5,
        net_yen: row.6,
        adjustment_items: row.7,
        adjustment_gross_yen: row.8,
        commission_per_copy_yen: row.9,
    }
}

fn key() -> KeyPair {
    KeyPair::from_seed([7; 32])
}

fn party_operator(id: &str) -> ReportParty {
    ReportParty::Operator(op(id))
}

fn report(party: ReportParty) -> Report {
    Report::for_party(window(), party, &items(), &recon(), 1_795_617_600_000)
}

#[test]
fn item_commission_and_net() {
    let items = items();
    // (id, commission, net) from the item table.
    let hand = [
        (1, 230, 370),
        (2, 115, 185),
        (3, 115, 335),
        (4, 345, 255),
        (5, 115, -115),
        (6, 240, 660),
        (7, 120, 230),
        (8, 120, 80),
        (9, 360, 540),
        (10, 240, 460),
    ];
    for (item, (n, commission, net)) in items.iter().zip(hand) {
        assert_eq!(item.request_id, rid(n));
        assert_eq!(item.commission_yen(), commission, "commission of item {n}");
        assert_eq!(item.net_yen(), net, "net of item {n}");
    }
}

#[test]
fn pair_totals_match_the_hand_table() {
    let expected: Vec<PairTotal> = HAND_TOTALS.into_iter().map(hand_total).collect();
    assert_eq!(pair_totals(&items()), expected);
    // Input order does not matter.
    let mut reversed = items();
    reversed.reverse();
    assert_eq!(pair_totals(&reversed), expected);
    assert_eq!(try_pair_totals(&items()), Ok(expected));
    assert!(pair_totals(&[]).is_empty());
}

#[test]
fn overflowing_sums_are_reported_not_wrapped() {
    let mut big = items()[0].clone();
    big.gross_yen = i64::MAX / 2 + 1;
    big.commission_per_copy_yen = 0;
    let mut second = big.clone();
    second.request_id = rid(40);
    let err = try_pair_totals(&[big, second]).unwrap_err();
    assert_eq!(err.what, "gross");
}

#[test]
fn for_party_filters_and_sorts() {
    let seven = report(party_operator("seven"));
    let ids: Vec<_> = seven.items.iter().map(|i| i.request_id).collect();
    // rid(n) sorts descending in n (see `common::rid`).
    assert_eq!(ids, vec![rid(5), rid(4), rid(3), rid(2), rid(1)]);
    assert_eq!(
        seven
            .recon_required
            .iter()
            .map(|r| r.request_id)
            .collect::<Vec<_>>(),
        vec![rid(11)]
    );

    let minokamo = report(ReportParty::Municipality(muni(MINOKAMO)));
    let ids: Vec<_> = minokamo.items.iter().map(|i| i.request_id).collect();
    assert_eq!(ids, vec![rid(8), rid(7), rid(6), rid(3), rid(2), rid(1)]);
    assert_eq!(
        minokamo
            .recon_required
            .iter()
            .map(|r| r.request_id)
            .collect::<Vec<_>>(),
        vec![rid(11)]
    );
    let sakahogi = report(ReportParty::Municipality(muni(SAKAHOGI)));
    assert_eq!(sakahogi.items.len(), 4);
    assert_eq!(sakahogi.recon_required[0].request_id, rid(12));
}

#[test]
fn file_stems() {
    assert_eq!(
        report_file_stem(&report(party_operator("seven"))),
        "settlement-2026-11-25-operator-seven"
    );
    assert_eq!(
        report_file_stem(&report(ReportParty::Municipality(muni(SAKAHOGI)))),
        "settlement-2026-11-25-municipality-215015"
    );
}

#[test]
fn csv_exact_text() {
    let expected = "\
business_date,operator_id,municipality_code,items,copies,gross,commission,net,adjustment_items,adjustment_gross,commission_per_copy
2026-11-25,seven,212113,3,4,1350,460,890,1,450,115
2026-11-25,seven,215015,2,4,600,460,140,0,0,115
";
    assert_eq!(render_csv(&report(party_operator("seven"))), expected);

    let expected = "\
business_date,operator_id,municipality_code,items,copies,gross,commission,net,adjustment_items,adjustment_gross,commission_per_copy
2026-11-25,lawson,215015,2,5,1600,600,1000,1,900,120
2026-11-25,seven,215015,2,4,600,460,140,0,0,115
";
    assert_eq!(
        render_csv(&report(ReportParty::Municipality(muni(SAKAHOGI)))),
        expected
    );
}

fn lines_of(text: &str) -> Vec<ReportLine> {
    parse_report_jsonl(text).unwrap()
}

#[test]
fn jsonl_round_trip_municipality_report() {
    let text = render_jsonl(
        &report(ReportParty::Municipality(muni(MINOKAMO))),
        key().kid(),
    );
    assert!(text.ends_with('\n'));
    // One compact object per line.
    assert!(text
        .lines()
        .all(|l| l.starts_with('{') && !l.contains(": ")));
    let lines = lines_of(&text);
    assert_eq!(lines.len(), text.lines().count());
    // 1 header + 6 items + 1 recon + 2 totals + 1 trailer.
    assert_eq!(lines.len(), 11);

    match &lines[0] {
        ReportLine::Header {
            format,
            business_date,
            party,
            starts_at_unix_ms,
            ends_at_unix_ms,
            center_kid,
            ..
        } => {
            assert_eq!(format, REPORT_FORMAT);
            assert_eq!(business_date, "2026-11-25");
            assert_eq!(party, &ReportParty::Municipality(muni(MINOKAMO)));
            assert_eq!(*starts_at_unix_ms, window().starts_at_unix_ms);
            assert_eq!(*ends_at_unix_ms, window().ends_at_unix_ms);
            assert_eq!(*center_kid, key().kid());
        }
        other => panic!("first line is {other:?}"),
    }
    let item_ids: Vec<_> = lines[1..7]
        .iter()
        .map(|l| match l {
            ReportLine::Item { request_id, .. } => *request_id,
            other => panic!("expected an item, got {other:?}"),
        })
        .collect();
    assert_eq!(
        item_ids,
        vec![rid(8), rid(7), rid(6), rid(3), rid(2), rid(1)]
    );
    // Item 8's figures from the item table: 1 × 200, commission 120, net 80.
    match &lines[1] {
        ReportLine::Item {
            copies,
            gross_yen,
            commission_yen,
            net_yen,
            adjustment,
            ..
        } => assert_eq!(
            (*copies, *gross_yen, *commission_yen, *net_yen, *adjustment),
            (1, 200, 120, 80, false)
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &lines[7],
        ReportLine::ReconRequired { request_id, paid_yen: 300, .. } if *request_id == rid(11)
    ));
    let expected_totals: Vec<ReportLine> = [HAND_TOTALS[0], HAND_TOTALS[2]]
        .into_iter()
        .map(|t| ReportLine::Total {
            operator_id: op(t.0),
            municipality_code: muni(t.1),
            items: t.2,
            copies: t.3,
            gross_yen: t.4,
            commission_yen: t.5,
            net_yen: t.6,
            adjustment_items: t.7,
            adjustment_gross_yen: t.8,
            commission_per_copy_yen: t.9,
        })
        .collect();
    assert_eq!(lines[8..10].to_vec(), expected_totals);
    // Trailer: lawson/212113 + seven/212113 = 1450 + 1350 gross, 480 + 460
    // commission, 970 + 890 net, 4 + 4 copies.
    assert_eq!(
        lines[10],
        ReportLine::Trailer {
            item_count: 6,
            recon_required_count: 1,
            total_count: 2,
            copies: 8,
            gross_yen: 2800,
            commission_yen: 940,
            net_yen: 1860,
            recon_required_yen: 300,
            line_count: 11,
        }
    );
}

#[test]
fn jsonl_trailer_of_operator_reports() {
    let seven = lines_of(&render_jsonl(&report(party_operator("seven")), key().kid()));
    // 1 + 5 items + 1 recon + 2 totals + 1.
    assert_eq!(
        seven.last(),
        Some(&ReportLine::Trailer {
            item_count: 5,
            recon_required_count: 1,
            total_count: 2,
            copies: 8,
            gross_yen: 1950,
            commission_yen: 920,
            net_yen: 1030,
            recon_required_yen: 300,
            line_count: 10,
        })
    );
    let lawson = lines_of(&render_jsonl(
        &report(party_operator("lawson")),
        key().kid(),
    ));
    assert_eq!(
        lawson.last(),
        Some(&ReportLine::Trailer {
            item_count: 5,
            recon_required_count: 1,
            total_count: 2,
            copies: 9,
            gross_yen: 3050,
            commission_yen: 1080,
            net_yen: 1970,
            recon_required_yen: 450,
            line_count: 10,
        })
    );
}

#[test]
fn empty_window_report_parses() {
    let empty = Report::for_party(window(), party_operator("famima"), &items(), &[], 0);
    let lines = lines_of(&render_jsonl(&empty, key().kid()));
    assert_eq!(lines.len(), 2);
    assert!(matches!(
        lines[1],
        ReportLine::Trailer {
            item_count: 0,
            line_count: 2,
            gross_yen: 0,
            ..
        }
    ));
    assert_eq!(
        render_csv(&empty).lines().count(),
        1,
        "header row only for an empty window"
    );
}

fn seven_jsonl() -> String {
    render_jsonl(&report(party_operator("seven")), key().kid())
}

/// Replaces line `index` (0-based) with `f(line)`, re-serialised.
fn edit_line(text: &str, index: usize, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut value: serde_json::Value = serde_json::from_str(&lines[index]).unwrap();
    f(&mut value);
    lines[index] = serde_json::to_string(&value).unwrap();
    lines.join("\n") + "\n"
}

fn line_error(result: Result<Vec<ReportLine>, ReportError>) -> (usize, String) {
    match result {
        Err(ReportError::Line { line, reason }) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn truncated_report_fails() {
    let text = seven_jsonl();
    assert!(parse_report_jsonl(&text).is_ok());
    // Without the trailer line.
    let lines: Vec<&str> = text.lines().collect();
    let no_trailer = lines[..lines.len() - 1].join("\n") + "\n";
    assert!(matches!(
        parse_report_jsonl(&no_trailer),
        Err(ReportError::Incomplete(_))
    ));
    // Cut inside the trailer, and cut just before the final newline.
    assert!(parse_report_jsonl(&text[..text.len() - 20]).is_err());
    assert!(matches!(
        parse_report_jsonl(&text[..text.len() - 1]),
        Err(ReportError::Incomplete(_))
    ));
    assert!(matches!(
        parse_report_jsonl(""),
        Err(ReportError::Incomplete(_))
    ));
}

#[test]
fn tampered_total_fails_on_its_line() {
    let text = seven_jsonl();
    // Lines: 0 header, 1..=5 items, 6 recon, 7..=8 totals, 9 trailer.
    let tampered = edit_line(&text, 7, |v| {
        v["gross_yen"] = serde_json::json!(1351);
        v["net_yen"] = serde_json::json!(891);
    });
    let (line, reason) = line_error(parse_report_jsonl(&tampered));
    assert_eq!(line, 8, "{reason}");
    assert!(reason.contains("differs from its items"), "{reason}");

    let tampered = edit_line(&text, 8, |v| {
        v["commission_per_copy_yen"] = serde_json::json!(100);
    });
    let (line, reason) = line_error(parse_report_jsonl(&tampered));
    // Commission per copy disagrees with the first item of that pair (line 2, id 5).
    assert_eq!(line, 2, "{reason}");
}

#[test]
fn tampered_item_fails() {
    let text = seven_jsonl();
    // Item 1 (last item line, line 6 of the file): gross 600 → 700 with a consistent
    // net, so only the pair total can catch it.
    let tampered = edit_line(&text, 5, |v| {
        assert_eq!(v["gross_yen"], 600);
        v["gross_yen"] = serde_json::json!(700);
        v["net_yen"] = serde_json::json!(470);
    });
    let (line, reason) = line_error(parse_report_jsonl(&tampered));
    assert_eq!(line, 8, "the seven/212113 total, line 8: {reason}");

    // Net that is not gross − commission fails on the item itself.
    let tampered = edit_line(&text, 5, |v| v["net_yen"] = serde_json::json!(371));
    assert_eq!(line_error(parse_report_jsonl(&tampered)).0, 6);

    // An item of another operator inside seven's report.
    let tampered = edit_line(&text, 1, |v| v["operator_id"] = serde_json::json!("lawson"));
    assert_eq!(line_error(parse_report_jsonl(&tampered)).0, 2);
}

#[test]
fn tampered_trailer_and_order_fail() {
    let text = seven_jsonl();
    let tampered = edit_line(&text, 9, |v| v["gross_yen"] = serde_json::json!(1951));
    let (line, reason) = line_error(parse_report_jsonl(&tampered));
    assert_eq!(line, 10);
    assert!(reason.contains("gross_yen"), "{reason}");

    let tampered = edit_line(&text, 9, |v| v["recon_required_yen"] = serde_json::json!(0));
    assert_eq!(line_error(parse_report_jsonl(&tampered)).0, 10);

    let mut lines: Vec<&str> = text.lines().collect();
    // Two items swapped: no longer sorted by request id.
    lines.swap(1, 2);
    let swapped = lines.join("\n") + "\n";
    assert_eq!(line_error(parse_report_jsonl(&swapped)).0, 3);

    // Recon line moved before the items.
    let mut lines: Vec<&str> = text.lines().collect();
    let recon = lines.remove(6);
    lines.insert(1, recon);
    let reordered = lines.join("\n") + "\n";
    assert_eq!(line_error(parse_report_jsonl(&reordered)).0, 3);

    // No header.
    let headless = text.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
    assert_eq!(line_error(parse_report_jsonl(&headless)).0, 1);

    // Something after the trailer.
    let extra = text.clone() + text.lines().nth(1).unwrap() + "\n";
    assert_eq!(line_error(parse_report_jsonl(&extra)).0, 11);

    // Not JSON at all.
    let garbage = text.replacen("{\"record\":\"recon_required\"", "{oops", 1);
    assert_eq!(line_error(parse_report_jsonl(&garbage)).0, 7);
}

#[test]
fn signature_verifies_and_catches_tampering() {
    let key = key();
    let text = seven_jsonl();
    let bytes = text.as_bytes();
    let sig = sign_report("settlement-2026-11-25-operator-seven.jsonl", bytes, &key);
    assert_eq!(sig.alg, "Ed25519");
    assert_eq!(sig.kid, key.kid());
    assert_eq!(sig.sha256.len(), 64);
    assert!(sig
        .sha256
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    verify_report(bytes, &sig, &key.public()).unwrap();

    // The signature covers the documented domain prefix followed by the bytes.
    let mut message = b"konbini-kofu/v1/settlement-report\0".to_vec();
    message.extend_from_slice(bytes);
    key.public().verify(&message, &sig.signature).unwrap();

    // Survives a JSON round trip of the .sig file.
    let sig_json = serde_json::to_string(&sig).unwrap();
    let sig_back: schemas::settlement::DetachedSignature = serde_json::from_str(&sig_json).unwrap();
    verify_report(bytes, &sig_back, &key.public()).unwrap();

    // One flipped bit anywhere in the file.
    let mut flipped = bytes.to_vec();
    flipped[bytes.len() / 2] ^= 0x01;
    assert!(matches!(
        verify_report(&flipped, &sig, &key.public()),
        Err(ReportError::Signature(_))
    ));
    // The flipped file with a recomputed digest still fails on the signature itself.
    let mut forged = sig.clone();
    forged.sha256 = hex::encode(schemas::sha256(&flipped));
    let err = verify_report(&flipped, &forged, &key.public()).unwrap_err();
    assert!(matches!(err, ReportError::Signature(_)), "{err}");

    // Another key, as named in the signature or pretending to be the center's.
    let other = KeyPair::from_seed([8; 32]);
    let other_sig = sign_report("x.jsonl", bytes, &other);
    assert!(matches!(
        verify_report(bytes, &other_sig, &key.public()),
        Err(ReportError::Signature(_))
    ));
    let mut impostor = other_sig.clone();
    impostor.kid = key.kid();
    assert!(matches!(
        verify_report(bytes, &impostor, &key.public()),
        Err(ReportError::Signature(_))
    ));
    assert!(verify_report(bytes, &sig, &other.public()).is_err());

    // Another algorithm name.
    let mut alg = sig.clone();
    alg.alg = "EdDSA".into();
    let err = verify_report(bytes, &alg, &key.public()).unwrap_err();
    assert!(err.to_string().contains("algorithm"), "{err}");
}

#[test]
fn items_given_unsorted_still_render_sorted() {
    // A Report built by hand (fields are public) in table order.
    let mut by_hand = report(party_operator("seven"));
    by_hand.items.reverse();
    let lines = lines_of(&render_jsonl(&by_hand, key().kid()));
    assert!(matches!(&lines[1], ReportLine::Item { request_id, .. } if *request_id == rid(5)));
}
