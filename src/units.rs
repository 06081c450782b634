//! Units and conventions: time, confidence levels, day bases.
//!
//! Time inside the crate is a year fraction ([`YearFraction`]); absolute times
//! are [`Timestamp`]s (milliseconds since the Unix epoch, UTC, as exchanges
//! stamp them). The year fraction between two timestamps is ACT/365 fixed:
//! `(later - earlier) / (365 * 86 400 000 ms)`.

use crate::error::{Error, Result};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// Milliseconds in a 365-day year (the ACT/365F denominator).
pub const MILLIS_PER_YEAR: f64 = 365.0 * 86_400_000.0;
/// Milliseconds in one day.
pub const MILLIS_PER_DAY: i64 = 86_400_000;
/// One basis point as a decimal rate (0.0001).
pub const BASIS_POINT: f64 = 1e-4;
/// One volatility point as a decimal volatility (0.01).
pub const VOL_POINT: f64 = 0.01;

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
///
/// ```
/// use portfolio_margin::Timestamp;
/// let t = Timestamp::from_ymd_hms(2026, 12, 25, 8, 0, 0)?;
/// assert_eq!(t.millis(), 1_798_185_600_000);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
///
/// In JSON a timestamp is an RFC 3339 UTC string, `"2026-12-25T08:00:00Z"`
/// (a bare date `"2026-12-25"` means midnight UTC), or an integer of
/// milliseconds since the epoch; it is written as the string, except outside
/// the years 0000 to 9999, which RFC 3339 cannot express: such an instant
/// (e.g. `plus_years` saturated at the end of the range) is written as its
/// integer milliseconds, so every timestamp reads back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "raw::Timestamp", into = "raw::Timestamp")
)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// From a UTC civil date and time (proleptic Gregorian calendar).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if a field is out of range (month 1..=12, day
    /// valid for the month, hour < 24, minute < 60, second < 60).
    pub fn from_ymd_hms(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<Self> {
        let bad = |what, value: u32| Error::InvalidInput {
            what,
            rule: "a valid calendar field",
            value: f64::from(value),
        };
        if !(1..=12).contains(&month) {
            return Err(bad("month", month));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(bad("day", day));
        }
        if hour >= 24 {
            return Err(bad("hour", hour));
        }
        if minute >= 60 {
            return Err(bad("minute", minute));
        }
        if second >= 60 {
            return Err(bad("second", second));
        }
        let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Ok(Timestamp(secs * 1000))
    }

    /// Year fraction (ACT/365F) from `self` to `later`; negative if `later` is
    /// earlier.
    ///
    /// # Units
    /// Years.
    pub fn years_until(self, later: Timestamp) -> f64 {
        // i128 avoids overflow for any pair of i64 millisecond stamps.
        (i128::from(later.0) - i128::from(self.0)) as f64 / MILLIS_PER_YEAR
    }

    /// This instant moved forward by `years` (ACT/365F), saturating at the
    /// representable range.
    pub fn plus_years(self, years: YearFraction) -> Timestamp {
        let ms = (years.0 * MILLIS_PER_YEAR).round();
        Timestamp(self.0.saturating_add(ms as i64))
    }
}

impl std::fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with milliseconds only when they are not zero.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MILLIS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (min, rest) = (rest / 60_000, rest % 60_000);
        let (sec, ms) = (rest / 1000, rest % 1000);
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}")?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

impl std::str::FromStr for Timestamp {
    type Err = Error;

    /// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::InvalidInput {
            what: "timestamp (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.mmm]Z)",
            rule: "an RFC 3339 UTC time",
            value: f64::NAN,
        };
        let num = |s: &str| -> Result<u32> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let (date, time) = match text.split_once('T') {
            Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
            None => (text, None),
        };
        let mut parts = date.splitn(3, '-');
        let (y, m, d) = (
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
            parts.next().ok_or_else(bad)?,
        );
        if y.len() != 4 {
            return Err(bad());
        }
        let year = i32::try_from(num(y)?).map_err(|_| bad())?;
        let (month, day) = (num(m)?, num(d)?);
        let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
        if let Some(t) = time {
            let (hms, frac) = match t.split_once('.') {
                Some((hms, frac)) if frac.len() <= 3 => (hms, Some(frac)),
                Some(_) => return Err(bad()),
                None => (t, None),
            };
            let mut p = hms.splitn(3, ':');
            hour = num(p.next().ok_or_else(bad)?)?;
            minute = num(p.next().ok_or_else(bad)?)?;
            second = num(p.next().ok_or_else(bad)?)?;
            if let Some(frac) = frac {
                millis = num(frac)? * 10u32.pow(3 - frac.len() as u32);
            }
        }
        let base = Timestamp::from_ymd_hms(year, month, day, hour, minute, second)?;
        Ok(Timestamp(base.0 + i64::from(millis)))
    }
}

/// Civil date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(feature = "serde")]
mod raw {
    use super::*;

