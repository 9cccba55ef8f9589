//! The operator's transaction file and its reconciliation against the center's items.

mod common;

use common::*;
use schemas::settlement::{MatchLine, MatchSide, MatchStatus, MatchSummary, OperatorTransaction};
use settlement::{parse_operator_file, reconcile, write_operator_file, OperatorFileError};

const HEADER: &str = "request_id,kiosk_id,municipality_code,copies,amount_yen";

fn tx(n: u8, kiosk_id: &str, code: &str, copies: u32, amount_yen: i64) -> OperatorTransaction {
    OperatorTransaction {
        request_id: rid(n),
        kiosk_id: kiosk(kiosk_id),
        municipality_code: muni(code),
        copies,
        amount_yen,
    }
}

fn bad_lines(text: &str) -> Vec<String> {
    match parse_operator_file(text) {
        Err(OperatorFileError::Lines(lines)) => lines,
        other => panic!("expected bad lines, got {other:?}"),
    }
}

#[test]
fn write_then_parse_round_trips() {
    let rows = vec![
        tx(1, "seven-0001", MINOKAMO, 2, 600),
        tx(4, "seven-0001", SAKAHOGI, 3, 600),
        tx(5, "seven-0002", SAKAHOGI, 1, 0),
    ];
    let text = write_operator_file(&rows);
    let expected = format!(
        "{HEADER}\n{},seven-0001,212113,2,600\n{},seven-0001,215015,3,600\n{},seven-0002,215015,1,0\n",
        rid(1),
        rid(4),
        rid(5)
    );
    assert_eq!(text, expected);
    assert_eq!(parse_operator_file(&text), Ok(rows));
    assert_eq!(
        parse_operator_file(&write_operator_file(&[])),
        Ok(Vec::new())
    );
}

#[test]
fn bom_crlf_and_trailing_empty_line_are_accepted() {
    let text = format!(
        "\u{feff}{HEADER}\r\n{},k1,212113,1,300\r\n{},k2,215015,100,10000000\r\n\r\n",
        rid(1),
        rid(2)
    );
    let rows = parse_operator_file(&text).unwrap();
    assert_eq!(
        rows,
        vec![
            tx(1, "k1", MINOKAMO, 1, 300),
            tx(2, "k2", SAKAHOGI, 100, 10_000_000)
        ]
    );
}

#[test]
fn header_must_be_exact() {
    for header in [
        "request_id,kiosk_id,municipality_code,copies",
        "request_id,kiosk_id,municipality_code,amount_yen,copies",
        "Request_id,kiosk_id,municipality_code,copies,amount_yen",
        "request_id, kiosk_id,municipality_code,copies,amount_yen",
        "request_id,kiosk_id,municipality_code,copies,amount_yen,extra",
    ] {
        let text = format!("{header}\n{},k1,212113,1,300\n", rid(1));
        let lines = bad_lines(&text);
        assert_eq!(lines.len(), 1, "{header}");
        assert!(lines[0].starts_with("line 1: header"), "{}", lines[0]);
    }
    // A BOM in front of a bad header does not help it.
    assert!(bad_lines("\u{feff}id,kiosk\n")[0].starts_with("line 1:"));
    assert!(bad_lines("")[0].starts_with("line 1: missing header"));
}

