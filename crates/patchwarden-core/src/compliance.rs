//! Compliance as the dashboard shows it: the open findings now, counted by class and by their
//! standing against the due date (on time, due soon, breached, excepted), and the trend of the
//! last months, computed from each finding's first-seen, closed and due times as they stood at
//! each month's end.
//!
//! Pure: the caller reads the findings (and decides each one's standing now with
//! [`crate::exception::standing`], which knows the exceptions in force); this module only
//! counts, so the numbers a page shows and the ones a report prints cannot disagree on what
//! "breached at the end of March" means.
//!
//! The trend judges each month's end with the finding's class and due date as they are now (a
//! finding reclassified since is counted with its current class), and without exceptions: an
//! exception's history is not part of a finding's times. The text beside the chart says so.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use crate::exception::Standing;
use crate::policy::Class;

/// The classes the dashboard counts, most urgent first (`NotApplicable` never breaches and is
/// left out; findings without a class are counted apart).
pub const CLASSES: [Class; 4] = [Class::Emergency, Class::High, Class::Medium, Class::Low];

/// Counts of open findings by standing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub on_time: u64,
    pub due_soon: u64,
    pub breached: u64,
    pub excepted: u64,
}

impl Counts {
    pub fn add(&mut self, s: Standing) {
        match s {
            Standing::OnTime => self.on_time += 1,
            Standing::DueSoon => self.due_soon += 1,
            Standing::Breached => self.breached += 1,
            Standing::Excepted => self.excepted += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.on_time + self.due_soon + self.breached + self.excepted
    }

    /// The share not breached, in whole percent (100 with nothing open).
    pub fn on_time_percent(&self) -> u64 {
        match self.total() {
            0 => 100,
            t => (t - self.breached) * 100 / t,
        }
    }
}

/// Open findings now, by class and standing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// In the order of [`CLASSES`].
    pub by_class: [Counts; 4],
    /// Findings without a class, or not applicable.
    pub unclassified: Counts,
}

impl Tally {
    /// Counts one open finding of `class` with standing `s`.
    pub fn add(&mut self, class: Option<Class>, s: Standing) {
        match class.and_then(|c| CLASSES.iter().position(|x| *x == c)) {
            Some(i) => self.by_class[i].add(s),
            None => self.unclassified.add(s),
        }
    }

    /// The classified findings' counts summed.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.by_class {
            t.on_time += c.on_time;
            t.due_soon += c.due_soon;
            t.breached += c.breached;
            t.excepted += c.excepted;
        }
        t
    }
}

/// What the trend needs of a finding: when it was first seen, when it closed, when it was due,
/// and its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub class: Option<Class>,
    pub first_seen: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
}

impl Lifetime {
    /// Whether the finding was open at `t`: seen by then and not closed by then.
    pub fn open_at(&self, t: Timestamp) -> bool {
        self.first_seen <= t && self.closed_at.is_none_or(|c| c > t)
    }
}

/// The fleet at one month's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthPoint {
    /// The month (its first day).
    pub month: Date,
    /// The instant judged: the month's last moment, or now for the current month.
    pub at: Timestamp,
    /// Open findings at `at`, by standing (never `excepted`, see the module's notes).
    pub open: Counts,
    /// Of those, the ones of class Emergency or High that were breached.
    pub breached_urgent: u64,
}

/// The ends of the `months` calendar months up to and including the one holding `now` (in
/// `tz`), oldest first; the current month's end is `now` itself.
pub fn month_ends(now: Timestamp, tz: &TimeZone, months: u32) -> Vec<(Date, Timestamp)> {
    let today = now.to_zoned(tz.clone()).date();
    let this_month = today.first_of_month();
    let mut out = Vec::new();
    for back in (0..months).rev() {
        let Ok(first) = this_month.checked_sub(jiff::Span::new().months(i64::from(back))) else {
            continue;
        };
        let at = if back == 0 {
            now
        } else {
            // The next month's first moment, less one nanosecond: the month's last instant.
            match first
                .checked_add(jiff::Span::new().months(1))
                .ok()
                .and_then(|next| next.to_zoned(tz.clone()).ok())
                .and_then(|z| {
                    z.timestamp()
                        .checked_sub(SignedDuration::from_nanos(1))
                        .ok()
                }) {
                Some(t) => t,
                None => continue,
            }
        };
        out.push((first, at));
    }
    out
}