    /// A timestamp as JSON may hold it.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Timestamp {
        Millis(i64),
        Text(String),
    }

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants
    /// whose RFC 3339 text [`std::str::FromStr`] reads back.
    const RFC3339_MILLIS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

    impl From<super::Timestamp> for Timestamp {
        fn from(t: super::Timestamp) -> Self {
            if RFC3339_MILLIS.contains(&t.0) {
                Timestamp::Text(t.to_string())
            } else {
                Timestamp::Millis(t.0)
            }
        }
    }

    impl TryFrom<Timestamp> for super::Timestamp {
        type Error = Error;
        fn try_from(raw: Timestamp) -> Result<Self> {
            match raw {
                Timestamp::Millis(ms) => Ok(super::Timestamp(ms)),
                Timestamp::Text(text) => text.parse(),
            }
        }
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A non-negative, finite length of time in years.
///
/// ```
/// use portfolio_margin::{DayBasis, YearFraction};
/// let ten_days = YearFraction::from_days(10.0, DayBasis::Calendar365)?;
/// assert!((ten_days.years() - 10.0 / 365.0).abs() < 1e-15);
/// # Ok::<(), portfolio_margin::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "f64", into = "f64")
)]
pub struct YearFraction(f64);

impl YearFraction {
    /// Zero time.
    pub const ZERO: YearFraction = YearFraction(0.0);

    /// From years.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `years` is finite and `>= 0`.
    pub fn new(years: f64) -> Result<Self> {
        crate::error::non_negative("year fraction", years).map(YearFraction)
    }

    /// From a number of days counted on `basis`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `days` is finite and `>= 0`.
    pub fn from_days(days: f64, basis: DayBasis) -> Result<Self> {
        crate::error::non_negative("days", days)?;
        Ok(YearFraction(days / basis.days_per_year()))
    }

    /// The length in years.
    pub const fn years(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for YearFraction {
    type Error = Error;
    fn try_from(years: f64) -> Result<Self> {
        YearFraction::new(years)
    }
}

impl From<YearFraction> for f64 {
    fn from(y: YearFraction) -> f64 {
        y.0
    }
}

/// How days convert to years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum DayBasis {
    /// 365 calendar days per year (crypto venues trade every day).
    Calendar365,
    /// 252 trading days per year (equity and futures exchanges).
    Trading252,
}

impl DayBasis {
    /// Days in one year on this basis.
    pub const fn days_per_year(self) -> f64 {
        match self {
            DayBasis::Calendar365 => 365.0,
            DayBasis::Trading252 => 252.0,
        }
    }
}

/// A confidence level in the open interval (0, 1), e.g. `0.99`.
///
/// ```
/// use portfolio_margin::Confidence;
/// assert!(Confidence::new(0.99).is_ok());
/// assert!(Confidence::new(99.0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(try_from = "f64", into = "f64")
)]
pub struct Confidence(f64);

impl Confidence {
    /// From a probability.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `0 < level < 1`.
    pub fn new(level: f64) -> Result<Self> {
        if level.is_finite() && level > 0.0 && level < 1.0 {
            Ok(Confidence(level))
        } else {
            Err(Error::InvalidInput {
                what: "confidence",
                rule: "in the open interval (0, 1)",
                value: level,
            })
        }
    }

    /// A level the crate knows lies in (0, 1) (its documented defaults);
    /// user input goes through [`Confidence::new`].
    pub(crate) const fn from_constant(level: f64) -> Self {
        debug_assert!(level > 0.0 && level < 1.0);
        Confidence(level)
    }

    /// The level, e.g. `0.99`.
    pub const fn level(self) -> f64 {
        self.0
    }

    /// The tail probability `1 - level`.
    pub fn tail(self) -> f64 {
        1.0 - self.0
    }
}

impl TryFrom<f64> for Confidence {
    type Error = Error;
    fn try_from(level: f64) -> Result<Self> {
        Confidence::new(level)
    }
}

impl From<Confidence> for f64 {
    fn from(c: Confidence) -> f64 {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_epochs() {
        assert_eq!(
            Timestamp::from_ymd_hms(1970, 1, 1, 0, 0, 0)
                .unwrap()
                .millis(),
            0
        );
        assert_eq!(
            Timestamp::from_ymd_hms(2000, 3, 1, 0, 0, 0)
                .unwrap()
                .millis(),
            951_868_800_000
        );
        assert!(Timestamp::from_ymd_hms(2025, 2, 29, 0, 0, 0).is_err());
        assert!(Timestamp::from_ymd_hms(2024, 2, 29, 0, 0, 0).is_ok());
    }

    #[test]
    fn text_round_trips() {
        for text in [
            "2026-12-25T08:00:00Z",
            "1969-07-20T20:17:40Z",
            "2024-02-29T23:59:59.250Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            "2026-12-25".parse::<Timestamp>().unwrap().to_string(),
            "2026-12-25T00:00:00Z"
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-12-25T08:00:00",
            "26-12-25",
            "2026-12-25T8:00:00Z:1",
            "2026-02-30",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn year_fraction_is_act_365() {
        let a = Timestamp::from_ymd_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let b = Timestamp::from_ymd_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(a.years_until(b), 1.0);
        assert_eq!(b.years_until(a), -1.0);
        let extreme =
            Timestamp::from_millis(i64::MIN).years_until(Timestamp::from_millis(i64::MAX));
        assert!(extreme.is_finite() && extreme > 0.0);
    }

    #[test]
    fn confidence_rejects_percent_and_edges() {
        for bad in [0.0, 1.0, 99.0, -0.5, f64::NAN, f64::INFINITY] {
            assert!(Confidence::new(bad).is_err(), "{bad}");
        }
        assert_eq!(Confidence::new(0.975).unwrap().level(), 0.975);
    }
}
