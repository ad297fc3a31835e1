//! What the public status page and the calendar feed publish, decided here and nowhere else.
//!
//! **Published**: the names of services (the hosts' `application` label, which operators set
//! for announcements) and what their users notice (`impact`); the openings of the maintenance
//! windows that apply to a service's host groups; change freezes (name and span); changes
//! announced for a service (their number and window, from their announcement day on); and
//! completed changes (number, the kind of change and the number of packages in words made
//! here, the applications, and when the rollout ended).
//!
//! **Never published**: host names and addresses, host groups' members, package names and
//! versions, vulnerability and advisory ids, the change's title, justification and other
//! operator text, a freeze's reason, rollout details and failures. A title such as "OpenSSL
//! 3.0.15 on web-3" is written for operators; published, it would tell an attacker which
//! software runs where and — with the date — which hosts were vulnerable until when.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use patchwarden_api::v1::changes::CalendarSpec;
use patchwarden_core::calendar::Span;
use patchwarden_core::change::{ChangeKind, ChangeState};
use patchwarden_store::change::ChangeFilter;
use patchwarden_store::{HostFilter, HostState};

use crate::changes::{self, ChangeDoc};
use crate::error::ApiError;
use crate::state::AppState;

/// The most openings computed for one window over the horizon (a window every hour for 90
/// days is 2,160; more than this is not a maintenance schedule anyone reads).
pub(crate) const MAX_OPENINGS: usize = 1000;
/// The most changes read for the page (newest first): far more than a month's worth.
const MAX_CHANGES: u32 = 2000;
/// The openings shown per service.
const NEXT_SHOWN: usize = 3;

/// A window or a freeze with its openings over a horizon.
#[derive(Debug, Clone)]
pub(crate) struct CalendarItem {
    pub name: String,
    pub freeze: bool,
    /// The host groups a window applies to (empty: every group); empty for a freeze.
    pub groups: Vec<String>,
    /// When the entry was last changed: the feed's `DTSTAMP`.
    pub updated_at: Timestamp,
    pub openings: Vec<Span>,
}

impl CalendarItem {
    /// Whether this applies to hosts of `group` (a freeze applies to every host).
    pub(crate) fn applies_to(&self, group: &str) -> bool {
        self.freeze || self.groups.is_empty() || self.groups.iter().any(|g| g == group)
    }
}

/// The calendar's windows and freezes with their openings that end after `from` and start
/// before `to`. Templates are not openings and are left out; entries that do not decode are
/// skipped (the calendar routes log them).
pub(crate) async fn calendar(
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<CalendarItem>, ApiError> {
    let mut out = Vec::new();
    for entry in state.store.calendar_entries().await? {
        let Ok(spec) = serde_json::from_value::<CalendarSpec>(entry.body.clone()) else {
            continue;
        };
        match spec {
            CalendarSpec::Window(w) => {
                let Ok(win) = changes::window(&entry.name, &w) else {
                    continue;
                };
                let mut openings = Vec::new();
                let mut t = from;
                if let Some(open) = win.open_at(from) {
                    openings.push(open);
                    t = open.end;
                }
                while openings.len() < MAX_OPENINGS {
                    let Some(s) = win.next_after(t) else { break };
                    if s.start >= to || s.end <= t {
                        break;
                    }
                    t = s.end;
                    openings.push(s);
                }
                out.push(CalendarItem {
                    name: entry.name,
                    freeze: false,
                    groups: w.groups,
                    updated_at: entry.updated_at,
                    openings,
                });
            }
            CalendarSpec::Freeze(f) => {
                if f.end > from && f.start < to {
                    out.push(CalendarItem {
                        name: entry.name,
                        freeze: true,
                        groups: Vec::new(),
                        updated_at: entry.updated_at,
                        openings: vec![Span {
                            start: f.start,
                            end: f.end,
                        }],
                    });
                }
            }
            CalendarSpec::Template(_) => {}
        }
    }
    Ok(out)
}

/// A span with what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    pub name: String,
}

