//! When a change may touch a host: maintenance windows as RFC 5545 recurrence rules in the
//! window's own time zone, change freezes, and the answers the change process needs — is this
//! moment inside a window or a freeze ([`Calendar::moment`], which feeds
//! [`crate::change::Moment`]), when is the next time a change may run
//! ([`Calendar::next_opportunity`]), and will a finding be patched before it is due
//! ([`Calendar::meets`]).
//!
//! Windows are written as people write them in calendars — "the second Tuesday of the month
//! at 20:00 Europe/London for 4 hours" is `FREQ=MONTHLY;BYDAY=2TU` starting at a local
//! `20:00` — and are computed in local time, so a window stays at 20:00 across a daylight
//! saving change. A local time that does not exist (the spring-forward gap) moves forward by
//! the gap, and one that happens twice (fall back) is the first, as RFC 5545 §3.3.5 says.
//!
//! The recurrence rules understood are the ones maintenance schedules use: `FREQ` `DAILY`,
//! `WEEKLY` or `MONTHLY`, `INTERVAL`, `BYDAY` (with an ordinal such as `2TU` or `-1FR` for
//! monthly rules), `BYMONTHDAY` (negative counts from the month's end), `BYHOUR`, `BYMINUTE`,
//! `COUNT`, `UNTIL` and `WKST`. Anything else is refused by name rather than ignored, because a
//! rule read differently from the way its author meant it opens a window at the wrong time.
//!
//! Pure: the time zone arrives as a value (the server reads it from the system's database),
//! and `now` is a parameter.

pub mod ics;

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// How a rule repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
}

/// A `BYDAY` entry: a weekday, and for a monthly rule which one of the month (`2TU` is the
/// second Tuesday, `-1FR` the last Friday; none means every one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByDay {
    pub nth: Option<i8>,
    pub weekday: u8,
}

/// A parsed recurrence rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub freq: Frequency,
    pub interval: u32,
    pub by_day: Vec<ByDay>,
    pub by_month_day: Vec<i8>,
    pub by_hour: Vec<i8>,
    pub by_minute: Vec<i8>,
    pub count: Option<u32>,
    /// The last start allowed (inclusive).
    pub until: Option<Timestamp>,
    /// The first day of a week (default Monday), for weekly rules with an interval.
    pub week_start: u8,
}

/// Why a rule or a window cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("recurrence rule: {0}")]
    Rule(String),
    #[error("maintenance window: {0}")]
    Window(String),
    #[error("change freeze: {0}")]
    Freeze(String),
}

const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

fn weekday_index(w: Weekday) -> u8 {
    // Monday 0 … Sunday 6, as WEEKDAYS lists them.
    (w.to_monday_zero_offset()) as u8
}

fn rule_err(s: impl Into<String>) -> CalendarError {
    CalendarError::Rule(s.into())
}