/// The trend: at each of `ends`, the findings open then, judged against their due dates then
/// (`warn_before` ahead counts as due soon).
pub fn trend(
    findings: &[Lifetime],
    ends: &[(Date, Timestamp)],
    warn_before: SignedDuration,
) -> Vec<MonthPoint> {
    ends.iter()
        .map(|&(month, at)| {
            let mut open = Counts::default();
            let mut breached_urgent = 0;
            for f in findings.iter().filter(|f| f.open_at(at)) {
                let s = crate::exception::standing(f.due_at, at, warn_before, &[]);
                open.add(s);
                if s == Standing::Breached
                    && matches!(f.class, Some(Class::Emergency | Class::High))
                {
                    breached_urgent += 1;
                }
            }
            MonthPoint {
                month,
                at,
                open,
                breached_urgent,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("a test timestamp")
    }

    #[test]
    fn the_tally_counts_by_class_and_standing() {
        let mut tally = Tally::default();
        tally.add(Some(Class::Emergency), Standing::Breached);
        tally.add(Some(Class::Emergency), Standing::OnTime);
        tally.add(Some(Class::Low), Standing::DueSoon);
        tally.add(Some(Class::NotApplicable), Standing::OnTime);
        tally.add(None, Standing::OnTime);
        tally.add(Some(Class::High), Standing::Excepted);
        assert_eq!(tally.by_class[0].breached, 1);
        assert_eq!(tally.by_class[0].on_time, 1);
        assert_eq!(tally.by_class[1].excepted, 1);
        assert_eq!(tally.by_class[3].due_soon, 1);
        assert_eq!(tally.unclassified.total(), 2);
        let total = tally.total();
        assert_eq!(total.total(), 4);
        assert_eq!(total.on_time_percent(), 75);
        assert_eq!(Counts::default().on_time_percent(), 100);
    }

    #[test]
    fn month_ends_are_the_last_instants_of_the_months_and_now() {
        let now = t("2026-03-15T10:00:00Z");
        let ends = month_ends(now, &TimeZone::UTC, 3);
        assert_eq!(ends.len(), 3);
        assert_eq!(ends[0].0.to_string(), "2026-01-01");
        assert_eq!(ends[0].1, t("2026-01-31T23:59:59.999999999Z"));
        assert_eq!(ends[1].1, t("2026-02-28T23:59:59.999999999Z"));
        assert_eq!(ends[2], (ends[2].0, now));
        // Across a year's end.
        let ends = month_ends(t("2026-01-02T00:00:00Z"), &TimeZone::UTC, 12);
        assert_eq!(ends.len(), 12);
        assert_eq!(ends[0].0.to_string(), "2025-02-01");
        assert_eq!(ends[10].1, t("2025-12-31T23:59:59.999999999Z"));
    }

    #[test]
    fn the_trend_judges_each_month_end_with_the_findings_times() {
        let week = SignedDuration::from_hours(7 * 24);
        let findings = [
            // Open all along, due mid-February: on time in January, breached after.
            Lifetime {
                class: Some(Class::High),
                first_seen: t("2026-01-10T00:00:00Z"),
                closed_at: None,
                due_at: Some(t("2026-02-15T00:00:00Z")),
            },
            // Seen in January, closed in February: open only at January's end.
            Lifetime {
                class: Some(Class::Low),
                first_seen: t("2026-01-20T00:00:00Z"),
                closed_at: Some(t("2026-02-03T00:00:00Z")),
                due_at: Some(t("2026-02-05T00:00:00Z")),
            },
            // Seen in March, due within a week of now: due soon.
            Lifetime {
                class: Some(Class::Medium),
                first_seen: t("2026-03-01T00:00:00Z"),
                closed_at: None,
                due_at: Some(t("2026-03-18T00:00:00Z")),
            },
        ];
        let ends = month_ends(t("2026-03-15T00:00:00Z"), &TimeZone::UTC, 3);
        let points = trend(&findings, &ends, week);
        assert_eq!(points[0].open.total(), 2);
        assert_eq!(points[0].open.on_time, 1);
        // The Low one is due on 5 February: within a week of 31 January.
        assert_eq!(points[0].open.due_soon, 1);
        assert_eq!(points[1].open.total(), 1);
        assert_eq!(points[1].open.breached, 1);
        assert_eq!(points[1].breached_urgent, 1);
        assert_eq!(points[2].open.total(), 2);
        assert_eq!(points[2].open.breached, 1);
        assert_eq!(points[2].open.due_soon, 1);
        // Closed exactly at the instant judged: no longer open.
        let f = findings[1];
        assert!(!f.open_at(t("2026-02-03T00:00:00Z")));
        assert!(f.open_at(t("2026-02-02T23:59:59Z")));
    }
}
