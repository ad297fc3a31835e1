//! The calendar page: maintenance windows, change freezes and schedule templates, as a month
//! (each day with the windows open and the freezes in force, in UTC) and as a list with each
//! entry's rule and next openings; the forms that add and remove entries for the calendar's
//! keepers (`access::CALENDAR_KEEPERS`), through the same functions as the JSON API
//! (`changes::put_calendar_entry`, `changes::delete_calendar_entry`). The iCalendar feed of
//! the same entries is `/calendar.ics`.

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use patchwarden_api::v1::changes::{CalendarSpec, FreezeSpec, TemplateSpec, WindowSpec};
use serde::Deserialize;

use super::{Chrome, PageResult, inline_refusal, render_status, see_other, when};
use crate::access::{Access, CALENDAR_KEEPERS, Caller, EVERYONE};
use crate::changes;
use crate::clock;
use crate::error::ApiError;
use crate::routes::Routes;
use crate::state::AppState;

/// A calendar entry's form: a few short fields.
const CALENDAR_FORM: u64 = 8 * 1024;
/// The most openings of one window a month shows (a window every hour is 744).
const MAX_PER_MONTH: usize = 800;

/// Declares the calendar pages.
pub(crate) fn declare(routes: Routes) -> Routes {
    routes
        .page(Access::Roles(EVERYONE), Method::GET, "/calendar", get(show))
        .page(
            Access::Roles(CALENDAR_KEEPERS),
            Method::POST,
            "/calendar",
            post(put),
        )
        .page(
            Access::Roles(CALENDAR_KEEPERS),
            Method::POST,
            "/calendar/{name}/delete",
            post(delete),
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarQuery {
    /// `2026-11`; the current month when absent.
    month: Option<String>,
}

/// One entry in the list.
struct Entry {
    name: String,
    kind: &'static str,
    rule: String,
    next: Vec<String>,
    updated: String,
}

/// What a day of the month shows.
struct Day {
    /// 0 for the padding before the first day and after the last.
    number: i8,
    today: bool,
    items: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "calendar.html")]
struct CalendarPage {
    chrome: Chrome,
    month: String,
    prev: String,
    next: String,
    weeks: Vec<Vec<Day>>,
    entries: Vec<Entry>,
    may_edit: bool,
    error: Option<String>,
    /// The form's fields as typed, when it was refused.
    typed: Typed,
}

#[derive(Debug, Default, Clone)]
struct Typed {
    kind: String,
    name: String,
}

fn first_of(month: &str) -> Result<Date, ApiError> {
    let bad = || ApiError::InvalidParameter(format!("month {month:?}: like 2026-11"));
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let y: i16 = y.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    Date::new(y, m, 1).map_err(|_| bad())
}

fn midnight(d: Date) -> Result<Timestamp, ApiError> {
    d.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))
}

fn hhmm(t: Timestamp) -> String {
    t.strftime("%H:%M").to_string()
}

