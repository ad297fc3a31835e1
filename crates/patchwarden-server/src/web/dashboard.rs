//! The dashboard: compliance now (open findings on time, due soon, breached and excepted, by
//! class), the trend of the last 12 months as a chart with its table, the feeds' freshness,
//! the rollouts in flight and the windows ahead.
//!
//! The counting is `patchwarden_core::compliance` (pure, unit-tested); the findings, the
//! exceptions in force, the feeds, the changes and the calendar are read through the same
//! functions the API's handlers use, with the caller's scope.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::changes::CalendarSpec;
use patchwarden_api::v1::exceptions::FindingStanding;
use patchwarden_api::v1::feeds::FeedFreshness;
use patchwarden_core::compliance::{self, CLASSES, Counts, Lifetime, MonthPoint, Tally};
use patchwarden_core::exception::Standing;
use patchwarden_store::change::ChangeFilter;
use patchwarden_store::{FindingFilter, FindingState};

use super::view::{class_words, span, when, when_or};
use super::{Chrome, PageResult, render};
use crate::access::{Caller, Scope};
use crate::changes;
use crate::clock;
use crate::error::ApiError;
use crate::routes::exceptions::{DUE_SOON, InForce};
use crate::routes::{feeds, fleet};
use crate::state::AppState;

/// Findings read at a time.
const BATCH: u32 = 5000;

/// The months of the trend.
const MONTHS: u32 = 12;

fn core_standing(s: FindingStanding) -> Standing {
    match s {
        FindingStanding::OnTime => Standing::OnTime,
        FindingStanding::DueSoon => Standing::DueSoon,
        FindingStanding::Breached => Standing::Breached,
        FindingStanding::Excepted => Standing::Excepted,
    }
}

/// The open findings' tally now and the lifetimes the trend needs (findings open now, or
/// closed within the trend's months), in `scope`.
pub(crate) async fn compliance_now(
    state: &AppState,
    scope: &Scope,
    now: Timestamp,
    since: Timestamp,
) -> Result<(Tally, Vec<Lifetime>), ApiError> {
    let in_force = InForce::load(state, now).await?;
    let allowed = fleet::admitted_hosts(state, scope, None).await?;
    let mut tally = Tally::default();
    let mut lives = Vec::new();
    for which in [FindingState::Open, FindingState::Closed] {
        let mut after = None;
        loop {
            let batch = state
                .store
                .list_findings(&FindingFilter {
                    state: Some(which),
                    after_id: after,
                    limit: Some(BATCH),
                    ..FindingFilter::default()
                })
                .await?;
            after = batch.last().map(|f| f.id);
            let ended = batch.len() < BATCH as usize;
            for f in &batch {
                if allowed.as_ref().is_some_and(|ids| !ids.contains(&f.host)) {
                    continue;
                }
                if which == FindingState::Open
                    && let (Some(s), _) = in_force.mark(f)
                {
                    tally.add(f.classification.class, core_standing(s));
                }
                if f.closed_at.is_some_and(|c| c < since) {
                    continue;
                }
                lives.push(Lifetime {
                    class: f.classification.class,
                    first_seen: f.first_seen,
                    closed_at: f.closed_at,
                    due_at: f.classification.due_at,
                });
            }
            if ended {
                break;
            }
        }
    }
    Ok((tally, lives))
}

struct ClassRow {
    class: &'static str,
    css: &'static str,
    counts: Counts,
}

/// One month's bar of the chart: three stacked parts (on time, due soon, breached).
struct Bar {
    label: String,
    x: u32,
    w: u32,
    /// The middle, where the month's label goes.
    mid: u32,
    /// (y, height) of each part, top to bottom: breached, due soon, on time.
    breached: (u32, u32),
    due_soon: (u32, u32),
    on_time: (u32, u32),
    point: MonthPoint,
}

/// The chart's geometry: a plot `PLOT_H` high, bars `BAR_W` wide every `STEP`.
const PLOT_H: u32 = 200;
const TOP: u32 = 10;
const LEFT: u32 = 50;
const STEP: u32 = 56;
const BAR_W: u32 = 36;