#[test]
fn every_bad_line_is_reported_with_its_file_line() {
    let text = format!(
        "{HEADER}\n\
         {good1},k1,212113,1,300\n\
         not-a-uuid,k1,212113,1,300\n\
         {id3},k1,212113,1,-300\n\
         {id4},k1,212113,0,300\n\
         {id5},k1,212114,1,300\n\
         {id6},k 1,212113,1,300\n\
         {id7},k1, 212113,1,300\n\
         {id8},k1,212113,+1,300\n\
         {id9},k1,212113,101,300\n\
         {id10},k1,212113,1,10000001\n\
         {id11},k1,212113,1\n\
         {good1},k2,215015,2,600\n\
         {id12},k1,212113,1,3.5\n",
        good1 = rid(1),
        id3 = rid(3),
        id4 = rid(4),
        id5 = rid(5),
        id6 = rid(6),
        id7 = rid(7),
        id8 = rid(8),
        id9 = rid(9),
        id10 = rid(10),
        id11 = rid(11),
        id12 = rid(12),
    );
    let lines = bad_lines(&text);
    let numbers: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        numbers,
        [
            "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10",
            "line 11", "line 12", "line 13", "line 14"
        ]
    );
    let reason = |n: usize| lines[n].as_str();
    assert!(reason(0).contains("request_id"), "{}", reason(0));
    assert!(reason(1).contains("negative"), "{}", reason(1));
    assert!(
        reason(2).contains("copies must be 1..=100"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("check digit"), "{}", reason(3));
    assert!(reason(4).contains("kiosk_id"), "{}", reason(4));
    assert!(reason(5).contains("municipality_code"), "{}", reason(5));
    assert!(reason(6).contains("copies"), "{}", reason(6));
    assert!(
        reason(7).contains("copies must be 1..=100"),
        "{}",
        reason(7)
    );
    assert!(
        reason(8).contains("amount_yen must be 0..=10000000"),
        "{}",
        reason(8)
    );
    assert!(
        reason(9).contains("expected 5 fields, found 4"),
        "{}",
        reason(9)
    );
    // The duplicate names both lines.
    assert!(reason(10).starts_with("line 13:"), "{}", reason(10));
    assert!(reason(10).contains("first on line 2"), "{}", reason(10));
    assert!(reason(10).contains(&rid(1).to_string()), "{}", reason(10));
    assert!(reason(11).contains("amount_yen"), "{}", reason(11));
}

#[test]
fn the_list_of_bad_lines_is_capped() {
    let mut text = format!("{HEADER}\n");
    for _ in 0..250 {
        text.push_str("bad,k1,212113,1,300\n");
    }
    let lines = bad_lines(&text);
    assert_eq!(lines.len(), 100);
    assert!(lines[0].starts_with("line 2:"));
    assert!(lines[98].starts_with("line 100:"));
    assert_eq!(lines[99], "…and 151 more bad line(s)");

    // Exactly 100 bad lines: all listed, no summary entry.
    let mut text = format!("{HEADER}\n");
    for _ in 0..100 {
        text.push_str("bad,k1,212113,1,300\n");
    }
    let lines = bad_lines(&text);
    assert_eq!(lines.len(), 100);
    assert!(lines[99].starts_with("line 101:"));
}

#[test]
fn quoted_fields_are_read_as_csv() {
    let text = format!("{HEADER}\n\"{}\",\"k1\",212113,1,300\n", rid(1));
    assert_eq!(
        parse_operator_file(&text),
        Ok(vec![tx(1, "k1", MINOKAMO, 1, 300)])
    );
}

fn side(kiosk_id: &str, code: &str, copies: u32, amount_yen: i64) -> MatchSide {
    MatchSide {
        kiosk_id: kiosk(kiosk_id),
        municipality_code: muni(code),
        copies,
        amount_yen,
    }
}