fn parse_list<T>(
    name: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, CalendarError> {
    let mut out = Vec::new();
    for part in value.split(',') {
        out.push(parse(part).ok_or_else(|| rule_err(format!("{name}: cannot read {part:?}")))?);
    }
    if out.len() > 64 {
        return Err(rule_err(format!("{name}: more than 64 values")));
    }
    Ok(out)
}

impl std::str::FromStr for Rule {
    type Err = CalendarError;

    /// An `RRULE` value, with or without the `RRULE:` prefix.
    fn from_str(text: &str) -> Result<Rule, CalendarError> {
        if text.len() > 1024 {
            return Err(rule_err("longer than 1024 characters"));
        }
        let text = text.trim();
        let text = text.strip_prefix("RRULE:").unwrap_or(text);
        let mut freq = None;
        let mut rule = Rule {
            freq: Frequency::Daily,
            interval: 1,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            count: None,
            until: None,
            week_start: 0,
        };
        let mut seen = BTreeSet::new();
        for part in text.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| rule_err(format!("{part:?} is not NAME=VALUE")))?;
            let name = name.to_ascii_uppercase();
            if !seen.insert(name.clone()) {
                return Err(rule_err(format!("{name} appears twice")));
            }
            let value = value.to_ascii_uppercase();
            match name.as_str() {
                "FREQ" => {
                    freq = Some(match value.as_str() {
                        "DAILY" => Frequency::Daily,
                        "WEEKLY" => Frequency::Weekly,
                        "MONTHLY" => Frequency::Monthly,
                        other => {
                            return Err(rule_err(format!(
                                "FREQ={other} is not supported for maintenance windows \
                                 (DAILY, WEEKLY or MONTHLY)"
                            )));
                        }
                    });
                }
                "INTERVAL" => {
                    rule.interval = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| rule_err(format!("INTERVAL={value}: 1 to 1000")))?;
                }
                "COUNT" => {
                    rule.count = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=100_000).contains(n))
                            .ok_or_else(|| rule_err(format!("COUNT={value}: 1 to 100000")))?,
                    );
                }
                "UNTIL" => rule.until = Some(parse_until(&value)?),
                "WKST" => {
                    rule.week_start =
                        WEEKDAYS.iter().position(|d| *d == value).ok_or_else(|| {
                            rule_err(format!("WKST={value}: a weekday such as MO"))
                        })? as u8;
                }
                "BYDAY" => rule.by_day = parse_list("BYDAY", &value, parse_by_day)?,
                "BYMONTHDAY" => {
                    rule.by_month_day = parse_list("BYMONTHDAY", &value, |v| {
                        v.parse::<i8>()
                            .ok()
                            .filter(|n| *n != 0 && (-31..=31).contains(n))
                    })?;
                }
                "BYHOUR" => {
                    rule.by_hour = parse_list("BYHOUR", &value, |v| {
                        v.parse::<i8>().ok().filter(|n| (0..=23).contains(n))
                    })?;
                }
                "BYMINUTE" => {
                    rule.by_minute = parse_list("BYMINUTE", &value, |v| {
                        v.parse::<i8>().ok().filter(|n| (0..=59).contains(n))
                    })?;
                }
                other => {
                    return Err(rule_err(format!(
                        "{other} is not supported (FREQ, INTERVAL, BYDAY, BYMONTHDAY, BYHOUR, \
                         BYMINUTE, COUNT, UNTIL, WKST)"
                    )));
                }
            }
        }
        rule.freq = freq.ok_or_else(|| rule_err("FREQ is required"))?;
        if rule.count.is_some() && rule.until.is_some() {
            return Err(rule_err("COUNT and UNTIL together (RFC 5545 allows one)"));
        }
        if rule.freq != Frequency::Monthly && rule.by_day.iter().any(|d| d.nth.is_some()) {
            return Err(rule_err(
                "BYDAY with an ordinal (such as 2TU) needs FREQ=MONTHLY",
            ));
        }
        if rule.freq == Frequency::Weekly && !rule.by_month_day.is_empty() {
            return Err(rule_err(
                "BYMONTHDAY with FREQ=WEEKLY (RFC 5545 forbids it)",
            ));
        }
        Ok(rule)
    }
}

fn parse_by_day(v: &str) -> Option<ByDay> {
    let (num, day) = v.split_at(v.len().checked_sub(2)?);
    let weekday = WEEKDAYS.iter().position(|d| *d == day)? as u8;
    let nth = if num.is_empty() {
        None
    } else {
        let n: i8 = num.strip_prefix('+').unwrap_or(num).parse().ok()?;
        if n == 0 || !(-5..=5).contains(&n) {
            return None;
        }
        Some(n)
    };
    Some(ByDay { nth, weekday })
}

