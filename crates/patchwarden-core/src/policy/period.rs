//! Deadlines as people write them: `8h`, `30d`, `2w`, `1mo`, and the two deadlines that are not
//! a length of time (`none`, `kev_due_date`).
//!
//! Hours, days and weeks are exact lengths (a day is 24 hours: clocks run in UTC, which has no
//! daylight-saving jumps). Months are calendar months in UTC, because frameworks say "within
//! one month of release" (PCI DSS, the Essential Eight) and mean the same day of the next
//! month, not 30 days: 31 January + 1 month is 28 or 29 February (the day is clamped).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

/// The unit of a [`Period`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Hours,
    Days,
    Weeks,
    Months,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::Hours => "h",
            Unit::Days => "d",
            Unit::Weeks => "w",
            Unit::Months => "mo",
        }
    }

    /// The largest amount accepted: a hundred years in each unit. Nothing real is due later,
    /// and the bound keeps every sum far from the end of jiff's time range.
    fn max(self) -> u32 {
        match self {
            Unit::Hours => 876_000,
            Unit::Days => 36_500,
            Unit::Weeks => 5_200,
            Unit::Months => 1_200,
        }
    }
}

/// A length of time after a clock start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    amount: u32,
    unit: Unit,
}

/// Why a period does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error(
        "`{0}` is not a period: write a whole number and a unit, h (hours), d (days), w (weeks) \
         or mo (calendar months), as in `8h`, `30d`, `2w`, `1mo`"
    )]
    Syntax(String),
    #[error(
        "`{0}` is not a deadline: write a period such as `8h`, `30d`, `2w` or `1mo`, or `none` \
         (no deadline), or `kev_due_date` (the KEV catalogue's due date)"
    )]
    DueSyntax(String),
    #[error("`{text}` is too long: at most {max}{unit}")]
    TooLong {
        text: String,
        max: u32,
        unit: &'static str,
    },
}

impl Period {
    pub fn new(amount: u32, unit: Unit) -> Option<Period> {
        (amount <= unit.max()).then_some(Period { amount, unit })
    }

    /// A period written in the code (the seed's default deadlines), clamped to the unit's
    /// bound like any other; the constants in the code are far below it.
    pub(crate) const fn constant(amount: u32, unit: Unit) -> Period {
        let max = match unit {
            Unit::Hours => 876_000,
            Unit::Days => 36_500,
            Unit::Weeks => 5_200,
            Unit::Months => 1_200,
        };
        Period {
            amount: if amount <= max { amount } else { max },
            unit,
        }
    }

    pub fn amount(self) -> u32 {
        self.amount
    }

    pub fn unit(self) -> Unit {
        self.unit
    }

    /// `start` plus this period; `None` only past the end of representable time, which the
    /// amount bound keeps out of reach for any real start.
    pub fn after(self, start: Timestamp) -> Option<Timestamp> {
        let hours = |n: i64| start.checked_add(SignedDuration::from_hours(n)).ok();
        let n = i64::from(self.amount);
        match self.unit {
            Unit::Hours => hours(n),
            Unit::Days => hours(n * 24),
            Unit::Weeks => hours(n * 24 * 7),
            Unit::Months => start
                .to_zoned(TimeZone::UTC)
                .checked_add(Span::new().months(n))
                .ok()
                .map(|z| z.timestamp()),
        }
    }

    /// Orders two periods by what they add to one fixed start (2001-01-01, so that `1mo` is 31
    /// days). Used only to check that a file's deadlines are in a sensible order.
    pub fn approx_cmp(self, other: Period) -> Ordering {
        let start = Timestamp::from_second(978_307_200).unwrap_or(Timestamp::UNIX_EPOCH);
        self.after(start).cmp(&other.after(start))
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Period, PeriodError> {
        let syntax = || PeriodError::Syntax(text.to_owned());
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, suffix) = text.split_at_checked(digits).ok_or_else(syntax)?;
        let unit = match suffix {
            "h" => Unit::Hours,
            "d" => Unit::Days,
            "w" => Unit::Weeks,
            "mo" => Unit::Months,
            _ => return Err(syntax()),
        };
        if number.is_empty() || number.len() > 9 {
            return Err(syntax());
        }
        let amount: u32 = number.parse().map_err(|_| syntax())?;
        Period::new(amount, unit).ok_or(PeriodError::TooLong {
            text: text.to_owned(),
            max: unit.max(),
            unit: unit.suffix(),
        })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// When something is due relative to its clock start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Due {
    /// A period after the clock start.
    After(Period),
    /// The due date CISA set in the KEV catalogue for this CVE (BOD 22-01; FedRAMP's KEV
    /// rule). Only meaningful for vulnerabilities in the catalogue.
    KevDueDate,
    /// No deadline (`none`): BOD 26-04's "fix on system upgrade", PCI DSS's non-critical
    /// patches, whose time frame the entity sets itself.
    Never,
}

impl FromStr for Due {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Due, PeriodError> {
        match text {
            "none" => Ok(Due::Never),
            "kev_due_date" => Ok(Due::KevDueDate),
            _ => text.parse().map(Due::After).map_err(|e| match e {
                PeriodError::Syntax(t) => PeriodError::DueSyntax(t),
                other => other,
            }),
        }
    }
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Due::After(p) => p.fmt(f),
            Due::KevDueDate => f.write_str("kev_due_date"),
            Due::Never => f.write_str("none"),
        }
    }
}

impl Serialize for Due {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Due {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Due, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn periods_parse_and_print_back() {
        for text in ["8h", "30d", "2w", "1mo", "0h", "36500d"] {
            let p: Period = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        for bad in [
            "",
            "h",
            "8",
            "8 h",
            "8H",
            "-1d",
            "1.5d",
            "1m",
            "1y",
            "99999999999d",
            "36501d",
            "d8",
            "8hh",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn months_are_calendar_months_in_utc() {
        let p: Period = "1mo".parse().unwrap();
        assert_eq!(
            p.after(ts("2025-01-31T10:00:00Z")),
            Some(ts("2025-02-28T10:00:00Z"))
        );
        assert_eq!(
            p.after(ts("2024-01-31T10:00:00Z")),
            Some(ts("2024-02-29T10:00:00Z"))
        );
        let d: Period = "30d".parse().unwrap();
        assert_eq!(
            d.after(ts("2025-03-01T00:00:00Z")),
            Some(ts("2025-03-31T00:00:00Z"))
        );
    }

    #[test]
    fn due_words() {
        assert_eq!("none".parse::<Due>(), Ok(Due::Never));
        assert_eq!("kev_due_date".parse::<Due>(), Ok(Due::KevDueDate));
        assert!("kev".parse::<Due>().is_err());
    }

    #[test]
    fn the_largest_period_from_the_latest_real_date_is_still_representable() {
        let p: Period = "1200mo".parse().unwrap();
        assert!(p.after(ts("2500-01-01T00:00:00Z")).is_some());
    }
}