/// A change announced for a service, not yet over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announced {
    pub number: String,
    pub what: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// One service on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub name: String,
    pub impact: Option<String>,
    /// A window is open for it now, until then.
    pub open_until: Option<Timestamp>,
    /// Its next window openings.
    pub next: Vec<Period>,
    pub announced: Vec<Announced>,
}

/// A completed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Patched {
    pub number: String,
    pub what: String,
    pub applications: Vec<String>,
    pub ended: Timestamp,
}

/// Everything the status page shows.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub computed_at: Timestamp,
    pub services: Vec<Service>,
    /// Freezes in force now or ahead.
    pub freezes: Vec<Period>,
    pub patched: Vec<Patched>,
}

/// The services (application label → its impact and the groups of its hosts), from hosts
/// that are not retired.
pub(crate) async fn services(
    state: &AppState,
) -> Result<BTreeMap<String, (Option<String>, BTreeSet<String>)>, ApiError> {
    let mut out: BTreeMap<String, (Option<String>, BTreeSet<String>)> = BTreeMap::new();
    for h in state.store.list_hosts(&HostFilter::default()).await? {
        if h.state == HostState::Retired {
            continue;
        }
        if let Some(app) = h.labels.get("application") {
            let entry = out.entry(app.clone()).or_default();
            if entry.0.is_none() {
                entry.0 = h.labels.get("impact").cloned();
            }
            entry.1.insert(h.group.clone());
        }
    }
    Ok(out)
}

/// A change's kind and size in plain words: no title, no package names.
pub(crate) fn plain_words(kind: ChangeKind, packages: usize) -> String {
    let what = match kind {
        ChangeKind::Standard => "Routine security update",
        ChangeKind::Normal => "Planned security update",
        ChangeKind::Emergency => "Urgent security fix",
    };
    let n = if packages == 1 {
        "1 software package".to_owned()
    } else {
        format!("{packages} software packages")
    };
    format!("{what} of {n}")
}

/// When a change last touched hosts: the latest start or verification of its rings.
fn last_touched(doc: &ChangeDoc) -> Option<Timestamp> {
    doc.rings
        .iter()
        .flat_map(|r| [r.started_at, r.verified_at])
        .flatten()
        .max()
}

/// Changes in `states`, newest first, with their documents.
async fn changes_in(
    state: &AppState,
    states: &[ChangeState],
) -> Result<Vec<(String, ChangeDoc)>, ApiError> {
    let stored = state
        .store
        .list_changes(&ChangeFilter {
            states: states.iter().map(|s| s.as_str().to_owned()).collect(),
            requester: None,
            limit: Some(MAX_CHANGES),
        })
        .await?;
    let mut out = Vec::with_capacity(stored.len());
    for s in &stored {
        match ChangeDoc::parse(s) {
            Ok(doc) => out.push((s.number.clone(), doc)),
            Err(e) => {
                tracing::warn!(change = %s.number, error = ?e, "a change is left off the status page")
            }
        }
    }
    Ok(out)
}

/// The change whose rollout touched `service` most recently, within `lookback` before `now`:
/// what a problem reported now is most likely about.
pub(crate) async fn change_for(
    state: &AppState,
    service: &str,
    now: Timestamp,
    lookback: SignedDuration,
) -> Result<Option<String>, ApiError> {
    let since = now.checked_sub(lookback).unwrap_or(Timestamp::MIN);
    let touched = changes_in(
        state,
        &[
            ChangeState::Testing,
            ChangeState::Tested,
            ChangeState::Deploying,
            ChangeState::Verified,
            ChangeState::Closed,
            ChangeState::Failed,
            ChangeState::RolledBack,
        ],
    )
    .await?;
    Ok(touched
        .into_iter()
        .filter(|(_, doc)| doc.affected.iter().any(|a| a.application == service))
        .filter_map(|(number, doc)| last_touched(&doc).map(|t| (t, number)))
        .filter(|(t, _)| *t >= since && *t <= now)
        .max()
        .map(|(_, number)| number))
}