#[test]
fn reconcile_every_kind_at_once() {
    // The fixture's seven items: 1 (seven-0001, 212113, 2, 600), 2 (seven-0002,
    // 212113, 1, 300), 3 (seven-0000, 212113, 1, 450), 4 (seven-0001, 215015, 3,
    // 600), 5 (seven-0002, 215015, 1, 0); lawson's 6..=10 must be ignored.
    let center = items();
    let rows = vec![
        // 1: identical → matched.
        tx(1, "seven-0001", MINOKAMO, 2, 600),
        // 2: amount differs → mismatch.
        tx(2, "seven-0002", MINOKAMO, 1, 350),
        // 4: copies differ → mismatch.
        tx(4, "seven-0001", SAKAHOGI, 2, 600),
        // 5: identical free certificate → matched (0 yen).
        tx(5, "seven-0002", SAKAHOGI, 1, 0),
        // 6: lawson's item at the center; seven claims it → missing at center.
        tx(6, "seven-0000", MINOKAMO, 2, 900),
        // 20: nowhere at the center → missing at center.
        tx(20, "seven-0001", MINOKAMO, 1, 300),
        // 3 is not listed → missing at operator.
    ];
    let report = reconcile(
        date(),
        &op("seven"),
        &center,
        &rows,
        "ab".repeat(32).as_str(),
    );

    // Sorted by request id: rid(n) sorts descending in n.
    let expected = vec![
        MatchLine {
            request_id: rid(20),
            status: MatchStatus::MissingAtCenter,
            center: None,
            operator: Some(side("seven-0001", MINOKAMO, 1, 300)),
        },
        MatchLine {
            request_id: rid(6),
            status: MatchStatus::MissingAtCenter,
            center: None,
            operator: Some(side("seven-0000", MINOKAMO, 2, 900)),
        },
        MatchLine {
            request_id: rid(5),
            status: MatchStatus::Matched,
            center: Some(side("seven-0002", SAKAHOGI, 1, 0)),
            operator: Some(side("seven-0002", SAKAHOGI, 1, 0)),
        },
        MatchLine {
            request_id: rid(4),
            status: MatchStatus::AmountMismatch,
            center: Some(side("seven-0001", SAKAHOGI, 3, 600)),
            operator: Some(side("seven-0001", SAKAHOGI, 2, 600)),
        },
        MatchLine {
            request_id: rid(3),
            status: MatchStatus::MissingAtOperator,
            center: Some(side("seven-0000", MINOKAMO, 1, 450)),
            operator: None,
        },
        MatchLine {
            request_id: rid(2),
            status: MatchStatus::AmountMismatch,
            center: Some(side("seven-0002", MINOKAMO, 1, 300)),
            operator: Some(side("seven-0002", MINOKAMO, 1, 350)),
        },
        MatchLine {
            request_id: rid(1),
            status: MatchStatus::Matched,
            center: Some(side("seven-0001", MINOKAMO, 2, 600)),
            operator: Some(side("seven-0001", MINOKAMO, 2, 600)),
        },
    ];
    assert_eq!(report.lines, expected);
    assert_eq!(
        report.summary,
        MatchSummary {
            business_date: "2026-11-25".into(),
            operator_id: op("seven"),
            operator_file_sha256: "ab".repeat(32),
            matched: 2,
            missing_at_center: 2,
            missing_at_operator: 1,
            amount_mismatch: 2,
            matched_yen: 600,
        }
    );
    assert!(!report.summary.is_clean());

    let jsonl = report.to_jsonl();
    let lines: Vec<&str> = jsonl.split_terminator('\n').collect();
    assert!(jsonl.ends_with('\n'));
    assert_eq!(lines.len(), 8);
    for (text, line) in lines.iter().zip(&expected) {
        assert_eq!(&serde_json::from_str::<MatchLine>(text).unwrap(), line);
    }
    assert_eq!(
        serde_json::from_str::<MatchSummary>(lines[7]).unwrap(),
        report.summary
    );
    // A missing side is left out of the line, not written as null.
    assert!(!lines[0].contains("\"center\""));
}

#[test]
fn mismatch_by_kiosk_or_municipality() {
    let center = items();
    let rows = vec![
        tx(1, "seven-0009", MINOKAMO, 2, 600),
        tx(2, "seven-0002", SAKAHOGI, 1, 300),
    ];
    let report = reconcile(date(), &op("seven"), &center[..2], &rows, "");
    assert!(report
        .lines
        .iter()
        .all(|l| l.status == MatchStatus::AmountMismatch));
    assert_eq!(report.summary.amount_mismatch, 2);
}

#[test]
fn clean_reconciliation_of_the_written_file() {
    // The operator writes exactly the center's seven items: everything matches.
    let center = items();
    let rows: Vec<OperatorTransaction> = center
        .iter()
        .filter(|i| i.operator_id.as_str() == "lawson")
        .map(|i| OperatorTransaction {
            request_id: i.request_id,
            kiosk_id: i.kiosk_id.clone(),
            municipality_code: i.municipality_code,
            copies: i.copies,
            amount_yen: i.gross_yen,
        })
        .collect();
    let parsed = parse_operator_file(&write_operator_file(&rows)).unwrap();
    let report = reconcile(date(), &op("lawson"), &center, &parsed, "");
    assert!(report.summary.is_clean());
    assert_eq!(report.summary.matched, 5);
    // Σ lawson gross from the fixture table: 900 + 350 + 200 + 900 + 700.
    assert_eq!(report.summary.matched_yen, 3050);
}