fn parse_until(v: &str) -> Result<Timestamp, CalendarError> {
    // 20261231T235959Z (UTC) or a date 20261231 (the end of that day, UTC).
    let bad = || rule_err(format!("UNTIL={v}: a UTC time such as 20261231T235959Z"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (v, None),
    };
    if date.len() != 8 || !digits(date) {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let d = Date::new(
        num(&date[..4])?,
        num(&date[4..6])? as i8,
        num(&date[6..])? as i8,
    )
    .map_err(|_| bad())?;
    let t = match time {
        Some(t) if t.len() == 6 && digits(t) => Time::new(
            num(&t[..2])? as i8,
            num(&t[2..4])? as i8,
            num(&t[4..])? as i8,
            0,
        )
        .map_err(|_| bad())?,
        Some(_) => return Err(bad()),
        None => Time::constant(23, 59, 59, 0),
    };
    d.to_datetime(t)
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

/// A recurring maintenance window: from each start the rule gives, for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// A name people know it by ("web servers, second Tuesday").
    pub name: String,
    pub rule: Rule,
    /// DTSTART: the first start, in the window's local time.
    pub start: DateTime,
    pub tz: TimeZone,
    pub duration: SignedDuration,
}

/// An interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Span {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// The most periods walked to answer one question: a daily rule over 270 years, or a rule
/// whose filters never match (`BYMONTHDAY=31` with `INTERVAL=2` from February) stops here.
const MAX_PERIODS: i64 = 100_000;

impl Window {
    pub fn new(
        name: &str,
        rule: &str,
        start: DateTime,
        tz: TimeZone,
        duration: SignedDuration,
    ) -> Result<Window, CalendarError> {
        let rule: Rule = rule.parse()?;
        if duration <= SignedDuration::ZERO || duration > SignedDuration::from_hours(24 * 7) {
            return Err(CalendarError::Window(format!(
                "{name}: a duration from one minute to 7 days, not {duration:#}"
            )));
        }
        Ok(Window {
            name: name.to_owned(),
            rule,
            start,
            tz,
            duration,
        })
    }

    fn instant(&self, local: DateTime) -> Option<Timestamp> {
        // `compatible`: a time in the spring-forward gap moves forward by the gap, the first
        // of two fall-back times is taken (RFC 5545 §3.3.5).
        self.tz.to_ambiguous_timestamp(local).compatible().ok()
    }

    /// The local starts of period `k` (0 is DTSTART's period), sorted.
    fn period_starts(&self, k: i64) -> Vec<DateTime> {
        let r = &self.rule;
        let step = k.saturating_mul(i64::from(r.interval));
        let first = self.start.date();
        let days: Vec<Date> = match r.freq {
            Frequency::Daily => {
                let Ok(d) = first.checked_add(step.days()) else {
                    return Vec::new();
                };
                let ok_day = r.by_day.is_empty()
                    || r.by_day
                        .iter()
                        .any(|b| b.weekday == weekday_index(d.weekday()));
                let ok_mday = r.by_month_day.is_empty()
                    || r.by_month_day.iter().any(|m| month_day(d, *m) == Some(d));
                if ok_day && ok_mday {
                    vec![d]
                } else {
                    Vec::new()
                }
            }
            Frequency::Weekly => {
                // The week that holds DTSTART, starting on WKST, moved by `step` weeks.
                let back =
                    (i64::from(weekday_index(first.weekday())) + 7 - i64::from(r.week_start)) % 7;
                let Ok(week) = first
                    .checked_sub(back.days())
                    .and_then(|w| w.checked_add((step * 7).days()))
                else {
                    return Vec::new();
                };
                let wanted: Vec<u8> = if r.by_day.is_empty() {
                    vec![weekday_index(first.weekday())]
                } else {
                    r.by_day.iter().map(|b| b.weekday).collect()
                };
                (0..7)
                    .filter_map(|i| week.checked_add(i.days()).ok())
                    .filter(|d| wanted.contains(&weekday_index(d.weekday())))
                    .collect()
            }
            Frequency::Monthly => {
                let Ok(month) = first.first_of_month().checked_add(step.months()) else {
                    return Vec::new();
                };
                let mut days = BTreeSet::new();
                for m in &r.by_month_day {
                    days.extend(month_day(month, *m));
                }
                for b in &r.by_day {
                    days.extend(month_weekdays(month, *b));
                }
                if r.by_day.is_empty() && r.by_month_day.is_empty() {
                    // DTSTART's day of the month; a month without it has no occurrence.
                    days.extend(month_day(month, first.day()));
                } else if !r.by_day.is_empty() && !r.by_month_day.is_empty() {
                    // Both given: a day must satisfy both (RFC 5545 limits each other).
                    let by_md: BTreeSet<Date> = r
                        .by_month_day
                        .iter()
                        .filter_map(|m| month_day(month, *m))
                        .collect();
                    days.retain(|d| {
                        by_md.contains(d)
                            && r.by_day
                                .iter()
                                .any(|b| month_weekdays(month, *b).contains(d))
                    });
                }
                days.into_iter().collect()
            }
        };
        let hours: Vec<i8> = if r.by_hour.is_empty() {
            vec![self.start.hour()]
        } else {
            r.by_hour.clone()
        };
        let minutes: Vec<i8> = if r.by_minute.is_empty() {
            vec![self.start.minute()]
        } else {
            r.by_minute.clone()
        };
        let mut out = Vec::new();
        for d in days {
            for h in &hours {
                for m in &minutes {
                    if let Ok(t) = Time::new(*h, *m, self.start.second(), 0) {
                        out.push(d.to_datetime(t));
                    }
                }
            }
        }
        out.sort();
        out.retain(|dt| *dt >= self.start);
        out
    }

    /// The period in which to start looking for windows that may hold `t`: with a count, from
    /// the first (occurrences must be counted); otherwise a period or two before `t`.
    fn first_period_for(&self, t: Timestamp) -> i64 {
        if self.rule.count.is_some() {
            return 0;
        }
        let Ok(local) = t
            .checked_sub(self.duration)
            .map(|t| t.to_zoned(self.tz.clone()).datetime())
        else {
            return 0;
        };
        let interval = i64::from(self.rule.interval);
        let elapsed = match self.rule.freq {
            Frequency::Daily => (local.date() - self.start.date()).get_days().into(),
            Frequency::Weekly => i64::from((local.date() - self.start.date()).get_days()) / 7,
            Frequency::Monthly => {
                (i64::from(local.year()) - i64::from(self.start.year())) * 12
                    + i64::from(local.month())
                    - i64::from(self.start.month())
            }
        };
        // Days are not always 24 hours and weeks may start before DTSTART's weekday: begin
        // two periods early, which the walk then passes in a step or two.
        (elapsed / interval - 2).max(0)
    }

    /// The occurrences whose end is after `after`, in order, as long as `keep` says so.
    fn walk(&self, after: Timestamp, mut keep: impl FnMut(Span) -> bool) {
        let mut counted = 0_u32;
        let first = self.first_period_for(after);
        for k in first..first.saturating_add(MAX_PERIODS) {
            for local in self.period_starts(k) {
                let Some(start) = self.instant(local) else {
                    continue;
                };
                if let Some(until) = self.rule.until
                    && start > until
                {
                    return;
                }
                counted += 1;
                if let Some(count) = self.rule.count
                    && counted > count
                {
                    return;
                }
                let Ok(end) = start.checked_add(self.duration) else {
                    return;
                };
                if end <= after {
                    continue;
                }
                if !keep(Span { start, end }) {
                    return;
                }
            }
        }
    }

    /// The occurrence holding `t`, if any.
    pub fn open_at(&self, t: Timestamp) -> Option<Span> {
        let mut found = None;
        self.walk(t, |s| {
            if s.contains(t) {
                found = Some(s);
            }
            s.start <= t && found.is_none()
        });
        found
    }

    /// The first occurrence that ends after `t` (the one open at `t`, or the next).
    pub fn next_after(&self, t: Timestamp) -> Option<Span> {
        let mut found = None;
        self.walk(t, |s| {
            found = Some(s);
            false
        });
        found
    }
}

/// The day `m` of `month` (negative: from its end), if the month has it.
fn month_day(month: Date, m: i8) -> Option<Date> {
    let first = month.first_of_month();
    let last = month.last_of_month();
    if m > 0 {
        (m <= last.day()).then(|| first.with().day(m).build().ok())?
    } else {
        let d = last.day() + 1 + m;
        (d >= 1).then(|| first.with().day(d).build().ok())?
    }
}

/// The days of `month` that a `BYDAY` entry names.
fn month_weekdays(month: Date, b: ByDay) -> Vec<Date> {
    let first = month.first_of_month();
    let all: Vec<Date> = (0..31)
        .filter_map(|i| first.checked_add((i as i64).days()).ok())
        .filter(|d| d.month() == first.month() && weekday_index(d.weekday()) == b.weekday)
        .collect();
    match b.nth {
        None => all,
        Some(n) if n > 0 => all.get(n as usize - 1).copied().into_iter().collect(),
        Some(n) => all
            .len()
            .checked_sub(n.unsigned_abs() as usize)
            .and_then(|i| all.get(i))
            .copied()
            .into_iter()
            .collect(),
    }
}

/// A schedule template relative to an anchor (seed 001 step 9: "sync on the second Tuesday at
/// 20:00; the test ring the next day; the broad rings seven days after the test ring
/// verified"): the anchor recurs by its rule, the test ring may start `test_after` the
/// anchor, and the broad rings wait `broad_after_test` after the test ring verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    /// The anchor's recurrence (its duration does not matter: only its starts do).
    pub anchor: Window,
    pub test_after: SignedDuration,
    pub broad_after_test: SignedDuration,
}

/// What a template says for a change ready at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplatePlan {
    /// The first anchor from which the change can follow the template.
    pub anchor: Timestamp,
    /// The test ring starts no earlier than this.
    pub test_not_before: Timestamp,
    /// How long the test ring soaks before the broad rings.
    pub broad_after_test: SignedDuration,
}

