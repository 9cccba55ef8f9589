//! Business dates and cut times in Asia/Tokyo.
//!
//! The window of business date D covers `[cut(D−1), cut(D))`, where `cut(D)` is D at
//! the configured cut time in Asia/Tokyo. The cut time lies after the national 23:00
//! close and before midnight, so an instant before the cut on calendar day D belongs
//! to D and an instant at or after it belongs to D+1.

/// `HH:MM` in Asia/Tokyo, within 23:00..=23:59.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutTime {
    hour: u8,
    minute: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("cut time {0:?} must be HH:MM between 23:00 and 23:59 (after the 23:00 close)")]
    CutTime(String),
    #[error("business date {0:?} must be YYYY-MM-DD")]
    Date(String),
    #[error("instant {0} ms is outside the supported range")]
    Instant(i64),
    /// Only if the bundled time-zone database lacked Asia/Tokyo (it is compiled in).
    #[error("time zone Asia/Tokyo is unavailable: {0}")]
    TimeZone(String),
}

/// Asia/Tokyo from jiff's bundled tzdb (no dependence on the host's zoneinfo).
fn tokyo() -> Result<jiff::tz::TimeZone, WindowError> {
    jiff::tz::TimeZone::get(schemas::SERVICE_TIME_ZONE)
        .map_err(|e| WindowError::TimeZone(e.to_string()))
}

/// Parses exactly `width` ASCII digits (no sign, no white space).
fn fixed_digits(text: &str, width: usize) -> Option<u32> {
    if text.len() != width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.bytes()
        .try_fold(0u32, |acc, b| Some(acc * 10 + u32::from(b - b'0')))
}

/// Business dates are written with a four-digit year; the range keeps `Display` and
/// `parse` inverse to each other.
const MIN_YEAR: i16 = 1;
const MAX_YEAR: i16 = 9999;

impl CutTime {
    /// Parses `HH:MM`.
    pub fn parse(text: &str) -> Result<Self, WindowError> {
        let bad = || WindowError::CutTime(text.to_owned());
        let (hour, minute) = text.split_once(':').ok_or_else(bad)?;
        let hour = fixed_digits(hour, 2).ok_or_else(bad)?;
        let minute = fixed_digits(minute, 2).ok_or_else(bad)?;
        // Only 23:xx: after the national 23:00 close, before midnight, so a window
        // always ends on its own calendar date.
        if hour != 23 || minute > 59 {
            return Err(bad());
        }
        Ok(Self {
            hour: 23,
            minute: u8::try_from(minute).map_err(|_| bad())?,
        })
    }
    fn civil_time(self) -> jiff::civil::Time {
        // hour 23 and minute 0..=59 by construction: always a valid time of day.
        jiff::civil::time(self.hour as i8, self.minute as i8, 0, 0)
    }
    pub fn hour(self) -> u8 {
        self.hour
    }
    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl Default for CutTime {
    /// 23:30, half an hour after the national close.
    fn default() -> Self {
        Self {
            hour: 23,
            minute: 30,
        }
    }
}

impl std::fmt::Display for CutTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// A business date (the name of a settlement window), `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusinessDate(jiff::civil::Date);

impl BusinessDate {
    /// Strict `YYYY-MM-DD` (four-digit year 0001–9999, two-digit month and day, a
    /// real calendar date); nothing else that an ISO 8601 parser might accept.
    pub fn parse(text: &str) -> Result<Self, WindowError> {
        let bad = || WindowError::Date(text.to_owned());
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        // Slicing at 4/5/7/8 is safe: the length is 10 and bytes 4 and 7 are ASCII.
        let year = fixed_digits(&text[..4], 4).ok_or_else(bad)?;
        let month = fixed_digits(&text[5..7], 2).ok_or_else(bad)?;
        let day = fixed_digits(&text[8..], 2).ok_or_else(bad)?;
        let year = i16::try_from(year).map_err(|_| bad())?;
        let month = i8::try_from(month).map_err(|_| bad())?;
        let day = i8::try_from(day).map_err(|_| bad())?;
        if year < MIN_YEAR {
            return Err(bad());
        }
        jiff::civil::Date::new(year, month, day)
            .map(Self)
            .map_err(|_| bad())
    }

    fn checked(date: jiff::civil::Date) -> Option<Self> {
        (MIN_YEAR..=MAX_YEAR)
            .contains(&date.year())
            .then_some(Self(date))
    }

    /// The calendar date (for callers that need jiff arithmetic).
    pub fn as_civil(self) -> jiff::civil::Date {
        self.0
    }

    /// The window an instant falls in: its Asia/Tokyo calendar date when the local
    /// time is before the cut, the next date from the cut on.
    pub fn containing(at_unix_ms: i64, cut: CutTime) -> Result<Self, WindowError> {
        let out_of_range = || WindowError::Instant(at_unix_ms);
        let local = jiff::Timestamp::from_millisecond(at_unix_ms)
            .map_err(|_| out_of_range())?
            .to_zoned(tokyo()?);
        let date = if local.time() < cut.civil_time() {
            local.date()
        } else {
            local.date().tomorrow().map_err(|_| out_of_range())?
        };
        Self::checked(date).ok_or_else(out_of_range)
    }

    /// The end of this date's window (exclusive), Unix ms.
    pub fn cut_unix_ms(self, cut: CutTime) -> Result<i64, WindowError> {
        let zoned = self
            .0
            .to_datetime(cut.civil_time())
            .to_zoned(tokyo()?)
            .map_err(|_| WindowError::Date(self.to_string()))?;
        Ok(zoned.timestamp().as_millisecond())
    }

    /// The start of this date's window (the previous date's cut), Unix ms.
    pub fn start_unix_ms(self, cut: CutTime) -> Result<i64, WindowError> {
        self.previous()?.cut_unix_ms(cut)
    }

    pub fn next(self) -> Result<Self, WindowError> {
        self.0
            .tomorrow()
            .ok()
            .and_then(Self::checked)
            .ok_or_else(|| WindowError::Date(format!("the day after {self}")))
    }

    pub fn previous(self) -> Result<Self, WindowError> {
        self.0
            .yesterday()
            .ok()
            .and_then(Self::checked)
            .ok_or_else(|| WindowError::Date(format!("the day before {self}")))
    }
}

impl std::fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for BusinessDate {
    type Err = WindowError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