/// The month's days, Monday first, each with the windows that open and the freezes in force.
fn month_grid(
    first: Date,
    entries: &[(String, CalendarSpec)],
    today: Date,
) -> Result<Vec<Vec<Day>>, ApiError> {
    let days = first.days_in_month();
    let start = midnight(first)?;
    let end = midnight(
        first
            .last_of_month()
            .tomorrow()
            .map_err(|e| ApiError::InvalidParameter(e.to_string()))?,
    )?;
    let mut per_day: Vec<Vec<(&'static str, String)>> = vec![Vec::new(); days as usize];
    let day_of = |t: Timestamp| -> usize { (t.to_zoned(TimeZone::UTC).day() - 1) as usize };
    for (name, spec) in entries {
        match spec {
            CalendarSpec::Window(w) => {
                let Ok(win) = changes::window(name, w) else {
                    continue;
                };
                let mut t = start;
                let mut spans = Vec::new();
                if let Some(open) = win.open_at(start) {
                    spans.push(open);
                    t = open.end;
                }
                while spans.len() < MAX_PER_MONTH {
                    match win.next_after(t) {
                        Some(s) if s.start < end => {
                            t = s.end;
                            spans.push(s);
                        }
                        _ => break,
                    }
                }
                for s in spans {
                    let shown = s.start.max(start);
                    per_day[day_of(shown)].push((
                        "window",
                        format!("{name} {}–{}", hhmm(s.start), hhmm(s.end)),
                    ));
                }
            }
            CalendarSpec::Freeze(f) => {
                if f.end <= start || f.start >= end {
                    continue;
                }
                let from = day_of(f.start.max(start));
                let last = f.end.min(end);
                // The freeze's last instant, so a freeze ending at midnight leaves that day.
                let to = day_of(last.checked_sub(1.second()).unwrap_or(last).max(start));
                for d in per_day.iter_mut().take(to + 1).skip(from) {
                    d.push(("freeze", format!("{name} (freeze)")));
                }
            }
            CalendarSpec::Template(_) => {}
        }
    }
    let mut weeks = Vec::new();
    let mut week: Vec<Day> = Vec::new();
    let lead = first.weekday().to_monday_zero_offset();
    for _ in 0..lead {
        week.push(Day {
            number: 0,
            today: false,
            items: Vec::new(),
        });
    }
    for (i, items) in per_day.into_iter().enumerate() {
        let number = i8::try_from(i + 1).unwrap_or(0);
        week.push(Day {
            number,
            today: first.year() == today.year()
                && first.month() == today.month()
                && today.day() == number,
            items,
        });
        if week.len() == 7 {
            weeks.push(std::mem::take(&mut week));
        }
    }
    if !week.is_empty() {
        while week.len() < 7 {
            week.push(Day {
                number: 0,
                today: false,
                items: Vec::new(),
            });
        }
        weeks.push(week);
    }
    Ok(weeks)
}

fn entry_of(v: &patchwarden_api::v1::changes::CalendarEntryView) -> Entry {
    let (kind, rule) = match &v.spec {
        CalendarSpec::Window(w) => (
            "window",
            format!(
                "{} from {} ({}), {} min{}",
                w.rrule,
                w.start,
                w.time_zone,
                w.duration_minutes,
                if w.groups.is_empty() {
                    ", all hosts".to_owned()
                } else {
                    format!(", groups {}", w.groups.join(", "))
                }
            ),
        ),
        CalendarSpec::Freeze(f) => (
            "freeze",
            format!(
                "{} – {}{}",
                when(f.start),
                when(f.end),
                if f.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", f.reason)
                }
            ),
        ),
        CalendarSpec::Template(t) => (
            "template",
            format!(
                "{} from {} ({}); test ring {} h after, broad rings {} day(s) after the test",
                t.rrule, t.start, t.time_zone, t.test_after_hours, t.broad_after_test_days
            ),
        ),
    };
    Entry {
        name: v.name.clone(),
        kind,
        rule,
        next: v
            .next
            .iter()
            .map(|(a, b)| match kind {
                "template" => format!("anchor {}, test from {}", when(*a), when(*b)),
                _ => format!("{} – {}", when(*a), when(*b)),
            })
            .collect(),
        updated: when(v.updated_at),
    }
}

async fn page(
    state: &AppState,
    caller: &Caller,
    month: Option<String>,
    status: StatusCode,
    error: Option<String>,
    typed: Typed,
) -> PageResult {
    let now = clock::now();
    let today = now.to_zoned(TimeZone::UTC).date();
    let first = match month {
        Some(m) => first_of(&m)?,
        None => today.first_of_month(),
    };
    let views = changes::calendar_entries(state, now).await?;
    let specs: Vec<(String, CalendarSpec)> = views
        .iter()
        .map(|v| (v.name.clone(), v.spec.clone()))
        .collect();
    let weeks = month_grid(first, &specs, today)?;
    let shift = |months: i32| {
        first
            .checked_add(months.months())
            .map(|d| d.strftime("%Y-%m").to_string())
            .unwrap_or_default()
    };
    let chrome = Chrome::new(caller, "calendar");
    Ok(render_status(
        status,
        &CalendarPage {
            month: first.strftime("%B %Y").to_string(),
            prev: shift(-1),
            next: shift(1),
            weeks,
            entries: views.iter().map(entry_of).collect(),
            may_edit: chrome.can(CALENDAR_KEEPERS),
            error,
            typed,
            chrome,
        },
    ))
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<CalendarQuery>, QueryRejection>,
) -> PageResult {
    let q = crate::routes::fleet::query(q)?;
    let month = q.month.filter(|m| !m.trim().is_empty());
    page(
        &state,
        &caller,
        month,
        StatusCode::OK,
        None,
        Typed::default(),
    )
    .await
}

/// The forms' fields; which ones count depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryForm {
    #[serde(default)]
    #[allow(dead_code)] // checked by the access middleware, named here so it is known
    csrf_token: Option<String>,
    kind: String,
    name: String,
    #[serde(default)]
    rrule: String,
    /// A window's or template's first start, local time (`2026-01-13T20:00`), or a freeze's
    /// start (UTC).
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    duration_minutes: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    test_after_hours: String,
    #[serde(default)]
    broad_after_test_days: String,
}

