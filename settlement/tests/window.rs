//! Business dates and cut times. Instants are written with an explicit +09:00 offset
//! (JST has had no daylight saving since 1951), so the oracle does not depend on the
//! time-zone database the code under test uses.

use settlement::{BusinessDate, CutTime, WindowError};

fn jst(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn date(text: &str) -> BusinessDate {
    BusinessDate::parse(text).unwrap()
}

fn cut(text: &str) -> CutTime {
    CutTime::parse(text).unwrap()
}

#[test]
fn cut_time_parsing() {
    for good in ["23:00", "23:30", "23:59"] {
        assert_eq!(cut(good).to_string(), good);
    }
    assert_eq!((cut("23:45").hour(), cut("23:45").minute()), (23, 45));
    assert_eq!(CutTime::default(), cut("23:30"));
    for bad in [
        "23:5",
        "24:00",
        "22:59",
        "23:60",
        "00:10",
        "2330",
        "23-30",
        " 23:30",
        "23:30 ",
        "+23:30",
        "23:+5",
        "",
        "junk",
        "23:３０",
        "23:30:00",
    ] {
        assert_eq!(
            CutTime::parse(bad),
            Err(WindowError::CutTime(bad.to_owned())),
            "{bad:?}"
        );
    }
}

#[test]
fn business_date_parsing() {
    for good in ["2026-11-25", "2024-02-29", "0001-01-01", "9999-12-31"] {
        assert_eq!(date(good).to_string(), good);
        assert_eq!(good.parse::<BusinessDate>(), Ok(date(good)));
    }
    for bad in [
        "2026-2-01",
        "2026-02-30",
        "2025-02-29",
        "2026-13-01",
        "2026-00-10",
        "20261125",
        "2026-11-25T00:00",
        "+2026-11-25",
        " 2026-11-25",
        "2026-11-25\n",
        "2026/11/25",
        "0000-01-01",
        "２０２６-11-25",
        "",
    ] {
        assert_eq!(
            BusinessDate::parse(bad),
            Err(WindowError::Date(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(date("2026-11-25") < date("2026-11-26"));
}

#[test]
fn containing_around_the_cut() {
    let c = cut("23:30");
    let cases = [
        // Just before the national close: still the same day's window.
        ("2026-11-25T22:59:59.999+09:00", "2026-11-25"),
        ("2026-11-25T23:29:59.999+09:00", "2026-11-25"),
        // At the cut: the next day's window.
        ("2026-11-25T23:30:00+09:00", "2026-11-26"),
        ("2026-11-25T23:59:59.999+09:00", "2026-11-26"),
        // After midnight: that calendar date.
        ("2026-11-26T00:10:00+09:00", "2026-11-26"),
        ("2026-11-26T06:30:00+09:00", "2026-11-26"),
        // Year boundary.
        ("2026-12-31T23:45:00+09:00", "2027-01-01"),
        ("2026-12-31T23:00:00+09:00", "2026-12-31"),
        // Leap day.
        ("2028-02-28T23:40:00+09:00", "2028-02-29"),
        ("2028-02-29T23:40:00+09:00", "2028-03-01"),
        // 15:00 UTC is already the next JST day: the zone, not UTC, decides.
        ("2026-11-25T15:00:00Z", "2026-11-26"),
        ("2026-11-25T14:29:59Z", "2026-11-25"),
    ];
    for (at, expected) in cases {
        assert_eq!(
            BusinessDate::containing(jst(at), c),
            Ok(date(expected)),
            "{at}"
        );
    }
    // A later cut keeps 23:45 in its own day.
    assert_eq!(
        BusinessDate::containing(jst("2026-12-31T23:45:00+09:00"), cut("23:59")),
        Ok(date("2026-12-31"))
    );
    assert_eq!(
        BusinessDate::containing(jst("2026-11-25T23:00:00+09:00"), cut("23:00")),
        Ok(date("2026-11-26"))
    );
}

#[test]
fn window_bounds() {
    let c = cut("23:30");
    let d = date("2026-11-25");
    assert_eq!(d.cut_unix_ms(c), Ok(jst("2026-11-25T23:30:00+09:00")));
    assert_eq!(d.start_unix_ms(c), Ok(jst("2026-11-24T23:30:00+09:00")));
    assert_eq!(
        date("2027-01-01").start_unix_ms(cut("23:45")),
        Ok(jst("2026-12-31T23:45:00+09:00"))
    );
    // Consecutive windows tile time over more than a year: each starts where the
    // previous ended, and the instants on either side of a cut fall on either side.
    let mut day = date("2026-01-01");
    for _ in 0..400 {
        let end = day.cut_unix_ms(c).unwrap();
        let next = day.next().unwrap();
        assert_eq!(next.start_unix_ms(c), Ok(end));
        assert_eq!(end - day.start_unix_ms(c).unwrap(), 86_400_000);
        assert_eq!(BusinessDate::containing(end - 1, c), Ok(day));
        assert_eq!(BusinessDate::containing(end, c), Ok(next));
        day = next;
    }
}

#[test]
fn next_and_previous() {
    assert_eq!(date("2026-12-31").next(), Ok(date("2027-01-01")));
    assert_eq!(date("2027-01-01").previous(), Ok(date("2026-12-31")));
    assert_eq!(date("2028-03-01").previous(), Ok(date("2028-02-29")));
    assert!(matches!(
        date("9999-12-31").next(),
        Err(WindowError::Date(_))
    ));
    assert!(matches!(
        date("0001-01-01").previous(),
        Err(WindowError::Date(_))
    ));
}

#[test]
fn instants_out_of_range_are_errors() {
    assert_eq!(
        BusinessDate::containing(i64::MAX, CutTime::default()),
        Err(WindowError::Instant(i64::MAX))
    );
    assert_eq!(
        BusinessDate::containing(i64::MIN, CutTime::default()),
        Err(WindowError::Instant(i64::MIN))
    );
}
