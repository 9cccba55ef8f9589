//! Service rules (サービス提供時間): the national rule, each offering's hours,
//! announced maintenance windows, and the tax fiscal-year rule. Pure functions over
//! `jiff::Zoned` in Asia/Tokyo, so tests pin any instant without a clock.
//!
//! Precedence when several rules refuse at once (the first wins): national hours,
//! maintenance, then the type's own hours (see `order_checks`).

use jiff::civil::Date;
use jiff::Zoned;
use schemas::{
    MaintenanceWindow, RefusalReason, ServiceDays, ServiceHours, TimeOfDay, NATIONAL_CLOSED_FROM,
    NATIONAL_CLOSED_THROUGH, NATIONAL_CLOSES_AT, NATIONAL_OPENS_AT, SERVICE_TIME_ZONE,
};

/// `unix_s` as a wall-clock time in Asia/Tokyo. `None` only for instants jiff cannot
/// represent (far outside any clock a center runs on).
pub fn tokyo_time(unix_s: i64) -> Option<Zoned> {
    jiff::Timestamp::from_second(unix_s)
        .ok()?
        .in_tz(SERVICE_TIME_ZONE)
        .ok()
}

fn minute_of_day(at: &Zoned) -> u16 {
    // hour() is 0..=23 and minute() 0..=59, so this is < 1440.
    u16::try_from(i32::from(at.hour()) * 60 + i32::from(at.minute())).unwrap_or(u16::MAX)
}

/// `opens_at <= t < closes_at`.
fn within(at: &Zoned, opens_at: TimeOfDay, closes_at: TimeOfDay) -> bool {
    let minute = minute_of_day(at);
    opens_at.minutes() <= minute && minute < closes_at.minutes()
}

/// 年末年始: 12/29 through 1/3 inclusive.
pub fn is_year_end_holiday(date: Date) -> bool {
    let (from_month, from_day) = NATIONAL_CLOSED_FROM;
    let (through_month, through_day) = NATIONAL_CLOSED_THROUGH;
    (date.month() == from_month && date.day() >= from_day)
        || (date.month() == through_month && date.day() <= through_day)
}

/// The national rule: 06:30–23:00 Asia/Tokyo, closed 12/29–1/3.
pub fn national_open(at: &Zoned) -> bool {
    !is_year_end_holiday(at.date()) && within(at, NATIONAL_OPENS_AT, NATIONAL_CLOSES_AT)
}

/// Inside an announced maintenance window `[starts, ends)`.
pub fn in_maintenance(windows: &[MaintenanceWindow], unix_s: i64) -> bool {
    windows
        .iter()
        .any(|w| w.starts_at_unix_s <= unix_s && unix_s < w.ends_at_unix_s)
}

/// An offering's own hours: `every_day`, or Monday–Friday except `closed_dates`
/// (yyyy-mm-dd, Asia/Tokyo; they apply to `weekdays` hours only, as the catalogue says).
pub fn offering_open(hours: &ServiceHours, closed_dates: &[String], at: &Zoned) -> bool {
    let day_ok = match hours.days {
        ServiceDays::EveryDay => true,
        ServiceDays::Weekdays => {
            let weekday = at.date().weekday();
            let is_weekday = !matches!(
                weekday,
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            );
            let today = at.date().to_string();
            is_weekday && !closed_dates.contains(&today)
        }
    };
    day_ok && within(at, hours.opens_at, hours.closes_at)
}

/// Whether a type can be issued at `at`, in the documented precedence: national
/// hours (`out_of_hours`), maintenance (`maintenance`), the type's hours
/// (`out_of_hours`).
pub fn availability(
    hours: &ServiceHours,
    closed_dates: &[String],
    maintenance: &[MaintenanceWindow],
    at: &Zoned,
) -> Result<(), RefusalReason> {
    general_availability(maintenance, at)?;
    if !offering_open(hours, closed_dates, at) {
        return Err(RefusalReason::OutOfHours);
    }
    Ok(())
}

/// The rules that apply to every type: national hours, then maintenance.
pub fn general_availability(
    maintenance: &[MaintenanceWindow],
    at: &Zoned,
) -> Result<(), RefusalReason> {
    if !national_open(at) {
        return Err(RefusalReason::OutOfHours);
    }
    if in_maintenance(maintenance, at.timestamp().as_second()) {
        return Err(RefusalReason::Maintenance);
    }
    Ok(())
}