fn bars(points: &[MonthPoint]) -> (Vec<Bar>, u64, Vec<(u32, u64)>) {
    let max = points
        .iter()
        .map(|p| p.open.total())
        .max()
        .unwrap_or(0)
        .max(1);
    // A round scale: 1, 2, 5 × 10^n at or above the largest bar.
    let mut scale = 1u64;
    while scale < max {
        scale = match scale.to_string().chars().next() {
            Some('1') => scale * 2,
            Some('2') => scale / 2 * 5,
            _ => scale * 2,
        };
    }
    let h = |n: u64| u32::try_from(n * u64::from(PLOT_H) / scale).unwrap_or(PLOT_H);
    let out = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = LEFT + 10 + STEP * u32::try_from(i).unwrap_or(0);
            let base = TOP + PLOT_H;
            let ok = h(p.open.on_time);
            let soon = h(p.open.due_soon);
            let bad = h(p.open.breached);
            Bar {
                label: p.month.strftime("%b %y").to_string(),
                x,
                w: BAR_W,
                mid: x + BAR_W / 2,
                on_time: (base - ok, ok),
                due_soon: (base - ok - soon, soon),
                breached: (base.saturating_sub(ok + soon + bad), bad),
                point: *p,
            }
        })
        .collect();
    // Whole-number ticks: the scale is 1, 2 or 5 times a power of ten.
    let steps = [5, 4, 2, 1]
        .into_iter()
        .find(|n| scale.is_multiple_of(*n))
        .unwrap_or(1);
    let ticks = (0..=steps)
        .map(|k| {
            let v = scale * k / steps;
            (TOP + PLOT_H - h(v), v)
        })
        .collect();
    (out, scale, ticks)
}

struct FeedRow {
    name: String,
    kind: String,
    freshness: &'static str,
    css: &'static str,
    last_success: String,
    stale_at: String,
    error: String,
}

struct RolloutRow {
    number: String,
    title: String,
    state: String,
    window: String,
    rings: String,
    halted: String,
}

struct WindowRow {
    name: String,
    kind: &'static str,
    start: String,
    end: String,
    starts_in: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    now: String,
    classes: Vec<ClassRow>,
    total: Counts,
    unclassified: Counts,
    bars: Vec<Bar>,
    scale: u64,
    ticks: Vec<(u32, u64)>,
    chart_w: u32,
    plot_bottom: u32,
    feeds: Vec<FeedRow>,
    stale_feeds: usize,
    rollouts: Vec<RolloutRow>,
    windows: Vec<WindowRow>,
}

/// The states of a change being implemented (scheduled, or rolling out).
const IN_FLIGHT: [&str; 4] = ["scheduled", "testing", "tested", "deploying"];

/// How far ahead the dashboard lists windows.
const WINDOWS_AHEAD: SignedDuration = SignedDuration::from_hours(14 * 24);