/// Computes the status page's figures at `now`.
pub(crate) async fn compute(state: &AppState, now: Timestamp) -> Result<Published, ApiError> {
    let settings = &state.status.settings;
    let horizon = now
        .checked_add(SignedDuration::from_hours(
            24 * i64::from(settings.horizon_days),
        ))
        .unwrap_or(Timestamp::MAX);
    let items = calendar(state, now, horizon).await?;
    let announced = changes_in(
        state,
        &[
            ChangeState::Scheduled,
            ChangeState::Testing,
            ChangeState::Tested,
            ChangeState::Deploying,
        ],
    )
    .await?;
    let mut services = Vec::new();
    for (name, (impact, groups)) in self::services(state).await? {
        let mut openings: Vec<Period> = items
            .iter()
            .filter(|i| !i.freeze && groups.iter().any(|g| i.applies_to(g)))
            .flat_map(|i| {
                i.openings.iter().map(|s| Period {
                    start: s.start,
                    end: s.end,
                    name: i.name.clone(),
                })
            })
            .collect();
        openings.sort_by_key(|p| (p.start, p.end));
        let open_until = openings
            .iter()
            .filter(|p| p.start <= now && now < p.end)
            .map(|p| p.end)
            .max();
        let next: Vec<Period> = openings
            .into_iter()
            .filter(|p| p.start > now)
            .take(NEXT_SHOWN)
            .collect();
        let mut mine: Vec<Announced> = announced
            .iter()
            .filter(|(_, doc)| {
                doc.announce_at.is_some_and(|a| a <= now)
                    && doc.affected.iter().any(|a| a.application == name)
            })
            .filter_map(|(number, doc)| {
                let (start, end) = doc.window?;
                (end > now).then(|| Announced {
                    number: number.clone(),
                    what: plain_words(doc.change.kind, doc.patches.len()),
                    start,
                    end,
                })
            })
            .collect();
        mine.sort_by_key(|a| a.start);
        services.push(Service {
            name,
            impact,
            open_until,
            next,
            announced: mine,
        });
    }
    let mut freezes: Vec<Period> = items
        .iter()
        .filter(|i| i.freeze)
        .flat_map(|i| {
            i.openings.iter().map(|s| Period {
                start: s.start,
                end: s.end,
                name: i.name.clone(),
            })
        })
        .collect();
    freezes.sort_by_key(|p| p.start);
    let since = now
        .checked_sub(SignedDuration::from_hours(
            24 * i64::from(settings.patched_days),
        ))
        .unwrap_or(Timestamp::MIN);
    let mut patched: Vec<Patched> =
        changes_in(state, &[ChangeState::Verified, ChangeState::Closed])
            .await?
            .into_iter()
            .filter_map(|(number, doc)| {
                let ended = doc.rings.iter().filter_map(|r| r.verified_at).max()?;
                (ended >= since).then(|| Patched {
                    number,
                    what: plain_words(doc.change.kind, doc.patches.len()),
                    applications: doc.affected.iter().map(|a| a.application.clone()).collect(),
                    ended,
                })
            })
            .collect();
    patched.sort_by_key(|p| std::cmp::Reverse(p.ended));
    Ok(Published {
        computed_at: now,
        services,
        freezes,
        patched,
    })
}

/// The figures, from the cache when they are fresh enough.
pub(crate) async fn published(
    state: &AppState,
    now: Timestamp,
) -> Result<Arc<Published>, ApiError> {
    if let Some(p) = state.status.cached() {
        return Ok(p);
    }
    let p = Arc::new(compute(state, now).await?);
    state.status.keep(p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_described_by_its_kind_and_size_only() {
        assert_eq!(
            plain_words(ChangeKind::Normal, 1),
            "Planned security update of 1 software package"
        );
        assert_eq!(
            plain_words(ChangeKind::Emergency, 3),
            "Urgent security fix of 3 software packages"
        );
        assert_eq!(
            plain_words(ChangeKind::Standard, 0),
            "Routine security update of 0 software packages"
        );
    }
}