fn whole(field: &str, s: &str) -> Result<u32, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::MalformedBody(format!("the {field} {s:?} is not a whole number")))
}

/// A time typed in a form: RFC 3339, or `2026-12-20T00:00` read as UTC.
fn utc(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            ApiError::MalformedBody(format!(
                "the {field} {s:?}: a date and time like 2026-12-20T00:00 (UTC)"
            ))
        })
}

fn spec_of(f: &EntryForm) -> Result<CalendarSpec, ApiError> {
    Ok(match f.kind.as_str() {
        "window" => CalendarSpec::Window(WindowSpec {
            rrule: f.rrule.trim().to_owned(),
            start: f.start.trim().to_owned(),
            time_zone: f.time_zone.trim().to_owned(),
            duration_minutes: whole("duration", &f.duration_minutes)?,
            groups: f
                .groups
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        }),
        "freeze" => CalendarSpec::Freeze(FreezeSpec {
            start: utc("start", &f.start)?,
            end: utc("end", &f.end)?,
            reason: f.reason.trim().to_owned(),
        }),
        "template" => CalendarSpec::Template(TemplateSpec {
            rrule: f.rrule.trim().to_owned(),
            start: f.start.trim().to_owned(),
            time_zone: f.time_zone.trim().to_owned(),
            test_after_hours: whole("test delay", &f.test_after_hours)?,
            broad_after_test_days: whole("broad delay", &f.broad_after_test_days)?,
        }),
        other => {
            return Err(ApiError::MalformedBody(format!(
                "kind {other:?}: window, freeze or template"
            )));
        }
    })
}

pub(crate) async fn put(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Body,
) -> PageResult {
    let f: EntryForm = super::form(body, CALENDAR_FORM).await?;
    let name = f.name.trim().to_owned();
    let done = async {
        changes::check_entry_name(&name)?;
        let spec = spec_of(&f)?;
        changes::put_calendar_entry(&state, &caller, &name, spec, clock::now()).await
    }
    .await;
    match done {
        Ok(_) => Ok(see_other("/calendar")),
        Err(e) => {
            let (status, why) = inline_refusal(e)?;
            let typed = Typed {
                kind: f.kind.clone(),
                name,
            };
            page(&state, &caller, None, status, Some(why), typed).await
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteForm {
    #[serde(default)]
    #[allow(dead_code)] // checked by the access middleware
    csrf_token: Option<String>,
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> PageResult {
    let Path(name) = path.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let _: DeleteForm = super::form(body, CALENDAR_FORM).await?;
    changes::check_entry_name(&name)?;
    changes::delete_calendar_entry(&state, &caller, &name, clock::now()).await?;
    Ok(see_other("/calendar"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_shows_each_opening_of_a_window_and_each_day_of_a_freeze() {
        let entries = vec![
            (
                "patch-tuesday".to_owned(),
                CalendarSpec::Window(WindowSpec {
                    rrule: "FREQ=MONTHLY;BYDAY=2TU".into(),
                    start: "2026-01-13T20:00".into(),
                    time_zone: "UTC".into(),
                    duration_minutes: 240,
                    groups: Vec::new(),
                }),
            ),
            (
                "year-end".to_owned(),
                CalendarSpec::Freeze(FreezeSpec {
                    start: "2026-12-20T00:00:00Z".parse().unwrap(),
                    end: "2027-01-03T00:00:00Z".parse().unwrap(),
                    reason: "year end".into(),
                }),
            ),
        ];
        let first = first_of("2026-12").unwrap();
        let weeks = month_grid(first, &entries, Date::constant(2026, 12, 1)).unwrap();
        let days: Vec<&Day> = weeks.iter().flatten().filter(|d| d.number > 0).collect();
        assert_eq!(days.len(), 31);
        // 1 December 2026 is a Tuesday: one day of padding before it.
        assert_eq!(weeks[0][0].number, 0);
        assert_eq!(weeks[0][1].number, 1);
        assert!(weeks[0][1].today);
        // The second Tuesday is the 8th.
        assert_eq!(
            days[7].items,
            vec![("window", "patch-tuesday 20:00–00:00".to_owned())]
        );
        let frozen: Vec<i8> = days
            .iter()
            .filter(|d| d.items.iter().any(|(k, _)| *k == "freeze"))
            .map(|d| d.number)
            .collect();
        assert_eq!(frozen, (20..=31).collect::<Vec<i8>>());
        for bad in ["2026", "2026-13", "x-1", "0001-01"] {
            assert!(first_of(bad).is_err(), "{bad}");
        }
    }
}