/// `GET /dashboard`.
pub(crate) async fn dashboard(State(state): State<Arc<AppState>>, caller: Caller) -> PageResult {
    let now = clock::now();
    let ends = compliance::month_ends(now, &TimeZone::UTC, MONTHS);
    let since = ends.first().map_or(now, |(_, t)| {
        t.checked_sub(SignedDuration::from_hours(31 * 24))
            .unwrap_or(*t)
    });
    let (tally, lives) = compliance_now(&state, &caller.scope(), now, since).await?;
    let points = compliance::trend(&lives, &ends, DUE_SOON);
    let (bars, scale, ticks) = bars(&points);
    let classes = CLASSES
        .iter()
        .zip(tally.by_class.iter())
        .map(|(c, counts)| {
            let (class, css) = class_words(Some(*c));
            ClassRow {
                class,
                css,
                counts: *counts,
            }
        })
        .collect();
    let feeds: Vec<FeedRow> = feeds::sources(&state)
        .await?
        .into_iter()
        .map(|f| {
            let (freshness, css) = match f.freshness {
                FeedFreshness::Fresh => ("fresh", "ok"),
                FeedFreshness::Stale => ("stale", "bad"),
                FeedFreshness::Unwatched => ("not watched", "muted"),
            };
            FeedRow {
                kind: format!("{:?}", f.kind).to_lowercase(),
                name: f.name,
                freshness,
                css,
                last_success: when_or(f.last_success_at, "never"),
                stale_at: when_or(f.stale_at, ""),
                error: f.last_error.unwrap_or_default(),
            }
        })
        .collect();
    let stale_feeds = feeds.iter().filter(|f| f.freshness == "stale").count();
    let mut in_flight = Vec::new();
    for (stored, _) in changes::list_visible(
        &state,
        &caller,
        &ChangeFilter {
            states: IN_FLIGHT.iter().map(|s| (*s).to_owned()).collect(),
            requester: None,
            limit: Some(50),
        },
    )
    .await?
    {
        in_flight.push(changes::view(&state, &stored).await?);
    }
    let rollouts = in_flight
        .into_iter()
        .map(|c| RolloutRow {
            window: match (c.window_start, c.window_end) {
                (Some(s), Some(e)) => format!("{} – {}", when(s), when(e)),
                _ => "not scheduled".into(),
            },
            rings: c
                .rings
                .iter()
                .map(|r| {
                    let done = r.hosts.iter().filter(|h| h.outcome.is_some()).count();
                    format!(
                        "{}: {} ({done}/{} hosts done)",
                        r.name,
                        format!("{:?}", r.state).to_lowercase(),
                        r.hosts.len()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            halted: c.halted.unwrap_or_default(),
            number: c.number,
            title: c.title,
            state: c.state.as_str().to_owned(),
        })
        .collect();
    let horizon = now.checked_add(WINDOWS_AHEAD).unwrap_or(now);
    let mut windows: Vec<(Timestamp, WindowRow)> = Vec::new();
    for e in changes::calendar_entries(&state, now).await? {
        let kind = match e.spec {
            CalendarSpec::Window(_) => "window",
            CalendarSpec::Freeze(_) => "freeze",
            CalendarSpec::Template(_) => continue,
        };
        for (start, end) in e.next {
            if end <= now || start > horizon {
                continue;
            }
            windows.push((
                start,
                WindowRow {
                    name: e.name.clone(),
                    kind,
                    start: when(start),
                    end: when(end),
                    starts_in: if start <= now {
                        "open now".into()
                    } else {
                        format!("in {}", span(start.as_second() - now.as_second()))
                    },
                },
            ));
        }
    }
    windows.sort_by_key(|(s, _)| *s);
    let chart_w = LEFT + 20 + STEP * u32::try_from(bars.len()).unwrap_or(0);
    Ok(render(&DashboardPage {
        chrome: Chrome::new(&caller, "dashboard"),
        now: when(now),
        classes,
        total: tally.total(),
        unclassified: tally.unclassified,
        bars,
        scale,
        ticks,
        chart_w,
        plot_bottom: TOP + PLOT_H,
        feeds,
        stale_feeds,
        rollouts,
        windows: windows.into_iter().take(10).map(|(_, w)| w).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_scale_rounds_up_and_bars_stack_within_the_plot() {
        let month = jiff::civil::date(2026, 1, 1);
        let at: Timestamp = "2026-01-31T00:00:00Z".parse().unwrap();
        let point = |ok, soon, bad| MonthPoint {
            month,
            at,
            open: Counts {
                on_time: ok,
                due_soon: soon,
                breached: bad,
                excepted: 0,
            },
            breached_urgent: 0,
        };
        let (b, scale, ticks) = bars(&[point(30, 10, 7), point(0, 0, 0)]);
        assert_eq!(scale, 50);
        assert_eq!(ticks.last(), Some(&(TOP, 50)));
        // 47 of 50: the three parts stack up from the bottom without overlapping.
        assert_eq!(b[0].on_time, (TOP + PLOT_H - 120, 120));
        assert_eq!(b[0].due_soon, (TOP + PLOT_H - 160, 40));
        assert_eq!(b[0].breached.1, 28);
        assert_eq!(b[1].on_time.1, 0);
        let (_, scale, _) = bars(&[point(1, 0, 0)]);
        assert_eq!(scale, 1);
        let (_, scale, _) = bars(&[point(201, 0, 0)]);
        assert_eq!(scale, 500);
    }
}