impl Template {
    pub fn new(
        name: &str,
        anchor: Window,
        test_after: SignedDuration,
        broad_after_test: SignedDuration,
    ) -> Result<Template, CalendarError> {
        let week = SignedDuration::from_hours(24 * 7);
        if test_after.is_negative()
            || broad_after_test.is_negative()
            || test_after > week * 5
            || broad_after_test > week * 13
        {
            return Err(CalendarError::Window(format!(
                "{name}: the offsets are at most 5 weeks to the test ring and 13 weeks to the \
                 broad rings, and never negative"
            )));
        }
        Ok(Template {
            name: name.to_owned(),
            anchor,
            test_after,
            broad_after_test,
        })
    }

    /// The plan for a change ready at `ready`: the first anchor whose test time is not
    /// before `ready`. `None` when the anchor's rule has no further start.
    pub fn plan(&self, ready: Timestamp) -> Option<TemplatePlan> {
        let mut from = ready.checked_sub(self.test_after).unwrap_or(ready);
        for _ in 0..MAX_OPPORTUNITIES {
            let anchor = self.anchor.next_after(from)?.start;
            if anchor < from {
                // `next_after` returns the occurrence open at `from`; take the next start.
                from = anchor
                    .checked_add(self.anchor.duration)
                    .unwrap_or(Timestamp::MAX);
                continue;
            }
            let test_not_before = anchor.checked_add(self.test_after).ok()?;
            if test_not_before >= ready {
                return Some(TemplatePlan {
                    anchor,
                    test_not_before,
                    broad_after_test: self.broad_after_test,
                });
            }
            from = anchor
                .checked_add(self.anchor.duration)
                .unwrap_or(Timestamp::MAX);
        }
        None
    }
}