/// 年度 of the newest tax certificates on `date`: from the switch-over day ("MM-DD")
/// of year Y, fiscal year Y; before it, Y − 1. `None` when `tax_switchover` does not
/// parse (a validated catalogue always parses).
pub fn current_fiscal_year(tax_switchover: &str, date: Date) -> Option<i16> {
    let (month, day) = schemas::parse_month_day(tax_switchover)?;
    if (date.month(), date.day()) >= (month, day) {
        Some(date.year())
    } else {
        Some(date.year() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Zoned {
        format!("{text}[Asia/Tokyo]").parse().unwrap()
    }

    #[test]
    fn national_hours_edges() {
        for (time, open) in [
            ("2026-11-24T06:29:59", false),
            ("2026-11-24T06:30:00", true),
            ("2026-11-24T12:00:00", true),
            ("2026-11-24T22:59:59", true),
            ("2026-11-24T23:00:00", false),
            ("2026-11-24T00:00:00", false),
        ] {
            assert_eq!(national_open(&at(time)), open, "{time}");
        }
    }

    #[test]
    fn year_end_holidays() {
        for (time, open) in [
            ("2026-12-28T12:00:00", true),
            ("2026-12-29T12:00:00", false),
            ("2026-12-31T12:00:00", false),
            ("2027-01-01T12:00:00", false),
            ("2027-01-03T22:00:00", false),
            ("2027-01-04T06:30:00", true),
        ] {
            assert_eq!(national_open(&at(time)), open, "{time}");
        }
    }

    #[test]
    fn tokyo_time_is_nine_hours_ahead_of_utc() {
        // 2026-11-23T21:30:00Z is 06:30 on the 24th in Tokyo.
        let instant: jiff::Timestamp = "2026-11-23T21:30:00Z".parse().unwrap();
        let zoned = tokyo_time(instant.as_second()).unwrap();
        assert_eq!((zoned.day(), zoned.hour(), zoned.minute()), (24, 6, 30));
        assert!(national_open(&zoned));
        assert!(!national_open(
            &tokyo_time(instant.as_second() - 1).unwrap()
        ));
    }

    fn weekday_hours() -> ServiceHours {
        ServiceHours {
            days: ServiceDays::Weekdays,
            opens_at: TimeOfDay::hm(8, 30),
            closes_at: TimeOfDay::hm(17, 15),
        }
    }

    #[test]
    fn weekday_rule_with_closed_date() {
        let closed = vec!["2026-11-23".to_owned()]; // 勤労感謝の日, a Monday.
        let hours = weekday_hours();
        for (time, open) in [
            ("2026-11-23T10:00:00", false), // closed date
            ("2026-11-24T10:00:00", true),  // Tuesday
            ("2026-11-24T08:29:00", false),
            ("2026-11-24T08:30:00", true),
            ("2026-11-24T17:14:00", true),
            ("2026-11-24T17:15:00", false),
            ("2026-11-28T10:00:00", false), // Saturday
            ("2026-11-29T10:00:00", false), // Sunday
        ] {
            assert_eq!(offering_open(&hours, &closed, &at(time)), open, "{time}");
        }
        // every_day ignores closed dates.
        let every_day = ServiceHours {
            days: ServiceDays::EveryDay,
            ..hours
        };
        assert!(offering_open(
            &every_day,
            &closed,
            &at("2026-11-23T10:00:00")
        ));
        assert!(offering_open(
            &every_day,
            &closed,
            &at("2026-11-28T10:00:00")
        ));
    }

    #[test]
    fn maintenance_is_half_open() {
        let start = at("2026-11-24T02:00:00").timestamp().as_second();
        let windows = vec![MaintenanceWindow {
            starts_at_unix_s: start,
            ends_at_unix_s: start + 3600,
            note: "保守".into(),
        }];
        assert!(!in_maintenance(&windows, start - 1));
        assert!(in_maintenance(&windows, start));
        assert!(in_maintenance(&windows, start + 3599));
        assert!(!in_maintenance(&windows, start + 3600));
    }

    #[test]
    fn availability_precedence() {
        let noon = at("2026-11-28T12:00:00"); // Saturday
        let night = at("2026-11-28T23:30:00");
        let windows = |z: &Zoned| {
            vec![MaintenanceWindow {
                starts_at_unix_s: z.timestamp().as_second() - 10,
                ends_at_unix_s: z.timestamp().as_second() + 10,
                note: String::new(),
            }]
        };
        let hours = weekday_hours();
        // National hours beat maintenance.
        assert_eq!(
            availability(&hours, &[], &windows(&night), &night),
            Err(RefusalReason::OutOfHours)
        );
        // Maintenance beats the type's hours.
        assert_eq!(
            availability(&hours, &[], &windows(&noon), &noon),
            Err(RefusalReason::Maintenance)
        );
        assert_eq!(
            availability(&hours, &[], &[], &noon),
            Err(RefusalReason::OutOfHours)
        );
        assert_eq!(
            availability(&ServiceHours::NATIONAL, &[], &[], &noon),
            Ok(())
        );
    }

    #[test]
    fn fiscal_year_switches_over() {
        let date = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(current_fiscal_year("06-01", date("2026-05-31")), Some(2025));
        assert_eq!(current_fiscal_year("06-01", date("2026-06-01")), Some(2026));
        assert_eq!(current_fiscal_year("06-01", date("2027-01-10")), Some(2026));
        assert_eq!(current_fiscal_year("bad", date("2026-06-01")), None);
    }
}
