//! Numeric thresholds as policy files write them: `">=7.0"`, `"<4.0"`, `">=4.0, <7.0"`.
//!
//! A threshold is an interval: each comma-separated part narrows it. Keeping it as an interval
//! (rather than a list of comparisons) lets the file checker see at once that `>=7.0, <4.0`, or
//! `cvss = ">=9.0"` together with `cvss = "<7.0"` in one `all`, can never hold.

use std::fmt;

use serde::{Serialize, Serializer};

/// One end of an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    value: f64,
    inclusive: bool,
}

/// An interval of numbers, open or closed at each end, possibly unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    low: Option<Bound>,
    high: Option<Bound>,
    /// The text as written, for explanations.
    text: String,
}

impl Threshold {
    /// Parses `text` for a quantity whose values lie in `min..=max` (0–10 for CVSS, 0–1 for
    /// EPSS). Values outside that range, unknown operators and empty intervals are errors.
    pub fn parse(text: &str, min: f64, max: f64) -> Result<Threshold, String> {
        let mut t = Threshold {
            low: None,
            high: None,
            text: text.trim().to_owned(),
        };
        if t.text.is_empty() {
            return Err("an empty threshold: write a comparison such as \">=7.0\"".into());
        }
        for part in text.split(',') {
            let part = part.trim();
            let (op, number) = ["<=", ">=", "==", "<", ">", "="]
                .iter()
                .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest.trim())))
                .ok_or_else(|| {
                    format!(
                        "`{part}` does not start with a comparison (>=, >, <=, <, =), as in \
                         \">=7.0\""
                    )
                })?;
            let value: f64 = number
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| format!("`{number}` in `{part}` is not a number"))?;
            if !(min..=max).contains(&value) {
                return Err(format!("{value} in `{part}` is outside {min}–{max}"));
            }
            let bound = |inclusive| Bound { value, inclusive };
            match op {
                ">=" => t.raise(bound(true)),
                ">" => t.raise(bound(false)),
                "<=" => t.lower(bound(true)),
                "<" => t.lower(bound(false)),
                _ => {
                    t.raise(bound(true));
                    t.lower(bound(true));
                }
            }
        }
        if t.is_empty() {
            return Err(format!(
                "`{}` can never hold: no number satisfies it",
                t.text
            ));
        }
        Ok(t)
    }

    /// Narrows the lower end.
    fn raise(&mut self, b: Bound) {
        self.low = Some(match self.low {
            Some(old) if old.value > b.value || (old.value == b.value && !old.inclusive) => old,
            _ => b,
        });
    }

    /// Narrows the upper end.
    fn lower(&mut self, b: Bound) {
        self.high = Some(match self.high {
            Some(old) if old.value < b.value || (old.value == b.value && !old.inclusive) => old,
            _ => b,
        });
    }

    pub fn contains(&self, x: f64) -> bool {
        let above = self
            .low
            .is_none_or(|b| x > b.value || (b.inclusive && x == b.value));
        let below = self
            .high
            .is_none_or(|b| x < b.value || (b.inclusive && x == b.value));
        above && below
    }

    /// Whether no number lies in the interval.
    pub fn is_empty(&self) -> bool {
        match (self.low, self.high) {
            (Some(l), Some(h)) => {
                l.value > h.value || (l.value == h.value && !(l.inclusive && h.inclusive))
            }
            _ => false,
        }
    }

    /// The numbers in both intervals.
    pub fn intersect(&self, other: &Threshold) -> Threshold {
        let mut t = self.clone();
        if let Some(b) = other.low {
            t.raise(b);
        }
        if let Some(b) = other.high {
            t.lower(b);
        }
        t.text = format!("{}, {}", self.text, other.text);
        t
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cvss(text: &str) -> Result<Threshold, String> {
        Threshold::parse(text, 0.0, 10.0)
    }

    #[test]
    fn bands_include_and_exclude_their_ends() {
        let band = cvss(">=4.0, <7.0").unwrap();
        assert!(!band.contains(3.9));
        assert!(band.contains(4.0));
        assert!(band.contains(6.9));
        assert!(!band.contains(7.0));
        let eq = cvss("=10").unwrap();
        assert!(eq.contains(10.0) && !eq.contains(9.9));
        // Scores are kept in tenths and turned into floats by the same correctly rounded
        // division, so a written 6.9 equals a computed 6.9.
        assert!(cvss("<=6.9").unwrap().contains(f64::from(69u8) / 10.0));
    }

    #[test]
    fn impossible_and_malformed_thresholds_are_refused() {
        for bad in [
            "",
            ">=7.0, <4.0",
            ">5, <5",
            "7.0",
            "~7",
            ">=seven",
            ">=11",
            ">=-1",
            ">=NaN",
            ">=inf",
            ">=7,",
        ] {
            assert!(cvss(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intersections_can_be_empty() {
        let a = cvss(">=9.0").unwrap();
        let b = cvss("<7.0").unwrap();
        assert!(a.intersect(&b).is_empty());
        assert!(!a.intersect(&cvss("<=9.0").unwrap()).is_empty());
    }
}