/// A change freeze: no change but an emergency touches hosts in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub name: String,
    pub span: Span,
}

impl Freeze {
    pub fn new(name: &str, start: Timestamp, end: Timestamp) -> Result<Freeze, CalendarError> {
        if end <= start {
            return Err(CalendarError::Freeze(format!(
                "{name}: ends before it starts"
            )));
        }
        Ok(Freeze {
            name: name.to_owned(),
            span: Span { start, end },
        })
    }
}

/// The windows of a group of hosts and the freezes that apply to them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
}

/// The most windows looked at for one answer: enough for years of weekly windows.
const MAX_OPPORTUNITIES: usize = 2_000;

impl Calendar {
    /// Whether `now` is inside a window and inside a freeze, for the change's rules.
    pub fn moment(&self, now: Timestamp) -> crate::change::Moment {
        crate::change::Moment {
            now,
            in_window: self.windows.iter().any(|w| w.open_at(now).is_some()),
            in_freeze: self.freezes.iter().any(|f| f.span.contains(now)),
        }
    }

    /// The next time from `after` on when a change may touch these hosts, and until when: an
    /// emergency at once; any other change in the first part of a window that no freeze
    /// covers. `None` when no window opens within the search (no windows at all, or a freeze
    /// that never ends).
    pub fn next_opportunity(&self, after: Timestamp, emergency: bool) -> Option<Span> {
        if emergency {
            return Some(Span {
                start: after,
                end: Timestamp::MAX,
            });
        }
        let mut t = after;
        for _ in 0..MAX_OPPORTUNITIES {
            let window = self
                .windows
                .iter()
                .filter_map(|w| w.next_after(t))
                .min_by_key(|s| s.start)?;
            let start = window.start.max(t);
            // Cut the window where a freeze starts, or skip past a freeze it starts in.
            if let Some(f) = self.freezes.iter().find(|f| f.span.contains(start)) {
                t = f.span.end;
                continue;
            }
            let end = self
                .freezes
                .iter()
                .filter(|f| f.span.start > start && f.span.start < window.end)
                .map(|f| f.span.start)
                .min()
                .unwrap_or(window.end);
            return Some(Span { start, end });
        }
        None
    }

    /// Whether a change ready at `ready` can run before `due`: its next opportunity starts
    /// before the deadline. The answer for the warning at scheduling time ("this finding will
    /// breach before the next window").
    pub fn meets(&self, ready: Timestamp, due: Timestamp, emergency: bool) -> bool {
        self.next_opportunity(ready, emergency)
            .is_some_and(|s| s.start < due)
    }
}

#[cfg(test)]
mod tests;
